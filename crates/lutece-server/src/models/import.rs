//! `POST /api/v1/models`: a model the control plane's machine can read, copied into the
//! models directory. The copy is hashed while it is written and checked (structure, digest)
//! before it appears under its name in one rename; a failed import leaves nothing behind.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use lutece_api::{ModelKind, PlatformModel};
use lutece_core::validate_name;
use sha2::{Digest, Sha256};

use super::{find, gguf, safetensors};
use crate::error::ApiError;

/// The files of an embedding model a directory must have.
const EMBEDDING_REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// The files the embedder reads when they are there.
const EMBEDDING_OPTIONAL: [&str; 3] = [
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
];

/// Imports the model `request` names into `models_dir` (blocking: run it on a blocking thread),
/// with `place` holding the models lock while the checked copy takes its name.
pub(crate) fn import(
    models_dir: &Path,
    path: &str,
    name: Option<String>,
    sha256: Option<&str>,
    place: impl FnOnce(&dyn Fn() -> Result<(), ApiError>) -> Result<(), ApiError>,
) -> Result<PlatformModel, ApiError> {
    let source = PathBuf::from(path);
    if !source.is_absolute() {
        return Err(ApiError::invalid(
            "path",
            format!("{path:?} is relative: give an absolute path on the control plane's machine"),
        ));
    }
    let metadata = std::fs::metadata(&source)
        .map_err(|e| ApiError::invalid("path", format!("cannot read {}: {e}", source.display())))?;
    let kind = if metadata.is_dir() {
        ModelKind::Embedding
    } else if metadata.is_file() {
        ModelKind::Generative
    } else {
        return Err(ApiError::invalid(
            "path",
            format!("{} is neither a file nor a directory", source.display()),
        ));
    };
    if kind == ModelKind::Embedding {
        let missing: Vec<&str> = EMBEDDING_REQUIRED
            .into_iter()
            .filter(|f| !source.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::invalid(
                "path",
                format!(
                    "{} is a directory without {}: a directory model is a sentence-transformers embedding model ({})",
                    source.display(),
                    missing.join(", "),
                    EMBEDDING_REQUIRED.join(", ")
                ),
            ));
        }
    }
    let name = match name {
        Some(name) => name,
        None => derive_name(&source).ok_or_else(|| {
            ApiError::invalid(
                "name",
                format!(
                    "cannot make a model name from {}: give one",
                    source.display()
                ),
            )
        })?,
    };
    validate_name(&name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let expected = sha256.map(parse_sha256).transpose()?;
    if find(models_dir, &name).is_some() {
        return Err(ApiError::Conflict(format!("model {name} already exists")));
    }
    let staging = Staging::create(models_dir, &name)?;

    let staged = match kind {
        ModelKind::Generative => {
            let file = staging.0.join("model.gguf");
            let (digest, bytes) = copy_hashed(&source, &file)?;
            Staged {
                staging,
                file,
                digest,
                bytes,
                expected,
                origin: source.display().to_string(),
                field: "path",
            }
        }
        ModelKind::Embedding => {
            let mut total = 0;
            let mut digest = String::new();
            for file in EMBEDDING_REQUIRED.into_iter().chain(EMBEDDING_OPTIONAL) {
                let from = source.join(file);
                if !from.is_file() {
                    continue;
                }
                let to = staging.0.join(file);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(internal)?;
                }
                let (file_digest, bytes) = copy_hashed(&from, &to)?;
                if file == "model.safetensors" {
                    digest = file_digest;
                    let reader = BufReader::new(File::open(&to).map_err(internal)?);
                    safetensors::check(reader, bytes).map_err(|e| {
                        ApiError::invalid("path", format!("{} {e}", from.display()))
                    })?;
                } else if file.ends_with(".json") {
                    let text = std::fs::read(&to).map_err(internal)?;
                    serde_json::from_slice::<serde_json::Value>(&text).map_err(|e| {
                        ApiError::invalid(
                            "path",
                            format!("{} is not valid JSON: {e}", from.display()),
                        )
                    })?;
                }
                total += bytes;
            }
            let file = staging.0.clone();
            Staged {
                staging,
                file,
                digest,
                bytes: total,
                expected,
                origin: source.display().to_string(),
                field: "path",
            }
        }
    };
    finish(models_dir, &name, kind, staged, place)
}

/// A model written into its staging folder, with what was learnt on the way.
pub(crate) struct Staged {
    pub(crate) staging: Staging,
    /// The GGUF file, or the directory of an embedding model.
    pub(crate) file: PathBuf,
    /// SHA-256 of the weights.
    pub(crate) digest: String,
    pub(crate) bytes: u64,
    /// The SHA-256 they must have.
    pub(crate) expected: Option<String>,
    /// Where it came from, for messages.
    pub(crate) origin: String,
    /// The request field a problem with the source is reported against.
    pub(crate) field: &'static str,
}

/// Imports a GGUF file already downloaded into its staging folder as model `name`.
pub(crate) fn import_download(
    models_dir: &Path,
    name: &str,
    staged: Staged,
    place: impl FnOnce(&dyn Fn() -> Result<(), ApiError>) -> Result<(), ApiError>,
) -> Result<PlatformModel, ApiError> {
    finish(models_dir, name, ModelKind::Generative, staged, place)
}

