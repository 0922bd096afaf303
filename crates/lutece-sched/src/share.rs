//! Placement of single pods that may ask for a fraction of one GPU (in milli-GPUs), on nodes
//! whose GPUs can be shared: `random`, `bestfit`, `fgd`, and lutece's `default`.
//!
//! `fgd` is fragmentation gradient descent (FGD, ATC'23): a node's fragmentation is the free GPU
//! capacity that a typical pod could not use there, weighted by how common that pod is; a pod
//! goes where it raises the cluster's fragmentation least. FGD asks only whether a typical pod
//! fits *once*: a node with three free GPUs and CPUs for one more pod counts none of them as
//! fragments. `default` also counts, for pods that share a GPU, the free capacity left over once
//! as many of them as the node's GPUs, CPUs and memory allow are placed: GPUs stranded by a node
//! whose CPUs ran out are fragments too. Both break ties by best fit.

use std::collections::HashMap;

/// A node whose GPUs can be shared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareNode {
    pub free_cpus_milli: u64,
    pub free_memory_bytes: u64,
    /// Free milli-GPUs of each GPU (1000 is a whole free GPU).
    pub gpu_free_milli: Vec<u32>,
    /// The GPU model, as an interned number; `None` when unknown.
    pub model: Option<u32>,
}

/// A pod's demand: whole GPUs, or a share of one GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pod {
    pub cpus_milli: u64,
    pub memory_bytes: u64,
    /// Whole GPUs (used when `gpu_milli` is 0 or 1000).
    pub gpus: u32,
    /// A share of one GPU, 1..=999 milli-GPUs; 0 means whole GPUs.
    pub gpu_milli: u32,
    /// Acceptable GPU models as a bit set (bit `m` for interned model `m`); 0 means any.
    pub models: u64,
}

/// How to choose among nodes that fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharePolicy {
    /// Uniformly among fitting nodes, with a seeded generator the caller owns.
    Random,
    /// The node left with the fewest free milli-GPUs (then CPUs), lowest index first.
    BestFit,
    /// Least increase of FGD's fragmentation against `typical` pods (weights are their counts).
    Fgd { typical: Vec<(Pod, u32)> },
    /// Least increase of lutece's fragmentation (FGD's, plus stranded capacity) against
    /// `typical` pods.
    Default { typical: Vec<(Pod, u32)> },
}

/// Which fragmentation a fragmentation-aware policy minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    Fgd,
    Stranded,
}

/// A placement: the node and the GPU indices given (one for a shared pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharePlacement {
    pub node: usize,
    pub gpus: Vec<u32>,
}

impl Pod {
    /// Milli-GPUs the pod takes in all.
    pub fn milli(&self) -> u64 {
        if self.is_shared() {
            u64::from(self.gpu_milli)
        } else {
            u64::from(self.gpus) * 1000
        }
    }

    fn is_shared(&self) -> bool {
        self.gpu_milli > 0 && self.gpu_milli < 1000
    }
}

impl ShareNode {
    /// The GPUs the pod would take on this node, or `None` if it does not fit.
    pub fn fit(&self, pod: &Pod) -> Option<Vec<u32>> {
        if self.free_cpus_milli < pod.cpus_milli || self.free_memory_bytes < pod.memory_bytes {
            return None;
        }
        if pod.milli() > 0 && !self.has_model(pod.models) {
            return None;
        }
        if pod.is_shared() {
            // Best fit among GPUs: the one with the least free that still holds the share.
            let (i, _) = self
                .gpu_free_milli
                .iter()
                .enumerate()
                .filter(|(_, f)| **f >= pod.gpu_milli)
                .min_by_key(|(i, f)| (**f, *i))?;
            Some(vec![i as u32])
        } else {
            let whole: Vec<u32> = self
                .gpu_free_milli
                .iter()
                .enumerate()
                .filter(|(_, f)| **f == 1000)
                .map(|(i, _)| i as u32)
                .take(pod.gpus as usize)
                .collect();
            (whole.len() == pod.gpus as usize).then_some(whole)
        }
    }

