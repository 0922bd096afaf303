//! The stores behind the locations, and what can be done with an object in one.

use crate::location::create_dir;
use crate::read::{self, PlaintextStream};
use crate::{BlobError, Location, Locations, blocking, write};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use lutece_core::residency::ResidencyPolicy;
use lutece_vault::Key;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The locations and a store for each.
#[derive(Debug)]
pub struct Blobs {
    locations: Locations,
    stores: Vec<Store>,
}

/// Whether a put waits for its object to reach the disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the object and its directory before a put returns: an object acknowledged
    /// survives a power cut (the default of a server, whose database syncs too).
    Synced,
    /// Leave writes in the page cache (tests, benchmarks, scratch data).
    Cached,
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Bytes of plaintext read from the stream.
    pub plaintext_bytes: u64,
    /// Bytes written to the store: the header, the ciphertext and a 16-byte tag per chunk.
    pub stored_bytes: u64,
    /// SHA-256 of the plaintext, 64 lowercase hex digits.
    pub sha256: String,
}

/// An object found by [`Blobs::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub path: String,
    /// Its size in the store (encrypted).
    pub stored_bytes: u64,
}

#[derive(Debug)]
struct Store {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local location: where [`Blobs::sweep_staging`] looks.
    dir: PathBuf,
}

impl Blobs {
    /// Opens a store for every location, creating the directories of local ones.
    pub fn new(locations: Locations, durability: Durability) -> Result<Blobs, BlobError> {
        let mut stores = Vec::with_capacity(locations.list().len());
        for location in locations.list() {
            let dir = location.local_dir()?;
            create_dir(&dir)?;
            let store = LocalFileSystem::new_with_prefix(&dir)?
                .with_fsync(durability == Durability::Synced);
            stores.push(Store {
                store: Arc::new(store),
                dir,
            });
        }
        Ok(Blobs { locations, stores })
    }

    /// The locations, the default first.
    pub fn locations(&self) -> &Locations {
        &self.locations
    }

