//! The store's own row types; the server converts them to wire types at its boundary.

use lutece_core::{JobState, Resources, TaskState};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub name: String,
    pub role: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub id: String,
    pub name: String,
    pub hostname: String,
    /// Where the control plane and other nodes reach it (its hostname when None).
    pub address: Option<String>,
    pub rack: Option<String>,
    pub cpus_milli: u64,
    pub memory_bytes: u64,
    /// JSON array of GPUs, as the agent reported them.
    pub gpus_json: String,
    pub credential_hash: String,
    pub registered_at: i64,
    pub last_seen_at: i64,
    /// The node's jurisdiction (ISO country code), if its agent declared one.
    pub jurisdiction: Option<String>,
}

/// A job as submitted, before the store gives it a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub id: String,
    pub tenant_id: String,
    pub project: String,
    pub name: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub per_task: Resources,
    pub nodes: u32,
    pub priority: i32,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub spec: NewJob,
    pub tenant_name: String,
    pub state: JobState,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub cancel_requested: bool,
    pub scheduled_at: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub job_id: String,
    pub rank: u32,
    pub node_id: String,
    pub gpus: Vec<u32>,
    pub state: TaskState,
    pub pid: Option<u32>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub cpu_seconds_used: f64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// How one task ended, as the agent saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    pub state: TaskState,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub cpu_seconds_used: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageSummaryRow {
    pub tenant_name: String,
    pub project: String,
    pub jobs: u64,
    pub gpu_seconds: f64,
    pub cpu_seconds: f64,
    pub cpu_seconds_used: f64,
}
