//! The gateway's `/v1` routes: authenticate the caller's key, pick a replica of the model, and
//! pass the request and its (streamed) answer through unchanged.

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use lutece_api::ModelKind;
use lutece_api::openai::{Model, ModelList};

use crate::body::MAX_BODY_BYTES;
use crate::error::OpenAiError;
use crate::limits::{Limiter, RateLimits};
use crate::metering::{self, Meter, UsageTap};
use crate::routing::{Pick, Routes};

/// Who is calling, as far as the gateway needs to know.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    pub key_id: String,
    /// The tenant's rate limits.
    pub limits: RateLimits,
}

/// Resolves an API key to its caller: `Ok(None)` for an unknown or revoked key, `Err` when the
/// keys cannot be read (the request is refused with 503, never let through).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<Option<Caller>, String>> + Send;
}

/// The gateway's state.
pub struct Gateway<A> {
    pub routes: Arc<Routes>,
    auth: A,
    meter: Arc<dyn Meter>,
    limiter: Arc<Limiter>,
    http: reqwest::Client,
}

impl<A: Authenticator> Gateway<A> {
    pub fn new(auth: A, routes: Arc<Routes>, meter: Arc<dyn Meter>) -> Self {
        // Replicas are on the same network; a slow connect means a dead replica.
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            routes,
            auth,
            meter,
            limiter: Arc::default(),
            http,
        }
    }

    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, OpenAiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                OpenAiError::unauthorized(
                    "You didn't provide an API key. Send it in an Authorization header: Bearer KEY.",
                )
            })?;
        match self.auth.authenticate(token).await {
            Ok(Some(caller)) => Ok(caller),
            Ok(None) => Err(OpenAiError::unauthorized(
                "Incorrect API key provided. It is unknown or revoked.",
            )),
            Err(reason) => {
                tracing::warn!(%reason, "cannot check an API key");
                Err(OpenAiError::unavailable(
                    "cannot check API keys right now; retry shortly",
                ))
            }
        }
    }
}

/// `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`; the same under
/// `/mistral/v1` in Mistral's dialect (see [`crate::mistral`]).
pub fn router<A: Authenticator>(gateway: Arc<Gateway<A>>) -> Router {
    Router::new()
        .route("/v1/models", get(models::<A>))
        .route("/v1/chat/completions", post(forward::<A>))
        .route("/v1/completions", post(forward::<A>))
        .route("/v1/embeddings", post(forward::<A>))
        .nest("/mistral", crate::mistral::router())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(gateway)
}

async fn models<A: Authenticator>(
    State(gateway): State<Arc<Gateway<A>>>,
    headers: HeaderMap,
) -> Result<Json<ModelList>, OpenAiError> {
    model_list(&gateway, &headers, |_, card| card).await
}

/// The models the caller may use, each card shaped by `card`.
pub(crate) async fn model_list<A: Authenticator>(
    gateway: &Gateway<A>,
    headers: &HeaderMap,
    card: impl Fn(ModelKind, Model) -> Model,
) -> Result<Json<ModelList>, OpenAiError> {
    let caller = gateway.caller(headers).await?;
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let data = gateway
        .routes
        .models(&caller.tenant_id)
        .into_iter()
        .map(|(id, kind)| card(kind, Model::new(id, created)))
        .collect();
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}

/// The part of a request the gateway reads; the rest passes through untouched.
#[derive(serde::Deserialize)]
struct Routing {
    model: Option<serde_json::Value>,
}

pub(crate) async fn forward<A: Authenticator>(
    State(gateway): State<Arc<Gateway<A>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let caller = gateway.caller(&headers).await?;
    let routing: Routing = crate::body::parse(&body)?;
    let model = match routing.model {
        Some(serde_json::Value::String(m)) => m,
        Some(_) => {
            return Err(OpenAiError::invalid_param(
                "model",
                "'model' must be a string",
            ));
        }
        None => {
            return Err(OpenAiError::invalid_param(
                "model",
                "you must provide a model parameter",
            ));
        }
    };
    if let Err(limited) = gateway
        .limiter
        .admit(&caller.tenant_id, caller.limits, Instant::now())
    {
        return Err(OpenAiError::rate_limited(
            limited.message,
            limited.retry_after.as_secs_f64().ceil() as u64,
        ));
    }
    let in_flight = gateway
        .routes
        .pick(&caller.tenant_id, &model)
        .map_err(|pick| match pick {
            Pick::Unknown => OpenAiError::model_not_found(&model),
            Pick::NoReplica => OpenAiError::unavailable(format!(
                "no replica of `{model}` is ready; retry in a few seconds"
            )),
        })?;
    let url = format!("{}{}", in_flight.upstream().base_url, uri.path());
    let (body, strip_usage) = metering::ask_for_usage(&body);
    let upstream = gateway
        .http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "replica unreachable");
            OpenAiError::new(
                StatusCode::BAD_GATEWAY,
                "server_error",
                "the model replica did not answer",
            )
        })?;
    let status = upstream.status();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let streamed = content_type
        .as_ref()
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let record = {
        let meter = Arc::clone(&gateway.meter);
        let limiter = Arc::clone(&gateway.limiter);
        move |usage: Option<metering::TokenUsage>| {
            if let Some(usage) = usage {
                meter.record(&caller, &model, usage);
                let tokens = usage.prompt_tokens + usage.completion_tokens;
                limiter.spend_tokens(&caller.tenant_id, caller.limits, tokens, Instant::now());
            }
        }
    };
    let body = if streamed {
        // The replica's in-flight count lasts as long as the answer streams.
        let tap = UsageTap::new(strip_usage);
        let state = (upstream.bytes_stream(), tap, Some(record), in_flight);
        Body::from_stream(futures_util::stream::unfold(
            state,
            |(mut stream, mut tap, mut record, held)| async move {
                match stream.next().await {
                    Some(Ok(chunk)) => {
                        let out = tap.feed(&chunk);
                        Some((Ok(out), (stream, tap, record, held)))
                    }
                    Some(Err(error)) => Some((Err(error), (stream, tap, record, held))),
                    None => {
                        let record = record.take()?;
                        record(tap.usage);
                        let rest = tap.finish();
                        Some((Ok(rest), (stream, tap, None, held)))
                    }
                }
            },
        ))
    } else {
        let bytes = upstream.bytes().await.map_err(|e| {
            tracing::warn!(error = %e, "replica answer cut short");
            OpenAiError::new(
                StatusCode::BAD_GATEWAY,
                "server_error",
                "the model replica's answer was cut short",
            )
        })?;
        drop(in_flight);
        if status.is_success() {
            record(metering::usage_of_answer(&bytes));
        }
        Body::from(bytes)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}
