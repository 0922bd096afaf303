//! `/api/v1/agent/*`: the agent protocol over HTTP, for agents on other machines.
//! Registration takes a join token (or the node's own credential); every other call the
//! node's credential.

use crate::auth::{bearer, constant_time_eq, hash_secret};
use crate::control;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use lutece_api::{
    Heartbeat, HeartbeatReply, LogAck, LogChunk, RegisterNode, Registered, TaskRef, TaskReport,
};
use serde::Deserialize;

/// Checks that the bearer token is `node_id`'s credential.
async fn authenticate_node(
    state: &AppState,
    token: Option<&str>,
    node_id: &str,
) -> Result<(), ApiError> {
    let token = token.ok_or(ApiError::Unauthenticated)?;
    let node = state
        .store
        .node(node_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if constant_time_eq(&hash_secret(token), &node.credential_hash) {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated)
    }
}

/// The bearer token of a request, owned, so the body can be read after it.
pub(crate) struct Bearer(Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Bearer(bearer(parts).map(str::to_owned)))
    }
}

pub(crate) async fn register(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(request): JsonBody<RegisterNode>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    // A new node needs a valid join token; without one, only a known node presenting its own
    // credential may register again (checked in `control::register`).
    let may_join = match token.as_deref() {
        Some(token) => state.store.join_token_exists(&hash_secret(token)).await?,
        None => false,
    };
    let registered = control::register(&state, request, may_join).await?;
    Ok((StatusCode::OK, Json(registered)))
}

pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(request): JsonBody<Heartbeat>,
) -> Result<Json<HeartbeatReply>, ApiError> {
    authenticate_node(&state, token.as_deref(), &request.node_id).await?;
    Ok(Json(control::heartbeat(&state, request).await?))
}

pub(crate) async fn report(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(request): JsonBody<TaskReport>,
) -> Result<StatusCode, ApiError> {
    authenticate_node(&state, token.as_deref(), &request.node_id).await?;
    control::report(&state, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogQuery {
    node_id: String,
    offset: u64,
}

pub(crate) async fn append_log(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Path((job_id, rank)): Path<(String, u32)>,
    Query(query): Query<LogQuery>,
    body: Bytes,
) -> Result<Json<LogAck>, ApiError> {
    authenticate_node(&state, token.as_deref(), &query.node_id).await?;
    let chunk = LogChunk {
        node_id: query.node_id,
        task: TaskRef { job_id, rank },
        offset: query.offset,
        data: body.to_vec(),
    };
    Ok(Json(control::append_log(&state, chunk).await?))
}