    /// Encrypts `plaintext` under a fresh data key, wrapped by `tenant_key` (named `key_id` in
    /// the object's header), and stores it at `path` in `location`, replacing what was there.
    ///
    /// Refuses with [`BlobError::Residency`] before reading or writing anything when `policy`
    /// does not allow the location's jurisdiction. The object becomes visible whole once every
    /// part is written; if the stream fails or anything else does, the upload is aborted and
    /// nothing appears at `path` (a process killed meanwhile leaves a staging file that
    /// [`Blobs::sweep_staging`] removes).
    #[tracing::instrument(skip_all, fields(%location, %path, %key_id))]
    pub async fn put<S, E>(
        &self,
        location: &str,
        path: &str,
        policy: &ResidencyPolicy,
        key_id: &str,
        tenant_key: &Key,
        plaintext: S,
    ) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let (place, store) = self.find(location)?;
        if !policy.allows(&place.jurisdiction) {
            return Err(BlobError::Residency {
                location: place.name.clone(),
                jurisdiction: place.jurisdiction,
                policy: policy.clone(),
            });
        }
        let object = object_path(path)?;
        let stored =
            write::put(store.store.as_ref(), &object, key_id, tenant_key, plaintext).await?;
        tracing::debug!(
            plaintext_bytes = stored.plaintext_bytes,
            stored_bytes = stored.stored_bytes,
            "stored an object"
        );
        Ok(stored)
    }

    /// Opens the object at `path` in `location`: reads its header, asks `key` for the tenant
    /// key its key id names (an error there, such as "key destroyed", becomes
    /// [`BlobError::Key`]), and returns its plaintext as a stream.
    ///
    /// Each piece the stream yields has been authenticated, but a stream cut short or changed
    /// is known only when the stream reaches the damage: the content is whole and genuine only
    /// if the stream ends without an error.
    #[tracing::instrument(skip_all, fields(%location, %path))]
    pub async fn open<F, E2>(
        &self,
        location: &str,
        path: &str,
        key: F,
    ) -> Result<PlaintextStream, BlobError>
    where
        F: FnOnce(&str) -> Result<Key, E2>,
        E2: Display,
    {
        let (place, store) = self.find(location)?;
        let object = object_path(path)?;
        read::open(store.store.as_ref(), &object, key)
            .await
            .map_err(|e| not_found(e, place, path))
    }

    /// Deletes the object at `path` in `location`; deleting what is not there is not an error.
    pub async fn delete(&self, location: &str, path: &str) -> Result<(), BlobError> {
        let (_, store) = self.find(location)?;
        match store.store.delete(&object_path(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object under `prefix` (whole path segments: `a/b` holds `a/b/c`, not `a/bc`; empty
    /// for all) in `location`, in no particular order. Staging files are not objects.
    pub async fn list(&self, location: &str, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        let (_, store) = self.find(location)?;
        let prefix = parse_path(prefix)?;
        let prefix = (!prefix.is_root()).then_some(prefix);
        store
            .store
            .list(prefix.as_ref())
            .map_ok(|meta| ObjectInfo {
                path: meta.location.to_string(),
                stored_bytes: meta.size,
            })
            .try_collect()
            .await
            .map_err(BlobError::from)
    }

    /// Removes the staging files that uploads left behind in local locations when their process
    /// was killed (or their completion failed), if last modified more than `older_than` ago; a
    /// server calls it at start. Returns how many it removed.
    ///
    /// A staging file is named after its object with `#` and digits appended (`a/b#1`), a name
    /// no object can have. Pass `Duration::ZERO` when no other process writes to these
    /// directories; otherwise the age keeps a live upload of another server safe.
    pub async fn sweep_staging(&self, older_than: Duration) -> Result<u64, BlobError> {
        let dirs: Vec<PathBuf> = self.stores.iter().map(|s| s.dir.clone()).collect();
        let removed = blocking(move || {
            let before = SystemTime::now()
                .checked_sub(older_than)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let mut removed = 0;
            for dir in dirs {
                removed += sweep(&dir, before)?;
            }
            Ok(removed)
        })
        .await?;
        if removed > 0 {
            tracing::info!(removed, "removed abandoned staging files");
        }
        Ok(removed)
    }

    fn find(&self, name: &str) -> Result<(&Location, &Store), BlobError> {
        self.locations
            .list()
            .iter()
            .zip(&self.stores)
            .find(|(location, _)| location.name == name)
            .ok_or_else(|| BlobError::UnknownLocation(name.to_owned()))
    }
}

/// The path of an object: not empty, no empty, `.` or `..` segment.
fn object_path(path: &str) -> Result<Path, BlobError> {
    let parsed = parse_path(path)?;
    if parsed.is_root() {
        return Err(BlobError::BadPath {
            path: path.to_owned(),
            reason: "it is empty".to_owned(),
        });
    }
    Ok(parsed)
}

fn parse_path(path: &str) -> Result<Path, BlobError> {
    Path::parse(path).map_err(|e| BlobError::BadPath {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn not_found(error: BlobError, location: &Location, path: &str) -> BlobError {
    match error {
        BlobError::Store(object_store::Error::NotFound { .. }) => BlobError::NotFound {
            location: location.name.clone(),
            path: path.to_owned(),
        },
        other => other,
    }
}

/// Removes staging files under `dir` last modified before `before`; follows no symlink.
fn sweep(dir: &std::path::Path, before: SystemTime) -> Result<u64, BlobError> {
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

    #[test]
    fn object_paths_are_checked() {
        assert_eq!(object_path("a/b").unwrap().as_ref(), "a/b");
        for bad in ["", "/", "a//b", "a/../b", "./a"] {
            assert!(
                matches!(object_path(bad), Err(BlobError::BadPath { .. })),
                "{bad}"
            );
        }
    }
}
