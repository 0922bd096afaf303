//! `plan`: converts a [`Snapshot`] to the indexed core of [`crate::engine`], runs one pass, and
//! converts the outcome back to named placements, preemptions and readable reasons.

mod accounts;
mod shared;

use crate::engine::{self, Node, Wait, Work};
use crate::snapshot::{
    NodeState, Placement, Plan, Preemption, QueuedWorkload, Reservation, Snapshot, TaskPlacement,
    Waiting,
};
use accounts::Accounts;
use lutece_core::Resources;
use std::collections::{BTreeMap, HashMap};

/// Computes a plan for `snapshot`. The same snapshot always gives the same plan.
///
/// Phases (see the crate README):
/// 1. rank running and queued work: priority (high first), then service level under the LAS
///    policy, then submission time, then id;
/// 2. with a preempting policy, stop running work that better-classed queued work needs room
///    from;
/// 3. place each queued gang whole or not at all, within its tenant's quota and its sites'
///    power budgets, in one NVLink domain (rack) when one holds it, best fit node by node (the
///    node left with the fewest free GPUs; ties by id), GPUs lowest index first; the first
///    workload that cannot start gets a reservation when running work has end times, and later
///    workloads may use what an earlier one could not without delaying it.
pub fn plan(snapshot: &Snapshot) -> Plan {
    let policy = snapshot.policy.clone().unwrap_or_default();
    let mut sorted: Vec<&NodeState> = snapshot.nodes.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let by_id: HashMap<&str, u32> = sorted
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i as u32))
        .collect();
    let mut states: Vec<NodeState> = sorted.into_iter().cloned().collect();
    let racks: BTreeMap<&str, u32> = {
        let mut names: Vec<&str> = states.iter().filter_map(|n| n.rack.as_deref()).collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .enumerate()
            .map(|(i, r)| (r, i as u32))
            .collect()
    };
    let labels = Labels::new(&snapshot.queue);
    // Work that shares GPUs is placed after the whole-GPU pass, in the GPUs it leaves.
    let queue: Vec<&QueuedWorkload> = snapshot
        .queue
        .iter()
        .filter(|w| w.gpu_share_milli == 0)
        .collect();
    let accounts = Accounts::new(snapshot, &states);
    let mut nodes: Vec<Node> = states
        .iter()
        .map(|n| {
            let free = n.free();
            Node {
                gpus: n.capacity.gpus,
                free_gpus: free.gpus.min(n.free_gpus.len() as u32),
                free_cpus_milli: free.cpus_milli,
                free_memory_bytes: free.memory_bytes,
                domain: n
                    .rack
                    .as_deref()
                    .and_then(|r| racks.get(r).copied())
                    .unwrap_or(u32::MAX),
                schedulable: n.schedulable,
                labels: labels.of_node(snapshot, n),
                site: accounts.site_of(snapshot, &n.id),
                watts_per_gpu: snapshot.node_power.get(&n.id).map_or(0, |p| p.per_gpu_w),
            }
        })
        .collect();

    // Ties by id: the rank of each id among all workloads.
    let mut ids: Vec<&str> = snapshot
        .queue
        .iter()
        .map(|w| w.id.as_str())
        .chain(snapshot.running.iter().map(|w| w.id.as_str()))
        .collect();
    ids.sort_unstable();
    let tie = |id: &str| ids.binary_search(&id).unwrap_or(0) as u64;
    let mut works: Vec<Work> = queue
        .iter()
        .map(|w| queued_work(w, tie(&w.id), &labels, accounts.tenant(&w.tenant)))
        .collect();
    let mut running_ids = Vec::new();
    for r in &snapshot.running {
        let running_on: Option<Vec<u32>> = r
            .tasks
            .iter()
            .map(|t| by_id.get(t.node.as_str()).copied())
            .collect();
        // Work on nodes the snapshot does not list cannot be preempted meaningfully: skip it.
        let Some(running_on) = running_on else {
            continue;
        };
        works.push(Work {
            priority: r.priority,
            submitted_at_ms: r.submitted_at_ms,
            tie: tie(&r.id),
            task_gpus: r.tasks.iter().map(|t| t.gpus.len() as u32).collect(),
            task_cpus_milli: r.per_task.cpus_milli,
            task_memory_bytes: r.per_task.memory_bytes,
            attained_gpu_ms: r.attained_gpu_ms,
            service_base_gpu_ms: 0,
            waiting_since_ms: r.submitted_at_ms,
            running_on,
            preemptible: r.preemptible,
            requires: Vec::new(),
            tenant: accounts.tenant(&r.tenant),
            time_limit_ms: None,
            ends_at_ms: r.ends_at_ms,
        });
        running_ids.push(r);
    }
    let queued = queue.len();

    let outcome = engine::pass_limited(
        &mut nodes,
        &works,
        &policy,
        &accounts.limits,
        snapshot.now_ms,
    );

    let mut result = Plan::default();
    for &i in &outcome.preempted {
        let r = running_ids[i - queued];
        for task in &r.tasks {
            if let Some(&n) = by_id.get(task.node.as_str()) {
                let state = &mut states[n as usize];
                state.free_gpus.extend(&task.gpus);
                state.free_gpus.sort_unstable();
                state.free_gpus.dedup();
                state.allocated = state.allocated.saturating_sub(&r.per_task);
            }
        }
        result.preemptions.push(Preemption {
            workload: r.id.clone(),
            reason: if outcome.reclaimed.contains(&i) {
                "preempted to give back GPUs its tenant borrowed beyond its guarantee to a \
                 tenant of its cohort within its own"
            } else {
                "preempted for better-ranked queued work"
            }
            .to_owned(),
        });
    }
    if let Some(r) = &outcome.reservation {
        result.reservations.push(Reservation {
            workload: queue[r.work].id.clone(),
            at_ms: r.at_ms,
            nodes: r
                .nodes
                .iter()
                .map(|&n| states[n as usize].id.clone())
                .collect(),
        });
    }
    let placed = outcome.started;
    for (i, chosen) in &placed {
        let workload = queue[*i];
        let mut tasks = Vec::with_capacity(chosen.len());
        for (&node, gpus) in chosen.iter().zip(&works[*i].task_gpus) {
            let state = &mut states[node as usize];
            let take = (*gpus as usize).min(state.free_gpus.len());
            let given: Vec<u32> = state.free_gpus.drain(..take).collect();
            state.allocated = state.allocated.saturating_add(&workload.per_task);
            tasks.push(TaskPlacement {
                node: state.id.clone(),
                gpus: given,
                share_milli: None,
            });
        }
        result.placements.push(Placement {
            workload: workload.id.clone(),
            tasks,
        });
    }
    // What each tenant holds once the plan is carried out, for the reasons.
    let mut held: BTreeMap<&str, u64> = BTreeMap::new();
    let preempted: Vec<&str> = result
        .preemptions
        .iter()
        .map(|p| p.workload.as_str())
        .collect();
    for r in snapshot
        .running
        .iter()
        .filter(|r| !preempted.contains(&r.id.as_str()))
    {
        *held.entry(r.tenant.as_str()).or_default() +=
            r.tasks.iter().map(|t| t.gpus.len() as u64).sum::<u64>();
    }
    for &(i, _) in &placed {
        let w = queue[i];
        *held.entry(w.tenant.as_str()).or_default() +=
            u64::from(w.tasks.max(1)) * u64::from(w.per_task.gpus);
    }
    let mut view = FleetView::new(&states, snapshot);
    view.held = held;
    view.power_left = snapshot
        .site_power_budget_w
        .keys()
        .map(|site| (site.clone(), accounts::headroom(snapshot, &states, site)))
        .collect();
    view.reservation = result
        .reservations
        .first()
        .map(|r| (r.workload.clone(), r.at_ms));
    // The core lists waiting work in input order; a person reads it best in rank order.
    let mut waiting = outcome.waiting;
    waiting.sort_by_cached_key(|&(i, _)| {
        let w = &works[i];
        (
            std::cmp::Reverse(w.priority),
            policy.level(w, snapshot.now_ms),
            w.submitted_at_ms,
            w.tie,
        )
    });
    for (i, wait) in waiting {
        let workload = queue[i];
        let reason = view.why_waiting(workload, wait);
        result.waiting.push(Waiting {
            workload: workload.id.clone(),
            reason,
        });
    }
    shared::place(snapshot, &mut states, &labels, &mut result);
    debug_assert!(no_gpu_given_twice(&result));
    result
}

