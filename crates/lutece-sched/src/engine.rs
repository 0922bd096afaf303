//! The indexed scheduling core that [`crate::plan`] and the simulator share: nodes and workloads
//! are plain indices, so one pass over 18,000 GPUs and 10,000 queued workloads stays cheap.
//!
//! A pass has three phases (the crate's README says why; `pass.rs` runs them):
//! 1. rank every workload, running or queued, by priority, then service class (least attained
//!    service first, with promotion of starving work), then submission time, then a caller tie
//!    (with fair share, the tenant using least for its weight first within a class);
//! 2. walk that ranking against the pool's GPU count and preempt running work that a
//!    strictly better-classed queued workload needs room from, or that a tenant within its
//!    guarantee reclaims from a cohort peer that borrowed it;
//! 3. place queued work in turn, each gang whole or not at all, within its tenant's quota
//!    (`limits.rs`) and its sites' power budgets, topology first (one domain if possible, best
//!    fit inside it; `place.rs`); the first work that cannot start gets a reservation that
//!    later work must leave whole (`backfill.rs`), and otherwise later work may use what it
//!    could not (no head-of-line blocking).

mod backfill;
mod limits;
mod pass;
mod place;

pub use backfill::Reservation;
pub use limits::{Limits, Quota, Site};
pub use place::{FreeIndex, Placed};

/// One node as the core sees it: what it has and what is free now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub gpus: u32,
    pub free_gpus: u32,
    pub free_cpus_milli: u64,
    pub free_memory_bytes: u64,
    /// The NVLink domain (or rack) the node belongs to; nodes sharing a number share a domain.
    pub domain: u32,
    pub schedulable: bool,
    /// Labels the node carries (its jurisdiction, its GPU model…), as bits the caller interns.
    pub labels: u64,
    /// The site whose power budget the node draws from ([`Limits::sites`]); `None`: none.
    pub site: Option<u32>,
    /// Watts one more busy GPU adds to the node's draw.
    pub watts_per_gpu: u32,
}

/// One workload, running or queued. Each task goes on a distinct node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Higher goes first.
    pub priority: i32,
    pub submitted_at_ms: i64,
    /// The caller's final tie-break (for example the rank of the workload's id).
    pub tie: u64,
    /// GPUs of each task, in rank order.
    pub task_gpus: Vec<u32>,
    pub task_cpus_milli: u64,
    pub task_memory_bytes: u64,
    /// GPU-milliseconds of service the workload has received so far.
    pub attained_gpu_ms: u64,
    /// Service counted before the workload's last promotion out of starvation: levels count
    /// from here, so a promoted workload gets a fresh quantum instead of being preempted at once.
    pub service_base_gpu_ms: u64,
    /// Since when a queued workload has waited (its submission, or its last preemption).
    pub waiting_since_ms: i64,
    /// Node of each task while the workload runs; empty while it waits.
    pub running_on: Vec<u32>,
    pub preemptible: bool,
    /// Hard constraints: for each set, the node must carry at least one of its labels (the
    /// allowed jurisdictions of a residency policy; the acceptable GPU models). Empty: none.
    pub requires: Vec<u64>,
    /// The tenant, an index into [`Limits`] (quotas, fair-share weights).
    pub tenant: u32,
    /// How long queued work runs at most once started (its time limit), if it says.
    pub time_limit_ms: Option<i64>,
    /// When running work will have ended at the latest, if known.
    pub ends_at_ms: Option<i64>,
}

/// How long lutece's default policy lets a gang wait for one NVLink domain.
pub const TOPOLOGY_WAIT_MS: i64 = 1_800_000;

/// How a pass ranks work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Priority, then submission time: nothing is ever preempted within a priority.
    Fifo,
    /// Discretised least attained service (Tiresias-style multi-level feedback queue): a workload
    /// falls to level `i` once its attained GPU-ms passes `thresholds[i - 1]`; a queued workload
    /// that has waited `starve_factor` times as long as it has run goes back to level 0.
    Las {
        thresholds_gpu_ms: Vec<u64>,
        starve_factor: u32,
    },
}

