//! The certificate of a crypto-shredding: which tenant's keys were destroyed, when, how many
//! objects they sealed, and where the audit log stood, signed with the log's Ed25519 key. It is
//! canonical JSON, so that anyone holding the public key can check it byte for byte.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// What a deletion destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    pub tenant: String,
    /// Ids of the keys destroyed (the tenant's key, each version, any key it brought).
    pub keys: Vec<String>,
    pub at_ms: i64,
    /// Objects whose data keys those keys sealed: none of them can be decrypted any more.
    pub objects: u64,
    /// The audit entry that records the deletion, and the hash of its line.
    pub audit_seq: u64,
    pub audit_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    deletion: Deletion,
    sig: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    #[error("the certificate is not a lutece deletion certificate")]
    Malformed,
    #[error("the certificate was edited: it is not in canonical form")]
    Edited,
    #[error("the certificate's signature does not verify with this key")]
    Signature,
}

fn message(deletion: &Deletion) -> Result<Vec<u8>, CertificateError> {
    let mut message = b"lutece deletion certificate\n".to_vec();
    message.extend(serde_json::to_vec(deletion).map_err(|_| CertificateError::Malformed)?);
    Ok(message)
}

/// Signs `deletion`: the certificate's text.
pub fn issue(deletion: &Deletion, key: &SigningKey) -> Result<String, CertificateError> {
    let sig = key.sign(&message(deletion)?);
    let signed = Signed {
        deletion: deletion.clone(),
        sig: hex::encode(sig.to_bytes()),
    };
    serde_json::to_string(&signed).map_err(|_| CertificateError::Malformed)
}

/// Checks a certificate's text against the log's public key; returns what it certifies.
pub fn verify(text: &str, key: &VerifyingKey) -> Result<Deletion, CertificateError> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let signed: Signed = serde_json::from_str(text).map_err(|_| CertificateError::Malformed)?;
    if serde_json::to_string(&signed).ok().as_deref() != Some(text) {
        return Err(CertificateError::Edited);
    }
    let sig = crate::audit::signature(&signed.sig).ok_or(CertificateError::Malformed)?;
    key.verify(&message(&signed.deletion)?, &sig)
        .map_err(|_| CertificateError::Signature)?;
    Ok(signed.deletion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deletion() -> Deletion {
        Deletion {
            tenant: "acme".into(),
            keys: vec!["tenant:acme:1".into(), "byok:acme:hsm-7".into()],
            at_ms: 1_764_000_000_000,
            objects: 1234,
            audit_seq: 99,
            audit_hash: "ab".repeat(32),
        }
    }

    #[test]
    fn a_certificate_verifies_and_any_edit_breaks_it() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let text = issue(&deletion(), &key).unwrap();
        assert_eq!(verify(&text, &key.verifying_key()), Ok(deletion()));
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        assert_eq!(verify(&text, &other), Err(CertificateError::Signature));
        let fewer = text.replace("\"objects\":1234", "\"objects\":1233");
        assert_eq!(
            verify(&fewer, &key.verifying_key()),
            Err(CertificateError::Signature)
        );
        let spaced = text.replacen(':', ": ", 1);
        assert_eq!(
            verify(&spaced, &key.verifying_key()),
            Err(CertificateError::Edited)
        );
        // The signature with one letter in upper case: the same bytes, but not what was issued.
        let at = text.rfind(|c: char| ('a'..='f').contains(&c)).unwrap();
        let mut shouted = text.clone();
        shouted.replace_range(at..at + 1, &text[at..at + 1].to_uppercase());
        assert_eq!(
            verify(&shouted, &key.verifying_key()),
            Err(CertificateError::Malformed)
        );
        for cut in [0, 10, text.len() - 1] {
            assert!(verify(&text[..cut], &key.verifying_key()).is_err());
        }
    }
}
