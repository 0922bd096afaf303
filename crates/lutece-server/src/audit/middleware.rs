//! Every call that changes something is recorded before it runs (`started`) and when it has
//! answered (its status); every failed authentication is recorded too. A call whose start
//! cannot be recorded is refused without running.

use crate::auth::{Caller, bearer};
use crate::error::ApiError;
use crate::state::{AppState, now_ms};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lutece_api::Role;
use lutece_vault::audit::Record;
use std::net::SocketAddr;

/// The agent protocol's telemetry (heartbeats, log chunks): a node's own reports, many a
/// second across a fleet, recorded by their effects (job states) rather than one by one.
fn telemetry(path: &str) -> bool {
    path == "/api/v1/agent/heartbeat" || path.starts_with("/api/v1/agent/logs/")
}

/// Inference (`/v1` and `/mistral/v1`): a question to a model changes nothing stored, and is
/// metered rather than recorded; only a failed authentication is recorded.
fn inference(path: &str) -> bool {
    path.starts_with("/mistral/")
        || matches!(
            path,
            "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" | "/v1/models"
        )
}

pub(crate) async fn audit_requests(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let agent = path.starts_with("/api/v1/agent/");
    let mutating = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        && !telemetry(&path)
        && !inference(&path);
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    // Who is calling, looked up once here and handed to the handler.
    let (parts, body) = request.into_parts();
    let caller = match bearer(&parts) {
        Some(_) if !agent && !inference(&path) => {
            match Caller::authenticate(&parts, &state).await {
                Ok(caller) => Some(caller),
                Err(ApiError::Unauthenticated) => None,
                // Who is calling cannot be known (the store failed): a call that would change
                // something is not let through unrecorded.
                Err(error) if mutating => return error.into_response(),
                Err(_) => None,
            }
        }
        _ => None,
    };
    request = Request::from_parts(parts, body);
    if let Some(caller) = &caller {
        request.extensions_mut().insert(caller.clone());
    }
    let actor = match &caller {
        Some(c) => c.key_id.clone(),
        None if agent => "node".to_owned(),
        None => "anonymous".to_owned(),
    };
    // Every route that changes something wants a key, but the agent protocol's (a node's
    // credential): a call without a valid key changes nothing, and only its refusal is recorded.
    let recorded = mutating && (caller.is_some() || agent);
    // Whose trail the call joins, looked up only for a call that is recorded.
    let tenant = if recorded {
        tenant_of(&state, caller.as_ref(), &path).await
    } else {
        None
    };
    let record = |result: String| Record {
        at_ms: now_ms(),
        actor: actor.clone(),
        tenant: tenant.clone(),
        action: format!("{method} {path}"),
        object: None,
        source: source.clone(),
        result,
    };
    if recorded
        && state
            .audit
            .record(record("started".to_owned()))
            .await
            .is_err()
    {
        return ApiError::AuditUnavailable.into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    if recorded || status == StatusCode::UNAUTHORIZED {
        let mut entry = record(outcome(status));
        if status == StatusCode::UNAUTHORIZED {
            entry.action = format!("auth.failed {method} {path}");
        }
        if let Err(error) = state.audit.record(entry).await {
            tracing::error!(%error, %path, "the outcome of a call could not be recorded");
        }
    }
    response
}

/// What a status says happened.
fn outcome(status: StatusCode) -> String {
    let word = match status.as_u16() {
        200..=399 => "ok",
        401 | 403 => "denied",
        400..=499 => "refused",
        _ => "failed",
    };
    format!("{} {word}", status.as_u16())
}

/// The tenant whose trail the call joins: the caller's own, unless an operator acts on a
/// tenant named in the path (`/api/v1/tenants/{name}…`).
async fn tenant_of(state: &AppState, caller: Option<&Caller>, path: &str) -> Option<String> {
    let named = path
        .strip_prefix("/api/v1/tenants/")
        .and_then(|rest| rest.split('/').next())
        .filter(|name| !name.is_empty());
    match (caller, named) {
        (Some(c), _) if c.role != Role::Operator => Some(c.tenant_id.clone()),
        (Some(_), Some(name)) => match state.store.any_tenant_by_name(name).await {
            Ok(Some((tenant, _))) => Some(tenant.id),
            _ => None,
        },
        _ => None,
    }
}
