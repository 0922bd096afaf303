//! End-to-end tests: each starts the real `lutece` binary and uses it as a person or a script
//! would, through the CLI and the HTTP API; and `tidy`, which checks the workspace's shape.

// Helpers outside #[test] functions unwrap too: a panic anywhere here is a failing test.
#![allow(clippy::unwrap_used)]

mod audit;
mod bad_input;
mod crash;
mod gang;
mod inference;
mod model_sources;
mod models;
// moto's S3 server, as lutece-blob's tests run it.
#[path = "../../../lutece-blob/tests/blob/moto.rs"]
mod moto;
mod platform;
mod quota;
mod residency;
mod sim;
mod sovereignty;
mod storage;
mod tenancy;
mod tidy;
mod tour;
