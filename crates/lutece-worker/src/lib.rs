//! A model replica: one [`Engine`] behind an OpenAI-compatible HTTP server (`lutece worker`).
//!
//! The worker speaks the same `/v1` wire format as the gateway, so the gateway routes to it
//! exactly as it routes to an external engine (vLLM, SGLang, llama.cpp's server). It does no
//! authentication: it listens where only the gateway reaches it.

mod generate;
mod handlers;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use lutece_engine::{Engine, EngineError, EngineOptions};
use lutece_gateway::body::MAX_BODY_BYTES;

/// One loaded model, served under `model_id`.
pub struct Worker {
    engine: Engine,
    model_id: String,
    created: u64,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("model_id", &self.model_id)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Loads the model (blocking: call it from a blocking thread in async code).
    pub fn load(model_id: impl Into<String>, options: EngineOptions) -> Result<Self, EngineError> {
        Ok(Self {
            engine: Engine::load(options)?,
            model_id: model_id.into(),
            created: unix_now(),
        })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The worker's routes: `/health`, `/v1/models`, `/v1/chat/completions`, `/v1/completions`.
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/v1/models", get(handlers::models))
        .route("/v1/chat/completions", post(handlers::chat))
        .route("/v1/completions", post(handlers::completions))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(worker)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
