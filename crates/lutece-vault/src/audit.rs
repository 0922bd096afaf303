//! The tamper-evident audit log: one line of canonical JSON per entry, each naming the SHA-256
//! of the line before it, and signed checkpoints (Ed25519) over the newest entry's hash. An
//! export is the lines as they are, ending with a checkpoint.
//!
//! [`verify`] re-reads an export byte for byte: a line must be exactly the canonical encoding of
//! what it says, in sequence, chained to the line before, and the export must end with a
//! checkpoint whose signature holds. So any change, insertion, deletion, reordering or
//! truncation is found, and the first bad line named.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What happened, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at_ms: i64,
    /// Who: an API key id, `operator`, `anonymous`, or a system component.
    pub actor: String,
    /// Whose data it touched, if a tenant's.
    pub tenant: Option<String>,
    /// What: for example `POST /api/v1/files`, `auth.failed`, `key.unwrap`.
    pub action: String,
    /// Which object, if one.
    pub object: Option<String>,
    /// From where (the client's address), if known.
    pub source: Option<String>,
    /// `ok`, `denied`, `failed`, …
    pub result: String,
}

/// One entry as a line: its place, its record and the hash of the line before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    seq: u64,
    prev: String,
    #[serde(flatten)]
    record: Record,
}

/// A signed checkpoint: the hash of the entry line `seq`, signed by the log's key. `end`
/// marks the one that seals an export: it must be the export's last line, so an export cut
/// after an earlier checkpoint is found too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Checkpoint {
    checkpoint: u64,
    end: bool,
    hash: String,
    sig: String,
}

/// The head of a log: where the next entry goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    next_seq: u64,
    last: [u8; 32],
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            next_seq: 1,
            last: [0; 32],
        }
    }
}

impl Chain {
    /// Appends `record`: returns its line (without a newline), to be stored before the action
    /// it records takes effect.
    pub fn append(&mut self, record: &Record) -> Result<String, AuditError> {
        let entry = Entry {
            seq: self.next_seq,
            prev: hex::encode(self.last),
            record: record.clone(),
        };
        let line = serde_json::to_string(&entry).map_err(|_| AuditError::Encode)?;
        self.last = Sha256::digest(line.as_bytes()).into();
        self.next_seq += 1;
        Ok(line)
    }

    /// A checkpoint over the newest entry, signed with `key`; `end` for the one that seals an
    /// export.
    pub fn checkpoint(&self, key: &SigningKey, end: bool) -> Result<String, AuditError> {
        let seq = self.next_seq - 1;
        let sig = key.sign(&signed(seq, end, &self.last));
        let checkpoint = Checkpoint {
            checkpoint: seq,
            end,
            hash: hex::encode(self.last),
            sig: hex::encode(sig.to_bytes()),
        };
        serde_json::to_string(&checkpoint).map_err(|_| AuditError::Encode)
    }
}

/// What a checkpoint's signature covers.
fn signed(seq: u64, end: bool, hash: &[u8; 32]) -> Vec<u8> {
    let mut message = b"lutece audit checkpoint\n".to_vec();
    message.extend_from_slice(&seq.to_be_bytes());
    message.push(u8::from(end));
    message.extend_from_slice(hash);
    message
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    #[error("an audit record could not be encoded")]
    Encode,
}

/// Where an export first goes wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct VerifyError {
    /// From 1; one past the last line when the export ends too soon.
    pub line: usize,
    pub problem: String,
}

/// What a sound export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub checkpoints: u64,
}

/// Verifies an export (lines separated by `\n`, the last one ending with it too) against the
/// log's public key.
pub fn verify(export: &[u8], key: &VerifyingKey) -> Result<Verified, VerifyError> {
    let fail = |line: usize, problem: &str| VerifyError {
        line,
        problem: problem.to_owned(),
    };
    let Some(body) = export.strip_suffix(b"\n") else {
        return Err(fail(
            export.split(|&b| b == b'\n').count(),
            "the export does not end with a newline: it was cut off",
        ));
    };
    let mut chain = Chain::default();
    let mut verified = Verified {
        entries: 0,
        checkpoints: 0,
    };
    let mut sealed = false;
    let mut lines = 0;
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        lines = n;
        let text = std::str::from_utf8(raw).map_err(|_| fail(n, "not UTF-8"))?;
        if text.starts_with("{\"checkpoint\"") {
            let checkpoint: Checkpoint =
                serde_json::from_str(text).map_err(|_| fail(n, "not a checkpoint"))?;
            if serde_json::to_string(&checkpoint).ok().as_deref() != Some(text) {
                return Err(fail(
                    n,
                    "the checkpoint is not in canonical form: it was edited",
                ));
            }
            if checkpoint.checkpoint != chain.next_seq - 1
                || checkpoint.hash != hex::encode(chain.last)
            {
                return Err(fail(
                    n,
                    "the checkpoint does not cover the entries before it",
                ));
            }
            let sig = hex::decode(&checkpoint.sig)
                .ok()
                .and_then(|bytes| Signature::from_slice(&bytes).ok())
                .ok_or_else(|| fail(n, "the checkpoint's signature is malformed"))?;
            if sealed {
                return Err(fail(
                    n,
                    "lines follow the checkpoint that sealed the export",
                ));
            }
            key.verify(
                &signed(checkpoint.checkpoint, checkpoint.end, &chain.last),
                &sig,
            )
            .map_err(|_| fail(n, "the checkpoint's signature does not verify"))?;
            verified.checkpoints += 1;
            sealed = checkpoint.end;
            continue;
        }
        if sealed {
            return Err(fail(
                n,
                "lines follow the checkpoint that sealed the export",
            ));
        }
        let entry: Entry = serde_json::from_str(text).map_err(|_| fail(n, "not an audit entry"))?;
        if serde_json::to_string(&entry).ok().as_deref() != Some(text) {
            return Err(fail(n, "the entry is not in canonical form: it was edited"));
        }
        if entry.seq != chain.next_seq {
            return Err(fail(
                n,
                &format!(
                    "entry {} where {} was due: entries were removed, added or reordered",
                    entry.seq, chain.next_seq
                ),
            ));
        }
        if entry.prev != hex::encode(chain.last) {
            return Err(fail(n, "the entry does not chain to the line before it"));
        }
        chain.last = Sha256::digest(raw).into();
        chain.next_seq += 1;
        verified.entries += 1;
    }
    if !sealed {
        return Err(fail(
            lines + 1,
            "the export does not end with its sealing checkpoint: it was cut off",
        ));
    }
    Ok(verified)
}

#[cfg(test)]
mod tests;
