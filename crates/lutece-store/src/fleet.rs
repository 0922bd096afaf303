//! Nodes registered by agents.

use crate::{NodeRow, Result, Store, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const NODE_COLUMNS: &str = "id, name, hostname, address, rack, cpus_milli, memory_bytes, gpus, credential_hash, registered_at, last_seen_at, jurisdiction";

impl Store {
    /// Inserts a node, or replaces what an existing node reported about itself.
    pub async fn upsert_node(&self, node: &NodeRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, name, hostname, address, rack, cpus_milli, memory_bytes, gpus, credential_hash, registered_at, last_seen_at, jurisdiction) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, hostname = excluded.hostname, address = excluded.address, rack = excluded.rack, \
             cpus_milli = excluded.cpus_milli, memory_bytes = excluded.memory_bytes, gpus = excluded.gpus, \
             last_seen_at = excluded.last_seen_at, jurisdiction = excluded.jurisdiction",
        )
        .bind(&node.id)
        .bind(&node.name)
        .bind(&node.hostname)
        .bind(&node.address)
        .bind(&node.rack)
        .bind(to_i64(node.cpus_milli))
        .bind(to_i64(node.memory_bytes))
        .bind(&node.gpus_json)
        .bind(&node.credential_hash)
        .bind(node.registered_at)
        .bind(node.last_seen_at)
        .bind(&node.jurisdiction)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn node(&self, id: &str) -> Result<Option<NodeRow>> {
        let sql = format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| node_from_row(&r)).transpose()
    }

    pub async fn list_nodes(&self) -> Result<Vec<NodeRow>> {
        let sql = format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY name, id");
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(node_from_row).collect()
    }

    pub async fn touch_node(&self, id: &str, now: i64) -> Result<()> {
        let done = sqlx::query("UPDATE nodes SET last_seen_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("node {id:?}"),
            });
        }
        Ok(())
    }
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is negative: {value}")))
}

fn node_from_row(row: &SqliteRow) -> Result<NodeRow> {
    Ok(NodeRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        hostname: row.try_get("hostname")?,
        address: row.try_get("address")?,
        rack: row.try_get("rack")?,
        cpus_milli: to_u64(row.try_get("cpus_milli")?, "cpus_milli")?,
        memory_bytes: to_u64(row.try_get("memory_bytes")?, "memory_bytes")?,
        gpus_json: row.try_get("gpus")?,
        credential_hash: row.try_get("credential_hash")?,
        registered_at: row.try_get("registered_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        jurisdiction: row.try_get("jurisdiction")?,
    })
}
