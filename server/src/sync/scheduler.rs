//! The triggers of `scimbridge serve`: a full reconcile on `sync.schedule` (6-field cron, UTC)
//! and at start-up, and a run `sync.debounce_seconds` after the SCIM side last changed (the
//! pending set is not empty and stayed put: [`ChangeTrigger`]) that diffs against the bridge's
//! own record and reads nothing from AWS; and a run when the organisation check (every
//! `sync.organization_poll`, with rules that target it) finds the AWS organisation changed.
//! Runs go through the sync lease, so replicas never run
//! at once; a replica that finds the lease taken tries again on its next tick. Runs an admin
//! asks for (`POST /admin/v1/sync`) come through a [`SyncHandle`] and go through the same loop.

use super::aws::AwsDirectory;
use super::change_trigger::ChangeTrigger;
use super::engine::{self, RunOptions, SyncConfig, run_exclusive};
use super::health;
use super::target::Directory;
use crate::config::Settings;
use crate::store::{Store, Trigger};
use chrono::Utc;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pause after finding another replica's run holding the lease.
const BUSY_ELSEWHERE: Duration = Duration::from_secs(2);
/// How often the scheduler looks whether sync was paused or resumed (also looked at, under the
/// lease, before every run).
const PAUSE_LOOK: Duration = Duration::from_secs(2);
/// The pause after a failed run (AWS down, credentials revoked) before the next attempt.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// The first and the longest pause between attempts to reach AWS at start-up: short at first,
/// so a blip (or AWS coming up with the bridge) costs seconds, not a minute.
const RECONNECT_FIRST: Duration = Duration::from_secs(5);
const RECONNECT_MAX: Duration = Duration::from_secs(60);

/// Parses `sync.schedule`; a bad expression is a configuration error at start-up.
pub fn parse_schedule(expr: &str) -> anyhow::Result<cron::Schedule> {
    cron::Schedule::from_str(expr)
        .map_err(|e| anyhow::anyhow!("sync.schedule {expr:?} is not a 6-field cron expression (sec min hour day month weekday, UTC): {e}"))
}

/// When `schedule` next fires (None: never again, or not a valid schedule).
pub fn next_full_run(schedule: &str) -> Option<chrono::DateTime<Utc>> {
    parse_schedule(schedule).ok()?.upcoming(Utc).next()
}

/// Whether `serve` syncs by itself: only when `[sync] enabled = true` says so, never because
/// a Region happens to be in the environment.
pub fn enabled(settings: &Settings) -> bool {
    settings.sync.enabled
}

/// How long an admin-requested run waits for another run to finish before it is given up.
const ADMIN_WAIT: Duration = Duration::from_secs(600);
/// Admin requests queued at most (more are refused with 503 until the queue drains).
const QUEUE: usize = 16;

