//! A model replica: one model behind an OpenAI-compatible HTTP server (`lutece worker`).
//!
//! The worker speaks the same `/v1` wire format as the gateway, so the gateway routes to it
//! exactly as it routes to an external engine (vLLM, SGLang, llama.cpp's server). It does no
//! authentication: it listens where only the gateway reaches it.
//!
//! A model is one of two kinds, told apart by its files: a GGUF file is a generative model
//! ([`Engine`]: chat and text completions); a directory with `config.json` and
//! `model.safetensors` is an embedding model ([`Embedder`]: `/v1/embeddings`). Each kind
//! answers the other kind's endpoints with a 400 that says so.

mod embeddings;
mod generate;
mod handlers;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use lutece_engine::{EmbedError, Embedder, Engine, EngineError, EngineOptions};
use lutece_gateway::body::MAX_BODY_BYTES;

/// One loaded model, served under `model_id`.
pub struct Worker {
    model: Model,
    model_id: String,
    created: u64,
    /// Embedding requests run one at a time, each on every core the embedder uses, in the
    /// order they arrive. The permit goes with the computation, not the request: a client
    /// that leaves does not free the cores before its batch is done.
    embedding_turn: Arc<tokio::sync::Semaphore>,
}

/// What a worker serves.
enum Model {
    Generator(Engine),
    Embedder(Embedder),
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("model_id", &self.model_id)
            .field("embeddings", &self.embedder().is_some())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Loads the model at `options.model_path` (blocking: call it from a blocking thread in
    /// async code). An embedding model directory (see [`Embedder::is_model`]) is served by
    /// the embedder with `options.threads`; anything else is opened as a GGUF file.
    pub fn load(model_id: impl Into<String>, options: EngineOptions) -> Result<Self, EngineError> {
        let model = if Embedder::is_model(&options.model_path) {
            let mut embedder = Embedder::load(&options.model_path).map_err(|e| match e {
                EmbedError::Load { path, reason } => EngineError::Load { path, reason },
                other => EngineError::Load {
                    path: options.model_path.display().to_string(),
                    reason: other.to_string(),
                },
            })?;
            if let Some(threads) = options.threads {
                embedder = embedder.with_threads(threads as usize);
            }
            Model::Embedder(embedder)
        } else {
            Model::Generator(Engine::load(options)?)
        };
        Ok(Self::new(model_id, model))
    }

    /// Serves an embedder already loaded.
    pub fn from_embedder(model_id: impl Into<String>, embedder: Embedder) -> Self {
        Self::new(model_id, Model::Embedder(embedder))
    }

    fn new(model_id: impl Into<String>, model: Model) -> Self {
        Self {
            model,
            model_id: model_id.into(),
            created: unix_now(),
            embedding_turn: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The generation engine, when the model is generative.
    pub fn engine(&self) -> Option<&Engine> {
        match &self.model {
            Model::Generator(engine) => Some(engine),
            Model::Embedder(_) => None,
        }
    }

    /// The embedder, when the model is an embedding model.
    pub fn embedder(&self) -> Option<&Embedder> {
        match &self.model {
            Model::Embedder(embedder) => Some(embedder),
            Model::Generator(_) => None,
        }
    }
}

/// The worker's routes: `/health`, `/v1/models`, `/v1/chat/completions`, `/v1/completions`,
/// `/v1/embeddings`.
pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/v1/models", get(handlers::models))
        .route("/v1/chat/completions", post(handlers::chat))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
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
