//! A safetensors file's structure checked without loading it: its JSON header parsed and the
//! tensors' byte ranges found to fill the rest of the file exactly.

use std::io::Read;

/// The largest header accepted (the format's own readers refuse more than 100 MB).
const MAX_HEADER: u64 = 100 << 20;

/// Why a file is not a usable safetensors file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SafetensorsError(String);

fn bad(message: impl Into<String>) -> SafetensorsError {
    SafetensorsError(message.into())
}

/// Checks the safetensors file read by `reader`, `len` bytes long; returns how many tensors
/// it holds.
pub(crate) fn check(mut reader: impl Read, len: u64) -> Result<usize, SafetensorsError> {
    let truncated = |_| bad(format!("is truncated: {len} bytes end inside its header"));
    let mut size = [0u8; 8];
    reader.read_exact(&mut size).map_err(truncated)?;
    let header_len = u64::from_le_bytes(size);
    if header_len > MAX_HEADER || header_len > len.saturating_sub(8) {
        return Err(bad(format!(
            "claims a header of {header_len} bytes in a file of {len}: not a safetensors file, or truncated"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header).map_err(truncated)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("has a header that is not a JSON object: {e}")))?;
    let mut end = 0u64;
    let mut tensors = 0;
    for (name, tensor) in &header {
        if name == "__metadata__" {
            continue;
        }
        let range = tensor["data_offsets"]
            .as_array()
            .and_then(|r| Some((r.first()?.as_u64()?, r.get(1)?.as_u64()?)))
            .filter(|(begin, finish)| begin <= finish)
            .ok_or_else(|| bad(format!("tensor {name:?} has no valid data_offsets")))?;
        end = end.max(range.1);
        tensors += 1;
    }
    let expected = (8 + header_len).saturating_add(end);
    if expected != len {
        let what = if expected > len {
            "is truncated"
        } else {
            "has bytes after its last tensor"
        };
        return Err(bad(format!(
            "{what}: its header describes {expected} bytes, the file has {len}"
        )));
    }
    Ok(tensors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(header: &str, data: usize) -> Vec<u8> {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend(header.as_bytes());
        f.extend(vec![0u8; data]);
        f
    }

    fn check_bytes(bytes: &[u8]) -> Result<usize, SafetensorsError> {
        check(bytes, bytes.len() as u64)
    }

    const HEADER: &str = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#;

    #[test]
    fn whole_truncated_and_padded_files() {
        assert_eq!(check_bytes(&file(HEADER, 12)), Ok(2));
        let error = check_bytes(&file(HEADER, 11)).unwrap_err().to_string();
        assert!(error.starts_with("is truncated"), "{error}");
        let error = check_bytes(&file(HEADER, 13)).unwrap_err().to_string();
        assert!(error.contains("after its last tensor"), "{error}");
        let error = check_bytes(&file(HEADER, 12)[..20])
            .unwrap_err()
            .to_string();
        assert!(error.contains("claims a header"), "{error}");
        let error = check_bytes(&file("[1, 2]", 0)).unwrap_err().to_string();
        assert!(error.contains("not a JSON object"), "{error}");
        let error = check_bytes(&file(r#"{"a":{"data_offsets":[8,0]}}"#, 8))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no valid data_offsets"), "{error}");
    }

    proptest! {
        #[test]
        fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = check_bytes(&bytes);
        }
    }
}
