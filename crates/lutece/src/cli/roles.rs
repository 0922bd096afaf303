//! The long-running roles: `up` (everything in one process), `server`, and `agent`.

use crate::cli::args::{AgentArgs, NodeArgs, UpArgs};
use crate::cli::config::{ADMIN_KEY_FILE, Settings, default_data_dir};
use anyhow::{Context, Result};
use lutece_agent::{Agent, AgentConfig};
use lutece_api::RegisterNode;
use lutece_server::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// `LUTECE_ADMIN_KEY` as it was at start-up; see [`take_admin_key_from_env`].
static ADMIN_KEY: OnceLock<Option<String>> = OnceLock::new();

/// Reads `LUTECE_ADMIN_KEY` and removes it from this process's environment, so no process
/// started from here (agent shims, tasks) inherits it. Call from `main` before any thread starts.
#[allow(unsafe_code)]
pub(crate) fn take_admin_key_from_env() {
    let key = std::env::var("LUTECE_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    if std::env::var_os("LUTECE_ADMIN_KEY").is_some() {
        // SAFETY: `main` calls this before the async runtime or any other thread exists, so
        // nothing reads or writes the environment concurrently.
        unsafe { std::env::remove_var("LUTECE_ADMIN_KEY") };
    }
    let _ = ADMIN_KEY.set(key);
}

/// `lutece up` and `lutece server`: the control plane, plus (for `up`) this machine as a node.
pub(crate) async fn run_control_plane(args: UpArgs, with_local_agent: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let settings = Settings::resolve(args)?;
    let admin_key = match ADMIN_KEY.get() {
        Some(key) => key.clone(),
        None => std::env::var("LUTECE_ADMIN_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
    };
    let server = lutece_server::start(ServerConfig {
        listen: settings.listen,
        data_dir: settings.data_dir.clone(),
        admin_key,
        check_programs: with_local_agent,
        root_key: settings.root_key.clone(),
        storage: settings.storage.clone(),
        jurisdiction: settings.jurisdiction.clone(),
    })
    .await?;
    if let Some(key) = &server.new_admin_key {
        let path = settings.data_dir.join(ADMIN_KEY_FILE);
        if let Err(error) = save_admin_key(&path, key) {
            // The store already holds this key: show it rather than lose it.
            eprintln!(
                "error: the new admin key could not be saved to {}; it is not shown again, keep it:\n    {key}",
                path.display()
            );
            return Err(error);
        }
    }
    let mut agent = if with_local_agent {
        // The control plane and this agent share the machine: replicas need not be exposed.
        let node = describe_node(&settings.node, Some("127.0.0.1"));
        let config = agent_config(settings.data_dir.join("agent"), node.clone())?;
        let handle = tokio::spawn(Agent::new(server.control.clone(), config).run());
        Some((handle, node))
    } else {
        None
    };

    let models = (with_local_agent && settings.serve_models).then(|| {
        tokio::spawn(crate::cli::models::deploy_default(
            settings.data_dir.clone(),
            server.control.clone(),
        ))
    });

    let base = format!("http://{}", server.addr);
    println!("lutece is up in {:.2} s", started.elapsed().as_secs_f64());
    println!("  API:      {base}/api/v1   (OpenAPI: {base}/api/openapi.json)");
    println!("  console:  {base}/");
    if models.is_some() {
        let ids: Vec<&str> = crate::cli::models::DEFAULT_MODELS
            .iter()
            .map(|m| m.id)
            .collect();
        println!(
            "  models:   {base}/v1   ({} starting; OpenAI- and Mistral-compatible)",
            ids.join(", ")
        );
    }
    println!("  data:     {}", settings.data_dir.display());
    if let Some((_, node)) = &agent {
        let fake = if node.gpus.iter().any(|g| g.fake) {
            " (fake)"
        } else {
            ""
        };
        println!(
            "  node:     {} ({} CPUs, {:.1} GiB, {} GPUs{fake})",
            node.name,
            node.cpus_milli / 1000,
            node.memory_bytes as f64 / (1u64 << 30) as f64,
            node.gpus.len()
        );
    }
    if let Some(key) = &server.new_admin_key {
        println!(
            "  admin key (shown once; saved to {}):",
            settings.data_dir.join(ADMIN_KEY_FILE).display()
        );
        println!("    {key}");
    }
    println!("Try: lutece jobs run --cpus 1 --memory 512Mi -- python3 -c 'print(42)'");

    let mut server = server;
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down; running tasks continue and are adopted at the next start"),
        result = server.wait() => result.context("the API server stopped")?,
        Some(result) = async { match &mut agent { Some((handle, _)) => Some(handle.await), None => None } } => {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(error).context("the local agent stopped"),
                Err(join) => return Err(join).context("the local agent crashed"),
            }
        }
    }
    server.shutdown().await;
    Ok(())
}

/// `lutece agent --join URL --token T`.
pub(crate) async fn run_agent(args: AgentArgs) -> Result<()> {
    let state_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?.join("agent"),
    };
    let control = lutece_client::HttpControl::new(&args.join, args.token)?;
    let node = describe_node(&args.node, None);
    println!(
        "joining {} as {} ({} GPUs)",
        args.join,
        node.name,
        node.gpus.len()
    );
    let agent = Agent::new(control, agent_config(state_dir, node)?);
    tokio::select! {
        result = agent.run() => result.context("the agent stopped")?,
        _ = shutdown_signal() => tracing::info!("agent shutting down; running tasks continue"),
    }
    Ok(())
}

fn agent_config(state_dir: PathBuf, node: RegisterNode) -> Result<AgentConfig> {
    let shim_program = std::env::current_exe().context("failed to find this program's own path")?;
    Ok(AgentConfig {
        state_dir,
        node,
        shim_program,
        heartbeat_wait: Duration::from_secs(10),
    })
}

/// What this machine has, with declared fake GPUs instead of discovered ones when asked.
fn describe_node(args: &NodeArgs, default_address: Option<&str>) -> RegisterNode {
    let hostname = lutece_agent::hostname();
    let name = args.node_name.clone().unwrap_or_else(|| hostname.clone());
    let gpus = match args.fake_gpus {
        Some(count) if count > 0 => lutece_agent::fake_gpus(count, &name),
        _ => lutece_agent::nvml_gpus(),
    };
    RegisterNode {
        name,
        hostname,
        address: args
            .advertise_address
            .clone()
            .or_else(|| default_address.map(str::to_owned)),
        rack: args.rack.clone(),
        jurisdiction: args.jurisdiction.clone(),
        cpus_milli: lutece_agent::cpus_milli(),
        memory_bytes: lutece_agent::memory_bytes(),
        gpus,
        node_id: None,
        credential: None,
    }
}

/// Writes the key (mode 0600) durably: to a temporary file, synced, renamed into place, and
/// the directory synced, all before the server is reported up.
fn save_admin_key(path: &Path, key: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let context = || format!("failed to save the admin key to {}", path.display());
    let tmp = path.with_extension("key.tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(context)?;
    writeln!(file, "{key}").with_context(context)?;
    file.sync_all().with_context(context)?;
    std::fs::rename(&tmp, path).with_context(context)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(context)?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
