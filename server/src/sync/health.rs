//! Whether the sync works, as an admin sees it in `/admin/v1/status`, `scimbridge status` and
//! the `scimbridge_sync_healthy` gauge (issue 14). The state is a pure function of typed
//! inputs read from the database, so every replica and the CLI say the same.
//!
//! The serving replicas' scheduler records what it meets: the identity store it uses, and
//! the last failure — AWS not reached at all (`unreachable`), or AWS answering with errors and
//! runs ending failed, partial or refused (`failing`) — until a real run succeeds.

use super::engine::RunReport;
use super::target::AwsError;
use crate::store::{
    FailureKind, Hold, HoldState, IdentityStoreRef, RunStatus, Store, StoreError, SyncFailure,
    SyncHealthRecord, SyncPause, Timestamp,
};
use serde::Serialize;

/// What the sync is doing, as `/admin/v1/status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// A run holds the sync lease (any replica, or the CLI).
    Running,
    /// Waiting for the next change or scheduled run (or sync is off on this replica).
    Idle,
    /// An admin paused the sync.
    Paused,
    /// AWS answered with errors, or the last run ended failed, partial or refused.
    Failing,
    /// AWS could not be reached at all.
    Unreachable,
}

/// The `reason` label of `scimbridge_sync_healthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthReason {
    Ok,
    /// `[sync] enabled` is not true on this replica: nothing is expected of it.
    Disabled,
    Paused,
    Failing,
    Unreachable,
    /// Destructive actions wait for an admin's approval.
    ApprovalPending,
}

impl HealthReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthReason::Ok => "ok",
            HealthReason::Disabled => "disabled",
            HealthReason::Paused => "paused",
            HealthReason::Failing => "failing",
            HealthReason::Unreachable => "unreachable",
            HealthReason::ApprovalPending => "approval_pending",
        }
    }

    /// The gauge's value: changes reach AWS as configured.
    pub fn healthy(self) -> bool {
        matches!(self, HealthReason::Ok | HealthReason::Disabled)
    }
}

/// What the state is computed from.
#[derive(Debug, Clone, Copy)]
pub struct HealthInputs<'a> {
    /// `[sync] enabled` on this replica (for the CLI: in its config).
    pub enabled: bool,
    /// A run holds the sync lease.
    pub running: bool,
    pub paused: Option<&'a SyncPause>,
    /// The serving sync's last failure, until a run succeeded.
    pub failure: Option<&'a SyncFailure>,
    /// Runs whose destructive actions wait for an admin's approval.
    pub pending_approvals: usize,
}

/// The state and the gauge's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub state: SyncState,
    pub reason: HealthReason,
}

impl Health {
    /// A pause wins (the admin's word); on a replica with sync off, a failure recorded while
    /// it was on is history, not its state; a failure outranks a run in progress (a retry
    /// does not make AWS reachable until it succeeds).
    pub fn of(i: &HealthInputs<'_>) -> Health {
        let idle_or_running = if i.running { SyncState::Running } else { SyncState::Idle };
        if i.paused.is_some() {
            return Health { state: SyncState::Paused, reason: HealthReason::Paused };
        }
        if !i.enabled {
            return Health { state: idle_or_running, reason: HealthReason::Disabled };
        }
        match i.failure.map(|f| f.kind) {
            Some(FailureKind::Unreachable) => {
                Health { state: SyncState::Unreachable, reason: HealthReason::Unreachable }
            }
            Some(FailureKind::Failing) => {
                Health { state: SyncState::Failing, reason: HealthReason::Failing }
            }
            None if i.pending_approvals > 0 => {
                Health { state: idle_or_running, reason: HealthReason::ApprovalPending }
            }
            None => Health { state: idle_or_running, reason: HealthReason::Ok },
        }
    }
}

/// Whether an error means AWS was not reached at all, or answered with errors.
pub fn failure_kind(e: &anyhow::Error) -> FailureKind {
    let unreachable = e.chain().any(|cause| {
        matches!(cause.downcast_ref::<AwsError>(), Some(AwsError::Unreachable { .. }))
    });
    if unreachable { FailureKind::Unreachable } else { FailureKind::Failing }
}

/// What a finished run of the serving sync does to the recorded failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Keep,
    Clear,
    Set(SyncFailure),
}

