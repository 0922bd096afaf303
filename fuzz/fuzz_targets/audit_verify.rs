//! Any bytes given to the audit-export verifier give a verdict, never a panic.
#![no_main]

use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
    let _ = lutece_vault::audit::verify(data, &key, None);
    let _ = lutece_vault::audit::verify(data, &key, Some("acme"));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lutece_vault::certificate::verify(text, &key);
    }
});