/// The knobs of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub order: Order,
    /// Whether running preemptible work may be stopped for better-classed queued work.
    pub preemption: bool,
    /// How long a gang waits for one NVLink domain that can hold it all before it accepts
    /// spanning several (0: at once).
    pub topology_wait_ms: i64,
    /// Whether, within a class, the tenant using least for its weight goes next (otherwise
    /// submission order alone).
    pub fair_share: bool,
}

/// Why a queued workload is left waiting after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Better-ranked work holds the GPUs it would need.
    Capacity,
    /// Enough resources are free in total but no set of distinct nodes fits every task.
    Fragmented,
    /// The gang would fit across several NVLink domains, and waits for one that holds it all.
    Topology,
    /// Its tenant's quota (guarantee and what it may borrow) has no room for it.
    Quota,
    /// It fits only where a site's power budget has no room for it.
    Power,
    /// It fits, but would delay the reservation of the work ahead of it.
    Reserved,
}

/// What a pass decided, as indices into the `works` slice it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Started workloads in rank order, with the node of each task.
    pub started: Vec<(usize, Vec<u32>)>,
    pub preempted: Vec<usize>,
    /// Those of `preempted` stopped to give back GPUs their tenant borrowed beyond its
    /// guarantee, to a cohort peer within its own.
    pub reclaimed: Vec<usize>,
    /// Queued workloads left waiting, in input order.
    pub waiting: Vec<(usize, Wait)>,
    /// When and where the first workload that could not start will, if end times tell.
    pub reservation: Option<Reservation>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            order: Order::Fifo,
            preemption: false,
            topology_wait_ms: 0,
            fair_share: false,
        }
    }
}

impl Policy {
    /// lutece's default for training work whose duration nobody knows: four service levels at
    /// 1, 10 and 100 GPU-hours of attained service, preemption, promotion after waiting 16× the
    /// time run, and gangs wait up to TOPOLOGY_WAIT_MS for one NVLink domain.
    pub fn las() -> Self {
        const HOUR: u64 = 3_600_000;
        Policy {
            order: Order::Las {
                thresholds_gpu_ms: vec![HOUR, 10 * HOUR, 100 * HOUR],
                starve_factor: 16,
            },
            preemption: true,
            topology_wait_ms: TOPOLOGY_WAIT_MS,
            fair_share: false,
        }
    }

    /// The level by service alone, without starvation promotion.
    fn raw_level(&self, work: &Work) -> u32 {
        match &self.order {
            Order::Fifo => 0,
            Order::Las {
                thresholds_gpu_ms, ..
            } => {
                let service = work
                    .attained_gpu_ms
                    .saturating_sub(work.service_base_gpu_ms);
                thresholds_gpu_ms
                    .iter()
                    .take_while(|&&t| service >= t)
                    .count() as u32
            }
        }
    }

    /// The service level of `work` at `now_ms` (0 is best).
    pub fn level(&self, work: &Work, now_ms: i64) -> u32 {
        match &self.order {
            Order::Fifo => 0,
            Order::Las {
                thresholds_gpu_ms,
                starve_factor,
            } => {
                let service = work
                    .attained_gpu_ms
                    .saturating_sub(work.service_base_gpu_ms);
                let level = thresholds_gpu_ms
                    .iter()
                    .take_while(|&&t| service >= t)
                    .count();
                if level > 0 && work.running_on.is_empty() && *starve_factor > 0 {
                    let gpus = u64::from(work.gpus().max(1));
                    let ran_ms = work.attained_gpu_ms / gpus;
                    let waited = now_ms.saturating_sub(work.waiting_since_ms).max(0) as u64;
                    if waited >= ran_ms.saturating_mul(u64::from(*starve_factor)) {
                        return 0;
                    }
                }
                level as u32
            }
        }
    }
}

impl Work {
    /// Whether a queued workload ranks at level 0 only because it starves (it should then
    /// start a fresh quantum: set `service_base_gpu_ms` to `attained_gpu_ms` when it starts).
    pub fn is_promoted(&self, policy: &Policy, now_ms: i64) -> bool {
        !self.is_running() && policy.level(self, now_ms) == 0 && policy.raw_level(self) > 0
    }

