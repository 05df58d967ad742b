//! SQLite: the sync engine's reads of the SCIM side and its own state (see
//! `migrations/sqlite/0002_aws_sync.sql`). Writes go through the single writer connection.

use super::columns::member_type_of;
use super::sqlite::{get_opt_ts, get_ts, get_uuid, ts};
use super::sync_sql::*;
use super::{
    AuditEntry, AuditQuery, AuditRow, AwsMembership, AwsPrincipal, FailureKind, IdentityStoreRef,
    Ownership, PendingCreate, Removals, RunRecord, ServingRules, Snapshot, SnapshotGroup,
    SnapshotUser, StoreError, SyncCounts, SyncFailure, SyncHealthRecord, SyncState,
};
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

fn json(row: &SqliteRow, col: &str) -> Result<Value, StoreError> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("bad JSON in {col}: {e}")))
}

pub async fn snapshot(readers: &SqlitePool) -> Result<Snapshot, StoreError> {
    // One read transaction: WAL gives it one consistent view.
    let mut tx = readers.begin().await?;
    let users = sqlx::query(SELECT_USERS)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(SnapshotUser {
                id: get_uuid(r, "id")?,
                doc: json(r, "doc")?,
                active: r.try_get("active")?,
                source: r.try_get("source")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let groups = sqlx::query(SELECT_GROUPS)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(SnapshotGroup {
                id: get_uuid(r, "id")?,
                doc: json(r, "doc")?,
                source: r.try_get("source")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let members = sqlx::query(SELECT_MEMBERS)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            let t: String = r.try_get("member_type")?;
            Ok((get_uuid(r, "group_id")?, get_uuid(r, "member_id")?, member_type_of(&t)))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    tx.commit().await?;
    Ok(Snapshot { users, groups, members })
}

pub async fn sync_state(readers: &SqlitePool) -> Result<SyncState, StoreError> {
    let principals = sqlx::query(SELECT_PRINCIPALS)
        .fetch_all(readers)
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let ownership: String = r.try_get("ownership")?;
            Ok(AwsPrincipal {
                kind: kind_of(&kind)?,
                resource_id: get_uuid(r, "resource_id")?,
                aws_id: r.try_get("aws_id")?,
                ownership: Ownership::parse(&ownership)?,
                name: r.try_get("name")?,
                pushed: json(r, "pushed")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let memberships = sqlx::query(SELECT_MEMBERSHIPS)
        .fetch_all(readers)
        .await?
        .iter()
        .map(|r| {
            Ok(AwsMembership {
                group_id: get_uuid(r, "group_id")?,
                user_id: get_uuid(r, "user_id")?,
                membership_id: r.try_get("membership_id")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(SyncState { principals, memberships })
}

pub async fn put_principal(writer: &SqlitePool, p: &AwsPrincipal) -> Result<(), StoreError> {
    sqlx::query(PUT_PRINCIPAL)
        .bind(p.kind.name())
        .bind(p.resource_id.to_string())
        .bind(&p.aws_id)
        .bind(p.ownership.as_str())
        .bind(&p.name)
        .bind(p.pushed.to_string())
        .bind(ts(&super::now()))
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn remove_principal(
    writer: &SqlitePool,
    kind: ResourceKind,
    resource_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(REMOVE_PRINCIPAL)
        .bind(kind.name())
        .bind(resource_id.to_string())
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn put_membership(writer: &SqlitePool, m: &AwsMembership) -> Result<(), StoreError> {
    sqlx::query(PUT_MEMBERSHIP)
        .bind(m.group_id.to_string())
        .bind(m.user_id.to_string())
        .bind(&m.membership_id)
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn remove_membership(
    writer: &SqlitePool,
    group_id: Uuid,
    user_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(REMOVE_MEMBERSHIP)
        .bind(group_id.to_string())
        .bind(user_id.to_string())
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn save_run(writer: &SqlitePool, run: &RunRecord) -> Result<(), StoreError> {
    sqlx::query(SAVE_RUN)
        .bind(run.id.to_string())
        .bind(&run.trigger)
        .bind(run.dry_run)
        .bind(&run.status)
        .bind(ts(&run.started_at))
        .bind(run.finished_at.as_ref().map(ts))
        .bind(run.report.to_string())
        .bind(run.journal_head)
        .bind(run.forced)
        .bind(run.removals.principals as i64)
        .bind(run.removals.memberships as i64)
        .bind(run.removals.assignments as i64)
        .bind(&run.rules_fingerprint)
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn append_audit(writer: &SqlitePool, row: &AuditRow) -> Result<(), StoreError> {
    sqlx::query(APPEND_AUDIT)
        .bind(ts(&row.at))
        .bind(row.run_id.to_string())
        .bind(&row.action)
        .bind(&row.kind)
        .bind(&row.name)
        .bind(&row.aws_id)
        .bind(row.detail.as_ref().map(Value::to_string))
        .execute(writer)
        .await?;
    Ok(())
}

fn run_of(r: &SqliteRow) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: get_uuid(r, "id")?,
        trigger: r.try_get("trigger")?,
        dry_run: r.try_get("dry_run")?,
        status: r.try_get("status")?,
        started_at: get_ts(r, "started_at")?,
        finished_at: get_opt_ts(r, "finished_at")?,
        journal_head: r.try_get("journal_head")?,
        forced: r.try_get("forced")?,
        removals: removals_of(r)?,
        report: json(r, "report")?,
        rules_fingerprint: r.try_get("rules_fingerprint")?,
    })
}

pub async fn serving_rules(readers: &SqlitePool) -> Result<Option<ServingRules>, StoreError> {
    let Some(r) = sqlx::query(SERVING_RULES).fetch_optional(readers).await? else {
        return Ok(None);
    };
    Ok(Some(ServingRules {
        run_id: get_uuid(&r, "id")?,
        trigger: r.try_get("trigger")?,
        started_at: get_ts(&r, "started_at")?,
        fingerprint: r.try_get("rules_fingerprint")?,
    }))
}

pub async fn sync_health(readers: &SqlitePool) -> Result<SyncHealthRecord, StoreError> {
    let Some(r) = sqlx::query(SELECT_SYNC_HEALTH).fetch_optional(readers).await? else {
        return Ok(SyncHealthRecord::default());
    };
    let identity_store = match (
        r.try_get::<Option<String>, _>("identity_store_id")?,
        get_opt_ts(&r, "connected_at")?,
    ) {
        (Some(id), Some(connected_at)) => Some(IdentityStoreRef {
            id,
            instance_arn: r.try_get("instance_arn")?,
            region: r.try_get("region")?,
            connected_at,
        }),
        _ => None,
    };
    let failure = match (r.try_get::<Option<String>, _>("failure")?, get_opt_ts(&r, "error_at")?) {
        (Some(kind), Some(at)) => Some(SyncFailure {
            kind: FailureKind::parse(&kind)?,
            message: r.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
            at,
            run_id: match r.try_get::<Option<String>, _>("error_run_id")? {
                Some(_) => Some(get_uuid(&r, "error_run_id")?),
                None => None,
            },
        }),
        _ => None,
    };
    Ok(SyncHealthRecord { identity_store, failure })
}

pub async fn set_sync_failure(
    writer: &SqlitePool,
    failure: Option<&SyncFailure>,
) -> Result<(), StoreError> {
    sqlx::query(SET_SYNC_FAILURE)
        .bind(failure.map(|f| f.kind.as_str()))
        .bind(failure.map(|f| f.message.as_str()))
        .bind(failure.map(|f| ts(&f.at)))
        .bind(failure.and_then(|f| f.run_id).map(|id| id.to_string()))
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn set_identity_store(
    writer: &SqlitePool,
    store: &IdentityStoreRef,
) -> Result<(), StoreError> {
    sqlx::query(SET_IDENTITY_STORE)
        .bind(&store.id)
        .bind(&store.instance_arn)
        .bind(&store.region)
        .bind(ts(&store.connected_at))
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn recent_removals(
    readers: &SqlitePool,
    since: crate::store::Timestamp,
) -> Result<Removals, StoreError> {
    let r = sqlx::query(RECENT_REMOVALS)
        .bind(ts(&since))
        .bind(false)
        .bind(true)
        .fetch_one(readers)
        .await?;
    removals_of(&r)
}

pub async fn list_runs(readers: &SqlitePool, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
    sqlx::query(LIST_RUNS).bind(limit).fetch_all(readers).await?.iter().map(run_of).collect()
}

pub async fn get_run(readers: &SqlitePool, id: Uuid) -> Result<Option<RunRecord>, StoreError> {
    sqlx::query(GET_RUN)
        .bind(id.to_string())
        .fetch_optional(readers)
        .await?
        .as_ref()
        .map(run_of)
        .transpose()
}

pub async fn list_audit(
    readers: &SqlitePool,
    q: &AuditQuery,
) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(LIST_AUDIT)
        .bind(ts(&q.since))
        .bind(q.after_seq)
        .bind(q.limit)
        .fetch_all(readers)
        .await?
        .iter()
        .map(|r| {
            let detail: Option<String> = r.try_get("detail")?;
            Ok(AuditEntry {
                seq: r.try_get("seq")?,
                at: get_ts(r, "at")?,
                run_id: get_uuid(r, "run_id")?,
                action: r.try_get("action")?,
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                aws_id: r.try_get("aws_id")?,
                detail: detail.map(|d| serde_json::from_str(&d)).transpose().map_err(|e| {
                    StoreError::Corrupt(format!("bad JSON in audit_log.detail: {e}"))
                })?,
            })
        })
        .collect()
}

pub async fn sync_counts(readers: &SqlitePool) -> Result<SyncCounts, StoreError> {
    let per_source = sqlx::query(COUNT_PER_SOURCE)
        .fetch_all(readers)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("source_id")?, r.try_get("users")?, r.try_get("groups")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let r = sqlx::query(COUNT_PRINCIPALS).fetch_one(readers).await?;
    Ok(SyncCounts {
        per_source,
        aws_users: r.try_get("aws_users")?,
        aws_groups: r.try_get("aws_groups")?,
        aws_memberships: r.try_get("aws_memberships")?,
        aws_account_assignments: r.try_get("aws_account_assignments")?,
        aws_application_assignments: r.try_get("aws_application_assignments")?,
        pending_journal_entries: r.try_get("pending")?,
    })
}

pub async fn put_pending_create(writer: &SqlitePool, p: &PendingCreate) -> Result<(), StoreError> {
    sqlx::query(PUT_PENDING_CREATE)
        .bind(p.kind.name())
        .bind(p.resource_id.to_string())
        .bind(&p.name)
        .bind(ts(&super::now()))
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn remove_pending_create(
    writer: &SqlitePool,
    kind: ResourceKind,
    resource_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(REMOVE_PENDING_CREATE)
        .bind(kind.name())
        .bind(resource_id.to_string())
        .execute(writer)
        .await?;
    Ok(())
}

pub async fn pending_creates(readers: &SqlitePool) -> Result<Vec<PendingCreate>, StoreError> {
    sqlx::query(SELECT_PENDING_CREATES)
        .fetch_all(readers)
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(PendingCreate {
                kind: kind_of(&kind)?,
                resource_id: get_uuid(r, "resource_id")?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}
