//! An export verifies, the whole log's or one tenant's; every change to it is found, at the
//! right line.

use super::*;
use proptest::prelude::*;

fn signing() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn record(i: u64) -> Record {
    Record {
        at_ms: 1_764_000_000_000 + i as i64,
        actor: format!("key_{i:04}"),
        // Two tenants and the operator's own business, interleaved.
        tenant: match i % 3 {
            0 => None,
            1 => Some("acme".to_owned()),
            _ => Some("globex".to_owned()),
        },
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

/// The whole log's export and acme's, for `n` entries, with checkpoints along the way and a
/// sealing one at the end of each.
fn exports(n: u64) -> (Vec<u8>, Vec<u8>) {
    let mut chain = Chain::default();
    let (mut all, mut acme) = (String::new(), String::new());
    let mut acme_entries = 0;
    for i in 1..=n {
        let r = record(i);
        let line = chain.append(&r).unwrap();
        all.push_str(&line);
        all.push('\n');
        if i % 16 == 0 {
            all.push_str(&chain.checkpoint(&signing(), None, false).unwrap());
            all.push('\n');
        }
        if r.tenant.as_deref() == Some("acme") {
            acme.push_str(&line);
            acme.push('\n');
            acme_entries += 1;
            if acme_entries % 8 == 0 {
                acme.push_str(&chain.checkpoint(&signing(), Some("acme"), false).unwrap());
                acme.push('\n');
            }
        }
    }
    all.push_str(&chain.checkpoint(&signing(), None, true).unwrap());
    all.push('\n');
    acme.push_str(&chain.checkpoint(&signing(), Some("acme"), true).unwrap());
    acme.push('\n');
    (all.into_bytes(), acme.into_bytes())
}

fn check(bytes: &[u8]) -> Result<Verified, VerifyError> {
    verify(bytes, &signing().verifying_key(), None)
}

fn check_acme(bytes: &[u8]) -> Result<Verified, VerifyError> {
    verify(bytes, &signing().verifying_key(), Some("acme"))
}

#[test]
fn untouched_exports_verify() {
    let (all, acme) = exports(100);
    assert_eq!(
        check(&all),
        Ok(Verified {
            entries: 100,
            checkpoints: 7
        })
    );
    assert_eq!(
        check_acme(&acme),
        Ok(Verified {
            entries: 34,
            checkpoints: 5
        })
    );
    let (empty, empty_acme) = exports(0);
    assert_eq!(
        check(&empty),
        Ok(Verified {
            entries: 0,
            checkpoints: 1
        })
    );
    assert_eq!(
        check_acme(&empty_acme),
        Ok(Verified {
            entries: 0,
            checkpoints: 1
        })
    );
    // Another key's export does not verify; nor is a tenant's trail passed off as another's,
    // or as the whole log.
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    assert_eq!(
        verify(&exports(3).0, &other, None).unwrap_err().to_string(),
        "line 4: the checkpoint's signature does not verify"
    );
    assert_eq!(
        verify(&acme, &signing().verifying_key(), Some("globex"))
            .unwrap_err()
            .to_string(),
        "line 1: the entry is not in this tenant's trail"
    );
    assert!(check(&acme).is_err());
}

#[test]
fn each_kind_of_tampering_names_its_line() {
    let (all, acme) = exports(40);
    let good = String::from_utf8(all).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let join = |lines: &[&str]| format!("{}\n", lines.join("\n")).into_bytes();
    let problem = |bytes: &[u8]| check(bytes).unwrap_err().to_string();
    // An edited field: the next line no longer chains to it.
    let edited = good.replacen("\"actor\":\"key_0003\"", "\"actor\":\"key_0004\"", 1);
    assert_eq!(
        problem(edited.as_bytes()),
        "line 4: the entry does not chain to the one before it"
    );
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
    assert_eq!(
        problem(&join(&lines[..17])),
        "line 18: the export does not end with its sealing checkpoint: it was cut off"
    );
    let spaced = good.replacen("\"seq\":1,", "\"seq\": 1,", 1);
    assert_eq!(
        problem(spaced.as_bytes()),
        "line 1: the entry is not in canonical form: it was edited"
    );
    let mut extra = lines.clone();
    extra.push(lines[0]);
    assert_eq!(
        problem(&join(&extra)),
        format!(
            "line {}: lines follow the checkpoint that sealed the export",
            lines.len() + 1
        )
    );
    // A letter of the seal's signature in upper case: hex still decodes it, but it is not what
    // was signed and written.
    let last = lines.len() - 1;
    let at = lines[last]
        .rfind(|c: char| ('a'..='f').contains(&c))
        .unwrap();
    let shouted = format!(
        "{}{}{}",
        &lines[last][..at],
        lines[last][at..at + 1].to_uppercase(),
        &lines[last][at + 1..]
    );
    let mut sealed = lines.clone();
    sealed[last] = &shouted;
    assert_eq!(
        problem(&join(&sealed)),
        format!("line {}: the checkpoint's signature is malformed", last + 1)
    );
    // A tenant's trail with one of its entries removed.
    let acme = String::from_utf8(acme).unwrap();
    let mut trail: Vec<&str> = acme.lines().collect();
    trail.remove(2);
    assert_eq!(
        check_acme(&join(&trail)).unwrap_err().to_string(),
        "line 3: entry 4 where 3 was due: entries were removed, added or reordered"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]
    #[test]
    fn every_mutation_of_an_export_is_found(
        tenant_trail in any::<bool>(),
        kind in 0u8..4,
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (all, acme) = exports(24);
        let good = if tenant_trail { acme } else { all };
        let i = at.index(good.len());
        let mut bent = good.clone();
        match kind {
            0 => bent[i] ^= byte.max(1),
            1 => bent.insert(i, byte),
            2 => { bent.remove(i); }
            _ => bent.truncate(i),
        }
        let verdict = if tenant_trail { check_acme(&bent) } else { check(&bent) };
        prop_assert!(verdict.is_err(), "mutation {} at byte {} went unnoticed", kind, i);
    }
}

#[test]
fn a_resumed_chain_goes_on_as_the_original_would() {
    let mut original = Chain::default();
    let mut lines = Vec::new();
    for i in 1..=40 {
        lines.push((record(i), original.append(&record(i)).unwrap()));
    }
    let last = lines.last().map(|(_, l)| l.as_str());
    let mut trails: BTreeMap<String, &str> = BTreeMap::new();
    for (r, line) in &lines {
        if let Some(t) = &r.tenant {
            trails.insert(t.clone(), line);
        }
    }
    let mut resumed = Chain::resume(last, trails.values().copied()).unwrap();
    assert_eq!(resumed, original);
    assert_eq!(resumed.position().0, 40);
    assert_eq!(
        resumed.append(&record(41)).unwrap(),
        original.append(&record(41)).unwrap()
    );
    assert_eq!(Chain::resume(None, []).unwrap(), Chain::default());
    assert_eq!(Chain::resume(Some("{}"), []), Err(AuditError::Stored));
}
