//! The scheduler's input (a [`Snapshot`]) and output (a [`Plan`]).

use lutece_core::Resources;

/// Everything the scheduler may look at: the fleet as it is now and the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub nodes: Vec<NodeState>,
    /// Workloads waiting to be placed, in any order: the scheduler orders them itself.
    pub queue: Vec<QueuedWorkload>,
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
}

/// What the scheduler decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub placements: Vec<Placement>,
    /// Every queued workload not placed, with a reason a person can read.
    pub waiting: Vec<Waiting>,
}

/// Where each task of one workload goes. `tasks[rank]` is the placement of that rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub workload: String,
    pub tasks: Vec<TaskPlacement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
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
