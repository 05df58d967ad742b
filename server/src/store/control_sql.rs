//! Sync control (`migrations/*/0006_sync_control.sql`): the pause every replica obeys and the
//! destructive actions runs held for approval. One body of SQL and code for both backends; each
//! module below says how its backend binds and reads timestamps, ids and JSON.

use super::{Hold, HoldState, StoreError, SyncPause, Timestamp};
use serde_json::Value;
use uuid::Uuid;

const SELECT_PAUSE: &str = "SELECT paused_at, reason, paused_by FROM sync_pause WHERE id = 1";
/// The first pause stays: pausing again does not overwrite who paused, when and why.
const INSERT_PAUSE: &str = "INSERT INTO sync_pause (id, paused_at, reason, paused_by) \
     VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING";
const DELETE_PAUSE: &str =
    "DELETE FROM sync_pause WHERE id = 1 RETURNING paused_at, reason, paused_by";
const GET_HOLD: &str = "SELECT run_id, held_at, state, action_keys, actions, approved_at, \
     approved_by, closed_at, closed_by_run FROM sync_holds WHERE run_id = $1";
const OPEN_HOLDS: &str = "SELECT run_id, held_at, state, action_keys, actions, approved_at, \
     approved_by, closed_at, closed_by_run FROM sync_holds \
     WHERE state IN ('pending', 'approved') ORDER BY held_at, run_id";
const INSERT_HOLD: &str = "INSERT INTO sync_holds (run_id, held_at, state, action_keys, actions, \
     approved_at, approved_by, closed_at, closed_by_run) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const APPROVE_HOLD: &str = "UPDATE sync_holds SET state = 'approved', approved_at = $2, \
     approved_by = $3 WHERE run_id = $1 AND state = 'pending'";
const CLOSE_HOLD: &str = "UPDATE sync_holds SET state = $3, closed_at = $4, closed_by_run = $5 \
     WHERE run_id = $1 AND state = $2";

fn keys_of(v: Value) -> Result<Vec<String>, StoreError> {
    serde_json::from_value(v)
        .map_err(|e| StoreError::Corrupt(format!("bad action_keys in sync_holds: {e}")))
}

fn list_of(v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(StoreError::Corrupt(format!("bad actions in sync_holds: {other}"))),
    }
}

macro_rules! control_functions {
    ($pool:ty, $row:ty) => {
        use super::*;
        use sqlx::Row;

        fn pause_of(r: &$row) -> Result<SyncPause, StoreError> {
            Ok(SyncPause {
                since: read_ts(r, "paused_at")?,
                reason: r.try_get("reason")?,
                by: r.try_get("paused_by")?,
            })
        }

        fn hold_of(r: &$row) -> Result<Hold, StoreError> {
            let state: String = r.try_get("state")?;
            Ok(Hold {
                run_id: read_uuid(r, "run_id")?,
                held_at: read_ts(r, "held_at")?,
                state: HoldState::parse(&state)?,
                action_keys: keys_of(read_json(r, "action_keys")?)?,
                actions: list_of(read_json(r, "actions")?)?,
                approved_at: read_opt_ts(r, "approved_at")?,
                approved_by: r.try_get("approved_by")?,
                closed_at: read_opt_ts(r, "closed_at")?,
                closed_by_run: read_opt_uuid(r, "closed_by_run")?,
            })
        }

        pub async fn sync_pause(pool: &$pool) -> Result<Option<SyncPause>, StoreError> {
            sqlx::query(SELECT_PAUSE).fetch_optional(pool).await?.as_ref().map(pause_of).transpose()
        }

        pub async fn pause_sync(pool: &$pool, p: &SyncPause) -> Result<SyncPause, StoreError> {
            sqlx::query(INSERT_PAUSE)
                .bind(ts(&p.since))
                .bind(&p.reason)
                .bind(&p.by)
                .execute(pool)
                .await?;
            // The pause in force: this one, or the one that was there first.
            sync_pause(pool).await?.ok_or_else(|| {
                StoreError::Corrupt("sync_pause: the pause just written is gone".into())
            })
        }

        pub async fn resume_sync(pool: &$pool) -> Result<Option<SyncPause>, StoreError> {
            sqlx::query(DELETE_PAUSE).fetch_optional(pool).await?.as_ref().map(pause_of).transpose()
        }

        pub async fn put_hold(pool: &$pool, h: &Hold) -> Result<(), StoreError> {
            sqlx::query(INSERT_HOLD)
                .bind(id(h.run_id))
                .bind(ts(&h.held_at))
                .bind(h.state.as_str())
                .bind(json(&serde_json::json!(h.action_keys)))
                .bind(json(&Value::Array(h.actions.clone())))
                .bind(h.approved_at.as_ref().map(ts))
                .bind(&h.approved_by)
                .bind(h.closed_at.as_ref().map(ts))
                .bind(h.closed_by_run.map(id))
                .execute(pool)
                .await?;
            Ok(())
        }

        pub async fn get_hold(pool: &$pool, run_id: Uuid) -> Result<Option<Hold>, StoreError> {
            sqlx::query(GET_HOLD)
                .bind(id(run_id))
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(hold_of)
                .transpose()
        }

        pub async fn open_holds(pool: &$pool) -> Result<Vec<Hold>, StoreError> {
            sqlx::query(OPEN_HOLDS).fetch_all(pool).await?.iter().map(hold_of).collect()
        }

        pub async fn approve_hold(
            pool: &$pool,
            run_id: Uuid,
            by: &str,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(APPROVE_HOLD)
                .bind(id(run_id))
                .bind(ts(&at))
                .bind(by)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }

        pub async fn close_hold(
            pool: &$pool,
            run_id: Uuid,
            from: HoldState,
            to: HoldState,
            by_run: Uuid,
            at: Timestamp,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(CLOSE_HOLD)
                .bind(id(run_id))
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(ts(&at))
                .bind(id(by_run))
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        }
    };
}

