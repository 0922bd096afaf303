//! `/api/v1/models`: the platform's models, which deployments serve with the built-in engine.
//! Everyone reads the list; operators import and remove.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::models;
use crate::state::AppState;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lutece_api::{ErrorBody, ImportModel, PlatformModel, Role};

#[utoipa::path(post, path = "/api/v1/models", request_body = ImportModel, tag = "models",
    responses((status = 201, body = PlatformModel), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ImportModel>,
) -> Result<(StatusCode, Json<PlatformModel>), ApiError> {
    caller.require(Role::Operator)?;
    let dir = state.models_dir.clone();
    let lock = Arc::clone(&state.models_lock);
    let place = move |appear: &dyn Fn() -> Result<(), ApiError>| {
        let _held = lock.blocking_lock();
        appear()
    };
    let ImportModel {
        path,
        url,
        name,
        sha256,
    } = request;
    let model = match (path, url) {
        (Some(path), None) => tokio::task::spawn_blocking(move || {
            models::import(&dir, &path, name, sha256.as_deref(), place)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("the import stopped: {e}")))??,
        (None, Some(url)) => models::import_url(&dir, &url, name, sha256.as_deref(), place).await?,
        _ => {
            return Err(ApiError::invalid(
                "path",
                "give either path (a file or directory on the control plane's machine) or url (a file to download)",
            ));
        }
    };
    Ok((StatusCode::CREATED, Json(model)))
}

#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, body = Vec<PlatformModel>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Json<Vec<PlatformModel>> {
    Json(
        models::list(&state.models_dir)
            .iter()
            .filter_map(|name| models::describe(&state.models_dir, name))
            .collect(),
    )
}

#[utoipa::path(get, path = "/api/v1/models/{name}", tag = "models",
    responses((status = 200, body = PlatformModel), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PlatformModel>, ApiError> {
    models::describe(&state.models_dir, &name)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("model {name}")))
}

/// Removes a model no deployment serves.
#[utoipa::path(delete, path = "/api/v1/models/{name}", tag = "models",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Operator)?;
    // No deployment of it may be created between the check and the removal.
    let _held = state.models_lock.lock().await;
    let users: Vec<String> = state
        .store
        .list_deployments(None)
        .await?
        .into_iter()
        .filter(|d| d.model.as_deref() == Some(name.as_str()))
        .map(|d| format!("{}/{}", d.tenant_name, d.name))
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict(format!(
            "model {name} is served by the deployments {}; delete them first",
            users.join(", ")
        )));
    }
    let dir = state.models_dir.clone();
    let target = name.clone();
    let removed = tokio::task::spawn_blocking(move || models::remove(&dir, &target))
        .await
        .map_err(|e| ApiError::Internal(format!("the removal stopped: {e}")))?
        .map_err(|e| ApiError::Internal(format!("cannot remove model {name}: {e}")))?;
    if !removed {
        return Err(ApiError::NotFound(format!("model {name}")));
    }
    tracing::info!(model = %name, "model removed");
    Ok(StatusCode::NO_CONTENT)
}
