//! The HTTP handlers, one file per area.

pub(crate) mod agent;
pub(crate) mod deployments;
pub(crate) mod files;
pub(crate) mod fleet;
pub(crate) mod jobs;
pub(crate) mod limits;
pub(crate) mod models;
pub(crate) mod sovereignty;
pub(crate) mod tenancy;
