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

#[test]
fn sim_reads_a_fleet_file_and_reports_each_tenant() {
    let dir = crate::platform::scratch("sim-fleet");
    std::fs::create_dir_all(&dir).unwrap();
    let fleet = dir.join("campus.fleet");
    // About the size of Philly's own fleet (2,816 GPUs): 2,880 + 32.
    std::fs::write(&fleet, "# racks, then servers\nnvl72 x 40\nhgx8 x 4\n").unwrap();
    let sim = |fleet_file: &std::path::Path| {
        Command::new(BIN)
            .current_dir(traces())
            .args([
                "sim",
                "--trace",
                "philly:philly/philly_oct_nov_2017_11vcs.csv",
            ])
            .arg("--fleet")
            .arg(format!("fleet:{}", fleet_file.display()))
            .args(["--output", "json"])
            .output()
            .unwrap()
    };
    let output = sim(&fleet);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["jobs"], 68_503);
    assert_eq!(report["unfinished"], 0);
    let tenants = report["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 11, "one row per virtual cluster");
    let jobs: u64 = tenants.iter().map(|t| t["jobs"].as_u64().unwrap()).sum();
    assert_eq!(jobs, 68_503);
    assert!(
        tenants
            .iter()
            .all(|t| t["slowdown"].as_f64().unwrap() > 0.0)
    );

    std::fs::write(&fleet, "nvl72 x 2\nnvl36 x 1\n").unwrap();
    let output = sim(&fleet);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("line 2: unknown rack kind `nvl36`: expected nvl72 or hgx8"),
        "{error}"
    );
}
