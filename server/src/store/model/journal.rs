//! The change journal: one row per SCIM write, the sync engine's feed.

use super::Timestamp;
use scim_schema::schema::ResourceKind;
use serde::Serialize;
use serde_json::Value;

/// One change-journal row.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub source_id: i64,
    pub token_id: Option<uuid::Uuid>,
    /// Stored (and serialised) as `User` / `Group` ([`ResourceKind::name`]).
    #[serde(serialize_with = "serialize_kind")]
    pub resource_type: ResourceKind,
    pub resource_id: String,
    pub action: JournalAction,
    pub detail: Option<Value>,
}

fn serialize_kind<S: serde::Serializer>(kind: &ResourceKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

/// What a journal row records (`change_journal.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalAction {
    Create,
    Replace,
    Patch,
    Delete,
    /// A group lost a member because the member was deleted.
    MemberDeleted,
    /// A create took over a resource of another source (`[sources.NAME] adopt_from`).
    Adopt,
}

text_enum!(
    JournalAction,
    "journal action",
    Create = "create",
    Replace = "replace",
    Patch = "patch",
    Delete = "delete",
    MemberDeleted = "member_deleted",
    Adopt = "adopt"
);

/// The `resource_type` column (`ResourceKind::name`) back into a kind.
pub fn kind_of(s: &str) -> Result<ResourceKind, super::StoreError> {
    match s {
        "User" => Ok(ResourceKind::User),
        "Group" => Ok(ResourceKind::Group),
        other => Err(super::StoreError::Corrupt(format!("unknown resource kind {other:?}"))),
    }
}
