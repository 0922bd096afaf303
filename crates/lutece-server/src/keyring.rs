//! The key hierarchy. The operator's root key (from a file or the environment) seals each
//! tenant's keys, which the store keeps only sealed; a tenant's active key seals the fresh data
//! key of each object it stores (in the object's header, by `lutece-vault`'s stream). The root
//! key also seals the audit log's signing key. Destroying a tenant key overwrites its sealed
//! copy: every object it sealed is unreadable from then on.

use crate::error::ApiError;
use crate::state::now_ms;
use ed25519_dalek::SigningKey;
use lutece_store::{EncryptionKeyRow, Store, StoreError};
use lutece_vault::{Key, unwrap, wrap};
use sha2::{Digest, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

/// Where the root key comes from: `LUTECE_ROOT_KEY` (64 hex digits) or a file holding them.
#[derive(Clone)]
pub enum RootKey {
    /// The key itself, hex (from the environment).
    Hex(String),
    /// A file holding the hex; made, readable by its owner only, if it does not exist and the
    /// data directory is new.
    File(std::path::PathBuf),
}

/// Never prints the key.
impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootKey::Hex(_) => f.write_str("RootKey::Hex(…)"),
            RootKey::File(path) => f.debug_tuple("RootKey::File").field(path).finish(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the root key {0}")]
    Root(String),
    #[error(
        "the root key does not open this data directory's keys: it is not the key they were sealed with"
    )]
    WrongRoot,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Tenant keys, sealed under the root key.
pub(crate) struct Keyring {
    root: Key,
    store: Store,
    /// Held while a tenant's first key is made, so that two uploads make one.
    making: tokio::sync::Mutex<()>,
}

const CHECK: &str = "root_key_check";
const AUDIT_KEY: &str = "audit_signing_key";

impl Keyring {
    /// Reads the root key and checks it against the one this store was sealed with (the first
    /// start seals a random key as the check).
    pub(crate) async fn open(source: &RootKey, store: Store) -> Result<Keyring, KeyringError> {
        let check = store.meta(CHECK).await?;
        // A missing key file is made only for a new data directory: for one whose keys are
        // sealed already, a new key would open nothing.
        let root = read_root(source, check.is_none())?;
        let keyring = Keyring {
            root,
            store,
            making: tokio::sync::Mutex::new(()),
        };
        keyring.sealed_meta(CHECK).await?;
        Ok(keyring)
    }

    /// The audit log's Ed25519 key, made and sealed on first use.
    pub(crate) async fn audit_signing_key(&self) -> Result<SigningKey, KeyringError> {
        let seed = self.sealed_meta(AUDIT_KEY).await?;
        Ok(SigningKey::from_bytes(seed.expose()))
    }

    /// The key kept sealed under the root key in `meta` as `name`, made and sealed if absent;
    /// one that does not open under this root key is [`KeyringError::WrongRoot`].
    async fn sealed_meta(&self, name: &str) -> Result<Key, KeyringError> {
        if let Some(sealed) = self.store.meta(name).await? {
            let sealed = hex::decode(sealed).map_err(|_| KeyringError::WrongRoot)?;
            return unwrap(&self.root, &sealed, name.as_bytes())
                .map_err(|_| KeyringError::WrongRoot);
        }
        let key = Key::generate().map_err(|e| KeyringError::Root(e.to_string()))?;
        let sealed = wrap(&self.root, &key, name.as_bytes())
            .map_err(|e| KeyringError::Root(e.to_string()))?;
        self.store.set_meta(name, &hex::encode(sealed)).await?;
        Ok(key)
    }

    /// The tenant's key that seals new data (see [`sealing`]), made if it has none.
    pub(crate) async fn active(&self, tenant_id: &str) -> Result<(String, Key), ApiError> {
        let mut keys = self.store.encryption_keys(tenant_id).await?;
        if matches!(sealing(&keys), Sealing::NoKeyYet) {
            // Two first uploads at once make one key: the second finds the first's.
            let _making = self.making.lock().await;
            keys = self.store.encryption_keys(tenant_id).await?;
            if matches!(sealing(&keys), Sealing::NoKeyYet) {
                keys.push(self.add(tenant_id, None).await?);
            }
        }
        let row = match sealing(&keys) {
            Sealing::By(row) => row,
            Sealing::Revoked(revoked) => {
                return Err(ApiError::Forbidden(format!(
                    "the tenant's own key {} was revoked; bring another (or rotate to a managed \
                     key) before storing data",
                    revoked.id
                )));
            }
            Sealing::NoKeyYet => return Err(ApiError::Internal("no key was made".into())),
        };
        Ok((row.id.clone(), self.unseal(row)?))
    }

    /// A new key for the tenant, made here (`material` None) or brought by it; it seals new
    /// data from now on.
    pub(crate) async fn add(
        &self,
        tenant_id: &str,
        material: Option<Key>,
    ) -> Result<EncryptionKeyRow, ApiError> {
        let id = crate::auth::new_id("ek")?;
        let (kind, fingerprint, key) = match material {
            Some(key) => {
                let digest = hex::encode(Sha256::digest(key.expose()));
                ("customer", Some(digest[..16].to_owned()), key)
            }
            None => (
                "managed",
                None,
                Key::generate().map_err(|e| ApiError::Internal(e.to_string()))?,
            ),
        };
        let sealed =
            wrap(&self.root, &key, &purpose(&id)).map_err(|e| ApiError::Internal(e.to_string()))?;
        let row = EncryptionKeyRow {
            id,
            tenant_id: tenant_id.to_owned(),
            kind: kind.to_owned(),
            wrapped: Some(sealed.to_vec()),
            fingerprint,
            created_at: now_ms(),
            destroyed_at: None,
            objects: 0,
        };
        self.store.insert_encryption_key(&row).await?;
        Ok(row)
    }