    /// Takes `gpus` for `pod` (as returned by [`ShareNode::fit`]).
    pub fn take(&mut self, pod: &Pod, gpus: &[u32]) {
        self.free_cpus_milli = self.free_cpus_milli.saturating_sub(pod.cpus_milli);
        self.free_memory_bytes = self.free_memory_bytes.saturating_sub(pod.memory_bytes);
        let each = if pod.is_shared() { pod.gpu_milli } else { 1000 };
        for &g in gpus {
            if let Some(free) = self.gpu_free_milli.get_mut(g as usize) {
                *free = free.saturating_sub(each);
            }
        }
    }

    fn has_model(&self, models: u64) -> bool {
        models == 0 || self.model.is_some_and(|m| m < 64 && models & (1 << m) != 0)
    }

    fn free_milli(&self) -> u64 {
        self.gpu_free_milli.iter().map(|&f| u64::from(f)).sum()
    }

    /// Free milli-GPUs that a pod of shape `typical` could not use on this node, as FGD counts
    /// them: all of them when it cannot come here at all, otherwise those on GPUs too full for it.
    fn fgd_fragment(&self, typical: &Pod) -> u64 {
        let fits_rest = self.free_cpus_milli >= typical.cpus_milli
            && self.free_memory_bytes >= typical.memory_bytes
            && self.has_model(typical.models);
        if !fits_rest || typical.milli() == 0 {
            // A pod that needs no GPU, or cannot come here at all, leaves every free GPU idle;
            // CPU-only pods are excluded from the weights by the caller.
            return self.free_milli();
        }
        if typical.is_shared() {
            self.gpu_free_milli
                .iter()
                .filter(|&&f| f < typical.gpu_milli)
                .map(|&f| u64::from(f))
                .sum()
        } else {
            let whole = self.gpu_free_milli.iter().filter(|&&f| f == 1000).count() as u32;
            if whole >= typical.gpus {
                self.gpu_free_milli
                    .iter()
                    .filter(|&&f| f < 1000)
                    .map(|&f| u64::from(f))
                    .sum()
            } else {
                self.free_milli()
            }
        }
    }

    /// Free milli-GPUs left over once as many pods of the shared shape `typical` as this
    /// node's GPUs, CPUs and memory allow are placed on it (all of them when none can come).
    fn stranded(&self, typical: &Pod) -> u64 {
        let free = self.free_milli();
        if !typical.is_shared() || !self.has_model(typical.models) {
            return free;
        }
        let copies = |have: u64, need: u64| have.checked_div(need).unwrap_or(u64::MAX);
        let on_gpus: u64 = self
            .gpu_free_milli
            .iter()
            .map(|&f| u64::from(f / typical.gpu_milli))
            .sum();
        let room = on_gpus
            .min(copies(self.free_cpus_milli, typical.cpus_milli))
            .min(copies(self.free_memory_bytes, typical.memory_bytes));
        free.saturating_sub(room * u64::from(typical.gpu_milli))
    }

    fn fragment_for(&self, typical: &Pod, measure: Measure) -> u64 {
        match measure {
            Measure::Fgd => self.fgd_fragment(typical),
            Measure::Stranded if typical.is_shared() => {
                self.fgd_fragment(typical) + self.stranded(typical)
            }
            Measure::Stranded => self.fgd_fragment(typical),
        }
    }

    /// The node's fragmentation against the weighted `typical` pods.
    fn measured(&self, typical: &[(Pod, u32)], measure: Measure) -> u64 {
        typical
            .iter()
            .map(|(p, w)| self.fragment_for(p, measure) * u64::from(*w))
            .sum()
    }
}

/// The GPU shapes among `pods`, each with how many times it occurs, most common first: the
/// typical pods that fragmentation is measured against. Pods without GPUs are left out (they
/// fragment every node alike).
pub fn typical(pods: impl IntoIterator<Item = (Pod, u32)>) -> Vec<(Pod, u32)> {
    let mut counts: HashMap<Pod, u32> = HashMap::new();
    for (pod, times) in pods.into_iter().filter(|(p, _)| p.milli() > 0) {
        *counts.entry(pod).or_default() += times;
    }
    let mut shapes: Vec<(Pod, u32)> = counts.into_iter().collect();
    shapes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    shapes
}

