//! The scheduler's input (a [`Snapshot`]) and output (a [`Plan`]).

use crate::engine::Policy;
use lutece_core::Resources;
use std::collections::BTreeMap;

/// Everything the scheduler may look at: the fleet as it is now and the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nodes: Vec<NodeState>,
    /// Workloads waiting to be placed, in any order: the scheduler orders them itself.
    pub queue: Vec<QueuedWorkload>,
    /// Workloads running now (their resources are already in the nodes' `allocated`); only
    /// needed for preemption. Empty means nothing may be preempted.
    pub running: Vec<RunningWorkload>,
    /// The time the snapshot describes, in milliseconds since the Unix epoch (the scheduler
    /// reads no clock); used to promote queued work that starves.
    pub now_ms: i64,
    /// How to rank and whether to preempt; `None` is [`Policy::default`] (priority, then
    /// submission order, no preemption).
    pub policy: Option<Policy>,
    /// The jurisdiction (an ISO country code such as `FR`) of each node that has a known one,
    /// by node id. Kept beside `nodes` rather than in [`NodeState`] so that callers' existing
    /// `NodeState` literals stay valid.
    pub jurisdictions: BTreeMap<String, String>,
    /// The GPU model of each node that has a known one, by node id.
    pub gpu_models: BTreeMap<String, String>,
}

/// One node: what it has in all, and which of it is already taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeState {
    pub id: String,
    /// The rack or NVLink domain the node sits in, if known.
    pub rack: Option<String>,
    /// Whether the node may take new work (registered, heartbeating, not drained).
    pub schedulable: bool,
    pub capacity: Resources,
    /// The sum of what the tasks placed on this node hold.
    pub allocated: Resources,
    /// Indices of the GPUs no task holds, in ascending order.
    pub free_gpus: Vec<u32>,
}

/// A workload that waits to be placed: a gang of `tasks` tasks, one per node, each needing
/// `per_task`; all start together or none does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuedWorkload {
    pub id: String,
    pub tenant: String,
    /// Higher goes first.
    pub priority: i32,
    /// Submission time in milliseconds since the Unix epoch; earlier goes first among equals.
    pub submitted_at_ms: i64,
    pub tasks: u32,
    pub per_task: Resources,
    /// GPU-milliseconds of service received before (a preempted workload keeps its history).
    pub attained_gpu_ms: u64,
    /// Jurisdictions the workload may run in (its tenant's residency policy); empty: anywhere.
    /// A node of unknown jurisdiction (absent from [`Snapshot::jurisdictions`]) never satisfies a
    /// non-empty list.
    pub residency: Vec<String>,
    /// GPU models the workload accepts; empty: any.
    pub gpu_models: Vec<String>,
}

/// A workload that runs now, as the scheduler needs to see it to preempt it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunningWorkload {
    pub id: String,
    pub tenant: String,
    pub priority: i32,
    pub submitted_at_ms: i64,
    /// Where each rank runs.
    pub tasks: Vec<TaskPlacement>,
    pub per_task: Resources,
    pub attained_gpu_ms: u64,
    /// Whether the workload may be stopped (and requeued) for better-ranked work.
    pub preemptible: bool,
}

/// What the scheduler decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub placements: Vec<Placement>,
    /// Every queued workload not placed, with a reason a person can read.
    pub waiting: Vec<Waiting>,
    /// Running workloads to stop (and requeue) so that better-ranked work can start.
    pub preemptions: Vec<Preemption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preemption {
    pub workload: String,
    pub reason: String,
}

/// Where each task of one workload goes. `tasks[rank]` is the placement of that rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub workload: String,
    pub tasks: Vec<TaskPlacement>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPlacement {
    pub node: String,
    /// The GPU indices on that node given to this task.
    pub gpus: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub workload: String,
    pub reason: String,
}

impl NodeState {
    /// What is left on the node for new tasks.
    pub fn free(&self) -> Resources {
        self.capacity.saturating_sub(&self.allocated)
    }
}
