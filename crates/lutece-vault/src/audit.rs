//! The tamper-evident audit log: one line of canonical JSON per entry, each naming the SHA-256
//! of the line before it in the whole log and, for an entry about a tenant's data, of the line
//! before it in that tenant's trail; and signed checkpoints (Ed25519) over the newest hash of
//! the log or of one tenant's trail. An export is the lines as they are — the whole log (the
//! operator's) or one tenant's trail — ending with a sealing checkpoint.
//!
//! [`verify`] re-reads an export byte for byte: a line must be exactly the canonical encoding of
//! what it says, in sequence, chained to the line before, and the export must end with a
//! sealing checkpoint whose signature holds. So any change, insertion, deletion, reordering or
//! truncation is found, and the first bad line named.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What happened, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at_ms: i64,
    /// Who: an API key id, `operator`, `anonymous`, or a system component.
    pub actor: String,
    /// Whose data it touched, if a tenant's: the entry joins that tenant's trail.
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

/// One entry as a line: its place in the log and in its tenant's trail, the hashes of the
/// lines before it in each, and its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    prev: String,
    tseq: Option<u64>,
    tprev: Option<String>,
    #[serde(flatten)]
    record: Record,
}

/// A signed checkpoint: the hash of the newest entry line of the log (`tenant` absent) or of
/// one tenant's trail, at its place `checkpoint`. `end` marks the one that seals an export: it
/// must be the export's last line, so an export cut after an earlier checkpoint is found too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Checkpoint {
    checkpoint: u64,
    tenant: Option<String>,
    end: bool,
    hash: String,
    sig: String,
}

/// Where a chain stands: the place of its newest line and that line's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Head {
    seq: u64,
    last: [u8; 32],
}

/// The heads of a log: the whole log's and each tenant trail's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    log: Head,
    tenants: BTreeMap<String, Head>,
}

impl Chain {
    /// The chain as it stood after a log whose newest entry line is `last` and whose tenants'
    /// newest entry lines are `trails` (any order): what a server reads back when it starts.
    pub fn resume<'a>(
        last: Option<&str>,
        trails: impl IntoIterator<Item = &'a str>,
    ) -> Result<Chain, AuditError> {
        let head = |line: &str| -> Result<(Entry, Head), AuditError> {
            let entry: Entry = serde_json::from_str(line).map_err(|_| AuditError::Stored)?;
            let last = Sha256::digest(line.as_bytes()).into();
            Ok((
                entry.clone(),
                Head {
                    seq: entry.seq,
                    last,
                },
            ))
        };
        let mut chain = Chain::default();
        if let Some(line) = last {
            chain.log = head(line)?.1;
        }
        for line in trails {
            let (entry, mut head) = head(line)?;
            let (Some(tenant), Some(tseq)) = (entry.record.tenant, entry.tseq) else {
                return Err(AuditError::Stored);
            };
            head.seq = tseq;
            chain.tenants.insert(tenant, head);
        }
        Ok(chain)
    }

    /// The place of the log's newest entry and the hex SHA-256 of its line.
    pub fn position(&self) -> (u64, String) {
        (self.log.seq, hex::encode(self.log.last))
    }

    /// The place of `tenant`'s newest entry in its trail (0 when it has none).
    pub fn trail_position(&self, tenant: &str) -> u64 {
        self.tenants.get(tenant).map_or(0, |h| h.seq)
    }

    /// Appends `record`: returns its line (without a newline), to be stored before the action
    /// it records takes effect.
    pub fn append(&mut self, record: &Record) -> Result<String, AuditError> {
        let trail = record
            .tenant
            .as_ref()
            .map(|t| self.tenants.get(t).copied().unwrap_or_default());
        let entry = Entry {
            seq: self.log.seq + 1,
            prev: hex::encode(self.log.last),
            tseq: trail.map(|h| h.seq + 1),
            tprev: trail.map(|h| hex::encode(h.last)),
            record: record.clone(),
        };
        let line = serde_json::to_string(&entry).map_err(|_| AuditError::Encode)?;
        let hash: [u8; 32] = Sha256::digest(line.as_bytes()).into();
        self.log = Head {
            seq: entry.seq,
            last: hash,
        };
        if let (Some(tenant), Some(tseq)) = (&record.tenant, entry.tseq) {
            self.tenants.insert(
                tenant.clone(),
                Head {
                    seq: tseq,
                    last: hash,
                },
            );
        }
        Ok(line)
    }

    /// A checkpoint over the newest entry of the log (`tenant` None) or of one tenant's trail,
    /// signed with `key`; `end` for the one that seals an export.
    pub fn checkpoint(
        &self,
        key: &SigningKey,
        tenant: Option<&str>,
        end: bool,
    ) -> Result<String, AuditError> {
        let head = match tenant {
            None => self.log,
            Some(t) => self.tenants.get(t).copied().unwrap_or_default(),
        };
        let sig = key.sign(&signed(head.seq, tenant, end, &head.last));
        let checkpoint = Checkpoint {
            checkpoint: head.seq,
            tenant: tenant.map(str::to_owned),
            end,
            hash: hex::encode(head.last),
            sig: hex::encode(sig.to_bytes()),
        };
        serde_json::to_string(&checkpoint).map_err(|_| AuditError::Encode)
    }
}

