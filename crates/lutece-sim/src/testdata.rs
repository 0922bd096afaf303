//! Test access to the real traces in `../shared/traces/` (relative to the workspace root),
//! read in place and never copied into the repository.

use crate::trace::{self, OpenbNode, OpenbPod, PhillyJob, VcPool};
use std::path::PathBuf;

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces")
        .join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
}

/// The rows of a small reference CSV, header skipped, fields split.
pub(crate) fn rows(relative: &str) -> Vec<Vec<String>> {
    read(relative)
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

pub(crate) fn philly() -> (Vec<PhillyJob>, Vec<VcPool>) {
    let jobs = trace::read_philly(read("philly/philly_oct_nov_2017_11vcs.csv").as_bytes())
        .expect("the Philly trace parses");
    let pools = trace::read_vc_pools(read("philly/philly_vc_nodes_8gpu.csv").as_bytes())
        .expect("the pools parse");
    (jobs, pools)
}

pub(crate) fn openb(pods: &str) -> (Vec<OpenbNode>, Vec<OpenbPod>) {
    let nodes = trace::read_openb_nodes(read("openb/openb_node_list_gpu_node.csv").as_bytes())
        .expect("the openb nodes parse");
    let pods = trace::read_openb_pods(read(&format!("openb/{pods}")).as_bytes())
        .expect("the openb pods parse");
    (nodes, pods)
}
