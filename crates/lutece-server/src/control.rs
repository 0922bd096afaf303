//! The agent protocol's server side: registration, long-poll heartbeats, task reports and log
//! chunks. HTTP handlers and the in-process [`LocalControl`] both call these functions, so a
//! co-located agent and a remote one are treated the same.

use crate::auth::{constant_time_eq, hash_secret, new_id, random_hex};
use crate::error::ApiError;
use crate::state::{AppState, now_ms};
use lutece_api::{
    Assignment, ControlApi, ControlError, Heartbeat, HeartbeatReply, LogAck, LogChunk,
    RegisterNode, Registered, TaskEvent, TaskRef, TaskReport,
};
use lutece_core::TaskState;
use lutece_store::StoreError;
use lutece_store::{NodeRow, NodeTask, TaskOutcome};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The longest an agent's heartbeat is held open.
const MAX_WAIT_MS: u64 = 30_000;

/// Registers a node. A known node re-registers with its id and credential; a new node is
/// created only when `may_join` (the caller presented a valid join token, or is the trusted
/// in-process agent). Anything else is refused and changes nothing.
pub(crate) async fn register(
    state: &AppState,
    request: RegisterNode,
    may_join: bool,
) -> Result<Registered, ApiError> {
    if request.name.trim().is_empty() || request.name.len() > 253 {
        return Err(ApiError::invalid(
            "name",
            "a node name is 1 to 253 characters",
        ));
    }
    if let Some(address) = &request.address {
        let valid = !address.is_empty()
            && address.len() <= 253
            && address
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        if !valid {
            return Err(ApiError::invalid(
                "address",
                "a host name or IP address (letters, digits, '.', '-', ':'), at most 253 characters",
            ));
        }
    }
    let jurisdiction = match &request.jurisdiction {
        Some(text) => Some(
            lutece_core::residency::Jurisdiction::parse(text)
                .map_err(|e| ApiError::invalid("jurisdiction", e.to_string()))?
                .to_string(),
        ),
        None => None,
    };
    let now = now_ms();
    let known = match &request.node_id {
        Some(id) => state.store.node(id).await?,
        None => None,
    };
    let (id, credential, registered_at) = match (known, &request.credential) {
        (Some(node), Some(credential)) => {
            if !constant_time_eq(&hash_secret(credential), &node.credential_hash) {
                return Err(ApiError::Unauthenticated);
            }
            (node.id, credential.clone(), node.registered_at)
        }
        // A join token does not let anyone take over an existing node's identity.
        (Some(_), None) => return Err(ApiError::Unauthenticated),
        (None, _) if may_join => (new_id("node")?, format!("lnc_{}", random_hex(20)?), now),
        (None, _) => return Err(ApiError::Unauthenticated),
    };
    let gpus_json =
        serde_json::to_string(&request.gpus).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .store
        .upsert_node(&NodeRow {
            id: id.clone(),
            name: request.name,
            hostname: request.hostname,
            address: request.address,
            rack: request.rack,
            cpus_milli: request.cpus_milli,
            memory_bytes: request.memory_bytes,
            gpus_json,
            credential_hash: hash_secret(&credential),
            registered_at,
            last_seen_at: now,
            jurisdiction,
        })
        .await?;
    tracing::info!(node_id = %id, "node registered");
    state.reconcile.notify_one();
    Ok(Registered {
        node_id: id,
        credential,
    })
}