    /// The key `key_id` of `tenant_id`, to open an object it sealed; gone for good once
    /// destroyed.
    pub(crate) async fn get(&self, tenant_id: &str, key_id: &str) -> Result<Key, ApiError> {
        let row = self
            .store
            .encryption_key(key_id)
            .await?
            .filter(|row| row.tenant_id == tenant_id)
            .ok_or_else(|| {
                ApiError::Gone(format!(
                    "the key {key_id} that sealed this data does not exist"
                ))
            })?;
        self.unseal(&row)
    }

    fn unseal(&self, row: &EncryptionKeyRow) -> Result<Key, ApiError> {
        let Some(sealed) = &row.wrapped else {
            return Err(ApiError::Gone(format!(
                "the key {} that sealed this data was destroyed: it can never be read again",
                row.id
            )));
        };
        unwrap(&self.root, sealed, &purpose(&row.id))
            .map_err(|_| ApiError::Internal(format!("the key {} does not open", row.id)))
    }
}

/// Which of a tenant's keys seals its new data.
pub(crate) enum Sealing<'a> {
    /// The newest key not destroyed.
    By(&'a EncryptionKeyRow),
    /// It has none yet (or every one is destroyed): a managed key is made.
    NoKeyYet,
    /// Its newest key is one it brought and revoked: it stores nothing until it brings or
    /// rotates to another, so its data is never sealed under a key it did not choose.
    Revoked(&'a EncryptionKeyRow),
}

/// Which of `keys` (a tenant's, oldest first) seals its new data.
pub(crate) fn sealing(keys: &[EncryptionKeyRow]) -> Sealing<'_> {
    match keys.last() {
        Some(newest) if newest.kind == "customer" && newest.destroyed_at.is_some() => {
            Sealing::Revoked(newest)
        }
        _ => keys
            .iter()
            .rev()
            .find(|k| k.destroyed_at.is_none())
            .map_or(Sealing::NoKeyYet, Sealing::By),
    }
}

/// What a tenant key's seal is bound to: its id, so a sealed key cannot pass for another.
fn purpose(key_id: &str) -> Vec<u8> {
    format!("lutece tenant key {key_id}").into_bytes()
}

fn read_root(source: &RootKey, may_make: bool) -> Result<Key, KeyringError> {
    let text = Zeroizing::new(match source {
        RootKey::Hex(text) => text.clone(),
        RootKey::File(path) => read_or_make(path, may_make)?,
    });
    let unusable = || KeyringError::Root("must be 64 hex digits (256 bits)".into());
    let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| unusable())?);
    Key::from_bytes(&bytes).map_err(|_| unusable())
}

fn read_or_make(path: &Path, may_make: bool) -> Result<String, KeyringError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !may_make => {
            Err(KeyringError::Root(format!(
                "file {} does not exist, and this data directory's keys are sealed under a root \
                 key: give the file that holds it",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Key::generate().map_err(|e| KeyringError::Root(e.to_string()))?;
            let text = hex::encode(key.expose());
            write_private(path, &text).map_err(|e| {
                KeyringError::Root(format!("file {} cannot be made: {e}", path.display()))
            })?;
            tracing::info!(path = %path.display(), "made a new root key; keep a copy apart from the data");
            Ok(text)
        }
        Err(e) => Err(KeyringError::Root(format!(
            "file {} cannot be read: {e}",
            path.display()
        ))),
    }
}

/// Writes a file only its owner can read, whole or not at all.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&partial)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_data_directory_opens_only_with_the_root_key_it_was_sealed_with() {
        let dir = std::env::temp_dir().join(format!("lutece-keyring-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("lutece.db")).await.unwrap();
        let tenant = lutece_store::TenantRow {
            id: "ten_a".into(),
            name: "a".into(),
            created_at: 0,
        };
        store.create_tenant(&tenant).await.unwrap();
        let file = RootKey::File(dir.join("root.key"));
        // The first start makes the key file, and seals the audit key under it.
        let first = Keyring::open(&file, store.clone()).await.unwrap();
        let signing = first.audit_signing_key().await.unwrap();
        let (key_id, key) = first.active("ten_a").await.unwrap();
        drop(first);
        // Another root key, given or missing, opens nothing and makes nothing.
        let other = RootKey::Hex("11".repeat(32));
        assert!(matches!(
            Keyring::open(&other, store.clone()).await,
            Err(KeyringError::WrongRoot)
        ));
        let missing = RootKey::File(dir.join("elsewhere.key"));
        assert!(matches!(
            Keyring::open(&missing, store.clone()).await,
            Err(KeyringError::Root(_))
        ));
        assert!(!dir.join("elsewhere.key").exists());
        // The right one opens the same keys.
        let again = Keyring::open(&file, store.clone()).await.unwrap();
        assert_eq!(
            again.audit_signing_key().await.unwrap().to_bytes(),
            signing.to_bytes()
        );
        assert_eq!(
            again.get("ten_a", &key_id).await.unwrap().expose(),
            key.expose()
        );
        // Nor does the key print.
        assert_eq!(format!("{other:?}"), "RootKey::Hex(…)");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