/// A dry run changes nothing recorded (it may make no AWS call at all). A succeeded run
/// clears a failure, except that one which made no AWS call does not show AWS reachable again.
pub fn after_run(previous: Option<&SyncFailure>, report: &RunReport, at: Timestamp) -> Record {
    if report.dry_run || report.status == "running" {
        return Record::Keep;
    }
    if report.status == "succeeded" {
        let unproven = previous.is_some_and(|f| f.kind == FailureKind::Unreachable)
            && report.aws_calls.is_empty();
        return if unproven || previous.is_none() { Record::Keep } else { Record::Clear };
    }
    let last = report.errors.last();
    let message = match (report.status, last) {
        (RunStatus::Partial, Some(e)) => format!(
            "run {} ended partial ({} errors); the last: {}: {}",
            report.run_id,
            report.errors.len(),
            e.principal,
            e.message
        ),
        (status, Some(e)) => format!("run {} ended {status}: {}", report.run_id, e.message),
        (status, None) => format!("run {} ended {status}", report.run_id),
    };
    let kind = if report.unreachable { FailureKind::Unreachable } else { FailureKind::Failing };
    Record::Set(SyncFailure { kind, message, at, run_id: Some(report.run_id) })
}

/// Records a finished run of the serving sync (see [`after_run`]).
pub async fn record_run(store: &dyn Store, report: &RunReport) -> Result<(), StoreError> {
    let previous = store.sync_health().await?.failure;
    match after_run(previous.as_ref(), report, crate::store::now()) {
        Record::Keep => Ok(()),
        Record::Clear => store.set_sync_failure(None).await,
        Record::Set(failure) => store.set_sync_failure(Some(&failure)).await,
    }
}

/// Records that the serving sync could not start a run, or could not connect to AWS.
pub async fn record_error(store: &dyn Store, e: &anyhow::Error) -> Result<(), StoreError> {
    let failure = SyncFailure {
        kind: failure_kind(e),
        message: format!("{e:#}"),
        at: crate::store::now(),
        run_id: None,
    };
    store.set_sync_failure(Some(&failure)).await
}

/// Records the identity store the serving sync uses (configured or discovered), and since when.
pub async fn record_connected(
    store: &dyn Store,
    directory: &super::aws::AwsDirectory,
) -> Result<(), StoreError> {
    let in_use = IdentityStoreRef {
        id: directory.identity_store_id().to_owned(),
        instance_arn: directory.known_instance_arn().map(str::to_owned),
        region: Some(directory.region().to_owned()),
        connected_at: crate::store::now(),
    };
    store.set_identity_store(&in_use).await
}

/// The health as `/admin/v1/status`, `/metrics` and `scimbridge status` compute it.
pub struct Reading {
    pub health: Health,
    pub record: SyncHealthRecord,
    pub running: bool,
    pub paused: Option<SyncPause>,
    /// The holds waiting for an admin (`pending`) or for the next run (`approved`).
    pub open_holds: Vec<Hold>,
}

