//! `/api/v1/nodes`, `/api/v1/usage`, `/api/v1/usage/tokens`.

use crate::auth::{Caller, hash_secret, new_id, random_hex};
use crate::convert;
use crate::error::ApiError;
use crate::state::{AppState, NODE_TIMEOUT_MS, now_ms};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use lutece_api::{ErrorBody, Node, Role, TokenUsage, UsageRow};
use lutece_core::Resources;
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

#[utoipa::path(get, path = "/api/v1/nodes", tag = "fleet", responses((status = 200, body = Vec<Node>)))]
pub(crate) async fn list_nodes(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<Node>>, ApiError> {
    let nodes = state.store.list_nodes().await?;
    let mut allocated: HashMap<String, Resources> = HashMap::new();
    for allocation in state.store.allocations().await? {
        let entry = allocated.entry(allocation.node_id).or_default();
        *entry = entry.saturating_add(&allocation.resources);
    }
    let now = now_ms();
    let nodes = nodes
        .into_iter()
        .map(|node| {
            let up = now - node.last_seen_at <= NODE_TIMEOUT_MS;
            let used = allocated.get(&node.id).copied().unwrap_or_default();
            convert::node(node, up, used)
        })
        .collect();
    Ok(Json(nodes))
}

/// A token that lets one more agent join: `lutece agent --join URL --token TOKEN`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct JoinToken {
    pub(crate) id: String,
    /// Shown once; stored only as a hash.
    pub(crate) token: String,
}

#[utoipa::path(post, path = "/api/v1/nodes/join-tokens", tag = "fleet",
    responses((status = 201, body = JoinToken), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_join_token(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<JoinToken>), ApiError> {
    caller.require(Role::Operator)?;
    let id = new_id("jt")?;
    let token = format!("ljt_{}", random_hex(20)?);
    state
        .store
        .create_join_token(&id, &hash_secret(&token), now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(JoinToken { id, token })))
}

#[utoipa::path(get, path = "/api/v1/usage", tag = "fleet", responses((status = 200, body = Vec<UsageRow>)))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UsageRow>>, ApiError> {
    let rows = state.store.usage_summary(caller.scope()).await?;
    Ok(Json(rows.into_iter().map(convert::usage).collect()))
}

#[utoipa::path(get, path = "/api/v1/usage/tokens", tag = "fleet",
    responses((status = 200, body = Vec<TokenUsage>, description = "tokens metered by /v1, per tenant, key and model")))]
pub(crate) async fn token_usage(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<TokenUsage>>, ApiError> {
    let rows = state.store.token_usage_summary(caller.scope()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| TokenUsage {
                tenant: row.tenant_name,
                project: row.project,
                key_id: row.key_id,
                model: row.model,
                requests: row.requests,
                prompt_tokens: row.prompt_tokens,
                completion_tokens: row.completion_tokens,
            })
            .collect(),
    ))
}
