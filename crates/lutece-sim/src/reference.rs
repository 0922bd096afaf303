//! The reference FIFO and SJF replay of `../shared/traces/README.md`, rule for rule: each VC
//! alone on its own pool, head-of-line blocking, and the README's own best-fit rules.
//!
//! These rules live here, in the simulator, and not in `lutece-sched`: they are a benchmark's
//! fixed yardstick (an independent script's semantics, down to its tie-breaks and its worst-fit
//! remainder rule), not a policy anyone should run in production. Keeping them apart lets the
//! scheduler evolve while this oracle stays byte-for-byte what the reference files measured.

use crate::report::JobRecord;
use crate::trace::{PhillyJob, VcPool};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// The order of the reference queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefOrder {
    /// By submission time, then job id.
    Fifo,
    /// By duration (an oracle), then submission time, then job id.
    Sjf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("job {job} belongs to VC `{vc}`, which has no pool")]
    UnknownVc { job: u64, vc: String },
}

/// Replays `jobs` (submit times divided by `compress`) and returns one record per job, in the
/// order of `jobs`. A job larger than its pool never starts (its record has no end).
pub fn replay(
    jobs: &[PhillyJob],
    pools: &[VcPool],
    order: RefOrder,
    compress: i64,
) -> Result<Vec<JobRecord>, ReferenceError> {
    let compress = compress.max(1);
    let tenant: HashMap<&str, usize> = pools
        .iter()
        .enumerate()
        .map(|(i, p)| (p.vc.as_str(), i))
        .collect();
    let mut by_pool: Vec<Vec<usize>> = vec![Vec::new(); pools.len()];
    for (i, job) in jobs.iter().enumerate() {
        let Some(&t) = tenant.get(job.vc.as_str()) else {
            return Err(ReferenceError::UnknownVc {
                job: job.id,
                vc: job.vc.clone(),
            });
        };
        by_pool[t].push(i);
    }
    let mut records: Vec<JobRecord> = jobs
        .iter()
        .map(|j| JobRecord {
            tenant: tenant.get(j.vc.as_str()).copied().unwrap_or(0),
            gpus: j.gpus,
            submit_ms: j.submit_s / compress * 1000,
            duration_ms: j.duration_s * 1000,
            start_ms: None,
            end_ms: None,
            nodes: 0,
            domains: 0,
        })
        .collect();
    for (pool, members) in pools.iter().zip(by_pool) {
        replay_pool(jobs, &members, pool, order, compress, &mut records);
    }
    Ok(records)
}

fn replay_pool(
    jobs: &[PhillyJob],
    members: &[usize],
    pool: &VcPool,
    order: RefOrder,
    compress: i64,
    records: &mut [JobRecord],
) {
    let per_node = pool.gpus / pool.nodes.max(1);
    let mut free = vec![per_node; pool.nodes as usize];
    let submit = |i: usize| jobs[i].submit_s / compress;
    let mut arrivals: Vec<usize> = members.to_vec();
    arrivals.sort_by_key(|&i| (submit(i), jobs[i].id));
    let key = |i: usize| match order {
        RefOrder::Fifo => (submit(i), 0, jobs[i].id, i),
        RefOrder::Sjf => (jobs[i].duration_s, submit(i), jobs[i].id, i),
    };
    let mut queue: BTreeSet<(i64, i64, u64, usize)> = BTreeSet::new();
    let mut running: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut held: HashMap<usize, Vec<(usize, u32)>> = HashMap::new();
    let mut next = 0;
    loop {
        let next_arrival = arrivals.get(next).map(|&i| submit(i));
        let next_end = running.peek().map(|Reverse((end, _))| *end);
        let now = match (next_arrival, next_end) {
            (None, None) => break,
            (a, e) => a.unwrap_or(i64::MAX).min(e.unwrap_or(i64::MAX)),
        };
        while let Some(&Reverse((end, i))) = running.peek() {
            if end > now {
                break;
            }
            running.pop();
            for (node, gpus) in held.remove(&i).unwrap_or_default() {
                free[node] += gpus;
            }
        }
        while let Some(&i) = arrivals.get(next) {
            if submit(i) > now {
                break;
            }
            queue.insert(key(i));
            next += 1;
        }
        while let Some(&head) = queue.first() {
            let i = head.3;
            let Some(taken) = place(&free, per_node, jobs[i].gpus) else {
                break;
            };
            for &(node, gpus) in &taken {
                free[node] -= gpus;
            }
            queue.pop_first();
            let end = now + jobs[i].duration_s;
            records[i].start_ms = Some(now * 1000);
            records[i].end_ms = Some(end * 1000);
            records[i].nodes = taken.len() as u32;
            records[i].domains = 1;
            held.insert(i, taken);
            running.push(Reverse((end, i)));
        }
        if next_arrival.is_none() && running.is_empty() {
            break;
        }
    }
}

/// The README's placement: `(node, gpus)` pairs, or `None` if the job does not fit now.
fn place(free: &[u32], per_node: u32, gpus: u32) -> Option<Vec<(usize, u32)>> {
    if gpus <= per_node {
        let (node, _) = free
            .iter()
            .enumerate()
            .filter(|(_, f)| **f >= gpus)
            .min_by_key(|(i, f)| (**f, *i))?;
        return Some(vec![(node, gpus)]);
    }
    let whole = (gpus / per_node) as usize;
    let rest = gpus % per_node;
    let mut taken: Vec<(usize, u32)> = free
        .iter()
        .enumerate()
        .filter(|(_, f)| **f == per_node)
        .map(|(i, _)| (i, per_node))
        .take(whole)
        .collect();
    if taken.len() < whole {
        return None;
    }
    if rest > 0 {
        let (node, _) = free
            .iter()
            .enumerate()
            .filter(|(i, f)| **f >= rest && !taken.iter().any(|(t, _)| t == i))
            .min_by_key(|(i, f)| (Reverse(**f), *i))?;
        taken.push((node, rest));
    }
    Some(taken)
}

#[cfg(test)]
mod tests;