/// Asks the scheduler for a run now.
#[derive(Clone)]
pub struct SyncHandle {
    store: Arc<dyn Store>,
    queue: tokio::sync::mpsc::Sender<RunOptions>,
    /// Set once the scheduler has reached AWS: before, requests are refused rather than queued
    /// for an unknown time.
    connected: Arc<std::sync::atomic::AtomicBool>,
    /// Set on shutdown: the scheduler starts nothing more and a running run stops.
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl SyncHandle {
    /// Stops the scheduler: a running run stops before its next AWS call (what it did is
    /// recorded, and it is recorded as failed), and no run starts after.
    pub fn shut_down(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Records the run as `running` (so it can be looked up at once) and queues it. Err when the
    /// queue is full.
    pub async fn request(&self, mut opts: RunOptions) -> anyhow::Result<uuid::Uuid> {
        if !self.connected.load(std::sync::atomic::Ordering::Acquire) {
            anyhow::bail!(
                "the scheduler has not reached AWS yet (see the server log); try again later"
            );
        }
        let run_id = uuid::Uuid::now_v7();
        opts.run_id = Some(run_id);
        opts.stop = Some(self.stop.clone());
        opts.records_health = true;
        let permit = self
            .queue
            .try_reserve()
            .map_err(|_| anyhow::anyhow!("{QUEUE} requested runs are waiting already"))?;
        engine::record_requested(&*self.store, &opts).await?;
        permit.send(opts);
        Ok(run_id)
    }
}

pub fn spawn(
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, SyncHandle)> {
    let schedule = parse_schedule(&settings.sync.schedule)?;
    let config = Arc::new(SyncConfig::from_settings(&settings)?);
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handle = SyncHandle {
        store: store.clone(),
        queue: tx,
        connected: connected.clone(),
        stop: stop.clone(),
    };
    let flags = Flags { connected, stop };
    Ok((
        tokio::spawn(
            async move { run_forever(store, settings, config, schedule, rx, flags).await },
        ),
        handle,
    ))
}

/// What the scheduler shares with its [`SyncHandle`].
struct Flags {
    connected: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

async fn run_forever(
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    config: Arc<SyncConfig>,
    schedule: cron::Schedule,
    mut requests: tokio::sync::mpsc::Receiver<RunOptions>,
    flags: Flags,
) {
    let Flags { connected, stop } = flags;
    let stopping = || stop.load(std::sync::atomic::Ordering::Acquire);
    let mut pause = RECONNECT_FIRST;
    let directory = loop {
        match AwsDirectory::connect(&settings.aws).await {
            Ok(d) => break d,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), retry_in = ?pause, "sync: cannot reach AWS");
                // No run is recorded: without this, /admin/v1/status would show nothing wrong.
                if let Err(e) = health::record_error(&*store, &e).await {
                    tracing::warn!(error = %e, "sync: cannot record the failure");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RECONNECT_MAX);
            }
        }
    };
    record_identity_store(&*store, &directory).await;
    // With identity_store_id configured, the instance ARN is discovered by the first SSO call.
    let mut arn_recorded = directory.known_instance_arn().is_some();
    connected.store(true, std::sync::atomic::Ordering::Release);
    tracing::info!(identity_store_id = directory.identity_store_id(), schedule = %settings.sync.schedule,
        debounce_seconds = settings.sync.debounce_seconds, "sync: scheduler started");
    let debounce = Duration::from_secs(settings.sync.debounce_seconds);
    let mut next_full = schedule.upcoming(Utc).next();
    let mut changes = ChangeTrigger::new(debounce, Instant::now());
    // A change-triggered run right away covers whatever happened while the server was down.
    let mut pending_startup = true;
    // After a failed run, changes wait this long before the next attempt (not every tick).
    let mut not_before = Instant::now();
    let started = crate::store::now();
    let mut pause = PauseWatch::default();
    let mut organization = OrganizationCheck::new(&config);
    loop {
        if stopping() {
            tracing::info!("sync: scheduler stopped");
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(config.timings.tick) => {}
            Some(opts) = requests.recv() => {
                run_requested(&store, &directory, &config, &opts).await;
                continue;
            }
        }
        match store.pending_summary().await {
            Ok(pending) => changes.observe(pending, crate::store::now(), Instant::now()),
            Err(e) => {
                tracing::warn!(error = %e, "sync: cannot read the pending changes");
                continue;
            }
        }
        // While paused no run starts; what became due waits, and runs once sync is resumed.
        if pause.look(&*store).await {
            continue;
        }
        let due_full = next_full.is_some_and(|t| t <= Utc::now());
        let due_change = changes.due(Instant::now());
        // Only when nothing else is due: any run reads the organisation as recent as this.
        let due_organization = !(due_full || due_change || pending_startup)
            && Instant::now() >= not_before
            && organization.changed(&directory, &config).await;
        if !(due_full || due_change || pending_startup || due_organization)
            || Instant::now() < not_before
        {
            continue;
        }
        // A change is pushed from the bridge's own record (no AWS reads: seconds, whatever the
        // directory's size); the schedule and start-up re-read AWS and repair drift.
        let full = due_full || pending_startup;
        // Another replica (or an admin) may have done it already: N replicas must not make N
        // full reconciles of each schedule. (Changes another run covered are no longer
        // pending, so they are not due here.)
        let since = if due_full { next_full.unwrap_or(started) } else { started };
        if full {
            match full_run_done_since(&*store, since).await {
                Ok(true) => {
                    tracing::info!(
                        "sync: a full run since {since} was made by another run; skipping"
                    );
                    pending_startup = false;
                    if due_full {
                        next_full = schedule.upcoming(Utc).next();
                    }
                    continue;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "sync: cannot read the recorded runs"),
            }
        }
        // What was pending when the run was decided on (it reads the set again itself).
        let pending_before = changes.seen();
        let trigger = if due_full {
            Trigger::Schedule
        } else if pending_startup {
            Trigger::Startup
        } else if due_change {
            Trigger::Change
        } else {
            Trigger::Organization
        };
        let opts = RunOptions {
            full,
            trigger,
            stop: Some(stop.clone()),
            records_health: true,
            ..RunOptions::default()
        };
        let outcome =
            run_exclusive(store.clone(), &directory, &config, &opts, Duration::ZERO).await;
        record_health(&*store, &outcome).await;
        if !arn_recorded && directory.known_instance_arn().is_some() {
            record_identity_store(&*store, &directory).await;
            arn_recorded = true;
        }
        match outcome {
            // A failed run (AWS unreachable) is tried again after the pause, full if it was.
            Ok(Some(report)) if report.status == "failed" => {
                not_before = Instant::now() + RETRY_AFTER_FAILURE;
            }
            Ok(Some(report)) => {
                pending_startup = false;
                if due_full {
                    next_full = schedule.upcoming(Utc).next();
                }
                changes.ran(pending_before, report.status);
            }
            // Its own change lane pushes what is changing meanwhile: look again in a while,
            // not every tick (each look reads the recorded runs).
            Ok(None) => {
                tracing::debug!("sync: another replica is running; will look again");
                not_before = Instant::now() + BUSY_ELSEWHERE;
            }
            // Paused since the last look: nothing ran, and nothing failed.
            Err(e) if e.downcast_ref::<super::control::SyncPaused>().is_some() => {
                pause.looked_at = None;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "sync: run failed");
                not_before = Instant::now() + RETRY_AFTER_FAILURE;
            }
        }
    }
}

