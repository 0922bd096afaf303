//! The small client commands: tenants, keys, nodes, usage, whoami. (A tenant's data
//! sovereignty — residency, encryption keys, deletion — is in `sovereignty`.)

use crate::cli::args::{
    ClientArgs, KeysCommand, Limit, LimitFlags, NodesCommand, OutputFormat, QuotaFlags, ServerArgs,
    TenantsCommand, UsageArgs,
};
use crate::cli::config::saved_admin_key;
use crate::cli::output;
use crate::cli::sovereignty;
use anyhow::{Result, bail};
use lutece_api::{CreateKey, GpuQuota, InferenceLimits, Role};
use lutece_client::Client;

/// A client for `args`: the key from the flag or `LUTECE_API_KEY`, else, for a server on this
/// machine only, the admin key `lutece up` saved (never sent to a remote URL).
pub(crate) fn client(args: &ServerArgs) -> Result<Client> {
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
            let tenant = client(&args.server)?.create_tenant(&name).await?;
            output::print(args.output, &vec![tenant], output::tenants)?;
        }
        TenantsCommand::Limits {
            name,
            limits,
            client: args,
        } => {
            let client = client(&args.server)?;
            let current = client.tenant_limits(&name).await?;
            let shown = match changed(&limits, current)? {
                Some(wanted) => client.set_tenant_limits(&name, &wanted).await?,
                None => current,
            };
            show_limits(args.output, &name, &shown)?;
        }
        TenantsCommand::GpuQuota {
            name,
            quota,
            client: args,
        } => {
            let client = client(&args.server)?;
            let current = client.gpu_quota(&name).await?;
            let shown = match changed_quota(&quota, &current)? {
                Some(wanted) => client.set_gpu_quota(&name, &wanted).await?,
                None => current,
            };
            show_quota(args.output, &name, &shown)?;
        }
        TenantsCommand::List(args) => {
            let tenants = client(&args.server)?.list_tenants().await?;
            output::print(args.output, &tenants, output::tenants)?;
        }
        TenantsCommand::Residency {
            name,
            allow,
            anywhere,
            client: args,
        } => return sovereignty::residency(&name, allow, anywhere, &args).await,
        TenantsCommand::EncryptionKeys {
            name,
            action,
            yes,
            client: args,
        } => return sovereignty::encryption_keys(&name, action, yes, &args).await,
        TenantsCommand::Delete {
            name,
            yes,
            client: args,
        } => return sovereignty::delete(&name, yes, &args).await,
        TenantsCommand::DeletionCertificate {
            name,
            output,
            public_key,
            server,
        } => {
            return sovereignty::deletion_certificate(
                &name,
                output,
                public_key.as_deref(),
                &server,
            )
            .await;
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
            let created = client(&args.server)?
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
            let keys = client(&args.server)?.list_keys().await?;
            output::print(args.output, &keys, output::keys)?;
        }
        KeysCommand::Revoke { id, client: args } => {
            client(&args.server)?.revoke_key(&id).await?;
            if args.output == OutputFormat::Table {
                println!("{id} revoked");
            }
        }
        KeysCommand::Limits {
            id,
            limits,
            client: args,
        } => {
            let client = client(&args.server)?;
            let current = client.key_limits(&id).await?;
            let shown = match changed(&limits, current)? {
                Some(wanted) => client.set_key_limits(&id, &wanted).await?,
                None => current,
            };
            show_limits(args.output, &id, &shown)?;
        }
    }
    Ok(0)
}

/// The limits with the flags' changes, or None when no flag was given.
fn changed(flags: &LimitFlags, current: InferenceLimits) -> Result<Option<InferenceLimits>> {
    if flags.rpm.is_none() && flags.tpm.is_none() && flags.monthly_tokens.is_none() {
        return Ok(None);
    }
    let value = |flag: Option<Limit>, current: Option<u64>| match flag {
        None => current,
        Some(Limit::Unlimited) => None,
        Some(Limit::At(n)) => Some(n),
    };
    let rpm = value(flags.rpm, current.requests_per_minute.map(u64::from));
    let requests_per_minute = rpm
        .map(u32::try_from)
        .transpose()
        .map_err(|_| anyhow::anyhow!("--rpm must be at most {}", u32::MAX))?;
    Ok(Some(InferenceLimits {
        requests_per_minute,
        tokens_per_minute: value(flags.tpm, current.tokens_per_minute),
        monthly_token_budget: value(flags.monthly_tokens, current.monthly_token_budget),
    }))
}

