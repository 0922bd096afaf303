//! The agent protocol: how a node agent registers, learns what to run, and reports back.

use crate::fleet::Gpu;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use utoipa::ToSchema;

/// The control plane as an agent sees it. Implemented over HTTP by `lutece-client` and
/// in-process by the server, so one agent code path serves a laptop and a fleet.
pub trait ControlApi: Send + Sync + 'static {
    /// Registers a node (or re-registers one that knows its id and credential).
    fn register(
        &self,
        request: RegisterNode,
    ) -> impl Future<Output = Result<Registered, ControlError>> + Send;

    /// Says what the node runs; answers what it should run. Waits up to `wait_ms` for a change.
    fn heartbeat(
        &self,
        request: Heartbeat,
    ) -> impl Future<Output = Result<HeartbeatReply, ControlError>> + Send;

    /// Reports one task's progress (started, exited, failed to start).
    fn report(&self, report: TaskReport) -> impl Future<Output = Result<(), ControlError>> + Send;

    /// Appends output of one task at `offset`; idempotent for bytes already stored.
    fn append_log(
        &self,
        chunk: LogChunk,
    ) -> impl Future<Output = Result<LogAck, ControlError>> + Send;
}

/// Why a control call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The control plane cannot be reached or is overloaded: try again later.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
    /// The control plane refused the call: retrying the same call will not help.
    #[error("control plane refused the call ({status}): {message}")]
    Rejected { status: u16, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterNode {
    pub name: String,
    pub hostname: String,
    /// Where the control plane and other nodes reach this node (the address its replicas
    /// serve on, `MASTER_ADDR` of gangs it leads); its hostname when absent.
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub rack: Option<String>,
    /// The node's jurisdiction: the ISO country code of where it stands (`FR`).
    #[serde(default)]
    pub jurisdiction: Option<String>,
    pub cpus_milli: u64,
    pub memory_bytes: u64,
    pub gpus: Vec<Gpu>,
    /// The node's identity from an earlier registration, to keep it across restarts.
    #[serde(default)]
    pub node_id: Option<String>,
    #[serde(default)]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    pub node_id: String,
    /// The secret the agent presents on every later call (kept in its state directory).
    pub credential: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub node_id: String,
    /// The tasks the agent has a live process (or an unreported result) for.
    pub running: Vec<TaskRef>,
    /// Of those, the ones it is already stopping (so a cancel is not news).
    #[serde(default)]
    pub stopping: Vec<TaskRef>,
    /// How long the server may hold the call open waiting for new work; 0 answers at once.
    #[serde(default)]
    pub wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct TaskRef {
    pub job_id: String,
    pub rank: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatReply {
    /// Every task the node should be running now; anything else it runs is to be stopped.
    pub tasks: Vec<Assignment>,
}

/// One task the node should run, with everything needed to start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Assignment {
    pub task: TaskRef,
    pub command: Vec<String>,
    /// The full environment to add: the job's own plus `RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
    /// `MASTER_ADDR`, `MASTER_PORT`, `CUDA_VISIBLE_DEVICES`, `LUTECE_JOB_ID` and
    /// `LUTECE_NODE_ADDRESS`; replicas of a deployment also get `PORT`.
    pub env: BTreeMap<String, String>,
    /// The task has already been confirmed as running: adopt it, never start it again.
    pub started: bool,
    /// The job is being cancelled: stop the task and report it.
    pub cancel: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskReport {
    pub node_id: String,
    pub task: TaskRef,
    pub event: TaskEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskEvent {
    /// The process started with this process id (its own process group).
    Started { pid: u32 },
    /// The process ended: `exit_code` when it exited, `signal` when a signal ended it.
    Exited {
        exit_code: Option<i32>,
        signal: Option<i32>,
        cpu_seconds_used: f64,
        /// The agent stopped it because the job was cancelled.
        cancelled: bool,
    },
    /// The task could not run or its outcome is unknown; `reason` says why.
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub node_id: String,
    pub task: TaskRef,
    pub offset: u64,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogAck {
    /// How many bytes of this task's log the server now holds.
    pub size: u64,
}
