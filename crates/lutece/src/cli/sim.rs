//! `lutece sim`: replays a real cluster trace on a described fleet through the scheduler and
//! prints what it measured, as a table or as one JSON object.

use anyhow::Context as _;
use lutece_sim::fleet::{Fleet, FleetSpec};
use lutece_sim::{ReplayOptions, run, trace};
use std::io::{BufReader, IsTerminal as _, Write as _};
use std::path::Path;
use std::time::Instant;

/// Arguments of `lutece sim`.
#[derive(Debug, clap::Args)]
pub(crate) struct SimArgs {
    /// The trace, as FORMAT:PATH: `philly:JOBS.csv` or `openb:PODS.csv`.
    #[arg(long)]
    trace: String,
    /// The fleet: `philly-vcs:VC_NODES.csv`, `openb:NODES.csv`, a fleet file `fleet:PATH` (lines
    /// such as `nvl72 x 250` or `hgx8 x 64`), or a generated `nvl72xRACKS`.
    #[arg(long)]
    fleet: String,
    /// The policy: fifo, sjf, default, greedy (philly); random, bestfit, fgd, default (openb).
    #[arg(long, default_value = "default")]
    policy: String,
    /// Divide submit times by K (integer division), which raises the load.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
    compress: i64,
    /// Seed of the run's random draws (openb).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Average over this many seeds, from --seed on (openb).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    seeds: u32,
    /// Stop arrivals when the GPU requests arrived reach this % of capacity (openb).
    #[arg(long, default_value_t = 100)]
    arrive_until: u32,
    /// Shuffle the trace's pods with the seed before the random ones join, as the FGD
    /// artifact's run scripts do (openb); without it they arrive in the trace's order.
    #[arg(long)]
    shuffle: bool,
    /// Seconds of work a preempted job loses (checkpoint and restart), philly.
    #[arg(long, default_value_t = 30)]
    preemption_overhead: i64,
    /// Copies of the trace to replay at once, to fill a large fleet (philly).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    tile: u32,
    /// Seconds a gang waits for one NVLink domain before it spans several (philly; default:
    /// the policy's own, 1800 for `default`, 0 for `greedy`).
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    topology_wait: Option<i64>,
    /// Share the fleet fairly between the trace's tenants (philly): within a class, the tenant
    /// using fewest GPUs goes next.
    #[arg(long)]
    fair_share: bool,
    /// `table` or `json`.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    output: String,
}

