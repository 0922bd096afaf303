//! Saving what the server sends to a file without ever leaving a partial one under its name:
//! the bytes go to a hidden temporary file beside it, renamed over the name only once whole
//! and checked; a download that fails or is refused removes its temporary file.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncWriteExt, BufWriter};

/// A file being written: `commit` gives it its name, dropping it first removes it.
pub(crate) struct Staged {
    file: BufWriter<tokio::fs::File>,
    temp: PathBuf,
    dest: PathBuf,
    force: bool,
    committed: bool,
}

impl Staged {
    /// Starts writing what will become `dest`, which must not exist unless `force`.
    pub(crate) async fn create(dest: &Path, force: bool) -> Result<Staged> {
        refuse_existing(dest, force)?;
        let temp = temp_path(dest)?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .with_context(|| format!("cannot create {}", temp.display()))?;
        Ok(Staged {
            file: BufWriter::with_capacity(1 << 20, file),
            temp,
            dest: dest.to_owned(),
            force,
            committed: false,
        })
    }

    pub(crate) async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.file
            .write_all(chunk)
            .await
            .with_context(|| format!("cannot write {}", self.temp.display()))
    }

    /// Flushes the file to disk and gives it its name.
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.file
            .flush()
            .await
            .with_context(|| format!("cannot write {}", self.temp.display()))?;
        self.file
            .get_ref()
            .sync_all()
            .await
            .with_context(|| format!("cannot write {}", self.temp.display()))?;
        // Checked again: the file may have appeared while the content arrived. (A rename
        // that refuses to replace is not portable; this leaves only a narrow window.)
        refuse_existing(&self.dest, self.force)?;
        tokio::fs::rename(&self.temp, &self.dest)
            .await
            .with_context(|| {
                format!(
                    "cannot move {} to {}",
                    self.temp.display(),
                    self.dest.display()
                )
            })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

fn refuse_existing(dest: &Path, force: bool) -> Result<()> {
    // `symlink_metadata`: a dangling link is there too, and would be replaced.
    if !force && dest.symlink_metadata().is_ok() {
        bail!(
            "{} already exists; pass --force to overwrite it",
            dest.display()
        );
    }
    Ok(())
}

/// `.NAME.PID.part` in the destination's directory, so that the final rename stays on one
/// file system.
fn temp_path(dest: &Path) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .with_context(|| format!("{} does not name a file", dest.display()))?;
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".{}.part", std::process::id()));
    Ok(dest.with_file_name(temp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_file_is_hidden_beside_the_destination() {
        let pid = std::process::id();
        assert_eq!(
            temp_path(Path::new("out/data.jsonl")).unwrap(),
            PathBuf::from(format!("out/.data.jsonl.{pid}.part"))
        );
        assert_eq!(
            temp_path(Path::new("data.jsonl")).unwrap(),
            PathBuf::from(format!(".data.jsonl.{pid}.part"))
        );
        assert!(temp_path(Path::new("out/..")).is_err());
        assert!(temp_path(Path::new("/")).is_err());
    }

    #[tokio::test]
    async fn only_a_committed_file_takes_its_name() {
        let dir = std::env::temp_dir().join(format!("lutece-save-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("export.jsonl");

        let mut dropped = Staged::create(&dest, false).await.unwrap();
        dropped.write(b"half").await.unwrap();
        drop(dropped);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing left");

        let mut staged = Staged::create(&dest, false).await.unwrap();
        staged.write(b"whole\n").await.unwrap();
        staged.commit().await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"whole\n");

        let refused = Staged::create(&dest, false).await.err().unwrap();
        assert!(refused.to_string().contains("--force"), "{refused}");
        let mut forced = Staged::create(&dest, true).await.unwrap();
        forced.write(b"again\n").await.unwrap();
        forced.commit().await.unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"again\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
