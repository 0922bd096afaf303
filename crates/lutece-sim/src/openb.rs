//! The FGD allocation experiment on Alibaba's openb trace: pods arrive one by one with no
//! departures; the figure is the share of the cluster's milli-GPUs allocated when the GPU
//! requests that have arrived reach k% of capacity.

use crate::trace::{OpenbNode, OpenbPod};
use lutece_sched::share::{self, Pod, ShareNode, SharePolicy};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which placement rule places the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenbPolicy {
    Random,
    BestFit,
    /// Fragmentation gradient descent as published (ATC'23), for comparison.
    Fgd,
    Default,
}

/// The order in which the trace's own pods arrive, before the randomly drawn ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As the trace lists them.
    Trace,
    /// Shuffled with the run's seed, as the FGD artifact's run scripts do (`--shuffle-pod=true`).
    Shuffled,
}

/// The result of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Allocation {
    pub jobs: usize,
    pub placed: usize,
    pub failed: usize,
    /// Arrived GPU requests over the cluster's milli-GPUs, in % (just under `arrive_until`).
    pub arrived_pct: f64,
    /// Allocated milli-GPUs over the cluster's, in %.
    pub allocation_ratio: f64,
    pub decision_p50_us: f64,
    pub decision_p99_us: f64,
}

/// A small seeded generator (SplitMix64): the experiment must be reproducible from its seed.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Runs the experiment: the trace's pods in `order`, then pods drawn at random (with `seed`, with
/// replacement) while the total GPU request stays within 130% of capacity; pods are submitted
/// until the next one would take the arrived GPU request past `arrive_until_pct`% of capacity.
pub fn allocate(
    nodes: &[OpenbNode],
    pods: &[OpenbPod],
    policy: OpenbPolicy,
    seed: u64,
    order: Order,
    arrive_until_pct: u32,
    clock: &mut dyn FnMut() -> u64,
) -> Allocation {
    let mut models: BTreeMap<&str, u32> = BTreeMap::new();
    for name in nodes.iter().filter_map(|n| n.model.as_deref()).chain(
        pods.iter()
            .flat_map(|p| p.gpu_spec.iter().map(String::as_str)),
    ) {
        let next = models.len() as u32;
        models.entry(name).or_insert(next);
    }
    let mut cluster: Vec<ShareNode> = nodes
        .iter()
        .map(|n| ShareNode {
            free_cpus_milli: n.cpu_milli,
            free_memory_bytes: n.memory_mib << 20,
            gpu_free_milli: vec![1000; n.gpus as usize],
            model: n.model.as_deref().and_then(|m| models.get(m).copied()),
        })
        .collect();
    let demand: Vec<Pod> = pods
        .iter()
        .map(|p| Pod {
            cpus_milli: p.cpu_milli,
            memory_bytes: p.memory_mib << 20,
            gpus: p.num_gpu,
            gpu_milli: if p.num_gpu == 1 && p.gpu_milli < 1000 {
                p.gpu_milli
            } else {
                0
            },
            models: p
                .gpu_spec
                .iter()
                .filter_map(|m| models.get(m.as_str()))
                .filter(|&&m| m < 64)
                .fold(0, |bits, &m| bits | 1 << m),
        })
        .collect();
    let capacity: u64 = cluster
        .iter()
        .map(|n| n.gpu_free_milli.len() as u64 * 1000)
        .sum();
    let mut rng = SplitMix::new(seed);
    let mut sequence: Vec<Pod> = demand.clone();
    if order == Order::Shuffled {
        // Fisher-Yates, with the run's generator.
        for i in (1..sequence.len()).rev() {
            sequence.swap(i, rng.below(i + 1));
        }
    }
    let mut total: u64 = sequence.iter().map(Pod::milli).sum();
    if !demand.is_empty() {
        loop {
            let pod = demand[rng.below(demand.len())];
            if (total + pod.milli()) * 100 > capacity * 130 {
                break;
            }
            total += pod.milli();
            sequence.push(pod);
        }
    }
    let rule = match policy {
        OpenbPolicy::Random => SharePolicy::Random,
        OpenbPolicy::BestFit => SharePolicy::BestFit,
        OpenbPolicy::Fgd => SharePolicy::Fgd {
            typical: share::typical(demand.iter().map(|p| (*p, 1))),
        },
        OpenbPolicy::Default => SharePolicy::Default {
            typical: share::typical(demand.iter().map(|p| (*p, 1))),
        },
    };
    let mut result = Allocation::default();
    let (mut arrived, mut allocated) = (0u64, 0u64);
    let mut decisions = Vec::new();
    for pod in &sequence {
        if (arrived + pod.milli()) * 100 > capacity * u64::from(arrive_until_pct) {
            break;
        }
        arrived += pod.milli();
        result.jobs += 1;
        let before = clock();
        let chosen = share::choose(&cluster, pod, &rule, &mut |n| rng.below(n));
        decisions.push(clock().saturating_sub(before) as f64 / 1000.0);
        match chosen {
            Some(placement) => {
                cluster[placement.node].take(pod, &placement.gpus);
                allocated += pod.milli();
                result.placed += 1;
            }
            None => result.failed += 1,
        }
    }
    let capacity = capacity.max(1) as f64;
    result.arrived_pct = arrived as f64 * 100.0 / capacity;
    result.allocation_ratio = allocated as f64 * 100.0 / capacity;
    decisions.sort_by(f64::total_cmp);
    result.decision_p50_us = crate::report::quantile(&decisions, 0.5);
    result.decision_p99_us = crate::report::quantile(&decisions, 0.99);
    result
}

#[cfg(test)]
mod tests;
