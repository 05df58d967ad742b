//! Plain data passed across the [`super::Store`] interface.

use chrono::{DateTime, SecondsFormat, Utc};
use scim_schema::ScimError;
use scim_schema::filter::{AttrPath, Filter};
use scim_schema::resource::{MemberRef, MemberType};
use scim_schema::schema::ResourceKind;
use serde::Serialize;
use serde_json::Value;

pub type Timestamp = DateTime<Utc>;

/// RFC 3339 with microseconds in UTC: the one textual form of every timestamp (SQLite stores it,
/// so text order is time order; `meta` shows it).
pub fn format_timestamp(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Now, truncated to microseconds (what both databases keep), so that a value read back equals
/// the value written.
pub fn now() -> Timestamp {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Scim(ScimError),
    #[error("version precondition failed")]
    PreconditionFailed,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database cannot be reached: what was tried and why it failed, e.g. `cannot connect
    /// to PostgreSQL at db:5432: connection refused` (told apart from a busy database, whose
    /// errors stay [`StoreError::Database`]).
    #[error("{0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<ScimError> for StoreError {
    fn from(e: ScimError) -> Self {
        StoreError::Scim(e)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: i64,
    pub name: String,
    pub compat: String,
    pub detected_compat: Option<String>,
}

/// A token row to insert; `digest` is the SHA-256 of the secret, which is never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: uuid::Uuid,
    /// None for an admin-API token.
    pub source_id: Option<i64>,
    /// SHA-256 of the secret.
    pub digest: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// What `token list` shows.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: uuid::Uuid,
    /// The source's name, or None for an admin token.
    pub source: Option<String>,
    /// The source's stored compatibility mode (None for an admin token).
    pub compat: Option<String>,
    /// What `auto` recognised of the source's client, once it has.
    pub detected_compat: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A token found by its digest, with what authentication needs.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: uuid::Uuid,
    pub digest: Vec<u8>,
    /// None for an admin token.
    pub source: Option<Source>,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked: bool,
}

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

/// One change-journal row.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    pub seq: i64,
    pub at: Timestamp,
    pub source_id: i64,
    pub token_id: Option<uuid::Uuid>,
    pub resource_type: String,
    pub resource_id: String,
    pub action: String,
    pub detail: Option<Value>,
}

// --- the sync engine's view and state -----------------------------------------------------

/// Everything the sync engine reads of the SCIM side, read consistently in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub users: Vec<SnapshotUser>,
    pub groups: Vec<SnapshotGroup>,
    /// Direct memberships: (group, member, member type).
    pub members: Vec<(uuid::Uuid, uuid::Uuid, MemberType)>,
}

#[derive(Debug, Clone)]
pub struct SnapshotUser {
    pub id: uuid::Uuid,
    pub doc: Value,
    pub active: bool,
    /// The name of the source that owns it.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct SnapshotGroup {
    pub id: uuid::Uuid,
    pub doc: Value,
    /// The name of the source that owns it.
    pub source: String,
}

/// How the bridge came to manage an AWS principal; only these are ever changed or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    Created,
    /// It existed in AWS with the same userName / displayName and was taken over.
    Adopted,
}

impl Ownership {
    pub fn as_str(self) -> &'static str {
        match self {
            Ownership::Created => "created",
            Ownership::Adopted => "adopted",
        }
    }

    pub fn parse(s: &str) -> Result<Ownership, StoreError> {
        match s {
            "created" => Ok(Ownership::Created),
            "adopted" => Ok(Ownership::Adopted),
            other => Err(StoreError::Corrupt(format!("unknown ownership {other:?}"))),
        }
    }
}

/// A SCIM resource's AWS principal (`aws_principals`).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsPrincipal {
    pub kind: ResourceKind,
    pub resource_id: uuid::Uuid,
    pub aws_id: String,
    pub ownership: Ownership,
    pub name: String,
    /// The attributes last pushed.
    pub pushed: Value,
}

/// A membership the bridge made (`aws_memberships`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsMembership {
    pub group_id: uuid::Uuid,
    pub user_id: uuid::Uuid,
    pub membership_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct SyncState {
    pub principals: Vec<AwsPrincipal>,
    pub memberships: Vec<AwsMembership>,
}

/// One sync run (`sync_runs`); `report` is what `scimbridge sync --json` prints.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: uuid::Uuid,
    pub trigger: String,
    pub dry_run: bool,
    pub status: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// The change-journal head a finished, real run covered (None for dry and failed runs).
    pub journal_head: Option<i64>,
    pub report: Value,
    /// Run with `--force` (past the delete guard).
    pub forced: bool,
    /// What the run deleted and removed in AWS (the guard's window adds these up).
    pub removals: Removals,
    /// The fingerprint of the rules the run planned with (`crate::sync::fingerprint`); None
    /// for a requested run that never ran, and for runs recorded before it was kept.
    pub rules_fingerprint: Option<String>,
}

/// The rules of the serving replicas: those of the newest run not started by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingRules {
    pub run_id: uuid::Uuid,
    pub trigger: String,
    pub started_at: Timestamp,
    pub fingerprint: String,
}

/// Why the serving replicas' sync is not working (`sync_health.failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// No answer from AWS: connection refused, unknown host, timeout, no credentials.
    Unreachable,
    /// AWS answered with errors, or a run ended failed, partial or refused.
    Failing,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unreachable => "unreachable",
            FailureKind::Failing => "failing",
        }
    }

    pub fn parse(s: &str) -> Result<FailureKind, StoreError> {
        match s {
            "unreachable" => Ok(FailureKind::Unreachable),
            "failing" => Ok(FailureKind::Failing),
            other => Err(StoreError::Corrupt(format!("unknown sync failure {other:?}"))),
        }
    }
}

