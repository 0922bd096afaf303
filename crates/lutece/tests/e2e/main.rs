//! End-to-end tests: each starts the real `lutece` binary and uses it as a person or a script
//! would, through the CLI and the HTTP API.

mod bad_input;
mod crash;
mod gang;
mod platform;
mod tenancy;
mod tour;
