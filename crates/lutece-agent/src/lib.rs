//! The lutece node agent: discovers the machine, registers it with the control plane, and runs
//! the tasks placed on it, each under its own supervisor process (see [`shim`]) so a restart of
//! the agent neither stops nor repeats them.
//!
//! Entry points: [`Agent::run`] (the loop) and [`run_shim`] (the supervisor's `main`). The agent
//! only talks to the control plane through [`lutece_api::ControlApi`].

mod discovery;
mod reconcile;
mod shim;
mod supervise;
mod task_dir;

pub use discovery::{cpus_milli, fake_gpus, hostname, memory_bytes, nvml_gpus};
pub use shim::run_shim;

use crate::reconcile::Action;
use crate::supervise::Supervisor;
use crate::task_dir::TaskDir;
use lutece_api::{ControlApi, ControlError, Heartbeat, RegisterNode, Registered, TaskRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where the agent keeps its identity and its tasks' directories.
    pub state_dir: PathBuf,
    /// The node as it registers: resources, GPUs, name.
    pub node: RegisterNode,
    /// The program started as `PROGRAM shim TASK_DIR` to supervise each task.
    pub shim_program: PathBuf,
    /// How long one heartbeat may wait for news.
    pub heartbeat_wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("failed to use the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the control plane refused this node: {0}")]
    Refused(ControlError),
}

/// The identity a node keeps across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Identity {
    node_id: String,
    credential: String,
}

pub struct Agent<C> {
    control: Arc<C>,
    config: AgentConfig,
}

impl<C: ControlApi> Agent<C> {
    pub fn new(control: C, config: AgentConfig) -> Agent<C> {
        Agent {
            control: Arc::new(control),
            config,
        }
    }

    /// Registers (retrying while the control plane is unavailable), then runs tasks forever.
    pub async fn run(self) -> Result<(), AgentError> {
        let state_error = |path: &PathBuf| {
            let path = path.clone();
            move |source| AgentError::StateDir { path, source }
        };
        let tasks_dir = self.config.state_dir.join("tasks");
        // Owner only: tasks' specs and output are their tenants' business.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tasks_dir)
            .map_err(state_error(&tasks_dir))?;
        let identity = self.register().await?;
        tracing::info!(node_id = %identity.node_id, "agent registered");

        let supervisor = Supervisor::new(
            self.control.clone(),
            identity.node_id.clone(),
            tasks_dir.clone(),
            self.config.shim_program.clone(),
        );
        let mut on_disk: BTreeSet<TaskRef> = std::fs::read_dir(&tasks_dir)
            .map_err(state_error(&tasks_dir))?
            .filter_map(|entry| {
                entry
                    .ok()?
                    .file_name()
                    .to_str()
                    .and_then(TaskDir::parse_name)
            })
            .collect();
        let mut backoff = Duration::from_millis(100);
        loop {
            let (running, stopping) = supervisor.snapshot();
            let heartbeat = Heartbeat {
                node_id: identity.node_id.clone(),
                running: running.iter().cloned().collect(),
                stopping: stopping.iter().cloned().collect(),
                wait_ms: self.config.heartbeat_wait.as_millis() as u64,
            };
            let reply = match self.control.heartbeat(heartbeat).await {
                Ok(reply) => reply,
                Err(error) => {
                    tracing::warn!(%error, "heartbeat failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            for action in reconcile::diff(&reply.tasks, &running, &stopping, &on_disk) {
                if let Action::Adopt(assignment) = &action {
                    on_disk.remove(&assignment.task);
                }
                supervisor.execute(action);
            }
            // Bounds the rate of heartbeats while a task's end is being reported.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn register(&self) -> Result<Identity, AgentError> {
        let path = self.config.state_dir.join("identity.json");
        let known: Option<Identity> = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let mut request = self.config.node.clone();
        if let Some(identity) = &known {
            request.node_id = Some(identity.node_id.clone());
            request.credential = Some(identity.credential.clone());
        }
        let mut delay = Duration::from_millis(200);
        let Registered {
            node_id,
            credential,
        } = loop {
            match self.control.register(request.clone()).await {
                Ok(registered) => break registered,
                Err(ControlError::Unavailable(message)) => {
                    tracing::warn!(%message, "control plane unavailable; retrying registration");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(refused) => return Err(AgentError::Refused(refused)),
            }
        };
        let identity = Identity {
            node_id,
            credential,
        };
        let bytes = serde_json::to_vec(&identity).map_err(|e| AgentError::StateDir {
            path: path.clone(),
            source: e.into(),
        })?;
        write_private(&path, &bytes).map_err(|source| AgentError::StateDir {
            path: path.clone(),
            source,
        })?;
        Ok(identity)
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
