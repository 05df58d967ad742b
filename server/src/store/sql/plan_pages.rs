//! A large plan's pages (the [`PlanPages`] role): one row per page, its actions stored as the
//! JSON text they were written as, so that a page reads back exactly as it was written.

use super::SqlStore;
use crate::store::StoreError;
use crate::store::backend::{Access, Backend, RowExt, binds};
use crate::store::roles::PlanPages;
use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

/// `$1` run, `$2` page, `$3` actions. A page written again (a retried write) replaces itself.
const PUT_PAGE: &str = "INSERT INTO run_plan_pages (run_id, page, actions) VALUES ($1, $2, $3) \
     ON CONFLICT (run_id, page) DO UPDATE SET actions = excluded.actions";
const SELECT_PAGE: &str = "SELECT actions FROM run_plan_pages WHERE run_id = $1 AND page = $2";
const COUNT_PAGES: &str = "SELECT COUNT(*) AS pages FROM run_plan_pages WHERE run_id = $1";

#[async_trait]
impl<B: Backend> PlanPages for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(%run_id, page, actions = actions.len()), level = "debug")]
    async fn put_plan_page(
        &self,
        run_id: Uuid,
        page: u32,
        actions: &[Value],
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(actions)
            .map_err(|e| StoreError::Corrupt(format!("a plan page is not JSON: {e}")))?;
        let binds = binds![run_id, i64::from(page), text];
        self.backend.execute(Access::Write, PUT_PAGE, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(%run_id, page), level = "debug")]
    async fn plan_page(&self, run_id: Uuid, page: u32) -> Result<Option<Vec<Value>>, StoreError> {
        let binds = binds![run_id, i64::from(page)];
        let Some(row) = self.backend.fetch_optional(Access::Read, SELECT_PAGE, binds).await? else {
            return Ok(None);
        };
        let text = row.text("actions")?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            StoreError::Corrupt(format!(
                "page {page} of run {run_id}'s plan is not a JSON array: {e}"
            ))
        })
    }

    #[tracing::instrument(skip_all, fields(%run_id), level = "debug")]
    async fn count_plan_pages(&self, run_id: Uuid) -> Result<u32, StoreError> {
        let row = self.backend.fetch_one(Access::Read, COUNT_PAGES, binds![run_id]).await?;
        let pages = row.int("pages")?;
        u32::try_from(pages)
            .map_err(|_| StoreError::Corrupt(format!("run {run_id} has {pages} plan pages")))
    }
}
