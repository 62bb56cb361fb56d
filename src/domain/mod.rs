//! Pure state and logic: no I/O, so it is tested without a database.

pub mod checks;
pub mod fence;
pub mod guards;
pub mod lag;
pub mod lsn;
pub mod names;
pub mod observed;
pub mod phase;
pub mod polled;
pub mod rds;
pub mod rds_plan;
pub mod redo;
pub mod schema;
pub mod sequences;
pub mod step;
/// Observed states for unit tests, snapshot tests and the dashboard benchmark.
#[doc(hidden)]
pub mod testdata;
pub mod traffic;
pub mod verify;
