//! Cases of shared-GPU placement.

use super::{Pod, ShareNode, SharePolicy, choose};

fn node(gpus: &[u32]) -> ShareNode {
    ShareNode {
        free_cpus_milli: 64_000,
        free_memory_bytes: 1 << 40,
        gpu_free_milli: gpus.to_vec(),
        model: None,
    }
}

fn shared(milli: u32) -> Pod {
    Pod {
        cpus_milli: 1000,
        memory_bytes: 1 << 30,
        gpus: 1,
        gpu_milli: milli,
        models: 0,
    }
}

fn whole(gpus: u32) -> Pod {
    Pod {
        cpus_milli: 1000,
        memory_bytes: 1 << 30,
        gpus,
        gpu_milli: 1000,
        models: 0,
    }
}

fn place(nodes: &[ShareNode], pod: Pod, policy: SharePolicy) -> Option<(usize, Vec<u32>)> {
    choose(nodes, &pod, &policy, &mut |_| 0).map(|p| (p.node, p.gpus))
}

#[test]
fn best_fit_fills_the_partly_used_gpu() {
    let nodes = [node(&[1000, 1000]), node(&[1000, 600])];
    assert_eq!(
        place(&nodes, shared(500), SharePolicy::BestFit),
        Some((1, vec![1]))
    );
    assert_eq!(
        place(&nodes, whole(2), SharePolicy::BestFit),
        Some((0, vec![0, 1]))
    );
    assert_eq!(place(&nodes, whole(3), SharePolicy::BestFit), None);
}

#[test]
fn default_keeps_whole_gpus_for_whole_gpu_pods() {
    // Putting the 300 share on node 0 would break its only whole GPU, which the typical 1-GPU
    // pods need; node 1's 400 leftover is useless to them either way.
    let nodes = [node(&[1000]), node(&[400, 0])];
    let policy = SharePolicy::Default {
        typical: vec![(whole(1), 3), (shared(300), 1)],
    };
    assert_eq!(place(&nodes, shared(300), policy), Some((1, vec![0])));
}

#[test]
fn models_and_cpus_are_hard_constraints() {
    let mut v100 = node(&[1000]);
    v100.model = Some(1);
    let mut small = node(&[1000]);
    small.free_cpus_milli = 500;
    let pod = Pod {
        models: 1 << 2,
        ..whole(1)
    };
    assert_eq!(
        place(&[v100.clone(), small.clone()], pod, SharePolicy::BestFit),
        None
    );
    assert_eq!(
        place(&[v100, small], whole(1), SharePolicy::BestFit),
        Some((0, vec![0]))
    );
}

#[test]
fn default_keeps_cpus_where_they_let_gpus_be_used() {
    // A CPU-only pod fits on both nodes, and afterwards one typical shared pod still fits on
    // either, so FGD sees no difference and packs on the first. Node 0 has CPUs for only three
    // typical pods on four halves of GPUs: taking two of them strands GPU capacity there.
    let mut tight = node(&[1000, 1000]);
    tight.free_cpus_milli = 3000;
    let roomy = node(&[1000, 1000]);
    let cpu_only = Pod {
        cpus_milli: 2000,
        memory_bytes: 1 << 30,
        gpus: 0,
        gpu_milli: 0,
        models: 0,
    };
    let typical = vec![(shared(500), 1)];
    let nodes = [tight, roomy];
    assert_eq!(
        place(
            &nodes,
            cpu_only,
            SharePolicy::Fgd {
                typical: typical.clone()
            }
        ),
        Some((0, vec![]))
    );
    assert_eq!(
        place(&nodes, cpu_only, SharePolicy::Default { typical }),
        Some((1, vec![]))
    );
}
