//! Jobs: what a tenant submits, and what it reads back.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /api/v1/jobs`: a command to run on `nodes` nodes, one task each.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// A label for people; defaults to the program's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Defaults to `default`.
    #[serde(default)]
    pub project: Option<String>,
    /// The program and its arguments, run without a shell.
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: ResourceRequest,
    /// How many nodes the gang spans (one task per node); defaults to 1.
    #[serde(default)]
    pub nodes: Option<u32>,
    /// Higher runs first; from -1000 to 1000, default 0.
    #[serde(default)]
    pub priority: Option<i32>,
}

/// Per-task resources. Quantities may be strings (`"512Mi"`, `"0.5"`) or numbers.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRequest {
    /// Cores: `"2"`, `"0.5"`, `"500m"`; default 1.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub cpus: Option<Quantity>,
    /// Bytes: `"512Mi"`, `"2Gi"`; default 512Mi.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub memory: Option<Quantity>,
    /// Whole GPUs per node; default 0.
    #[serde(default)]
    pub gpus_per_node: Option<u32>,
}

/// A quantity as a person wrote it; parsed by the server so that errors can say where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Unsigned(u64),
            Float(f64),
        }
        match Raw::deserialize(deserializer) {
            Ok(Raw::Text(s)) => Ok(Quantity(s)),
            Ok(Raw::Unsigned(n)) => Ok(Quantity(n.to_string())),
            Ok(Raw::Float(f)) => Ok(Quantity(f.to_string())),
            Err(_) => Err(serde::de::Error::custom(
                "expected a quantity as a string (\"512Mi\", \"0.5\") or a number",
            )),
        }
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub project: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub resources: JobResources,
    pub nodes: u32,
    pub priority: i32,
    /// `queued`, `scheduled`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// Why it waits, or why it failed.
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub created_at: String,
    pub scheduled_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobResources {
    pub cpus_milli: u64,
    pub memory_bytes: u64,
    pub gpus_per_node: u32,
}

/// One rank of a job, on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub rank: u32,
    pub node: String,
    pub gpus: Vec<u32>,
    pub state: String,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}
