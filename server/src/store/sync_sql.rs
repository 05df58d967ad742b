//! The SQL of the sync engine's state, the same text on both backends (each binds and decodes
//! its own column types), and what both decode alike.

use super::{Removals, StoreError};
use scim_schema::schema::ResourceKind;
use sqlx::{ColumnIndex, Decode, Row, Type};

/// A row's `deleted_principals`, `removed_memberships` and `removed_assignments` (a run's, or
/// their sums over the guard's window), on either backend.
pub fn removals_of<R>(row: &R) -> Result<Removals, StoreError>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let count = |col: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(row.try_get::<i64, _>(col)?).unwrap_or(0))
    };
    Ok(Removals {
        principals: count("deleted_principals")?,
        memberships: count("removed_memberships")?,
        assignments: count("removed_assignments")?,
    })
}

/// The `kind` column (`ResourceKind::name`) back into a kind.
pub fn kind_of(s: &str) -> Result<ResourceKind, StoreError> {
    match s {
        "User" => Ok(ResourceKind::User),
        "Group" => Ok(ResourceKind::Group),
        other => Err(StoreError::Corrupt(format!("unknown resource kind {other:?}"))),
    }
}

pub const SELECT_USERS: &str = "SELECT u.id, u.doc, u.active, s.name AS source \
     FROM users u JOIN sources s ON s.id = u.source_id ORDER BY u.seq";
pub const SELECT_GROUPS: &str = "SELECT g.id, g.doc, s.name AS source \
     FROM groups g JOIN sources s ON s.id = g.source_id ORDER BY g.seq";
pub const SELECT_MEMBERS: &str = "SELECT group_id, member_id, member_type FROM group_members";
pub const SELECT_PRINCIPALS: &str = "SELECT kind, resource_id, aws_id, ownership, name, pushed FROM aws_principals ORDER BY kind, name";
pub const SELECT_MEMBERSHIPS: &str = "SELECT group_id, user_id, membership_id FROM aws_memberships";
pub const PUT_PRINCIPAL: &str = "INSERT INTO aws_principals (kind, resource_id, aws_id, ownership, name, pushed, pushed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (kind, resource_id) DO UPDATE SET aws_id = excluded.aws_id, \
     ownership = excluded.ownership, name = excluded.name, pushed = excluded.pushed, \
     pushed_at = excluded.pushed_at";
pub const REMOVE_PRINCIPAL: &str =
    "DELETE FROM aws_principals WHERE kind = $1 AND resource_id = $2";
pub const PUT_MEMBERSHIP: &str = "INSERT INTO aws_memberships (group_id, user_id, membership_id) VALUES ($1, $2, $3) \
     ON CONFLICT (group_id, user_id) DO UPDATE SET membership_id = excluded.membership_id";
pub const REMOVE_MEMBERSHIP: &str =
    "DELETE FROM aws_memberships WHERE group_id = $1 AND user_id = $2";
pub const SAVE_RUN: &str = "INSERT INTO sync_runs (id, trigger, dry_run, status, started_at, finished_at, report, journal_head, \
     forced, deleted_principals, removed_memberships, removed_assignments, rules_fingerprint) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, started_at = excluded.started_at, \
     finished_at = excluded.finished_at, report = excluded.report, journal_head = excluded.journal_head, \
     forced = excluded.forced, deleted_principals = excluded.deleted_principals, \
     removed_memberships = excluded.removed_memberships, removed_assignments = excluded.removed_assignments, \
     rules_fingerprint = COALESCE(excluded.rules_fingerprint, sync_runs.rules_fingerprint)";
pub const LIST_RUNS: &str = "SELECT id, trigger, dry_run, status, started_at, finished_at, journal_head, report, \
     forced, deleted_principals, removed_memberships, removed_assignments, rules_fingerprint \
     FROM sync_runs ORDER BY started_at DESC, id DESC LIMIT $1";
pub const GET_RUN: &str = "SELECT id, trigger, dry_run, status, started_at, finished_at, journal_head, report, \
     forced, deleted_principals, removed_memberships, removed_assignments, rules_fingerprint \
     FROM sync_runs WHERE id = $1";
