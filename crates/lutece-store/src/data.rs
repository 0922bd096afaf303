//! Tenant data: the keys that seal it (each itself sealed under the operator's root key), the
//! files stored, where a tenant's data and work may be, and a tenant's deletion.

use crate::fleet::{to_i64, to_u64};
use crate::{Result, Store, StoreError, TenantRow};
use lutece_core::residency::ResidencyPolicy;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// A tenant's key as stored: its material sealed under the root key, or None once destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionKeyRow {
    pub id: String,
    pub tenant_id: String,
    /// `managed` or `customer`.
    pub kind: String,
    pub wrapped: Option<Vec<u8>>,
    pub fingerprint: Option<String>,
    pub created_at: i64,
    pub destroyed_at: Option<i64>,
    /// Files whose data keys it seals.
    pub objects: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub id: String,
    pub tenant_id: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: u64,
    pub stored_bytes: u64,
    pub sha256: String,
    pub location: String,
    pub jurisdiction: String,
    pub key_id: String,
    pub created_at: i64,
}

/// How much of a tenant's data of one class is at one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlacementRow {
    pub purpose: String,
    pub location: String,
    pub jurisdiction: String,
    pub objects: u64,
    pub bytes: u64,
}

/// What a tenant's deletion destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRow {
    pub tenant_id: String,
    pub deleted_at: i64,
    pub keys_destroyed: Vec<String>,
    pub objects: u64,
    pub certificate: String,
}

const KEY_COLUMNS: &str = "k.id, k.tenant_id, k.kind, k.wrapped, k.fingerprint, k.created_at, k.destroyed_at, \
     (SELECT COUNT(*) FROM files f WHERE f.key_id = k.id) AS objects";
const FILE_COLUMNS: &str = "id, tenant_id, filename, purpose, bytes, stored_bytes, sha256, location, jurisdiction, key_id, created_at";

