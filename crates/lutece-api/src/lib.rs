//! Wire types of lutece's HTTP API (`/api/v1`) and of the agent protocol, and the
//! [`ControlApi`] trait through which an agent talks to the control plane: over HTTP when
//! remote, in-process when co-located. Every type here is part of a network boundary: fields
//! are added, never renamed.

mod agent;
mod data;
mod deployments;
mod error;
mod fleet;
mod jobs;
mod models;
pub mod openai;
mod tenancy;

pub use agent::{
    Assignment, ControlApi, ControlError, Heartbeat, HeartbeatReply, LogAck, LogChunk,
    RegisterNode, Registered, TaskEvent, TaskRef, TaskReport,
};
pub use data::{
    AuditKey, DataPlacement, EncryptionKey, FileDeleted, FileList, FileObject, NewEncryptionKey,
    Residency, ResidencyReport, StorageLocation, TenantDeletion, WorkloadPlacement,
};
pub use deployments::{CreateDeployment, Deployment, Replica, ScaleDeployment};
pub use error::{ErrorBody, ErrorDetail};
pub use fleet::{Gpu, Node, TokenUsage, UsageRow};
pub use jobs::{Job, JobResources, JobSpec, Quantity, ResourceRequest, Task};
pub use models::{ImportModel, ModelKind, PlatformModel};
pub use tenancy::{
    ApiKey, CreateKey, CreateTenant, CreatedKey, GpuQuota, InferenceLimits, Role, Tenant, WhoAmI,
};

/// The prefix of every API key: `lut_<key id>_<secret>`.
pub const KEY_PREFIX: &str = "lut_";