/// PostgreSQL: native TIMESTAMPTZ, UUID and JSONB columns.
pub mod postgres {
    use sqlx::postgres::PgRow;

    fn ts(t: &Timestamp) -> Timestamp {
        *t
    }
    fn id(u: Uuid) -> Uuid {
        u
    }
    fn json(v: &Value) -> Value {
        v.clone()
    }
    fn read_ts(r: &PgRow, col: &str) -> Result<Timestamp, StoreError> {
        Ok(r.try_get(col)?)
    }
    fn read_opt_ts(r: &PgRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(r.try_get(col)?)
    }
    fn read_uuid(r: &PgRow, col: &str) -> Result<Uuid, StoreError> {
        Ok(r.try_get(col)?)
    }
    fn read_opt_uuid(r: &PgRow, col: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(r.try_get(col)?)
    }
    fn read_json(r: &PgRow, col: &str) -> Result<Value, StoreError> {
        Ok(r.try_get(col)?)
    }

    control_functions!(sqlx::PgPool, PgRow);
}

/// SQLite: timestamps, ids and JSON as TEXT.
pub mod sqlite {
    use crate::store::sqlite::{get_opt_ts, get_ts, get_uuid};
    use sqlx::sqlite::SqliteRow;

    fn ts(t: &Timestamp) -> String {
        crate::store::format_timestamp(t)
    }
    fn id(u: Uuid) -> String {
        u.to_string()
    }
    fn json(v: &Value) -> String {
        v.to_string()
    }
    fn read_ts(r: &SqliteRow, col: &str) -> Result<Timestamp, StoreError> {
        get_ts(r, col)
    }
    fn read_opt_ts(r: &SqliteRow, col: &str) -> Result<Option<Timestamp>, StoreError> {
        get_opt_ts(r, col)
    }
    fn read_uuid(r: &SqliteRow, col: &str) -> Result<Uuid, StoreError> {
        get_uuid(r, col)
    }
    fn read_opt_uuid(r: &SqliteRow, col: &str) -> Result<Option<Uuid>, StoreError> {
        match r.try_get::<Option<String>, _>(col)? {
            None => Ok(None),
            Some(_) => get_uuid(r, col).map(Some),
        }
    }
    fn read_json(r: &SqliteRow, col: &str) -> Result<Value, StoreError> {
        let text: String = r.try_get(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("bad JSON in sync_holds.{col}: {e}")))
    }

    control_functions!(sqlx::SqlitePool, SqliteRow);
}
