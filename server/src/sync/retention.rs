//! Retention (`[retention]`, issue 16): `serve` prunes the change journal, the audit log and
//! the run records (with their plan pages) so that they stop growing without bound — every
//! hour (`interval_seconds`), the first time a minute after start, in batches with pauses
//! between them.
//!
//! Each batch is deleted under the sync lease, so pruning happens between runs, never during
//! one, and on one replica at a time (whichever holds the lease then). What a run or a reader
//! still needs is written into the store's statements ([`crate::store::Retention`]), so a row
//! is judged against the tables as they are when it is deleted.

use super::error::SyncError;
use crate::config::Settings;
use crate::store::{Store, StoreError, Timestamp};
use chrono::TimeDelta;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The ranges `[retention]` may set. Zero is refused rather than read as "forever" or "at
/// once": either reading would surprise someone, and one of them deletes everything.
const DAYS: RangeInclusive<u64> = 1..=36_500;
const RUNS_KEEP: RangeInclusive<u64> = 1..=10_000_000;
const INTERVAL_SECONDS: RangeInclusive<u64> = 1..=86_400;

/// Rows per statement: milliseconds of work, so SCIM writes never wait long behind it, and
/// still a million rows of backlog in a few minutes.
pub const BATCH: u32 = 1000;
/// Between batches, so SCIM writes (SQLite has one writer) and runs get their turn.
const BATCH_PAUSE: Duration = Duration::from_millis(100);
/// The first pass after start: late enough that the start-up run has taken the lease first.
const FIRST_PASS_AFTER: Duration = Duration::from_secs(60);
/// How long to wait before trying again while a run holds the lease (or the interval, if
/// shorter).
const BUSY_PAUSE: Duration = Duration::from_secs(5);
/// How long shutdown waits for a batch in flight.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A table retention prunes, by its name (the `table` label of
/// `scimbridge_retention_pruned_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    ChangeJournal,
    AuditLog,
    /// Before [`Table::SyncRuns`]: a run's plan pages go in batches of their own first.
    RunPlanPages,
    SyncRuns,
}

impl Table {
    /// In the order a pass prunes them.
    pub const ALL: [Table; 4] =
        [Table::ChangeJournal, Table::AuditLog, Table::RunPlanPages, Table::SyncRuns];

    pub fn name(self) -> &'static str {
        match self {
            Table::ChangeJournal => "change_journal",
            Table::AuditLog => "audit_log",
            Table::RunPlanPages => "run_plan_pages",
            Table::SyncRuns => "sync_runs",
        }
    }
}

/// What `[retention]` keeps, checked, with what else decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `journal_days`.
    pub journal: TimeDelta,
    /// `audit_days`.
    pub audit: TimeDelta,
    pub runs_keep: u64,
    /// `[sync] guard_window`: a run that started within it is kept, since the delete guard
    /// adds up what those runs removed (pruning one would let a mass delete through).
    pub guard_window: TimeDelta,
    /// `interval_seconds`.
    pub interval: Duration,
    /// `[sync] lease_seconds`: the lease a batch is deleted under.
    pub lease_seconds: u32,
    /// Rows per statement ([`BATCH`]).
    pub batch: u32,
}

impl RetentionPolicy {
    /// The policy of `settings`; a value out of its range is a configuration error naming the
    /// key and the range.
    pub fn from_settings(settings: &Settings) -> Result<RetentionPolicy, SyncError> {
        let r = &settings.retention;
        let check = |key: &str, value: u64, range: &RangeInclusive<u64>, unit: &str| {
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(SyncError::Config(format!(
                    "retention.{key} = {value} is out of range: it must be from {} to {} {unit}",
                    range.start(),
                    range.end()
                )))
            }
        };
        let days = |key: &str, value: u64| -> Result<TimeDelta, SyncError> {
            let value = check(key, value, &DAYS, "days")?;
            // In range, so it fits.
            Ok(TimeDelta::days(i64::try_from(value).unwrap_or(i64::MAX)))
        };
        let journal = days("journal_days", r.journal_days)?;
        let audit = days("audit_days", r.audit_days)?;
        let runs_keep = check("runs_keep", r.runs_keep, &RUNS_KEEP, "runs")?;
        let interval = check("interval_seconds", r.interval_seconds, &INTERVAL_SECONDS, "seconds")?;
        let timings = super::run::SyncTimings::from_settings(&settings.sync)?;
        Ok(RetentionPolicy {
            journal,
            audit,
            runs_keep,
            // An absurd window keeps every run: nothing started before it.
            guard_window: TimeDelta::from_std(settings.sync.guard_window())
                .unwrap_or(TimeDelta::MAX),
            interval: Duration::from_secs(interval),
            lease_seconds: timings.lease_seconds(),
            batch: BATCH,
        })
    }

    /// Deletes one batch of `table`, as of `now`; how many rows went.
    async fn prune_batch(
        &self,
        store: &dyn Store,
        table: Table,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let before = |age: TimeDelta| now.checked_sub_signed(age).unwrap_or(Timestamp::UNIX_EPOCH);
        match table {
            Table::ChangeJournal => store.prune_journal(before(self.journal), self.batch).await,
            Table::AuditLog => store.prune_audit(before(self.audit), self.batch).await,
            Table::RunPlanPages => {
                let before = before(self.guard_window);
                store.prune_plan_pages(self.runs_keep, before, self.batch).await
            }
            Table::SyncRuns => {
                store.prune_runs(self.runs_keep, before(self.guard_window), self.batch).await
            }
        }
    }

    fn busy_pause(&self) -> Duration {
        BUSY_PAUSE.min(self.interval)
    }
}

