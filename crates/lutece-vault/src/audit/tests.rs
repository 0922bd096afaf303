//! An export verifies; every change to it, or to one line, is found at the right line.

use super::*;
use proptest::prelude::*;

fn signing() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn record(i: u64) -> Record {
    Record {
        at_ms: 1_764_000_000_000 + i as i64,
        actor: format!("key_{i:04}"),
        tenant: (i % 3 != 0).then(|| "acme".to_owned()),
        action: if i % 2 == 0 {
            "POST /api/v1/files".into()
        } else {
            "auth.failed".into()
        },
        object: Some(format!("file_{i}")),
        source: Some("192.0.2.7".into()),
        result: if i % 5 == 0 {
            "denied".into()
        } else {
            "ok".into()
        },
    }
}

/// An export of `n` entries with a checkpoint every 16 and a sealing one at the end.
fn export(n: u64) -> Vec<u8> {
    let mut chain = Chain::default();
    let mut out = String::new();
    for i in 1..=n {
        out.push_str(&chain.append(&record(i)).unwrap());
        out.push('\n');
        if i % 16 == 0 {
            out.push_str(&chain.checkpoint(&signing(), false).unwrap());
            out.push('\n');
        }
    }
    out.push_str(&chain.checkpoint(&signing(), true).unwrap());
    out.push('\n');
    out.into_bytes()
}

fn check(bytes: &[u8]) -> Result<Verified, VerifyError> {
    verify(bytes, &signing().verifying_key())
}

#[test]
fn an_untouched_export_verifies() {
    assert_eq!(
        check(&export(100)),
        Ok(Verified {
            entries: 100,
            checkpoints: 7
        })
    );
    assert_eq!(
        check(&export(0)),
        Ok(Verified {
            entries: 0,
            checkpoints: 1
        })
    );
    // Another key's export does not.
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert_eq!(
        verify(&export(3), &other).unwrap_err().to_string(),
        "line 4: the checkpoint's signature does not verify"
    );
}

#[test]
fn each_kind_of_tampering_names_its_line() {
    let good = String::from_utf8(export(40)).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let join = |lines: &[&str]| format!("{}\n", lines.join("\n")).into_bytes();
    let problem = |bytes: &[u8]| check(bytes).unwrap_err().to_string();
    // An edited field: the next line no longer chains to it.
    let edited = good.replacen("\"actor\":\"key_0003\"", "\"actor\":\"key_0004\"", 1);
    assert_eq!(
        problem(edited.as_bytes()),
        "line 4: the entry does not chain to the line before it"
    );
    // A removed entry, and two swapped.
    let mut removed = lines.clone();
    removed.remove(5);
    assert_eq!(
        problem(&join(&removed)),
        "line 6: entry 7 where 6 was due: entries were removed, added or reordered"
    );
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    assert_eq!(
        problem(&join(&swapped)),
        "line 2: entry 3 where 2 was due: entries were removed, added or reordered"
    );
    // Cut after an earlier checkpoint: the seal is missing.
    assert_eq!(
        problem(&join(&lines[..17])),
        "line 18: the export does not end with its sealing checkpoint: it was cut off"
    );
    // The same entry, written another way.
    let spaced = good.replacen("\"seq\":1,", "\"seq\": 1,", 1);
    assert_eq!(
        problem(spaced.as_bytes()),
        "line 1: the entry is not in canonical form: it was edited"
    );
    // Lines after the seal.
    let mut extra = lines.clone();
    extra.push(lines[0]);
    assert_eq!(
        problem(&join(&extra)),
        format!(
            "line {}: lines follow the checkpoint that sealed the export",
            lines.len() + 1
        )
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]
    #[test]
    fn every_mutation_of_an_export_is_found(
        kind in 0u8..4,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let good = export(24);
        let i = at.index(good.len());
        let mut bent = good.clone();
        match kind {
            0 => bent[i] ^= byte.max(1),
            1 => bent.insert(i, byte),
            2 => { bent.remove(i); }
            _ => bent.truncate(i),
        }
        prop_assert!(check(&bent).is_err(), "mutation {} at byte {} went unnoticed", kind, i);
    }
}
