//! The pending set (the [`Pending`] role, `migrations/*/0008_sync_pending.sql`). Rows are
//! written by a trigger on `change_journal`, in the transaction of the write they record;
//! here they are read, summarised and cleared.

use super::journal::entry_of;
use super::{SqlStore, retry_transient};
use crate::store::backend::{Access, Backend, Bind, Dialect, RowExt, binds};
use crate::store::roles::Pending;
use crate::store::{PendingChange, PendingHistory, PendingSummary, StoreError, kind_of};
use async_trait::async_trait;

const SELECT_PENDING: &str =
    "SELECT resource_type, resource_id, mark FROM sync_pending ORDER BY mark LIMIT $1";
const SUMMARY: &str = "SELECT COUNT(*) AS n, COALESCE(MAX(mark), 0) AS newest_mark, \
     MAX(marked_at) AS newest_at FROM sync_pending";
/// The journal rows of the pending resources from each one's `first_mark`: read from the pending
/// set, each resource's rows by the journal's resource index, so the cost follows what is
/// pending and not the journal's length ([`Dialect::join_driven_by_left`]; SQLite otherwise
/// walks the whole journal in `seq` order). Only a group's membership changes keep their
/// `detail`: nothing else of it is read, and a group created with 100 members names them all.
fn history_sql(dialect: Dialect) -> String {
    format!(
        "SELECT j.seq, j.at, j.source_id, j.token_id, j.resource_type, j.resource_id, j.action, \
         CASE WHEN j.resource_type = 'Group' AND j.action IN ('replace', 'patch', 'member_deleted') \
         THEN j.detail END AS detail FROM sync_pending p {} change_journal j \
         ON j.resource_type = p.resource_type AND j.resource_id = p.resource_id AND j.seq >= p.first_mark \
         ORDER BY j.seq LIMIT $1",
        dialect.join_driven_by_left()
    )
}
/// Pending resources whose oldest row since they became pending is no longer in the journal.
const UNEXPLAINED: &str = "SELECT p.resource_type, p.resource_id FROM sync_pending p \
     WHERE NOT EXISTS (SELECT 1 FROM change_journal j WHERE j.seq = p.first_mark)";
/// Rows cleared per statement (three parameters each: well below either database's limit).
const CLEAR_CHUNK: usize = 500;

fn change_of<R: RowExt>(row: &R) -> Result<PendingChange, StoreError> {
    Ok(PendingChange {
        kind: kind_of(&row.text("resource_type")?)?,
        resource_id: row.uuid("resource_id")?,
        mark: row.int("mark")?,
    })
}

/// `DELETE … WHERE (resource_type, resource_id, mark) IN (VALUES ($1, $2, $3), …)` for `n`
/// rows: the same text on both databases (row values), typed by the binds.
fn clear_sql(n: usize) -> String {
    let rows: Vec<String> =
        (0..n).map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3)).collect();
    format!(
        "DELETE FROM sync_pending WHERE (resource_type, resource_id, mark) IN (VALUES {})",
        rows.join(", ")
    )
}

#[async_trait]
impl<B: Backend> Pending for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(limit), level = "debug")]
    async fn pending_changes(&self, limit: i64) -> Result<Vec<PendingChange>, StoreError> {
        let rows = self.backend.fetch_all(Access::Read, SELECT_PENDING, binds![limit]).await?;
        rows.iter().map(change_of).collect()
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn pending_summary(&self) -> Result<PendingSummary, StoreError> {
        let row = self.backend.fetch_one(Access::Read, SUMMARY, Vec::new()).await?;
        Ok(PendingSummary {
            count: row.int("n")?,
            newest_mark: row.int("newest_mark")?,
            newest_at: row.opt_ts("newest_at")?,
        })
    }

    #[tracing::instrument(skip_all, fields(changes = changes.len()), level = "debug")]
    async fn clear_pending(&self, changes: &[PendingChange]) -> Result<u64, StoreError> {
        let mut cleared = 0;
        for chunk in changes.chunks(CLEAR_CHUNK) {
            let sql = clear_sql(chunk.len());
            let binds: Vec<Bind> =
                chunk.iter().flat_map(|c| binds![c.kind.name(), c.resource_id, c.mark]).collect();
            // A write marking one of these rows and another row this statement already
            // deleted can deadlock with it on PostgreSQL; one of the two is retried.
            cleared += retry_transient(|| {
                let binds = binds.clone();
                let sql = sql.as_str();
                async move { self.backend.execute(Access::Write, sql, binds).await }
            })
            .await?;
        }
        Ok(cleared)
    }

    #[tracing::instrument(skip_all, fields(limit), level = "debug")]
    async fn pending_history(&self, limit: i64) -> Result<PendingHistory, StoreError> {
        let rows =
            self.backend.fetch_all(Access::Read, &history_sql(B::DIALECT), binds![limit]).await?;
        let rows = rows.iter().map(entry_of).collect::<Result<_, _>>()?;
        let gone = self.backend.fetch_all(Access::Read, UNEXPLAINED, Vec::new()).await?;
        let unexplained = gone
            .iter()
            .map(|r| Ok((kind_of(&r.text("resource_type")?)?, r.uuid("resource_id")?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(PendingHistory { rows, unexplained })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    /// A change run's journal read must start from the pending set and find each resource's
    /// rows by the journal's index: SQLite chose to walk the whole journal in `seq` order (to
    /// save a sort), 40 ms per change run after a load of 110,000 resources.
    #[tokio::test]
    async fn sqlite_reads_the_history_from_the_pending_set_not_the_whole_journal() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = crate::store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {}", history_sql(Dialect::Sqlite));
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(10_i64).fetch_all(&pool).await.unwrap();
        let plan: Vec<String> = rows.iter().map(|r| r.get("detail")).collect();
        assert!(plan.iter().any(|d| d == "SCAN p"), "{plan:?}");
        assert!(plan.iter().any(|d| d.starts_with("SEARCH j USING INDEX")), "{plan:?}");
        assert!(!plan.iter().any(|d| d == "SCAN j"), "{plan:?}");
        pool.close().await;
    }

    #[test]
    fn the_clear_statement_has_three_parameters_per_row() {
        assert_eq!(
            clear_sql(2),
            "DELETE FROM sync_pending WHERE (resource_type, resource_id, mark) IN \
             (VALUES ($1, $2, $3), ($4, $5, $6))"
        );
    }
}