    pub fn gpus(&self) -> u32 {
        self.task_gpus.iter().sum()
    }

    pub fn is_running(&self) -> bool {
        !self.running_on.is_empty()
    }
}

impl Node {
    fn fits(&self, gpus: u32, work: &Work) -> bool {
        self.schedulable
            && self.free_gpus >= gpus
            && self.free_cpus_milli >= work.task_cpus_milli
            && self.free_memory_bytes >= work.task_memory_bytes
            && self.allows(work)
    }

    /// Whether the node meets every hard constraint of `work` (resources aside).
    pub fn allows(&self, work: &Work) -> bool {
        work.requires.iter().all(|set| self.labels & set != 0)
    }

    fn take(&mut self, gpus: u32, work: &Work) {
        self.free_gpus -= gpus;
        self.free_cpus_milli -= work.task_cpus_milli;
        self.free_memory_bytes -= work.task_memory_bytes;
    }

    fn give(&mut self, gpus: u32, work: &Work) {
        self.free_gpus = (self.free_gpus + gpus).min(self.gpus);
        self.free_cpus_milli = self.free_cpus_milli.saturating_add(work.task_cpus_milli);
        self.free_memory_bytes = self
            .free_memory_bytes
            .saturating_add(work.task_memory_bytes);
    }
}

/// Whether a [`pass`] could start or preempt anything, given the `free` GPUs of the
/// schedulable nodes: false when every queued workload needs more GPUs than are free plus those
/// of the running work it could preempt. Exact, and linear in the work (no ranking, no index):
/// callers that replay events use it to skip passes on a full fleet.
pub fn pass_could_act(free: u64, works: &[Work], policy: &Policy, now_ms: i64) -> bool {
    let mut best: Option<(std::cmp::Reverse<i32>, u32)> = None;
    let mut smallest = u64::MAX;
    for w in works.iter().filter(|w| !w.is_running()) {
        smallest = smallest.min(u64::from(w.gpus()));
        let class = (std::cmp::Reverse(w.priority), policy.level(w, now_ms));
        best = Some(best.map_or(class, |b| b.min(class)));
    }
    let Some(best) = best else { return false };
    if smallest <= free {
        return true;
    }
    if !policy.preemption {
        return false;
    }
    let claimable: u64 = works
        .iter()
        .filter(|w| w.is_running() && w.preemptible)
        .filter(|w| (std::cmp::Reverse(w.priority), policy.level(w, now_ms)) > best)
        .map(|w| u64::from(w.gpus()))
        .sum();
    smallest <= free + claimable
}

/// Runs one pass over `nodes` (updated in place: started work takes, preempted work gives back)
/// and `works`. Deterministic: the same input gives the same outcome.
pub fn pass(nodes: &mut [Node], works: &[Work], policy: &Policy, now_ms: i64) -> Outcome {
    pass::run(nodes, &mut None, works, policy, &Limits::default(), now_ms)
}

/// [`pass`] under tenants' quotas, fair-share weights and sites' power budgets.
pub fn pass_limited(
    nodes: &mut [Node],
    works: &[Work],
    policy: &Policy,
    limits: &Limits,
    now_ms: i64,
) -> Outcome {
    pass::run(nodes, &mut None, works, policy, limits, now_ms)
}

/// [`pass`] with an index the caller keeps between passes (built with [`FreeIndex::new`] over
/// the same nodes, and told of every end with [`FreeIndex::release`]): the incremental form a
/// replay of many events uses, so a pass never rebuilds what did not change.
pub fn pass_indexed(
    nodes: &mut [Node],
    index: &mut FreeIndex,
    works: &[Work],
    policy: &Policy,
    now_ms: i64,
) -> Outcome {
    let mut slot = Some(std::mem::take(index));
    let outcome = pass::run(nodes, &mut slot, works, policy, &Limits::default(), now_ms);
    *index = slot.unwrap_or_default();
    outcome
}

#[cfg(test)]
mod tests;
