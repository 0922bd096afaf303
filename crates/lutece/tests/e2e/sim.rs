//! `lutece sim` as scripts call it: the reference FIFO replay of Philly at ×8 through the binary
//! matches the published reference row, and the JSON has the documented keys.

use crate::platform::BIN;
use std::path::PathBuf;
use std::process::Command;

fn traces() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces")
}

#[test]
fn sim_reproduces_the_reference_fifo_row_through_the_cli() {
    let dir = traces();
    let reference = std::fs::read_to_string(dir.join("philly/replay_fifo_sjf_compressed.csv"))
        .expect("reference results in ../shared/traces");
    let row: Vec<f64> = reference
        .lines()
        .find(|l| l.starts_with("8,fifo,"))
        .expect("the ×8 FIFO row")
        .split(',')
        .filter_map(|f| f.parse().ok())
        .collect();
    let output = Command::new(BIN)
        .current_dir(&dir)
        .args([
            "sim",
            "--trace",
            "philly:philly/philly_oct_nov_2017_11vcs.csv",
            "--fleet",
            "philly-vcs:philly/philly_vc_nodes_8gpu.csv",
        ])
        .args(["--policy", "fifo", "--compress", "8", "--output", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for key in [
        "jobs",
        "avg_jct_s",
        "p99_jct_s",
        "avg_queue_s",
        "p99_queue_s",
        "utilization",
        "decision_p50_us",
        "decision_p99_us",
    ] {
        assert!(report[key].is_number(), "{key} missing from {report}");
    }
    // compress, policy, jobs, avg_jct_s, avg_queue_s, p99_queue_s (the reference rounds to the second)
    assert_eq!(report["jobs"].as_f64().unwrap(), row[1]);
    assert_eq!(report["avg_jct_s"].as_f64().unwrap().round(), row[2]);
    assert_eq!(report["avg_queue_s"].as_f64().unwrap().round(), row[3]);
    assert_eq!(report["p99_queue_s"].as_f64().unwrap().round(), row[4]);
}
