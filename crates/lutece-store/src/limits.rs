//! Inference limits of tenants and keys, and what the gateway reads of a key on every request.

use crate::fleet::{to_i64, to_u64};
use crate::{Result, Store, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// Inference limits as stored, for a tenant or a key; None is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsRow {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
    pub monthly_token_budget: Option<u64>,
}

/// A key as the gateway needs it: who it is, whether it is revoked, its limits and its
/// tenant's, read in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayKey {
    pub key_id: String,
    pub tenant_id: String,
    pub revoked: bool,
    pub key: LimitsRow,
    pub tenant: LimitsRow,
    /// The tenant's residency policy.
    pub residency: lutece_core::residency::ResidencyPolicy,
}

impl Store {
    /// A tenant's inference limits.
    pub async fn tenant_limits(&self, tenant_id: &str) -> Result<LimitsRow> {
        let row = sqlx::query(
            "SELECT requests_per_minute, tokens_per_minute, monthly_token_budget FROM tenants WHERE id = ?",
        )
        .bind(tenant_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| not_found("tenant", tenant_id))?;
        limits_from_row(&row, "")
    }

    /// Sets (replaces) a tenant's inference limits.
    pub async fn set_tenant_limits(&self, tenant_id: &str, limits: &LimitsRow) -> Result<()> {
        self.set_limits("tenants", tenant_id, limits).await
    }

    /// One key's own inference limits.
    pub async fn key_limits(&self, key_id: &str) -> Result<LimitsRow> {
        let row = sqlx::query(
            "SELECT requests_per_minute, tokens_per_minute, monthly_token_budget FROM api_keys WHERE id = ?",
        )
        .bind(key_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| not_found("key", key_id))?;
        limits_from_row(&row, "")
    }

    /// Sets (replaces) one key's inference limits.
    pub async fn set_key_limits(&self, key_id: &str, limits: &LimitsRow) -> Result<()> {
        self.set_limits("api_keys", key_id, limits).await
    }

    async fn set_limits(&self, table: &str, id: &str, limits: &LimitsRow) -> Result<()> {
        let sql = format!(
            "UPDATE {table} SET requests_per_minute = ?, tokens_per_minute = ?, monthly_token_budget = ? WHERE id = ?"
        );
        let done = sqlx::query(&sql)
            .bind(limits.requests_per_minute)
            .bind(limits.tokens_per_minute.map(to_i64))
            .bind(limits.monthly_token_budget.map(to_i64))
            .bind(id)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            let what = if table == "tenants" { "tenant" } else { "key" };
            return Err(not_found(what, id));
        }
        Ok(())
    }

    /// The key whose secret hashes to `secret_hash`, with its limits and its tenant's.
    pub async fn gateway_key(&self, secret_hash: &str) -> Result<Option<GatewayKey>> {
        let row = sqlx::query(
            "SELECT k.id, k.tenant_id, k.revoked_at, \
             k.requests_per_minute, k.tokens_per_minute, k.monthly_token_budget, \
             t.requests_per_minute AS t_requests_per_minute, t.tokens_per_minute AS t_tokens_per_minute, \
             t.monthly_token_budget AS t_monthly_token_budget, t.residency \
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.secret_hash = ?",
        )
        .bind(secret_hash)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let revoked_at: Option<i64> = row.try_get("revoked_at")?;
        let tenant_id: String = row.try_get("tenant_id")?;
        let residency = crate::data::policy(&tenant_id, row.try_get("residency")?)?;
        Ok(Some(GatewayKey {
            residency,
            key_id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            revoked: revoked_at.is_some(),
            key: limits_from_row(&row, "")?,
            tenant: limits_from_row(&row, "t_")?,
        }))
    }
}

fn limits_from_row(row: &SqliteRow, prefix: &str) -> Result<LimitsRow> {
    let count = |name: &str| -> Result<Option<u64>> {
        let column = format!("{prefix}{name}");
        let value: Option<i64> = row.try_get(column.as_str())?;
        value.map(|v| to_u64(v, name)).transpose()
    };
    Ok(LimitsRow {
        requests_per_minute: row.try_get(format!("{prefix}requests_per_minute").as_str())?,
        tokens_per_minute: count("tokens_per_minute")?,
        monthly_token_budget: count("monthly_token_budget")?,
    })
}

fn not_found(what: &str, id: &str) -> StoreError {
    StoreError::NotFound {
        what: format!("{what} {id:?}"),
    }
}
