//! The store against a real SQLite file: lifecycle, idempotence, isolation, restart.

use super::*;
use lutece_core::{JobState, Resources, TaskState};
use std::path::PathBuf;

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lutece-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("lutece.db")
}

async fn seeded(name: &str) -> (Store, PathBuf) {
    let path = temp_db(name);
    let store = Store::open(&path).await.unwrap();
    for tenant in ["acme", "globex"] {
        store
            .create_tenant(&TenantRow {
                id: format!("ten_{tenant}"),
                name: tenant.into(),
                created_at: 1,
            })
            .await
            .unwrap();
    }
    store
        .upsert_node(&NodeRow {
            id: "node_a".into(),
            name: "a".into(),
            hostname: "host-a".into(),
            address: Some("10.0.0.7".into()),
            rack: None,
            cpus_milli: 4000,
            memory_bytes: 8 << 30,
            gpus_json: "[]".into(),
            credential_hash: "h".into(),
            registered_at: 1,
            last_seen_at: 1,
            jurisdiction: Some("FR".into()),
        })
        .await
        .unwrap();
    (store, path)
}

fn new_job(id: &str, tenant: &str) -> NewJob {
    NewJob {
        id: id.into(),
        tenant_id: format!("ten_{tenant}"),
        project: "default".into(),
        name: "echo".into(),
        command: vec!["echo".into(), "hi".into()],
        env: Default::default(),
        per_task: Resources {
            cpus_milli: 2000,
            memory_bytes: 1 << 30,
            gpus: 0,
        },
        nodes: 1,
        priority: 0,
        created_at: 10,
    }
}

fn exited(code: i32) -> TaskOutcome {
    let state = if code == 0 {
        TaskState::Succeeded
    } else {
        TaskState::Failed
    };
    TaskOutcome {
        state,
        exit_code: Some(code),
        reason: None,
        cpu_seconds_used: 0.5,
    }
}

