//! A change run's plan: it reads and plans only the scope its changes reach (see
//! `docs/sync.md`), widening it where the plan finds it too narrow, and falls back to planning
//! everything when its changes are unknown or too many.

use super::changes::pending_changes;
use super::state::Run;
use crate::mapping::aws_profile::manager_scim_id_of;
use crate::names::fold;
use crate::store::{RecordTotals, ScopeRead, ScopeSeeds, Snapshot, Store, SyncState};
use crate::sync::access::rules::{AssignmentSettings, Subject};
use crate::sync::error::SyncError;
use crate::sync::plan::{self, Action, Plan};
use crate::sync::principals::scope::{ChangeSet, Scope};
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

/// A scope widened this many times and still too narrow is given up for a plan of everything.
const MAX_WIDENINGS: usize = 3;
/// A change run whose scope follows more memberships than this (say, a new group of 50,000
/// members, or thousands of groups created at once) plans everything in pages instead: one
/// scoped read of that many would hold a large part of the directory in memory at once.
const MAX_SCOPE_EDGES: usize = 20_000;

/// A scoped plan and what it was made from.
pub(super) struct ScopedPlan {
    pub plan: Plan,
    pub snapshot: Snapshot,
    pub state: SyncState,
    pub scope: Scope,
}

impl Run<'_> {
    /// The plan of the pending changes, over a scoped read; None when this run plans
    /// everything (a full or dry run, held actions, or changes unknown or too many).
    pub(super) async fn plan_changes(&mut self) -> Result<Option<ScopedPlan>, SyncError> {
        if !self.scoped {
            return Ok(None);
        }
        let fingerprint = self.rules_fingerprint.as_str();
        let Some(changes) = pending_changes(self.store, fingerprint).await? else {
            tracing::info!(
                "sync: the changes since the last run are not known; planning everything"
            );
            return Ok(None);
        };
        self.plan_scope_of(&changes).await
    }

    /// The plan of `changes` (and the run's context), over a scoped read widened where the
    /// plan finds it too narrow; None when it stays too narrow (plan everything instead).
    pub(super) async fn plan_scope_of(
        &mut self,
        changes: &ChangeSet,
    ) -> Result<Option<ScopedPlan>, SyncError> {
        let mut scope = Scope::of(changes, self.context.iter().copied());
        scope.seeds.max_edges = Some(MAX_SCOPE_EDGES);
        for _ in 0..MAX_WIDENINGS {
            let Some((snapshot, state, whole_groups)) = read_within(self.store, &scope).await?
            else {
                tracing::info!(
                    "sync: the changes reach too many memberships to plan them apart; planning everything"
                );
                return Ok(None);
            };
            let plan_scope = scope.plan_scope(&whole_groups);
            // Weighed against the whole record below, and only if it takes something away.
            let unweighed = RecordTotals::default();
            let (mut plan, widen) =
                plan::plan_scoped(&snapshot, &state, &self.policy, &plan_scope, &unweighed);
            if scope.widen(&widen) {
                continue;
            }
            weigh(self.store, &mut plan).await?;
            tracing::info!(
                changed = changes.len(),
                users = snapshot.users.len(),
                groups = snapshot.groups.len(),
                actions = plan.actions.len(),
                "sync: planned the changes since the last run"
            );
            return Ok(Some(ScopedPlan { plan, snapshot, state, scope }));
        }
        tracing::info!("sync: the changes reach too far to plan them apart; planning everything");
        Ok(None)
    }

    /// The record of the latest plan's scope as the store has it now (the whole record when
    /// the plan was not scoped).
    pub(super) async fn record_now(&self) -> Result<SyncState, SyncError> {
        match &self.scope {
            Some(scope) => Ok(read(self.store, scope).await?.1),
            None => Ok(self.store.sync_state().await?),
        }
    }
}

/// Sets what the delete guard weighs `plan` against: the whole record (counted in the
/// database), and each group its plan removes members of, all of its recorded members. A plan
/// that takes nothing away needs no count: the usual change costs no scan of the record.
pub(super) async fn weigh(store: &dyn Store, plan: &mut Plan) -> Result<(), SyncError> {
    let takes_away = |a: &Action| matches!(a, Action::Delete { .. } | Action::RemoveMember { .. });
    if !plan.actions.iter().any(takes_away) {
        return Ok(());
    }
    let emptied: BTreeSet<Uuid> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RemoveMember { group_id, .. } => Some(*group_id),
            _ => None,
        })
        .collect();
    let totals = store.record_totals(&emptied.into_iter().collect::<Vec<_>>()).await?;
    plan.managed = totals.principals;
    plan.memberships = totals.memberships;
    plan.members_per_group = totals.members_per_group;
    Ok(())
}

/// The scope's documents and record, with the record of each manager its users name (the plan
/// sends the manager's AWS id). Read whole: a scope's `max_edges` bounds only a change run's
/// first read of it ([`read_within`]); what reads it again (the record after applying) needs
/// all of it.
pub(super) async fn read(
    store: &dyn Store,
    scope: &Scope,
) -> Result<(Snapshot, SyncState, BTreeSet<Uuid>), SyncError> {
    let whole;
    let seeds = if scope.seeds.max_edges.is_some() {
        whole = ScopeSeeds { max_edges: None, ..scope.seeds.clone() };
        &whole
    } else {
        &scope.seeds
    };
    let read = store.scope(seeds).await?;
    with_managers(store, read).await
}

/// [`read`], unless the scope follows more than its `max_edges` memberships (None).
async fn read_within(
    store: &dyn Store,
    scope: &Scope,
) -> Result<Option<(Snapshot, SyncState, BTreeSet<Uuid>)>, SyncError> {
    let read = store.scope(&scope.seeds).await?;
    if read.too_far {
        return Ok(None);
    }
    Ok(Some(with_managers(store, read).await?))
}

/// A scoped read, with the record of each manager its users name that it lacks.
async fn with_managers(
    store: &dyn Store,
    read: ScopeRead,
) -> Result<(Snapshot, SyncState, BTreeSet<Uuid>), SyncError> {
    let mut state = read.state;
    let have: HashSet<Uuid> = state.principals.iter().map(|p| p.resource_id).collect();
    let managers: BTreeSet<Uuid> = read
        .snapshot
        .users
        .iter()
        .filter_map(|u| manager_scim_id_of(&u.doc).and_then(|m| m.parse().ok()))
        .filter(|m| !have.contains(m))
        .collect();
    if !managers.is_empty() {
        let managers: Vec<Uuid> = managers.into_iter().collect();
        state.principals.extend(store.recorded(&managers, &[]).await?);
    }
    Ok((read.snapshot, state, read.whole_groups))
}

/// The principals an access plan needs besides the changed ones, so that it is the plan of
/// the whole directory: those the rules name, and those of the assignments recorded.
pub(super) async fn access_context(
    store: &dyn Store,
    rules: &AssignmentSettings,
    assigned: &[String],
) -> Result<Vec<Uuid>, SyncError> {
    let (mut users, mut groups, mut external_ids) = (Vec::new(), Vec::new(), Vec::new());
    let subjects = rules
        .account
        .iter()
        .map(|r| r.subject())
        .chain(rules.application.iter().map(|r| r.subject()));
    for subject in subjects {
        match subject {
            Subject::User(name) => users.push(fold(&name)),
            Subject::Group(name) => groups.push(fold(&name)),
            Subject::GroupExternalId(id) => external_ids.push(id),
        }
    }
    let mut ids = store.named(&users, &groups, &external_ids).await?;
    ids.extend(store.recorded(&[], assigned).await?.into_iter().map(|p| p.resource_id));
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
