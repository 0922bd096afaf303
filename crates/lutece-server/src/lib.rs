//! The lutece control plane: the HTTP API (`/api/v1`), tenancy and keys, the reconciler that
//! places work through `lutece-sched`, and the server side of the agent protocol.
//!
//! Entry point: [`start`], which opens the store, bootstraps the first operator key on a new
//! data directory, and serves until [`RunningServer::shutdown`].

mod auth;
mod control;
mod convert;
mod deployments;
mod error;
mod extract;
mod gateway;
mod jobspec;
mod logs;
mod metering;
mod models;
mod openapi;
mod reconciler;
mod routes;
mod state;

pub use control::LocalControl;
pub use error::ApiError;

use crate::auth::{hash_secret, new_id, new_key_token};
use crate::state::{AppState, now_ms};
use axum::Router;
use axum::routing::{delete, get, post};
use lutece_api::{KEY_PREFIX, Role};
use lutece_store::{KeyRow, Store, StoreError, TenantRow};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use utoipa::OpenApi;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// On first start, the bootstrap operator key to use instead of a random one.
    pub admin_key: Option<String>,
    /// Refuse jobs whose program is not on this machine's PATH (the embedded mode).
    pub check_programs: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to open the database: {0}")]
    Store(#[from] StoreError),
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("LUTECE_ADMIN_KEY is unusable: {0}")]
    AdminKey(String),
    #[error("failed to bootstrap: {0}")]
    Bootstrap(String),
}

/// A server that runs in the background of this process.
pub struct RunningServer {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The operator key made on this start, when this start made one (first start only).
    pub new_admin_key: Option<String>,
    pub control: LocalControl,
    /// The model replicas the gateway (`/v1`) routes to.
    pub routes: Arc<lutece_gateway::Routes>,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
    reconciler: JoinHandle<()>,
    prober: JoinHandle<()>,
    metering: JoinHandle<()>,
    meter: Arc<metering::TokenMeter>,
}

impl RunningServer {
    /// Stops accepting requests, finishes those in flight, and stops the reconciler.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        if let Ok(Err(error)) = self.serving.await {
            tracing::warn!(%error, "server ended with an error");
        }
        self.reconciler.abort();
        self.prober.abort();
        self.metering.abort();
        // What was metered since the last flush is not lost on a clean stop.
        self.meter.flush(&self.control.state.store).await;
    }

    /// Waits until the server stops by itself (it does not, unless its listener fails).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match (&mut self.serving).await {
            Ok(result) => result,
            Err(join) => Err(std::io::Error::other(join)),
        }
    }
}

/// Opens the store under `config.data_dir`, binds, bootstraps the store if new, and serves.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let data_dir_error = |source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(data_dir_error)?;
    let store = Store::open(&config.data_dir.join("lutece.db")).await?;
    // Bind before bootstrapping: a first start that cannot listen must not have committed an
    // operator key that nobody was shown.
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
    let new_admin_key = bootstrap(&store, config.admin_key.as_deref()).await?;
    let routes = Arc::new(lutece_gateway::Routes::default());
    let state = AppState {
        store,
        logs: logs::LogStore::new(config.data_dir.join("logs")),
        reconcile: Arc::new(Notify::new()),
        nodes: Arc::default(),
        check_programs: config.check_programs,
        routes: Arc::clone(&routes),
        models_dir: config.data_dir.join("models"),
        models_lock: Arc::default(),
        gateway_keys: Arc::default(),
    };
    // What a killed import or removal left behind.
    models::clean_up(&state.models_dir);
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let meter = Arc::new(metering::TokenMeter::load(&state.store).await?);
    let app = router(state.clone()).merge(gateway::router(
        &state,
        Arc::clone(&routes),
        Arc::clone(&meter),
    ));
    // Every accepted connection without Nagle's delay: streamed tokens leave at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.await;
            })
            .await
    });
    let reconciler = tokio::spawn(reconciler::run(state.clone()));
    let prober = tokio::spawn(deployments::probe(state.clone()));
    let metering = tokio::spawn(Arc::clone(&meter).run(state.store.clone()));
    tracing::info!(%addr, "control plane listening");
    Ok(RunningServer {
        addr,
        new_admin_key,
        control: LocalControl { state },
        routes,
        shutdown,
        serving,
        reconciler,
        prober,
        metering,
        meter,
    })
}

