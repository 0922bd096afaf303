//! The lutece fleet simulator: replays real GPU cluster traces on a described fleet through
//! `lutece-sched` and measures what tenants and operators would see. Pure: no IO, simulated
//! time; the CLI reads the files and passes their text in.

mod csv;
pub mod fleet;
pub mod fleet_file;
pub mod openb;
pub mod reference;
pub mod replay;
pub mod report;
pub mod run;
pub mod trace;

#[cfg(test)]
mod testdata;

pub use csv::TraceError;
pub use fleet::{Fleet, FleetSpec};
pub use replay::ReplayOptions;
pub use report::{JobRecord, Summary};
pub use run::SimError;
