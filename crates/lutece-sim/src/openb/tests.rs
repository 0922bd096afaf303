//! The allocation experiment on a tiny cluster, and its determinism.

use super::{OpenbPolicy, Order, allocate};
use crate::trace::{OpenbNode, OpenbPod};

fn node(gpus: u32) -> OpenbNode {
    OpenbNode {
        name: "n".into(),
        cpu_milli: 64_000,
        memory_mib: 1 << 20,
        gpus,
        model: None,
    }
}

fn pod(num_gpu: u32, gpu_milli: u32) -> OpenbPod {
    OpenbPod {
        name: "p".into(),
        cpu_milli: 1000,
        memory_mib: 1024,
        num_gpu,
        gpu_milli,
        gpu_spec: vec![],
    }
}

#[test]
fn arrivals_stop_at_the_requested_share() {
    // Two 1-GPU nodes; pods of 0.6 GPU: only one fits per GPU, so at most 1.2 of 2 GPUs.
    let result = allocate(
        &[node(1), node(1)],
        &[pod(1, 600)],
        OpenbPolicy::BestFit,
        7,
        Order::Trace,
        100,
        &mut || 0,
    );
    assert_eq!((result.jobs, result.placed, result.failed), (3, 2, 1));
    assert!((result.allocation_ratio - 60.0).abs() < 1e-9);
    assert!((result.arrived_pct - 90.0).abs() < 1e-9);
}

#[test]
fn the_same_seed_gives_the_same_result() {
    let nodes = [node(2), node(4), node(8)];
    let pods = [pod(1, 300), pod(2, 1000), pod(1, 1000), pod(1, 700)];
    for policy in [
        OpenbPolicy::Random,
        OpenbPolicy::BestFit,
        OpenbPolicy::Fgd,
        OpenbPolicy::Default,
    ] {
        for order in [Order::Trace, Order::Shuffled] {
            let a = allocate(&nodes, &pods, policy, 3, order, 100, &mut || 0);
            assert_eq!(a, allocate(&nodes, &pods, policy, 3, order, 100, &mut || 0));
            assert!(a.allocation_ratio <= 100.0);
        }
    }
}

#[test]
fn on_openb_default_lutece_allocates_more_than_fgd() {
    // One seed of the FGD experiment at 100% arrived, in both orders: the published order is
    // Random < BestFit < FGD, and lutece's default must come out ahead of FGD.
    let (nodes, pods) = crate::testdata::openb("openb_pod_list_default.csv");
    for order in [Order::Trace, Order::Shuffled] {
        let ratio =
            |policy| allocate(&nodes, &pods, policy, 1, order, 100, &mut || 0).allocation_ratio;
        let ratios = [
            ratio(OpenbPolicy::Random),
            ratio(OpenbPolicy::BestFit),
            ratio(OpenbPolicy::Fgd),
            ratio(OpenbPolicy::Default),
        ];
        assert!(
            ratios.is_sorted_by(|a, b| a < b),
            "{order:?}: random, bestfit, fgd, default = {ratios:?}"
        );
    }
}
