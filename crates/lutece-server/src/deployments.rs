//! Deployments at run time: keep each one at its replica count (a replica is a one-node job,
//! replaced when it ends, with a growing delay when replicas keep dying young), and keep the
//! gateway's routing table equal to the replicas that answer their health check.

use crate::auth::new_id;
use crate::state::{AppState, now_ms};
use lutece_api::ModelKind;
use lutece_core::JobState;
use lutece_gateway::routing::{ModelKey, Route};
use lutece_gateway::{HealthCheck, Scope};
use lutece_store::{DeploymentRow, NewJob, ReplicaRow};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A replica that ends sooner than this after its predecessor started counts as a crash.
const HEALTHY_LIFETIME: Duration = Duration::from_secs(60);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// How often replicas are health-checked, and how long one may take to answer.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The port a replica listens on, derived from its job id so it is known before placement.
/// Two replicas on one node rarely collide; one that does fails to listen, ends, and is
/// replaced by a new job with another port.
pub(crate) fn replica_port(job_id: &str) -> u16 {
    let hash = job_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    40_000 + (hash % 20_000) as u16
}

/// Where a replica on a node at `address` serves.
pub(crate) fn endpoint(address: &str, job_id: &str) -> String {
    let port = replica_port(job_id);
    if address.contains(':') {
        format!("http://[{address}]:{port}")
    } else {
        format!("http://{address}:{port}")
    }
}

/// Who may call a deployment through `/v1`.
pub(crate) fn scope(deployment: &DeploymentRow) -> ModelKey {
    let scope = if deployment.shared {
        Scope::Shared
    } else {
        Scope::Tenant(deployment.tenant_id.clone())
    };
    (scope, deployment.name.clone())
}

/// When each deployment may next start a replica.
#[derive(Default)]
pub(crate) struct Restarts {
    by_deployment: HashMap<String, Backoff>,
}

struct Backoff {
    last_start: Instant,
    delay: Duration,
}

impl Restarts {
    fn may_start(&self, deployment: &str, now: Instant) -> bool {
        self.by_deployment
            .get(deployment)
            .is_none_or(|b| now >= b.last_start + b.delay)
    }

    fn started(&mut self, deployment: &str, now: Instant) {
        let Some(backoff) = self.by_deployment.get_mut(deployment) else {
            self.by_deployment.insert(
                deployment.to_owned(),
                Backoff {
                    last_start: now,
                    delay: Duration::ZERO,
                },
            );
            return;
        };
        backoff.delay = if now.duration_since(backoff.last_start) < HEALTHY_LIFETIME {
            (backoff.delay * 2).clamp(Duration::from_secs(1), MAX_RESTART_DELAY)
        } else {
            Duration::ZERO
        };
        backoff.last_start = now;
    }
}

/// Brings every deployment to its replica count: queues the missing replicas (unless it is
/// backing off) and stops the surplus, newest first.
pub(crate) async fn reconcile(
    state: &AppState,
    restarts: &mut Restarts,
) -> Result<(), lutece_store::StoreError> {
    let deployments = state.store.list_deployments(None).await?;
    let live = state.store.live_replicas().await?;
    let now = Instant::now();
    for deployment in &deployments {
        let mine: Vec<&ReplicaRow> = live
            .iter()
            .filter(|r| r.deployment_id == deployment.id)
            .collect();
        let wanted = deployment.replicas as usize;
        if mine.len() < wanted && restarts.may_start(&deployment.id, now) {
            for _ in mine.len()..wanted {
                let job = replica_job(deployment).map_err(|e| {
                    lutece_store::StoreError::Corrupt(format!("cannot make an id: {e}"))
                })?;
                state.store.add_replica(&deployment.id, &job).await?;
                tracing::info!(deployment = %deployment.name, job_id = %job.id, "replica queued");
            }
            restarts.started(&deployment.id, now);
            state.reconcile.notify_one();
        }
        // The newest go first, and queued ones before running ones.
        let mut surplus: Vec<&&ReplicaRow> = mine.iter().rev().collect();
        surplus.sort_by_key(|r| r.state != JobState::Queued);
        for replica in surplus.into_iter().take(mine.len().saturating_sub(wanted)) {
            state
                .store
                .cancel_job(&replica.job_id, None, now_ms())
                .await?;
            for task in state.store.tasks_of(&replica.job_id).await? {
                state.nodes.wake(&task.node_id);
            }
        }
    }
    Ok(())
}

