//! SCIM resources as the store keeps them, and what a write or a list asks of it.

use super::Timestamp;
use scim_schema::ScimError;
use scim_schema::filter::{AttrPath, Filter};
use scim_schema::patch::MemberChange;
use scim_schema::resource::{MemberRef, MemberType};
use scim_schema::schema::ResourceKind;
use serde_json::Value;

/// Who is writing: recorded on every journal row.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub source_id: i64,
    pub token_id: Option<uuid::Uuid>,
    /// Sources whose resources a create may take over (`[sources.NAME] adopt_from`).
    pub adopt_from: Vec<String>,
}

/// A validated resource to create or to replace another with.
#[derive(Debug, Clone)]
pub struct NewResource {
    /// The normalised document (`scim_schema::resource::Normalized::doc`).
    pub doc: Value,
    /// Group members; None leaves them unchanged on replace (and empty on create).
    pub members: Option<Vec<MemberRef>>,
}

/// Which relations to load with a resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// A group's `members`.
    pub members: bool,
    /// A user's `groups`.
    pub groups: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberOut {
    pub value: String,
    pub member_type: MemberType,
    pub display: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRefOut {
    pub value: String,
    pub display: String,
}

#[derive(Debug, Clone)]
pub struct StoredResource {
    pub id: String,
    pub kind: ResourceKind,
    pub doc: Value,
    pub version: i64,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub members: Option<Vec<MemberOut>>,
    pub groups: Option<Vec<GroupRefOut>>,
}

impl StoredResource {
    /// The weak ETag of this version (`W/"7"`), also `meta.version`.
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// An `If-Match` precondition (RFC 7232 §3.1) on a write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IfMatch {
    #[default]
    None,
    /// `If-Match: *`: the resource must exist.
    Any,
    /// The versions any of the listed ETags name; an unparsable ETag matches nothing.
    Versions(Vec<i64>),
}

impl IfMatch {
    pub fn allows(&self, version: i64) -> bool {
        match self {
            IfMatch::None | IfMatch::Any => true,
            IfMatch::Versions(v) => v.contains(&version),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    /// 1-based.
    pub start_index: i64,
    pub count: i64,
    pub load: Load,
}

#[derive(Debug, Clone)]
pub struct ListPage {
    pub total: i64,
    pub resources: Vec<StoredResource>,
}

/// What the PATCH engine decided, computed inside the store's transaction from the locked row.
pub struct PatchPlan {
    /// The new document, or None when the operations left it unchanged.
    pub doc: Option<Value>,
    pub member_changes: Vec<MemberChange>,
}

/// Turns the current stored document into a [`PatchPlan`]; runs while the row is locked, so
/// concurrent PATCHes of one resource never lose an update.
pub type Patcher<'a> = &'a (dyn Fn(&Value) -> Result<PatchPlan, ScimError> + Send + Sync);