impl Store {
    pub async fn insert_encryption_key(&self, key: &EncryptionKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO encryption_keys (id, tenant_id, kind, wrapped, fingerprint, created_at) \
             SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ? AND deleted_at IS NULL)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&key.kind)
        .bind(&key.wrapped)
        .bind(&key.fingerprint)
        .bind(key.created_at)
        .bind(&key.tenant_id)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::conflict_or(e, || format!("encryption key {}", key.id)))
        .and_then(|done| {
            if done.rows_affected() == 1 {
                Ok(())
            } else {
                Err(StoreError::NotFound {
                    what: format!("tenant {}", key.tenant_id),
                })
            }
        })
    }

    /// A tenant's keys, oldest first.
    pub async fn encryption_keys(&self, tenant_id: &str) -> Result<Vec<EncryptionKeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM encryption_keys k WHERE k.tenant_id = ? ORDER BY k.created_at, k.rowid"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    pub async fn encryption_key(&self, id: &str) -> Result<Option<EncryptionKeyRow>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM encryption_keys k WHERE k.id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| key_from_row(&r)).transpose()
    }

    /// Destroys one of a tenant's keys: its sealed material is overwritten. Returns the key as
    /// it now is; destroying twice is not an error.
    pub async fn destroy_encryption_key(
        &self,
        tenant_id: &str,
        id: &str,
        now: i64,
    ) -> Result<EncryptionKeyRow> {
        sqlx::query(
            "UPDATE encryption_keys SET wrapped = NULL, destroyed_at = COALESCE(destroyed_at, ?) \
             WHERE id = ? AND tenant_id = ?",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .execute(&self.writer)
        .await?;
        self.checkpoint_wal().await?;
        match self.encryption_key(id).await? {
            Some(key) if key.tenant_id == tenant_id => Ok(key),
            _ => Err(StoreError::NotFound {
                what: format!("encryption key {id:?}"),
            }),
        }
    }

    /// Records a wholly stored file, unless the key that sealed it was destroyed meanwhile
    /// ([`StoreError::Denied`]).
    pub async fn insert_file(&self, file: &FileRow) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO files (id, tenant_id, filename, purpose, bytes, stored_bytes, sha256, location, jurisdiction, key_id, created_at) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
             WHERE EXISTS (SELECT 1 FROM encryption_keys WHERE id = ? AND tenant_id = ? AND destroyed_at IS NULL)",
        )
        .bind(&file.id)
        .bind(&file.tenant_id)
        .bind(&file.filename)
        .bind(&file.purpose)
        .bind(to_i64(file.bytes))
        .bind(to_i64(file.stored_bytes))
        .bind(&file.sha256)
        .bind(&file.location)
        .bind(&file.jurisdiction)
        .bind(&file.key_id)
        .bind(file.created_at)
        .bind(&file.key_id)
        .bind(&file.tenant_id)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::conflict_or(e, || format!("file {}", file.id)))?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Denied {
                reason: format!(
                    "the key {} was destroyed while the file was stored",
                    file.key_id
                ),
            })
        }
    }

    /// A file of `tenant_id` (of any tenant when None).
    pub async fn file(&self, id: &str, tenant_id: Option<&str>) -> Result<Option<FileRow>> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| file_from_row(&r)).transpose()
    }

    /// Files of `tenant_id` (all when None), optionally of one purpose, newest first.
    pub async fn files(
        &self,
        tenant_id: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Vec<FileRow>> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE (?1 IS NULL OR tenant_id = ?1) \
             AND (?2 IS NULL OR purpose = ?2) ORDER BY created_at DESC, id"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(purpose)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// Forgets a file; returns whether there was one. Its object is the caller's to delete.
    pub async fn delete_file(&self, id: &str, tenant_id: Option<&str>) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM files WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)")
                .bind(id)
                .bind(tenant_id)
                .execute(&self.writer)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Where a tenant's data is: objects and bytes by class and location.
    pub async fn data_placements(&self, tenant_id: &str) -> Result<Vec<DataPlacementRow>> {
        let rows = sqlx::query(
            "SELECT purpose, location, jurisdiction, COUNT(*) AS objects, SUM(bytes) AS bytes \
             FROM files WHERE tenant_id = ? GROUP BY purpose, location, jurisdiction \
             ORDER BY purpose, location",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DataPlacementRow {
                    purpose: r.try_get("purpose")?,
                    location: r.try_get("location")?,
                    jurisdiction: r.try_get("jurisdiction")?,
                    objects: to_u64(r.try_get("objects")?, "objects")?,
                    bytes: to_u64(r.try_get("bytes")?, "bytes")?,
                })
            })
            .collect()
    }

    /// A tenant's residency policy.
    pub async fn residency(&self, tenant_id: &str) -> Result<ResidencyPolicy> {
        let text: Option<String> = sqlx::query_scalar("SELECT residency FROM tenants WHERE id = ?")
            .bind(tenant_id)
            .fetch_optional(&self.reader)
            .await?;
        let text = text.ok_or_else(|| StoreError::NotFound {
            what: format!("tenant {tenant_id}"),
        })?;
        policy(tenant_id, &text)
    }

    /// Every tenant's residency policy that restricts anything, by tenant id.
    pub async fn residencies(&self) -> Result<Vec<(String, ResidencyPolicy)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT id, residency FROM tenants WHERE residency != '[]'")
                .fetch_all(&self.reader)
                .await?;
        rows.into_iter()
            .map(|(id, text)| {
                let policy = policy(&id, &text)?;
                Ok((id, policy))
            })
            .collect()
    }

    pub async fn set_residency(&self, tenant_id: &str, policy: &ResidencyPolicy) -> Result<()> {
        let text = serde_json::to_string(policy).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("UPDATE tenants SET residency = ? WHERE id = ?")
            .bind(text)
            .bind(tenant_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Deletes a tenant by destroying what makes its data readable, at once: every key of
    /// its is overwritten, its API keys revoked, its queued jobs cancelled, its files forgotten,
    /// and the deletion's certificate kept. The files' objects are returned, for the caller to
    /// remove (they are unreadable already).
    pub async fn delete_tenant(&self, deletion: &DeletionRow) -> Result<Vec<FileRow>> {
        let files = self.files(Some(&deletion.tenant_id), None).await?;
        let mut tx = self.writer.begin().await?;
        let done =
            sqlx::query("UPDATE tenants SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL")
                .bind(deletion.deleted_at)
                .bind(&deletion.tenant_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                what: format!("the deletion of tenant {}", deletion.tenant_id),
            });
        }
        sqlx::query(
            "UPDATE encryption_keys SET wrapped = NULL, destroyed_at = COALESCE(destroyed_at, ?) WHERE tenant_id = ?",
        )
        .bind(deletion.deleted_at)
        .bind(&deletion.tenant_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ?")
            .bind(deletion.deleted_at)
            .bind(&deletion.tenant_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', reason = 'its tenant was deleted', finished_at = ? \
             WHERE tenant_id = ? AND state = 'queued'",
        )
        .bind(deletion.deleted_at)
        .bind(&deletion.tenant_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET cancel_requested = 1 WHERE tenant_id = ? AND state IN ('scheduled', 'running')",
        )
        .bind(&deletion.tenant_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM files WHERE tenant_id = ?")
            .bind(&deletion.tenant_id)
            .execute(&mut *tx)
            .await?;
        let keys = serde_json::to_string(&deletion.keys_destroyed)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO tenant_deletions (tenant_id, deleted_at, keys_destroyed, objects, certificate) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&deletion.tenant_id)
        .bind(deletion.deleted_at)
        .bind(keys)
        .bind(to_i64(deletion.objects))
        .bind(&deletion.certificate)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.checkpoint_wal().await?;
        Ok(files)
    }

    pub async fn tenant_deletion(&self, tenant_id: &str) -> Result<Option<DeletionRow>> {
        let row = sqlx::query(
            "SELECT tenant_id, deleted_at, keys_destroyed, objects, certificate FROM tenant_deletions WHERE tenant_id = ?",
        )
        .bind(tenant_id)
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let keys: String = r.try_get("keys_destroyed")?;
        Ok(Some(DeletionRow {
            tenant_id: r.try_get("tenant_id")?,
            deleted_at: r.try_get("deleted_at")?,
            keys_destroyed: serde_json::from_str(&keys)
                .map_err(|e| StoreError::Corrupt(format!("keys_destroyed: {e}")))?,
            objects: to_u64(r.try_get("objects")?, "objects")?,
            certificate: r.try_get("certificate")?,
        }))
    }

    /// Copies the write-ahead log into the database and empties it, so that overwritten pages
    /// (a destroyed key) do not live on in it. A reader holding an old snapshot keeps it from
    /// being emptied: tried 5 times, 100 ms apart (each try may wait for the busy timeout),
    /// then the failure is logged (the change itself is committed; the next checkpoint
    /// empties the log).
    async fn checkpoint_wal(&self) -> Result<()> {
        for _ in 0..5 {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.writer)
                .await?;
            if busy == 0 {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tracing::error!(
            "the write-ahead log could not be emptied: old pages of a destroyed key stay in it until the next checkpoint"
        );
        Ok(())
    }

    /// The id of every file recorded, of every tenant.
    pub async fn file_ids(&self) -> Result<std::collections::HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM files")
            .fetch_all(&self.reader)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// The id of every tenant this store has known, deleted ones included.
    pub async fn tenant_ids(&self) -> Result<std::collections::HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM tenants")
            .fetch_all(&self.reader)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// The tenant a name belongs to, deleted or not.
    pub async fn any_tenant_by_name(&self, name: &str) -> Result<Option<(TenantRow, Option<i64>)>> {
        let row =
            sqlx::query("SELECT id, name, created_at, deleted_at FROM tenants WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some((
            TenantRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            },
            r.try_get("deleted_at")?,
        )))
    }
}

fn key_from_row(row: &SqliteRow) -> Result<EncryptionKeyRow> {
    Ok(EncryptionKeyRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        kind: row.try_get("kind")?,
        wrapped: row.try_get("wrapped")?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: row.try_get("created_at")?,
        destroyed_at: row.try_get("destroyed_at")?,
        objects: to_u64(row.try_get("objects")?, "objects")?,
    })
}

fn file_from_row(row: &SqliteRow) -> Result<FileRow> {
    Ok(FileRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        filename: row.try_get("filename")?,
        purpose: row.try_get("purpose")?,
        bytes: to_u64(row.try_get("bytes")?, "bytes")?,
        stored_bytes: to_u64(row.try_get("stored_bytes")?, "stored_bytes")?,
        sha256: row.try_get("sha256")?,
        location: row.try_get("location")?,
        jurisdiction: row.try_get("jurisdiction")?,
        key_id: row.try_get("key_id")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A stored residency policy, checked as it is read.
pub(crate) fn policy(tenant_id: &str, text: &str) -> Result<ResidencyPolicy> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("residency of {tenant_id}: {e}")))
}