/// Jurisdictions and GPU models that some queued workload asks for, as bits (at most 64; a
/// value past that gets no bit, so a workload asking only for it waits: constraints err on the
/// side of never being broken).
struct Labels {
    bits: HashMap<(bool, String), u64>,
}

impl Labels {
    fn new(queue: &[QueuedWorkload]) -> Self {
        let mut wanted: Vec<(bool, String)> = queue
            .iter()
            .flat_map(|w| {
                let places = w.residency.iter().map(|j| (true, j.clone()));
                places.chain(w.gpu_models.iter().map(|m| (false, m.clone())))
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let bits = wanted
            .into_iter()
            .take(64)
            .enumerate()
            .map(|(i, k)| (k, 1u64 << i))
            .collect();
        Labels { bits }
    }

    fn bit(&self, jurisdiction: bool, value: &str) -> u64 {
        self.bits
            .get(&(jurisdiction, value.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn of_node(&self, snapshot: &Snapshot, node: &NodeState) -> u64 {
        snapshot
            .jurisdictions
            .get(&node.id)
            .map_or(0, |j| self.bit(true, j))
            | snapshot
                .gpu_models
                .get(&node.id)
                .map_or(0, |m| self.bit(false, m))
    }

    fn requires(&self, w: &QueuedWorkload) -> Vec<u64> {
        let set = |jurisdiction: bool, values: &[String]| {
            values
                .iter()
                .fold(0, |bits, v| bits | self.bit(jurisdiction, v))
        };
        let mut requires = Vec::new();
        if !w.residency.is_empty() {
            requires.push(set(true, &w.residency));
        }
        if !w.gpu_models.is_empty() {
            requires.push(set(false, &w.gpu_models));
        }
        requires
    }
}

fn queued_work(w: &QueuedWorkload, tie: u64, labels: &Labels, tenant: u32) -> Work {
    Work {
        priority: w.priority,
        submitted_at_ms: w.submitted_at_ms,
        tie,
        task_gpus: vec![w.per_task.gpus; w.tasks.max(1) as usize],
        task_cpus_milli: w.per_task.cpus_milli,
        task_memory_bytes: w.per_task.memory_bytes,
        attained_gpu_ms: w.attained_gpu_ms,
        service_base_gpu_ms: 0,
        waiting_since_ms: w.submitted_at_ms,
        running_on: Vec::new(),
        preemptible: false,
        requires: labels.requires(w),
        tenant,
        time_limit_ms: w.time_limit_ms,
        ends_at_ms: None,
    }
}

fn task_fits(node: &NodeState, need: &Resources) -> bool {
    node.schedulable && need.fits_in(&node.free()) && node.free_gpus.len() >= need.gpus as usize
}

/// What the waiting reasons need to know of the fleet after the pass, computed once.
struct FleetView<'a> {
    nodes: &'a [NodeState],
    jurisdictions: &'a BTreeMap<String, String>,
    gpu_models: &'a BTreeMap<String, String>,
    usable: usize,
    most_free_gpus: u64,
    most_free_cpus: u64,
    most_free_memory: u64,
    largest_gpus: u64,
    /// Nodes that fit one task of a shape, by shape (many workloads share one).
    fitting: HashMap<Resources, usize>,
    snapshot: &'a Snapshot,
    /// GPUs each tenant holds once the plan is carried out.
    held: BTreeMap<&'a str, u64>,
    /// The reserved workload and when it starts.
    reservation: Option<(String, i64)>,
    /// What each budgeted site's power budget leaves once the plan is carried out.
    power_left: Vec<(String, i64)>,
}

impl<'a> FleetView<'a> {
    fn new(nodes: &'a [NodeState], snapshot: &'a Snapshot) -> Self {
        let usable: Vec<&NodeState> = nodes.iter().filter(|n| n.schedulable).collect();
        let most = |f: fn(&NodeState) -> u64| usable.iter().map(|n| f(n)).max().unwrap_or(0);
        FleetView {
            nodes,
            jurisdictions: &snapshot.jurisdictions,
            gpu_models: &snapshot.gpu_models,
            usable: usable.len(),
            most_free_gpus: most(|n| n.free_gpus.len() as u64),
            most_free_cpus: most(|n| n.free().cpus_milli),
            most_free_memory: most(|n| n.free().memory_bytes),
            largest_gpus: most(|n| u64::from(n.capacity.gpus)),
            fitting: HashMap::new(),
            snapshot,
            held: BTreeMap::new(),
            reservation: None,
            power_left: Vec::new(),
        }
    }

    /// The sentence for work that a quota, a power budget or a reservation keeps waiting.
    fn why_limited(&self, workload: &QueuedWorkload, wait: Wait) -> Option<String> {
        let all = u64::from(workload.tasks.max(1)) * u64::from(workload.per_task.gpus);
        match wait {
            Wait::Quota => {
                let share = self.snapshot.tenants.get(&workload.tenant);
                let held = self
                    .held
                    .get(workload.tenant.as_str())
                    .copied()
                    .unwrap_or(0);
                let guaranteed = share.and_then(|s| s.guaranteed_gpus).unwrap_or(0);
                let borrow = match share.and_then(|s| s.borrow_limit_gpus) {
                    Some(limit) => format!("may borrow up to {limit} more from its cohort"),
                    None => "may borrow only what its cohort leaves idle".to_owned(),
                };
                Some(format!(
                    "tenant {} holds {held} GPUs, has {guaranteed} guaranteed and {borrow}; \
                     this needs {all} more",
                    workload.tenant
                ))
            }
            Wait::Power => {
                let sites: Vec<String> = self
                    .power_left
                    .iter()
                    .map(|(site, left)| match *left {
                        left if left >= 0 => format!("{site} has {left} W left"),
                        over => format!("{site} is {} W over", -over),
                    })
                    .collect();
                Some(format!(
                    "fits only where a site's power budget has no room for it ({})",
                    sites.join(", ")
                ))
            }
            Wait::Reserved => {
                let (head, at_ms) = self.reservation.clone()?;
                let wait_s = (at_ms - self.snapshot.now_ms).max(0) / 1000;
                Some(format!(
                    "fits now, but would delay {head}, which is reserved to start in {wait_s} s; \
                     a time limit that ends before then would let it run now"
                ))
            }
            _ => None,
        }
    }

    /// A sentence that names the first resource that keeps the workload waiting.
    fn why_waiting(&mut self, workload: &QueuedWorkload, wait: Wait) -> String {
        let need = &workload.per_task;
        if self.usable == 0 {
            return "no schedulable node in the fleet".to_owned();
        }
        let gang = if workload.tasks > 1 {
            format!(" on each of {} nodes", workload.tasks)
        } else {
            String::new()
        };
        if !workload.residency.is_empty() || !workload.gpu_models.is_empty() {
            let allowed = |n: &&NodeState| {
                n.schedulable
                    && (workload.residency.is_empty()
                        || self
                            .jurisdictions
                            .get(&n.id)
                            .is_some_and(|j| workload.residency.contains(j)))
                    && (workload.gpu_models.is_empty()
                        || self
                            .gpu_models
                            .get(&n.id)
                            .is_some_and(|m| workload.gpu_models.contains(m)))
            };
            let eligible = self.nodes.iter().filter(allowed).count();
            if eligible < workload.tasks.max(1) as usize {
                let mut wants = Vec::new();
                if !workload.residency.is_empty() {
                    wants.push(format!("runs only in {}", workload.residency.join(", ")));
                }
                if !workload.gpu_models.is_empty() {
                    wants.push(format!(
                        "needs GPU model {}",
                        workload.gpu_models.join(" or ")
                    ));
                }
                return format!(
                    "{}; {eligible} schedulable nodes qualify, {} needed",
                    wants.join(" and "),
                    workload.tasks.max(1)
                );
            }
        }
        if workload.tasks as usize > self.usable {
            return format!(
                "needs {} nodes; the fleet has {} schedulable",
                workload.tasks, self.usable
            );
        }
        if u64::from(need.gpus) > self.most_free_gpus {
            return format!(
                "needs {} GPUs{gang}; the largest node has {} free ({} in all)",
                need.gpus, self.most_free_gpus, self.largest_gpus
            );
        }
        if need.cpus_milli > self.most_free_cpus {
            return format!(
                "needs {} CPUs{gang}; the largest node has {} free",
                format_cpus(need.cpus_milli),
                format_cpus(self.most_free_cpus)
            );
        }
        if need.memory_bytes > self.most_free_memory {
            return format!(
                "needs {} of memory{gang}; the largest node has {} free",
                format_bytes(need.memory_bytes),
                format_bytes(self.most_free_memory)
            );
        }
        if let Some(reason) = self.why_limited(workload, wait) {
            return reason;
        }
        if wait == Wait::Topology {
            return format!(
                "waits for one NVLink domain to hold all {} tasks; now they would fit only \
                 across several",
                workload.tasks
            );
        }
        if wait == Wait::Capacity {
            let all = u64::from(workload.tasks) * u64::from(need.gpus);
            return format!("needs {all} GPUs in all; better-ranked work holds them");
        }
        let nodes = self.nodes;
        let fitting = *self
            .fitting
            .entry(*need)
            .or_insert_with(|| nodes.iter().filter(|n| task_fits(n, need)).count());
        format!(
            "needs {} nodes that each fit {} CPUs, {} of memory and {} GPUs; {fitting} fit now",
            workload.tasks,
            format_cpus(need.cpus_milli),
            format_bytes(need.memory_bytes),
            need.gpus
        )
    }
}

fn format_cpus(milli: u64) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{}m", milli)
    }
}

fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let value = bytes as f64 / size as f64;
            return if bytes % size == 0 {
                format!("{}{unit}", bytes / size)
            } else {
                format!("{value:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

fn no_gpu_given_twice(plan: &Plan) -> bool {
    let mut seen = std::collections::HashSet::new();
    plan.placements
        .iter()
        .flat_map(|p| &p.tasks)
        .filter(|t| t.share_milli.is_none())
        .flat_map(|t| t.gpus.iter().map(move |g| (t.node.clone(), *g)))
        .all(|key| seen.insert(key))
}

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;
