//! Properties of one core pass: gangs whole, no GPU given twice, determinism; and the wait for
//! one NVLink domain.

use super::{Node, Policy, Wait, Work, pass};
use proptest::prelude::*;

fn arbitrary() -> impl Strategy<Value = (Vec<Node>, Vec<Work>, bool)> {
    let nodes = prop::collection::vec((1u32..9, 0u32..9, 0u32..3), 1..8);
    let works = prop::collection::vec(
        (
            prop::collection::vec(1u32..9, 1..4),
            0i32..2,
            0i64..50,
            0u64..20_000_000,
        ),
        0..16,
    );
    (nodes, works, any::<bool>()).prop_map(|(nodes, works, las)| {
        let nodes: Vec<Node> = nodes
            .into_iter()
            .map(|(gpus, free, domain)| node(gpus, free.min(gpus), domain))
            .collect();
        let works = works
            .into_iter()
            .enumerate()
            .map(
                |(i, (task_gpus, priority, submitted_at_ms, attained_gpu_ms))| Work {
                    priority,
                    submitted_at_ms,
                    tie: i as u64,
                    task_gpus,
                    task_cpus_milli: 1000,
                    attained_gpu_ms,
                    ..Default::default()
                },
            )
            .collect();
        (nodes, works, las)
    })
}

proptest! {
    #[test]
    fn a_pass_is_sound((nodes, works, las) in arbitrary()) {
        let policy = if las { Policy::las() } else { Policy::default() };
        let mut after = nodes.clone();
        let outcome = pass(&mut after, &works, &policy, 100);
        prop_assert_eq!(outcome.started.len() + outcome.waiting.len(), works.len());
        let mut taken = vec![0u32; nodes.len()];
        for (i, chosen) in &outcome.started {
            let work = &works[*i];
            // Whole gang, one task per distinct node.
            prop_assert_eq!(chosen.len(), work.task_gpus.len());
            let mut distinct = chosen.clone();
            distinct.sort_unstable();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), chosen.len());
            for (&n, &g) in chosen.iter().zip(&work.task_gpus) {
                taken[n as usize] += g;
            }
        }
        // No GPU given twice: never more taken from a node than it had free.
        for (n, node) in nodes.iter().enumerate() {
            prop_assert!(taken[n] <= node.free_gpus);
            prop_assert_eq!(after[n].free_gpus, node.free_gpus - taken[n]);
        }
        let mut again = nodes.clone();
        prop_assert_eq!(pass(&mut again, &works, &policy, 100), outcome);
    }
}

/// A schedulable node of `gpus` GPUs, `free` of them free, in NVLink domain `domain`.
fn node(gpus: u32, free: u32, domain: u32) -> Node {
    Node {
        gpus,
        free_gpus: free,
        free_cpus_milli: 8000,
        free_memory_bytes: 1 << 30,
        domain,
        schedulable: true,
        labels: 0,
        site: None,
        watts_per_gpu: 0,
    }
}

fn four_gpu_nodes(domains: &[u32]) -> Vec<Node> {
    domains.iter().map(|&domain| node(4, 4, domain)).collect()
}

fn gang(tasks: usize) -> Work {
    Work {
        task_gpus: vec![4; tasks],
        task_cpus_milli: 1000,
        ..Default::default()
    }
}

#[test]
fn a_gang_waits_for_one_domain_then_spreads() {
    // Domains 0 and 1 have two nodes each, one of them busy: two free nodes, in two domains.
    let mut nodes = four_gpu_nodes(&[0, 0, 1, 1]);
    nodes[1].free_gpus = 0;
    nodes[3].free_gpus = 0;
    let policy = Policy {
        topology_wait_ms: 60_000,
        ..Policy::default()
    };
    let works = [gang(2)];
    let early = pass(&mut nodes.clone(), &works, &policy, 59_999);
    assert!(early.started.is_empty());
    assert_eq!(early.waiting, vec![(0, Wait::Topology)]);
    let late = pass(&mut nodes.clone(), &works, &policy, 60_000);
    assert_eq!(late.started, vec![(0, vec![0, 2])]);
}

#[test]
fn a_gang_takes_one_domain_when_one_holds_it_and_spans_few_when_none_can() {
    let policy = Policy {
        topology_wait_ms: 60_000,
        ..Policy::default()
    };
    // Node 0 is alone in domain 0; domain 1 holds the whole gang.
    let mut nodes = four_gpu_nodes(&[0, 1, 1]);
    let placed = pass(&mut nodes, &[gang(2)], &policy, 0);
    assert_eq!(placed.started, vec![(0, vec![1, 2])]);
    // Four nodes never fit in a domain of three: no point waiting. The roomiest domains go
    // first, so the gang spans two domains, not the three the lowest indices would give.
    let mut nodes = four_gpu_nodes(&[0, 1, 1, 1, 2, 2]);
    let placed = pass(&mut nodes, &[gang(4)], &policy, 0);
    assert_eq!(placed.started, vec![(0, vec![1, 2, 3, 4])]);
}
