//! The object_store behind each location: a directory of this machine or a bucket of an
//! S3-compatible store; and what only a directory needs (syncing a put, sweeping staging files).

use crate::location::{S3Target, Target, create_dir};
use crate::{BlobError, Durability, Location, blocking, store_error};
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// The store of one location.
pub(crate) struct Store {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// `None` for a bucket.
    local: Option<Local>,
}

/// What a local location needs beside its store.
struct Local {
    files: Arc<LocalFileSystem>,
    /// Where [`Store::sweep_staging`] looks.
    dir: PathBuf,
    fsync: bool,
}

impl Store {
    /// Opens the store of `location`: creates a local one's directory; configures an S3 one
    /// from the `AWS_*` variables of `env` and the options of its URL.
    pub(crate) fn open(
        location: &Location,
        durability: Durability,
        env: &[(String, String)],
    ) -> Result<Store, BlobError> {
        match location.target()? {
            Target::Local(dir) => {
                create_dir(&dir)?;
                let files = Arc::new(
                    LocalFileSystem::new_with_prefix(&dir).map_err(store_error(&location.name))?,
                );
                Ok(Store {
                    store: files.clone(),
                    local: Some(Local {
                        files,
                        dir,
                        fsync: durability == Durability::Synced,
                    }),
                })
            }
            Target::S3(target) => Ok(Store {
                store: s3(&target, env).map_err(store_error(&location.name))?,
                local: None,
            }),
        }
    }

    /// Makes the object just put at `path` survive a power cut, when the location is local and
    /// puts are [`Durability::Synced`]: syncs the file, then every directory from its own up to
    /// the location's, whose entries the put may have added. (An S3-compatible store
    /// acknowledges an upload once it is durable.)
    ///
    /// object_store 0.12 cannot sync its staging file before renaming it into place, so the
    /// object is synced in place: a crash between the two, before the put returned, can leave
    /// at `path` an object cut short, which an open refuses as it refuses any damage.
    pub(crate) async fn sync(&self, location: &str, path: &Path) -> Result<(), BlobError> {
        let Some(local) = self.local.as_ref().filter(|l| l.fsync) else {
            return Ok(());
        };
        let file = local
            .files
            .path_to_filesystem(path)
            .map_err(store_error(location))?;
        let levels = path.parts().count();
        blocking(move || {
            // The file, then its directory and each above it up to the location's.
            for at in file.ancestors().take(levels + 1) {
                let synced = std::fs::File::open(at).and_then(|f| f.sync_all());
                synced.map_err(|source| BlobError::Io {
                    context: format!("sync {}", at.display()),
                    source,
                })?;
            }
            Ok(())
        })
        .await
    }

    /// The directory where a local location's uploads stage; a bucket has none (see
    /// [`crate::Blobs::sweep_staging`]).
    pub(crate) fn staging_dir(&self) -> Option<PathBuf> {
        self.local.as_ref().map(|l| l.dir.clone())
    }
}

impl std::fmt::Debug for Store {
    /// The store's own summary (`LocalFileSystem(file:///…)`, `AmazonS3(bucket)`): never its
    /// configuration, which holds credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.store)
    }
}

/// A bucket's store, configured as `AmazonS3Builder::from_env` would be from `env`, then by the
/// URL's bucket and options; objects under the URL's prefix.
fn s3(target: &S3Target, env: &[(String, String)]) -> object_store::Result<Arc<dyn ObjectStore>> {
    let mut builder = AmazonS3Builder::new();
    for (key, value) in env {
        if let Ok(config) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            builder = builder.with_config(config, value);
        }
    }
    builder = builder.with_bucket_name(&target.bucket);
    if let Some(endpoint) = &target.endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    if let Some(region) = &target.region {
        builder = builder.with_region(region);
    }
    let bucket = builder.build()?;
    Ok(if target.prefix.is_empty() {
        Arc::new(bucket)
    } else {
        // Parsed, not converted: a `&str` would be percent-encoded (`team~a` stored under
        // `team%7Ea/`), away from the prefix the operator named.
        let prefix = object_store::path::Path::parse(&target.prefix)?;
        Arc::new(PrefixStore::new(bucket, prefix))
    })
}

/// The process's `AWS_*` variables (those `AmazonS3Builder::from_env` reads).
pub(crate) fn aws_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(key, _)| key.starts_with("AWS_"))
        .collect()
}

/// Removes staging files under `dir` last modified before `before`; follows no symlink.
pub(crate) fn sweep(dir: &std::path::Path, before: SystemTime) -> Result<u64, BlobError> {
    let io = |context: String| move |source| BlobError::Io { context, source };
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(format!("read {}", dir.display()))(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(format!("read {}", dir.display())))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(io(format!("inspect {}", path.display())))?;
        if kind.is_dir() {
            removed += sweep(&path, before)?;
        } else if kind.is_file() && is_staging(&entry.file_name().to_string_lossy()) {
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_err(io(format!("inspect {}", path.display())))?;
            if modified <= before {
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    // Its upload completed or aborted meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(format!("remove {}", path.display()))(e)),
                }
            }
        }
    }
    Ok(removed)
}

/// Whether a file name is object_store's staging name for an upload: `NAME#DIGITS`.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_told_apart() {
        assert!(is_staging("file-abc#1") && is_staging("x#42"));
        assert!(!is_staging("file-abc") && !is_staging("x#") && !is_staging("x#1a"));
    }
}
