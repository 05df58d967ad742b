//! The access report (issue 17, "who can reach what"): one row per user, target, permission set
//! and path, read from the bridge's record of assignments, memberships and principals.

use super::{AssignmentKind, AssignmentState, PrincipalType, Timestamp, serialize_timestamp};
use serde::Serialize;
use uuid::Uuid;

/// What the report is narrowed to; at most one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case", deny_unknown_fields)]
pub enum AccessFilter {
    /// A userName, folded ([`crate::names::NameKey`]): compared as the rest of the product
    /// compares names.
    User(String),
    /// A group's displayName, folded: the rows whose path is that group.
    Group(String),
    /// A 12-digit account id: that account's rows (application assignments have none).
    Account(String),
    /// A permission set's name (or, for one the bridge has no name for, its ARN).
    PermissionSet(String),
}

/// Where a row sorts: the report's order is user name, target, permission set, path, then the
/// user's and the holder's AWS ids (which make the key unique, so a keyset page never skips or
/// repeats a row). Names compare byte by byte on both databases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPosition {
    pub user_name: String,
    pub target: String,
    /// Empty for an application assignment.
    pub permission_set: String,
    pub via: String,
    pub user_id: String,
    pub holder_id: String,
}

/// One page of the report: the rows after `after`, at most `limit`.
#[derive(Debug, Clone)]
pub struct AccessQuery {
    pub filter: Option<AccessFilter>,
    pub after: Option<AccessPosition>,
    pub limit: u32,
}

/// How a user reaches the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessPath {
    /// The assignment is to the user.
    Direct,
    /// The assignment is to this group (its displayName), and the bridge made the user a
    /// member of it.
    Group(String),
}

impl AccessPath {
    /// `direct`, or the group's name.
    pub fn as_str(&self) -> &str {
        match self {
            AccessPath::Direct => "direct",
            AccessPath::Group(name) => name,
        }
    }
}

impl Serialize for AccessPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRow {
    /// The user's name in AWS (its userName).
    pub user: String,
    /// The user's AWS id.
    pub user_id: String,
    pub kind: AssignmentKind,
    /// The account id, or the application ARN.
    pub target: String,
    /// The permission set's name (its ARN when the bridge knows no name for it); None for an
    /// application assignment.
    pub permission_set: Option<String>,
    pub via: AccessPath,
    /// The key of the rule that made the assignment (`assignments.account[0]`); `foreign` for
    /// one that existed in AWS before a rule wanted it; None for one recorded before rules were
    /// kept (or still being made).
    pub rule: Option<String>,
    /// The SCIM source of the principal that holds the assignment (the user, or the group);
    /// None when that resource is gone from the bridge (its AWS principal is about to go too).
    pub source: Option<String>,
    pub state: AssignmentState,
    /// The AWS id of the principal that holds the assignment: the user's own, or the group's.
    pub principal_id: String,
    #[serde(skip)]
    pub principal_type: PrincipalType,
}

impl AccessRow {
    /// Where the row sorts (the cursor of the page it ends).
    pub fn position(&self) -> AccessPosition {
        AccessPosition {
            user_name: self.user.clone(),
            target: self.target.clone(),
            permission_set: self.permission_set.clone().unwrap_or_default(),
            via: self.via.as_str().to_owned(),
            user_id: self.user_id.clone(),
            holder_id: self.principal_id.clone(),
        }
    }
}

/// One page of rows, and whether more follow.
#[derive(Debug, Clone, Default)]
pub struct AccessPage {
    pub rows: Vec<AccessRow>,
    pub more: bool,
}

/// A finished sync run, as the report names it to say how old its data is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunMark {
    pub run_id: Uuid,
    pub trigger: super::Trigger,
    pub status: super::RunStatus,
    #[serde(serialize_with = "serialize_timestamp")]
    pub finished_at: Timestamp,
}

/// How old the report's data is. The record changes only with real runs: `last_run` is the
/// newest that finished (of any trigger and outcome); `last_full_run` the newest full one that
/// succeeded, whose reads of AWS found what was assigned by hand, and the bridge's own
/// assignments removed by hand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessAsOf {
    pub last_full_run: Option<RunMark>,
    pub last_run: Option<RunMark>,
}
