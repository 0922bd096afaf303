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
    let listen = args.listen.clone().unwrap_or_else(replica_address);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    println!("{READY_PREFIX}http://{addr} serving {model_id}");
    let app = lutece_worker::router(Arc::new(worker));
    // Without Nagle's delay: each streamed token leaves at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await
        .context("the worker's server stopped")
}

/// Where a replica started by an agent listens: the node's address and the port the control
/// plane chose for it.
fn replica_address() -> String {
    let host = std::env::var("LUTECE_NODE_ADDRESS").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "0".into());
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Ctrl-C, or the SIGTERM an agent sends to stop a replica: finish what is in flight, then exit.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
