//! The sync engine's entry points, where commands, the admin API and the scheduler have
//! always found them. The engine itself is [`super::run`] (one run, as phases) and
//! [`super::principals`] (planning and applying users, groups and memberships).

pub use super::error::SyncError;
pub use super::run::{
    ActionKind, Counts, Progress, RunOptions, RunReport, SyncConfig, SyncTimings, record_abandoned,
    record_requested, run, run_exclusive,
};