/// Rows pruned, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub change_journal: u64,
    pub audit_log: u64,
    pub run_plan_pages: u64,
    pub sync_runs: u64,
}

impl Pruned {
    fn add(&mut self, table: Table, n: u64) {
        match table {
            Table::ChangeJournal => self.change_journal += n,
            Table::AuditLog => self.audit_log += n,
            Table::RunPlanPages => self.run_plan_pages += n,
            Table::SyncRuns => self.sync_runs += n,
        }
    }

    fn any(&self) -> bool {
        self.change_journal + self.audit_log + self.run_plan_pages + self.sync_runs > 0
    }
}

/// One pass: each table batch by batch until nothing more may go, every batch under the sync
/// lease (held by `holder` for that batch only). While a run holds the lease, the pass waits
/// for it. Ends early, with what it pruned so far, once `stop` says so.
pub async fn prune(
    store: &dyn Store,
    policy: &RetentionPolicy,
    holder: Uuid,
    stop: &mut watch::Receiver<bool>,
) -> Result<Pruned, StoreError> {
    let mut pruned = Pruned::default();
    for table in Table::ALL {
        loop {
            if *stop.borrow() {
                return Ok(pruned);
            }
            if !store.acquire_sync_lease(holder, policy.lease_seconds).await? {
                tracing::debug!(table = table.name(), "retention: a sync run is going; waiting");
                if pause(policy.busy_pause(), stop).await {
                    return Ok(pruned);
                }
                continue;
            }
            let deleted = policy.prune_batch(store, table, crate::store::now()).await;
            if let Err(e) = store.release_sync_lease(holder).await {
                tracing::warn!(error = %e, "retention: could not release the sync lease; it expires by itself");
            }
            let deleted = deleted?;
            pruned.add(table, deleted);
            metrics::counter!("scimbridge_retention_pruned_total", "table" => table.name())
                .increment(deleted);
            if deleted < u64::from(policy.batch) {
                break;
            }
            if pause(BATCH_PAUSE, stop).await {
                return Ok(pruned);
            }
        }
    }
    Ok(pruned)
}

/// Sleeps `d`; true when `stop` was set meanwhile (or its sender is gone).
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let gone = tokio::select! {
        () = tokio::time::sleep(d) => false,
        changed = stop.changed() => changed.is_err(),
    };
    gone || *stop.borrow()
}

/// The pruning task of `serve`, and what stops it.
pub struct Pruner {
    task: tokio::task::JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// Starts pruning with `policy` (see [`RetentionPolicy::from_settings`]).
pub fn spawn(store: Arc<dyn Store>, policy: RetentionPolicy) -> Pruner {
    // Every series exists from the start, so that a rate over it is 0, not absent.
    for table in Table::ALL {
        metrics::counter!("scimbridge_retention_pruned_total", "table" => table.name())
            .increment(0);
    }
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let holder = Uuid::now_v7();
        let mut wait = policy.interval.min(FIRST_PASS_AFTER);
        loop {
            if pause(wait, &mut stopped).await {
                return;
            }
            match prune(&*store, &policy, holder, &mut stopped).await {
                Ok(p) if p.any() => tracing::info!(
                    change_journal = p.change_journal,
                    audit_log = p.audit_log,
                    run_plan_pages = p.run_plan_pages,
                    sync_runs = p.sync_runs,
                    "retention: pruned"
                ),
                Ok(_) => tracing::debug!("retention: nothing to prune"),
                Err(e) => {
                    tracing::warn!(error = %e, "retention: pruning failed; trying again at the next interval")
                }
            }
            wait = policy.interval;
        }
    });
    Pruner { task, stop }
}

