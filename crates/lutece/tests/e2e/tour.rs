//! The README's tour, step by step, through the CLI of the real binary.

use crate::platform::{Platform, eventually, finished, json, stderr, stdout};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn readme_tour() {
    let mut platform = Platform::start("tour", &[]);
    let admin = platform.admin();
    assert_eq!(admin.health().await.unwrap()["status"], "ok");

    // Run a job and read its output.
    let job = json(&platform.cli(&[
        "jobs",
        "run",
        "--cpus",
        "1",
        "--memory",
        "512Mi",
        "--output",
        "json",
        "--",
        "python3",
        "-c",
        "print(42)",
    ]));
    let id = job["id"].as_str().unwrap().to_owned();
    let done = finished(&admin, &id).await;
    assert_eq!(
        (done.state.as_str(), done.exit_code),
        ("succeeded", Some(0)),
        "{}",
        platform.log()
    );
    let got = json(&platform.cli(&["jobs", "get", &id, "--output", "json"]));
    assert_eq!(
        (got["state"].as_str(), got["exit_code"].as_i64()),
        (Some("succeeded"), Some(0))
    );
    for time in ["created_at", "scheduled_at", "started_at", "finished_at"] {
        assert!(got[time].is_string(), "{time} recorded");
    }
    assert_eq!(stdout(&platform.cli(&["jobs", "logs", &id])), "42\n");
    // Reads without follow come in pages that say where the next one starts.
    let first = admin.logs_page(&id, 0, 0, Some(2)).await.unwrap();
    assert_eq!((first.data.as_slice(), first.next_offset), (&b"42"[..], 2));
    let rest = admin.logs_page(&id, 0, 2, None).await.unwrap();
    assert_eq!((rest.data.as_slice(), rest.next_offset), (&b"\n"[..], 3));
    assert!(
        admin
            .logs_page(&id, 0, 3, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert!(admin.logs_page(&id, 0, 0, Some(0)).await.is_err());

    // --wait follows the output and exits with the job's code; stderr is kept too.
    let waited = platform.cli(&[
        "jobs",
        "run",
        "--wait",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(waited.status.code(), Some(3));
    let text = stdout(&waited);
    assert!(text.contains("out\n") && text.contains("err\n"), "{text}");

    // Follow output as it is written.
    let slow = json(&platform.cli(&[
        "jobs",
        "run",
        "-o",
        "json",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
    ]));
    let followed = platform.cli(&["jobs", "logs", "-f", slow["id"].as_str().unwrap()]);
    assert_eq!(stdout(&followed), "1\n2\n3\n");

    // A tenant with its own key runs its own work and sees its usage.
    let tenant = json(&platform.cli(&["tenants", "create", "acme", "--output", "json"]));
    assert_eq!(tenant[0]["name"], "acme");
    let key = json(&platform.cli(&[
        "keys", "create", "--tenant", "acme", "--role", "admin", "--output", "json",
    ]));
    let acme_key = key["key"].as_str().unwrap().to_owned();
    assert_eq!(
        json(&platform.cli_as(&acme_key, &["whoami", "-o", "json"]))["tenant"],
        "acme"
    );
    let acme_job = json(&platform.cli_as(
        &acme_key,
        &[
            "jobs",
            "run",
            "--project",
            "vision",
            "-o",
            "json",
            "--",
            "sleep",
            "0.2",
        ],
    ));
    let acme = platform.client(&acme_key);
    assert_eq!(
        finished(&acme, acme_job["id"].as_str().unwrap())
            .await
            .state,
        "succeeded"
    );
    let usage = json(&platform.cli_as(&acme_key, &["usage", "-o", "json"]));
    let rows = usage.as_array().unwrap();
    assert_eq!(rows.len(), 1, "acme sees only its own usage: {usage}");
    assert_eq!(
        (rows[0]["tenant"].as_str(), rows[0]["project"].as_str()),
        (Some("acme"), Some("vision"))
    );
    assert!(rows[0]["cpu_seconds"].as_f64().unwrap() >= 0.2, "{usage}");

    // More than the fleet has: it waits, and says why.
    let big = json(&platform.cli(&[
        "jobs",
        "run",
        "--gpus-per-node",
        "8",
        "-o",
        "json",
        "--",
        "true",
    ]));
    let big_id = big["id"].as_str().unwrap().to_owned();
    let reason = eventually("a waiting reason", Duration::from_secs(10), || async {
        admin.job(&big_id).await.ok()?.reason
    })
    .await;
    assert_eq!(
        reason,
        "needs 8 GPUs; the largest node has 0 free (0 in all)"
    );
    assert_eq!(admin.job(&big_id).await.unwrap().state, "queued");

    // Cancel stops the whole process group, children included.
    let marker = platform.data_dir.with_file_name("child.pid");
    let script = format!("sleep 300 & echo $! > {}; wait", marker.display());
    let long = json(&platform.cli(&["jobs", "run", "-o", "json", "--", "sh", "-c", &script]));
    let long_id = long["id"].as_str().unwrap().to_owned();
    let child_pid: i32 = eventually(
        "the job's child to start",
        Duration::from_secs(10),
        || async { std::fs::read_to_string(&marker).ok()?.trim().parse().ok() },
    )
    .await;
    let cancelled = platform.cli(&["jobs", "cancel", &long_id]);
    assert!(cancelled.status.success(), "{}", stderr(&cancelled));
    assert_eq!(finished(&admin, &long_id).await.state, "cancelled");
    let pid = nix::unistd::Pid::from_raw(child_pid);
    eventually(
        "the child process to be gone",
        Duration::from_secs(5),
        || async { nix::sys::signal::kill(pid, None).is_err().then_some(()) },
    )
    .await;

    // The API describes itself, and the console is served.
    let (status, openapi) = admin
        .raw(lutece_client::Method::GET, "/api/openapi.json", None)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let openapi: serde_json::Value = serde_json::from_str(&openapi).unwrap();
    assert!(openapi["paths"]["/api/v1/jobs"]["post"].is_object());
    for (path, method) in [
        ("/v1/files", "post"),
        ("/v1/files/{id}/content", "get"),
        ("/api/v1/tenants/{name}/residency", "put"),
        ("/api/v1/audit/export", "get"),
        ("/api/v1/tenants/{name}", "delete"),
    ] {
        assert!(
            openapi["paths"][path][method].is_object(),
            "{method} {path}"
        );
    }
    let (status, page) = admin
        .raw(lutece_client::Method::GET, "/", None)
        .await
        .unwrap();
    assert!(status == 200 && page.contains("lutece console"));

    // A restart on the same data directory keeps everything, keys included.
    platform.stop();
    platform.restart();
    let jobs = json(&platform.cli(&["jobs", "list", "-o", "json"]));
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str())
    );
    assert_eq!(
        json(&platform.cli_as(&acme_key, &["whoami", "-o", "json"]))["tenant"],
        "acme"
    );
    let nodes = json(&platform.cli(&["nodes", "list", "-o", "json"]));
    assert_eq!(
        nodes.as_array().unwrap().len(),
        1,
        "the local node keeps its identity: {nodes}"
    );
}
