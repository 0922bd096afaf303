//! Tenants, API keys and agent join tokens.

use crate::{KeyRow, Result, Store, StoreError, TenantRow, conflict_or};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const KEY_COLUMNS: &str = "k.id, k.tenant_id, t.name AS tenant_name, k.name, k.role, k.secret_hash, k.created_at, k.revoked_at";

impl Store {
    pub async fn create_tenant(&self, tenant: &TenantRow) -> Result<()> {
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(&self.writer)
            .await
            .map_err(|e| conflict_or(e, || format!("tenant {:?}", tenant.name)))?;
        Ok(())
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRow>> {
        let row = sqlx::query(
            "SELECT id, name, created_at FROM tenants WHERE name = ? AND deleted_at IS NULL",
        )
        .bind(name)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| tenant_from_row(&r)).transpose()
    }

    pub async fn list_tenants(&self) -> Result<Vec<TenantRow>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at FROM tenants WHERE deleted_at IS NULL ORDER BY name",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    /// Creates the bootstrap tenant and its operator key at once, or neither.
    pub async fn bootstrap(&self, tenant: &TenantRow, key: &KeyRow) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&tenant.id)
            .bind(&tenant.name)
            .bind(tenant.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, || format!("tenant {:?}", tenant.name)))?;
        insert_key(&mut tx, key).await?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ('bootstrapped', '1')")
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_or(e, || "bootstrap".to_owned()))?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_key(&self, key: &KeyRow) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn key_by_id(&self, id: &str) -> Result<Option<KeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| key_from_row(&r)).transpose()
    }

    /// The key whose secret hashes to `secret_hash`.
    pub async fn key_by_hash(&self, secret_hash: &str) -> Result<Option<KeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.secret_hash = ?"
        );
        let row = sqlx::query(&sql)
            .bind(secret_hash)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| key_from_row(&r)).transpose()
    }

    /// Keys of one tenant, or of all tenants when `tenant_id` is None.
    pub async fn list_keys(&self, tenant_id: Option<&str>) -> Result<Vec<KeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE (?1 IS NULL OR k.tenant_id = ?1) ORDER BY k.created_at, k.id"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key of `tenant_id` (any tenant's when None) whose role is one of
    /// `revocable_roles`: a caller passes the roles up to its own, so no key revokes a stronger
    /// one. A key outside the scope is [`StoreError::NotFound`]; one in scope with another role
    /// is [`StoreError::Denied`]. Revoking twice is not an error.
    pub async fn revoke_key(
        &self,
        id: &str,
        tenant_id: Option<&str>,
        revocable_roles: &[&str],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM api_keys WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2)",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(role) = role else {
            return Err(StoreError::NotFound {
                what: format!("key {id:?}"),
            });
        };
        if !revocable_roles.contains(&role.as_str()) {
            return Err(StoreError::Denied {
                reason: format!(
                    "key {id:?} has the {role} role, above what this caller may revoke"
                ),
            });
        }
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_join_token(&self, id: &str, secret_hash: &str, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO join_tokens (id, secret_hash, created_at) VALUES (?, ?, ?)")
            .bind(id)
            .bind(secret_hash)
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Whether a join token with this hash was issued.
    pub async fn join_token_exists(&self, secret_hash: &str) -> Result<bool> {
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM join_tokens WHERE secret_hash = ?")
                .bind(secret_hash)
                .fetch_optional(&self.reader)
                .await?;
        Ok(found.is_some())
    }
}

async fn insert_key(tx: &mut sqlx::SqliteConnection, key: &KeyRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, role, secret_hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.id)
    .bind(&key.tenant_id)
    .bind(&key.name)
    .bind(&key.role)
    .bind(&key.secret_hash)
    .bind(key.created_at)
    .bind(key.revoked_at)
    .execute(tx)
    .await
    .map_err(|e| conflict_or(e, || format!("key {:?}", key.id)))?;
    Ok(())
}

fn tenant_from_row(row: &SqliteRow) -> Result<TenantRow> {
    Ok(TenantRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn key_from_row(row: &SqliteRow) -> Result<KeyRow> {
    Ok(KeyRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        tenant_name: row.try_get("tenant_name")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}
