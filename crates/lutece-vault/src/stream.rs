//! An object encrypted in chunks under a fresh data key (the STREAM construction):
//!
//! ```text
//! header  "LTV1" | chunk size as a power of two (u8) | nonce prefix (7 bytes)
//!         | key id length (u16, big-endian) | key id | data key wrapped under that key (60)
//! chunks  AES-256-GCM(data key, nonce = prefix | chunk index (u32 BE) | last (u8),
//!                     associated data = SHA-256 of the header) — each a full chunk, the
//!         last one 0 to a full chunk, each followed by its 16-byte tag
//! ```
//!
//! The index in the nonce catches reordered and dropped chunks, the last-chunk flag a stream
//! cut off at a chunk boundary, the header hash a header swapped between objects. Encrypting
//! and decrypting hold at most two chunks in memory.

use crate::key::{Key, KeyError, WRAPPED_LEN, random_bytes, unwrap, wrap};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"LTV1";
const PREFIX_LEN: usize = 7;
const TAG_LEN: usize = 16;
/// Chunk sizes allowed, as powers of two: 1 KiB to 16 MiB.
pub const CHUNK_LOG2: std::ops::RangeInclusive<u8> = 10..=24;
/// The chunk size lutece writes: 64 KiB.
pub const DEFAULT_CHUNK_LOG2: u8 = 16;
const MAX_KEY_ID: usize = 255;

/// Why a stream could not be encrypted or decrypted. Decoding corrupt input gives one of
/// these, never a panic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("not a lutece encrypted object (bad magic)")]
    Magic,
    #[error("the header is cut off")]
    ShortHeader,
    #[error("chunk size 2^{0} is outside 2^10 to 2^24")]
    ChunkSize(u8),
    #[error("a key id is at most {MAX_KEY_ID} bytes of UTF-8")]
    KeyId,
    #[error("chunk {0} does not decrypt: the object was changed, reordered or cut")]
    Chunk(u32),
    #[error("the object ends without its last chunk: it was cut off")]
    Truncated,
    #[error("the object is too large for one stream")]
    TooLarge,
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The parsed header of an encrypted object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Which key wrapped the data key (for example a tenant key's id and version).
    pub key_id: String,
    chunk_log2: u8,
    prefix: [u8; PREFIX_LEN],
    wrapped: [u8; WRAPPED_LEN],
    /// SHA-256 of the header's bytes: every chunk is bound to it.
    digest: [u8; 32],
}

impl Header {
    fn encode(
        key_id: &str,
        chunk_log2: u8,
        prefix: [u8; PREFIX_LEN],
        wrapped: [u8; WRAPPED_LEN],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 1 + PREFIX_LEN + 2 + key_id.len() + WRAPPED_LEN);
        out.extend_from_slice(MAGIC);
        out.push(chunk_log2);
        out.extend_from_slice(&prefix);
        out.extend_from_slice(&(key_id.len() as u16).to_be_bytes());
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(&wrapped);
        out
    }

    /// Parses the header at the start of `bytes`: the header and its length, `Ok(None)` when
    /// more bytes are needed to tell.
    pub fn parse(bytes: &[u8]) -> Result<Option<(Header, usize)>, StreamError> {
        let fixed = 4 + 1 + PREFIX_LEN + 2;
        if bytes.len() < 4 {
            return if MAGIC.starts_with(bytes) {
                Ok(None)
            } else {
                Err(StreamError::Magic)
            };
        }
        if &bytes[..4] != MAGIC {
            return Err(StreamError::Magic);
        }
        if bytes.len() < fixed {
            return Ok(None);
        }
        let chunk_log2 = bytes[4];
        if !CHUNK_LOG2.contains(&chunk_log2) {
            return Err(StreamError::ChunkSize(chunk_log2));
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&bytes[5..5 + PREFIX_LEN]);
        let id_len = usize::from(u16::from_be_bytes([bytes[fixed - 2], bytes[fixed - 1]]));
        if id_len > MAX_KEY_ID {
            return Err(StreamError::KeyId);
        }
        let end = fixed + id_len + WRAPPED_LEN;
        if bytes.len() < end {
            return Ok(None);
        }
        let key_id = std::str::from_utf8(&bytes[fixed..fixed + id_len])
            .map_err(|_| StreamError::KeyId)?
            .to_owned();
        let mut wrapped = [0u8; WRAPPED_LEN];
        wrapped.copy_from_slice(&bytes[fixed + id_len..end]);
        let digest = Sha256::digest(&bytes[..end]).into();
        Ok(Some((
            Header {
                key_id,
                chunk_log2,
                prefix,
                wrapped,
                digest,
            },
            end,
        )))
    }

    fn chunk(&self) -> usize {
        1 << self.chunk_log2
    }
}

/// Which way a stream goes through the cipher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Plaintext chunks in, sealed chunks out.
    Seal,
    /// Sealed chunks (a chunk and its tag) in, plaintext out once authenticated.
    Open,
}

/// What both directions share: the data key's cipher and where the stream is.
struct Sealer {
    way: Way,
    cipher: Aes256Gcm,
    prefix: [u8; PREFIX_LEN],
    digest: [u8; 32],
    index: u32,
    chunk: usize,
    buffer: Vec<u8>,
}

