//! GPU quotas through the platform: an operator sets them with the CLI; a tenant's jobs start
//! within its guarantee, borrow only from its cohort, and wait with a reason that says so; a
//! raised quota lets the waiting job start.

use crate::platform::{Platform, eventually, stderr, stdout};
use lutece_api::{CreateKey, JobSpec, Quantity, ResourceRequest, Role};
use std::time::Duration;

fn sleeper(gpus: u32) -> JobSpec {
    JobSpec {
        command: vec!["sleep".into(), "120".into()],
        resources: ResourceRequest {
            gpus_per_node: Some(gpus),
            // The node has as many CPUs as this machine: GPUs must be what runs out.
            cpus: Some(Quantity("100m".into())),
            memory: Some(Quantity("16Mi".into())),
        },
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gpu_quotas_hold_and_say_why_jobs_wait() {
    let platform = Platform::start("quota", &["--fake-gpus", "8"]);
    let admin = platform.admin();
    let mut tenants = Vec::new();
    for name in ["lab-a", "lab-b"] {
        admin.create_tenant(name).await.unwrap();
        let key = CreateKey {
            tenant: Some(name.into()),
            name: None,
            role: Some(Role::Admin),
        };
        tenants.push(platform.client(&admin.create_key(&key).await.unwrap().key));
    }
    let (a, b) = (&tenants[0], &tenants[1]);

    let set = platform.cli(&[
        "tenants",
        "gpu-quota",
        "lab-a",
        "--guaranteed-gpus",
        "4",
        "--cohort",
        "lab",
    ]);
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(
        stdout(&set).trim(),
        "lab-a: 4 GPUs guaranteed, may borrow what its cohort leaves idle, cohort lab, \
         fair-share weight 1"
    );
    let set = platform.cli(&[
        "tenants",
        "gpu-quota",
        "lab-b",
        "--guaranteed-gpus",
        "2",
        "--borrow-limit",
        "0",
    ]);
    assert!(set.status.success(), "{}", stderr(&set));
    // Bad input is refused and changes nothing.
    let bad = platform.cli(&["tenants", "gpu-quota", "lab-b", "--weight", "0"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("weight"), "{}", stderr(&bad));
    assert_eq!(a.gpu_quota("lab-a").await.unwrap().guaranteed_gpus, Some(4));

    let waiting_reason = |client: &lutece_client::Client, id: String| {
        let client = client.clone();
        async move {
            eventually("a waiting reason", Duration::from_secs(20), || async {
                let job = client.job(&id).await.ok()?;
                (job.state == "queued").then_some(job.reason).flatten()
            })
            .await
        }
    };
    let running = |client: &lutece_client::Client, id: String| {
        let client = client.clone();
        async move {
            eventually("a running job", Duration::from_secs(20), || async {
                let job = client.job(&id).await.ok()?;
                (job.state == "running").then_some(())
            })
            .await
        }
    };
    // lab-b: its guarantee runs, one more GPU waits.
    let b1 = b.submit_job(&sleeper(2)).await.unwrap();
    running(b, b1.id.clone()).await;
    let b2 = b.submit_job(&sleeper(1)).await.unwrap();
    assert_eq!(
        waiting_reason(b, b2.id.clone()).await,
        "tenant lab-b holds 2 GPUs, has 2 guaranteed and may borrow up to 0 more from its \
         cohort; this needs 1 more"
    );
    // lab-a: its guarantee runs; alone in cohort `lab`, it has nobody to borrow from, though
    // two GPUs are free.
    let a1 = a.submit_job(&sleeper(4)).await.unwrap();
    running(a, a1.id.clone()).await;
    let a2 = a.submit_job(&sleeper(2)).await.unwrap();
    assert_eq!(
        waiting_reason(a, a2.id.clone()).await,
        "tenant lab-a holds 4 GPUs, has 4 guaranteed and may borrow only what its cohort \
         leaves idle; this needs 2 more"
    );
    // lab-b joins cohort `lab` with 4 guaranteed GPUs: its waiting job fits its own guarantee
    // now (2 + 1 of 4); lab-a could borrow only the one guaranteed GPU lab-b leaves idle.
    let set = platform.cli(&[
        "tenants",
        "gpu-quota",
        "lab-b",
        "--guaranteed-gpus",
        "4",
        "--cohort",
        "lab",
    ]);
    assert!(set.status.success(), "{}", stderr(&set));
    running(b, b2.id.clone()).await;
    assert_eq!(a.job(&a2.id).await.unwrap().state, "queued");
    // lab-b's first job ends: two of its guaranteed GPUs are idle, and lab-a borrows them.
    b.cancel_job(&b1.id).await.unwrap();
    running(a, a2.id.clone()).await;
    for (client, job) in [(a, &a1), (a, &a2), (b, &b2)] {
        client.cancel_job(&job.id).await.unwrap();
    }
}
