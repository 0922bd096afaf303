//! The gateway's `/v1` routes: authenticate the caller's key, pick a replica of the model, and
//! pass the request and its (streamed) answer through unchanged.

use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use lutece_api::ModelKind;
use lutece_api::openai::{Model, ModelList};
use lutece_core::residency::ResidencyPolicy;

use crate::body::MAX_BODY_BYTES;
use crate::error::OpenAiError;
use crate::limits::{Limiter, Limits, SpentThisMonth, Subject};
use crate::metering::{self, Meter};
use crate::prefix::PrefixHashes;
use crate::relay::{Exchange, Recorder};
use crate::routing::{Pick, Routes};

/// Who is calling, as far as the gateway needs to know.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant_id: String,
    pub key_id: String,
    pub tenant_limits: Limits,
    pub key_limits: Limits,
    /// Tokens the tenant and the key have used this month, for their budgets.
    pub spent_this_month: SpentThisMonth,
    /// Where the tenant's requests may be served: its residency policy.
    pub residency: ResidencyPolicy,
}

impl Caller {
    pub(crate) fn subject(&self) -> Subject<'_> {
        Subject {
            tenant_id: &self.tenant_id,
            key_id: &self.key_id,
            tenant: self.tenant_limits,
            key: self.key_limits,
            spent: self.spent_this_month,
        }
    }
}

/// The header that names the project a request is metered to (OpenAI's SDK sends it when
/// given `project=`); `default` without it.
pub const PROJECT_HEADER: &str = "openai-project";

/// The project of a request: 1 to 64 letters, digits, `-`, `_` or `.`.
fn project_of(headers: &HeaderMap) -> Result<String, OpenAiError> {
    let Some(value) = headers.get(PROJECT_HEADER) else {
        return Ok("default".to_owned());
    };
    let valid = value.to_str().ok().filter(|p| {
        (1..=64).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    valid.map(str::to_owned).ok_or_else(|| {
        OpenAiError::invalid(
            "The OpenAI-Project header must be 1 to 64 letters, digits, '-', '_' or '.'.",
        )
    })
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
        .models(&caller.tenant_id, &caller.residency)
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
    let project = project_of(&headers)?;
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
    let unix_secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Err(limited) = gateway
        .limiter
        .admit(&caller.subject(), Instant::now(), unix_secs)
    {
        let retry_after = limited.retry_after.as_secs_f64().ceil() as u64;
        return Err(if limited.quota {
            OpenAiError::quota_exceeded(limited.message, retry_after)
        } else {
            OpenAiError::rate_limited(limited.message, retry_after)
        });
    }
    let in_flight = gateway
        .routes
        .pick(
            &caller.tenant_id,
            &model,
            &PrefixHashes::of_request(&body, &caller.tenant_id),
            &caller.residency,
        )
        .map_err(|pick| match pick {
            Pick::Unknown => OpenAiError::model_not_found(&model),
            Pick::NoReplica => OpenAiError::unavailable(format!(
                "no replica of `{model}` is ready; retry in a few seconds"
            )),
            Pick::Residency => OpenAiError::new(
                StatusCode::FORBIDDEN,
                "permission_error",
                format!(
                    "no replica of `{model}` runs where this tenant's residency policy allows \
                     ({}); its requests are not sent elsewhere",
                    caller.residency.describe()
                ),
            )
            .with_code("residency"),
        })?;
    let url = format!("{}{}", in_flight.upstream().base_url, uri.path());
    let running = in_flight.upstream().reports_running_usage();
    let (body, asked) = metering::ask_for_usage(&body, running)?;
    let recorder = Recorder {
        meter: Arc::clone(&gateway.meter),
        limiter: Arc::clone(&gateway.limiter),
        caller,
        project,
        model,
    };
    Exchange {
        http: gateway.http.clone(),
        url,
        body,
        asked,
        recorder,
        in_flight,
    }
    .run()
    .await
}
