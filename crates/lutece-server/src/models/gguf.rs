//! A GGUF file's structure checked without loading it: header, metadata and tensor table
//! parsed, and every tensor's data found inside the file. A truncated or corrupt download is
//! refused at import with the reason, not when a replica fails to start.

use std::io::{self, Read};

/// What the check learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GgufSummary {
    pub(crate) version: u32,
    pub(crate) tensors: u64,
}

/// Why a file is not a usable GGUF file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct GgufError(String);

fn bad(message: impl Into<String>) -> GgufError {
    GgufError(message.into())
}

/// Checks the GGUF file read by `reader`, which is `len` bytes long.
pub(crate) fn check(reader: impl Read, len: u64) -> Result<GgufSummary, GgufError> {
    let mut r = Cursor {
        inner: reader,
        position: 0,
        len,
    };
    let magic = r.bytes::<4>()?;
    if &magic != b"GGUF" {
        return Err(bad(format!(
            "is not a GGUF file: it starts with {magic:02x?}, not \"GGUF\""
        )));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(bad(format!(
            "is GGUF version {version}; versions 2 and 3 are supported"
        )));
    }
    let tensors = r.count("tensors", 8)?;
    let entries = r.count("metadata entries", 12)?;
    let mut alignment = 32u64;
    for _ in 0..entries {
        let key = r.string()?;
        let kind = r.u32()?;
        if key == b"general.alignment" && kind == U32 {
            alignment = u64::from(r.u32()?);
            if alignment == 0 || !alignment.is_power_of_two() {
                return Err(bad(format!(
                    "has general.alignment {alignment}, not a power of two"
                )));
            }
        } else {
            r.skip_value(kind)?;
        }
    }
    let mut data_end = 0u64;
    for i in 0..tensors {
        r.string()?;
        let dims = r.u32()?;
        if dims == 0 || dims > 8 {
            return Err(bad(format!("tensor {i} has {dims} dimensions")));
        }
        let mut elements = 1u64;
        let mut row = 0u64;
        for d in 0..dims {
            let n = r.u64()?;
            if d == 0 {
                row = n;
            }
            elements = elements
                .checked_mul(n)
                .ok_or_else(|| bad(format!("tensor {i} has more elements than fit in 64 bits")))?;
        }
        let kind = r.u32()?;
        let offset = r.u64()?;
        if offset % alignment != 0 {
            return Err(bad(format!(
                "tensor {i}'s data offset {offset} is not aligned to {alignment}"
            )));
        }
        let size = match block_of(kind) {
            Some((per_block, bytes)) if row % per_block == 0 => {
                (elements / per_block).saturating_mul(bytes)
            }
            Some((per_block, _)) => {
                return Err(bad(format!(
                    "tensor {i}'s rows of {row} do not divide into its type's blocks of {per_block}"
                )));
            }
            // A type this check does not know: only its start is checked.
            None => 0,
        };
        data_end = data_end.max(offset.saturating_add(size));
    }
    let data_start = r.position.div_ceil(alignment).saturating_mul(alignment);
    let needed = data_start.saturating_add(data_end);
    if needed > len {
        return Err(bad(format!(
            "is truncated: its tensors need {needed} bytes, the file has {len}"
        )));
    }
    Ok(GgufSummary { version, tensors })
}

const U32: u32 = 4;
const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// The size in bytes of a scalar metadata value of `kind`.
fn scalar_size(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1), // u8, i8, bool
        2 | 3 => Some(2),     // u16, i16
        4..=6 => Some(4),     // u32, i32, f32
        10..=12 => Some(8),   // u64, i64, f64
        _ => None,
    }
}

