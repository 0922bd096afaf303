//! Scheduler cases written as a tiny fleet and a queue, with the plan they must give.

use super::plan;
use crate::snapshot::{NodeState, QueuedWorkload, Snapshot};
use lutece_core::Resources;
use proptest::prelude::*;

fn node(id: &str, cpus: u64, gpus: u32) -> NodeState {
    NodeState {
        id: id.to_owned(),
        rack: None,
        schedulable: true,
        capacity: Resources { cpus_milli: cpus * 1000, memory_bytes: 64 << 30, gpus },
        allocated: Resources::default(),
        free_gpus: (0..gpus).collect(),
    }
}

fn job(id: &str, tasks: u32, cpus: u64, gpus: u32) -> QueuedWorkload {
    QueuedWorkload {
        id: id.to_owned(),
        tenant: "t".to_owned(),
        priority: 0,
        submitted_at_ms: 0,
        tasks,
        per_task: Resources { cpus_milli: cpus * 1000, memory_bytes: 1 << 30, gpus },
    }
}

/// Renders a plan as one line per workload: `id: node[gpus] node[gpus]` or `id: waits (reason)`.
fn check(snapshot: Snapshot, expected: &str) {
    let plan = plan(&snapshot);
    let mut lines: Vec<String> = plan
        .placements
        .iter()
        .map(|p| {
            let tasks: Vec<String> =
                p.tasks.iter().map(|t| format!("{}{:?}", t.node, t.gpus)).collect();
            format!("{}: {}", p.workload, tasks.join(" "))
        })
        .collect();
    lines.extend(plan.waiting.iter().map(|w| format!("{}: waits ({})", w.workload, w.reason)));
    assert_eq!(lines.join("\n"), expected.trim());
}

#[test]
fn gang_is_all_or_nothing() {
    check(
        Snapshot {
            nodes: vec![node("a", 8, 8), node("b", 8, 8)],
            queue: vec![job("big", 3, 1, 8), job("small", 2, 1, 4)],
        },
        "small: a[0, 1, 2, 3] b[0, 1, 2, 3]\nbig: waits (needs 3 nodes; the fleet has 2 schedulable)",
    );
}

#[test]
fn best_fit_prefers_the_fuller_node() {
    let mut busy = node("a", 8, 8);
    busy.allocated = Resources { cpus_milli: 1000, memory_bytes: 0, gpus: 6 };
    busy.free_gpus = vec![6, 7];
    check(
        Snapshot { nodes: vec![busy, node("b", 8, 8)], queue: vec![job("j", 1, 1, 2)] },
        "j: a[6, 7]",
    );
}

#[test]
fn reason_names_the_missing_gpus() {
    check(
        Snapshot { nodes: vec![node("cpu-only", 4, 0)], queue: vec![job("j", 1, 1, 8)] },
        "j: waits (needs 8 GPUs; the largest node has 0 free (0 in all))",
    );
}

#[test]
fn priority_then_submission_order() {
    let mut late_urgent = job("urgent", 1, 4, 0);
    late_urgent.priority = 10;
    late_urgent.submitted_at_ms = 5;
    let early = job("early", 1, 4, 0);
    check(
        Snapshot { nodes: vec![node("a", 4, 0)], queue: vec![early, late_urgent] },
        "urgent: a[]\nearly: waits (needs 4 CPUs; the largest node has 0 free)",
    );
}

#[test]
fn unschedulable_nodes_take_nothing() {
    let mut drained = node("a", 4, 0);
    drained.schedulable = false;
    check(
        Snapshot { nodes: vec![drained], queue: vec![job("j", 1, 1, 0)] },
        "j: waits (no schedulable node in the fleet)",
    );
}

fn arbitrary_snapshot() -> impl Strategy<Value = Snapshot> {
    let nodes = prop::collection::vec((1u64..16, 0u32..9), 1..6);
    let queue = prop::collection::vec((1u32..4, 0u64..8, 0u32..9, -2i32..3), 0..12);
    (nodes, queue).prop_map(|(nodes, queue)| Snapshot {
        nodes: nodes
            .into_iter()
            .enumerate()
            .map(|(i, (cpus, gpus))| node(&format!("n{i}"), cpus, gpus))
            .collect(),
        queue: queue
            .into_iter()
            .enumerate()
            .map(|(i, (tasks, cpus, gpus, priority))| QueuedWorkload {
                priority,
                ..job(&format!("j{i}"), tasks, cpus, gpus)
            })
            .collect(),
    })
}

proptest! {
    #[test]
    fn plans_are_sound(snapshot in arbitrary_snapshot()) {
        let result = plan(&snapshot);
        // Every queued workload is either placed or waiting, once.
        prop_assert_eq!(result.placements.len() + result.waiting.len(), snapshot.queue.len());
        // Gangs are whole, on distinct nodes, and no node is over-committed.
        let mut used: std::collections::HashMap<&str, Resources> = Default::default();
        let mut gpus_seen = std::collections::HashSet::new();
        for placement in &result.placements {
            let workload = snapshot.queue.iter().find(|w| w.id == placement.workload).unwrap();
            prop_assert_eq!(placement.tasks.len() as u32, workload.tasks);
            let distinct: std::collections::HashSet<_> = placement.tasks.iter().map(|t| &t.node).collect();
            prop_assert_eq!(distinct.len(), placement.tasks.len());
            for task in &placement.tasks {
                prop_assert_eq!(task.gpus.len() as u32, workload.per_task.gpus);
                for gpu in &task.gpus {
                    prop_assert!(gpus_seen.insert((task.node.clone(), *gpu)), "GPU given twice");
                }
                let total = used.entry(task.node.as_str()).or_default();
                *total = total.saturating_add(&workload.per_task);
            }
        }
        for node in &snapshot.nodes {
            if let Some(total) = used.get(node.id.as_str()) {
                prop_assert!(total.fits_in(&node.capacity));
            }
        }
        // Deterministic.
        prop_assert_eq!(plan(&snapshot), result);
    }
}
