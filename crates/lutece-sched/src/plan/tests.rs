//! Scheduler cases written as a tiny fleet and a queue, with the plan they must give.

use super::plan;
use crate::engine::Policy;
use crate::snapshot::{NodeState, QueuedWorkload, RunningWorkload, Snapshot, TaskPlacement};
use lutece_core::Resources;
use proptest::prelude::*;

pub(super) fn node(id: &str, cpus: u64, gpus: u32) -> NodeState {
    NodeState {
        id: id.to_owned(),
        rack: None,
        schedulable: true,
        capacity: Resources {
            cpus_milli: cpus * 1000,
            memory_bytes: 64 << 30,
            gpus,
        },
        allocated: Resources::default(),
        free_gpus: (0..gpus).collect(),
        shared_gpus: Default::default(),
    }
}

pub(super) fn job(id: &str, tasks: u32, cpus: u64, gpus: u32) -> QueuedWorkload {
    QueuedWorkload {
        id: id.to_owned(),
        tenant: "t".to_owned(),
        priority: 0,
        submitted_at_ms: 0,
        tasks,
        per_task: Resources {
            cpus_milli: cpus * 1000,
            memory_bytes: 1 << 30,
            gpus,
        },
        ..Default::default()
    }
}

fn in_rack(id: &str, rack: &str, gpus: u32) -> NodeState {
    NodeState {
        rack: Some(rack.to_owned()),
        ..node(id, 8, gpus)
    }
}

/// Renders a plan as one line per workload: `id: node[gpus] node[gpus]` or `id: waits (reason)`.
pub(super) fn check(snapshot: Snapshot, expected: &str) {
    let plan = plan(&snapshot);
    let mut lines: Vec<String> = plan
        .placements
        .iter()
        .map(|p| {
            let tasks: Vec<String> = p
                .tasks
                .iter()
                .map(|t| format!("{}{:?}", t.node, t.gpus))
                .collect();
            format!("{}: {}", p.workload, tasks.join(" "))
        })
        .collect();
    lines.extend(
        plan.waiting
            .iter()
            .map(|w| format!("{}: waits ({})", w.workload, w.reason)),
    );
    lines.extend(
        plan.preemptions
            .iter()
            .map(|p| format!("{}: preempted ({})", p.workload, p.reason)),
    );
    lines.extend(plan.reservations.iter().map(|r| {
        format!(
            "{}: reserved at {} on {}",
            r.workload,
            r.at_ms,
            r.nodes.join(" ")
        )
    }));
    assert_eq!(lines.join("\n"), expected.trim());
}

#[test]
fn gang_is_all_or_nothing() {
    check(
        Snapshot {
            nodes: vec![node("a", 8, 8), node("b", 8, 8)],
            queue: vec![job("big", 3, 1, 8), job("small", 2, 1, 4)],
            ..Default::default()
        },
        "small: a[0, 1, 2, 3] b[0, 1, 2, 3]\nbig: waits (needs 3 nodes; the fleet has 2 schedulable)",
    );
}

#[test]
fn best_fit_prefers_the_fuller_node() {
    let mut busy = node("a", 8, 8);
    busy.allocated = Resources {
        cpus_milli: 1000,
        memory_bytes: 0,
        gpus: 6,
    };
    busy.free_gpus = vec![6, 7];
    check(
        Snapshot {
            nodes: vec![busy, node("b", 8, 8)],
            queue: vec![job("j", 1, 1, 2)],
            ..Default::default()
        },
        "j: a[6, 7]",
    );
}

#[test]
fn reason_names_the_missing_gpus() {
    check(
        Snapshot {
            nodes: vec![node("cpu-only", 4, 0)],
            queue: vec![job("j", 1, 1, 8)],
            ..Default::default()
        },
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
        Snapshot {
            nodes: vec![node("a", 4, 0)],
            queue: vec![early, late_urgent],
            ..Default::default()
        },
        "urgent: a[]\nearly: waits (needs 4 CPUs; the largest node has 0 free)",
    );
}

#[test]
fn unschedulable_nodes_take_nothing() {
    let mut drained = node("a", 4, 0);
    drained.schedulable = false;
    check(
        Snapshot {
            nodes: vec![drained],
            queue: vec![job("j", 1, 1, 0)],
            ..Default::default()
        },
        "j: waits (no schedulable node in the fleet)",
    );
}

