//! Work that shares GPUs: it fills partly used GPUs before breaking whole ones, never takes
//! more of a GPU than is left, and never a GPU that a whole-GPU task holds.

use super::plan;
use super::tests::{job, node};
use crate::snapshot::{NodeState, QueuedWorkload, Snapshot};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn sharing(id: &str, milli: u32) -> QueuedWorkload {
    QueuedWorkload {
        gpu_share_milli: milli,
        ..job(id, 1, 1, 0)
    }
}

/// `node` whose GPU 0 is already 700 milli-GPUs used by shared tasks.
fn partly_shared() -> NodeState {
    let mut n1 = node("n1", 8, 2);
    n1.free_gpus = vec![1];
    n1.shared_gpus = BTreeMap::from([(0, 700)]);
    n1
}

fn placed(snapshot: &Snapshot) -> Vec<(String, String, Vec<u32>, Option<u32>)> {
    plan(snapshot)
        .placements
        .into_iter()
        .flat_map(|p| {
            p.tasks
                .into_iter()
                .map(move |t| (p.workload.clone(), t.node, t.gpus, t.share_milli))
        })
        .collect()
}

#[test]
fn a_share_fills_a_partly_used_gpu_before_breaking_a_whole_one() {
    let snapshot = Snapshot {
        nodes: vec![partly_shared()],
        queue: vec![
            sharing("small", 300),
            QueuedWorkload {
                submitted_at_ms: 1,
                ..sharing("big", 400)
            },
        ],
        ..Default::default()
    };
    let n = |s: &str| s.to_owned();
    assert_eq!(
        placed(&snapshot),
        [
            (n("small"), n("n1"), vec![0], Some(300)),
            (n("big"), n("n1"), vec![1], Some(400)),
        ]
    );
}

#[test]
fn whole_gpu_work_goes_first_and_shares_take_what_it_leaves() {
    let snapshot = Snapshot {
        nodes: vec![partly_shared()],
        queue: vec![
            sharing("share", 500),
            QueuedWorkload {
                submitted_at_ms: 1,
                ..job("whole", 1, 1, 1)
            },
        ],
        ..Default::default()
    };
    let n = |s: &str| s.to_owned();
    assert_eq!(placed(&snapshot), [(n("whole"), n("n1"), vec![1], None)]);
    let waiting = plan(&snapshot).waiting;
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        waiting[0].reason,
        "needs 500 milli-GPUs of one GPU with 1 CPUs and 1Gi of memory; no node has that free"
    );
}

fn arbitrary_sharing_snapshot() -> impl Strategy<Value = Snapshot> {
    let nodes = prop::collection::vec(
        (1u32..5, prop::collection::vec(0u32..4, 0..4), 1u64..16),
        1..5,
    );
    let queue = prop::collection::vec((0u32..1100, 1u32..3, 0u32..3, 1u64..4), 0..12);
    (nodes, queue).prop_map(|(nodes, queue)| {
        let mut states = Vec::new();
        for (i, (gpus, used, cpus)) in nodes.into_iter().enumerate() {
            let mut state = node(&format!("n{i}"), cpus, gpus);
            // Some GPUs partly shared (by 250 milli-GPUs per mark), one held whole.
            for g in used {
                if g < gpus {
                    state.free_gpus.retain(|&f| f != g);
                    *state.shared_gpus.entry(g).or_default() += 250;
                }
            }
            if let Some(&g) = state.free_gpus.last() {
                if gpus > 2 {
                    state.free_gpus.retain(|&f| f != g);
                    state.allocated.gpus += 1;
                }
            }
            states.push(state);
        }
        let queue = queue
            .into_iter()
            .enumerate()
            .map(|(i, (milli, tasks, gpus, cpus))| QueuedWorkload {
                gpu_share_milli: if milli < 1000 { milli } else { 0 },
                submitted_at_ms: i as i64,
                ..job(
                    &format!("j{i}"),
                    tasks,
                    cpus,
                    gpus.max(u32::from(milli >= 1000)),
                )
            })
            .collect();
        Snapshot {
            nodes: states,
            queue,
            ..Default::default()
        }
    })
}

proptest! {
    #[test]
    fn shares_never_overcommit_a_gpu(snapshot in arbitrary_sharing_snapshot()) {
        let result = plan(&snapshot);
        prop_assert_eq!(result.placements.len() + result.waiting.len(), snapshot.queue.len());
        for state in &snapshot.nodes {
            let tasks: Vec<_> = result.placements.iter().flat_map(|p| &p.tasks).filter(|t| t.node == state.id).collect();
            for g in 0..state.capacity.gpus {
                let whole = tasks.iter().filter(|t| t.share_milli.is_none() && t.gpus.contains(&g)).count();
                let shares: u32 = tasks.iter().filter(|t| t.gpus.contains(&g)).filter_map(|t| t.share_milli).sum();
                let free_before = state.free_gpus.contains(&g);
                let used_before = state.shared_gpus.get(&g).copied();
                if whole > 0 {
                    prop_assert!(free_before && whole == 1 && shares == 0, "GPU {} of {} given whole twice or shared", g, state.id);
                }
                if shares > 0 {
                    prop_assert!(free_before || used_before.is_some(), "GPU {} of {} held whole, yet shared", g, state.id);
                    prop_assert!(used_before.unwrap_or(0) + shares <= 1000, "GPU {} of {} over 1000", g, state.id);
                }
            }
        }
        prop_assert_eq!(plan(&snapshot), result);
    }
}
