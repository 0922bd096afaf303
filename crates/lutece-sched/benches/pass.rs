//! One full scheduling pass at the seed platform's scale: 250 NVL72 racks (18,000 GPUs on 4,500
//! nodes), half of them busy, and 10,000 queued workloads of mixed shapes.

use criterion::{Criterion, criterion_group, criterion_main};
use lutece_core::Resources;
use lutece_sched::{NodeState, Policy, QueuedWorkload, Snapshot, plan};
use std::hint::black_box;

const RACKS: u32 = 250;
const NODES_PER_RACK: u32 = 18;
const GPUS_PER_NODE: u32 = 4;
const QUEUED: u32 = 10_000;

/// A deterministic fleet and queue: every other node half busy, jobs of 1–4 GPUs and gangs of
/// 2–18 nodes, submitted over an hour.
fn snapshot(policy: Option<Policy>) -> Snapshot {
    let mut nodes = Vec::new();
    for rack in 0..RACKS {
        for n in 0..NODES_PER_RACK {
            let busy: u32 = if (rack + n) % 2 == 0 { 2 } else { 0 };
            nodes.push(NodeState {
                id: format!("r{rack:03}-n{n:02}"),
                rack: Some(format!("r{rack:03}")),
                schedulable: true,
                capacity: Resources {
                    cpus_milli: 144_000,
                    memory_bytes: 480 << 30,
                    gpus: GPUS_PER_NODE,
                },
                allocated: Resources {
                    cpus_milli: u64::from(busy) * 8000,
                    memory_bytes: u64::from(busy) << 34,
                    gpus: busy,
                },
                free_gpus: (busy..GPUS_PER_NODE).collect(),
                shared_gpus: Default::default(),
            });
        }
    }
    let mut state: u64 = 42;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u32
    };
    let queue = (0..QUEUED)
        .map(|i| {
            let (tasks, gpus) = match next() % 10 {
                0..=5 => (1, 1 + next() % 4),
                6..=8 => (2 + next() % 4, 4),
                _ => (6 + next() % 13, 4),
            };
            QueuedWorkload {
                id: format!("job-{i:05}"),
                tenant: format!("t{}", next() % 20),
                priority: (next() % 3) as i32,
                submitted_at_ms: i64::from(next() % 3_600_000),
                tasks,
                per_task: Resources {
                    cpus_milli: u64::from(gpus) * 8000,
                    memory_bytes: u64::from(gpus) << 34,
                    gpus,
                },
                attained_gpu_ms: u64::from(next() % 4) * 3_600_000,
                ..Default::default()
            }
        })
        .collect();
    Snapshot {
        nodes,
        queue,
        now_ms: 3_600_000,
        policy,
        ..Default::default()
    }
}

fn full_pass(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan 18k GPUs 10k queued");
    group.sample_size(20);
    for (name, policy) in [("fifo", None), ("las", Some(Policy::las()))] {
        let input = snapshot(policy);
        let result = plan(&input);
        assert_eq!(
            result.placements.len() + result.waiting.len(),
            QUEUED as usize
        );
        eprintln!(
            "{name}: {} placed, {} waiting, {} preempted",
            result.placements.len(),
            result.waiting.len(),
            result.preemptions.len()
        );
        group.bench_function(name, |b| b.iter(|| plan(black_box(&input))));
    }
    group.finish();
}

criterion_group!(benches, full_pass);
criterion_main!(benches);