#[test]
fn a_gang_stays_inside_one_rack_when_one_holds_it() {
    let mut busy = in_rack("a1", "a", 4);
    busy.allocated.gpus = 3;
    busy.free_gpus = vec![3];
    check(
        Snapshot {
            nodes: vec![
                busy,
                in_rack("a2", "a", 4),
                in_rack("b1", "b", 4),
                in_rack("b2", "b", 4),
            ],
            queue: vec![job("small", 1, 1, 1), job("gang", 2, 1, 4)],
            ..Default::default()
        },
        "gang: b1[0, 1, 2, 3] b2[0, 1, 2, 3]\nsmall: a1[3]",
    );
}

#[test]
fn las_preempts_long_running_work_for_fresh_work() {
    let mut full = node("a", 8, 4);
    full.allocated = Resources {
        cpus_milli: 1000,
        memory_bytes: 1 << 30,
        gpus: 4,
    };
    full.free_gpus = vec![];
    let old = RunningWorkload {
        id: "old".to_owned(),
        submitted_at_ms: 0,
        tasks: vec![TaskPlacement {
            node: "a".to_owned(),
            gpus: vec![0, 1, 2, 3],
            share_milli: None,
        }],
        per_task: Resources {
            cpus_milli: 1000,
            memory_bytes: 1 << 30,
            gpus: 4,
        },
        attained_gpu_ms: 4 * 3_600_000,
        preemptible: true,
        ..Default::default()
    };
    let fresh = QueuedWorkload {
        submitted_at_ms: 10,
        ..job("fresh", 1, 1, 2)
    };
    check(
        Snapshot {
            nodes: vec![full.clone()],
            queue: vec![fresh.clone()],
            running: vec![old.clone()],
            now_ms: 20,
            policy: Some(Policy::las()),
            ..Default::default()
        },
        "fresh: a[0, 1]\nold: preempted (preempted for better-ranked queued work)",
    );
    // Under the default policy nothing is preempted, and the reason says who holds the GPUs.
    check(
        Snapshot {
            nodes: vec![full],
            queue: vec![fresh],
            running: vec![old],
            ..Default::default()
        },
        "fresh: waits (needs 2 GPUs; the largest node has 0 free (4 in all))",
    );
}