/// The newest run not started by the CLI that recorded its rules: what the serving replicas run.
pub const SERVING_RULES: &str = "SELECT id, trigger, started_at, rules_fingerprint FROM sync_runs \
     WHERE trigger <> 'cli' AND rules_fingerprint IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1";
pub const SELECT_SYNC_HEALTH: &str = "SELECT identity_store_id, instance_arn, region, connected_at, \
     failure, error, error_at, error_run_id FROM sync_health WHERE id = 1";
pub const SET_SYNC_FAILURE: &str = "INSERT INTO sync_health (id, failure, error, error_at, error_run_id) \
     VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET failure = excluded.failure, \
     error = excluded.error, error_at = excluded.error_at, error_run_id = excluded.error_run_id";
pub const SET_IDENTITY_STORE: &str = "INSERT INTO sync_health (id, identity_store_id, instance_arn, region, connected_at) \
     VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET identity_store_id = excluded.identity_store_id, \
     instance_arn = excluded.instance_arn, region = excluded.region, connected_at = excluded.connected_at";
/// What the real runs that started at or after `$1` deleted and removed, leaving out a forced
/// run and every run before it (an admin accepted those deletes).
pub const RECENT_REMOVALS: &str = "SELECT \
     CAST(COALESCE(SUM(deleted_principals), 0) AS BIGINT) AS deleted_principals, \
     CAST(COALESCE(SUM(removed_memberships), 0) AS BIGINT) AS removed_memberships, \
     CAST(COALESCE(SUM(removed_assignments), 0) AS BIGINT) AS removed_assignments \
     FROM sync_runs WHERE dry_run = $2 AND started_at >= $1 \
     AND started_at > COALESCE((SELECT MAX(started_at) FROM sync_runs WHERE forced = $3 AND dry_run = $2), $1)";
pub const LIST_AUDIT: &str = "SELECT seq, at, run_id, action, kind, name, aws_id, detail FROM audit_log \
     WHERE at >= $1 AND seq > $2 ORDER BY seq LIMIT $3";
pub const COUNT_PER_SOURCE: &str = "SELECT source_id, CAST(SUM(users) AS BIGINT) AS users, CAST(SUM(groups) AS BIGINT) AS groups FROM ( \
     SELECT source_id, COUNT(*) AS users, 0 AS groups FROM users GROUP BY source_id \
     UNION ALL SELECT source_id, 0 AS users, COUNT(*) AS groups FROM groups GROUP BY source_id) AS c \
     GROUP BY source_id ORDER BY source_id";
pub const COUNT_PRINCIPALS: &str = "SELECT \
     (SELECT COUNT(*) FROM aws_principals WHERE kind = 'User') AS aws_users, \
     (SELECT COUNT(*) FROM aws_principals WHERE kind = 'Group') AS aws_groups, \
     (SELECT COUNT(*) FROM aws_memberships) AS aws_memberships, \
     (SELECT COUNT(*) FROM aws_assignments WHERE kind = 'account' AND state = 'created') AS aws_account_assignments, \
     (SELECT COUNT(*) FROM aws_assignments WHERE kind = 'application' AND state = 'created') AS aws_application_assignments, \
     (SELECT COUNT(*) FROM change_journal WHERE seq > \
        (SELECT COALESCE(MAX(journal_head), 0) FROM sync_runs)) AS pending";
pub const APPEND_AUDIT: &str = "INSERT INTO audit_log (at, run_id, action, kind, name, aws_id, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const PUT_PENDING_CREATE: &str = "INSERT INTO aws_pending_creates (kind, resource_id, name, started_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (kind, resource_id) DO UPDATE SET name = excluded.name, \
     started_at = excluded.started_at";
pub const REMOVE_PENDING_CREATE: &str =
    "DELETE FROM aws_pending_creates WHERE kind = $1 AND resource_id = $2";
pub const SELECT_PENDING_CREATES: &str =
    "SELECT kind, resource_id, name FROM aws_pending_creates ORDER BY started_at";
