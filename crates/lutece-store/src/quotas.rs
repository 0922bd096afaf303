//! Tenants' GPU quotas for jobs: a guarantee, a borrowing limit, a cohort and a fair-share
//! weight, read by the reconciler on every scheduling pass.

use crate::{Result, Store, StoreError};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// A tenant's GPU quota as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuQuotaRow {
    /// `None`: no quota at all.
    pub guaranteed_gpus: Option<u32>,
    /// `None`: as many as its cohort leaves idle.
    pub borrow_limit_gpus: Option<u32>,
    /// `None`: a cohort of its own (it cannot borrow).
    pub cohort: Option<String>,
    pub weight: u32,
}

impl Default for GpuQuotaRow {
    fn default() -> Self {
        GpuQuotaRow {
            guaranteed_gpus: None,
            borrow_limit_gpus: None,
            cohort: None,
            weight: 1,
        }
    }
}

const COLUMNS: &str = "guaranteed_gpus, gpu_borrow_limit, gpu_cohort, fair_share_weight";

impl Store {
    /// One tenant's GPU quota.
    pub async fn gpu_quota(&self, tenant_id: &str) -> Result<GpuQuotaRow> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tenants WHERE id = ?"))
            .bind(tenant_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("tenant {tenant_id:?}"),
            })?;
        quota_from_row(&row)
    }

    /// Sets (replaces) a tenant's GPU quota.
    pub async fn set_gpu_quota(&self, tenant_id: &str, quota: &GpuQuotaRow) -> Result<()> {
        let done = sqlx::query(
            "UPDATE tenants SET guaranteed_gpus = ?, gpu_borrow_limit = ?, gpu_cohort = ?, \
             fair_share_weight = ? WHERE id = ?",
        )
        .bind(quota.guaranteed_gpus)
        .bind(quota.borrow_limit_gpus)
        .bind(quota.cohort.as_deref())
        .bind(quota.weight)
        .bind(tenant_id)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("tenant {tenant_id:?}"),
            });
        }
        Ok(())
    }

    /// The quota of every tenant that has one or a weight other than 1, by tenant id.
    pub async fn gpu_quotas(&self) -> Result<Vec<(String, GpuQuotaRow)>> {
        let rows = sqlx::query(&format!(
            "SELECT id, {COLUMNS} FROM tenants \
             WHERE guaranteed_gpus IS NOT NULL OR fair_share_weight != 1 ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, quota_from_row(row)?)))
            .collect()
    }
}

fn quota_from_row(row: &SqliteRow) -> Result<GpuQuotaRow> {
    Ok(GpuQuotaRow {
        guaranteed_gpus: row.try_get("guaranteed_gpus")?,
        borrow_limit_gpus: row.try_get("gpu_borrow_limit")?,
        cohort: row.try_get("gpu_cohort")?,
        weight: row.try_get("fair_share_weight")?,
    })
}
