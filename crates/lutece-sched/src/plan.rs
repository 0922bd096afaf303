//! The placement pass: order the queue, then place each gang whole or not at all.

use crate::snapshot::{NodeState, Placement, Plan, QueuedWorkload, Snapshot, TaskPlacement, Waiting};
use lutece_core::Resources;

/// Computes a plan for `snapshot`. The same snapshot always gives the same plan.
///
/// Phases:
/// 1. order the queue by priority (high first), then submission time, then id;
/// 2. for each workload, choose `tasks` distinct schedulable nodes where one task fits, best fit
///    first (the node left with the fewest free GPUs, then CPUs, then memory; ties by id), and
///    take its GPUs lowest index first; if fewer nodes fit than the gang needs, place nothing
///    and record why;
/// 3. later workloads may use what an earlier one could not (greedy fill).
pub fn plan(snapshot: &Snapshot) -> Plan {
    let mut nodes: Vec<NodeState> = snapshot.nodes.clone();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    let mut queue: Vec<&QueuedWorkload> = snapshot.queue.iter().collect();
    queue.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.submitted_at_ms.cmp(&b.submitted_at_ms))
            .then(a.id.cmp(&b.id))
    });

    let mut result = Plan::default();
    for workload in queue {
        match place_gang(&nodes, workload) {
            Ok(chosen) => {
                let mut tasks = Vec::with_capacity(chosen.len());
                for index in chosen {
                    let node = &mut nodes[index];
                    let take = workload.per_task.gpus as usize;
                    let gpus: Vec<u32> = node.free_gpus.drain(..take).collect();
                    node.allocated = node.allocated.saturating_add(&workload.per_task);
                    tasks.push(TaskPlacement { node: node.id.clone(), gpus });
                }
                result.placements.push(Placement { workload: workload.id.clone(), tasks });
            }
            Err(reason) => {
                result.waiting.push(Waiting { workload: workload.id.clone(), reason });
            }
        }
    }
    debug_assert!(no_gpu_given_twice(&result));
    result
}

/// Indices into `nodes` of the nodes chosen for each rank, or why the gang does not fit now.
fn place_gang(nodes: &[NodeState], workload: &QueuedWorkload) -> Result<Vec<usize>, String> {
    let need = &workload.per_task;
    let wanted = workload.tasks.max(1) as usize;
    let mut fitting: Vec<usize> = (0..nodes.len())
        .filter(|&i| task_fits(&nodes[i], need))
        .collect();
    if fitting.len() < wanted {
        return Err(why_waiting(nodes, workload, fitting.len()));
    }
    fitting.sort_by_key(|&i| {
        let left = nodes[i].free().saturating_sub(need);
        (left.gpus, left.cpus_milli, left.memory_bytes, nodes[i].id.clone())
    });
    fitting.truncate(wanted);
    Ok(fitting)
}

fn task_fits(node: &NodeState, need: &Resources) -> bool {
    node.schedulable
        && need.fits_in(&node.free())
        && node.free_gpus.len() >= need.gpus as usize
}

/// A sentence that names the first resource that keeps the workload waiting.
fn why_waiting(nodes: &[NodeState], workload: &QueuedWorkload, fitting: usize) -> String {
    let need = &workload.per_task;
    let usable: Vec<&NodeState> = nodes.iter().filter(|n| n.schedulable).collect();
    if usable.is_empty() {
        return "no schedulable node in the fleet".to_owned();
    }
    let gang = if workload.tasks > 1 {
        format!(" on each of {} nodes", workload.tasks)
    } else {
        String::new()
    };
    if workload.tasks as usize > usable.len() {
        return format!(
            "needs {} nodes; the fleet has {} schedulable",
            workload.tasks,
            usable.len()
        );
    }
    let most = |f: fn(&NodeState) -> u64| usable.iter().map(|n| f(n)).max().unwrap_or(0);
    let most_free_gpus = most(|n| n.free_gpus.len() as u64);
    let most_free_cpus = most(|n| n.free().cpus_milli);
    let most_free_memory = most(|n| n.free().memory_bytes);
    if u64::from(need.gpus) > most_free_gpus {
        let largest = most(|n| u64::from(n.capacity.gpus));
        return format!(
            "needs {} GPUs{gang}; the largest node has {most_free_gpus} free ({largest} in all)",
            need.gpus
        );
    }
    if need.cpus_milli > most_free_cpus {
        return format!(
            "needs {} CPUs{gang}; the largest node has {} free",
            format_cpus(need.cpus_milli),
            format_cpus(most_free_cpus)
        );
    }
    if need.memory_bytes > most_free_memory {
        return format!(
            "needs {} of memory{gang}; the largest node has {} free",
            format_bytes(need.memory_bytes),
            format_bytes(most_free_memory)
        );
    }
    format!(
        "needs {} nodes that each fit {} CPUs, {} of memory and {} GPUs; {fitting} fit now",
        workload.tasks,
        format_cpus(need.cpus_milli),
        format_bytes(need.memory_bytes),
        need.gpus
    )
}

fn format_cpus(milli: u64) -> String {
    if milli % 1000 == 0 { format!("{}", milli / 1000) } else { format!("{}m", milli) }
}

fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
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
        .flat_map(|t| t.gpus.iter().map(move |g| (t.node.clone(), *g)))
        .all(|key| seen.insert(key))
}

#[cfg(test)]
mod tests;
