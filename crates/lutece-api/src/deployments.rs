//! Deployments: a model served by replicas that the scheduler places and agents run.

use crate::JobResources;
use crate::jobs::ResourceRequest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/deployments`: serve a model (or run an external engine) on `replicas`
/// replicas, each placed like a one-node job and restarted when it ends.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// The model id clients send to `/v1`; defaults to `model`.
    #[serde(default)]
    pub name: Option<String>,
    /// A model of the platform (`GET /v1/models` of the operator lists them), served by the
    /// built-in engine. Give this or `command`.
    #[serde(default)]
    pub model: Option<String>,
    /// An external engine: the command of an OpenAI-compatible server that listens on
    /// `$LUTECE_NODE_ADDRESS:$PORT` and answers `GET /health` (vLLM, SGLang, llama.cpp's server).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Default 1; at most 64.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Per replica; default 1 CPU, 1Gi, no GPU.
    #[serde(default)]
    pub resources: ResourceRequest,
    /// Defaults to `default`.
    #[serde(default)]
    pub project: Option<String>,
    /// Serve it to every tenant, not only the caller's (operator only).
    #[serde(default)]
    pub shared: Option<bool>,
}

/// `PATCH /api/v1/deployments/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleDeployment {
    pub replicas: u32,
}

/// A deployment as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    pub id: String,
    pub name: String,
    pub tenant: String,
    pub project: String,
    pub model: Option<String>,
    pub command: Vec<String>,
    pub resources: JobResources,
    /// How many replicas it wants.
    pub replicas: u32,
    /// How many answer their health check and receive requests now.
    pub ready: u32,
    pub shared: bool,
    pub created_at: String,
    /// The replicas that have not ended, each a job.
    pub replica_jobs: Vec<Replica>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Replica {
    pub job_id: String,
    /// The job's state: `queued`, `scheduled` or `running`.
    pub state: String,
    /// Where it serves, once placed.
    pub endpoint: Option<String>,
    /// It answers its health check and the gateway routes to it.
    pub ready: bool,
}
