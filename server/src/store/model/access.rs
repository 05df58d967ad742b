//! The access part of the sync record: permission sets, applications and assignments.

use serde::Serialize;
use serde_json::Value;

/// A permission set or application the bridge knows (`aws_access_objects`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessObject {
    pub kind: AccessObjectKind,
    /// A permission set's name; an application's ARN.
    pub name: String,
    pub arn: String,
    /// Declared in `[[permission_sets]]` (kept as declared), or only referenced by rules.
    pub managed: bool,
    /// What was last pushed.
    pub pushed: Value,
    /// Changed since it was last provisioned to its accounts.
    pub needs_provision: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessObjectKind {
    PermissionSet,
    Application,
}

/// What AWS assigns to (`aws_assignments.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentKind {
    Account,
    Application,
}

/// An AWS principal type (`USER` / `GROUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PrincipalType {
    User,
    Group,
}

/// One assignment as AWS keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AssignmentKey {
    pub kind: AssignmentKind,
    /// The account id or the application ARN.
    pub target: String,
    /// Empty for an application.
    pub permission_set_arn: String,
    pub principal_type: PrincipalType,
    /// The AWS user or group id.
    pub principal_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentState {
    /// Requested; not yet known to be done.
    Creating,
    /// Made by the bridge: deleted when no rule wants it.
    Created,
    /// It existed before a rule wanted it: never deleted by the bridge.
    Foreign,
    /// Delete requested; not yet known to be done.
    Deleting,
}

/// An assignment the bridge made, is making, or found (`aws_assignments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentRecord {
    pub key: AssignmentKey,
    pub state: AssignmentState,
    /// AWS's request id of the operation in flight.
    pub request_id: Option<String>,
}

/// The access part of the sync record.
#[derive(Debug, Clone, Default)]
pub struct AccessState {
    pub objects: Vec<AccessObject>,
    pub assignments: Vec<AssignmentRecord>,
}

text_enum!(
    AccessObjectKind,
    "access object kind",
    PermissionSet = "permission_set",
    Application = "application"
);
text_enum!(AssignmentKind, "assignment kind", Account = "account", Application = "application");
text_enum!(PrincipalType, "principal type", User = "USER", Group = "GROUP");
text_enum!(
    AssignmentState,
    "assignment state",
    Creating = "creating",
    Created = "created",
    Foreign = "foreign",
    Deleting = "deleting"
);