/// A node's state as far as placement goes: free GPUs, CPUs, memory, model.
type NodeKey<'a> = (&'a [u32], u64, u64, Option<u32>);
/// Fragmentation change, then milli-GPUs left on the node, then its index: lowest wins.
type Score = (i128, u64, usize);

/// The fragmentation change of placing `pod` on `node`, and for a shared pod the GPU that
/// changes it least (each distinct free amount tried once); `whole` are the GPUs a whole-GPU pod
/// takes.
fn least_fragmenting(
    node: &ShareNode,
    pod: &Pod,
    whole: &[u32],
    typical: &[(Pod, u32)],
    measure: Measure,
) -> (i128, u32) {
    let before = node.measured(typical, measure) as i128;
    let delta = |gpus: &[u32]| {
        let mut after = node.clone();
        after.take(pod, gpus);
        after.measured(typical, measure) as i128 - before
    };
    if !pod.is_shared() {
        return (delta(whole), whole.first().copied().unwrap_or(0));
    }
    let mut tried: Vec<u32> = Vec::new();
    let mut best = (i128::MAX, 0);
    for (g, &free) in node.gpu_free_milli.iter().enumerate() {
        if free < pod.gpu_milli || tried.contains(&free) {
            continue;
        }
        tried.push(free);
        let d = delta(&[g as u32]);
        // Ties go to the fuller GPU (best fit), then the lower index.
        if (d, free)
            < (
                best.0,
                node.gpu_free_milli
                    .get(best.1 as usize)
                    .copied()
                    .unwrap_or(u32::MAX),
            )
        {
            best = (d, g as u32);
        }
    }
    best
}

/// Chooses where `pod` goes, or `None` when it fits nowhere. `random` is called once, for the
/// `Random` policy only, with the number of fitting nodes, and must return an index below it.
pub fn choose(
    nodes: &[ShareNode],
    pod: &Pod,
    policy: &SharePolicy,
    random: &mut dyn FnMut(usize) -> usize,
) -> Option<SharePlacement> {
    let fitting = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.fit(pod).map(|g| (i, g)));
    let (node, gpus) = match policy {
        SharePolicy::Random => {
            let all: Vec<(usize, Vec<u32>)> = fitting.collect();
            if all.is_empty() {
                return None;
            }
            let pick = random(all.len()).min(all.len() - 1);
            all.into_iter().nth(pick)?
        }
        SharePolicy::BestFit => fitting.min_by_key(|(i, _)| {
            let n = &nodes[*i];
            (
                n.free_milli() - pod.milli().min(n.free_milli()),
                n.free_cpus_milli,
                *i,
            )
        })?,
        SharePolicy::Fgd { typical } | SharePolicy::Default { typical } => {
            let measure = match policy {
                SharePolicy::Fgd { .. } => Measure::Fgd,
                _ => Measure::Stranded,
            };
            // Many nodes are in the same state (identical empty machines): score each state once.
            let mut seen: HashMap<NodeKey<'_>, (i128, u32)> = HashMap::new();
            let mut best: Option<(Score, usize, Vec<u32>)> = None;
            for (i, gpus) in fitting {
                let n = &nodes[i];
                let key = (
                    n.gpu_free_milli.as_slice(),
                    n.free_cpus_milli,
                    n.free_memory_bytes,
                    n.model,
                );
                let (delta, gpu) = *seen
                    .entry(key)
                    .or_insert_with(|| least_fragmenting(n, pod, &gpus, typical, measure));
                let gpus = if pod.is_shared() { vec![gpu] } else { gpus };
                let left = n.free_milli() - pod.milli().min(n.free_milli());
                let score = (delta, left, i);
                if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
                    best = Some((score, i, gpus));
                }
            }
            let (_, node, gpus) = best?;
            (node, gpus)
        }
    };
    Some(SharePlacement { node, gpus })
}

#[cfg(test)]
mod tests;
