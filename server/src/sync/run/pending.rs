//! The run's share of the pending set (`sync_pending`, the [`crate::store::Pending`] role): a
//! run reads the pending resources before it reads the SCIM side, and a real run that
//! succeeded clears exactly those it read, each only if it has not changed since (a change
//! made while the run ran stays pending, whatever order PostgreSQL made it visible in).
//!
//! A run that failed, was refused or is `partial` clears nothing: what it did not finish is
//! still pending, and the next run covers it.

use super::report::RunReport;
use crate::store::{PendingChange, RunStatus, Store};
use crate::sync::error::SyncError;

/// At most this many pending resources are read by one run; the rest stay pending for the
/// next (an initial load of a large directory is covered in several runs' clears).
pub const READ_AT_MOST: i64 = 50_000;

/// The pending resources a run read at its start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingRead {
    /// Oldest mark first.
    pub changes: Vec<PendingChange>,
    /// Every pending resource was read (false: more than [`READ_AT_MOST`] were pending; the
    /// others stay pending for the next run).
    pub complete: bool,
}

/// Reads the pending resources (every real run does; a dry run neither plans from them nor
/// clears them).
pub(super) async fn read(store: &dyn Store) -> Result<PendingRead, SyncError> {
    let mut changes = store.pending_changes(READ_AT_MOST + 1).await?;
    let complete = changes.len() as i64 <= READ_AT_MOST;
    changes.truncate(READ_AT_MOST as usize);
    Ok(PendingRead { changes, complete })
}

/// Clears what the run read when it covered it: a real run that succeeded. A clear that fails
/// leaves the rows pending (another run covers them again), so it is logged, not fatal.
pub(super) async fn clear_covered(store: &dyn Store, report: &RunReport) {
    if report.dry_run || report.status != RunStatus::Succeeded || report.pending.changes.is_empty()
    {
        return;
    }
    match store.clear_pending(&report.pending.changes).await {
        Ok(cleared) => tracing::debug!(
            run_id = %report.run_id, read = report.pending.changes.len(), cleared,
            "sync: pending changes covered"
        ),
        Err(e) => tracing::warn!(
            run_id = %report.run_id, error = %e,
            "sync: cannot clear the pending changes this run covered; the next run covers them"
        ),
    }
}
