//! The discrete-event replay of a training trace through `lutece-sched`'s core: arrivals,
//! completions, service-level crossings and starvation promotions are the events; after each
//! instant's events one scheduling pass runs, exactly as the server's reconciler would.

use crate::fleet::{Fleet, Pool};
use crate::report::{JobRecord, Summary, quantile};
use crate::trace::PhillyJob;
use lutece_sched::engine::{self, Node, Order, Policy, Work};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Knobs of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Submit times are divided by this (integer division), which raises the load.
    pub compress: i64,
    /// Simulated seconds a preempted job loses when it resumes (checkpoint and restart).
    pub preemption_overhead_s: i64,
    /// Copies of the trace, each shifted by one second and given fresh ids, to fill a larger
    /// fleet with the same pattern of load.
    pub tile: u32,
    /// Seconds a gang waits for one NVLink domain before it spans several; `None` keeps the
    /// policy's own.
    pub topology_wait_s: Option<i64>,
    /// Whether tenants (the trace's virtual clusters) share the fleet fairly; `None` keeps
    /// the policy's own.
    pub fair_share: Option<bool>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            compress: 1,
            preemption_overhead_s: 30,
            tile: 1,
            topology_wait_s: None,
            fair_share: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReplayError {
    #[error("job {job} belongs to VC `{vc}`, which has no pool in the fleet")]
    UnknownVc { job: u64, vc: String },
    #[error("the fleet has no node with a GPU")]
    NoGpus,
}

/// One job of the replay, in simulated milliseconds.
#[derive(Debug, Clone)]
struct Job {
    id: u64,
    submit_ms: i64,
    duration_ms: i64,
    gpus: u32,
}

/// A job in the pool's active set (queued or running); `work` is what the scheduler sees.
#[derive(Debug, Clone)]
struct Active {
    job: usize,
    done_ms: i64,
    started_at: Option<i64>,
    attained_at_start: u64,
}

/// The measurements a replay hands back besides the job records.
#[derive(Debug, Default)]
struct Meters {
    busy_gpu_ms: u128,
    idle_waiting_gpu_ms: u128,
    energy_j: f64,
    peak_w: f64,
    preemptions: u64,
    /// Real time of each full pass, and of each pass that found it could do nothing.
    decision_ns: Vec<u64>,
    skipped_ns: Vec<u64>,
}

const BUSY_W: f64 = 700.0;
const IDLE_W: f64 = 100.0;

/// Replays `jobs` on `fleet` under `policy`. `clock` returns nanoseconds of real time and is
/// only used to measure each pass (pass `|| 0` for deterministic output); `progress` is told
/// how many jobs have finished.
pub fn replay(
    jobs: &[PhillyJob],
    tenants: &[String],
    fleet: &Fleet,
    policy: &Policy,
    options: &ReplayOptions,
    clock: &mut dyn FnMut() -> u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<JobRecord>, Summary), ReplayError> {
    if fleet.gpus() == 0 {
        return Err(ReplayError::NoGpus);
    }
    let compress = options.compress.max(1);
    let tenant_of: HashMap<&str, usize> = tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let pool_of: HashMap<&str, usize> = fleet
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut all: Vec<Job> = Vec::with_capacity(jobs.len() * options.tile.max(1) as usize);
    let mut records = Vec::with_capacity(all.capacity());
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); fleet.pools.len()];
    let id_stride = jobs.iter().map(|j| j.id).max().unwrap_or(0) + 1;
    for copy in 0..options.tile.max(1) {
        for job in jobs {
            let pool = if fleet.pool_per_tenant {
                *pool_of
                    .get(job.vc.as_str())
                    .ok_or_else(|| ReplayError::UnknownVc {
                        job: job.id,
                        vc: job.vc.clone(),
                    })?
            } else {
                0
            };
            let submit_ms = (job.submit_s / compress) * 1000 + i64::from(copy) * 1000;
            members[pool].push(all.len());
            records.push(JobRecord {
                tenant: tenant_of.get(job.vc.as_str()).copied().unwrap_or(0),
                gpus: job.gpus,
                submit_ms,
                duration_ms: job.duration_s * 1000,
                start_ms: None,
                end_ms: None,
                nodes: 0,
                domains: 0,
            });
            all.push(Job {
                id: job.id + u64::from(copy) * id_stride,
                submit_ms,
                duration_ms: job.duration_s * 1000,
                gpus: job.gpus,
            });
        }
    }
    let mut meters = Meters::default();
    let total = all.len();
    let mut finished = 0;
    for (pool, members) in fleet.pools.iter().zip(&members) {
        replay_pool(
            &all,
            members,
            pool,
            policy,
            options,
            &mut records,
            &mut meters,
            clock,
            &mut |n| {
                finished += n;
                progress(finished, total);
            },
        );
    }

    let mut summary = Summary::from_records(&records, tenants);
    let first = records.iter().map(|r| r.submit_ms).min().unwrap_or(0);
    let last = records
        .iter()
        .filter_map(|r| r.end_ms)
        .max()
        .unwrap_or(first);
    let span_ms = (last - first).max(1) as f64;
    let capacity = fleet.gpus() as f64 * span_ms;
    summary.utilization = meters.busy_gpu_ms as f64 / capacity;
    summary.idle_while_waiting = meters.idle_waiting_gpu_ms as f64 / capacity;
    summary.preemptions = meters.preemptions;
    summary.passes = meters.decision_ns.len() as u64;
    summary.passes_skipped = meters.skipped_ns.len() as u64;
    meters.decision_ns.sort_unstable();
    let micros: Vec<f64> = meters
        .decision_ns
        .iter()
        .map(|&ns| ns as f64 / 1000.0)
        .collect();
    summary.decision_p50_us = quantile(&micros, 0.5);
    summary.decision_p99_us = quantile(&micros, 0.99);
    summary.energy_kwh = meters.energy_j / 3.6e6;
    summary.peak_power_kw = meters.peak_w / 1000.0;
    summary.makespan_s = span_ms / 1000.0;
    Ok((records, summary))
}

