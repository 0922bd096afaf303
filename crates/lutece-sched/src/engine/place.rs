//! Gang placement: every task of a workload on a distinct node, inside one NVLink domain when
//! one can hold the whole gang (the fullest such domain), otherwise across as few domains as
//! it can (the roomiest first), best fit node by node.

use super::{Node, Work};
use std::collections::BTreeMap;

/// Where a workload was placed, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// The node of each task, in rank order.
    On(Vec<u32>),
    /// It would fit only across several NVLink domains, and was not allowed to spread.
    NotInOneDomain,
    Nowhere,
}

impl From<Option<Vec<u32>>> for Placed {
    fn from(chosen: Option<Vec<u32>>) -> Self {
        chosen.map_or(Placed::Nowhere, Placed::On)
    }
}

/// Nodes bucketed by free GPU count, and domains with their free GPU totals, kept in step with
/// the nodes as tasks are placed during one pass.
#[derive(Debug, Clone, Default)]
pub struct FreeIndex {
    /// `buckets[f]`: schedulable nodes with exactly `f` free GPUs, ascending index.
    buckets: Vec<Vec<u32>>,
    domains: BTreeMap<u32, Domain>,
    total_free: u64,
    /// GPUs of the largest domain: a gang larger than that spans domains whatever it waits.
    largest_domain: u64,
}

#[derive(Debug, Clone, Default)]
struct Domain {
    gpus: u64,
    free: u64,
    nodes: Vec<u32>,
    /// `by_free[f]`: how many of its nodes have exactly `f` free GPUs.
    by_free: Vec<u32>,
}

/// Whether, by GPU counts alone, distinct nodes could take tasks of `sorted` GPUs (largest
/// first), given `by_free[f]` nodes with `f` free GPUs: the k largest tasks need k nodes with
/// at least the k-th one's GPUs free. Necessary, not sufficient (CPUs and memory aside).
fn could_hold(by_free: &[u32], sorted: &[u32]) -> bool {
    let mut level = by_free.len();
    let mut enough = 0u32;
    for (k, &gpus) in sorted.iter().enumerate() {
        while level > gpus as usize {
            level -= 1;
            enough += by_free[level];
        }
        if (enough as usize) < k + 1 {
            return false;
        }
    }
    true
}

impl FreeIndex {
    pub fn new(nodes: &[Node]) -> Self {
        let top = nodes.iter().map(|n| n.gpus).max().unwrap_or(0) as usize;
        let mut buckets = vec![Vec::new(); top + 1];
        let mut domains: BTreeMap<u32, Domain> = BTreeMap::new();
        let mut total_free = 0;
        for (i, node) in nodes.iter().enumerate() {
            if !node.schedulable {
                continue;
            }
            let free = node.free_gpus.min(node.gpus);
            buckets[free as usize].push(i as u32);
            let domain = domains.entry(node.domain).or_default();
            if domain.by_free.len() <= top {
                domain.by_free.resize(top + 1, 0);
            }
            domain.by_free[free as usize] += 1;
            domain.free += u64::from(free);
            domain.gpus += u64::from(node.gpus);
            domain.nodes.push(i as u32);
            total_free += u64::from(free);
        }
        let largest_domain = domains.values().map(|d| d.gpus).max().unwrap_or(0);
        FreeIndex {
            buckets,
            domains,
            total_free,
            largest_domain,
        }
    }

    pub fn total_free(&self) -> u64 {
        self.total_free
    }

    /// Places every task of `work` or none, across several NVLink domains only if `spread`;
    /// on success updates `nodes`.
    pub fn place(&mut self, nodes: &mut [Node], work: &Work, spread: bool) -> Placed {
        let total = u64::from(work.gpus());
        if total > self.total_free {
            return Placed::Nowhere;
        }
        let chosen = if work.task_gpus.len() == 1 {
            self.best_fit(nodes, work.task_gpus[0], work, &[])
                .map(|n| vec![n])
        } else {
            match self.gang(nodes, work, spread) {
                Placed::On(chosen) => Some(chosen),
                other => return other,
            }
        };
        let Some(chosen) = chosen else {
            return Placed::Nowhere;
        };
        for (&node, &gpus) in chosen.iter().zip(&work.task_gpus) {
            self.take(nodes, node, gpus, work);
        }
        Placed::On(chosen)
    }

    /// The node with the fewest free GPUs that fits one task of `gpus`, lowest index first,
    /// skipping `exclude`.
    fn best_fit(&self, nodes: &[Node], gpus: u32, work: &Work, exclude: &[u32]) -> Option<u32> {
        let from = gpus as usize;
        self.buckets.iter().skip(from).find_map(|bucket| {
            bucket
                .iter()
                .copied()
                .find(|&i| !exclude.contains(&i) && nodes[i as usize].fits(gpus, work))
        })
    }

