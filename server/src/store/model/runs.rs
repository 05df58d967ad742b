//! Sync runs, the audit log of AWS changes, the serving sync's health, and status counts.

use super::{StoreError, Timestamp, serialize_timestamp};
use serde::Serialize;
use serde_json::Value;

/// One sync run (`sync_runs`); `report` is what `scimbridge sync --json` prints.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub id: uuid::Uuid,
    pub trigger: Trigger,
    pub dry_run: bool,
    pub status: RunStatus,
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

/// Where a run stands (`sync_runs.status`; `status` in the run report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Recorded when it starts; a run still `running` after its process died stays so.
    Running,
    Succeeded,
    /// Some principals failed.
    Partial,
    Failed,
    /// Stopped by the delete guard.
    Refused,
}

text_enum!(
    RunStatus,
    "run status",
    Running = "running",
    Succeeded = "succeeded",
    Partial = "partial",
    Failed = "failed",
    Refused = "refused"
);

/// What started a run (`sync_runs.trigger`). The default is the command line's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `scimbridge sync`.
    #[default]
    Cli,
    /// The scheduler's full run.
    Schedule,
    /// The scheduler's first run after the server started.
    Startup,
    /// The scheduler's run after SCIM changes.
    Change,
    /// `POST /admin/v1/sync`.
    Admin,
    /// The run an approval of held actions starts (CLI or admin API).
    Approval,
    /// The scheduler's run after its organisation check found accounts created, moved,
    /// tagged or renamed (`[sync] organization_poll`).
    Organization,
}

text_enum!(
    Trigger,
    "run trigger",
    Cli = "cli",
    Schedule = "schedule",
    Startup = "startup",
    Change = "change",
    Admin = "admin",
    Approval = "approval",
    Organization = "organization"
);

/// The rules of the serving replicas: those of the newest run not started by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingRules {
    pub run_id: uuid::Uuid,
    pub trigger: Trigger,
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
