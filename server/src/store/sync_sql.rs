//! The SQL of the sync engine's state, the same text on both backends (each binds and decodes
//! its own column types), and what both decode alike.

use super::StoreError;
use scim_schema::schema::ResourceKind;

/// The `kind` column (`ResourceKind::name`) back into a kind.
pub fn kind_of(s: &str) -> Result<ResourceKind, StoreError> {
    match s {
        "User" => Ok(ResourceKind::User),
        "Group" => Ok(ResourceKind::Group),
        other => Err(StoreError::Corrupt(format!("unknown resource kind {other:?}"))),
    }
}

pub const SELECT_USERS: &str = "SELECT id, doc, active FROM users ORDER BY seq";
pub const SELECT_GROUPS: &str = "SELECT id, doc FROM groups ORDER BY seq";
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
pub const SAVE_RUN: &str = "INSERT INTO sync_runs (id, trigger, dry_run, status, started_at, finished_at, report) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
     finished_at = excluded.finished_at, report = excluded.report";
pub const APPEND_AUDIT: &str = "INSERT INTO audit_log (at, run_id, action, kind, name, aws_id, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
