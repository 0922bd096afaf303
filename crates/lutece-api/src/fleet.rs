//! Nodes, their GPUs, and usage summaries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Gpu {
    pub index: u32,
    pub uuid: String,
    pub model: String,
    pub memory_bytes: u64,
    /// Declared by `--fake-gpus` for tests: no such device exists.
    #[serde(default)]
    pub fake: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub rack: Option<String>,
    /// ISO country code of where the node stands, if declared.
    #[serde(default)]
    pub jurisdiction: Option<String>,
    pub cpus_milli: u64,
    pub memory_bytes: u64,
    pub gpus: Vec<Gpu>,
    /// True when any of its GPUs are declared rather than discovered.
    pub fake_gpus: bool,
    /// `ready` while it heartbeats, `down` when it has not been heard from.
    pub state: String,
    pub registered_at: String,
    pub last_seen_at: String,
    /// What the tasks placed on it hold now.
    pub allocated_cpus_milli: u64,
    pub allocated_memory_bytes: u64,
    pub allocated_gpus: u32,
}

/// What one tenant's project used, summed over its finished tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageRow {
    pub tenant: String,
    pub project: String,
    pub jobs: u64,
    /// GPUs held × seconds.
    pub gpu_seconds: f64,
    /// CPUs reserved × seconds.
    pub cpu_seconds: f64,
    /// CPU time the processes really used (user + system).
    pub cpu_seconds_used: f64,
}

/// Tokens metered by the inference gateway (`/v1`) for one key in one project on one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenUsage {
    pub tenant: String,
    /// The request's `OpenAI-Project` header, `default` without one.
    #[serde(default)]
    pub project: String,
    pub key_id: String,
    pub model: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}
