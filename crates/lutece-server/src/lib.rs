//! The lutece control plane: the HTTP API (`/api/v1`), tenancy and keys, the reconciler that
//! places work through `lutece-sched`, and the server side of the agent protocol.
//!
//! Entry point: [`start`], which opens the store, bootstraps the first operator key on a new
//! data directory, and serves until [`RunningServer::shutdown`].

mod audit;
mod auth;
mod control;
mod convert;
mod deployments;
mod error;
mod extract;
mod gateway;
mod jobspec;
mod keyring;
mod logs;
mod metering;
mod models;
mod openapi;
mod reconciler;
mod routes;
mod state;

pub use control::LocalControl;
pub use error::ApiError;
pub use keyring::{KeyringError, RootKey};

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
    /// Where the operator's root key comes from; None: `root.key` in the data directory,
    /// made on first start.
    pub root_key: Option<RootKey>,
    /// The storage locations (`NAME=file:///DIR@CC,…`, the first the default); None: one
    /// location, `local`, under the data directory, in `jurisdiction`.
    pub storage: Option<String>,
    /// The ISO country code of this installation's own storage.
    pub jurisdiction: String,
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
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    #[error("the storage is unusable: {0}")]
    Storage(String),
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
        let audit = &self.control.state.audit;
        if let Err(error) = audit.note("server", None, "server.stop", None, "ok").await {
            tracing::warn!(%error, "could not record the stop");
        }
        if let Err(error) = audit.checkpoint().await {
            tracing::warn!(%error, "could not store the audit checkpoint at stop");
        }
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
    let root = config
        .root_key
        .clone()
        .unwrap_or_else(|| RootKey::File(config.data_dir.join("root.key")));
    let keyring = keyring::Keyring::open(&root, store.clone()).await?;
    let signing = keyring.audit_signing_key().await?;
    let auditor = audit::Auditor::open(store.clone(), signing).await?;
    let blobs = open_blobs(&config, &store).await?;
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
        audit: Arc::new(auditor),
        keyring: Arc::new(keyring),
        blobs: Arc::new(blobs),
    };
    state
        .audit
        .note("server", None, "server.start", None, "ok")
        .await
        .map_err(|e| StartError::Bootstrap(format!("the audit log cannot be written: {e}")))?;
    // What a killed import or removal left behind.
    models::clean_up(&state.models_dir);
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown, shutdown_rx) = oneshot::channel::<()>();
    let meter = Arc::new(metering::TokenMeter::load(&state.store).await?);
    // The gateway's failed authentications are recorded too (its calls change nothing).
    let gateway = gateway::router(&state, Arc::clone(&routes), Arc::clone(&meter)).layer(
        axum::middleware::from_fn_with_state(state.clone(), audit::audit_requests),
    );
    let app = router(state.clone()).merge(gateway);
    // Every accepted connection without Nagle's delay: streamed tokens leave at once.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serving = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
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

/// The storage locations, swept of what interrupted uploads and deletions left: staging files,
/// and objects no file names.
async fn open_blobs(
    config: &ServerConfig,
    store: &Store,
) -> Result<lutece_blob::Blobs, StartError> {
    use lutece_blob::{Blobs, Durability, Locations};
    let storage = |e: lutece_blob::BlobError| StartError::Storage(e.to_string());
    let jurisdiction = lutece_core::residency::Jurisdiction::parse(&config.jurisdiction)
        .map_err(|e| StartError::Storage(format!("jurisdiction: {e}")))?;
    let locations = match &config.storage {
        Some(spec) => Locations::parse(spec),
        None => Locations::local(config.data_dir.join("blobs"), jurisdiction),
    }
    .map_err(storage)?;
    let blobs = Blobs::new(locations, Durability::Synced).map_err(storage)?;
    blobs
        .sweep_staging(std::time::Duration::ZERO)
        .await
        .map_err(storage)?;
    let data_dir =
        std::fs::canonicalize(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
    let (tenants, files) = (store.tenant_ids().await?, store.file_ids().await?);
    for location in blobs.locations().list() {
        if let Some(dir) = location.url.strip_prefix("file://") {
            if data_dir.starts_with(dir) {
                return Err(StartError::Storage(format!(
                    "the storage location {} ({dir}) holds the data directory {}: give it a directory of its own",
                    location.name,
                    data_dir.display()
                )));
            }
        }
        // What an upload or a deletion cut short left: objects where a file's would be, whose
        // file is not recorded. Nothing else in a location is touched.
        let objects = match blobs.list(&location.name, "").await {
            Ok(objects) => objects,
            Err(error) => {
                tracing::warn!(location = %location.name, %error, "cannot list the location to sweep it");
                continue;
            }
        };
        for object in objects {
            let Some((tenant, id)) = file_object_id(&object.path) else {
                continue;
            };
            // Only this installation's tenants (random ids): another's sharing the bucket or
            // directory is left alone.
            if tenants.contains(tenant) && !files.contains(id) {
                tracing::info!(path = %object.path, "removing an object no file names");
                // Unreadable without its file's key anyway: a store that refuses deletes
                // (object lock, a policy) does not keep the platform from starting.
                if let Err(error) = blobs.delete(&location.name, &object.path).await {
                    tracing::warn!(path = %object.path, %error, "cannot remove it");
                }
            }
        }
    }
    Ok(blobs)
}

/// The tenant and file ids of an object stored where a file's object is
/// (`ten_…/files/file-<hex>`).
fn file_object_id(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.split('/');
    let (tenant, files, id) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = id.strip_prefix("file-")?;
    let shaped = parts.next().is_none()
        && tenant.starts_with("ten_")
        && files == "files"
        && !hex.is_empty()
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    shaped.then_some((tenant, id))
}

/// Every route of the API.
pub(crate) fn router(state: AppState) -> Router {
    use routes::{agent, deployments, files, fleet, jobs, limits, models, sovereignty, tenancy};
    let api = Router::new()
        .route("/health", get(health))
        .route("/whoami", get(tenancy::whoami))
        .route(
            "/tenants",
            post(tenancy::create_tenant).get(tenancy::list_tenants),
        )
        .route(
            "/tenants/{name}",
            get(tenancy::get_tenant).delete(sovereignty::delete_tenant),
        )
        .route(
            "/tenants/{name}/deletion-certificate",
            get(sovereignty::deletion_certificate),
        )
        .route(
            "/tenants/{name}/encryption-keys",
            get(sovereignty::list_keys).post(sovereignty::add_key),
        )
        .route(
            "/tenants/{name}/encryption-keys/{id}",
            delete(sovereignty::destroy_key),
        )
        .route(
            "/tenants/{name}/residency",
            get(sovereignty::get_residency).put(sovereignty::set_residency),
        )
        .route(
            "/tenants/{name}/residency/report",
            get(sovereignty::residency_report),
        )
        .route("/storage/locations", get(sovereignty::locations))
        .route("/audit/export", get(sovereignty::export))
        .route("/audit/public-key", get(sovereignty::public_key))
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
    // Uploads stream to storage: no bound on their size but the disk's.
    let files = Router::new()
        .route("/v1/files", post(files::upload).get(files::list))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .route("/v1/files/{id}", get(files::get).delete(files::delete))
        .route("/v1/files/{id}/content", get(files::content));
    let audited = axum::middleware::from_fn_with_state(state.clone(), audit::audit_requests);
    Router::new()
        .nest("/api/v1", api)
        .merge(files)
        .layer(audited)
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