fn replica_job(deployment: &DeploymentRow) -> Result<NewJob, crate::error::ApiError> {
    let id = new_id("job")?;
    let env = BTreeMap::from([("PORT".to_owned(), replica_port(&id).to_string())]);
    Ok(NewJob {
        id,
        tenant_id: deployment.tenant_id.clone(),
        project: deployment.project.clone(),
        name: format!("{}-replica", deployment.name),
        command: deployment.command.clone(),
        env,
        per_task: deployment.per_replica,
        nodes: 1,
        priority: 0,
        created_at: now_ms(),
    })
}

/// Health-checks every running replica, forever, and keeps the gateway's table equal to the
/// deployments with the replicas that answered.
pub(crate) async fn probe(state: AppState) {
    let health = HealthCheck::new(PROBE_TIMEOUT);
    loop {
        if let Err(error) = probe_once(&state, &health).await {
            tracing::warn!(%error, "replica health checks failed");
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

async fn probe_once(
    state: &AppState,
    health: &HealthCheck,
) -> Result<(), lutece_store::StoreError> {
    let deployments = state.store.list_deployments(None).await?;
    let live = state.store.live_replicas().await?;
    let checks = live.iter().filter_map(|replica| {
        let deployment = deployments.iter().find(|d| d.id == replica.deployment_id)?;
        let address = replica.node_address.as_deref()?;
        (replica.state == JobState::Running).then(|| {
            let url = endpoint(address, &replica.job_id);
            let key = scope(deployment);
            let jurisdiction = replica.node_jurisdiction.clone();
            async move {
                let healthy = health.check(&url).await;
                (key, url, jurisdiction, healthy)
            }
        })
    });
    let results = futures_util::future::join_all(checks).await;
    let mut table: BTreeMap<ModelKey, Route> = deployments
        .iter()
        .map(|d| {
            let route = Route {
                kind: kind_of(state, d),
                replicas: Vec::new(),
                // The built-in engine's workers report usage so far when every healthy one
                // says it can (a worker of an older lutece, adopted across an upgrade, cannot);
                // an external engine is not asked.
                running_usage: d.model.is_some(),
                jurisdictions: BTreeMap::new(),
            };
            (scope(d), route)
        })
        .collect();
    for (key, url, jurisdiction, healthy) in results {
        if let (Some(healthy), Some(route)) = (healthy, table.get_mut(&key)) {
            if let Some(jurisdiction) = jurisdiction {
                route.jurisdictions.insert(url.clone(), jurisdiction);
            }
            route.replicas.push(url);
            route.running_usage &= healthy.running_usage;
        }
    }
    state.routes.sync(table);
    Ok(())
}

/// What a deployment serves: a platform model's kind, as its files tell it; an external
/// engine is taken to generate text.
fn kind_of(state: &AppState, deployment: &DeploymentRow) -> ModelKind {
    deployment
        .model
        .as_deref()
        .and_then(|m| crate::models::kind(&state.models_dir, m))
        .unwrap_or(ModelKind::Generative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_that_die_young_wait_longer_each_time() {
        let mut restarts = Restarts::default();
        let t0 = Instant::now();
        assert!(restarts.may_start("d", t0));
        restarts.started("d", t0);
        // Dies at once: the next start may come at once, the one after waits 1 s, then 2 s…
        assert!(restarts.may_start("d", t0 + Duration::from_millis(10)));
        restarts.started("d", t0 + Duration::from_millis(10));
        let t1 = t0 + Duration::from_millis(10);
        assert!(!restarts.may_start("d", t1 + Duration::from_millis(500)));
        assert!(restarts.may_start("d", t1 + Duration::from_secs(1)));
        restarts.started("d", t1 + Duration::from_secs(1));
        let t2 = t1 + Duration::from_secs(1);
        assert!(!restarts.may_start("d", t2 + Duration::from_millis(1500)));
        assert!(restarts.may_start("d", t2 + Duration::from_secs(2)));
        // A replica that lived long resets the delay; other deployments are not affected.
        let t3 = t2 + Duration::from_secs(600);
        restarts.started("d", t3);
        assert!(restarts.may_start("d", t3));
        assert!(restarts.may_start("other", t3));
    }

    #[test]
    fn endpoints_and_ports() {
        let port = replica_port("job_abc");
        assert!((40_000..60_000).contains(&port));
        assert_eq!(replica_port("job_abc"), port, "stable");
        assert_eq!(
            endpoint("10.0.0.7", "job_abc"),
            format!("http://10.0.0.7:{port}")
        );
        assert_eq!(endpoint("::1", "job_abc"), format!("http://[::1]:{port}"));
    }
}
