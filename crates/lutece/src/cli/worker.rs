//! `lutece worker`: one model replica, an OpenAI-compatible server over the built-in engine.

use std::sync::Arc;

use anyhow::{Context, Result};
use lutece_engine::EngineOptions;
use lutece_worker::Worker;

use crate::cli::args::WorkerArgs;

/// The line a supervisor reads to learn where the worker listens.
pub(crate) const READY_PREFIX: &str = "lutece worker ready at ";

pub(crate) async fn run(args: WorkerArgs) -> Result<()> {
    let model_id = args.model_id.clone().unwrap_or_else(|| {
        args.model
            .file_stem()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    });
    let mut options = EngineOptions::new(&args.model);
    options.slots = args.slots.max(1);
    options.context_per_request = args.context.max(16);
    options.threads = args.threads;
    let id = model_id.clone();
    let worker = tokio::task::spawn_blocking(move || Worker::load(id, options))
        .await?
        .with_context(|| format!("cannot serve {}", args.model.display()))?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("{READY_PREFIX}http://{addr} serving {model_id}");
    let app = lutece_worker::router(Arc::new(worker));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("the worker's server stopped")
}
