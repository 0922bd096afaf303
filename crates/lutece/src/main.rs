//! `lutece`: the one binary. Roles (`up`, `server`, `agent`), client commands, the simulator
//! (`sim`), and the hidden task supervisor (`shim`).
//!
//! Exit codes: 0 success; 1 the request was refused or failed (the message says why); 2 wrong
//! usage of the command line; 3 the server could not be reached or failed internally.
//! `jobs run --wait` exits with the job's own exit code.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use lutece_client::ClientError;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The supervisor must start before any thread does (it changes its signal mask).
    if let Command::Shim { task_dir } = &cli.command {
        return ExitCode::from(u8::try_from(lutece_agent::run_shim(task_dir)).unwrap_or(1));
    }
    // Before any thread exists: the environment may only change while nothing else reads it.
    cli::roles::take_admin_key_from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            let code = report(&error);
            ExitCode::from(code)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Up(args) => {
            init_logging();
            cli::roles::run_control_plane(args, true).await.map(|()| 0)
        }
        Command::Server(args) => {
            init_logging();
            cli::roles::run_control_plane(args, false).await.map(|()| 0)
        }
        Command::Agent(args) => {
            init_logging();
            cli::roles::run_agent(args).await.map(|()| 0)
        }
        Command::Worker(args) => {
            init_logging();
            cli::worker::run(args).await.map(|()| 0)
        }
        Command::Jobs(command) => cli::jobs::run(command).await,
        Command::Tenants(command) => cli::client_cmds::tenants(command).await,
        Command::Keys(command) => cli::client_cmds::keys(command).await,
        Command::Deploy(command) => cli::deploy::run(command).await,
        Command::Models(command) => cli::models_cmd::run(command).await,
        Command::Nodes(command) => cli::client_cmds::nodes(command).await,
        Command::Files(command) => cli::files::run(command).await,
        Command::Storage(command) => cli::sovereignty::storage(command).await,
        Command::Residency(command) => cli::sovereignty::residency_report(command).await,
        Command::Audit(command) => cli::audit::run(command).await,
        Command::Usage(args) => cli::client_cmds::usage(args).await,
        Command::Whoami(args) => cli::client_cmds::whoami(args).await,
        Command::Sim(args) => tokio::task::spawn_blocking(move || cli::sim::run(args))
            .await?
            .map(|()| 0),
        Command::Shim { .. } => Ok(1),
    }
}

/// Prints an error for a person and picks the exit code.
fn report(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<ClientError>() {
        Some(ClientError::Api { status, body }) => {
            let field = body
                .error
                .field
                .as_deref()
                .map(|f| format!(" (at {f})"))
                .unwrap_or_default();
            eprintln!("error: {}{field}", body.error.message);
            if *status >= 500 { 3 } else { 1 }
        }
        Some(transport @ ClientError::Transport { .. }) => {
            eprintln!(
                "error: {transport}\n(is the platform running? start it with `lutece up`, or set LUTECE_URL)"
            );
            3
        }
        // With what was being done when it broke off (`{:#}`: every context).
        Some(ClientError::Interrupted { .. }) => {
            eprintln!("error: {error:#}");
            3
        }
        _ => {
            eprintln!("error: {error:#}");
            1
        }
    }
}

/// Logs go to stderr; `LUTECE_LOG` filters them (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LUTECE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