impl Sealer {
    fn nonce(&self, last: bool) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..PREFIX_LEN].copy_from_slice(&self.prefix);
        nonce[PREFIX_LEN..PREFIX_LEN + 4].copy_from_slice(&self.index.to_be_bytes());
        nonce[11] = u8::from(last);
        nonce
    }

    /// Seals or opens the buffered chunk, and moves to the next index.
    fn process(&mut self, last: bool) -> Result<Vec<u8>, StreamError> {
        let nonce = self.nonce(last);
        let payload = Payload {
            msg: &self.buffer,
            aad: &self.digest,
        };
        let nonce = Nonce::from_slice(&nonce);
        let done = match self.way {
            Way::Seal => self.cipher.encrypt(nonce, payload),
            Way::Open => self.cipher.decrypt(nonce, payload),
        }
        .map_err(|_| StreamError::Chunk(self.index))?;
        self.index = self.index.checked_add(1).ok_or(StreamError::TooLarge)?;
        Ok(done)
    }

    /// Takes more input; appends to `out` what every chunk now known not to be the last
    /// becomes. A full chunk is processed only once a byte after it exists.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        let full = match self.way {
            Way::Seal => self.chunk,
            Way::Open => self.chunk + TAG_LEN,
        };
        while !input.is_empty() {
            if self.buffer.len() == full {
                let done = self.process(false)?;
                out.extend_from_slice(&done);
                self.buffer.clear();
            }
            let take = (full - self.buffer.len()).min(input.len());
            self.buffer.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }
}

/// Encrypts one object as it streams through.
pub struct Encryptor(Sealer);

impl Encryptor {
    /// Starts an object under a fresh data key wrapped by `key` (named `key_id` in the header),
    /// in chunks of 2^`chunk_log2` bytes. Returns the encryptor and the header to write first.
    pub fn new(
        key: &Key,
        key_id: &str,
        chunk_log2: u8,
    ) -> Result<(Encryptor, Vec<u8>), StreamError> {
        if !CHUNK_LOG2.contains(&chunk_log2) {
            return Err(StreamError::ChunkSize(chunk_log2));
        }
        if key_id.len() > MAX_KEY_ID {
            return Err(StreamError::KeyId);
        }
        let data_key = Key::generate()?;
        let prefix: [u8; PREFIX_LEN] = random_bytes()?;
        let wrapped = wrap(key, &data_key, &purpose(&prefix))?;
        let header = Header::encode(key_id, chunk_log2, prefix, wrapped);
        let digest = Sha256::digest(&header).into();
        let sealer = Sealer {
            way: Way::Seal,
            cipher: data_key.cipher(),
            prefix,
            digest,
            index: 0,
            chunk: 1 << chunk_log2,
            buffer: Vec::with_capacity((1 << chunk_log2) + 1),
        };
        Ok((Encryptor(sealer), header))
    }

    /// Takes more plaintext; appends to `out` every chunk now known not to be the last.
    pub fn update(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        self.0.feed(plaintext, out)
    }

    /// Seals the last chunk (possibly empty) into `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        let sealed = self.0.process(true)?;
        out.extend_from_slice(&sealed);
        self.0.buffer.fill(0);
        Ok(())
    }
}

fn purpose(prefix: &[u8; PREFIX_LEN]) -> Vec<u8> {
    let mut purpose = b"lutece data key ".to_vec();
    purpose.extend_from_slice(prefix);
    purpose
}

/// Decrypts one object as it streams through.
pub struct Decryptor(Sealer);

impl Decryptor {
    /// Opens the object whose parsed header is `header` with `key` (the key its `key_id`
    /// names): fails at once if the key is not the one that wrapped the data key.
    pub fn new(key: &Key, header: &Header) -> Result<Decryptor, StreamError> {
        let data_key = unwrap(key, &header.wrapped, &purpose(&header.prefix))?;
        Ok(Decryptor(Sealer {
            way: Way::Open,
            cipher: data_key.cipher(),
            prefix: header.prefix,
            digest: header.digest,
            index: 0,
            chunk: header.chunk(),
            buffer: Vec::with_capacity(header.chunk() + TAG_LEN + 1),
        }))
    }

    /// Takes more of the object after its header; appends to `out` the plaintext of every
    /// chunk now known not to be the last, once it has been authenticated.
    pub fn update(&mut self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
        self.0.feed(ciphertext, out)
    }

    /// Opens the last chunk into `out`: fails if the object was cut off.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), StreamError> {
        if self.0.buffer.len() < TAG_LEN {
            return Err(StreamError::Truncated);
        }
        match self.0.process(true) {
            Ok(opened) => {
                out.extend_from_slice(&opened);
                Ok(())
            }
            // A full chunk that does not open as the last one was a middle chunk: what
            // followed it is missing.
            Err(_) if self.0.buffer.len() == self.0.chunk + TAG_LEN => Err(StreamError::Truncated),
            Err(e) => Err(e),
        }
    }
}

/// Encrypts `plaintext` whole (tests, small objects).
pub fn encrypt(
    key: &Key,
    key_id: &str,
    chunk_log2: u8,
    plaintext: &[u8],
) -> Result<Vec<u8>, StreamError> {
    let (mut encryptor, mut out) = Encryptor::new(key, key_id, chunk_log2)?;
    encryptor.update(plaintext, &mut out)?;
    encryptor.finish(&mut out)?;
    Ok(out)
}

/// Decrypts a whole object, finding its key by the id in its header.
pub fn decrypt(
    key_of: impl Fn(&str) -> Option<Key>,
    object: &[u8],
) -> Result<Vec<u8>, StreamError> {
    let (header, at) = Header::parse(object)?.ok_or(StreamError::ShortHeader)?;
    let key = key_of(&header.key_id).ok_or(KeyError::Unwrap)?;
    let mut decryptor = Decryptor::new(&key, &header)?;
    let mut out = Vec::new();
    decryptor.update(&object[at..], &mut out)?;
    decryptor.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
