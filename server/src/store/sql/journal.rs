//! The change journal's feed (the [`Journal`] role); rows are appended by the resource writes
//! ([`super::steps::Steps::journal`]), inside their transactions.

use super::SqlStore;
use crate::store::backend::{Access, Backend, RowExt, binds};
use crate::store::roles::Journal;
use crate::store::{JournalAction, JournalEntry, StoreError, kind_of};
use async_trait::async_trait;

pub(super) fn entry_of<R: RowExt>(row: &R) -> Result<JournalEntry, StoreError> {
    Ok(JournalEntry {
        seq: row.int("seq")?,
        at: row.ts("at")?,
        source_id: row.int("source_id")?,
        token_id: row.opt_uuid("token_id")?,
        resource_type: kind_of(&row.text("resource_type")?)?,
        resource_id: row.uuid("resource_id")?.to_string(),
        action: JournalAction::parse(&row.text("action")?)?,
        detail: row.opt_json("detail")?,
    })
}

#[async_trait]
impl<B: Backend> Journal for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(after_seq, limit), level = "debug")]
    async fn journal_since(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let sql = "SELECT seq, at, source_id, token_id, resource_type, resource_id, action, detail \
             FROM change_journal WHERE seq > $1 ORDER BY seq LIMIT $2";
        let rows = self.backend.fetch_all(Access::Read, sql, binds![after_seq, limit]).await?;
        rows.iter().map(entry_of).collect()
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn journal_head(&self) -> Result<i64, StoreError> {
        let sql = "SELECT COALESCE(MAX(seq), 0) AS head FROM change_journal";
        self.backend.fetch_one(Access::Read, sql, Vec::new()).await?.int("head")
    }
}