/// What a checkpoint's signature covers.
fn signed(seq: u64, tenant: Option<&str>, end: bool, hash: &[u8; 32]) -> Vec<u8> {
    let mut message = b"lutece audit checkpoint\n".to_vec();
    message.extend_from_slice(&seq.to_be_bytes());
    message.push(u8::from(end));
    message.extend_from_slice(hash);
    if let Some(tenant) = tenant {
        message.extend_from_slice(tenant.as_bytes());
    }
    message
}

/// A signature written as lowercase hex, the only way this crate writes one: hex decoding
/// also takes uppercase, and a signature whose case was changed must not still verify.
pub(crate) fn signature(text: &str) -> Option<Signature> {
    let bytes = hex::decode(text).ok()?;
    if hex::encode(&bytes) != text {
        return None;
    }
    Signature::from_slice(&bytes).ok()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    #[error("an audit record could not be encoded")]
    Encode,
    #[error("a stored audit line is not an entry of this log")]
    Stored,
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

/// Verifies an export against the log's public key: the whole log when `tenant` is None, or
/// the trail of `tenant`. Lines are separated by `\n`, the last one ending with it too.
pub fn verify(
    export: &[u8],
    key: &VerifyingKey,
    tenant: Option<&str>,
) -> Result<Verified, VerifyError> {
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
    // The chain this export follows, and, for the whole log, every tenant's trail in it.
    let mut own = Head::default();
    let mut trails: BTreeMap<String, Head> = BTreeMap::new();
    let mut verified = Verified {
        entries: 0,
        checkpoints: 0,
    };
    let mut sealed = false;
    let mut lines = 0;
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        lines = n;
        if sealed {
            return Err(fail(
                n,
                "lines follow the checkpoint that sealed the export",
            ));
        }
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
            if checkpoint.tenant.as_deref() != tenant {
                return Err(fail(n, "the checkpoint is not this export's"));
            }
            if checkpoint.checkpoint != own.seq || checkpoint.hash != hex::encode(own.last) {
                return Err(fail(
                    n,
                    "the checkpoint does not cover the entries before it",
                ));
            }
            let sig = signature(&checkpoint.sig)
                .ok_or_else(|| fail(n, "the checkpoint's signature is malformed"))?;
            let message = signed(own.seq, tenant, checkpoint.end, &own.last);
            key.verify(&message, &sig)
                .map_err(|_| fail(n, "the checkpoint's signature does not verify"))?;
            verified.checkpoints += 1;
            sealed = checkpoint.end;
            continue;
        }
        let entry: Entry = serde_json::from_str(text).map_err(|_| fail(n, "not an audit entry"))?;
        if serde_json::to_string(&entry).ok().as_deref() != Some(text) {
            return Err(fail(n, "the entry is not in canonical form: it was edited"));
        }
        let hash: [u8; 32] = Sha256::digest(raw).into();
        let trail = match (&entry.record.tenant, entry.tseq, &entry.tprev) {
            (Some(t), Some(tseq), Some(tprev)) => Some((t, tseq, tprev)),
            (None, None, None) => None,
            _ => return Err(fail(n, "the entry's tenant and its trail disagree")),
        };
        let (seq, prev) = match tenant {
            None => (entry.seq, &entry.prev),
            Some(wanted) => match trail {
                Some((t, tseq, tprev)) if t == wanted => (tseq, tprev),
                _ => return Err(fail(n, "the entry is not in this tenant's trail")),
            },
        };
        if seq != own.seq + 1 {
            return Err(fail(
                n,
                &format!(
                    "entry {seq} where {} was due: entries were removed, added or reordered",
                    own.seq + 1
                ),
            ));
        }
        if *prev != hex::encode(own.last) {
            return Err(fail(n, "the entry does not chain to the one before it"));
        }
        own = Head { seq, last: hash };
        if let (None, Some((t, tseq, tprev))) = (tenant, trail) {
            let head = trails.entry(t.clone()).or_default();
            if tseq != head.seq + 1 || *tprev != hex::encode(head.last) {
                return Err(fail(
                    n,
                    &format!("the entry breaks the trail of tenant {t}"),
                ));
            }
            *head = Head {
                seq: tseq,
                last: hash,
            };
        }
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
