//! PostgreSQL: the sync engine's reads of the SCIM side and its own state (see
//! `migrations/postgres/0002_aws_sync.sql`).

use super::columns::member_type_of;
use super::sync_sql::*;
use super::{
    AuditEntry, AuditQuery, AuditRow, AwsMembership, AwsPrincipal, FailureKind, IdentityStoreRef,
    Ownership, PendingCreate, Removals, RunRecord, ServingRules, Snapshot, SnapshotGroup,
    SnapshotUser, StoreError, SyncCounts, SyncFailure, SyncHealthRecord, SyncState,
};
use scim_schema::schema::ResourceKind;
use sqlx::{PgPool, Row};
use uuid::Uuid;

pub async fn snapshot(pool: &PgPool) -> Result<Snapshot, StoreError> {
    // One snapshot: a membership never names a user the same read did not see.
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let users = sqlx::query(SELECT_USERS)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(SnapshotUser {
                id: r.try_get("id")?,
                doc: r.try_get("doc")?,
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
                id: r.try_get("id")?,
                doc: r.try_get("doc")?,
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
            Ok((r.try_get("group_id")?, r.try_get("member_id")?, member_type_of(&t)))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    tx.commit().await?;
    Ok(Snapshot { users, groups, members })
}

pub async fn sync_state(pool: &PgPool) -> Result<SyncState, StoreError> {
    let principals = sqlx::query(SELECT_PRINCIPALS)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            let ownership: String = r.try_get("ownership")?;
            Ok(AwsPrincipal {
                kind: kind_of(&kind)?,
                resource_id: r.try_get("resource_id")?,
                aws_id: r.try_get("aws_id")?,
                ownership: Ownership::parse(&ownership)?,
                name: r.try_get("name")?,
                pushed: r.try_get("pushed")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let memberships = sqlx::query(SELECT_MEMBERSHIPS)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AwsMembership {
                group_id: r.try_get("group_id")?,
                user_id: r.try_get("user_id")?,
                membership_id: r.try_get("membership_id")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(SyncState { principals, memberships })
}

pub async fn put_principal(pool: &PgPool, p: &AwsPrincipal) -> Result<(), StoreError> {
    sqlx::query(PUT_PRINCIPAL)
        .bind(p.kind.name())
        .bind(p.resource_id)
        .bind(&p.aws_id)
        .bind(p.ownership.as_str())
        .bind(&p.name)
        .bind(&p.pushed)
        .bind(super::now())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn remove_principal(
    pool: &PgPool,
    kind: ResourceKind,
    resource_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(REMOVE_PRINCIPAL).bind(kind.name()).bind(resource_id).execute(pool).await?;
    Ok(())
}

pub async fn put_membership(pool: &PgPool, m: &AwsMembership) -> Result<(), StoreError> {
    sqlx::query(PUT_MEMBERSHIP)
        .bind(m.group_id)
        .bind(m.user_id)
        .bind(&m.membership_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn remove_membership(
    pool: &PgPool,
    group_id: Uuid,
    user_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(REMOVE_MEMBERSHIP).bind(group_id).bind(user_id).execute(pool).await?;
    Ok(())
}

pub async fn save_run(pool: &PgPool, run: &RunRecord) -> Result<(), StoreError> {
    sqlx::query(SAVE_RUN)
        .bind(run.id)
        .bind(&run.trigger)
        .bind(run.dry_run)
        .bind(&run.status)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(&run.report)
        .bind(run.journal_head)
        .bind(run.forced)
        .bind(run.removals.principals as i64)
        .bind(run.removals.memberships as i64)
        .bind(run.removals.assignments as i64)
        .bind(&run.rules_fingerprint)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn append_audit(pool: &PgPool, row: &AuditRow) -> Result<(), StoreError> {
    sqlx::query(APPEND_AUDIT)
        .bind(row.at)
        .bind(row.run_id)
        .bind(&row.action)
        .bind(&row.kind)
        .bind(&row.name)
        .bind(&row.aws_id)
        .bind(&row.detail)
        .execute(pool)
        .await?;
    Ok(())
}

fn run_of(r: &sqlx::postgres::PgRow) -> Result<RunRecord, StoreError> {
    Ok(RunRecord {
        id: r.try_get("id")?,
        trigger: r.try_get("trigger")?,
        dry_run: r.try_get("dry_run")?,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        journal_head: r.try_get("journal_head")?,
        forced: r.try_get("forced")?,
        removals: removals_of(r)?,
        report: r.try_get("report")?,
        rules_fingerprint: r.try_get("rules_fingerprint")?,
    })
}

pub async fn serving_rules(pool: &PgPool) -> Result<Option<ServingRules>, StoreError> {
    let Some(r) = sqlx::query(SERVING_RULES).fetch_optional(pool).await? else {
        return Ok(None);
    };
    Ok(Some(ServingRules {
        run_id: r.try_get("id")?,
        trigger: r.try_get("trigger")?,
        started_at: r.try_get("started_at")?,
        fingerprint: r.try_get("rules_fingerprint")?,
    }))
}

pub async fn sync_health(pool: &PgPool) -> Result<SyncHealthRecord, StoreError> {
    let Some(r) = sqlx::query(SELECT_SYNC_HEALTH).fetch_optional(pool).await? else {
        return Ok(SyncHealthRecord::default());
    };
    let identity_store = match (
        r.try_get::<Option<String>, _>("identity_store_id")?,
        r.try_get::<Option<crate::store::Timestamp>, _>("connected_at")?,
    ) {
        (Some(id), Some(connected_at)) => Some(IdentityStoreRef {
            id,
            instance_arn: r.try_get("instance_arn")?,
            region: r.try_get("region")?,
            connected_at,
        }),
        _ => None,
    };
    let failure = match (
        r.try_get::<Option<String>, _>("failure")?,
        r.try_get::<Option<crate::store::Timestamp>, _>("error_at")?,
    ) {
        (Some(kind), Some(at)) => Some(SyncFailure {
            kind: FailureKind::parse(&kind)?,
            message: r.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
            at,
            run_id: r.try_get("error_run_id")?,
        }),
        _ => None,
    };
    Ok(SyncHealthRecord { identity_store, failure })
}

pub async fn set_sync_failure(
    pool: &PgPool,
    failure: Option<&SyncFailure>,
) -> Result<(), StoreError> {
    sqlx::query(SET_SYNC_FAILURE)
        .bind(failure.map(|f| f.kind.as_str()))
        .bind(failure.map(|f| f.message.as_str()))
        .bind(failure.map(|f| f.at))
        .bind(failure.and_then(|f| f.run_id))
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_identity_store(pool: &PgPool, store: &IdentityStoreRef) -> Result<(), StoreError> {
    sqlx::query(SET_IDENTITY_STORE)
        .bind(&store.id)
        .bind(&store.instance_arn)
        .bind(&store.region)
        .bind(store.connected_at)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn recent_removals(
    pool: &PgPool,
    since: crate::store::Timestamp,
) -> Result<Removals, StoreError> {
    let r = sqlx::query(RECENT_REMOVALS).bind(since).bind(false).bind(true).fetch_one(pool).await?;
    removals_of(&r)
}

pub async fn list_runs(pool: &PgPool, limit: i64) -> Result<Vec<RunRecord>, StoreError> {
    sqlx::query(LIST_RUNS).bind(limit).fetch_all(pool).await?.iter().map(run_of).collect()
}

pub async fn get_run(pool: &PgPool, id: Uuid) -> Result<Option<RunRecord>, StoreError> {
    sqlx::query(GET_RUN).bind(id).fetch_optional(pool).await?.as_ref().map(run_of).transpose()
}

pub async fn list_audit(pool: &PgPool, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
    sqlx::query(LIST_AUDIT)
        .bind(q.since)
        .bind(q.after_seq)
        .bind(q.limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(AuditEntry {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                run_id: r.try_get("run_id")?,
                action: r.try_get("action")?,
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                aws_id: r.try_get("aws_id")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

pub async fn sync_counts(pool: &PgPool) -> Result<SyncCounts, StoreError> {
    let per_source = sqlx::query(COUNT_PER_SOURCE)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("source_id")?, r.try_get("users")?, r.try_get("groups")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let r = sqlx::query(COUNT_PRINCIPALS).fetch_one(pool).await?;
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

pub async fn put_pending_create(pool: &PgPool, p: &PendingCreate) -> Result<(), StoreError> {
    sqlx::query(PUT_PENDING_CREATE)
        .bind(p.kind.name())
        .bind(p.resource_id)
        .bind(&p.name)
        .bind(super::now())
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn remove_pending_create(
    pool: &PgPool,
    kind: ResourceKind,
    resource_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query(REMOVE_PENDING_CREATE).bind(kind.name()).bind(resource_id).execute(pool).await?;
    Ok(())
}

pub async fn pending_creates(pool: &PgPool) -> Result<Vec<PendingCreate>, StoreError> {
    sqlx::query(SELECT_PENDING_CREATES)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(PendingCreate {
                kind: kind_of(&kind)?,
                resource_id: r.try_get("resource_id")?,
                name: r.try_get("name")?,
            })
        })
        .collect()
}