/// Answers with every task the node should run; holds the call open (up to `wait_ms`) while
/// that answer would tell the agent nothing new.
pub(crate) async fn heartbeat(
    state: &AppState,
    request: Heartbeat,
) -> Result<HeartbeatReply, ApiError> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.wait_ms.min(MAX_WAIT_MS));
    let running: BTreeSet<&TaskRef> = request.running.iter().collect();
    let stopping: BTreeSet<&TaskRef> = request.stopping.iter().collect();
    let notify = state.nodes.notify_for(&request.node_id);
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        let now = now_ms();
        if state.nodes.due_for_touch(&request.node_id, now) {
            state.store.touch_node(&request.node_id, now).await?;
        }
        let tasks: Vec<Assignment> = state
            .store
            .node_tasks(&request.node_id)
            .await?
            .into_iter()
            .map(assignment)
            .collect();
        let desired: BTreeSet<&TaskRef> = tasks.iter().map(|a| &a.task).collect();
        let news = desired != running
            || tasks
                .iter()
                .any(|a| a.cancel && !stopping.contains(&a.task));
        if news {
            return Ok(HeartbeatReply { tasks });
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => return Ok(HeartbeatReply { tasks }),
        }
    }
}

pub(crate) async fn report(state: &AppState, report: TaskReport) -> Result<(), ApiError> {
    let now = now_ms();
    let TaskReport {
        node_id,
        task,
        event,
    } = report;
    let outcome = match event {
        TaskEvent::Started { pid } => {
            state
                .store
                .task_started(&task.job_id, task.rank, &node_id, pid, now)
                .await?;
            return Ok(());
        }
        TaskEvent::Exited {
            exit_code,
            signal,
            cpu_seconds_used,
            cancelled,
        } => {
            let state = match (cancelled, exit_code) {
                (true, _) => TaskState::Cancelled,
                (false, Some(0)) => TaskState::Succeeded,
                (false, _) => TaskState::Failed,
            };
            let reason = signal
                .filter(|_| state == TaskState::Failed)
                .map(|s| format!("killed by signal {s}"));
            TaskOutcome {
                state,
                exit_code,
                reason,
                cpu_seconds_used,
            }
        }
        TaskEvent::Failed { reason } => TaskOutcome {
            state: TaskState::Failed,
            exit_code: None,
            reason: Some(reason),
            cpu_seconds_used: 0.0,
        },
    };
    if state
        .store
        .task_finished(&task.job_id, task.rank, &node_id, &outcome, now)
        .await?
    {
        if outcome.state == TaskState::Failed {
            // The other ranks of the gang must stop too.
            for sibling in state.store.tasks_of(&task.job_id).await? {
                state.nodes.wake(&sibling.node_id);
            }
        }
        state.reconcile.notify_one();
    }
    Ok(())
}

pub(crate) async fn append_log(state: &AppState, chunk: LogChunk) -> Result<LogAck, ApiError> {
    let placed = state.store.tasks_of(&chunk.task.job_id).await?;
    if !placed
        .iter()
        .any(|t| t.rank == chunk.task.rank && t.node_id == chunk.node_id)
    {
        return Err(ApiError::NotFound(format!(
            "task {}/{} on this node",
            chunk.task.job_id, chunk.task.rank
        )));
    }
    let size = state
        .logs
        .append(
            &chunk.task.job_id,
            chunk.task.rank,
            chunk.offset,
            &chunk.data,
        )
        .await
        .map_err(|e| match e {
            crate::logs::AppendError::Gap { .. } => ApiError::Conflict(e.to_string()),
            crate::logs::AppendError::Io(io) => ApiError::Internal(io.to_string()),
        })?;
    Ok(LogAck { size })
}

/// What the agent needs to start one task, including the variables `torchrun` expects.
fn assignment(node_task: NodeTask) -> Assignment {
    let NodeTask {
        task,
        job,
        master_host,
        node_address,
        stopping,
    } = node_task;
    let mut env: BTreeMap<String, String> = job.spec.env.clone();
    let gpus: Vec<String> = task.gpus.iter().map(u32::to_string).collect();
    let set = [
        ("LUTECE_JOB_ID", job.spec.id.clone()),
        ("LUTECE_TENANT", job.tenant_name.clone()),
        ("RANK", task.rank.to_string()),
        ("NODE_RANK", task.rank.to_string()),
        ("WORLD_SIZE", job.spec.nodes.to_string()),
        ("LOCAL_RANK", "0".to_owned()),
        ("LOCAL_WORLD_SIZE", "1".to_owned()),
        ("MASTER_ADDR", master_host),
        ("LUTECE_NODE_ADDRESS", node_address),
        ("MASTER_PORT", master_port(&job.spec.id).to_string()),
        ("CUDA_DEVICE_ORDER", "PCI_BUS_ID".to_owned()),
        ("CUDA_VISIBLE_DEVICES", gpus.join(",")),
    ];
    for (name, value) in set {
        env.insert(name.to_owned(), value);
    }
    Assignment {
        task: TaskRef {
            job_id: task.job_id,
            rank: task.rank,
        },
        command: job.spec.command,
        env,
        started: task.state == TaskState::Running,
        cancel: stopping,
    }
}