#[test]
fn a_starving_job_is_promoted_back_to_the_top_level() {
    // "long" ran an hour on 1 GPU, then waited 17 hours: with starve factor 16 it ranks at
    // level 0 again and, submitted first, goes before the fresh "new"; after 2 hours it does not.
    let long = QueuedWorkload {
        attained_gpu_ms: 3_600_000,
        ..job("long", 1, 1, 1)
    };
    let new = QueuedWorkload {
        submitted_at_ms: 1,
        ..job("new", 1, 1, 1)
    };
    check(
        Snapshot {
            nodes: vec![node("a", 8, 1)],
            queue: vec![new.clone(), long.clone()],
            now_ms: 17 * 3_600_000,
            policy: Some(Policy::las()),
            ..Default::default()
        },
        "long: a[0]\nnew: waits (needs 1 GPUs; the largest node has 0 free (1 in all))",
    );
    check(
        Snapshot {
            nodes: vec![node("a", 8, 1)],
            queue: vec![new, long],
            now_ms: 2 * 3_600_000,
            policy: Some(Policy::las()),
            ..Default::default()
        },
        "new: a[0]\nlong: waits (needs 1 GPUs; the largest node has 0 free (1 in all))",
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
        ..Default::default()
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

/// A fleet where node `i` may run one workload on its first GPUs, and a queue, under LAS.
fn arbitrary_busy_snapshot() -> impl Strategy<Value = Snapshot> {
    let nodes = prop::collection::vec((1u32..9, 0u32..9, 0u64..40, any::<bool>()), 1..6);
    let queue = prop::collection::vec((1u32..3, 1u32..9, 0u64..40), 0..10);
    (nodes, queue).prop_map(|(nodes, queue)| {
        let mut states = Vec::new();
        let mut running = Vec::new();
        for (i, (gpus, busy, hours, preemptible)) in nodes.into_iter().enumerate() {
            let busy = busy.min(gpus);
            let mut state = node(&format!("n{i}"), 64, gpus);
            if busy > 0 {
                let per_task = Resources {
                    cpus_milli: 1000,
                    memory_bytes: 1 << 30,
                    gpus: busy,
                };
                state.allocated = per_task;
                state.free_gpus = (busy..gpus).collect();
                running.push(RunningWorkload {
                    id: format!("r{i}"),
                    tasks: vec![TaskPlacement {
                        node: state.id.clone(),
                        gpus: (0..busy).collect(),
                        share_milli: None,
                    }],
                    per_task,
                    attained_gpu_ms: hours * 3_600_000,
                    preemptible,
                    ..Default::default()
                });
            }
            states.push(state);
        }
        let queue = queue
            .into_iter()
            .enumerate()
            .map(|(i, (tasks, gpus, hours))| QueuedWorkload {
                submitted_at_ms: i as i64,
                attained_gpu_ms: hours * 3_600_000,
                ..job(&format!("q{i}"), tasks, 1, gpus)
            })
            .collect();
        Snapshot {
            nodes: states,
            queue,
            running,
            now_ms: 100,
            policy: Some(Policy::las()),
            ..Default::default()
        }
    })
}

proptest! {
    #[test]
    fn preempting_plans_never_give_a_gpu_twice(snapshot in arbitrary_busy_snapshot()) {
        let result = plan(&snapshot);
        let preempted: std::collections::HashSet<&str> =
            result.preemptions.iter().map(|p| p.workload.as_str()).collect();
        let mut held = std::collections::HashSet::new();
        for r in &snapshot.running {
            prop_assert!(r.preemptible || !preempted.contains(r.id.as_str()), "{} is not preemptible", r.id);
            if !preempted.contains(r.id.as_str()) {
                for t in &r.tasks {
                    held.extend(t.gpus.iter().map(|g| (t.node.clone(), *g)));
                }
            }
        }
        for placement in &result.placements {
            let workload = snapshot.queue.iter().find(|w| w.id == placement.workload);
            let workload = workload.expect("placed work was queued");
            prop_assert_eq!(placement.tasks.len() as u32, workload.tasks);
            for task in &placement.tasks {
                prop_assert_eq!(task.gpus.len() as u32, workload.per_task.gpus);
                for gpu in &task.gpus {
                    prop_assert!(held.insert((task.node.clone(), *gpu)), "GPU {gpu} on {} given twice", task.node);
                }
            }
        }
        prop_assert_eq!(result.placements.len() + result.waiting.len(), snapshot.queue.len());
        prop_assert_eq!(plan(&snapshot), result);
    }
}

/// `(node id, value)` pairs as the snapshot's per-node attribute maps.
fn by_node(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn residency_and_gpu_models_are_hard_constraints() {
    let fr = QueuedWorkload {
        residency: vec!["FR".to_owned()],
        ..job("fr", 1, 1, 1)
    };
    let h100 = QueuedWorkload {
        gpu_models: vec!["H100".to_owned()],
        ..job("h100", 1, 1, 1)
    };
    let both = QueuedWorkload {
        residency: vec!["FR".to_owned(), "DE".to_owned()],
        gpu_models: vec!["H100".to_owned()],
        ..job("both", 2, 1, 1)
    };
    check(
        Snapshot {
            nodes: vec![node("a", 8, 8), node("b", 8, 8), node("c", 8, 8)],
            queue: vec![fr, h100, both],
            jurisdictions: by_node(&[("a", "US"), ("b", "FR")]),
            gpu_models: by_node(&[("a", "H100"), ("b", "A100")]),
            ..Default::default()
        },
        "fr: b[0]\nh100: a[0]\n\
         both: waits (runs only in FR, DE and needs GPU model H100; 0 schedulable nodes qualify, 2 needed)",
    );
}

proptest! {
    #[test]
    fn residency_always_holds(
        places in prop::collection::vec(0usize..3, 1..6),
        wants in prop::collection::vec((prop::collection::vec(0usize..3, 0..3), 1u32..3), 0..8),
    ) {
        const PLACES: [&str; 3] = ["FR", "DE", "US"];
        let nodes: Vec<NodeState> = (0..places.len()).map(|i| node(&format!("n{i}"), 8, 4)).collect();
        let jurisdictions: std::collections::BTreeMap<String, String> =
            places.iter().enumerate().map(|(i, &p)| (format!("n{i}"), PLACES[p].to_owned())).collect();
        let queue: Vec<QueuedWorkload> = wants
            .iter()
            .enumerate()
            .map(|(i, (allowed, tasks))| QueuedWorkload {
                residency: allowed.iter().map(|&p| PLACES[p].to_owned()).collect(),
                ..job(&format!("j{i}"), *tasks, 1, 1)
            })
            .collect();
        let snapshot = Snapshot {
            nodes,
            queue: queue.clone(),
            jurisdictions: jurisdictions.clone(),
            ..Default::default()
        };
        for placement in plan(&snapshot).placements {
            let workload = queue.iter().find(|w| w.id == placement.workload).expect("queued");
            for task in &placement.tasks {
                let place = jurisdictions.get(&task.node).cloned().unwrap_or_default();
                prop_assert!(workload.residency.is_empty() || workload.residency.contains(&place));
            }
        }
    }
}
