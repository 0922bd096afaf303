//! Deployments: a model served by a number of long-running replicas. Each replica is a job
//! (placed by the scheduler, run by an agent, metered like any job); a replica that ends is
//! replaced by a new job until the deployment is deleted.

use crate::fleet::{to_i64, to_u64};
use crate::jobs::{from_json, insert_job, to_json};
use crate::{NewJob, Result, Store, StoreError};
use lutece_core::{JobState, Resources};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

const DEPLOYMENT_COLUMNS: &str = "d.id, d.tenant_id, t.name AS tenant_name, d.name, d.model, d.project, d.command, \
    d.cpus_milli, d.memory_bytes, d.gpus, d.replicas, d.shared, d.created_at";

/// A deployment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRow {
    pub id: String,
    pub tenant_id: String,
    /// Filled in when read; ignored on insert.
    pub tenant_name: String,
    /// The model id clients send to `/v1`.
    pub name: String,
    /// The registered model it serves; None for an external engine's command.
    pub model: Option<String>,
    pub project: String,
    /// What each replica runs.
    pub command: Vec<String>,
    pub per_replica: Resources,
    pub replicas: u32,
    /// Served to every tenant, not only its own (platform models).
    pub shared: bool,
    pub created_at: i64,
}

/// One live replica: a job of a deployment that has not ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRow {
    pub deployment_id: String,
    pub job_id: String,
    pub state: JobState,
    /// The address of the node it runs on, once placed.
    pub node_address: Option<String>,
    /// That node's jurisdiction, if it declared one.
    pub node_jurisdiction: Option<String>,
}

impl Store {
    pub async fn create_deployment(&self, deployment: &DeploymentRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO deployments (id, tenant_id, name, model, project, command, cpus_milli, memory_bytes, gpus, \
             replicas, shared, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&deployment.id)
        .bind(&deployment.tenant_id)
        .bind(&deployment.name)
        .bind(&deployment.model)
        .bind(&deployment.project)
        .bind(to_json(&deployment.command)?)
        .bind(to_i64(deployment.per_replica.cpus_milli))
        .bind(to_i64(deployment.per_replica.memory_bytes))
        .bind(deployment.per_replica.gpus)
        .bind(deployment.replicas)
        .bind(deployment.shared)
        .bind(deployment.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| crate::conflict_or(e, || format!("deployment {:?}", deployment.name)))?;
        Ok(())
    }

    /// The live deployment `name` of a tenant.
    pub async fn deployment(&self, tenant_id: &str, name: &str) -> Result<Option<DeploymentRow>> {
        let sql = format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d JOIN tenants t ON t.id = d.tenant_id \
             WHERE d.tenant_id = ? AND d.name = ? AND d.deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    /// Live deployments of one tenant, or of all when None.
    pub async fn list_deployments(&self, tenant_id: Option<&str>) -> Result<Vec<DeploymentRow>> {
        let sql = format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments d JOIN tenants t ON t.id = d.tenant_id \
             WHERE d.deleted_at IS NULL AND (?1 IS NULL OR d.tenant_id = ?1) ORDER BY t.name, d.name"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .fetch_all(&self.writer)
            .await?;
        rows.iter().map(deployment_from_row).collect()
    }

    /// Sets how many replicas a live deployment wants.
    pub async fn scale_deployment(&self, id: &str, replicas: u32) -> Result<()> {
        let done =
            sqlx::query("UPDATE deployments SET replicas = ? WHERE id = ? AND deleted_at IS NULL")
                .bind(replicas)
                .bind(id)
                .execute(&self.writer)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("deployment {id:?}"),
            });
        }
        Ok(())
    }

    /// Deletes a deployment and stops its replicas (queued ones end at once, placed ones are
    /// marked for their agents to stop), in one transaction. Returns the nodes to wake.
    pub async fn delete_deployment(&self, id: &str, now: i64) -> Result<Vec<String>> {
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE deployments SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: format!("deployment {id:?}"),
            });
        }
        let mine = "SELECT job_id FROM deployment_replicas WHERE deployment_id = ?";
        sqlx::query(&format!(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, reason = 'its deployment was deleted' \
             WHERE state = 'queued' AND id IN ({mine})"
        ))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE jobs SET cancel_requested = 1 WHERE state IN ('scheduled', 'running') AND id IN ({mine})"
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let nodes: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT DISTINCT node_id FROM tasks WHERE state IN ('assigned', 'running') AND job_id IN ({mine})"
        ))
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(nodes)
    }

    /// Queues a new replica of a live deployment: the job and its link, in one transaction.
    pub async fn add_replica(&self, deployment_id: &str, job: &NewJob) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        let live: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM deployments WHERE id = ? AND deleted_at IS NULL")
                .bind(deployment_id)
                .fetch_optional(&mut *tx)
                .await?;
        if live.is_none() {
            return Err(StoreError::NotFound {
                what: format!("deployment {deployment_id:?}"),
            });
        }
        insert_job(&mut tx, job).await?;
        sqlx::query("INSERT INTO deployment_replicas (job_id, deployment_id) VALUES (?, ?)")
            .bind(&job.id)
            .bind(deployment_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The replicas that have not ended, of every deployment (deleted ones included: their
    /// replicas may still be stopping).
    pub async fn live_replicas(&self) -> Result<Vec<ReplicaRow>> {
        let rows = sqlx::query(
            "SELECT r.deployment_id, j.id AS job_id, j.state, COALESCE(n.address, n.hostname) AS node_address, n.jurisdiction AS node_jurisdiction \
             FROM deployment_replicas r JOIN jobs j ON j.id = r.job_id \
             LEFT JOIN tasks tk ON tk.job_id = j.id AND tk.rank = 0 LEFT JOIN nodes n ON n.id = tk.node_id \
             WHERE j.state IN ('queued', 'scheduled', 'running') ORDER BY j.created_at, j.id",
        )
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(ReplicaRow {
                    deployment_id: row.try_get("deployment_id")?,
                    job_id: row.try_get("job_id")?,
                    state: JobState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
                    node_address: row.try_get("node_address")?,
                    node_jurisdiction: row.try_get("node_jurisdiction")?,
                })
            })
            .collect()
    }
}

fn deployment_from_row(row: &SqliteRow) -> Result<DeploymentRow> {
    Ok(DeploymentRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        tenant_name: row.try_get("tenant_name")?,
        name: row.try_get("name")?,
        model: row.try_get("model")?,
        project: row.try_get("project")?,
        command: from_json(&row.try_get::<String, _>("command")?)?,
        per_replica: Resources {
            cpus_milli: to_u64(row.try_get("cpus_milli")?, "cpus_milli")?,
            memory_bytes: to_u64(row.try_get("memory_bytes")?, "memory_bytes")?,
            gpus: row.try_get("gpus")?,
        },
        replicas: row.try_get("replicas")?,
        shared: row.try_get("shared")?,
        created_at: row.try_get("created_at")?,
    })
}
