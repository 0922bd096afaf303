//! Jobs, their tasks, and the usage a finished job leaves behind.
//!
//! Every state change is one transaction guarded by the state it starts from, so a change that
//! arrives twice (an agent retrying after a restart) or too late (a task reported after its job
//! was cancelled) is a no-op, never a second effect.

use crate::fleet::{to_i64, to_u64};
use crate::{JobRow, NewJob, Result, Store, StoreError, TaskOutcome, TaskRow, UsageSummaryRow};
use lutece_core::{JobState, Resources, TaskState};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

const JOB_COLUMNS: &str = "j.id, j.tenant_id, t.name AS tenant_name, j.project, j.name, j.command, j.env, \
    j.cpus_milli, j.memory_bytes, j.gpus_per_node, j.nodes, j.priority, j.state, j.reason, j.exit_code, \
    j.cancel_requested, j.created_at, j.scheduled_at, j.started_at, j.finished_at";
const TASK_COLUMNS: &str = "job_id, rank, node_id, gpus, state, pid, exit_code, reason, cpu_seconds_used, started_at, finished_at";

/// A task a node should run, with what it needs to start it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTask {
    pub task: TaskRow,
    pub job: JobRow,
    /// The address of the node that runs rank 0.
    pub master_host: String,
    /// The address of the node this task runs on.
    pub node_address: String,
    /// The job is being stopped: cancelled by a person, or another rank failed.
    pub stopping: bool,
}

/// What a running task holds on its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub job_id: String,
    pub tenant_id: String,
    pub node_id: String,
    pub resources: Resources,
    pub gpus: Vec<u32>,
}

impl Store {
    pub async fn insert_job(&self, job: &NewJob) -> Result<()> {
        let mut conn = self.writer.acquire().await?;
        insert_job(&mut conn, job).await
    }