/// The tasks of a job of `gpus` GPUs on nodes of `per_node`: whole nodes, then the rest.
fn shape(gpus: u32, per_node: u32) -> Vec<u32> {
    let per_node = per_node.max(1);
    if gpus <= per_node {
        return vec![gpus];
    }
    let mut tasks = vec![per_node; (gpus / per_node) as usize];
    if gpus % per_node > 0 {
        tasks.push(gpus % per_node);
    }
    tasks
}

#[expect(
    clippy::too_many_arguments,
    reason = "one pool's replay threads the whole run's state"
)]
fn replay_pool(
    all: &[Job],
    members: &[usize],
    pool: &Pool,
    policy: &Policy,
    options: &ReplayOptions,
    records: &mut [JobRecord],
    meters: &mut Meters,
    clock: &mut dyn FnMut() -> u64,
    finished: &mut dyn FnMut(usize),
) {
    let mut nodes: Vec<Node> = pool
        .nodes
        .iter()
        .map(|n| Node {
            gpus: n.gpus,
            free_gpus: n.gpus,
            free_cpus_milli: n.cpus_milli,
            free_memory_bytes: n.memory_bytes,
            domain: n.domain,
            schedulable: n.gpus > 0,
            labels: 0,
            site: None,
            watts_per_gpu: 0,
        })
        .collect();
    let pool_gpus: u32 = nodes.iter().map(|n| n.gpus).sum();
    // Free GPUs of the pool, kept in step with every start, end and preemption.
    let mut free = pool_gpus;
    let mut index = engine::FreeIndex::new(&nodes);
    // Jobs are cut into tasks of the smallest node's GPU count, so that every node can take
    // a task (on a fleet of one node size, as every trace's own, that is the node size).
    let per_node = nodes
        .iter()
        .map(|n| n.gpus)
        .filter(|&g| g > 0)
        .min()
        .unwrap_or(1);
    let mut arrivals: Vec<usize> = members.to_vec();
    arrivals.sort_by_key(|&j| (all[j].submit_ms, all[j].id));
    let thresholds: &[u64] = match &policy.order {
        Order::Las {
            thresholds_gpu_ms, ..
        } => thresholds_gpu_ms,
        Order::Fifo => &[],
    };
    let starve = match &policy.order {
        Order::Las { starve_factor, .. } => i64::from(*starve_factor),
        Order::Fifo => 0,
    };
    let overhead_ms = options.preemption_overhead_s * 1000;
    let mut works: Vec<Work> = Vec::new();
    let mut active: Vec<Active> = Vec::new();
    // Future completions, service-level crossings and starvation promotions, as
    // (time, job, generation); a job's generation changes when it starts, stops or ends, which
    // voids its older events.
    let mut events: BinaryHeap<Reverse<(i64, usize, u32)>> = BinaryHeap::new();
    let mut generation: HashMap<usize, u32> = HashMap::new();
    let mut position: HashMap<usize, usize> = HashMap::new();
    let mut queued = 0usize;
    let mut next = 0;
    let mut now = arrivals.first().map_or(0, |&j| all[j].submit_ms);
    let crossing = |w: &Work, a: &Active, at: i64| -> Option<i64> {
        let base = w.service_base_gpu_ms;
        let t = thresholds
            .iter()
            .map(|&t| t + base)
            .find(|&t| t > w.attained_gpu_ms)?;
        let g = u64::from(all[a.job].gpus.max(1));
        Some(a.started_at.unwrap_or(at) + (t - a.attained_at_start).div_ceil(g) as i64)
    };
    loop {
        // The next instant something happens.
        while let Some(&Reverse((_, j, g))) = events.peek() {
            if generation.get(&j) == Some(&g) {
                break;
            }
            events.pop();
        }
        let at = arrivals
            .get(next)
            .map_or(i64::MAX, |&j| all[j].submit_ms)
            .min(events.peek().map_or(i64::MAX, |Reverse((t, _, _))| *t));
        if at == i64::MAX {
            break;
        }
        let at = at.max(now);
        // Meter the interval [now, at).
        let busy = pool_gpus - free;
        let dt = (at - now) as u128;
        meters.busy_gpu_ms += u128::from(busy) * dt;
        if queued > 0 {
            meters.idle_waiting_gpu_ms += u128::from(free) * dt;
        }
        let watts = f64::from(busy) * BUSY_W + f64::from(free) * IDLE_W;
        meters.energy_j += watts * dt as f64 / 1000.0;
        meters.peak_w = meters.peak_w.max(watts);
        now = at;

        // Completions (and crossings) first, then arrivals.
        let mut done = 0;
        while let Some(&Reverse((t, j, g))) = events.peek() {
            if t > now {
                break;
            }
            events.pop();
            if generation.get(&j) != Some(&g) {
                continue;
            }
            let Some(&i) = position.get(&j) else { continue };
            let a = &active[i];
            let Some(s) = a.started_at else { continue };
            if s + all[j].duration_ms - a.done_ms <= now {
                index.release(&mut nodes, &works[i]);
                free += works[i].gpus();
                records[j].end_ms = Some(now);
                generation.remove(&j);
                position.remove(&j);
                works.swap_remove(i);
                active.swap_remove(i);
                if let Some(moved) = active.get(i) {
                    position.insert(moved.job, i);
                }
                done += 1;
            } else {
                works[i].attained_gpu_ms =
                    a.attained_at_start + (now - s) as u64 * u64::from(all[j].gpus);
                if let Some(next_crossing) = crossing(&works[i], a, now) {
                    events.push(Reverse((next_crossing, j, g)));
                }
            }
        }
        if done > 0 {
            finished(done);
        }
        while let Some(&j) = arrivals.get(next) {
            if all[j].submit_ms > now {
                break;
            }
            let job = &all[j];
            works.push(Work {
                priority: 0,
                submitted_at_ms: job.submit_ms,
                tie: job.id,
                task_gpus: shape(job.gpus, per_node),
                task_cpus_milli: 1000,
                task_memory_bytes: 1 << 30,
                waiting_since_ms: job.submit_ms,
                preemptible: true,
                tenant: records[j].tenant as u32,
                ..Work::default()
            });
            active.push(Active {
                job: j,
                done_ms: 0,
                started_at: None,
                attained_at_start: 0,
            });
            position.insert(j, active.len() - 1);
            generation.insert(j, 0);
            queued += 1;
            next += 1;
        }
        if queued == 0 {
            continue;
        }
        for (w, a) in works.iter_mut().zip(&active) {
            if let Some(s) = a.started_at {
                w.attained_gpu_ms =
                    a.attained_at_start + (now - s) as u64 * u64::from(all[a.job].gpus);
            }
        }

        let before = clock();
        if !engine::pass_could_act(u64::from(free), &works, policy, now) {
            meters.skipped_ns.push(clock().saturating_sub(before));
            continue;
        }
        let outcome = engine::pass_indexed(&mut nodes, &mut index, &works, policy, now);
        meters.decision_ns.push(clock().saturating_sub(before));
        for &i in &outcome.preempted {
            let a = &mut active[i];
            if let Some(s) = a.started_at.take() {
                a.done_ms = (a.done_ms + now - s - overhead_ms).max(0);
            }
            works[i].running_on.clear();
            works[i].waiting_since_ms = now;
            free += works[i].gpus();
            queued += 1;
            meters.preemptions += 1;
            let g = generation.entry(a.job).or_default();
            *g += 1;
            if starve > 0 && policy.level(&works[i], now) > 0 {
                let ran = (works[i].attained_gpu_ms / u64::from(all[a.job].gpus.max(1))) as i64;
                events.push(Reverse((now + ran * starve, a.job, *g)));
            }
        }
        for (i, chosen) in outcome.started {
            if works[i].is_promoted(policy, now) {
                works[i].service_base_gpu_ms = works[i].attained_gpu_ms;
            }
            let a = &mut active[i];
            a.started_at = Some(now);
            a.attained_at_start = works[i].attained_gpu_ms;
            let record = &mut records[a.job];
            if record.start_ms.is_none() {
                record.start_ms = Some(now);
                let mut domains: Vec<u32> =
                    chosen.iter().map(|&n| nodes[n as usize].domain).collect();
                domains.sort_unstable();
                domains.dedup();
                record.domains = domains.len() as u32;
                record.nodes = chosen.len() as u32;
            }
            free -= works[i].gpus();
            queued -= 1;
            works[i].running_on = chosen;
            let g = generation.entry(a.job).or_default();
            *g += 1;
            events.push(Reverse((
                now + all[a.job].duration_ms - a.done_ms,
                a.job,
                *g,
            )));
            if let Some(t) = crossing(&works[i], a, now) {
                events.push(Reverse((t, a.job, *g)));
            }
        }
    }
}

#[cfg(test)]
mod tests;
