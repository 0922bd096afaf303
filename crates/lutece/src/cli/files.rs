//! `lutece files …`: a tenant's files, streamed from and to disk with a progress bar, their
//! SHA-256 checked end to end.

use crate::cli::args::{FilesCommand, OutputFormat, ServerArgs};
use crate::cli::client_cmds::client;
use crate::cli::output;
use crate::cli::save::Staged;
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use lutece_api::FileObject;
use lutece_client::FileUpload;
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub(crate) async fn run(command: FilesCommand) -> Result<i32> {
    match command {
        FilesCommand::Upload {
            path,
            purpose,
            location,
            client: args,
        } => {
            let file = upload(&args.server, &path, &purpose, location.as_deref()).await?;
            output::print(args.output, &file, output::file)?;
        }
        FilesCommand::List {
            purpose,
            client: args,
        } => {
            let list = client(&args.server)?.list_files(purpose.as_deref()).await?;
            // An array, like every other list of the CLI (the API's envelope adds nothing).
            output::print(args.output, &list.data, output::files)?;
        }
        FilesCommand::Get { id, client: args } => {
            let file = client(&args.server)?.file(&id).await?;
            output::print(args.output, &file, output::file)?;
        }
        FilesCommand::Download {
            id,
            output,
            force,
            server,
        } => download(&server, &id, output, force).await?,
        FilesCommand::Rm { id, client: args } => {
            let deleted = client(&args.server)?.delete_file(&id).await?;
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&deleted)?),
                OutputFormat::Table => println!("{} deleted", deleted.id),
            }
        }
    }
    Ok(0)
}

async fn upload(
    server: &ServerArgs,
    path: &Path,
    purpose: &str,
    location: Option<&str>,
) -> Result<FileObject> {
    let client = client(server)?;
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let metadata = file
        .metadata()
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !metadata.is_file() {
        bail!("{} is not a file", path.display());
    }
    let filename = path
        .file_name()
        .with_context(|| format!("{} does not name a file", path.display()))?
        .to_string_lossy()
        .into_owned();
    let len = metadata.len();
    // What was sent is hashed as it goes, to check that the server stored exactly that.
    let sent = Arc::new(Mutex::new(Sha256::new()));
    let bar = progress_bar(len, &filename);
    let on_sent = {
        let (sent, bar) = (Arc::clone(&sent), bar.clone());
        move |chunk: &[u8]| {
            sent.lock().unwrap_or_else(|p| p.into_inner()).update(chunk);
            bar.inc(chunk.len() as u64);
        }
    };
    let upload = FileUpload {
        filename: &filename,
        purpose,
        location,
    };
    let stored = client.upload_file(&upload, file, len, on_sent).await;
    bar.finish_and_clear();
    let stored = stored?;
    let digest = hex::encode(
        sent.lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .finalize(),
    );
    if !stored.sha256.eq_ignore_ascii_case(&digest) || stored.bytes != len {
        bail!(
            "the server stored {} as {} bytes with SHA-256 {}, but {len} bytes with SHA-256 \
             {digest} were sent (did {} change during the upload?); remove it with `lutece \
             files rm {}`",
            stored.id,
            stored.bytes,
            stored.sha256,
            path.display(),
            stored.id
        );
    }
    Ok(stored)
}

