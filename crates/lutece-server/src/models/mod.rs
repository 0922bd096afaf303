//! The platform's models: files in the models directory of the data directory, named by the
//! id clients use: `NAME.gguf` (a generative model) or `NAME/` (a model of several files).

mod fetch;
mod gguf;
mod import;
mod safetensors;

pub(crate) use fetch::import_url;
pub(crate) use import::import;

use std::path::{Path, PathBuf};

use lutece_api::{ModelKind, PlatformModel};

/// The file or directory of model `name`, if the platform has it. A name that is not a valid
/// name (a path, say) is no model: nothing outside the models directory is ever looked at.
pub(crate) fn find(models_dir: &Path, name: &str) -> Option<PathBuf> {
    lutece_core::validate_name(name).ok()?;
    let file = models_dir.join(format!("{name}.gguf"));
    if file.is_file() {
        return Some(file);
    }
    let dir = models_dir.join(name);
    dir.join("config.json").is_file().then_some(dir)
}

/// The names of every model the platform has, sorted.
pub(crate) fn list(models_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            let name = name.strip_suffix(".gguf").unwrap_or(&name).to_owned();
            find(models_dir, &name).map(|_| name)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// What model `name` is, told by its files, if the platform has it.
pub(crate) fn kind(models_dir: &Path, name: &str) -> Option<ModelKind> {
    let path = find(models_dir, name)?;
    Some(if path.is_dir() {
        ModelKind::Embedding
    } else {
        ModelKind::Generative
    })
}

/// Model `name` as the API shows it, if the platform has it.
pub(crate) fn describe(models_dir: &Path, name: &str) -> Option<PlatformModel> {
    let path = find(models_dir, name)?;
    let (kind, bytes) = if path.is_dir() {
        (ModelKind::Embedding, bytes_under(&path))
    } else {
        (ModelKind::Generative, std::fs::metadata(&path).ok()?.len())
    };
    Some(PlatformModel {
        name: name.to_owned(),
        kind,
        bytes,
        sha256: None,
    })
}

/// Removes model `name`: renamed out of sight in one step, then deleted; false if the
/// platform does not have it.
pub(crate) fn remove(models_dir: &Path, name: &str) -> std::io::Result<bool> {
    let Some(path) = find(models_dir, name) else {
        return Ok(false);
    };
    let hidden = models_dir.join(format!(".removing-{name}-{}", unique()));
    std::fs::rename(&path, &hidden)?;
    if hidden.is_dir() {
        std::fs::remove_dir_all(&hidden)?;
    } else {
        std::fs::remove_file(&hidden)?;
    }
    Ok(true)
}

/// Removes the hidden folders and files of imports and removals that a stopped server did not
/// finish.
pub(crate) fn clean_up(models_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(models_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".import-") || name.starts_with(".removing-") {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed what an unfinished model import or removal left")
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "cannot remove a leftover of a model import")
                }
            }
        }
    }
}

/// A suffix no other hidden folder of this process has.
pub(crate) fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories_are_models_and_partial_files_are_not() {
        let dir = std::env::temp_dir().join(format!("lutece-models-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("minilm")).unwrap();
        std::fs::create_dir_all(dir.join("empty-dir")).unwrap();
        std::fs::write(dir.join("minilm/config.json"), "{}").unwrap();
        std::fs::write(dir.join("smol.gguf"), "GGUF").unwrap();
        std::fs::write(dir.join("smol.gguf.part"), "GG").unwrap();
        std::fs::create_dir_all(dir.join(".download-1")).unwrap();
        assert_eq!(list(&dir), ["minilm", "smol"]);
        assert_eq!(find(&dir, "smol"), Some(dir.join("smol.gguf")));
        assert_eq!(find(&dir, "minilm"), Some(dir.join("minilm")));
        assert_eq!(find(&dir, "empty-dir"), None);
        assert!(list(&dir.join("absent")).is_empty());
        // A path is not a name: nothing outside the directory is found.
        std::fs::write(dir.with_extension("gguf"), "GGUF").unwrap();
        let outside = format!("../{}", dir.file_name().unwrap().to_string_lossy());
        assert_eq!(find(&dir, &outside), None);
        assert_eq!(find(&dir, &dir.display().to_string()), None);
        std::fs::remove_file(dir.with_extension("gguf")).unwrap();
        // What a killed import or removal left goes at the next start; models stay.
        std::fs::create_dir_all(dir.join(".import-big-1-0/1_Pooling")).unwrap();
        std::fs::write(dir.join(".removing-old-1-1"), "GGUF").unwrap();
        clean_up(&dir);
        assert!(!dir.join(".import-big-1-0").exists());
        assert!(!dir.join(".removing-old-1-1").exists());
        assert_eq!(list(&dir), ["minilm", "smol"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