    fn gang(&self, nodes: &[Node], work: &Work, spread: bool) -> Placed {
        let total = u64::from(work.gpus());
        // Tasks largest first, so the hardest one picks its node first.
        let mut ranks: Vec<usize> = (0..work.task_gpus.len()).collect();
        ranks.sort_by_key(|&r| (std::cmp::Reverse(work.task_gpus[r]), r));
        let sorted: Vec<u32> = ranks.iter().map(|&r| work.task_gpus[r]).collect();
        let everywhere: Vec<u32> = self.buckets.iter().map(|b| b.len() as u32).collect();
        if !could_hold(&everywhere, &sorted) {
            return Placed::Nowhere;
        }
        if self.domains.len() <= 1 {
            return assign(&ranks, work, |gpus, taken| {
                self.best_fit(nodes, gpus, work, taken)
            })
            .into();
        }
        let mut candidates: Vec<(&u32, &Domain)> = self
            .domains
            .iter()
            .filter(|(_, d)| d.free >= total && could_hold(&d.by_free, &sorted))
            .collect();
        candidates.sort_by_key(|(id, d)| (d.free, **id));
        for (_, domain) in candidates {
            if let Some(chosen) = assign(&ranks, work, |gpus, taken| {
                best_in(nodes, &domain.nodes, gpus, work, taken)
            }) {
                return Placed::On(chosen);
            }
        }
        // No one domain holds it: span as few as possible, taking from the domains with the
        // most free GPUs first, best fit inside each.
        let mut roomiest: Vec<(&u32, &Domain)> =
            self.domains.iter().filter(|(_, d)| d.free > 0).collect();
        roomiest.sort_by_key(|(id, d)| (std::cmp::Reverse(d.free), **id));
        let spanning = assign(&ranks, work, |gpus, taken| {
            roomiest
                .iter()
                .find_map(|(_, d)| best_in(nodes, &d.nodes, gpus, work, taken))
        });
        match spanning {
            Some(chosen) if spread || total > self.largest_domain => Placed::On(chosen),
            Some(_) => Placed::NotInOneDomain,
            None => Placed::Nowhere,
        }
    }

    fn take(&mut self, nodes: &mut [Node], i: u32, gpus: u32, work: &Work) {
        let node = &mut nodes[i as usize];
        let before = node.free_gpus;
        node.take(gpus, work);
        let (after, domain) = (node.free_gpus, node.domain);
        self.moved(i, before, after, domain);
    }

    /// Gives back every task of running `work` (it ended or is preempted).
    pub fn release(&mut self, nodes: &mut [Node], work: &Work) {
        for (&i, &gpus) in work.running_on.iter().zip(&work.task_gpus) {
            let Some(node) = nodes.get_mut(i as usize) else {
                continue;
            };
            let before = node.free_gpus;
            node.give(gpus, work);
            let (after, domain, schedulable) = (node.free_gpus, node.domain, node.schedulable);
            if schedulable {
                self.moved(i, before, after, domain);
            }
        }
    }

    /// Node `i` went from `before` to `after` free GPUs.
    fn moved(&mut self, i: u32, before: u32, after: u32, domain: u32) {
        if before != after {
            if let Some(bucket) = self.buckets.get_mut(before as usize) {
                if let Ok(at) = bucket.binary_search(&i) {
                    bucket.remove(at);
                }
            }
            if let Some(bucket) = self.buckets.get_mut(after as usize) {
                let at = bucket.binary_search(&i).unwrap_or_else(|at| at);
                bucket.insert(at, i);
            }
        }
        if let Some(domain) = self.domains.get_mut(&domain) {
            domain.free = (domain.free + u64::from(after)).saturating_sub(u64::from(before));
            if let Some(count) = domain.by_free.get_mut(before as usize) {
                *count = count.saturating_sub(1);
            }
            if let Some(count) = domain.by_free.get_mut(after as usize) {
                *count += 1;
            }
        }
        self.total_free = (self.total_free + u64::from(after)).saturating_sub(u64::from(before));
    }
}

/// Picks a distinct node for each rank in `ranks` order with `pick(gpus, taken)`.
fn assign(
    ranks: &[usize],
    work: &Work,
    mut pick: impl FnMut(u32, &[u32]) -> Option<u32>,
) -> Option<Vec<u32>> {
    let mut chosen = vec![u32::MAX; work.task_gpus.len()];
    let mut taken = Vec::with_capacity(ranks.len());
    for &rank in ranks {
        let node = pick(work.task_gpus[rank], &taken)?;
        taken.push(node);
        chosen[rank] = node;
    }
    Some(chosen)
}

/// Best fit among `candidates` (ascending indices), skipping `exclude`.
fn best_in(
    nodes: &[Node],
    candidates: &[u32],
    gpus: u32,
    work: &Work,
    exclude: &[u32],
) -> Option<u32> {
    candidates
        .iter()
        .copied()
        .filter(|&i| !exclude.contains(&i) && nodes[i as usize].fits(gpus, work))
        .min_by_key(|&i| (nodes[i as usize].free_gpus, i))
}
