//! Gangs across nodes: a second agent joins with a token; a 2-node job gets torchrun's
//! variables on each rank; a gang larger than the fleet waits; one failing rank stops the rest.

use crate::platform::{BIN, Platform, eventually, finished, json};
use lutece_api::{JobSpec, ResourceRequest};
use std::process::{Command, Stdio};
use std::time::Duration;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gangs_span_nodes_all_or_nothing() {
    let platform = Platform::start(
        "gang",
        &["--fake-gpus", "8", "--rack", "r1", "--node-name", "n1"],
    );
    let admin = platform.admin();
    let token = json(&platform.cli(&["nodes", "join-token", "-o", "json"]))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent_dir = platform.data_dir.with_file_name("agent2");
    let log = std::fs::File::create(platform.data_dir.with_file_name("agent2.log")).unwrap();
    let _agent = KillOnDrop(
        Command::new(BIN)
            .args([
                "agent",
                "--join",
                &platform.url,
                "--token",
                &token,
                "--fake-gpus",
                "8",
                "--rack",
                "r1",
                "--node-name",
                "n2",
                "--data-dir",
            ])
            .arg(&agent_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let nodes = eventually("two nodes", Duration::from_secs(20), || async {
        let nodes = admin.list_nodes().await.ok()?;
        (nodes.len() == 2).then_some(nodes)
    })
    .await;
    assert!(
        nodes
            .iter()
            .all(|n| n.fake_gpus && n.gpus.len() == 8 && n.gpus.iter().all(|g| g.fake)),
        "fake GPUs are marked"
    );
    let table = String::from_utf8_lossy(&platform.cli(&["nodes", "list"]).stdout).into_owned();
    assert!(table.contains("FAKE"), "{table}");

    let env = "echo $RANK $WORLD_SIZE $LOCAL_RANK $MASTER_ADDR $MASTER_PORT $CUDA_VISIBLE_DEVICES";
    let spec = JobSpec {
        command: vec!["sh".into(), "-c".into(), env.into()],
        nodes: Some(2),
        resources: ResourceRequest {
            gpus_per_node: Some(4),
            ..Default::default()
        },
        ..Default::default()
    };
    let job = admin.submit_job(&spec).await.unwrap();
    let done = finished(&admin, &job.id).await;
    assert_eq!(done.state, "succeeded", "{done:?}");
    let placed: std::collections::BTreeSet<&str> =
        done.tasks.iter().map(|t| t.node.as_str()).collect();
    assert_eq!(placed.len(), 2, "one task per node");
    let mut masters = Vec::new();
    for rank in 0..2u32 {
        let text = String::from_utf8_lossy(
            &platform
                .cli(&["jobs", "logs", &job.id, "--rank", &rank.to_string()])
                .stdout,
        )
        .into_owned();
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields.len(), 6, "{text:?}");
        assert_eq!(&fields[..3], &[rank.to_string().as_str(), "2", "0"]);
        assert_eq!(fields[5].split(',').count(), 4, "four GPUs pinned: {text}");
        masters.push((fields[3].to_owned(), fields[4].to_owned()));
    }
    assert_eq!(
        masters[0], masters[1],
        "both ranks meet at the same MASTER_ADDR:MASTER_PORT"
    );

    // More nodes than the fleet has: queued, with the reason.
    let too_big = JobSpec {
        nodes: Some(3),
        ..spec.clone()
    };
    let waiting = admin.submit_job(&too_big).await.unwrap();
    let reason = eventually("a reason", Duration::from_secs(10), || async {
        admin.job(&waiting.id).await.ok()?.reason
    })
    .await;
    assert_eq!(reason, "needs 3 nodes; the fleet has 2 schedulable");
    admin.cancel_job(&waiting.id).await.unwrap();

    // Rank 1 fails: rank 0 is stopped and the job fails with rank 1's code.
    let failing = JobSpec {
        command: vec![
            "sh".into(),
            "-c".into(),
            "if [ \"$RANK\" = 1 ]; then exit 7; fi; sleep 120".into(),
        ],
        ..spec
    };
    let job = admin.submit_job(&failing).await.unwrap();
    let done = finished(&admin, &job.id).await;
    assert_eq!(
        (done.state.as_str(), done.exit_code),
        ("failed", Some(7)),
        "{done:?}"
    );
    assert_eq!(done.reason.as_deref(), Some("rank 1 exited with code 7"));
    // Rank 0 was stopped by the platform, not left to sleep or to fail on its own.
    let rank0 = eventually("rank 0 stopped", Duration::from_secs(20), || async {
        let task = admin.job(&job.id).await.ok()?.tasks.into_iter().next()?;
        (task.state != "running" && task.state != "assigned").then_some(task)
    })
    .await;
    assert_eq!(rank0.state, "cancelled", "{rank0:?}");
}
