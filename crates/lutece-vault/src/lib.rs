//! Keys and cryptography for lutece's stored data, pure (no IO):
//!
//! - [`Key`]: a 256-bit key that is zeroized when dropped and never printed;
//! - [`wrap`] / [`unwrap`]: a key sealed under another (the operator's root key seals each
//!   tenant's key, a tenant's key seals each object's data key), bound to what it is for;
//! - [`stream`]: an object encrypted in chunks under a fresh data key, so that a file larger
//!   than memory passes through in bounded memory and no chunk can be changed, reordered,
//!   dropped or cut off unnoticed.
//!
//! - [`audit`]: the hash-chained audit log with signed checkpoints, and its verification;
//! - [`certificate`]: the signed certificate of a crypto-shredding.
//!
//! Destroying a tenant's key (crypto-shredding) leaves every data key it wrapped, and so every
//! byte it encrypted, unreadable.

pub mod audit;
pub mod certificate;
mod key;
pub mod stream;

pub use key::{KEY_LEN, Key, KeyError, WRAPPED_LEN, unwrap, wrap};