/// The quota with `flags` applied, or `None` when no flag was given.
fn changed_quota(flags: &QuotaFlags, current: &GpuQuota) -> Result<Option<GpuQuota>> {
    let QuotaFlags {
        guaranteed_gpus,
        borrow_limit,
        cohort,
        weight,
    } = flags;
    if guaranteed_gpus.is_none() && borrow_limit.is_none() && cohort.is_none() && weight.is_none() {
        return Ok(None);
    }
    let gpus = |limit: Limit, flag: &str| -> Result<Option<u32>> {
        match limit {
            Limit::Unlimited => Ok(None),
            Limit::At(n) => match u32::try_from(n) {
                Ok(n) => Ok(Some(n)),
                Err(_) => bail!("{flag} {n} is more GPUs than a fleet can have"),
            },
        }
    };
    let mut wanted = current.clone();
    if let Some(limit) = guaranteed_gpus {
        wanted.guaranteed_gpus = gpus(*limit, "--guaranteed-gpus")?;
    }
    if let Some(limit) = borrow_limit {
        wanted.borrow_limit_gpus = gpus(*limit, "--borrow-limit")?;
    }
    if let Some(cohort) = cohort {
        wanted.cohort = (cohort != "none").then(|| cohort.clone());
    }
    if let Some(weight) = weight {
        wanted.weight = *weight;
    }
    Ok(Some(wanted))
}

fn show_quota(format: OutputFormat, whose: &str, quota: &GpuQuota) -> Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(quota)?),
        OutputFormat::Table => {
            let guaranteed = quota
                .guaranteed_gpus
                .map_or("no quota".to_owned(), |g| format!("{g} GPUs guaranteed"));
            let borrow = match (quota.guaranteed_gpus, quota.borrow_limit_gpus) {
                (None, _) => String::new(),
                (Some(_), Some(b)) => format!(", may borrow {b} more"),
                (Some(_), None) => ", may borrow what its cohort leaves idle".to_owned(),
            };
            let cohort = quota
                .cohort
                .as_deref()
                .map_or("no cohort".to_owned(), |c| format!("cohort {c}"));
            println!(
                "{whose}: {guaranteed}{borrow}, {cohort}, fair-share weight {}",
                quota.weight
            );
        }
    }
    Ok(())
}

fn show_limits(format: OutputFormat, whose: &str, limits: &InferenceLimits) -> Result<()> {
    let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(limits)?),
        OutputFormat::Table => println!(
            "{whose}: {} requests/min, {} tokens/min, {} tokens/month",
            show(limits.requests_per_minute.map(u64::from)),
            show(limits.tokens_per_minute),
            show(limits.monthly_token_budget)
        ),
    }
    Ok(())
}

pub(crate) async fn nodes(command: NodesCommand) -> Result<i32> {
    match command {
        NodesCommand::List(args) => {
            let nodes = client(&args.server)?.list_nodes().await?;
            output::print(args.output, &nodes, output::nodes)?;
        }
        NodesCommand::JoinToken(args) => {
            let token = client(&args.server)?.create_join_token().await?;
            match args.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&token)?),
                OutputFormat::Table => {
                    println!("join token (shown once): {}", token.token);
                    println!(
                        "on the new node: lutece agent --join {} --token {}",
                        args.server.url, token.token
                    );
                }
            }
        }
    }
    Ok(0)
}

pub(crate) async fn usage(args: UsageArgs) -> Result<i32> {
    let client = client(&args.client.server)?;
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
    let who = client(&args.server)?.whoami().await?;
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