#[tokio::test]
async fn a_job_lives_and_leaves_usage() {
    let (store, _) = seeded("lifecycle").await;
    store.insert_job(&new_job("job_1", "acme")).await.unwrap();
    assert_eq!(store.queued_jobs().await.unwrap().len(), 1);

    assert!(
        store
            .schedule_job("job_1", &[("node_a".into(), vec![])], 20)
            .await
            .unwrap()
    );
    assert!(
        !store
            .schedule_job("job_1", &[("node_a".into(), vec![])], 21)
            .await
            .unwrap(),
        "scheduled twice"
    );
    assert_eq!(store.allocations().await.unwrap().len(), 1);

    assert!(
        store
            .task_started("job_1", 0, "node_a", 42, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .task_started("job_1", 0, "node_a", 43, 1_001)
            .await
            .unwrap(),
        "started twice"
    );
    assert!(
        store
            .task_finished("job_1", 0, "node_a", &exited(0), 3_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .task_finished("job_1", 0, "node_a", &exited(1), 3_001)
            .await
            .unwrap(),
        "finished twice"
    );

    let job = store.job("job_1", None).await.unwrap().unwrap();
    assert_eq!(
        (job.state, job.exit_code, job.started_at, job.finished_at),
        (JobState::Succeeded, Some(0), Some(1_000), Some(3_000))
    );
    assert!(store.allocations().await.unwrap().is_empty());
    let usage = store.usage_summary(Some("ten_acme")).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(
        (
            usage[0].jobs,
            usage[0].cpu_seconds,
            usage[0].cpu_seconds_used
        ),
        (1, 4.0, 0.5)
    );
}

#[tokio::test]
async fn tenants_do_not_see_each_other() {
    let (store, _) = seeded("isolation").await;
    store.insert_job(&new_job("job_a", "acme")).await.unwrap();
    assert!(
        store
            .job("job_a", Some("ten_globex"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .job("job_a", Some("ten_acme"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .list_jobs(Some("ten_globex"), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.cancel_job("job_a", Some("ten_globex"), 5).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.job("job_a", None).await.unwrap().unwrap().state,
        JobState::Queued
    );
}

#[tokio::test]
async fn cancel_and_failure_end_the_job() {
    let (store, _) = seeded("cancel").await;
    store.insert_job(&new_job("queued", "acme")).await.unwrap();
    assert_eq!(
        store
            .cancel_job("queued", Some("ten_acme"), 5)
            .await
            .unwrap()
            .state,
        JobState::Cancelled
    );

    store.insert_job(&new_job("placed", "acme")).await.unwrap();
    store
        .schedule_job("placed", &[("node_a".into(), vec![])], 6)
        .await
        .unwrap();
    store
        .task_started("placed", 0, "node_a", 7, 7)
        .await
        .unwrap();
    let job = store.cancel_job("placed", None, 8).await.unwrap();
    assert!(job.cancel_requested && job.state == JobState::Running);
    assert!(store.node_tasks("node_a").await.unwrap()[0].stopping);
    store
        .task_finished("placed", 0, "node_a", &exited(143), 9)
        .await
        .unwrap();
    assert_eq!(
        store.job("placed", None).await.unwrap().unwrap().state,
        JobState::Cancelled
    );

    store.insert_job(&new_job("broken", "acme")).await.unwrap();
    store
        .schedule_job("broken", &[("node_a".into(), vec![])], 10)
        .await
        .unwrap();
    store
        .task_finished("broken", 0, "node_a", &exited(3), 11)
        .await
        .unwrap();
    let job = store.job("broken", None).await.unwrap().unwrap();
    assert_eq!((job.state, job.exit_code), (JobState::Failed, Some(3)));
    assert_eq!(job.reason.as_deref(), Some("rank 0 exited with code 3"));
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let (store, path) = seeded("reopen").await;
    store.insert_job(&new_job("job_1", "acme")).await.unwrap();
    assert!(matches!(
        store
            .create_tenant(&TenantRow {
                id: "x".into(),
                name: "acme".into(),
                created_at: 1
            })
            .await,
        Err(StoreError::Conflict { .. })
    ));
    store.close().await;
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.list_tenants().await.unwrap().len(), 2);
    assert_eq!(
        store
            .job("job_1", None)
            .await
            .unwrap()
            .unwrap()
            .spec
            .command,
        vec!["echo", "hi"]
    );
}

fn key(id: &str, tenant: &str, role: &str) -> KeyRow {
    KeyRow {
        id: id.into(),
        tenant_id: format!("ten_{tenant}"),
        tenant_name: tenant.into(),
        name: id.into(),
        role: role.into(),
        secret_hash: format!("hash_{id}"),
        created_at: 1,
        revoked_at: None,
    }
}

#[tokio::test]
async fn a_key_revokes_only_keys_up_to_its_role() {
    let (store, _) = seeded("revoke").await;
    store
        .create_key(&key("key_op", "acme", "operator"))
        .await
        .unwrap();
    store
        .create_key(&key("key_member", "acme", "member"))
        .await
        .unwrap();
    let admin_may = ["member", "admin"];

    // An admin of acme cannot revoke acme's operator key: refused, and it stays valid.
    assert!(matches!(
        store
            .revoke_key("key_op", Some("ten_acme"), &admin_may, 5)
            .await,
        Err(StoreError::Denied { .. })
    ));
    let op = store.key_by_id("key_op").await.unwrap().unwrap();
    assert_eq!(op.revoked_at, None);

    // Another tenant's key does not exist for the caller, whatever its role.
    assert!(matches!(
        store
            .revoke_key("key_member", Some("ten_globex"), &admin_may, 5)
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // Within the ceiling it works, and twice is fine; an operator may revoke an operator.
    for now in [6, 7] {
        store
            .revoke_key("key_member", Some("ten_acme"), &admin_may, now)
            .await
            .unwrap();
    }
    let member = store.key_by_id("key_member").await.unwrap().unwrap();
    assert_eq!(member.revoked_at, Some(6));
    store
        .revoke_key("key_op", None, &["member", "admin", "operator"], 8)
        .await
        .unwrap();
}

fn deployment(id: &str, tenant: &str, name: &str) -> DeploymentRow {
    DeploymentRow {
        id: id.into(),
        tenant_id: format!("ten_{tenant}"),
        tenant_name: String::new(),
        name: name.into(),
        model: Some("smollm2-135m-instruct".into()),
        project: "default".into(),
        command: vec!["lutece".into(), "worker".into()],
        per_replica: Resources {
            cpus_milli: 1000,
            memory_bytes: 1 << 30,
            gpus: 0,
        },
        replicas: 2,
        shared: false,
        created_at: 5,
    }
}

#[tokio::test]
async fn a_deployment_keeps_replicas_until_deleted() {
    let (store, path) = seeded("deploy").await;
    store
        .create_deployment(&deployment("dep_1", "acme", "chat"))
        .await
        .unwrap();
    // Names are per tenant: another tenant may use the same one, the same tenant may not.
    assert!(matches!(
        store
            .create_deployment(&deployment("dep_2", "acme", "chat"))
            .await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .create_deployment(&deployment("dep_3", "globex", "chat"))
        .await
        .unwrap();
    assert!(
        store
            .deployment("ten_globex", "nope")
            .await
            .unwrap()
            .is_none()
    );
    let acme = store.deployment("ten_acme", "chat").await.unwrap().unwrap();
    assert_eq!(
        (acme.id.as_str(), acme.tenant_name.as_str()),
        ("dep_1", "acme")
    );
    assert_eq!(
        store
            .list_deployments(Some("ten_acme"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.list_deployments(None).await.unwrap().len(), 2);

    store
        .add_replica("dep_1", &new_job("job_r1", "acme"))
        .await
        .unwrap();
    store
        .add_replica("dep_1", &new_job("job_r2", "acme"))
        .await
        .unwrap();
    assert!(
        store
            .schedule_job("job_r1", &[("node_a".into(), vec![])], 20)
            .await
            .unwrap()
    );
    let live = store.live_replicas().await.unwrap();
    assert_eq!(live.len(), 2);
    assert_eq!(
        (
            live[0].job_id.as_str(),
            live[0].state,
            live[0].node_address.as_deref()
        ),
        ("job_r1", JobState::Scheduled, Some("10.0.0.7"))
    );
    assert_eq!(
        (live[1].state, live[1].node_address.as_deref()),
        (JobState::Queued, None)
    );
    // The node learns its own address with each task.
    let on_node = store.node_tasks("node_a").await.unwrap();
    assert_eq!(on_node[0].node_address, "10.0.0.7");

    store.scale_deployment("dep_1", 5).await.unwrap();
    assert_eq!(
        store
            .deployment("ten_acme", "chat")
            .await
            .unwrap()
            .unwrap()
            .replicas,
        5
    );

    // Deleting ends the queued replica, marks the placed one, and frees the name.
    assert_eq!(
        store.delete_deployment("dep_1", 30).await.unwrap(),
        vec!["node_a".to_owned()]
    );
    assert_eq!(
        store.job("job_r2", None).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    assert!(
        store
            .job("job_r1", None)
            .await
            .unwrap()
            .unwrap()
            .cancel_requested
    );
    assert!(matches!(
        store.delete_deployment("dep_1", 31).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.add_replica("dep_1", &new_job("job_r3", "acme")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store.job("job_r3", None).await.unwrap().is_none(),
        "nothing half written"
    );
    assert!(matches!(
        store.scale_deployment("dep_1", 1).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .create_deployment(&deployment("dep_4", "acme", "chat"))
        .await
        .unwrap();

    // All of it survives a reopen.
    store.close().await;
    let store = Store::open(&path).await.unwrap();
    let names: Vec<String> = store
        .list_deployments(None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(names, ["dep_4", "dep_3"]);
}

mod limits_and_tokens;
