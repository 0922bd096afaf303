//! The domain model of lutece: resources, names, workload states. No IO, no clock, no randomness.

mod job;
mod names;
pub mod residency;
mod resources;

pub use job::{JobState, TaskState};
pub use names::{MAX_NAME_LEN, NameError, validate_name};
pub use resources::{ResourceError, Resources, parse_cpus, parse_memory};

/// Limits that keep a single request from describing something absurd.
pub mod limits {
    /// The most nodes one gang may span.
    pub const MAX_NODES_PER_JOB: u32 = 4096;
    /// The most GPUs one task may ask for.
    pub const MAX_GPUS_PER_TASK: u32 = 1024;
    /// The most CPUs (in millicores) one task may ask for: 16,384 cores.
    pub const MAX_CPUS_MILLI: u64 = 16_384_000;
    /// The most memory one task may ask for: 64 TiB.
    pub const MAX_MEMORY_BYTES: u64 = 64 << 40;
    /// The most arguments a job's command may have.
    pub const MAX_COMMAND_ARGS: usize = 4096;
    /// The most bytes of one command argument or environment value.
    pub const MAX_ARG_BYTES: usize = 128 * 1024;
    /// The most environment variables a job may set.
    pub const MAX_ENV_VARS: usize = 1024;
}
