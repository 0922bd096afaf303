//! Store rows to wire types, at the API boundary.

use lutece_api::{ApiKey, Gpu, Job, JobResources, Node, Role, Task, Tenant, UsageRow};
use lutece_store::{JobRow, KeyRow, NodeRow, TaskRow, TenantRow, UsageSummaryRow};
use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 with milliseconds, UTC.
pub(crate) fn time(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

fn opt_time(ms: Option<i64>) -> Option<String> {
    ms.map(time)
}

pub(crate) fn tenant(row: TenantRow) -> Tenant {
    Tenant {
        id: row.id,
        name: row.name,
        created_at: time(row.created_at),
    }
}

pub(crate) fn key(row: KeyRow) -> ApiKey {
    ApiKey {
        id: row.id,
        tenant: row.tenant_name,
        name: row.name,
        role: Role::parse(&row.role).unwrap_or(Role::Member),
        created_at: time(row.created_at),
        revoked_at: opt_time(row.revoked_at),
    }
}

pub(crate) fn job(row: JobRow, tasks: Vec<TaskRow>) -> Job {
    Job {
        id: row.spec.id,
        name: row.spec.name,
        tenant: row.tenant_name,
        project: row.spec.project,
        command: row.spec.command,
        env: row.spec.env,
        resources: JobResources {
            cpus_milli: row.spec.per_task.cpus_milli,
            memory_bytes: row.spec.per_task.memory_bytes,
            gpus_per_node: row.spec.per_task.gpus,
        },
        nodes: row.spec.nodes,
        priority: row.spec.priority,
        state: row.state.as_str().to_owned(),
        reason: row.reason,
        exit_code: row.exit_code,
        created_at: time(row.spec.created_at),
        scheduled_at: opt_time(row.scheduled_at),
        started_at: opt_time(row.started_at),
        finished_at: opt_time(row.finished_at),
        tasks: tasks.into_iter().map(task).collect(),
    }
}

fn task(row: TaskRow) -> Task {
    Task {
        rank: row.rank,
        node: row.node_id,
        gpus: row.gpus,
        state: row.state.as_str().to_owned(),
        exit_code: row.exit_code,
        reason: row.reason,
        started_at: opt_time(row.started_at),
        finished_at: opt_time(row.finished_at),
    }
}

/// The GPUs a node reported, read back from the store.
pub(crate) fn gpus(row: &NodeRow) -> Vec<Gpu> {
    serde_json::from_str(&row.gpus_json).unwrap_or_default()
}

pub(crate) fn node(row: NodeRow, up: bool, allocated: lutece_core::Resources) -> Node {
    let gpus = gpus(&row);
    Node {
        fake_gpus: gpus.iter().any(|g| g.fake),
        gpus,
        id: row.id,
        name: row.name,
        hostname: row.hostname,
        rack: row.rack,
        jurisdiction: row.jurisdiction,
        cpus_milli: row.cpus_milli,
        memory_bytes: row.memory_bytes,
        state: if up { "ready" } else { "down" }.to_owned(),
        registered_at: time(row.registered_at),
        last_seen_at: time(row.last_seen_at),
        allocated_cpus_milli: allocated.cpus_milli,
        allocated_memory_bytes: allocated.memory_bytes,
        allocated_gpus: allocated.gpus,
    }
}

pub(crate) fn usage(row: UsageSummaryRow) -> UsageRow {
    UsageRow {
        tenant: row.tenant_name,
        project: row.project,
        jobs: row.jobs,
        gpu_seconds: row.gpu_seconds,
        cpu_seconds: row.cpu_seconds,
        cpu_seconds_used: row.cpu_seconds_used,
    }
}
