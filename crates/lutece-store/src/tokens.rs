//! Tokens metered by the inference gateway: added in batches, summed for reports.

use crate::fleet::{to_i64, to_u64};
use crate::{Result, Store};
use sqlx::Row;

/// Tokens of one tenant's key in one project on one model during one minute (or, in a
/// summary, in all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUsageRow {
    pub tenant_id: String,
    /// Filled in by summaries.
    pub tenant_name: String,
    pub project: String,
    pub key_id: String,
    pub model: String,
    /// The minute's start (ms since the epoch); 0 in summaries.
    pub minute: i64,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Store {
    /// Adds counts to the stored ones, all in one transaction.
    pub async fn add_token_usage(&self, rows: &[TokenUsageRow]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO token_usage (tenant_id, project, key_id, model, minute, requests, prompt_tokens, completion_tokens) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, project, key_id, model, minute) DO UPDATE SET \
                 requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = completion_tokens + excluded.completion_tokens",
            )
            .bind(&row.tenant_id)
            .bind(&row.project)
            .bind(&row.key_id)
            .bind(&row.model)
            .bind(row.minute)
            .bind(to_i64(row.requests))
            .bind(to_i64(row.prompt_tokens))
            .bind(to_i64(row.completion_tokens))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Totals per tenant, project, key and model, for one tenant or all.
    pub async fn token_usage_summary(&self, tenant_id: Option<&str>) -> Result<Vec<TokenUsageRow>> {
        let rows = sqlx::query(
            "SELECT u.tenant_id, t.name AS tenant_name, u.project, u.key_id, u.model, SUM(u.requests) AS requests, \
             SUM(u.prompt_tokens) AS prompt_tokens, SUM(u.completion_tokens) AS completion_tokens \
             FROM token_usage u JOIN tenants t ON t.id = u.tenant_id WHERE (?1 IS NULL OR u.tenant_id = ?1) \
             GROUP BY u.tenant_id, u.project, u.key_id, u.model ORDER BY t.name, u.project, u.key_id, u.model",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TokenUsageRow {
                    tenant_id: row.try_get("tenant_id")?,
                    tenant_name: row.try_get("tenant_name")?,
                    project: row.try_get("project")?,
                    key_id: row.try_get("key_id")?,
                    model: row.try_get("model")?,
                    minute: 0,
                    requests: to_u64(row.try_get("requests")?, "requests")?,
                    prompt_tokens: to_u64(row.try_get("prompt_tokens")?, "prompt_tokens")?,
                    completion_tokens: to_u64(
                        row.try_get("completion_tokens")?,
                        "completion_tokens",
                    )?,
                })
            })
            .collect()
    }

    /// Prompt and completion tokens per tenant and key since `minute` (ms since the epoch), for
    /// the budgets of the month under way.
    pub async fn tokens_since(&self, minute: i64) -> Result<Vec<(String, String, u64)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, key_id, SUM(prompt_tokens + completion_tokens) AS tokens \
             FROM token_usage WHERE minute >= ? GROUP BY tenant_id, key_id",
        )
        .bind(minute)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("tenant_id")?,
                    row.try_get("key_id")?,
                    to_u64(row.try_get("tokens")?, "tokens")?,
                ))
            })
            .collect()
    }
}
