//! The lutece scheduler: a pure, deterministic function from a snapshot of the fleet and the
//! queue to a plan. It never awaits, never reads a clock, and never does IO: the server's
//! reconciler and the simulator call the same [`plan`].

pub mod engine;
mod plan;
pub mod share;
mod snapshot;

pub use engine::{Order, Policy};
pub use plan::plan;
pub use snapshot::{
    NodePower, NodeState, Placement, Plan, Preemption, QueuedWorkload, Reservation,
    RunningWorkload, Snapshot, TaskPlacement, TenantShare, Waiting,
};
