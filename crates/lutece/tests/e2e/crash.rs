//! Crash safety: 200 concurrent submissions, the platform killed with SIGKILL in the middle,
//! then restarted. Every acknowledged job must exist afterwards and none may run twice.

use crate::platform::{Platform, eventually};
use lutece_api::{JobSpec, Quantity, ResourceRequest};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

const SUBMISSIONS: usize = 200;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_no_acknowledged_job_and_runs_none_twice() {
    let mut platform = Platform::start("crash", &[]);
    let ran = platform.data_dir.with_file_name("ran.txt");
    // Each job appends its id to one file: a job that ran twice appears twice.
    let script = format!("echo \"$LUTECE_JOB_ID\" >> {}; sleep 0.3", ran.display());
    let spec = JobSpec {
        command: vec!["sh".into(), "-c".into(), script],
        resources: ResourceRequest {
            cpus: Some(Quantity("100m".into())),
            memory: Some(Quantity("16Mi".into())),
            gpus_per_node: None,
        },
        ..Default::default()
    };

    let admin = platform.admin();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let halfway = Arc::new(Notify::new());
    let mut submissions = Vec::new();
    for _ in 0..SUBMISSIONS {
        let (client, spec, acknowledged, halfway) = (
            admin.clone(),
            spec.clone(),
            acknowledged.clone(),
            halfway.clone(),
        );
        submissions.push(tokio::spawn(async move {
            let result = client.submit_job(&spec).await.ok().map(|job| job.id);
            if result.is_some()
                && acknowledged.fetch_add(1, Ordering::SeqCst) + 1 == SUBMISSIONS / 2
            {
                halfway.notify_one();
            }
            result
        }));
    }
    halfway.notified().await;
    platform.kill9();
    let mut acked = Vec::new();
    for submission in submissions {
        acked.extend(submission.await.unwrap());
    }
    assert!(
        acked.len() >= SUBMISSIONS / 2,
        "{} acknowledged",
        acked.len()
    );

    platform.restart();
    let admin = platform.admin();
    let jobs = eventually(
        "every job to end after the restart",
        Duration::from_secs(120),
        || async {
            let jobs = admin.list_jobs(None, 1000).await.ok()?;
            jobs.iter()
                .all(|j| matches!(j.state.as_str(), "succeeded" | "failed" | "cancelled"))
                .then_some(jobs)
        },
    )
    .await;

    let by_id: HashMap<&str, &lutece_api::Job> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !by_id.contains_key(id.as_str()))
        .collect();
    assert!(missing.is_empty(), "acknowledged jobs lost: {missing:?}");

    let log = std::fs::read_to_string(&ran).unwrap_or_default();
    let mut runs: HashMap<&str, usize> = HashMap::new();
    for line in log.lines() {
        *runs.entry(line).or_default() += 1;
    }
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "jobs that ran more than once: {twice:?}");
    let known: HashSet<&str> = by_id.keys().copied().collect();
    assert!(
        runs.keys().all(|id| known.contains(id)),
        "a process ran for a job the store does not have"
    );
    for job in &jobs {
        match job.state.as_str() {
            "succeeded" => assert_eq!(
                runs.get(job.id.as_str()),
                Some(&1),
                "{} succeeded without running once",
                job.id
            ),
            _ => assert!(
                job.reason.is_some(),
                "{} ended {} without a reason",
                job.id,
                job.state
            ),
        }
    }
    let succeeded = jobs.iter().filter(|j| j.state == "succeeded").count();
    eprintln!(
        "{} acknowledged of {SUBMISSIONS}; {} stored; {succeeded} succeeded after the restart",
        acked.len(),
        jobs.len()
    );
}

/// A job running when the platform is killed keeps running, is adopted after the restart, and
/// ends with its whole output and its real exit code.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_job_is_adopted_after_kill_9() {
    let mut platform = Platform::start("adopt", &[]);
    let admin = platform.admin();
    let spec = JobSpec {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo before; sleep 2; echo after; exit 5".into(),
        ],
        ..Default::default()
    };
    let job = admin.submit_job(&spec).await.unwrap();
    eventually("the job to run", Duration::from_secs(10), || async {
        (admin.job(&job.id).await.ok()?.state == "running").then_some(())
    })
    .await;
    platform.kill9();
    platform.restart();
    let admin = platform.admin();
    let done = crate::platform::finished(&admin, &job.id).await;
    assert_eq!(
        (done.state.as_str(), done.exit_code),
        ("failed", Some(5)),
        "{done:?}\n{}",
        platform.log()
    );
    let output =
        String::from_utf8_lossy(&platform.cli(&["jobs", "logs", &job.id]).stdout).into_owned();
    assert_eq!(output, "before\nafter\n");
    assert!(
        platform.log().contains("task adopted after a restart"),
        "{}",
        platform.log()
    );
}
