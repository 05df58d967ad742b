//! Retention (the [`Retention`] role): one batch of deletes per call, each a single statement
//! (its own short transaction) that picks the oldest rows allowed to go (plan pages: any page
//! of a run allowed to go). What must stay is part of each statement, so a row is judged
//! against the table as it is when it is deleted.

use super::SqlStore;
use crate::store::backend::{Access, Backend, Dialect, binds};
use crate::store::roles::Retention;
use crate::store::{StoreError, Timestamp};
use async_trait::async_trait;

/// The newest finished real run: a run of the scheduler, an admin or the CLI that got to its
/// end (dry runs, failed and refused runs record no journal head).
const LAST_FINISHED_REAL: &str = "SELECT id FROM sync_runs WHERE dry_run = $3 \
     AND finished_at IS NOT NULL AND status IN ('succeeded', 'partial')";

/// `$1` before, `$2` limit, `$3` false. The covered head is that of the newest run that
/// recorded one (only finished real runs do); with none, nothing is covered. The rows of a
/// resource still pending (from its `first_mark`) stay: a change run reads them to know what
/// kind of change it was.
const PRUNE_JOURNAL: &str = "DELETE FROM change_journal WHERE seq IN ( \
     SELECT seq FROM change_journal WHERE at < $1 \
     AND seq <= COALESCE((SELECT journal_head FROM sync_runs WHERE journal_head IS NOT NULL \
        AND dry_run = $3 ORDER BY started_at DESC, id DESC LIMIT 1), 0) \
     AND seq < (SELECT MAX(seq) FROM change_journal) \
     AND seq < COALESCE((SELECT MIN(first_mark) FROM sync_pending), seq + 1) \
     ORDER BY seq LIMIT $2)";

/// `$1` before, `$2` limit.
const PRUNE_AUDIT: &str = "DELETE FROM audit_log WHERE seq IN ( \
     SELECT seq FROM audit_log WHERE at < $1 AND seq < (SELECT MAX(seq) FROM audit_log) \
     ORDER BY seq LIMIT $2)";

/// The runs that may go, as a `SELECT id … FROM sync_runs` (`$1` before, `$2` keep, `$3`
/// false). Every `NOT IN` list is of non-null ids (a NULL in one would keep every row).
fn prunable_runs(dialect: Dialect) -> String {
    let full = dialect.run_was_full();
    format!(
        "SELECT id FROM sync_runs WHERE status <> 'running' AND started_at < $1 \
         AND id NOT IN (SELECT id FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT $2) \
         AND id NOT IN (SELECT run_id FROM sync_holds WHERE state IN ('pending', 'approved')) \
         AND id NOT IN ({LAST_FINISHED_REAL} ORDER BY started_at DESC, id DESC LIMIT 1) \
         AND id NOT IN ({LAST_FINISHED_REAL} AND {full} ORDER BY started_at DESC, id DESC LIMIT 1) \
         AND id NOT IN (SELECT id FROM sync_runs WHERE journal_head = \
            (SELECT MAX(journal_head) FROM sync_runs)) \
         AND id NOT IN (SELECT id FROM sync_runs WHERE trigger <> 'cli' \
            AND rules_fingerprint IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1) \
         AND id NOT IN (SELECT error_run_id FROM sync_health WHERE error_run_id IS NOT NULL)"
    )
}

/// `$1` before, `$2` keep, `$3` false, `$4` limit.
fn prune_runs_sql(dialect: Dialect) -> String {
    format!(
        "DELETE FROM sync_runs WHERE id IN ({} ORDER BY started_at, id LIMIT $4)",
        prunable_runs(dialect)
    )
}

/// `$1` before, `$2` keep, `$3` false, `$4` limit: pages of the runs that may go, in no
/// particular order (they all go, and their runs after them), so that the database can stop
/// at the first `$4` it finds rather than sort every page of a backlog.
fn prune_plan_pages_sql(dialect: Dialect) -> String {
    format!(
        "DELETE FROM run_plan_pages WHERE (run_id, page) IN ( \
         SELECT run_id, page FROM run_plan_pages WHERE run_id IN ({}) LIMIT $4)",
        prunable_runs(dialect)
    )
}

/// A count as the database takes it (the settings keep them far below `i64::MAX`).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl<B: Backend> Retention for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(limit), level = "debug")]
    async fn prune_journal(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let binds = binds![before, i64::from(limit), false];
        self.backend.execute(Access::Write, PRUNE_JOURNAL, binds).await
    }

    #[tracing::instrument(skip_all, fields(limit), level = "debug")]
    async fn prune_audit(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
        let binds = binds![before, i64::from(limit)];
        self.backend.execute(Access::Write, PRUNE_AUDIT, binds).await
    }

    #[tracing::instrument(skip_all, fields(keep, limit), level = "debug")]
    async fn prune_runs(
        &self,
        keep: u64,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let binds = binds![before, int(keep), false, i64::from(limit)];
        self.backend.execute(Access::Write, &prune_runs_sql(B::DIALECT), binds).await
    }

    #[tracing::instrument(skip_all, fields(keep, limit), level = "debug")]
    async fn prune_plan_pages(
        &self,
        keep: u64,
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let binds = binds![before, int(keep), false, i64::from(limit)];
        self.backend.execute(Access::Write, &prune_plan_pages_sql(B::DIALECT), binds).await
    }
}
