//! The locations with their stores, and what can be done with an object in one.

use crate::read::{self, PlaintextStream};
use crate::stores::{self, Store};
use crate::{BlobError, Location, Locations, blocking, store_error, write};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use lutece_core::residency::ResidencyPolicy;
use lutece_vault::Key;
use object_store::path::Path;
use std::fmt::Display;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The locations and a store for each.
#[derive(Debug)]
pub struct Blobs {
    locations: Locations,
    stores: Vec<Store>,
}

/// Whether a put to a local location waits for its object to reach the disk before it returns
/// (an S3-compatible store acknowledges an upload once it is durable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the object and its directories before a put returns: an object acknowledged
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

impl Blobs {
    /// Opens a store for every location, creating the directories of local ones and
    /// configuring S3 ones from the process's `AWS_*` environment variables (see
    /// [`Locations::parse`]). Nothing is sent to an S3-compatible store yet: a bucket that does
    /// not exist or refuses the credentials fails the first operation on it.
    pub fn new(locations: Locations, durability: Durability) -> Result<Blobs, BlobError> {
        Blobs::with_env(locations, durability, stores::aws_env())
    }

    /// [`Blobs::new`], with S3 locations configured from the `AWS_*` variables of `env` in
    /// place of the process's environment (tests; a configuration read from elsewhere).
    pub fn with_env(
        locations: Locations,
        durability: Durability,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Blobs, BlobError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let stores = locations
            .list()
            .iter()
            .map(|location| Store::open(location, durability, &env))
            .collect::<Result<_, _>>()?;
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
    /// nothing appears at `path` (a process killed meanwhile leaves, in a local location, a
    /// staging file that [`Blobs::sweep_staging`] removes; in a bucket, an upload never
    /// completed, which is never listed).
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
        let name = &place.name;
        let stored = write::put(
            store.store.as_ref(),
            name,
            &object,
            key_id,
            tenant_key,
            plaintext,
        )
        .await?;
        store.sync(name, &object).await?;
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
        read::open(store.store.as_ref(), &place.name, &object, key)
            .await
            .map_err(|e| not_found(e, place, path))
    }

    /// Deletes the object at `path` in `location`; deleting what is not there is not an error.
    pub async fn delete(&self, location: &str, path: &str) -> Result<(), BlobError> {
        let (place, store) = self.find(location)?;
        match store.store.delete(&object_path(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(&place.name)(e)),
        }
    }

    /// Every object under `prefix` (whole path segments: `a/b` holds `a/b/c`, not `a/bc`; empty
    /// for all) in `location`, in no particular order. Staging files are not objects.
    pub async fn list(&self, location: &str, prefix: &str) -> Result<Vec<ObjectInfo>, BlobError> {
        let (place, store) = self.find(location)?;
        let prefix = parse_path(prefix)?;
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        store
            .store
            .list(prefix.as_ref())
            .map_ok(|meta| ObjectInfo {
                path: meta.location.to_string(),
                stored_bytes: meta.size,
            })
            .try_collect()
            .await
            .map_err(store_error(&place.name))
    }

    /// Removes the staging files that uploads left behind in local locations when their process
    /// was killed (or their completion failed), if last modified more than `older_than` ago; a
    /// server calls it at start. Returns how many it removed.
    ///
    /// A staging file is named after its object with `#` and digits appended (`a/b#1`), a name
    /// no object can have. Pass `Duration::ZERO` when no other process writes to these
    /// directories; otherwise the age keeps a live upload of another server safe.
    ///
    /// A bucket has nothing to sweep here: the parts of an upload never completed are never
    /// listed nor read, and object_store cannot list such uploads. The store keeps (and bills)
    /// them until a lifecycle rule on the bucket, "abort incomplete multipart uploads" after a
    /// day or so, reclaims them: give every bucket one.
    pub async fn sweep_staging(&self, older_than: Duration) -> Result<u64, BlobError> {
        let dirs: Vec<PathBuf> = self.stores.iter().filter_map(Store::staging_dir).collect();
        let removed = blocking(move || {
            let before = SystemTime::now()
                .checked_sub(older_than)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let mut removed = 0;
            for dir in dirs {
                removed += stores::sweep(&dir, before)?;
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
    if parsed.as_ref().is_empty() {
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
        BlobError::Store {
            source: object_store::Error::NotFound { .. },
            ..
        } => BlobError::NotFound {
            location: location.name.clone(),
            path: path.to_owned(),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