/// On a new data directory, creates the `default` tenant and its operator key. Returns the key
/// when this call made a random one (the caller shows it once).
async fn bootstrap(store: &Store, admin_key: Option<&str>) -> Result<Option<String>, StartError> {
    if store.meta("bootstrapped").await?.is_some() {
        return Ok(None);
    }
    let (token, generated) = match admin_key {
        Some(key) => {
            if key.len() < 20 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(StartError::AdminKey(format!(
                    "it must be at least 20 characters with no spaces (for example {KEY_PREFIX} followed by 40 hex digits)"
                )));
            }
            (key.to_owned(), false)
        }
        None => (
            new_key_token().map_err(|e| StartError::Bootstrap(e.to_string()))?,
            true,
        ),
    };
    let id = |prefix| new_id(prefix).map_err(|e| StartError::Bootstrap(e.to_string()));
    let now = now_ms();
    let tenant = TenantRow {
        id: id("ten")?,
        name: "default".to_owned(),
        created_at: now,
    };
    let key = KeyRow {
        id: id("key")?,
        tenant_id: tenant.id.clone(),
        tenant_name: tenant.name.clone(),
        name: "bootstrap-admin".to_owned(),
        role: Role::Operator.as_str().to_owned(),
        secret_hash: hash_secret(&token),
        created_at: now,
        revoked_at: None,
    };
    store.bootstrap(&tenant, &key).await?;
    tracing::info!("bootstrapped the default tenant and its operator key");
    Ok(generated.then_some(token))
}

/// Every route of the API.
pub(crate) fn router(state: AppState) -> Router {
    use routes::{agent, deployments, fleet, jobs, limits, models, tenancy};
    let api = Router::new()
        .route("/health", get(health))
        .route("/whoami", get(tenancy::whoami))
        .route(
            "/tenants",
            post(tenancy::create_tenant).get(tenancy::list_tenants),
        )
        .route("/tenants/{name}", get(tenancy::get_tenant))
        .route(
            "/tenants/{name}/limits",
            get(limits::get_tenant_limits).put(limits::set_tenant_limits),
        )
        .route(
            "/tenants/{name}/gpu-quota",
            get(limits::get_gpu_quota).put(limits::set_gpu_quota),
        )
        .route("/keys", post(tenancy::create_key).get(tenancy::list_keys))
        .route("/keys/{id}", delete(tenancy::revoke_key))
        .route(
            "/keys/{id}/limits",
            get(limits::get_key_limits).put(limits::set_key_limits),
        )
        .route("/jobs", post(jobs::submit).get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/jobs/{id}/logs", get(jobs::logs))
        .route(
            "/deployments",
            post(deployments::create).get(deployments::list),
        )
        .route(
            "/deployments/{name}",
            get(deployments::get)
                .patch(deployments::scale)
                .delete(deployments::delete),
        )
        .route("/models", post(models::import).get(models::list))
        .route("/models/{name}", get(models::get).delete(models::remove))
        .route("/nodes", get(fleet::list_nodes))
        .route("/nodes/join-tokens", post(fleet::create_join_token))
        .route("/usage", get(fleet::usage))
        .route("/usage/tokens", get(fleet::token_usage))
        .route("/agent/register", post(agent::register))
        .route("/agent/heartbeat", post(agent::heartbeat))
        .route("/agent/report", post(agent::report))
        .route("/agent/logs/{job_id}/{rank}", post(agent::append_log))
        .fallback(not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/api/openapi.json", get(openapi_json))
        .route("/", get(console))
        .fallback(not_found)
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("route {}", uri.path()))
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(openapi::ApiDoc::openapi())
}

async fn console() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("console.html"))
}
