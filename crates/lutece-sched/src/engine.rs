//! The indexed scheduling core that [`crate::plan`] and the simulator share: nodes and workloads
//! are plain indices, so one pass over 18,000 GPUs and 10,000 queued workloads stays cheap.
//!
//! A pass has three phases (the crate's README says why):
//! 1. rank every workload, running or queued, by priority, then service class (least attained
//!    service first, with promotion of starving work), then submission time, then a caller tie;
//! 2. walk that ranking against the pool's GPU count and preempt running work that a
//!    strictly better-classed queued workload needs room from;
//! 3. place queued work in rank order, each gang whole or not at all, topology first
//!    (one domain if possible, best fit inside it); work that does not fit waits, and later work
//!    may use what it could not (no head-of-line blocking).

mod place;

pub use place::FreeIndex;

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
}

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
}

/// Why a queued workload is left waiting after a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Better-ranked work holds the GPUs it would need.
    Capacity,
    /// Enough resources are free in total but no set of distinct nodes fits every task.
    Fragmented,
}

/// What a pass decided, as indices into the `works` slice it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Started workloads in rank order, with the node of each task.
    pub started: Vec<(usize, Vec<u32>)>,
    pub preempted: Vec<usize>,
    /// Queued workloads left waiting, in input order.
    pub waiting: Vec<(usize, Wait)>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            order: Order::Fifo,
            preemption: false,
        }
    }
}

impl Policy {
    /// lutece's default for training work whose duration nobody knows: four service levels at
    /// 1, 10 and 100 GPU-hours of attained service, preemption, promotion after waiting 16× the
    /// time run.
    pub fn las() -> Self {
        const HOUR: u64 = 3_600_000;
        Policy {
            order: Order::Las {
                thresholds_gpu_ms: vec![HOUR, 10 * HOUR, 100 * HOUR],
                starve_factor: 16,
            },
            preemption: true,
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
    run(nodes, &mut None, works, policy, now_ms)
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
    let outcome = run(nodes, &mut slot, works, policy, now_ms);
    *index = slot.unwrap_or_default();
    outcome
}

fn run(
    nodes: &mut [Node],
    index: &mut Option<FreeIndex>,
    works: &[Work],
    policy: &Policy,
    now_ms: i64,
) -> Outcome {
    let mut outcome = Outcome::default();
    // Phase 1: rank. Each phase sorts only the workloads that can matter to it, so a pass on a
    // long queue and a full fleet does not pay for ranking work that cannot move.
    let levels: Vec<u32> = works.iter().map(|w| policy.level(w, now_ms)).collect();
    let class = |i: usize| (std::cmp::Reverse(works[i].priority), levels[i]);
    let ranked = |keep: &dyn Fn(usize) -> bool| {
        let mut keyed: Vec<_> = (0..works.len())
            .filter(|&i| keep(i))
            .map(|i| (class(i), works[i].submitted_at_ms, works[i].tie, i))
            .collect();
        keyed.sort_unstable();
        keyed.into_iter().map(|k| k.3).collect::<Vec<usize>>()
    };
    let total_free = |nodes: &[Node], index: &Option<FreeIndex>| match index {
        Some(index) => index.total_free(),
        None => nodes
            .iter()
            .filter(|n| n.schedulable)
            .map(|n| u64::from(n.free_gpus))
            .sum(),
    };

    // Phase 2: preemption by GPU count. Queued work, best first, takes free GPUs; when there are
    // too few, it may claim running preemptible work of a strictly worse class, worst first, and
    // only as much as it needs. Peers of the same class never displace one another. Only queued
    // work of a class better than the worst victim's can claim anything, and rank order puts
    // all of it before the rest, so only that work is ranked here.
    let worst = (0..works.len())
        .filter(|&i| policy.preemption && works[i].is_running() && works[i].preemptible)
        .map(class)
        .max();
    if let Some(worst) = worst {
        let mut free = total_free(nodes, index);
        let contenders = ranked(&|i| !works[i].is_running() && class(i) < worst);
        let mut victims: Option<Vec<usize>> = None;
        let mut next_victim = 0;
        for &q in &contenders {
            let need = u64::from(works[q].gpus());
            if need <= free {
                free -= need;
                continue;
            }
            let victims = victims.get_or_insert_with(|| {
                let mut running = ranked(&|i| works[i].is_running() && works[i].preemptible);
                running.reverse();
                running
            });
            let mut claimed = 0;
            let mut gained = 0;
            while free + gained < need {
                match victims.get(next_victim + claimed) {
                    Some(&v) if class(v) > class(q) => {
                        gained += u64::from(works[v].gpus());
                        claimed += 1;
                    }
                    _ => break,
                }
            }
            if free + gained >= need {
                outcome
                    .preempted
                    .extend_from_slice(&victims[next_victim..next_victim + claimed]);
                next_victim += claimed;
                free = free + gained - need;
            }
        }
        for &i in &outcome.preempted {
            let w = &works[i];
            match index.as_mut() {
                Some(index) => index.release(nodes, w),
                None => {
                    for (&node, &gpus) in w.running_on.iter().zip(&w.task_gpus) {
                        if let Some(n) = nodes.get_mut(node as usize) {
                            n.give(gpus, w);
                        }
                    }
                }
            }
        }
    }

    // Phase 3: place in rank order, greedily. Work that needs more GPUs than are free cannot
    // start in this pass: only the rest is ranked, and the index is built only if there is any.
    let mut free = total_free(nodes, index);
    let candidates = ranked(&|i| !works[i].is_running() && u64::from(works[i].gpus()) <= free);
    let mut started = vec![false; works.len()];
    for &i in &candidates {
        let w = &works[i];
        if u64::from(w.gpus()) > free {
            continue;
        }
        let index = index.get_or_insert_with(|| FreeIndex::new(nodes));
        if let Some(chosen) = index.place(nodes, w) {
            started[i] = true;
            outcome.started.push((i, chosen));
        }
        free = index.total_free();
    }
    // Everything else waits, listed in input order.
    for (i, w) in works.iter().enumerate() {
        if !w.is_running() && !started[i] {
            let wait = if u64::from(w.gpus()) > free {
                Wait::Capacity
            } else {
                Wait::Fragmented
            };
            outcome.waiting.push((i, wait));
        }
    }
    debug_assert!(
        nodes.iter().all(|n| n.free_gpus <= n.gpus),
        "a node gives more GPUs than it has"
    );
    outcome
}

#[cfg(test)]
mod tests;
