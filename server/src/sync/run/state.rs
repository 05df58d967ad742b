//! One run's working state ([`Run`]): the record it applies against, the SCIM side its plan
//! saw, the change lane, the guard's window and the approvals it may honour; and the steps
//! every phase shares: re-planning, pushing what changed meanwhile, stopping on shutdown.

use super::config::SyncConfig;
use super::drift_overlay::DriftOverlay;
use super::lane::{ChangeLane, prioritise};
use super::options::RunOptions;
use crate::config::SyncSettings;
use crate::names::NameKey;
use crate::store::{Removals, Snapshot, Store, SyncState};
use crate::sync::error::SyncError;
use crate::sync::guard;
use crate::sync::hold::{self, Held};
use crate::sync::plan::{self, Plan, Policy};
use crate::sync::principals::apply::Apply;
use crate::sync::principals::scope::Scope;
use crate::sync::target::Directory;
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
        // A scoped run reads the record of its scope with each plan, not the whole record.
        let state = if scoped { SyncState::default() } else { store.sync_state().await? };
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
            policy: Policy {
                on_deactivate: settings.on_deactivate,
                protected_users: settings.protected_users.iter().map(|u| NameKey::of(u)).collect(),
                protected_groups: settings
                    .protected_groups
                    .iter()
                    .map(|g| NameKey::of(g))
                    .collect(),
                rules: config.rules.clone(),
                adopt_existing: config.adopt_existing.clone(),
            },
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

    /// A plan from the SCIM side and the record as they are now, and the SCIM resources changed
    /// since the previous plan. A change run plans only what changed ([`super::scoped`]). A
    /// dry run's drift repair, not written, is laid over the record read.
    pub async fn replan(&mut self) -> Result<(Plan, HashSet<Uuid>), SyncError> {
        let head = self.store.journal_head().await?;
        let mut plan = match self.plan_changes().await? {
            Some(scoped) => {
                self.state = scoped.state;
                self.snapshot = scoped.snapshot;
                self.scope = Some(scoped.scope);
                scoped.plan
            }
            None => {
                let snapshot = self.store.snapshot().await?;
                let mut state = self.store.sync_state().await?;
                self.drift.apply_to(&mut state);
                self.state = state;
                self.snapshot = snapshot;
                self.scope = None;
                plan::plan(&self.snapshot, &self.state, &self.policy)
            }
        };
        if !self.dry_run {
            self.apply.reset(&self.state);
        }
        let changed = self.lane.take(self.store, head).await?;
        if self.holding {
            self.held = hold::split(&mut plan, &self.approved);
        }
        Ok((plan, changed))
    }

    /// Pushes the changes made since the last plan, and only those (the read phase of a full
    /// run). A plan the delete guard would refuse is left to the run's own plan to refuse.
    pub async fn push_changes(&mut self) -> Result<(), SyncError> {
        let (plan, changed) = self.replan().await?;
        if changed.is_empty()
            || guard::principals(&plan, &self.window_now(), self.settings, false).is_some()
        {
            return Ok(());
        }
        let (urgent, _rest) = prioritise(plan.actions, &changed);
        tracing::info!(
            actions = urgent.len(),
            "sync: pushing changes made during the full run's reads"
        );
        for action in &urgent {
            self.check_stop()?;
            self.apply.one(action).await?;
        }
        Ok(())
    }
}