/// The organisation check: every `[sync] organization_poll`, when a rule targets units, tags
/// or account names, the organisation is read afresh (Organizations calls only, no Identity
/// Store reads); when it changed, a run follows and applies what the new tree means for the
/// assignments (under the delete guard, like any run).
struct OrganizationCheck {
    /// None: no rule needs the organisation.
    every: Option<Duration>,
    with_tags: bool,
    next: Instant,
}

impl OrganizationCheck {
    fn new(config: &SyncConfig) -> OrganizationCheck {
        let rules = &config.assignments;
        let every = rules.reads_organization().then(|| config.sync.organization_poll());
        OrganizationCheck {
            every,
            with_tags: rules.reads_account_tags(),
            // The start-up run reads it first.
            next: Instant::now() + every.unwrap_or_default(),
        }
    }

    /// Whether the check is due and found the organisation changed.
    async fn changed(&mut self, directory: &AwsDirectory, config: &SyncConfig) -> bool {
        let Some(every) = self.every else { return false };
        if Instant::now() < self.next {
            return false;
        }
        self.next = Instant::now() + every;
        match config.organization.refresh(directory.organizations(), self.with_tags).await {
            Ok(changed) => {
                if changed {
                    tracing::info!("sync: the organisation changed; running to follow it");
                }
                changed
            }
            Err(e) => {
                tracing::warn!(error = %e, "sync: cannot read the organisation; will look again");
                false
            }
        }
    }
}

/// The pause as this replica last saw it: logged when it changes, and `scimbridge_sync_paused`.
#[derive(Default)]
struct PauseWatch {
    paused: Option<bool>,
    looked_at: Option<Instant>,
}

