//! Mistral's dialect of the API, under `/mistral/v1` (a Mistral client's `server_url` is the
//! platform's URL + `/mistral`). The endpoints, and the parameter names the replicas accept
//! (`random_seed`, `safe_prompt`, `tool_choice: "any"`), are the same as on `/v1`; what differs
//! is what Mistral answers differently:
//! - a request that fails validation is a 422 whose `detail` lists the offending fields by
//!   location (`["body", "temperature"]`), which Mistral's SDK raises as `HTTPValidationError`;
//! - model cards carry `type` and `capabilities`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use lutece_api::ModelKind;
use lutece_api::openai::{Capabilities, ErrorResponse, ModelList};
use serde_json::{Value, json};

use crate::error::OpenAiError;
use crate::proxy::{Authenticator, Gateway, forward, model_list};

/// The largest error body the dialect rewrites (errors are a few hundred bytes).
const MAX_ERROR_BYTES: usize = 64 << 10;

/// The routes, to nest under `/mistral`.
pub(crate) fn router<A: Authenticator>() -> Router<Arc<Gateway<A>>> {
    Router::new()
        .route("/v1/models", get(models::<A>))
        .route("/v1/chat/completions", post(forward::<A>))
        .route("/v1/completions", post(forward::<A>))
        .route("/v1/embeddings", post(forward::<A>))
        .layer(axum::middleware::map_response(validation_errors))
}

async fn models<A: Authenticator>(
    State(gateway): State<Arc<Gateway<A>>>,
    headers: HeaderMap,
) -> Result<axum::Json<ModelList>, OpenAiError> {
    model_list(&gateway, &headers, |kind, mut card| {
        card.card_type = Some("base".into());
        card.capabilities = Some(Capabilities {
            completion_chat: kind == ModelKind::Generative,
            ..Capabilities::default()
        });
        card
    })
    .await
}

/// Turns OpenAI's 400 about a parameter into Mistral's 422; every other answer passes as it is.
async fn validation_errors(response: Response) -> Response {
    if response.status() != StatusCode::BAD_REQUEST {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BYTES).await else {
        return Response::from_parts(parts, Body::from("bad request"));
    };
    let Ok(error) = serde_json::from_slice::<ErrorResponse>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let body = validation_error(&error);
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Mistral's (FastAPI's) validation error for OpenAI's error `e`.
fn validation_error(e: &ErrorResponse) -> Value {
    let error = &e.error;
    let mut loc = vec![json!("body")];
    if let Some(param) = &error.param {
        loc.extend(location(param));
    }
    json!({
        "object": "error",
        "message": error.message,
        "type": error.kind,
        "detail": [{
            "loc": loc,
            "msg": error.message,
            "type": error.code.as_deref().unwrap_or("value_error"),
        }],
    })
}

/// `messages[0].content` → `["messages", 0, "content"]`.
fn location(param: &str) -> Vec<Value> {
    let mut parts = Vec::new();
    for segment in param.split('.') {
        let mut pieces = segment.split('[');
        if let Some(name) = pieces.next().filter(|n| !n.is_empty()) {
            parts.push(json!(name));
        }
        for index in pieces {
            let index = index.trim_end_matches(']');
            match index.parse::<u64>() {
                Ok(i) => parts.push(json!(i)),
                Err(_) => parts.push(json!(index)),
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_locations() {
        assert_eq!(location("temperature"), [json!("temperature")]);
        assert_eq!(
            location("messages[0].content"),
            [json!("messages"), json!(0), json!("content")]
        );
        assert_eq!(location("input[12]"), [json!("input"), json!(12)]);
    }

    #[test]
    fn an_openai_error_becomes_a_validation_error() {
        let e = ErrorResponse::new("invalid_request_error", "temperature must be at most 2")
            .with_param("temperature");
        assert_eq!(
            validation_error(&e),
            json!({
                "object": "error",
                "message": "temperature must be at most 2",
                "type": "invalid_request_error",
                "detail": [{
                    "loc": ["body", "temperature"],
                    "msg": "temperature must be at most 2",
                    "type": "value_error",
                }],
            })
        );
    }
}