impl Pruner {
    /// Stops pruning after the batch in flight (waiting for it at most [`STOP_TIMEOUT`]).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_TIMEOUT, self.task).await.is_err() {
            tracing::warn!("retention: the batch in flight did not end in time; abandoning it");
            abort.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditRow, now};

    fn policy_of(f: impl FnOnce(&mut Settings)) -> Result<RetentionPolicy, String> {
        let mut settings = Settings::default();
        f(&mut settings);
        RetentionPolicy::from_settings(&settings).map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_keep_a_month_of_journal_a_year_of_audit_and_a_thousand_runs() {
        let p = policy_of(|_| {}).unwrap();
        assert_eq!(p.journal, TimeDelta::days(30));
        assert_eq!(p.audit, TimeDelta::days(365));
        assert_eq!(p.runs_keep, 1000);
        assert_eq!(p.guard_window, TimeDelta::hours(24));
        assert_eq!(p.interval, Duration::from_secs(3600));
        assert_eq!((p.lease_seconds, p.batch), (60, BATCH));
    }

    #[test]
    fn careless_values_are_refused_naming_the_key() {
        let err = policy_of(|s| s.retention.journal_days = 0).unwrap_err();
        assert_eq!(
            err,
            "config: retention.journal_days = 0 is out of range: it must be from 1 to 36500 days"
        );
        let err = policy_of(|s| s.retention.audit_days = 0).unwrap_err();
        assert!(err.contains("retention.audit_days = 0"), "{err}");
        let err = policy_of(|s| s.retention.audit_days = u64::MAX).unwrap_err();
        assert!(err.contains("retention.audit_days = 18446744073709551615"), "{err}");
        let err = policy_of(|s| s.retention.runs_keep = 0).unwrap_err();
        assert!(err.contains("retention.runs_keep = 0") && err.contains("1 to 10000000"), "{err}");
        let err = policy_of(|s| s.retention.interval_seconds = 0).unwrap_err();
        assert!(err.contains("retention.interval_seconds = 0"), "{err}");
        let err = policy_of(|s| s.retention.interval_seconds = 86_401).unwrap_err();
        assert!(err.contains("from 1 to 86400 seconds"), "{err}");
        // The ends of the ranges are taken.
        let p = policy_of(|s| {
            s.retention.journal_days = 1;
            s.retention.audit_days = 36_500;
            s.retention.runs_keep = 1;
            s.retention.interval_seconds = 1;
        })
        .unwrap();
        assert_eq!((p.journal, p.audit), (TimeDelta::days(1), TimeDelta::days(36_500)));
        assert_eq!((p.runs_keep, p.interval), (1, Duration::from_secs(1)));
    }

    async fn sqlite_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", dir.path().join("retention.db").display());
        let store = crate::store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    async fn audit_rows(store: &dyn Store, n: usize, at: Timestamp) {
        for i in 0..n {
            let row = AuditRow {
                at,
                run_id: Uuid::now_v7(),
                action: "create_user".into(),
                kind: "User".into(),
                name: format!("u{i}"),
                aws_id: None,
                detail: None,
            };
            store.append_audit(&row).await.unwrap();
        }
    }

    async fn audit_len(store: &dyn Store) -> usize {
        let q =
            crate::store::AuditQuery { since: Timestamp::UNIX_EPOCH, after_seq: 0, limit: 1000 };
        store.list_audit(&q).await.unwrap().len()
    }

    #[tokio::test]
    async fn a_pass_prunes_batch_by_batch_and_waits_while_a_run_holds_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        audit_rows(&*store, 7, now() - TimeDelta::days(400)).await;
        audit_rows(&*store, 2, now()).await;
        let mut policy = policy_of(|s| s.retention.interval_seconds = 1).unwrap();
        policy.batch = 3;
        let (stop, mut stopped) = watch::channel(false);

        // A run holds the lease: the pass waits for it, and deletes nothing meanwhile.
        let run = Uuid::now_v7();
        assert!(store.acquire_sync_lease(run, 60).await.unwrap());
        let pass = {
            let store = store.clone();
            tokio::spawn(async move {
                prune(&*store, &policy, Uuid::now_v7(), &mut stopped).await.unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(audit_len(&*store).await, 9, "nothing goes while a run holds the lease");
        assert!(!pass.is_finished());
        store.release_sync_lease(run).await.unwrap();

        // Then every old row goes, 3 by 3, and the lease is free again.
        let pruned = tokio::time::timeout(Duration::from_secs(10), pass).await.unwrap().unwrap();
        assert_eq!(pruned, Pruned { audit_log: 7, ..Pruned::default() });
        assert_eq!(audit_len(&*store).await, 2);
        assert!(!store.sync_running().await.unwrap(), "each batch releases the lease");
        drop(stop);
    }

    #[tokio::test]
    async fn a_pass_stops_when_asked_while_it_waits_for_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        audit_rows(&*store, 2, now() - TimeDelta::days(400)).await;
        let policy = policy_of(|s| s.retention.interval_seconds = 3600).unwrap();
        assert!(store.acquire_sync_lease(Uuid::now_v7(), 60).await.unwrap());
        let (stop, mut stopped) = watch::channel(false);
        let pass = {
            let store = store.clone();
            tokio::spawn(async move {
                prune(&*store, &policy, Uuid::now_v7(), &mut stopped).await.unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(true).unwrap();
        let pruned = tokio::time::timeout(Duration::from_secs(2), pass).await.unwrap().unwrap();
        assert_eq!(pruned, Pruned::default());
        assert_eq!(audit_len(&*store).await, 2);
    }
}
