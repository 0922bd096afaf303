//! `/api/v1/jobs`: submit, list, inspect, cancel, and read the output of jobs.

use crate::auth::{Caller, new_id};
use crate::convert;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::jobspec;
use crate::state::{AppState, now_ms};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lutece_api::{ErrorBody, Job, JobSpec};
use lutece_core::JobState;
use lutece_store::{JobRow, NewJob};
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

#[utoipa::path(post, path = "/api/v1/jobs", request_body = JobSpec, tag = "jobs",
    responses((status = 201, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(crate) async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(spec): JsonBody<JobSpec>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let valid = jobspec::validate(spec, state.check_programs)?;
    let job = NewJob {
        id: new_id("job")?,
        tenant_id: caller.tenant_id.clone(),
        project: valid.project,
        name: valid.name,
        command: valid.command,
        env: valid.env,
        per_task: valid.per_task,
        nodes: valid.nodes,
        priority: valid.priority,
        created_at: now_ms(),
    };
    state.store.insert_job(&job).await?;
    tracing::info!(job_id = %job.id, tenant = %caller.tenant_name, "job queued");
    state.reconcile.notify_one();
    let row = JobRow {
        spec: job,
        tenant_name: caller.tenant_name,
        state: JobState::Queued,
        reason: None,
        exit_code: None,
        cancel_requested: false,
        scheduled_at: None,
        started_at: None,
        finished_at: None,
    };
    Ok((StatusCode::CREATED, Json(convert::job(row, Vec::new()))))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only jobs in this state.
    state: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/jobs", params(ListQuery), tag = "jobs",
    responses((status = 200, body = Vec<Job>), (status = 400, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Job>>, ApiError> {
    let wanted = match &query.state {
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::invalid("state", format!("{s:?} is not a state; use queued, scheduled, running, succeeded, failed or cancelled"))
        })?),
        None => None,
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be from 1 to 1000"));
    }
    let rows = state.store.list_jobs(caller.scope(), wanted, limit).await?;
    // Jobs (their commands and environments) are their tenants' data.
    let owners = rows.iter().map(|r| r.spec.tenant_id.as_str());
    state.audit.operator_lists(&caller, owners, "jobs").await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let tasks = state.store.tasks_of(&row.spec.id).await?;
        jobs.push(convert::job(row, tasks));
    }
    Ok(Json(jobs))
}

async fn visible_job(state: &AppState, caller: &Caller, id: &str) -> Result<JobRow, ApiError> {
    state
        .store
        .job(id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id:?}")))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let row = visible_job(&state, &caller, &id).await?;
    state
        .audit
        .operator_acts(&caller, &row.spec.tenant_id, "read", &id)
        .await?;
    let tasks = state.store.tasks_of(&id).await?;
    Ok(Json(convert::job(row, tasks)))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", responses((status = 200, body = Job), (status = 404, body = ErrorBody)))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    // An operator's cancel of a tenant's job goes in that tenant's trail first.
    if caller.role == lutece_api::Role::Operator {
        let job = visible_job(&state, &caller, &id).await?;
        state
            .audit
            .operator_acts(&caller, &job.spec.tenant_id, "cancel", &id)
            .await?;
    }
    let row = state
        .store
        .cancel_job(&id, caller.scope(), now_ms())
        .await?;
    let tasks = state.store.tasks_of(&id).await?;
    for task in &tasks {
        state.nodes.wake(&task.node_id);
    }
    tracing::info!(job_id = %id, "job cancel requested");
    Ok(Json(convert::job(row, tasks)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogsQuery {
    /// Which task's output (default 0).
    rank: Option<u32>,
    /// Keep the response open and send new output until the job ends.
    follow: Option<bool>,
    /// Start at this byte (default 0).
    offset: Option<u64>,
    /// Without `follow`: answer at most this many bytes (default and maximum 8 MiB); the
    /// `Lutece-Next-Offset` header says where the next read starts. Read pages until one is empty.
    limit: Option<u64>,
}

const LOG_CHUNK: usize = 256 * 1024;
/// The most bytes a read without `follow` answers, and how many it answers by default.
pub(crate) const MAX_LOG_PAGE: u64 = 8 << 20;
/// The header of a read without `follow` that tells the offset of the next read.
pub(crate) const NEXT_OFFSET_HEADER: &str = "lutece-next-offset";

#[utoipa::path(get, path = "/api/v1/jobs/{id}/logs", params(LogsQuery), tag = "jobs",
    responses((status = 200, description = "the task's combined stdout and stderr; without follow, at most `limit` bytes from `offset`", content_type = "text/plain",
        headers(("lutece-next-offset" = u64, description = "without follow: the offset to read the next page from"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let job = visible_job(&state, &caller, &id).await?;
    // A job's output is its tenant's data: an operator's read of it goes in the tenant's trail.
    let object = format!("{id} output");
    state
        .audit
        .operator_acts(&caller, &job.spec.tenant_id, "read", &object)
        .await?;
    let rank = query.rank.unwrap_or(0);
    if rank >= job.spec.nodes {
        return Err(ApiError::invalid(
            "rank",
            format!("the job has ranks 0 to {}", job.spec.nodes - 1),
        ));
    }
    let offset = query.offset.unwrap_or(0);
    let follow = query.follow.unwrap_or(false);
    if let Some(limit) = query.limit {
        if follow {
            return Err(ApiError::invalid(
                "limit",
                "applies to a read without follow",
            ));
        }
        if !(1..=MAX_LOG_PAGE).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("must be from 1 to {MAX_LOG_PAGE}"),
            ));
        }
    }
    let plain = (header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if !follow {
        // One page, never the whole file: a task's output can be larger than memory.
        let limit = query.limit.unwrap_or(MAX_LOG_PAGE);
        let mut out = Vec::new();
        while (out.len() as u64) < limit {
            let want = (limit - out.len() as u64).min(LOG_CHUNK as u64) as usize;
            let chunk = state
                .logs
                .read(&id, rank, offset + out.len() as u64, want)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        let next = (offset + out.len() as u64).to_string();
        return Ok((
            [
                plain,
                (
                    header::HeaderName::from_static(NEXT_OFFSET_HEADER),
                    next.as_str(),
                ),
            ],
            out,
        )
            .into_response());
    }
    let follow = Follow {
        state,
        job_id: id,
        rank,
        offset,
        finished: false,
    };
    let stream = futures_util::stream::unfold(follow, Follow::next);
    Ok(([plain], Body::from_stream(stream)).into_response())
}

/// A follower of one task's output: yields new bytes as they arrive, and ends once the job
/// has ended and everything it wrote was sent.
struct Follow {
    state: AppState,
    job_id: String,
    rank: u32,
    offset: u64,
    finished: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Follow)> {
        loop {
            let chunk = match self
                .state
                .logs
                .read(&self.job_id, self.rank, self.offset, LOG_CHUNK)
                .await
            {
                Ok(chunk) => chunk,
                Err(error) => {
                    return Some((
                        Err(error),
                        Follow {
                            finished: true,
                            ..self
                        },
                    ));
                }
            };
            if !chunk.is_empty() {
                self.offset += chunk.len() as u64;
                return Some((Ok(Bytes::from(chunk)), self));
            }
            if self.finished {
                return None;
            }
            match self.state.store.job(&self.job_id, None).await {
                // One more read after the end is seen, for output that landed just before.
                Ok(Some(job)) if job.state.is_terminal() => self.finished = true,
                Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
                Ok(None) | Err(_) => return None,
            }
        }
    }
}
