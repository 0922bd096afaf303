//! The reconciler: turns queued jobs into placements by asking `lutece-sched` for a plan over a
//! snapshot of the store, then records the plan. One loop, woken by submissions and releases.

use crate::state::{AppState, NODE_TIMEOUT_MS, now_ms};
use lutece_sched::{
    NodeState, QueuedWorkload, RunningWorkload, Snapshot, TaskPlacement, TenantShare,
};
use lutece_store::{Allocation, GpuQuotaRow, JobRow, NodeRow};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// Runs until the process ends. Errors are logged and the next pass tries again.
pub(crate) async fn run(state: AppState) {
    let mut restarts = crate::deployments::Restarts::default();
    // Jobs whose refusal by residency is already in the audit log.
    let mut refused = HashSet::new();
    loop {
        if let Err(error) = crate::deployments::reconcile(&state, &mut restarts).await {
            tracing::warn!(%error, "deployment pass failed");
        }
        if let Err(error) = pass(&state, &mut refused).await {
            tracing::warn!(%error, "scheduling pass failed");
        }
        tokio::select! {
            _ = state.reconcile.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

async fn pass(
    state: &AppState,
    refused: &mut HashSet<String>,
) -> Result<(), lutece_store::StoreError> {
    let queued = state.store.queued_jobs().await?;
    if queued.is_empty() {
        return Ok(());
    }
    let nodes = state.store.list_nodes().await?;
    let allocations = state.store.allocations().await?;
    let quotas = state.store.gpu_quotas().await?;
    let now = now_ms();
    let mut snapshot = build_snapshot(&nodes, &allocations, &queued, now);
    snapshot.tenants = shares(&quotas);
    // Where each tenant's work may run: its residency policy, as country codes.
    let residency: HashMap<String, Vec<String>> = state
        .store
        .residencies()
        .await?
        .into_iter()
        .map(|(tenant, policy)| (tenant, policy.expand()))
        .collect();
    for workload in &mut snapshot.queue {
        if let Some(allowed) = residency.get(&workload.tenant) {
            workload.residency.clone_from(allowed);
        }
    }
    // Within a priority, the tenant using fewest GPUs for its weight goes next.
    snapshot.policy = Some(lutece_sched::Policy {
        fair_share: true,
        ..lutece_sched::Policy::default()
    });
    // Waiting reasons name tenants: the scheduler sees their names, not their ids.
    let tenants = state.store.list_tenants().await?;
    let names: HashMap<&str, &str> = tenants
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str()))
        .collect();
    let name = |id: &mut String| {
        if let Some(n) = names.get(id.as_str()) {
            *id = (*n).to_owned();
        }
    };
    snapshot.queue.iter_mut().for_each(|w| name(&mut w.tenant));
    snapshot
        .running
        .iter_mut()
        .for_each(|w| name(&mut w.tenant));
    snapshot.tenants = std::mem::take(&mut snapshot.tenants)
        .into_iter()
        .map(|(mut id, share)| {
            name(&mut id);
            (id, share)
        })
        .collect();
    // Jobs no schedulable node's jurisdiction lets run: their tenants' policies keep them off.
    let kept_off: HashSet<&str> = snapshot
        .queue
        .iter()
        .filter(|w| {
            !w.residency.is_empty()
                && !snapshot.nodes.iter().any(|n| {
                    n.schedulable
                        && snapshot
                            .jurisdictions
                            .get(&n.id)
                            .is_some_and(|j| w.residency.contains(j))
                })
        })
        .map(|w| w.id.as_str())
        .collect();
    let plan = lutece_sched::plan(&snapshot);
    for placement in &plan.placements {
        let tasks: Vec<(String, Vec<u32>)> = placement
            .tasks
            .iter()
            .map(|t| (t.node.clone(), t.gpus.clone()))
            .collect();
        if state
            .store
            .schedule_job(&placement.workload, &tasks, now)
            .await?
        {
            tracing::info!(job_id = %placement.workload, nodes = tasks.len(), "job scheduled");
            for (node, _) in &tasks {
                state.nodes.wake(node);
            }
        }
    }
    let reasons: Vec<(String, String)> = plan
        .waiting
        .into_iter()
        .map(|w| (w.workload, w.reason))
        .collect();
    audit_refusals(state, &queued, &reasons, &kept_off, refused).await;
    state.store.set_waiting_reasons(&reasons).await
}

/// Records, once per job, that its tenant's residency policy keeps it off the nodes there are
/// (`kept_off`), with the scheduler's reason for its wait.
async fn audit_refusals(
    state: &AppState,
    queued: &[JobRow],
    reasons: &[(String, String)],
    kept_off: &HashSet<&str>,
    refused: &mut HashSet<String>,
) {
    let tenants: HashMap<&str, &str> = queued
        .iter()
        .map(|j| (j.spec.id.as_str(), j.spec.tenant_id.as_str()))
        .collect();
    refused.retain(|job| tenants.contains_key(job.as_str()));
    for (job, reason) in reasons {
        if !kept_off.contains(job.as_str()) || refused.contains(job) {
            continue;
        }
        let tenant = tenants.get(job.as_str()).copied();
        let recorded = state
            .audit
            .note(
                "scheduler",
                tenant,
                "residency.refused placement",
                Some(job),
                reason,
            )
            .await;
        if recorded.is_ok() {
            refused.insert(job.clone());
        }
    }
}

/// Tenants' GPU quotas as the scheduler takes them, by tenant id.
pub(crate) fn shares(quotas: &[(String, GpuQuotaRow)]) -> BTreeMap<String, TenantShare> {
    quotas
        .iter()
        .map(|(tenant, q)| {
            let share = TenantShare {
                guaranteed_gpus: q.guaranteed_gpus.map(u64::from),
                borrow_limit_gpus: q.borrow_limit_gpus.map(u64::from),
                cohort: q.cohort.clone(),
                weight: q.weight,
            };
            (tenant.clone(), share)
        })
        .collect()
}

/// The scheduler's view of the store: nodes heard from recently are schedulable; what their
/// unfinished tasks hold is taken, and counts against their tenants' quotas (running jobs are
/// never preempted: the reconciler does not stop jobs).
// The struct updates are deliberate: fields `lutece-sched` adds later keep their defaults here.
#[allow(clippy::needless_update)]
pub(crate) fn build_snapshot(
    nodes: &[NodeRow],
    allocations: &[Allocation],
    queued: &[JobRow],
    now: i64,
) -> Snapshot {
    let mut taken: HashMap<&str, (lutece_core::Resources, Vec<u32>)> = HashMap::new();
    for allocation in allocations {
        let entry = taken.entry(allocation.node_id.as_str()).or_default();
        entry.0 = entry.0.saturating_add(&allocation.resources);
        entry.1.extend(&allocation.gpus);
    }
    let jurisdictions = nodes
        .iter()
        .filter_map(|n| Some((n.id.clone(), n.jurisdiction.clone()?)))
        .collect();
    let nodes = nodes
        .iter()
        .map(|node| {
            let gpu_count = crate::convert::gpus(node).len() as u32;
            let (allocated, used_gpus) = taken.remove(node.id.as_str()).unwrap_or_default();
            NodeState {
                id: node.id.clone(),
                rack: node.rack.clone(),
                schedulable: now - node.last_seen_at <= NODE_TIMEOUT_MS,
                capacity: lutece_core::Resources {
                    cpus_milli: node.cpus_milli,
                    memory_bytes: node.memory_bytes,
                    gpus: gpu_count,
                },
                allocated,
                free_gpus: (0..gpu_count).filter(|g| !used_gpus.contains(g)).collect(),
                // Jobs ask for whole GPUs: none is shared.
                shared_gpus: Default::default(),
            }
        })
        .collect();
    let queue = queued
        .iter()
        .map(|job| QueuedWorkload {
            id: job.spec.id.clone(),
            tenant: job.spec.tenant_id.clone(),
            priority: job.spec.priority,
            submitted_at_ms: job.spec.created_at,
            tasks: job.spec.nodes,
            per_task: job.spec.per_task,
            ..Default::default()
        })
        .collect();
    let mut running: Vec<RunningWorkload> = Vec::new();
    for a in allocations {
        if running.last().is_none_or(|r| r.id != a.job_id) {
            running.push(RunningWorkload {
                id: a.job_id.clone(),
                tenant: a.tenant_id.clone(),
                per_task: a.resources,
                ..Default::default()
            });
        }
        if let Some(job) = running.last_mut() {
            job.tasks.push(TaskPlacement {
                node: a.node_id.clone(),
                gpus: a.gpus.clone(),
                share_milli: None,
            });
        }
    }
    Snapshot {
        nodes,
        queue,
        running,
        jurisdictions,
        ..Default::default()
    }
}
