//! The audit log as the server keeps it, tampered with in its database: whatever one row's
//! change, an entry's removal or two rows' swap, an export no longer verifies; untouched, every
//! export does.

use super::*;
use lutece_vault::audit::verify;
use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};

/// A deterministic generator, so a failure names its mutation and can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A printable byte other than `not`.
    fn printable(&mut self, not: u8) -> u8 {
        loop {
            let b = 0x20 + self.below(0x5f) as u8;
            if b != not {
                return b;
            }
        }
    }
}

/// The export a stored line belongs to: a checkpoint's own, or the whole log for an entry.
fn view_of(line: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get("checkpoint")?;
    value["tenant"].as_str().map(str::to_owned)
}

async fn logged(dir: &std::path::Path, entries: u64) -> (Auditor, Store) {
    let store = Store::open(&dir.join("lutece.db")).await.unwrap();
    let signing = SigningKey::from_bytes(&[7; 32]);
    let auditor = Auditor::open(store.clone(), signing).await.unwrap();
    for i in 0..entries {
        let tenant = match i % 3 {
            0 => None,
            1 => Some("ten_a"),
            _ => Some("ten_b"),
        };
        let object = format!("file-{i}");
        auditor
            .note("key_x", tenant, "POST /v1/files", Some(&object), "200 ok")
            .await
            .unwrap();
    }
    (auditor, store)
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lutece-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_log_resumed_after_a_restart_goes_on_and_verifies() {
    let dir = scratch("resume");
    let (auditor, store) = logged(&dir, 300).await;
    auditor.checkpoint().await.unwrap();
    let key = auditor.signing_key().verifying_key();
    drop(auditor);
    let auditor = Auditor::open(store.clone(), SigningKey::from_bytes(&[7; 32]))
        .await
        .unwrap();
    auditor
        .note("server", Some("ten_a"), "server.start", None, "ok")
        .await
        .unwrap();
    let all = auditor.export(None).await.unwrap();
    let verified = verify(all.as_bytes(), &key, None).unwrap();
    assert_eq!(verified.entries, 301);
    for tenant in ["ten_a", "ten_b"] {
        let trail = auditor.export(Some(tenant)).await.unwrap();
        verify(trail.as_bytes(), &key, Some(tenant)).unwrap();
    }
    // A tenant with no entries exports an empty, sealed trail.
    let empty = auditor.export(Some("ten_none")).await.unwrap();
    assert_eq!(
        verify(empty.as_bytes(), &key, Some("ten_none"))
            .unwrap()
            .entries,
        0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_tampered_row_is_found_and_the_untouched_log_verifies() {
    let dir = scratch("tamper");
    let (auditor, _store) = logged(&dir, 300).await;
    let key = auditor.signing_key().verifying_key();
    // The tamperer's own connection to the database, as anyone with the file has.
    let options = SqliteConnectOptions::new()
        .filename(dir.join("lutece.db"))
        .synchronous(SqliteSynchronous::Off);
    let mut db = SqliteConnection::connect_with(&options).await.unwrap();
    let tables = ["audit_log", "audit_checkpoints"];
    let mut rows: Vec<Vec<(i64, String)>> = Vec::new();
    for table in tables {
        let key = if table == "audit_log" { "seq" } else { "id" };
        let sql = format!("SELECT {key}, line FROM {table} ORDER BY {key}");
        rows.push(sqlx::query_as(&sql).fetch_all(&mut db).await.unwrap());
    }
    assert!(rows[1].len() >= 3, "the log has checkpoints to tamper with");
    let views: [Option<&str>; 3] = [None, Some("ten_a"), Some("ten_b")];
    let mutations = std::env::var("LUTECE_TAMPER_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for m in 0..mutations {
        let t = rng.below(2);
        let (table, id) = (tables[t], if t == 0 { "seq" } else { "id" });
        let i = rng.below(rows[t].len());
        let (row, original) = rows[t][i].clone();
        let mut line = original.clone().into_bytes();
        // A stored checkpoint attests to entries; it records nothing. Removing one leaves every
        // entry intact and checkable, so rows removed are entries.
        let kind = match rng.below(6) {
            4 if t == 1 => 0,
            k => k,
        };
        let what = match kind {
            0 => {
                let at = rng.below(line.len());
                line[at] = rng.printable(line[at]);
                format!("byte {at} of {table} row {row} changed")
            }
            1 => {
                let at = rng.below(line.len() + 1);
                let b = rng.printable(0);
                line.insert(at, b);
                format!("a byte inserted at {at} of {table} row {row}")
            }
            2 => {
                let at = rng.below(line.len());
                line.remove(at);
                format!("byte {at} of {table} row {row} deleted")
            }
            3 => {
                let at = rng.below(line.len());
                line.truncate(at);
                format!("{table} row {row} cut to {at} bytes")
            }
            4 => format!("{table} row {row} deleted"),
            _ => format!("{table} row {row} swapped with the next"),
        };
        // The rows the mutation touches, to put back afterwards.
        let next = rows[t].get((i + 1) % rows[t].len()).cloned();
        match kind {
            0..=3 => {
                let sql = format!("UPDATE {table} SET line = ? WHERE {id} = ?");
                let text = String::from_utf8(line).unwrap();
                sqlx::query(&sql)
                    .bind(text)
                    .bind(row)
                    .execute(&mut db)
                    .await
                    .unwrap();
            }
            4 => {
                let sql = format!("DELETE FROM {table} WHERE {id} = ?");
                sqlx::query(&sql).bind(row).execute(&mut db).await.unwrap();
            }
            _ => {
                let (other, other_line) = next.clone().unwrap();
                let sql = format!("UPDATE {table} SET line = ? WHERE {id} = ?");
                sqlx::query(&sql)
                    .bind(&other_line)
                    .bind(row)
                    .execute(&mut db)
                    .await
                    .unwrap();
                sqlx::query(&sql)
                    .bind(&original)
                    .bind(other)
                    .execute(&mut db)
                    .await
                    .unwrap();
                if other_line == original {
                    // Swapping a row with itself (a table of one row) changes nothing.
                    continue;
                }
            }
        }
        // Found when the export that holds the row no longer verifies: the whole log's holds
        // every entry and its own checkpoints; a tenant's trail its checkpoints.
        let mut holders = vec![view_of(&original)];
        if let (5, Some((_, other))) = (kind, &next) {
            holders.push(view_of(other));
        }
        let mut found = false;
        for view in holders {
            let view = view.as_deref();
            let export = auditor.export(view).await.unwrap();
            found |= verify(export.as_bytes(), &key, view).is_err();
        }
        assert!(found, "mutation {m} went unnoticed: {what}");
        // Put it back.
        match kind {
            4 if t == 0 => {
                sqlx::query(
                    "INSERT INTO audit_log (seq, tenant_id, tseq, line) \
                     VALUES (?1, json_extract(?2, '$.tenant'), json_extract(?2, '$.tseq'), ?2)",
                )
                .bind(row)
                .bind(&original)
                .execute(&mut db)
                .await
                .unwrap();
            }
            4 => {
                sqlx::query(
                    "INSERT INTO audit_checkpoints (id, tenant_id, after, line) \
                     VALUES (?1, json_extract(?2, '$.tenant'), json_extract(?2, '$.checkpoint'), ?2)",
                )
                .bind(row)
                .bind(&original)
                .execute(&mut db)
                .await
                .unwrap();
            }
            _ => {
                let sql = format!("UPDATE {table} SET line = ? WHERE {id} = ?");
                sqlx::query(&sql)
                    .bind(&original)
                    .bind(row)
                    .execute(&mut db)
                    .await
                    .unwrap();
                if let (5, Some((other, other_line))) = (kind, next) {
                    sqlx::query(&sql)
                        .bind(&other_line)
                        .bind(other)
                        .execute(&mut db)
                        .await
                        .unwrap();
                }
            }
        }
        if m % 1000 == 0 {
            for view in views {
                let export = auditor.export(view).await.unwrap();
                verify(export.as_bytes(), &key, view)
                    .unwrap_or_else(|e| panic!("a false alarm after mutation {m} ({what}): {e}"));
            }
        }
    }
    for view in views {
        let export = auditor.export(view).await.unwrap();
        verify(export.as_bytes(), &key, view).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The audit log's rates, beside what a log without chain or signatures costs: appends as the
/// server makes them (one durable SQLite transaction each) against plain inserts of the same
/// lines into a table of the same database; and verifying an export against parsing its lines.
/// `bench/audit.sh` runs it optimised; it prints, it asserts nothing about speed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: bench/audit.sh"]
async fn audit_rates() {
    use std::time::Instant;
    let n: u64 = std::env::var("LUTECE_AUDIT_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let dir = scratch("rates");
    let start = Instant::now();
    let (auditor, _store) = logged(&dir, n).await;
    let append = n as f64 / start.elapsed().as_secs_f64();

    let options = SqliteConnectOptions::new()
        .filename(dir.join("lutece.db"))
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut db = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query("CREATE TABLE plain_log (seq INTEGER PRIMARY KEY, line TEXT NOT NULL)")
        .execute(&mut db)
        .await
        .unwrap();
    let export = auditor.export(None).await.unwrap();
    let lines: Vec<&str> = export.lines().collect();
    let start = Instant::now();
    for (i, line) in lines.iter().take(n as usize).enumerate() {
        sqlx::query("INSERT INTO plain_log (seq, line) VALUES (?, ?)")
            .bind(i as i64)
            .bind(*line)
            .execute(&mut db)
            .await
            .unwrap();
    }
    let plain = n as f64 / start.elapsed().as_secs_f64();

    let key = auditor.signing_key().verifying_key();
    let start = Instant::now();
    let verified = verify(export.as_bytes(), &key, None).unwrap();
    let verify_rate = verified.entries as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let parsed = lines
        .iter()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
        .count();
    let parse_rate = parsed as f64 / start.elapsed().as_secs_f64();
    println!("audit entries: {n}");
    println!(
        "append (chained, durable): {append:.0} entries/s; plain durable insert: {plain:.0} entries/s; ratio {:.2}",
        append / plain
    );
    println!(
        "verify: {verify_rate:.0} entries/s; JSON parse only: {parse_rate:.0} lines/s; ratio {:.2}",
        verify_rate / parse_rate
    );
    let _ = std::fs::remove_dir_all(&dir);
}