/// Reads what the health is computed from and computes it.
pub async fn read(store: &dyn Store, enabled: bool) -> Result<Reading, StoreError> {
    let record = store.sync_health().await?;
    let running = store.sync_running().await?;
    let paused = store.sync_pause().await?;
    let open_holds = store.open_holds().await?;
    // An approved hold waits only for the next run, not for an admin.
    let pending_approvals = open_holds.iter().filter(|h| h.state == HoldState::Pending).count();
    let health = Health::of(&HealthInputs {
        enabled,
        running,
        paused: paused.as_ref(),
        failure: record.failure.as_ref(),
        pending_approvals,
    });
    Ok(Reading { health, record, running, paused, open_holds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::engine::RunOptions;
    use crate::sync::plan::Skipped;

    fn failure(kind: FailureKind) -> SyncFailure {
        SyncFailure {
            kind, message: "ListUsers: …".into(), at: crate::store::now(), run_id: None
        }
    }

    fn inputs<'a>() -> HealthInputs<'a> {
        HealthInputs {
            enabled: true,
            running: false,
            paused: None,
            failure: None,
            pending_approvals: 0,
        }
    }

    fn health(state: SyncState, reason: HealthReason) -> Health {
        Health { state, reason }
    }

    #[test]
    fn each_state_and_its_reason() {
        let pause = SyncPause {
            reason: Some("migration".into()),
            since: crate::store::now(),
            by: "cli".into(),
        };
        let (unreachable, failing) =
            (failure(FailureKind::Unreachable), failure(FailureKind::Failing));
        let of = |i: HealthInputs<'_>| Health::of(&i);
        assert_eq!(of(inputs()), health(SyncState::Idle, HealthReason::Ok));
        assert_eq!(
            of(HealthInputs { running: true, ..inputs() }),
            health(SyncState::Running, HealthReason::Ok)
        );
        assert_eq!(
            of(HealthInputs { failure: Some(&unreachable), running: true, ..inputs() }),
            health(SyncState::Unreachable, HealthReason::Unreachable)
        );
        assert_eq!(
            of(HealthInputs { failure: Some(&failing), ..inputs() }),
            health(SyncState::Failing, HealthReason::Failing)
        );
        assert_eq!(
            of(HealthInputs { paused: Some(&pause), failure: Some(&failing), ..inputs() }),
            health(SyncState::Paused, HealthReason::Paused)
        );
        assert_eq!(
            of(HealthInputs { pending_approvals: 1, ..inputs() }),
            health(SyncState::Idle, HealthReason::ApprovalPending)
        );
        assert_eq!(
            of(HealthInputs { enabled: false, failure: Some(&unreachable), ..inputs() }),
            health(SyncState::Idle, HealthReason::Disabled)
        );
        assert_eq!(
            of(HealthInputs { enabled: false, running: true, ..inputs() }),
            health(SyncState::Running, HealthReason::Disabled)
        );
    }

    #[test]
    fn only_ok_and_disabled_are_healthy() {
        use HealthReason::*;
        for (reason, healthy) in [
            (Ok, true),
            (Disabled, true),
            (Paused, false),
            (Failing, false),
            (Unreachable, false),
            (ApprovalPending, false),
        ] {
            assert_eq!(reason.healthy(), healthy, "{reason:?}");
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }

    #[test]
    fn unreachable_only_when_aws_gave_no_answer() {
        let not_reached = anyhow::Error::new(AwsError::Unreachable {
            operation: "ListInstances",
            attempts: 8,
            message: "connection refused".into(),
        })
        .context("discovering the Identity Center instance (sso:ListInstances)");
        assert_eq!(failure_kind(&not_reached), FailureKind::Unreachable);
        let answered = anyhow::Error::new(AwsError::Unavailable {
            operation: "ListUsers",
            attempts: 8,
            message: "InternalServerException".into(),
        });
        assert_eq!(failure_kind(&answered), FailureKind::Failing);
        assert_eq!(failure_kind(&anyhow::anyhow!("no AWS Region")), FailureKind::Failing);
    }

    fn report(status: &'static str) -> RunReport {
        let opts = RunOptions { trigger: crate::store::Trigger::Schedule, ..RunOptions::default() };
        let mut r = RunReport::new(&opts);
        r.status = status.parse().expect("a run status");
        r
    }

    #[test]
    fn runs_set_and_clear_the_failure() {
        let now = crate::store::now();
        let unreachable = failure(FailureKind::Unreachable);
        let failing = failure(FailureKind::Failing);

        let mut failed = report("failed");
        failed.unreachable = true;
        failed.errors.push(Skipped { principal: "(run)".into(), message: "refused".into() });
        let Record::Set(f) = after_run(None, &failed, now) else { panic!("a failed run sets") };
        assert_eq!((f.kind, f.run_id, f.at), (FailureKind::Unreachable, Some(failed.run_id), now));
        assert!(f.message.contains("ended failed: refused"), "{}", f.message);

        let mut partial = report("partial");
        partial.errors.push(Skipped { principal: "bob".into(), message: "taken".into() });
        let Record::Set(f) = after_run(None, &partial, now) else { panic!("partial sets") };
        assert_eq!(f.kind, FailureKind::Failing);
        assert!(f.message.contains("bob: taken"), "{}", f.message);
        assert!(matches!(after_run(None, &report("refused"), now), Record::Set(_)));

        // Success clears, unless it made no AWS call after AWS was unreachable.
        let mut ok = report("succeeded");
        assert_eq!(after_run(Some(&failing), &ok, now), Record::Clear);
        assert_eq!(after_run(Some(&unreachable), &ok, now), Record::Keep);
        assert_eq!(after_run(None, &ok, now), Record::Keep);
        ok.aws_calls.insert("ListUsers".into(), 1);
        assert_eq!(after_run(Some(&unreachable), &ok, now), Record::Clear);

        // A dry run changes nothing recorded.
        failed.dry_run = true;
        assert_eq!(after_run(None, &failed, now), Record::Keep);
        ok.dry_run = true;
        assert_eq!(after_run(Some(&failing), &ok, now), Record::Keep);
    }
}
