//! The command line: argument definitions and one module per group of commands.

pub(crate) mod args;
pub(crate) mod audit;
pub(crate) mod client_cmds;
pub(crate) mod config;
pub(crate) mod deploy;
pub(crate) mod files;
pub(crate) mod jobs;
pub(crate) mod models;
pub(crate) mod models_cmd;
pub(crate) mod output;
pub(crate) mod roles;
pub(crate) mod save;
pub(crate) mod sim;
pub(crate) mod sovereignty;
pub(crate) mod worker;
