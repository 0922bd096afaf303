//! One entry point per trace kind, by policy name, so the CLI only reads files and prints.

use crate::fleet::Fleet;
use crate::openb::{self, Allocation, OpenbPolicy, Order};
use crate::reference::{self, RefOrder};
use crate::replay::{self, ReplayOptions};
use crate::report::{JobRecord, Summary};
use crate::trace::{OpenbNode, OpenbPod, PhillyJob, VcPool};
use lutece_sched::Policy;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    #[error("unknown policy `{name}` for {trace} traces: expected one of {expected}")]
    UnknownPolicy {
        name: String,
        trace: &'static str,
        expected: &'static str,
    },
    #[error("the reference `{name}` rules need the per-VC pools: use --fleet philly-vcs:PATH")]
    ReferenceNeedsVcPools { name: String },
    #[error(transparent)]
    Reference(#[from] reference::ReferenceError),
    #[error(transparent)]
    Replay(#[from] replay::ReplayError),
}

/// Policy names for Philly traces.
pub const PHILLY_POLICIES: &str = "fifo, sjf (the reference rules), default (lutece: least attained service with preemption), greedy (lutece without preemption)";
/// Policy names for openb traces.
pub const OPENB_POLICIES: &str =
    "random, bestfit, fgd (fragmentation gradient descent), default (lutece: fragmentation-aware)";

/// Replays a Philly trace. `vc_pools` is the pool list when the fleet is `philly-vcs:`.
pub fn philly(
    jobs: &[PhillyJob],
    vc_pools: Option<&[VcPool]>,
    fleet: &Fleet,
    policy: &str,
    options: &ReplayOptions,
    clock: &mut dyn FnMut() -> u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Summary, SimError> {
    let tenants: Vec<String> = {
        let mut names: Vec<String> = match vc_pools {
            Some(pools) => pools.iter().map(|p| p.vc.clone()).collect(),
            None => jobs.iter().map(|j| j.vc.clone()).collect(),
        };
        if vc_pools.is_none() {
            names.sort_unstable();
            names.dedup();
        }
        names
    };
    let order = match policy {
        "fifo" => Some(RefOrder::Fifo),
        "sjf" => Some(RefOrder::Sjf),
        _ => None,
    };
    if let Some(order) = order {
        let pools = vc_pools.ok_or_else(|| SimError::ReferenceNeedsVcPools {
            name: policy.to_owned(),
        })?;
        let records = reference::replay(jobs, pools, order, options.compress)?;
        progress(records.len(), records.len());
        let mut summary = Summary::from_records(&records, &tenants);
        usage(&mut summary, &records, fleet.gpus());
        return Ok(summary);
    }
    let policy = match policy {
        "default" => Policy::las(),
        "greedy" => Policy::default(),
        _ => {
            return Err(SimError::UnknownPolicy {
                name: policy.to_owned(),
                trace: "philly",
                expected: PHILLY_POLICIES,
            });
        }
    };
    let policy = Policy {
        topology_wait_ms: options
            .topology_wait_s
            .map_or(policy.topology_wait_ms, |s| s.saturating_mul(1000)),
        fair_share: options.fair_share.unwrap_or(policy.fair_share),
        ..policy
    };
    let (_, summary) = replay::replay(jobs, &tenants, fleet, &policy, options, clock, progress)?;
    Ok(summary)
}

/// How to run the FGD allocation experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenbRun {
    pub policy: String,
    /// The first seed; runs use `seed`, `seed + 1`, … `seed + seeds - 1`.
    pub seed: u64,
    pub seeds: u32,
    /// Arrivals stop before the GPU requests pass this % of capacity.
    pub arrive_until_pct: u32,
    /// Shuffle the trace's own pods with each run's seed.
    pub shuffle: bool,
}

/// The FGD allocation experiment, averaged over the run's seeds.
pub fn openb(
    nodes: &[OpenbNode],
    pods: &[OpenbPod],
    run: &OpenbRun,
    clock: &mut dyn FnMut() -> u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Allocation, SimError> {
    let OpenbRun {
        policy,
        seed,
        seeds,
        arrive_until_pct,
        shuffle,
    } = run;
    let rule = match policy.as_str() {
        "random" => OpenbPolicy::Random,
        "bestfit" => OpenbPolicy::BestFit,
        "fgd" => OpenbPolicy::Fgd,
        "default" => OpenbPolicy::Default,
        _ => {
            return Err(SimError::UnknownPolicy {
                name: policy.clone(),
                trace: "openb",
                expected: OPENB_POLICIES,
            });
        }
    };
    let seeds = (*seeds).max(1);
    let mut runs = Vec::new();
    for s in 0..seeds {
        runs.push(openb::allocate(
            nodes,
            pods,
            rule,
            seed + u64::from(s),
            if *shuffle {
                Order::Shuffled
            } else {
                Order::Trace
            },
            *arrive_until_pct,
            clock,
        ));
        progress(s as usize + 1, seeds as usize);
    }
    let n = f64::from(seeds);
    let mean = |f: fn(&Allocation) -> f64| runs.iter().map(f).sum::<f64>() / n;
    Ok(Allocation {
        jobs: runs.iter().map(|r| r.jobs).sum::<usize>() / seeds as usize,
        placed: runs.iter().map(|r| r.placed).sum::<usize>() / seeds as usize,
        failed: runs.iter().map(|r| r.failed).sum::<usize>() / seeds as usize,
        arrived_pct: mean(|r| r.arrived_pct),
        allocation_ratio: mean(|r| r.allocation_ratio),
        decision_p50_us: mean(|r| r.decision_p50_us),
        decision_p99_us: mean(|r| r.decision_p99_us),
    })
}

/// Utilisation and energy from the records alone (for the reference replay, which keeps no
/// meters): busy GPU-time over fleet GPU-time between the first submission and the last end.
fn usage(summary: &mut Summary, records: &[JobRecord], fleet_gpus: u64) {
    let first = records.iter().map(|r| r.submit_ms).min().unwrap_or(0);
    let last = records
        .iter()
        .filter_map(|r| r.end_ms)
        .max()
        .unwrap_or(first);
    let span_ms = (last - first).max(1) as f64;
    let busy: f64 = records
        .iter()
        .filter(|r| r.end_ms.is_some())
        .map(|r| f64::from(r.gpus) * r.duration_ms as f64)
        .sum();
    summary.utilization = busy / (fleet_gpus.max(1) as f64 * span_ms);
    let idle = fleet_gpus as f64 * span_ms - busy;
    summary.energy_kwh = (busy * 700.0 + idle * 100.0) / 1000.0 / 3.6e6;
    summary.makespan_s = span_ms / 1000.0;
}
