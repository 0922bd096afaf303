//! `/api/v1/deployments`: serve models on replicas that the scheduler places.

use crate::auth::{Caller, new_id};
use crate::deployments::{endpoint, scope};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::{AppState, now_ms};
use crate::{convert, jobspec};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lutece_api::{
    CreateDeployment, Deployment, ErrorBody, JobResources, Replica, Role, ScaleDeployment,
};
use lutece_core::validate_name;
use lutece_store::DeploymentRow;

/// The most replicas one deployment may ask for.
pub(crate) const MAX_REPLICAS: u32 = 64;

#[utoipa::path(post, path = "/api/v1/deployments", request_body = CreateDeployment, tag = "deployments",
    responses((status = 201, body = Deployment), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateDeployment>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let shared = request.shared.unwrap_or(false);
    if shared {
        caller.require(Role::Operator)?;
    }
    // The model must not be removed between the check that it exists and the insert.
    let held = state.models_lock.lock().await;
    let row = validate(&state, &caller, request, shared)?;
    state.store.create_deployment(&row).await?;
    drop(held);
    tracing::info!(deployment = %row.name, tenant = %caller.tenant_name, "deployment created");
    state.reconcile.notify_one();
    let row = DeploymentRow {
        tenant_name: caller.tenant_name,
        ..row
    };
    Ok((StatusCode::CREATED, Json(view(&state, row, &[]))))
}

/// Checks a request and makes the row to store; every refusal names its field.
fn validate(
    state: &AppState,
    caller: &Caller,
    request: CreateDeployment,
    shared: bool,
) -> Result<DeploymentRow, ApiError> {
    let CreateDeployment {
        name,
        model,
        command,
        replicas,
        resources,
        project,
        shared: _,
    } = request;
    let command = match (&model, command) {
        (Some(model), None) => worker_command(state, model, name.as_deref().unwrap_or(model))?,
        (None, Some(command)) => {
            // The same checks as a job's command, without requiring it on this machine.
            let spec = lutece_api::JobSpec {
                command,
                ..Default::default()
            };
            jobspec::validate(spec, false)?.command
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "command",
                "give either a model (served by the built-in engine) or a command (an external engine), not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "model",
                "is required: the model to serve, or a command that starts an OpenAI-compatible server",
            ));
        }
    };
    let name = match name.or_else(|| model.clone()) {
        Some(name) => name,
        None => {
            return Err(ApiError::invalid(
                "name",
                "is required for an external engine: the model id clients will send",
            ));
        }
    };
    validate_name(&name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let replicas = replicas.unwrap_or(1);
    if replicas > MAX_REPLICAS {
        return Err(ApiError::invalid(
            "replicas",
            format!("must be from 0 to {MAX_REPLICAS}"),
        ));
    }
    let per_replica = jobspec::resources_of(&resources, 1 << 30)?;
    let project = project.unwrap_or_else(|| "default".to_owned());
    validate_name(&project).map_err(|e| ApiError::invalid("project", e.to_string()))?;
    Ok(DeploymentRow {
        id: new_id("dep")?,
        tenant_id: caller.tenant_id.clone(),
        tenant_name: caller.tenant_name.clone(),
        name,
        model,
        project,
        command,
        per_replica,
        replicas,
        shared,
        created_at: now_ms(),
    })
}

/// `lutece worker` serving `model` from the platform's models directory. The agent runs the
/// binary it is itself for the program name `lutece`.
pub(crate) fn worker_command(
    state: &AppState,
    model: &str,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    validate_name(model).map_err(|e| ApiError::invalid("model", e.to_string()))?;
    let Some(path) = crate::models::find(&state.models_dir, model) else {
        let known = crate::models::list(&state.models_dir);
        let known = if known.is_empty() {
            "none yet".to_owned()
        } else {
            known.join(", ")
        };
        return Err(ApiError::invalid(
            "model",
            format!("no model {model:?} on this platform (known: {known})"),
        ));
    };
    Ok(vec![
        "lutece".into(),
        "worker".into(),
        "--model".into(),
        path.display().to_string(),
        "--model-id".into(),
        name.to_owned(),
    ])
}

#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments",
    responses((status = 200, body = Vec<Deployment>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Deployment>>, ApiError> {
    let rows = state.store.list_deployments(caller.scope()).await?;
    // A deployment's command is its tenant's data.
    let owners = rows.iter().map(|r| r.tenant_id.as_str());
    state
        .audit
        .operator_lists(&caller, owners, "deployments")
        .await?;
    let live = state.store.live_replicas().await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| view(&state, row, &live))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/deployments/{name}", tag = "deployments",
    responses((status = 200, body = Deployment), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Deployment>, ApiError> {
    let row = find(&state, &caller, &name).await?;
    state
        .audit
        .operator_acts(&caller, &row.tenant_id, "read", &row.id)
        .await?;
    let live = state.store.live_replicas().await?;
    Ok(Json(view(&state, row, &live)))
}

#[utoipa::path(patch, path = "/api/v1/deployments/{name}", request_body = ScaleDeployment, tag = "deployments",
    responses((status = 200, body = Deployment), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn scale(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<ScaleDeployment>,
) -> Result<Json<Deployment>, ApiError> {
    if request.replicas > MAX_REPLICAS {
        return Err(ApiError::invalid(
            "replicas",
            format!("must be from 0 to {MAX_REPLICAS}"),
        ));
    }
    let row = find(&state, &caller, &name).await?;
    state
        .store
        .scale_deployment(&row.id, request.replicas)
        .await?;
    state.reconcile.notify_one();
    let live = state.store.live_replicas().await?;
    let row = DeploymentRow {
        replicas: request.replicas,
        ..row
    };
    Ok(Json(view(&state, row, &live)))
}

#[utoipa::path(delete, path = "/api/v1/deployments/{name}", tag = "deployments",
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let row = find(&state, &caller, &name).await?;
    for node in state.store.delete_deployment(&row.id, now_ms()).await? {
        state.nodes.wake(&node);
    }
    tracing::info!(deployment = %row.name, "deployment deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own deployment of that name; another tenant's does not exist for it.
async fn find(state: &AppState, caller: &Caller, name: &str) -> Result<DeploymentRow, ApiError> {
    state
        .store
        .deployment(&caller.tenant_id, name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("deployment {name:?}")))
}

fn view(state: &AppState, row: DeploymentRow, live: &[lutece_store::ReplicaRow]) -> Deployment {
    let ready_urls = state.routes.replicas(&scope(&row));
    let replica_jobs: Vec<Replica> = live
        .iter()
        .filter(|r| r.deployment_id == row.id)
        .map(|r| {
            let endpoint = r.node_address.as_deref().map(|a| endpoint(a, &r.job_id));
            Replica {
                job_id: r.job_id.clone(),
                state: r.state.as_str().to_owned(),
                ready: endpoint.as_ref().is_some_and(|e| ready_urls.contains(e)),
                endpoint,
            }
        })
        .collect();
    Deployment {
        id: row.id,
        name: row.name,
        tenant: row.tenant_name,
        project: row.project,
        model: row.model,
        command: row.command,
        resources: JobResources {
            cpus_milli: row.per_replica.cpus_milli,
            memory_bytes: row.per_replica.memory_bytes,
            gpus_per_node: row.per_replica.gpus,
        },
        replicas: row.replicas,
        ready: replica_jobs.iter().filter(|r| r.ready).count() as u32,
        shared: row.shared,
        created_at: convert::time(row.created_at),
        replica_jobs,
    }
}