/// ggml's tensor types as (elements per block, bytes per block), for the types this check
/// knows: the float and integer types, the legacy quantisations and the k-quants.
fn block_of(kind: u32) -> Option<(u64, u64)> {
    Some(match kind {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

/// A reader that knows where it is and how much is left, so no length read from the file can
/// make it allocate or loop beyond the file's own size.
struct Cursor<R> {
    inner: R,
    position: u64,
    len: u64,
}

impl<R: Read> Cursor<R> {
    fn left(&self) -> u64 {
        self.len.saturating_sub(self.position)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut buffer = [0u8; N];
        self.inner
            .read_exact(&mut buffer)
            .map_err(|e| self.ended(e))?;
        self.position += N as u64;
        Ok(buffer)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    /// A count of items of at least `min_size` bytes each, which must fit in what is left.
    fn count(&mut self, what: &str, min_size: u64) -> Result<u64, GgufError> {
        let n = self.u64()?;
        if n.saturating_mul(min_size) > self.left() {
            return Err(bad(format!(
                "claims {n} {what}, more than its {} bytes can hold",
                self.len
            )));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<Vec<u8>, GgufError> {
        let n = self.count("bytes in a string", 1)?;
        let mut buffer = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buffer)
            .map_err(|e| self.ended(e))?;
        self.position += n;
        Ok(buffer)
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        if n > self.left() {
            return Err(self.ended(io::ErrorKind::UnexpectedEof.into()));
        }
        let skipped =
            io::copy(&mut (&mut self.inner).take(n), &mut io::sink()).map_err(|e| self.ended(e))?;
        if skipped != n {
            return Err(self.ended(io::ErrorKind::UnexpectedEof.into()));
        }
        self.position += n;
        Ok(())
    }

    fn skip_value(&mut self, kind: u32) -> Result<(), GgufError> {
        match kind {
            STRING => self.string().map(drop),
            ARRAY => {
                let element = self.u32()?;
                if let Some(size) = scalar_size(element) {
                    let n = self.count("array elements", size)?;
                    self.skip(n * size)
                } else if element == STRING {
                    let n = self.count("array strings", 8)?;
                    (0..n).try_for_each(|_| self.string().map(drop))
                } else {
                    Err(bad(format!(
                        "has an array of metadata type {element}, which GGUF does not define"
                    )))
                }
            }
            other => match scalar_size(other) {
                Some(size) => self.skip(size),
                None => Err(bad(format!(
                    "has metadata of type {other}, which GGUF does not define"
                ))),
            },
        }
    }

    fn ended(&self, error: io::Error) -> GgufError {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            bad(format!(
                "is truncated: it ends at byte {} inside its header",
                self.len.min(self.position)
            ))
        } else {
            bad(format!("cannot be read: {error}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small GGUF file: one string metadata entry and one F32 tensor of 4 × 2.
    fn tiny(truncate: usize) -> Vec<u8> {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend(1u64.to_le_bytes()); // tensors
        f.extend(1u64.to_le_bytes()); // metadata entries
        let string = |f: &mut Vec<u8>, s: &str| {
            f.extend((s.len() as u64).to_le_bytes());
            f.extend(s.as_bytes());
        };
        string(&mut f, "general.name");
        f.extend(STRING.to_le_bytes());
        string(&mut f, "tiny");
        string(&mut f, "weights");
        f.extend(2u32.to_le_bytes());
        f.extend(4u64.to_le_bytes());
        f.extend(2u64.to_le_bytes());
        f.extend(0u32.to_le_bytes()); // F32
        f.extend(0u64.to_le_bytes());
        f.resize(f.len().div_ceil(32) * 32, 0);
        f.extend([0u8; 32]);
        f.truncate(f.len() - truncate);
        f
    }

    fn check_bytes(bytes: &[u8]) -> Result<GgufSummary, GgufError> {
        check(bytes, bytes.len() as u64)
    }

    #[test]
    fn a_whole_file_passes_and_a_truncated_one_does_not() {
        assert_eq!(
            check_bytes(&tiny(0)),
            Ok(GgufSummary {
                version: 3,
                tensors: 1
            })
        );
        let error = check_bytes(&tiny(1)).unwrap_err().to_string();
        assert!(error.contains("truncated"), "{error}");
        for cut in [40, 100] {
            let error = check_bytes(&tiny(cut)).unwrap_err().to_string();
            assert!(error.contains("truncated"), "{error}");
        }
    }

    #[test]
    fn other_files_are_named_for_what_they_are_not() {
        let error = check_bytes(b"PK\x03\x04 a zip file")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a GGUF file"), "{error}");
        let mut v1 = tiny(0);
        v1[4] = 1;
        assert!(
            check_bytes(&v1)
                .unwrap_err()
                .to_string()
                .contains("version 1")
        );
        let mut absurd = tiny(0);
        absurd[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let error = check_bytes(&absurd).unwrap_err().to_string();
        assert!(error.contains("claims"), "{error}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes, or a real file with any bytes changed: an answer, never a panic.
        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = check_bytes(&bytes);
        }

        #[test]
        fn no_corruption_panics(at in 0usize..120, value in any::<u8>(), cut in 0usize..64) {
            let mut file = tiny(0);
            let i = at % file.len();
            file[i] = value;
            file.truncate(file.len() - cut);
            let _ = check_bytes(&file);
        }
    }
}