/// A rendezvous port derived from the job id, so two jobs on one node rarely collide
/// (torchrun's default is 29500).
pub(crate) fn master_port(job_id: &str) -> u16 {
    let hash = job_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    29_500 + (hash % 10_000) as u16
}

/// The control plane as seen by an agent in the same process: no HTTP, same functions.
#[derive(Clone)]
pub struct LocalControl {
    pub(crate) state: AppState,
}

impl LocalControl {
    /// Records in the audit log something this process does on the operator's behalf outside
    /// any request (such as fetching the default models from a package index); an error means
    /// it was not recorded, and must not be done.
    pub async fn record(&self, action: &str, object: &str, result: &str) -> Result<(), ApiError> {
        self.state
            .audit
            .note("operator", None, action, Some(object), result)
            .await
            .map(drop)
    }

    /// Deploys a model of the platform to every tenant (one replica reserving `replica`, in
    /// the operator's tenant), once per data directory: a deployment the operator deletes
    /// stays deleted.
    pub async fn deploy_platform_model(
        &self,
        name: &str,
        replica: lutece_core::Resources,
    ) -> Result<(), ApiError> {
        let state = &self.state;
        let done = format!("platform_model_deployed:{name}");
        if state.store.meta(&done).await?.is_some() {
            return Ok(());
        }
        let tenant = state
            .store
            .tenant_by_name("default")
            .await?
            .ok_or_else(|| ApiError::NotFound("tenant \"default\"".into()))?;
        let deployment = lutece_store::DeploymentRow {
            id: new_id("dep")?,
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            name: name.to_owned(),
            model: Some(name.to_owned()),
            project: "platform".to_owned(),
            command: crate::routes::deployments::worker_command(state, name, name)?,
            per_replica: replica,
            replicas: 1,
            shared: true,
            created_at: now_ms(),
        };
        match state.store.create_deployment(&deployment).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        state.store.set_meta(&done, "1").await?;
        state.reconcile.notify_one();
        Ok(())
    }
}

fn to_control(error: ApiError) -> ControlError {
    match error {
        ApiError::Internal(message) => ControlError::Unavailable(message),
        other => {
            let status = match &other {
                ApiError::Unauthenticated => 401,
                ApiError::NotFound(_) => 404,
                ApiError::Conflict(_) => 409,
                _ => 400,
            };
            ControlError::Rejected {
                status,
                message: other.to_string(),
            }
        }
    }
}

impl ControlApi for LocalControl {
    async fn register(&self, request: RegisterNode) -> Result<Registered, ControlError> {
        // The agent of `lutece up` runs in this process: it needs no join token.
        register(&self.state, request, true)
            .await
            .map_err(to_control)
    }

    async fn heartbeat(&self, request: Heartbeat) -> Result<HeartbeatReply, ControlError> {
        heartbeat(&self.state, request).await.map_err(to_control)
    }

    async fn report(&self, report_: TaskReport) -> Result<(), ControlError> {
        report(&self.state, report_).await.map_err(to_control)
    }

    async fn append_log(&self, chunk: LogChunk) -> Result<LogAck, ControlError> {
        append_log(&self.state, chunk).await.map_err(to_control)
    }
}
