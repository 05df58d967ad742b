//! PostgreSQL: the sync engine's reads of the SCIM side and its own state (see
//! `migrations/postgres/0002_aws_sync.sql`).

use super::columns::member_type_of;
use super::{
    AuditRow, AwsMembership, AwsPrincipal, Ownership, RunRecord, Snapshot, SnapshotGroup,
    SnapshotUser, StoreError, SyncState,
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
    let users = sqlx::query("SELECT id, doc, active FROM users ORDER BY seq")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(SnapshotUser {
                id: r.try_get("id")?,
                doc: r.try_get("doc")?,
                active: r.try_get("active")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let groups = sqlx::query("SELECT id, doc FROM groups ORDER BY seq")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| Ok(SnapshotGroup { id: r.try_get("id")?, doc: r.try_get("doc")? }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let members = sqlx::query("SELECT group_id, member_id, member_type FROM group_members")
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
    let principals = sqlx::query(
        "SELECT kind, resource_id, aws_id, ownership, name, pushed FROM aws_principals",
    )
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
    let memberships = sqlx::query("SELECT group_id, user_id, membership_id FROM aws_memberships")
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

pub fn kind_of(s: &str) -> Result<ResourceKind, StoreError> {
    match s {
        "User" => Ok(ResourceKind::User),
        "Group" => Ok(ResourceKind::Group),
        other => Err(StoreError::Corrupt(format!("unknown resource kind {other:?}"))),
    }
}

pub async fn put_principal(pool: &PgPool, p: &AwsPrincipal) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO aws_principals (kind, resource_id, aws_id, ownership, name, pushed, pushed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, now()) \
         ON CONFLICT (kind, resource_id) DO UPDATE SET aws_id = EXCLUDED.aws_id, \
         ownership = EXCLUDED.ownership, name = EXCLUDED.name, pushed = EXCLUDED.pushed, \
         pushed_at = EXCLUDED.pushed_at",
    )
    .bind(p.kind.name())
    .bind(p.resource_id)
    .bind(&p.aws_id)
    .bind(p.ownership.as_str())
    .bind(&p.name)
    .bind(&p.pushed)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn remove_principal(
    pool: &PgPool,
    kind: ResourceKind,
    resource_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM aws_principals WHERE kind = $1 AND resource_id = $2")
        .bind(kind.name())
        .bind(resource_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn put_membership(pool: &PgPool, m: &AwsMembership) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO aws_memberships (group_id, user_id, membership_id) VALUES ($1, $2, $3) \
         ON CONFLICT (group_id, user_id) DO UPDATE SET membership_id = EXCLUDED.membership_id",
    )
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
    sqlx::query("DELETE FROM aws_memberships WHERE group_id = $1 AND user_id = $2")
        .bind(group_id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn save_run(pool: &PgPool, run: &RunRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sync_runs (id, trigger, dry_run, status, started_at, finished_at, report) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, \
         finished_at = EXCLUDED.finished_at, report = EXCLUDED.report",
    )
    .bind(run.id)
    .bind(&run.trigger)
    .bind(run.dry_run)
    .bind(&run.status)
    .bind(run.started_at)
    .bind(run.finished_at)
    .bind(&run.report)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn append_audit(pool: &PgPool, row: &AuditRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, run_id, action, kind, name, aws_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
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