/// Runs `lutece sim`.
pub(crate) fn run(args: SimArgs) -> anyhow::Result<()> {
    let (format, path) = args
        .trace
        .split_once(':')
        .with_context(|| format!("--trace `{}` is not FORMAT:PATH", args.trace))?;
    let spec: FleetSpec = args.fleet.parse()?;
    let started = Instant::now();
    let mut clock = move || started.elapsed().as_nanos() as u64;
    let mut bar = Progress::new();
    let mut progress = |done: usize, total: usize| bar.show(done, total);
    let value = match format {
        "philly" => {
            let jobs = read(path, trace::read_philly)?;
            let (fleet, pools) = match &spec {
                FleetSpec::PhillyVcs { path } => {
                    let pools = read(path, trace::read_vc_pools)?;
                    (Fleet::from_vc_pools(&pools), Some(pools))
                }
                FleetSpec::Nvl72 { racks } => (Fleet::nvl72(*racks), None),
                FleetSpec::File { path } => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("failed to read the fleet file {path}"))?;
                    let fleet = lutece_sim::fleet_file::parse(&text)
                        .with_context(|| format!("in the fleet file {path}"))?;
                    (fleet, None)
                }
                FleetSpec::Openb { path } => (
                    Fleet::from_openb(&read(path, trace::read_openb_nodes)?),
                    None,
                ),
            };
            let options = ReplayOptions {
                compress: args.compress,
                preemption_overhead_s: args.preemption_overhead,
                tile: args.tile,
                topology_wait_s: args.topology_wait,
                fair_share: args.fair_share.then_some(true),
            };
            let summary = run::philly(
                &jobs,
                pools.as_deref(),
                &fleet,
                &args.policy,
                &options,
                &mut clock,
                &mut progress,
            )?;
            serde_json::to_value(&summary)?
        }
        "openb" => {
            let FleetSpec::Openb { path: nodes_path } = &spec else {
                anyhow::bail!("an openb trace needs --fleet openb:NODES.csv");
            };
            let nodes = read(nodes_path, trace::read_openb_nodes)?;
            let pods = read(path, trace::read_openb_pods)?;
            let experiment = run::OpenbRun {
                policy: args.policy.clone(),
                seed: args.seed,
                seeds: args.seeds,
                arrive_until_pct: args.arrive_until,
                shuffle: args.shuffle,
            };
            let allocation = run::openb(&nodes, &pods, &experiment, &mut clock, &mut progress)?;
            serde_json::to_value(&allocation)?
        }
        other => anyhow::bail!("unknown trace format `{other}`: expected philly or openb"),
    };
    bar.finish();
    let serde_json::Value::Object(mut fields) = value else {
        anyhow::bail!("the simulator's summary is not an object");
    };
    fields.insert("trace".to_owned(), args.trace.clone().into());
    fields.insert("fleet".to_owned(), args.fleet.clone().into());
    fields.insert("policy".to_owned(), args.policy.clone().into());
    fields.insert("compress".to_owned(), args.compress.into());
    fields.insert("wall_s".to_owned(), started.elapsed().as_secs_f64().into());
    if args.output == "json" {
        println!("{}", serde_json::Value::Object(fields));
        return Ok(());
    }
    let tenants = fields.remove("tenants");
    let mut table = comfy_table::Table::new();
    table.set_header(["measure", "value"]);
    for (name, value) in &fields {
        let text = match value {
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => format!("{f:.3}"),
                _ => n.to_string(),
            },
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        table.add_row([name.clone(), text]);
    }
    println!("{table}");
    if let Some(serde_json::Value::Array(rows)) = tenants {
        let mut table = comfy_table::Table::new();
        table.set_header([
            "tenant",
            "jobs",
            "avg JCT s",
            "avg queue s",
            "slowdown",
            "GPU-hours",
        ]);
        for row in &rows {
            let number = |key: &str| row.get(key).and_then(serde_json::Value::as_f64);
            table.add_row([
                row.get("tenant")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                number("jobs").map_or_else(String::new, |v| format!("{v:.0}")),
                number("avg_jct_s").map_or_else(String::new, |v| format!("{v:.0}")),
                number("avg_queue_s").map_or_else(String::new, |v| format!("{v:.0}")),
                number("slowdown").map_or_else(String::new, |v| format!("{v:.2}")),
                number("gpu_hours").map_or_else(String::new, |v| format!("{v:.0}")),
            ]);
        }
        println!("{table}");
    }
    Ok(())
}

fn read<T, E>(
    path: &str,
    parse: impl FnOnce(BufReader<std::fs::File>) -> Result<T, E>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let file =
        std::fs::File::open(Path::new(path)).with_context(|| format!("failed to open {path}"))?;
    parse(BufReader::new(file)).with_context(|| format!("failed to read {path}"))
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
struct Progress {
    enabled: bool,
    shown: usize,
}

impl Progress {
    fn new() -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            shown: usize::MAX,
        }
    }

    fn show(&mut self, done: usize, total: usize) {
        let percent = done * 100 / total.max(1);
        if !self.enabled || percent == self.shown {
            return;
        }
        self.shown = percent;
        let filled = percent / 4;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{}{}] {percent:3}% {done}/{total}",
            "#".repeat(filled),
            " ".repeat(25 - filled)
        );
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.enabled && self.shown != usize::MAX {
            eprintln!();
        }
    }
}
