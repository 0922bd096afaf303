//! The lutece scheduler: a pure, deterministic function from a snapshot of the fleet and the
//! queue to a plan. It never awaits, never reads a clock, and never does IO: the server's
//! reconciler and the simulator call the same [`plan`].

mod plan;
mod snapshot;

pub use plan::plan;
pub use snapshot::{NodeState, Placement, Plan, QueuedWorkload, TaskPlacement, Snapshot, Waiting};
