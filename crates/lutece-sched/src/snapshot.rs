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
    /// Workloads running now (their resources are already in the nodes' `allocated`): what
    /// counts against quotas, may be preempted (if preemptible) and frees its nodes at its end
    /// time (for reservations). Empty means nothing may be preempted.
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
    /// Quotas and fair-share weights of tenants, by tenant; a tenant absent has no quota and
    /// weight 1.
    pub tenants: BTreeMap<String, TenantShare>,
    /// The site of each node that belongs to one, by node id.
    pub sites: BTreeMap<String, String>,
    /// The power budget of each site that has one, in watts: its nodes' draw (idle draw plus
    /// that of busy GPUs) must stay within it.
    pub site_power_budget_w: BTreeMap<String, u64>,
    /// How much each node draws, by node id; a node absent draws nothing the budget counts.
    pub node_power: BTreeMap<String, NodePower>,
}

/// A tenant's claim on the fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantShare {
    /// GPUs guaranteed to the tenant; `None`: no quota at all.
    pub guaranteed_gpus: Option<u64>,
    /// The most GPUs it may borrow beyond its guarantee from idle guarantees of its cohort;
    /// `None`: as many as the cohort has idle.
    pub borrow_limit_gpus: Option<u64>,
    /// Tenants naming one cohort lend each other their idle guarantees; `None`: a cohort of
    /// its own (it cannot borrow).
    pub cohort: Option<String>,
    /// Fair-share weight (0 counts as 1): a tenant of weight 2 is served as if it used half.
    pub weight: u32,
}

/// A node's power draw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodePower {
    pub idle_w: u32,
    /// What each busy GPU adds.
    pub per_gpu_w: u32,
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
    /// GPUs that tasks share, with the milli-GPUs they hold of each (not in `free_gpus`).
    pub shared_gpus: BTreeMap<u32, u32>,
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
    /// The longest it runs once started, if it says (lets it backfill ahead of a reservation).
    pub time_limit_ms: Option<i64>,
    /// A share of one GPU per task, in milli-GPUs (1 to 999), instead of `per_task.gpus` whole
    /// ones; 0: whole GPUs.
    pub gpu_share_milli: u32,
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
    /// When it will have ended at the latest (its start plus its time limit), if known.
    pub ends_at_ms: Option<i64>,
}

/// What the scheduler decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub placements: Vec<Placement>,
    /// Every queued workload not placed, with a reason a person can read.
    pub waiting: Vec<Waiting>,
    /// Running workloads to stop (and requeue) so that better-ranked work can start.
    pub preemptions: Vec<Preemption>,
    /// The first workload that could not start, with when and where it will, when the end
    /// times of running work tell; work placed in this plan leaves it whole.
    pub reservations: Vec<Reservation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub workload: String,
    pub at_ms: i64,
    /// The node of each task, by rank.
    pub nodes: Vec<String>,
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
    /// For a task that shares its GPU: the milli-GPUs of it that the task holds.
    pub share_milli: Option<u32>,
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
