//! One run's working state ([`Run`]): the record it applies against, the SCIM side its plan
//! saw, the change lane, the guard's window and the approvals it may honour; and the steps
//! every phase shares: re-planning, pushing what changed meanwhile, stopping on shutdown.

use super::config::SyncConfig;
use super::drift_overlay::DriftOverlay;
use super::lane::ChangeLane;
use super::options::RunOptions;
use crate::config::SyncSettings;
use crate::store::{Removals, Snapshot, Store, SyncState};
use crate::sync::error::SyncError;
use crate::sync::hold::{self, Held};
use crate::sync::plan::{Plan, Policy};
use crate::sync::principals::apply::Apply;
use crate::sync::principals::scope::Scope;
use crate::sync::target::{AwsError, Directory};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use uuid::Uuid;

/// One run's working state: the record it applies against and the change lane.
pub(super) struct Run<'a> {
    pub store: &'a dyn Store,
    pub directory: &'a dyn Directory,
    pub settings: &'a SyncSettings,
    pub dry_run: bool,
    pub policy: Policy,
    pub lane: ChangeLane,
    pub apply: Apply<'a>,
    /// The record as the current plan saw it.
    pub state: SyncState,
    /// The SCIM side as the current plan saw it (a scoped plan's: only its scope).
    pub snapshot: Snapshot,
    /// A dry full run's drift repair, laid over every read of the record its plan makes
    /// (empty otherwise: a real run writes its repair).
    pub drift: DriftOverlay,
    /// A change run: each plan reads and plans only what changed since the last covered
    /// point ([`super::scoped`]), unless that is unknown.
    pub scoped: bool,
    /// The scope of the current plan; None: it planned everything.
    pub scope: Option<Scope>,
    /// Principals every scoped plan reads besides the changed ones (what the access plan
    /// needs: see [`super::scoped::access_context`]).
    pub context: Vec<Uuid>,
    pub rules_fingerprint: String,
    /// Ids per page of a run that plans everything.
    pub page_size: u32,
    pub stop: Option<Arc<AtomicBool>>,
    /// What the runs of the guard's window deleted and removed before this one.
    pub window: Removals,
    /// `[sync] approve_destructive`: destructive actions wait for an approval.
    pub holding: bool,
    /// The keys of the approved actions (of the holds approved when the run started), and
    /// those holds' runs.
    pub approved: HashSet<String>,
    pub approved_runs: Vec<Uuid>,
    /// What the latest plan held of the principal and membership changes, and of the
    /// assignment deletes.
    pub held: Vec<Held>,
    pub held_access: Vec<Held>,
}

impl<'a> Run<'a> {
    pub async fn start(
        store: &'a dyn Store,
        directory: &'a dyn Directory,
        config: &'a SyncConfig,
        opts: &RunOptions,
        run_id: Uuid,
        pending_complete: bool,
    ) -> Result<Run<'a>, SyncError> {
        let settings = &config.sync;
        let head = store.journal_head().await?;
        let holding = settings.approve_destructive;
        // Held actions are judged against every plan's whole set (a hold is superseded by a
        // plan that holds another set), so a run that may hold plans everything; so does a run
        // that could not read the whole pending set (what it did not read is not known).
        let scoped = !opts.full && !opts.dry_run && !holding && pending_complete;
        // Each plan reads the record of its scope or page, never the whole record.
        let state = SyncState::default();
        let window_start = chrono::Duration::from_std(settings.guard_window())
            .ok()
            .and_then(|d| crate::store::now().checked_sub_signed(d))
            .unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let window = store.recent_removals(window_start).await?;
        // Approvals given since the last run: their actions may go (those still planned).
        let mut approved = HashSet::new();
        let mut approved_runs = Vec::new();
        for h in store.open_holds().await? {
            if h.state == crate::store::HoldState::Approved {
                approved.extend(h.action_keys);
                approved_runs.push(h.run_id);
            }
        }
        Ok(Run {
            store,
            directory,
            settings,
            dry_run: opts.dry_run,
            policy: config.policy(),
            lane: ChangeLane::new(
                !opts.dry_run,
                Duration::from_secs(settings.debounce_seconds),
                config.timings.look_every,
                head,
            ),
            apply: Apply::new(store, directory, run_id, &state),
            state,
            snapshot: Snapshot::default(),
            drift: DriftOverlay::default(),
            scoped,
            scope: None,
            context: Vec::new(),
            rules_fingerprint: config.rules_fingerprint.clone(),
            page_size: config.page_size,
            stop: opts.stop.clone(),
            window,
            holding,
            approved,
            approved_runs,
            held: Vec::new(),
            held_access: Vec::new(),
        })
    }

    /// The window's removals and this run's so far: what a re-plan is judged with.
    pub fn window_now(&self) -> Removals {
        self.window + crate::sync::counts::removals_of(&self.apply.done)
    }

    /// Err once the server is shutting down (between AWS calls: what is done is recorded).
    pub fn check_stop(&self) -> Result<(), SyncError> {
        match &self.stop {
            Some(stop) if stop.load(std::sync::atomic::Ordering::Acquire) => {
                Err(SyncError::Stopped)
            }
            _ => Ok(()),
        }
    }

    /// A change run's plan of the pending changes as they are now (the SCIM side and the
    /// record of their scope), and the SCIM resources changed since the previous plan. None:
    /// this run plans everything, page by page ([`super::paged`]), or its changes can no
    /// longer be planned apart (too many): what is left of them waits for the next run.
    pub async fn replan(&mut self) -> Result<Option<(Plan, HashSet<Uuid>)>, SyncError> {
        let head = self.store.journal_head().await?;
        let Some(scoped) = self.plan_changes().await? else { return Ok(None) };
        self.state = scoped.state;
        self.snapshot = scoped.snapshot;
        self.scope = Some(scoped.scope);
        let mut plan = scoped.plan;
        self.apply.reset(&self.state);
        let changed = self.lane.take(self.store, head).await?;
        if self.holding {
            self.held = hold::split(&mut plan, &self.approved);
        }
        Ok(Some((plan, changed)))
    }

    /// Pushes what the IdP changed meanwhile when it is due (between the steps of a long run),
    /// and only that ([`Self::push_pending`]); true when it did. `force` is the run's: a push
    /// the delete guard would refuse is left to a later run.
    pub async fn follow_lane(&mut self, force: bool) -> Result<bool, SyncError> {
        if !self.lane.due(self.store).await? {
            return Ok(false);
        }
        self.push_pending(force).await?;
        Ok(true)
    }

    /// Awaits `read` (a listing of the whole Identity Store, minutes at 100,000 users) while
    /// following the change lane beside it, so that what the IdP changes meanwhile still
    /// reaches AWS within seconds. A push that has begun is finished before this returns:
    /// nothing is cancelled between an AWS call and its record.
    pub async fn read_following_lane<T>(
        &mut self,
        read: impl std::future::Future<Output = Result<T, AwsError>>,
    ) -> Result<T, SyncError> {
        let done = tokio::sync::Notify::new();
        let read = async {
            let out = read.await;
            // Stored as a permit when the lane is not waiting right now.
            done.notify_one();
            out
        };
        let look_every = self.lane.look_every();
        let follow = async {
            loop {
                tokio::select! {
                    () = done.notified() => return Ok::<(), SyncError>(()),
                    () = tokio::time::sleep(look_every) => {}
                }
                self.check_stop()?;
                self.follow_lane(false).await?;
            }
        };
        let (out, followed) = tokio::join!(read, follow);
        followed?;
        Ok(out?)
    }
}