/// Checks a staged model (a GGUF file's structure; the digest) and makes it appear under
/// `name` in one step, only if the name is still free.
fn finish(
    models_dir: &Path,
    name: &str,
    kind: ModelKind,
    staged: Staged,
    place: impl FnOnce(&dyn Fn() -> Result<(), ApiError>) -> Result<(), ApiError>,
) -> Result<PlatformModel, ApiError> {
    let Staged {
        staging,
        file: weights,
        digest,
        bytes,
        expected,
        origin,
        field,
    } = staged;
    // The digest first: bytes that are not the ones expected are not even parsed.
    if let Some(expected) = expected {
        if digest != expected {
            return Err(ApiError::invalid(
                "sha256",
                format!("{origin} has SHA-256 {digest}, not {expected}; nothing was imported"),
            ));
        }
    }
    if kind == ModelKind::Generative {
        let file = File::open(&weights).map_err(internal)?;
        gguf::check(BufReader::new(file), bytes)
            .map_err(|e| ApiError::invalid(field, format!("{origin} {e}")))?;
    }
    // Appear under the name in one step, and only if the name is still free: a hard link
    // never replaces a file, and a directory is never renamed onto one that has files.
    let destination = match kind {
        ModelKind::Generative => models_dir.join(format!("{name}.gguf")),
        ModelKind::Embedding => models_dir.join(name),
    };
    let taken = || ApiError::Conflict(format!("model {name} already exists"));
    place(&|| {
        if find(models_dir, name).is_some() || destination.exists() {
            return Err(taken());
        }
        let placed = match kind {
            ModelKind::Generative => std::fs::hard_link(&weights, &destination),
            ModelKind::Embedding => std::fs::rename(&weights, &destination),
        };
        placed.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => taken(),
            _ => internal(e),
        })
    })?;
    drop(staging);
    tracing::info!(model = %name, from = %origin, "model imported");
    Ok(PlatformModel {
        name: name.to_owned(),
        kind,
        bytes,
        sha256: Some(digest),
    })
}

/// A hidden folder of its own in the models directory, removed whatever it holds when the
/// import ends (what succeeded was linked or renamed out of it); one a killed server left is
/// removed at the next start ([`super::clean_up`]).
pub(crate) struct Staging(PathBuf);

impl Staging {
    /// A new staging folder for model `name` in `models_dir`.
    pub(crate) fn create(models_dir: &Path, name: &str) -> Result<Self, ApiError> {
        std::fs::create_dir_all(models_dir).map_err(internal)?;
        let path = models_dir.join(format!(".import-{name}-{}", super::unique()));
        std::fs::create_dir(&path).map_err(internal)?;
        Ok(Self(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `from` to `to`, flushed to disk; returns the SHA-256 (hex) and length of what was
/// written.
fn copy_hashed(from: &Path, to: &Path) -> Result<(String, u64), ApiError> {
    let mut source = File::open(from)
        .map_err(|e| ApiError::invalid("path", format!("cannot read {}: {e}", from.display())))?;
    let mut copy = File::create(to).map_err(internal)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = source.read(&mut buffer).map_err(|e| {
            ApiError::invalid("path", format!("cannot read {}: {e}", from.display()))
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        copy.write_all(&buffer[..n]).map_err(internal)?;
        bytes += n as u64;
    }
    copy.sync_all().map_err(internal)?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

pub(crate) fn parse_sha256(text: &str) -> Result<String, ApiError> {
    let lower = text.to_ascii_lowercase();
    if lower.len() == 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(lower)
    } else {
        Err(ApiError::invalid(
            "sha256",
            format!("{text:?} is not a SHA-256 digest: expected 64 hexadecimal digits"),
        ))
    }
}

/// A model name from a file or directory name: its stem lowercased, every run of other
/// characters than letters and digits turned into one `-`.
pub(crate) fn derive_name(path: &Path) -> Option<String> {
    let stem = if path.is_dir() {
        path.file_name()?
    } else {
        path.file_stem()?
    };
    name_from_stem(&stem.to_string_lossy())
}

/// A model name from a file's stem: lowercased, every run of other characters than letters
/// and digits turned into one `-`, at most 63 characters.
pub(crate) fn name_from_stem(stem: &str) -> Option<String> {
    let mut name = String::new();
    for c in stem.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_end_matches('-').chars().take(63).collect();
    let name = name.trim_end_matches('-').to_owned();
    (!name.is_empty()).then_some(name)
}

pub(crate) fn internal(error: std::io::Error) -> ApiError {
    ApiError::Internal(format!("cannot write the model: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_files() {
        let name = |p: &str| derive_name(Path::new(p));
        assert_eq!(
            name("/m/SmolLM2-135M-Instruct.Q4_1.gguf").as_deref(),
            Some("smollm2-135m-instruct-q4-1")
        );
        assert_eq!(name("/m/__Über__.gguf").as_deref(), Some("ber"));
        assert_eq!(name("/m/____.gguf"), None);
        assert_eq!(
            name(&format!("/m/{}.gguf", "a".repeat(80))).unwrap().len(),
            63
        );
    }

    #[test]
    fn digests_are_64_hex_digits() {
        let upper = "AB".repeat(32);
        assert_eq!(parse_sha256(&upper).unwrap(), "ab".repeat(32));
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }
}
