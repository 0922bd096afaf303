//! The platform's models: files in the models directory of the data directory, named by the
//! id clients use: `NAME.gguf` (a generative model) or `NAME/` (a model of several files).

mod gguf;
mod import;
mod safetensors;

pub(crate) use import::import;

use std::path::{Path, PathBuf};

use lutece_api::{ModelKind, PlatformModel};

/// The file or directory of model `name`, if the platform has it.
pub(crate) fn find(models_dir: &Path, name: &str) -> Option<PathBuf> {
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
    let hidden = models_dir.join(format!(".removing-{name}"));
    std::fs::rename(&path, &hidden)?;
    if hidden.is_dir() {
        std::fs::remove_dir_all(&hidden)?;
    } else {
        std::fs::remove_file(&hidden)?;
    }
    Ok(true)
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
