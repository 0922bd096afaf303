//! 256-bit keys and key wrapping (AES-256-GCM, a fresh random nonce each time, the purpose of
//! the wrapped key bound in as associated data).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroize;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes of a wrapped key: nonce, sealed key, tag.
pub const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;

/// A 256-bit secret key. Its bytes are zeroized when it is dropped, and neither `Debug` nor any
/// error shows them.
#[derive(Clone)]
pub struct Key([u8; KEY_LEN]);

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

/// Why a key could not be made or unwrapped; never says anything about key bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a key is {KEY_LEN} bytes, not {0}")]
    Length(usize),
    #[error("a wrapped key is {WRAPPED_LEN} bytes, not {0}")]
    WrappedLength(usize),
    #[error("the wrapped key does not open with this key for this purpose")]
    Unwrap,
    #[error("the system's random source failed")]
    Random,
}

impl Key {
    /// A fresh key from the system's random source.
    pub fn generate() -> Result<Key, KeyError> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|_| KeyError::Random)?;
        Ok(Key(bytes))
    }

    /// A key from its bytes (a root key read from a file, a customer's key).
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyError> {
        let array: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len()))?;
        Ok(Key(array))
    }

    /// The key's bytes, for sealing it or handing it to a cipher; keep the borrow short.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| KeyError::Random)?;
    Ok(bytes)
}

/// Seals `key` under `kek` for `purpose` (for example `b"tenant-key:acme"`): unwrapping needs
/// the same key and the same purpose.
pub fn wrap(kek: &Key, key: &Key, purpose: &[u8]) -> Result<[u8; WRAPPED_LEN], KeyError> {
    let nonce: [u8; NONCE_LEN] = random_bytes()?;
    let sealed = kek
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: key.expose(),
                aad: purpose,
            },
        )
        .map_err(|_| KeyError::Unwrap)?;
    let mut out = [0u8; WRAPPED_LEN];
    out[..NONCE_LEN].copy_from_slice(&nonce);
    out[NONCE_LEN..].copy_from_slice(&sealed);
    Ok(out)
}

/// Opens a key sealed by [`wrap`].
pub fn unwrap(kek: &Key, wrapped: &[u8], purpose: &[u8]) -> Result<Key, KeyError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(KeyError::WrappedLength(wrapped.len()));
    }
    let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
    let mut opened = kek
        .cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: purpose,
            },
        )
        .map_err(|_| KeyError::Unwrap)?;
    let key = Key::from_bytes(&opened);
    opened.zeroize();
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_only_with_its_key_and_purpose() {
        let (root, tenant) = (Key::generate().unwrap(), Key::generate().unwrap());
        let sealed = wrap(&root, &tenant, b"tenant-key:acme").unwrap();
        let opened = unwrap(&root, &sealed, b"tenant-key:acme").unwrap();
        assert_eq!(opened.expose(), tenant.expose());
        let other = Key::generate().unwrap();
        assert_eq!(
            unwrap(&other, &sealed, b"tenant-key:acme").unwrap_err(),
            KeyError::Unwrap
        );
        assert_eq!(
            unwrap(&root, &sealed, b"tenant-key:evil").unwrap_err(),
            KeyError::Unwrap
        );
        for i in 0..WRAPPED_LEN {
            let mut bent = sealed;
            bent[i] ^= 1;
            assert_eq!(
                unwrap(&root, &bent, b"tenant-key:acme").unwrap_err(),
                KeyError::Unwrap
            );
        }
        assert_eq!(
            unwrap(&root, &sealed[1..], b"x").unwrap_err(),
            KeyError::WrappedLength(59)
        );
    }

    #[test]
    fn keys_never_print_their_bytes() {
        let key = Key::from_bytes(&[0xAB; KEY_LEN]).unwrap();
        assert_eq!(format!("{key:?}"), "Key(…)");
        assert_eq!(Key::from_bytes(&[1; 31]).unwrap_err(), KeyError::Length(31));
    }
}
