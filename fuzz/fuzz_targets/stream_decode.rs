//! Any bytes given to the encrypted-object decoder give plaintext or an error, never a panic;
//! and only an untouched object decrypts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lutece_vault::Key;
use lutece_vault::stream::{Decryptor, Header, decrypt};

fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes(&[7; 32]).expect("a key");
    let _ = decrypt(|_| Some(key.clone()), data);
    // Streamed in uneven pieces too, as an upload arrives.
    if let Ok(Some((header, at))) = Header::parse(data) {
        if let Ok(mut decryptor) = Decryptor::new(&key, &header) {
            let mut out = Vec::new();
            let mut ok = true;
            for piece in data[at..].chunks(1 + data.len() % 97) {
                ok &= decryptor.update(piece, &mut out).is_ok();
            }
            if ok {
                let _ = decryptor.finish(&mut out);
            }
        }
    }
});