    /// One job, seen from `tenant_id` (None: the operator, who sees every tenant's).
    pub async fn job(&self, id: &str, tenant_id: Option<&str>) -> Result<Option<JobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN tenants t ON t.id = j.tenant_id WHERE j.id = ?1 AND (?2 IS NULL OR j.tenant_id = ?2)"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    /// The newest jobs first, optionally of one tenant and one state.
    pub async fn list_jobs(
        &self,
        tenant_id: Option<&str>,
        state: Option<JobState>,
        limit: u32,
    ) -> Result<Vec<JobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN tenants t ON t.id = j.tenant_id \
             WHERE (?1 IS NULL OR j.tenant_id = ?1) AND (?2 IS NULL OR j.state = ?2) \
             ORDER BY j.created_at DESC, j.id DESC LIMIT ?3"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant_id)
            .bind(state.map(JobState::as_str))
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    pub async fn tasks_of(&self, job_id: &str) -> Result<Vec<TaskRow>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ? ORDER BY rank");
        let rows = sqlx::query(&sql)
            .bind(job_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Jobs waiting for a placement.
    pub async fn queued_jobs(&self) -> Result<Vec<JobRow>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN tenants t ON t.id = j.tenant_id WHERE j.state = 'queued' ORDER BY j.created_at, j.id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.writer).await?;
        rows.iter().map(job_from_row).collect()
    }

    /// What every unfinished task holds, node by node.
    pub async fn allocations(&self) -> Result<Vec<Allocation>> {
        let rows = sqlx::query(
            "SELECT t.job_id, j.tenant_id, t.node_id, t.gpus, j.cpus_milli, j.memory_bytes, \
             j.gpus_per_node FROM tasks t JOIN jobs j ON j.id = t.job_id \
             WHERE t.state IN ('assigned', 'running') ORDER BY t.job_id, t.rank",
        )
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Allocation {
                    job_id: row.try_get("job_id")?,
                    tenant_id: row.try_get("tenant_id")?,
                    node_id: row.try_get("node_id")?,
                    resources: Resources {
                        cpus_milli: to_u64(row.try_get("cpus_milli")?, "cpus_milli")?,
                        memory_bytes: to_u64(row.try_get("memory_bytes")?, "memory_bytes")?,
                        gpus: row.try_get("gpus_per_node")?,
                    },
                    gpus: from_json(&row.try_get::<String, _>("gpus")?)?,
                })
            })
            .collect()
    }

    /// Records why each job still waits; unchanged reasons are not rewritten.
    pub async fn set_waiting_reasons(&self, reasons: &[(String, String)]) -> Result<()> {
        if reasons.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        for (job_id, reason) in reasons {
            sqlx::query("UPDATE jobs SET reason = ?2 WHERE id = ?1 AND state = 'queued' AND reason IS NOT ?2")
                .bind(job_id)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves a queued job to `scheduled` with one task per `(node, gpus)`, rank by rank.
    /// Returns false (and changes nothing) when the job is no longer queued.
    pub async fn schedule_job(
        &self,
        job_id: &str,
        tasks: &[(String, Vec<u32>)],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let moved = sqlx::query(
            "UPDATE jobs SET state = 'scheduled', scheduled_at = ?, reason = NULL WHERE id = ? AND state = 'queued'",
        )
        .bind(now)
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        for (rank, (node_id, gpus)) in tasks.iter().enumerate() {
            sqlx::query("INSERT INTO tasks (job_id, rank, node_id, gpus, state) VALUES (?, ?, ?, ?, 'assigned')")
                .bind(job_id)
                .bind(rank as i64)
                .bind(node_id)
                .bind(to_json(gpus)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The unfinished tasks placed on `node_id`.
    pub async fn node_tasks(&self, node_id: &str) -> Result<Vec<NodeTask>> {
        let sql = format!(
            "SELECT {JOB_COLUMNS}, COALESCE(n0.address, n0.hostname) AS master_host, \
               COALESCE(n.address, n.hostname) AS node_address, \
               (j.cancel_requested = 1 OR EXISTS (SELECT 1 FROM tasks f WHERE f.job_id = j.id AND f.state = 'failed')) AS stopping, \
               tk.job_id AS tk_job_id, tk.rank AS tk_rank \
             FROM tasks tk JOIN jobs j ON j.id = tk.job_id JOIN tenants t ON t.id = j.tenant_id \
             JOIN tasks t0 ON t0.job_id = tk.job_id AND t0.rank = 0 JOIN nodes n0 ON n0.id = t0.node_id \
             JOIN nodes n ON n.id = tk.node_id WHERE tk.node_id = ? AND tk.state IN ('assigned', 'running') ORDER BY j.created_at, tk.rank"
        );
        let rows = sqlx::query(&sql)
            .bind(node_id)
            .fetch_all(&self.writer)
            .await?;
        let mut result = Vec::with_capacity(rows.len());
        for row in &rows {
            let job_id: String = row.try_get("tk_job_id")?;
            let rank: i64 = row.try_get("tk_rank")?;
            let task_sql =
                format!("SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ? AND rank = ?");
            let task_row = sqlx::query(&task_sql)
                .bind(&job_id)
                .bind(rank)
                .fetch_one(&self.writer)
                .await?;
            result.push(NodeTask {
                task: task_from_row(&task_row)?,
                job: job_from_row(row)?,
                master_host: row.try_get("master_host")?,
                node_address: row.try_get("node_address")?,
                stopping: row.try_get("stopping")?,
            });
        }
        Ok(result)
    }

    /// The agent confirmed a process for the task. Returns false when the task was not waiting
    /// to start on that node (a duplicate or late report).
    pub async fn task_started(
        &self,
        job_id: &str,
        rank: u32,
        node_id: &str,
        pid: u32,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let started = sqlx::query(
            "UPDATE tasks SET state = 'running', pid = ?, started_at = ? WHERE job_id = ? AND rank = ? AND node_id = ? AND state = 'assigned'",
        )
        .bind(pid)
        .bind(now)
        .bind(job_id)
        .bind(rank)
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
        if started.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'scheduled'")
            .bind(now)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records how a task ended; when it was the job's last, ends the job and records its
    /// usage, in the same transaction. Returns false for a task already finished.
    pub async fn task_finished(
        &self,
        job_id: &str,
        rank: u32,
        node_id: &str,
        outcome: &TaskOutcome,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        let finished = sqlx::query(
            "UPDATE tasks SET state = ?, exit_code = ?, reason = ?, cpu_seconds_used = ?, finished_at = ? \
             WHERE job_id = ? AND rank = ? AND node_id = ? AND state IN ('assigned', 'running')",
        )
        .bind(outcome.state.as_str())
        .bind(outcome.exit_code)
        .bind(&outcome.reason)
        .bind(outcome.cpu_seconds_used)
        .bind(now)
        .bind(job_id)
        .bind(rank)
        .bind(node_id)
        .execute(&mut *tx)
        .await?;
        if finished.rows_affected() == 0 {
            return Ok(false);
        }
        finish_job_if_done(&mut tx, job_id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Cancels a job of `tenant_id` (any tenant's when None): a queued job ends at once; a
    /// placed one is marked so its agents stop it. Returns the job as it is after the call.
    pub async fn cancel_job(&self, id: &str, tenant_id: Option<&str>, now: i64) -> Result<JobRow> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?1, reason = 'cancelled before it was placed' \
             WHERE id = ?2 AND (?3 IS NULL OR tenant_id = ?3) AND state = 'queued'",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1 AND (?2 IS NULL OR tenant_id = ?2) AND state IN ('scheduled', 'running')",
        )
        .bind(id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.job(id, tenant_id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: format!("job {id:?}"),
            })
    }

    /// Usage summed by tenant and project, for one tenant or all.
    pub async fn usage_summary(&self, tenant_id: Option<&str>) -> Result<Vec<UsageSummaryRow>> {
        let rows = sqlx::query(
            "SELECT t.name AS tenant_name, u.project, COUNT(*) AS jobs, SUM(u.gpu_seconds) AS gpu_seconds, \
             SUM(u.cpu_seconds) AS cpu_seconds, SUM(u.cpu_seconds_used) AS cpu_seconds_used \
             FROM usage_records u JOIN tenants t ON t.id = u.tenant_id WHERE (?1 IS NULL OR u.tenant_id = ?1) \
             GROUP BY t.name, u.project ORDER BY t.name, u.project",
        )
        .bind(tenant_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UsageSummaryRow {
                    tenant_name: row.try_get("tenant_name")?,
                    project: row.try_get("project")?,
                    jobs: to_u64(row.try_get("jobs")?, "jobs")?,
                    gpu_seconds: row.try_get("gpu_seconds")?,
                    cpu_seconds: row.try_get("cpu_seconds")?,
                    cpu_seconds_used: row.try_get("cpu_seconds_used")?,
                })
            })
            .collect()
    }
}

/// Ends the job when none of its tasks is left unfinished: cancelled if a person asked, else
/// succeeded when every task succeeded, else failed with the lowest failing rank's exit code
/// and reason. Records its usage at the same time.
async fn finish_job_if_done(tx: &mut SqliteConnection, job_id: &str, now: i64) -> Result<()> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE job_id = ? ORDER BY rank");
    let tasks: Vec<TaskRow> = sqlx::query(&sql)
        .bind(job_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(task_from_row)
        .collect::<Result<_>>()?;
    if tasks.iter().any(|t| !t.state.is_terminal()) {
        return Ok(());
    }
    let job_sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs j JOIN tenants t ON t.id = j.tenant_id WHERE j.id = ?"
    );
    let job = job_from_row(
        &sqlx::query(&job_sql)
            .bind(job_id)
            .fetch_one(&mut *tx)
            .await?,
    )?;
    // The rank that failed, rather than ranks stopped because of it.
    let first_failure = tasks
        .iter()
        .find(|t| t.state == TaskState::Failed)
        .or_else(|| tasks.iter().find(|t| t.state != TaskState::Succeeded));
    let (state, exit_code, reason) = match first_failure {
        _ if job.cancel_requested => (
            JobState::Cancelled,
            first_failure.and_then(|t| t.exit_code),
            Some("cancelled".to_owned()),
        ),
        None => (JobState::Succeeded, Some(0), None),
        Some(task) => (
            JobState::Failed,
            task.exit_code,
            Some(match &task.reason {
                Some(reason) => format!("rank {}: {reason}", task.rank),
                None => format!(
                    "rank {} exited with code {}",
                    task.rank,
                    task.exit_code.unwrap_or(-1)
                ),
            }),
        ),
    };
    sqlx::query(
        "UPDATE jobs SET state = ?, exit_code = ?, reason = ?, finished_at = ? WHERE id = ?",
    )
    .bind(state.as_str())
    .bind(exit_code)
    .bind(reason)
    .bind(now)
    .bind(job_id)
    .execute(&mut *tx)
    .await?;
    let (mut gpu_seconds, mut cpu_seconds, mut cpu_used) = (0.0, 0.0, 0.0);
    for task in &tasks {
        if let (Some(start), Some(end)) = (task.started_at, task.finished_at) {
            let seconds = (end - start).max(0) as f64 / 1000.0;
            gpu_seconds += seconds * f64::from(job.spec.per_task.gpus);
            cpu_seconds += seconds * job.spec.per_task.cpus_milli as f64 / 1000.0;
        }
        cpu_used += task.cpu_seconds_used;
    }
    sqlx::query(
        "INSERT INTO usage_records (job_id, tenant_id, project, gpu_seconds, cpu_seconds, cpu_seconds_used, recorded_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO NOTHING",
    )
    .bind(job_id)
    .bind(&job.spec.tenant_id)
    .bind(&job.spec.project)
    .bind(gpu_seconds)
    .bind(cpu_seconds)
    .bind(cpu_used)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{e} in {text:?}")))
}

fn job_from_row(row: &SqliteRow) -> Result<JobRow> {
    let state: String = row.try_get("state")?;
    Ok(JobRow {
        spec: NewJob {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            project: row.try_get("project")?,
            name: row.try_get("name")?,
            command: from_json(&row.try_get::<String, _>("command")?)?,
            env: from_json(&row.try_get::<String, _>("env")?)?,
            per_task: Resources {
                cpus_milli: to_u64(row.try_get("cpus_milli")?, "cpus_milli")?,
                memory_bytes: to_u64(row.try_get("memory_bytes")?, "memory_bytes")?,
                gpus: row.try_get("gpus_per_node")?,
            },
            nodes: row.try_get("nodes")?,
            priority: row.try_get("priority")?,
            created_at: row.try_get("created_at")?,
        },
        tenant_name: row.try_get("tenant_name")?,
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
        reason: row.try_get("reason")?,
        exit_code: row.try_get("exit_code")?,
        cancel_requested: row.try_get("cancel_requested")?,
        scheduled_at: row.try_get("scheduled_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn task_from_row(row: &SqliteRow) -> Result<TaskRow> {
    let state: String = row.try_get("state")?;
    Ok(TaskRow {
        job_id: row.try_get("job_id")?,
        rank: row.try_get("rank")?,
        node_id: row.try_get("node_id")?,
        gpus: from_json(&row.try_get::<String, _>("gpus")?)?,
        state: TaskState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("task state {state:?}")))?,
        pid: row.try_get("pid")?,
        exit_code: row.try_get("exit_code")?,
        reason: row.try_get("reason")?,
        cpu_seconds_used: row.try_get("cpu_seconds_used")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

pub(crate) async fn insert_job(conn: &mut SqliteConnection, job: &NewJob) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, tenant_id, project, name, command, env, cpus_milli, memory_bytes, gpus_per_node, \
         nodes, priority, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
    )
    .bind(&job.id)
    .bind(&job.tenant_id)
    .bind(&job.project)
    .bind(&job.name)
    .bind(to_json(&job.command)?)
    .bind(to_json(&job.env)?)
    .bind(to_i64(job.per_task.cpus_milli))
    .bind(to_i64(job.per_task.memory_bytes))
    .bind(job.per_task.gpus)
    .bind(job.nodes)
    .bind(job.priority)
    .bind(job.created_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| crate::conflict_or(e, || format!("job {:?}", job.id)))?;
    Ok(())
}
