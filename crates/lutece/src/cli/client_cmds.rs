//! The small client commands: tenants, keys, nodes, usage, whoami.

use crate::cli::args::{
    ClientArgs, KeysCommand, NodesCommand, OutputFormat, TenantsCommand, UsageArgs,
};
use crate::cli::config::saved_admin_key;
use crate::cli::output;
use anyhow::{Result, bail};
use lutece_api::{CreateKey, Role};
use lutece_client::Client;

/// A client for `args`: the key from the flag or `LUTECE_API_KEY`, else, for a server on this
/// machine only, the admin key `lutece up` saved (never sent to a remote URL).
pub(crate) fn client(args: &ClientArgs) -> Result<Client> {
    let key = args.api_key.clone().or_else(|| {
        lutece_client::is_loopback_url(&args.url)
            .then(saved_admin_key)
            .flatten()
    });
    Ok(Client::new(&args.url, key)?)
}

pub(crate) async fn tenants(command: TenantsCommand) -> Result<i32> {
    match command {
        TenantsCommand::Create { name, client: args } => {
            let tenant = client(&args)?.create_tenant(&name).await?;
            output::print(args.output, &vec![tenant], output::tenants)?;
        }
        TenantsCommand::Limits {
            name,
            rpm,
            tpm,
            client: args,
        } => {
            let limits = lutece_api::TenantLimits {
                requests_per_minute: rpm,
                tokens_per_minute: tpm,
            };
            let set = client(&args)?.set_tenant_limits(&name, &limits).await?;
            let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&set)?),
                OutputFormat::Table => println!(
                    "{name}: {} requests/min, {} tokens/min",
                    show(set.requests_per_minute.map(u64::from)),
                    show(set.tokens_per_minute)
                ),
            }
        }
        TenantsCommand::List(args) => {
            let tenants = client(&args)?.list_tenants().await?;
            output::print(args.output, &tenants, output::tenants)?;
        }
    }
    Ok(0)
}

pub(crate) async fn keys(command: KeysCommand) -> Result<i32> {
    match command {
        KeysCommand::Create {
            tenant,
            name,
            role,
            client: args,
        } => {
            let role = match role.as_deref() {
                None => None,
                Some(text) => match Role::parse(text) {
                    Some(role) => Some(role),
                    None => bail!("--role {text:?} is not a role; use member, admin or operator"),
                },
            };
            let created = client(&args)?
                .create_key(&CreateKey { tenant, name, role })
                .await?;
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&created)?),
                OutputFormat::Table => {
                    println!("{}", output::keys(&vec![created.info.clone()]));
                    println!("key (shown once): {}", created.key);
                }
            }
        }
        KeysCommand::List(args) => {
            let keys = client(&args)?.list_keys().await?;
            output::print(args.output, &keys, output::keys)?;
        }
        KeysCommand::Revoke { id, client: args } => {
            client(&args)?.revoke_key(&id).await?;
            if args.output == OutputFormat::Table {
                println!("{id} revoked");
            }
        }
    }
    Ok(0)
}

pub(crate) async fn nodes(command: NodesCommand) -> Result<i32> {
    match command {
        NodesCommand::List(args) => {
            let nodes = client(&args)?.list_nodes().await?;
            output::print(args.output, &nodes, output::nodes)?;
        }
        NodesCommand::JoinToken(args) => {
            let token = client(&args)?.create_join_token().await?;
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&token)?),
                OutputFormat::Table => {
                    println!("join token (shown once): {}", token.token);
                    println!(
                        "on the new node: lutece agent --join {} --token {}",
                        args.url, token.token
                    );
                }
            }
        }
    }
    Ok(0)
}

pub(crate) async fn usage(args: UsageArgs) -> Result<i32> {
    let client = client(&args.client)?;
    if args.tokens {
        let rows = client.token_usage().await?;
        output::print(args.client.output, &rows, output::token_usage)?;
    } else {
        let rows = client.usage().await?;
        output::print(args.client.output, &rows, output::usage)?;
    }
    Ok(0)
}

pub(crate) async fn whoami(args: ClientArgs) -> Result<i32> {
    let who = client(&args)?.whoami().await?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&who)?),
        OutputFormat::Table => println!(
            "tenant {}, role {}, key {}",
            who.tenant,
            who.role.as_str(),
            who.key_id
        ),
    }
    Ok(0)
}
