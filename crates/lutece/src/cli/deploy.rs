//! `lutece deploy`: models served on replicas that the scheduler places.

use crate::cli::args::{DeployCommand, DeployCreateArgs};
use crate::cli::client_cmds::client;
use crate::cli::output;
use anyhow::{Result, bail};
use lutece_api::{CreateDeployment, Quantity, ResourceRequest};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(crate) async fn run(command: DeployCommand) -> Result<i32> {
    match command {
        DeployCommand::Create(args) => create(args).await,
        DeployCommand::List(args) => {
            let deployments = client(&args.server)?.list_deployments().await?;
            output::print(args.output, &deployments, output::deployments)?;
            Ok(0)
        }
        DeployCommand::Get { name, client: args } => {
            let deployment = client(&args.server)?.deployment(&name).await?;
            output::print(args.output, &deployment, output::deployment)?;
            Ok(0)
        }
        DeployCommand::Scale {
            name,
            replicas,
            client: args,
        } => {
            let deployment = client(&args.server)?
                .scale_deployment(&name, replicas)
                .await?;
            output::print(args.output, &deployment, output::deployment)?;
            Ok(0)
        }
        DeployCommand::Delete { name, client: args } => {
            client(&args.server)?.delete_deployment(&name).await?;
            eprintln!("deleted {name}; its replicas are stopping");
            Ok(0)
        }
    }
}

async fn create(args: DeployCreateArgs) -> Result<i32> {
    let client = client(&args.client.server)?;
    // `$PORT` and `$LUTECE_NODE_ADDRESS` are only known on the node: let a shell expand them.
    let command = match args.command.as_slice() {
        [] => None,
        words if words.iter().any(|w| w.contains('$')) => {
            Some(vec!["sh".to_owned(), "-c".to_owned(), words.join(" ")])
        }
        words => Some(words.to_vec()),
    };
    let request = CreateDeployment {
        name: args.name,
        model: args.model,
        command,
        replicas: Some(args.replicas),
        resources: ResourceRequest {
            cpus: args.cpus.map(Quantity),
            memory: args.memory.map(Quantity),
            gpus_per_node: args.gpus,
        },
        project: args.project,
        shared: args.shared.then_some(true),
    };
    let mut deployment = client.create_deployment(&request).await?;
    if args.wait {
        deployment = wait_ready(&client, &deployment.name, deployment.replicas).await?;
    }
    output::print(args.client.output, &deployment, output::deployment)?;
    Ok(0)
}

/// Polls until every replica is ready, showing progress on a terminal.
async fn wait_ready(
    client: &lutece_client::Client,
    name: &str,
    wanted: u32,
) -> Result<lutece_api::Deployment> {
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    loop {
        let deployment = client.deployment(name).await?;
        let states: Vec<&str> = deployment
            .replica_jobs
            .iter()
            .map(|r| if r.ready { "ready" } else { r.state.as_str() })
            .collect();
        let line = format!(
            "{name}: {}/{wanted} ready [{}] {:.0} s",
            deployment.ready,
            states.join(", "),
            started.elapsed().as_secs_f64()
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
            std::io::stderr().flush()?;
        }
        if deployment.ready >= wanted {
            if tty {
                eprintln!();
            }
            return Ok(deployment);
        }
        if started.elapsed() > Duration::from_secs(600) {
            if tty {
                eprintln!();
            }
            bail!(
                "{name} is not ready after 10 minutes: {line}; see `lutece jobs logs` of its replicas"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
