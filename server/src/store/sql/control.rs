//! Sync control (the [`Control`] role, `migrations/*/0006_sync_control.sql`): the pause every
//! replica obeys and the destructive actions runs held for approval.

use super::SqlStore;
use crate::store::backend::{Access, Backend, Bind, RowExt, binds};
use crate::store::roles::Control;
use crate::store::{Hold, HoldState, StoreError, SyncPause, Timestamp};
use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

const SELECT_PAUSE: &str = "SELECT paused_at, reason, paused_by FROM sync_pause WHERE id = 1";
/// The first pause stays: pausing again does not overwrite who paused, when and why.
const INSERT_PAUSE: &str = "INSERT INTO sync_pause (id, paused_at, reason, paused_by) \
     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING";
const DELETE_PAUSE: &str =
    "DELETE FROM sync_pause WHERE id = 1 RETURNING paused_at, reason, paused_by";
const SELECT_HOLDS: &str = "SELECT run_id, held_at, state, action_keys, actions, approved_at, \
     approved_by, closed_at, closed_by_run FROM sync_holds";
const INSERT_HOLD: &str = "INSERT INTO sync_holds (run_id, held_at, state, action_keys, actions, \
     approved_at, approved_by, closed_at, closed_by_run) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const APPROVE_HOLD: &str = "UPDATE sync_holds SET state = 'approved', approved_at = $2, \
     approved_by = $3 WHERE run_id = $1 AND state = 'pending'";
const CLOSE_HOLD: &str = "UPDATE sync_holds SET state = $3, closed_at = $4, closed_by_run = $5 \
     WHERE run_id = $1 AND state = $2";

fn pause_of<R: RowExt>(r: &R) -> Result<SyncPause, StoreError> {
    Ok(SyncPause {
        since: r.ts("paused_at")?,
        reason: r.opt_text("reason")?,
        by: r.text("paused_by")?,
    })
}

fn hold_of<R: RowExt>(r: &R) -> Result<Hold, StoreError> {
    let action_keys = serde_json::from_value(r.json("action_keys")?)
        .map_err(|e| StoreError::Corrupt(format!("bad action_keys in sync_holds: {e}")))?;
    let actions = match r.json("actions")? {
        Value::Array(a) => a,
        other => return Err(StoreError::Corrupt(format!("bad actions in sync_holds: {other}"))),
    };
    Ok(Hold {
        run_id: r.uuid("run_id")?,
        held_at: r.ts("held_at")?,
        state: HoldState::parse(&r.text("state")?)?,
        action_keys,
        actions,
        approved_at: r.opt_ts("approved_at")?,
        approved_by: r.opt_text("approved_by")?,
        closed_at: r.opt_ts("closed_at")?,
        closed_by_run: r.opt_uuid("closed_by_run")?,
    })
}

impl<B: Backend> SqlStore<B> {
    /// The pause in force, read on `on` (the writer right after a write on SQLite).
    async fn pause_on(&self, on: Access) -> Result<Option<SyncPause>, StoreError> {
        let row = self.backend.fetch_optional(on, SELECT_PAUSE, Vec::new()).await?;
        row.as_ref().map(pause_of).transpose()
    }
}

#[async_trait]
impl<B: Backend> Control for SqlStore<B> {
    #[tracing::instrument(skip_all, level = "debug")]
    async fn sync_pause(&self) -> Result<Option<SyncPause>, StoreError> {
        self.pause_on(Access::Read).await
    }

    #[tracing::instrument(skip_all, fields(by = %pause.by), level = "debug")]
    async fn pause_sync(&self, pause: &SyncPause) -> Result<SyncPause, StoreError> {
        let binds = binds![pause.since, pause.reason.as_deref(), &pause.by];
        self.backend.execute(Access::Write, INSERT_PAUSE, binds).await?;
        // The pause in force: this one, or the one that was there first.
        self.pause_on(Access::Write)
            .await?
            .ok_or_else(|| StoreError::Corrupt("sync_pause: the pause just written is gone".into()))
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn resume_sync(&self) -> Result<Option<SyncPause>, StoreError> {
        let row = self.backend.fetch_optional(Access::Write, DELETE_PAUSE, Vec::new()).await?;
        row.as_ref().map(pause_of).transpose()
    }

    #[tracing::instrument(skip_all, fields(run_id = %h.run_id), level = "debug")]
    async fn put_hold(&self, h: &Hold) -> Result<(), StoreError> {
        let binds = vec![
            Bind::Id(h.run_id),
            Bind::Time(h.held_at),
            Bind::from(h.state.as_str()),
            Bind::Json(serde_json::json!(h.action_keys)),
            Bind::Json(Value::Array(h.actions.clone())),
            Bind::from(h.approved_at),
            Bind::from(h.approved_by.as_deref()),
            Bind::from(h.closed_at),
            Bind::from(h.closed_by_run),
        ];
        self.backend.execute(Access::Write, INSERT_HOLD, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(%run_id), level = "debug")]
    async fn get_hold(&self, run_id: Uuid) -> Result<Option<Hold>, StoreError> {
        let sql = format!("{SELECT_HOLDS} WHERE run_id = $1");
        let row = self.backend.fetch_optional(Access::Read, &sql, binds![run_id]).await?;
        row.as_ref().map(hold_of).transpose()
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn open_holds(&self) -> Result<Vec<Hold>, StoreError> {
        let sql = format!(
            "{SELECT_HOLDS} WHERE state IN ('pending', 'approved') ORDER BY held_at, run_id"
        );
        let rows = self.backend.fetch_all(Access::Read, &sql, Vec::new()).await?;
        rows.iter().map(hold_of).collect()
    }

    #[tracing::instrument(skip_all, fields(%run_id, by), level = "debug")]
    async fn approve_hold(
        &self,
        run_id: Uuid,
        by: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let binds = binds![run_id, at, by];
        Ok(self.backend.execute(Access::Write, APPROVE_HOLD, binds).await? == 1)
    }

    #[tracing::instrument(skip_all, fields(%run_id, from = from.as_str(), to = to.as_str()), level = "debug")]
    async fn close_hold(
        &self,
        run_id: Uuid,
        from: HoldState,
        to: HoldState,
        by_run: Uuid,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let binds = binds![run_id, from.as_str(), to.as_str(), at, by_run];
        Ok(self.backend.execute(Access::Write, CLOSE_HOLD, binds).await? == 1)
    }
}
