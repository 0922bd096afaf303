//! `lutece jobs …`.

use crate::cli::args::{JobsCommand, OutputFormat, RunArgs};
use crate::cli::client_cmds::client;
use crate::cli::output;
use anyhow::{Result, bail};
use futures_util::StreamExt;
use lutece_api::{JobSpec, Quantity, ResourceRequest};
use lutece_client::Client;
use std::io::Write;

/// Runs a jobs command; returns the process exit code.
pub(crate) async fn run(command: JobsCommand) -> Result<i32> {
    match command {
        JobsCommand::Run(args) => submit(args).await,
        JobsCommand::List {
            state,
            limit,
            client: args,
        } => {
            let jobs = client(&args.server)?
                .list_jobs(state.as_deref(), limit)
                .await?;
            output::print(args.output, &jobs, output::jobs)?;
            Ok(0)
        }
        JobsCommand::Get { id, client: args } => {
            let job = client(&args.server)?.job(&id).await?;
            output::print(args.output, &job, output::job)?;
            Ok(0)
        }
        JobsCommand::Logs {
            id,
            follow,
            rank,
            client: args,
        } => {
            print_logs(&client(&args.server)?, &id, rank, follow).await?;
            Ok(0)
        }
        JobsCommand::Cancel { id, client: args } => {
            let job = client(&args.server)?.cancel_job(&id).await?;
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&job)?),
                OutputFormat::Table => {
                    println!("{}: cancel requested (state {})", job.id, job.state)
                }
            }
            Ok(0)
        }
    }
}

async fn submit(args: RunArgs) -> Result<i32> {
    let mut env = std::collections::BTreeMap::new();
    for pair in &args.env {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--env {pair:?} is not NAME=VALUE");
        };
        env.insert(name.to_owned(), value.to_owned());
    }
    let spec = JobSpec {
        name: args.name,
        project: args.project,
        command: args.command,
        env,
        resources: ResourceRequest {
            cpus: Some(Quantity(args.cpus)),
            memory: Some(Quantity(args.memory)),
            gpus_per_node: Some(args.gpus_per_node),
        },
        nodes: Some(args.nodes),
        priority: Some(args.priority),
    };
    let client = client(&args.client.server)?;
    let job = client.submit_job(&spec).await?;
    match args.client.output {
        OutputFormat::Json if !args.wait => println!("{}", serde_json::to_string_pretty(&job)?),
        OutputFormat::Json => {}
        OutputFormat::Table => eprintln!("{} queued", job.id),
    }
    if !args.wait {
        return Ok(0);
    }
    print_logs(&client, &job.id, 0, true).await?;
    let done = client.job(&job.id).await?;
    if args.client.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    }
    match done.state.as_str() {
        "succeeded" => Ok(0),
        _ => {
            eprintln!(
                "{} {}: {}",
                done.id,
                done.state,
                done.reason.as_deref().unwrap_or("no reason recorded")
            );
            Ok(done.exit_code.filter(|c| *c != 0).unwrap_or(1))
        }
    }
}

async fn print_logs(client: &Client, id: &str, rank: u32, follow: bool) -> Result<()> {
    let mut stdout = std::io::stdout();
    if !follow {
        // Page by page, so output larger than memory still prints.
        let mut offset = 0;
        loop {
            let page = client.logs_page(id, rank, offset, None).await?;
            if page.data.is_empty() {
                return Ok(());
            }
            stdout.write_all(&page.data)?;
            stdout.flush()?;
            offset = page.next_offset;
        }
    }
    let response = client.logs(id, rank, true).await?;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        stdout.write_all(&chunk?)?;
        stdout.flush()?;
    }
    Ok(())
}
