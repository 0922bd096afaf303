//! The workspace's shape: arrows between crates only point down (DESIGN.md §2), and only the
//! crates that own IO depend on IO libraries.

use std::collections::{BTreeMap, BTreeSet};

/// Each crate of ours, and the crates of ours it may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("lutece-core", &[]),
    ("lutece-api", &["lutece-core"]),
    ("lutece-sched", &["lutece-core"]),
    ("lutece-sim", &["lutece-core", "lutece-sched"]),
    ("lutece-store", &["lutece-core"]),
    ("lutece-agent", &["lutece-core", "lutece-api"]),
    ("lutece-client", &["lutece-core", "lutece-api"]),
    ("lutece-engine", &[]),
    ("lutece-vault", &[]),
    ("lutece-blob", &["lutece-core", "lutece-vault"]),
    ("lutece-gateway", &["lutece-core", "lutece-api"]),
    (
        "lutece-worker",
        &["lutece-api", "lutece-engine", "lutece-gateway"],
    ),
    (
        "lutece-server",
        &[
            "lutece-core",
            "lutece-api",
            "lutece-sched",
            "lutece-store",
            "lutece-gateway",
            "lutece-vault",
            "lutece-blob",
        ],
    ),
];

/// Libraries that do IO, and the crates allowed to use them directly.
const IO_LIBRARIES: &[(&str, &[&str])] = &[
    ("sqlx", &["lutece-store"]),
    ("object_store", &["lutece-blob"]),
    (
        "axum",
        // The binary serves a worker's router (`lutece worker`): it is the composition root.
        &["lutece-server", "lutece-gateway", "lutece-worker", "lutece"],
    ),
    // The control plane downloads models (`lutece models import https://…`).
    (
        "reqwest",
        &["lutece-client", "lutece-gateway", "lutece-server"],
    ),
    ("llama-cpp-2", &["lutece-engine"]),
    ("nvml-wrapper", &["lutece-agent"]),
    (
        "tokio",
        &[
            "lutece-store",
            "lutece-blob",
            "lutece-agent",
            "lutece-server",
            "lutece-client",
            "lutece-engine",
            "lutece-gateway",
            "lutece-worker",
            "lutece",
        ],
    ),
];

#[test]
fn dependencies_point_down() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_owned();
        let normal = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_owned());
        deps.insert(name, normal.collect());
    }
    let mut broken = Vec::new();
    for (name, allowed) in ALLOWED {
        let Some(actual) = deps.get(*name) else {
            continue;
        };
        for dep in actual.iter().filter(|d| d.starts_with("lutece")) {
            if !allowed.contains(&dep.as_str()) {
                broken.push(format!("{name} → {dep}"));
            }
        }
    }
    for (library, allowed) in IO_LIBRARIES {
        for (name, actual) in &deps {
            if actual.contains(*library) && !allowed.contains(&name.as_str()) {
                broken.push(format!("{name} → {library} (only {allowed:?} may)"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "forbidden dependency edges:\n{}",
        broken.join("\n")
    );
    assert!(
        deps.contains_key("lutece-core") && deps.contains_key("lutece-server"),
        "metadata read"
    );
}