/// The last failure of the serving replicas' sync, kept until a run succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncFailure {
    pub kind: FailureKind,
    pub message: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub at: Timestamp,
    /// The run that failed; None when AWS could not be reached to start one.
    pub run_id: Option<uuid::Uuid>,
}

/// The identity store the serving replicas use: configured or discovered when their scheduler
/// set up its AWS clients (`connected_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityStoreRef {
    pub id: String,
    /// Unknown until configured or discovered (`sso:ListInstances`).
    pub instance_arn: Option<String>,
    pub region: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    pub connected_at: Timestamp,
}

/// `sync_health`: what every replica and `scimbridge status` read of the serving sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncHealthRecord {
    pub identity_store: Option<IdentityStoreRef>,
    pub failure: Option<SyncFailure>,
}

/// Deletes and removals made in AWS: what the delete guard weighs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Removals {
    /// Users and groups deleted.
    pub principals: u64,
    /// Group memberships removed (not those that went with a deleted principal).
    pub memberships: u64,
    /// Account and application assignments deleted.
    pub assignments: u64,
}

impl std::ops::Add for Removals {
    type Output = Removals;

    fn add(self, other: Removals) -> Removals {
        Removals {
            principals: self.principals + other.principals,
            memberships: self.memberships + other.memberships,
            assignments: self.assignments + other.assignments,
        }
    }
}

/// One connection pool's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    pub pool: &'static str,
    /// Open connections (idle or in use).
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolStats {
    pub fn of<DB: sqlx::Database>(pool: &'static str, p: &sqlx::Pool<DB>) -> PoolStats {
        PoolStats {
            pool,
            open: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        }
    }

    /// Two pools' figures as one (the HTTP workers' pools are reported together).
    pub fn combined(self, other: PoolStats) -> PoolStats {
        PoolStats {
            pool: self.pool,
            open: self.open + other.open,
            idle: self.idle + other.idle,
            max: self.max + other.max,
        }
    }
}

/// A create in flight (`aws_pending_creates`): the AWS name it was sent with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCreate {
    pub kind: ResourceKind,
    pub resource_id: uuid::Uuid,
    pub name: String,
}

/// An audit row as read back, with its position in the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(serialize_with = "serialize_timestamp")]
    pub at: Timestamp,
    pub run_id: uuid::Uuid,
    pub action: String,
    pub kind: String,
    pub name: String,
    pub aws_id: Option<String>,
    pub detail: Option<Value>,
}

fn serialize_timestamp<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(t))
}

/// Which audit rows to read: at or after `since`, after `after_seq`, oldest first.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub since: Timestamp,
    pub after_seq: i64,
    pub limit: i64,
}

/// Counts for `GET /admin/v1/status`.
#[derive(Debug, Clone, Default)]
pub struct SyncCounts {
    /// (source id, users, groups) for each source holding any.
    pub per_source: Vec<(i64, i64, i64)>,
    pub aws_users: i64,
    pub aws_groups: i64,
    pub aws_memberships: i64,
    /// Account and application assignments the bridge made.
    pub aws_account_assignments: i64,
    pub aws_application_assignments: i64,
    /// Journal rows after the head the last finished run covered.
    pub pending_journal_entries: i64,
}

/// One AWS change (`audit_log`).
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: Timestamp,
    pub run_id: uuid::Uuid,
    pub action: String,
    pub kind: String,
    pub name: String,
    pub aws_id: Option<String>,
    pub detail: Option<Value>,
}

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

macro_rules! text_enum {
    ($ty:ident, $what:literal, $($variant:ident = $text:literal),+) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<$ty, StoreError> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(StoreError::Corrupt(format!(concat!("unknown ", $what, " {:?}"), other))),
                }
            }
        }
    };
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

// --- sync control: pause and held destructive actions (issue 14) ---------------------------

/// Sync is paused (`sync_pause`): no replica starts a run until it is resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncPause {
    #[serde(serialize_with = "serialize_timestamp")]
    pub since: Timestamp,
    pub reason: Option<String>,
    /// `cli`, or `admin:<token id>`.
    pub by: String,
}

/// Where a run's held destructive actions stand (`sync_holds.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Waiting for an admin's approval.
    Pending,
    /// Approved: the next real run applies those of the actions that are still planned.
    Approved,
    /// A run applied the approved actions (those still planned).
    Applied,
    /// A later run held a different set; that one is what an admin approves now.
    Superseded,
}

text_enum!(
    HoldState,
    "hold state",
    Pending = "pending",
    Approved = "approved",
    Applied = "applied",
    Superseded = "superseded"
);

/// The destructive actions one run held for approval (`sync_holds`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub run_id: uuid::Uuid,
    pub held_at: Timestamp,
    pub state: HoldState,
    /// What an approval lets go: each held action's key (`sync::hold::key`).
    pub action_keys: Vec<String>,
    /// The held actions as the run report lists them (at most `sync::hold::SHOWN`).
    pub actions: Vec<Value>,
    pub approved_at: Option<Timestamp>,
    /// `cli`, or `admin:<token id>`.
    pub approved_by: Option<String>,
    pub closed_at: Option<Timestamp>,
    /// The run that applied the approved actions, or whose hold superseded this one.
    pub closed_by_run: Option<uuid::Uuid>,
}