async fn download(
    server: &ServerArgs,
    id: &str,
    output: Option<PathBuf>,
    force: bool,
) -> Result<()> {
    let client = client(server)?;
    let object = client.file(id).await?;
    let dest = destination(output.as_deref(), &object.filename, |p| p.is_dir())?;
    let mut staged = Staged::create(&dest, force).await?;
    let bar = progress_bar(object.bytes, &object.filename);
    let mut content = client.file_content(id).await?;
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    while let Some(chunk) = content.next().await {
        let chunk = chunk.with_context(|| {
            format!(
                "{id} broke off after {received} of {} bytes; nothing was saved",
                object.bytes
            )
        })?;
        hasher.update(&chunk);
        staged.write(&chunk).await?;
        received += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    check_content(&object, received, &hex::encode(hasher.finalize()))?;
    staged.commit().await?;
    println!(
        "saved {} to {} ({}, SHA-256 verified)",
        object.id,
        dest.display(),
        output::bytes(received)
    );
    Ok(())
}

/// Where a download goes: `output` (or, when it is a directory, the file's name in it), else
/// the file's name in the current directory. The name comes from the server: only its last
/// component is used, so that it cannot place the file anywhere else.
fn destination(
    output: Option<&Path>,
    filename: &str,
    is_dir: impl Fn(&Path) -> bool,
) -> Result<PathBuf> {
    let named = || -> Result<PathBuf> {
        match Path::new(filename).file_name() {
            Some(name) if !filename.ends_with('/') => Ok(PathBuf::from(name)),
            _ => bail!("the file's name {filename:?} cannot be used here; give --output"),
        }
    };
    match output {
        Some(dir) if is_dir(dir) => Ok(dir.join(named()?)),
        Some(path) => Ok(path.to_owned()),
        None => named(),
    }
}

/// Whether what arrived is the file the server described.
fn check_content(object: &FileObject, received: u64, sha256: &str) -> Result<()> {
    if received != object.bytes {
        bail!(
            "{} arrived with {received} bytes instead of {}: nothing was saved",
            object.id,
            object.bytes
        );
    }
    if !object.sha256.eq_ignore_ascii_case(sha256) {
        bail!(
            "{} arrived with SHA-256 {sha256} instead of {}: nothing was saved",
            object.id,
            object.sha256
        );
    }
    Ok(())
}

/// A progress bar over `len` bytes on stderr, drawn only when stderr is a terminal, and
/// cleared when dropped (so an error is printed on a clean line).
fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let style = ProgressStyle::with_template(
        "{msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(len), target)
        .with_style(style)
        .with_message(what.to_owned())
        .with_finish(ProgressFinish::AndClear)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> FileObject {
        FileObject {
            id: "file-0123456789abcdef01234567".into(),
            object: "file".into(),
            bytes: 3,
            created_at: 1_764_000_000,
            filename: "data.jsonl".into(),
            purpose: "fine-tune".into(),
            status: "processed".into(),
            location: "paris-1".into(),
            jurisdiction: "FR".into(),
            sha256: "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD".into(),
        }
    }

    #[test]
    fn a_download_lands_under_the_last_part_of_its_name() {
        let no_dirs = |_: &Path| false;
        let only_out = |p: &Path| p == Path::new("out");
        let place = |output: Option<&str>, name: &str| {
            destination(output.map(Path::new), name, only_out).map_err(|e| e.to_string())
        };
        assert_eq!(place(None, "data.jsonl"), Ok("data.jsonl".into()));
        assert_eq!(place(None, "../../etc/passwd"), Ok("passwd".into()));
        assert_eq!(place(None, "/etc/passwd"), Ok("passwd".into()));
        assert_eq!(place(Some("out"), "a/b.txt"), Ok("out/b.txt".into()));
        assert_eq!(place(Some("x/y.txt"), ".."), Ok("x/y.txt".into()));
        for bad in ["", ".", "..", "a/..", "dir/"] {
            let error = place(None, bad).unwrap_err();
            assert!(error.contains("--output"), "{bad:?}: {error}");
        }
        assert!(destination(None, "..", no_dirs).is_err());
    }

    #[test]
    fn content_must_match_the_size_and_digest_the_server_described() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        check_content(&object(), 3, abc).unwrap();
        let short = check_content(&object(), 2, abc).unwrap_err().to_string();
        assert!(short.contains("2 bytes instead of 3"), "{short}");
        let other = check_content(&object(), 3, &"0".repeat(64))
            .unwrap_err()
            .to_string();
        assert!(other.contains("SHA-256"), "{other}");
    }
}
