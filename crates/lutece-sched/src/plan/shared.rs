//! Work that asks for a share of one GPU per task (`gpu_share_milli`), placed after the
//! whole-GPU pass in what it left: by priority, then submission, each task on its own node,
//! with lutece's fragmentation-aware rule ([`crate::share`]) against the queue's own shapes.

use super::Labels;
use crate::share::{self, Pod, ShareNode, SharePolicy};
use crate::snapshot::{
    NodeState, Placement, Plan, QueuedWorkload, Snapshot, TaskPlacement, Waiting,
};

pub(super) fn place(
    snapshot: &Snapshot,
    states: &mut [NodeState],
    labels: &Labels,
    result: &mut Plan,
) {
    let mut sharing: Vec<&QueuedWorkload> = snapshot
        .queue
        .iter()
        .filter(|w| w.gpu_share_milli > 0)
        .collect();
    if sharing.is_empty() {
        return;
    }
    sharing.sort_by(|a, b| {
        (std::cmp::Reverse(a.priority), a.submitted_at_ms, &a.id).cmp(&(
            std::cmp::Reverse(b.priority),
            b.submitted_at_ms,
            &b.id,
        ))
    });
    // Fragmentation is measured against the queue's own shapes, a task each.
    let typical = share::typical(snapshot.queue.iter().map(|w| (pod(w), w.tasks.max(1))));
    let rule = SharePolicy::Default { typical };
    for w in sharing {
        let milli = w.gpu_share_milli;
        if milli >= 1000 {
            result.waiting.push(Waiting {
                workload: w.id.clone(),
                reason: format!(
                    "asks for {milli} milli-GPUs of one GPU; a share is 1 to 999 (use whole \
                     GPUs beyond)"
                ),
            });
            continue;
        }
        let pod = pod(w);
        let requires = labels.requires(w);
        let allowed: Vec<usize> = (0..states.len())
            .filter(|&i| {
                let node = &states[i];
                let carries = labels.of_node(snapshot, node);
                node.schedulable && requires.iter().all(|set| carries & set != 0)
            })
            .collect();
        let mut nodes: Vec<ShareNode> = allowed.iter().map(|&i| share_node(&states[i])).collect();
        // Each task on a node of its own: a node taken is left out for the next task.
        let mut chosen: Vec<(usize, u32)> = Vec::new();
        for _ in 0..w.tasks.max(1) {
            let Some(placement) = share::choose(&nodes, &pod, &rule, &mut |_| 0) else {
                break;
            };
            let gpu = placement.gpus.first().copied().unwrap_or(0);
            chosen.push((allowed[placement.node], gpu));
            nodes[placement.node] = ShareNode::default();
        }
        if chosen.len() < w.tasks.max(1) as usize {
            let shape = format!(
                "{milli} milli-GPUs of one GPU with {} CPUs and {} of memory",
                super::format_cpus(w.per_task.cpus_milli),
                super::format_bytes(w.per_task.memory_bytes)
            );
            let reason = match w.tasks.max(1) {
                1 => format!("needs {shape}; no node has that free"),
                n => format!(
                    "needs {shape} on each of {n} nodes; only {} have that free",
                    chosen.len()
                ),
            };
            result.waiting.push(Waiting {
                workload: w.id.clone(),
                reason,
            });
            continue;
        }
        let mut tasks = Vec::with_capacity(chosen.len());
        for (n, gpu) in chosen {
            let state = &mut states[n];
            state.allocated = state.allocated.saturating_add(&w.per_task);
            state.free_gpus.retain(|&g| g != gpu);
            *state.shared_gpus.entry(gpu).or_default() += milli;
            tasks.push(TaskPlacement {
                node: state.id.clone(),
                gpus: vec![gpu],
                share_milli: Some(milli),
            });
        }
        result.placements.push(Placement {
            workload: w.id.clone(),
            tasks,
        });
    }
}

fn pod(w: &QueuedWorkload) -> Pod {
    Pod {
        cpus_milli: w.per_task.cpus_milli,
        memory_bytes: w.per_task.memory_bytes,
        gpus: if w.gpu_share_milli > 0 {
            1
        } else {
            w.per_task.gpus
        },
        gpu_milli: w.gpu_share_milli,
        models: 0,
    }
}

/// A node as the sharing rule sees it: what each GPU has free, in milli-GPUs.
fn share_node(state: &NodeState) -> ShareNode {
    let free = state.free();
    ShareNode {
        free_cpus_milli: free.cpus_milli,
        free_memory_bytes: free.memory_bytes,
        gpu_free_milli: (0..state.capacity.gpus)
            .map(|g| {
                if state.free_gpus.contains(&g) {
                    1000
                } else {
                    state
                        .shared_gpus
                        .get(&g)
                        .map_or(0, |used| 1000u32.saturating_sub(*used))
                }
            })
            .collect(),
        model: None,
    }
}