impl PauseWatch {
    /// Whether sync is paused, read at most every [`PAUSE_LOOK`] (as last seen in between).
    async fn look(&mut self, store: &dyn Store) -> bool {
        if self.looked_at.is_some_and(|t| t.elapsed() < PAUSE_LOOK) {
            return self.paused == Some(true);
        }
        self.looked_at = Some(Instant::now());
        let pause = match store.sync_pause().await {
            Ok(p) => p,
            Err(e) => {
                // Not knowing is not a reason to run: the run's own check under the lease decides.
                tracing::warn!(error = %e, "sync: cannot read whether sync is paused");
                return self.paused == Some(true);
            }
        };
        let paused = pause.is_some();
        if self.paused != Some(paused) {
            match &pause {
                Some(p) => tracing::warn!(
                    since = %crate::store::format_timestamp(&p.since), by = %p.by,
                    reason = p.reason.as_deref().unwrap_or(""),
                    "sync: paused; this replica starts no run until `scimbridge sync resume`"
                ),
                // The first look at start-up says nothing when sync is not paused.
                None if self.paused.is_some() => tracing::info!("sync: resumed"),
                None => {}
            }
            metrics::gauge!("scimbridge_sync_paused").set(if paused { 1.0 } else { 0.0 });
            self.paused = Some(paused);
        }
        paused
    }
}

async fn record_identity_store(store: &dyn Store, directory: &AwsDirectory) {
    if let Err(e) = health::record_connected(store, directory).await {
        tracing::warn!(error = %e, "sync: cannot record the identity store in use");
    }
}

/// What a run of the serving sync that did not end with a report leaves in `/admin/v1/status`
/// (a run that ended recorded its health itself, before it read as finished: see
/// `RunOptions::records_health`); a run that did not get the lease leaves nothing.
async fn record_health(store: &dyn Store, outcome: &anyhow::Result<Option<engine::RunReport>>) {
    let recorded = match outcome {
        Ok(_) => Ok(()),
        // A pause is the admin's word, not a failure.
        Err(e) if e.downcast_ref::<super::control::SyncPaused>().is_some() => Ok(()),
        Err(e) => health::record_error(store, e).await,
    };
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "sync: cannot record the sync's health");
    }
}

/// Whether a real full run (of any replica, or an admin's) started at or after `since` has
/// finished, succeeded or partial.
async fn full_run_done_since(
    store: &dyn Store,
    since: crate::store::Timestamp,
) -> Result<bool, crate::store::StoreError> {
    let runs = store.list_runs(10).await?;
    Ok(runs.iter().any(|r| {
        !r.dry_run
            && r.finished_at.is_some()
            && ["succeeded", "partial"].contains(&r.status.as_str())
            && r.report.get("full").and_then(serde_json::Value::as_bool) == Some(true)
            && r.started_at >= since
    }))
}

/// An admin's run: waits for the lease up to [`ADMIN_WAIT`]; a run that could not start is
/// recorded as failed, with why.
async fn run_requested(
    store: &Arc<dyn Store>,
    directory: &AwsDirectory,
    config: &SyncConfig,
    opts: &RunOptions,
) {
    let outcome = run_exclusive(store.clone(), directory, config, opts, ADMIN_WAIT).await;
    record_health(&**store, &outcome).await;
    let why = match outcome {
        Ok(Some(_)) => return,
        Ok(None) => format!(
            "another sync run held the lock for over {} s; this one was given up",
            ADMIN_WAIT.as_secs()
        ),
        Err(e) => format!("{e:#}"),
    };
    tracing::error!(error = %why, "sync: the requested run did not run");
    if let Err(e) = engine::record_abandoned(&**store, opts, &why).await {
        tracing::warn!(error = %e, "sync: cannot record the abandoned run");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_six_field_cron() {
        assert!(parse_schedule("0 0 3 * * *").is_ok());
        assert!(parse_schedule("0 */15 * * * *").is_ok());
        assert!(parse_schedule("not cron").is_err());
    }
}
