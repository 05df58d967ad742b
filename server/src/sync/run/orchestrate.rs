//! One run, as named phases: settle what a dead run left in flight, repair drift (a full run),
//! plan, check the delete guard, apply (pushing what the IdP changes meanwhile first), close
//! (what needed this run's creates), then the permission sets and assignments, and report.

use super::assignments::{deleted, plan_access, principals_after};
use super::config::SyncConfig;
use super::lane::prioritise;
use super::options::RunOptions;
use super::paged;
use super::plan_pages::PlanWriter;
use super::preview;
use super::report::{RunReport, created_any, planned_counts};
use super::scoped::access_context;
use super::state::Run;
use crate::store::{RunStatus, Store};
use crate::sync::access::apply::{self as access_apply, AccessRun};
use crate::sync::access::plan::{self as access_plan, AccessPlan};
use crate::sync::counts;
use crate::sync::error::SyncError;
use crate::sync::guard;
use crate::sync::hold;
use crate::sync::organization::Freshness;
use crate::sync::plan::{Action, Plan, Skipped};
use crate::sync::target::Directory;
use std::collections::{HashSet, VecDeque};
use uuid::Uuid;

/// Runs the phases into `report`. Err: the run failed (its report says so); a refusal by the
/// delete guard is a report, not an error.
pub(super) async fn execute(
    store: &dyn Store,
    directory: &dyn Directory,
    config: &SyncConfig,
    opts: &RunOptions,
    report: &mut RunReport,
) -> Result<(), SyncError> {
    let mut phases = Phases::start(store, directory, config, opts, report).await?;
    phases.settle().await?;
    phases.drift(report).await?;
    match phases.run.replan().await? {
        Some((plan, _)) => phases.scoped(plan, report).await,
        None => phases.paged(report).await,
    }
}

/// What a run works with across its phases.
struct Phases<'a> {
    store: &'a dyn Store,
    config: &'a SyncConfig,
    opts: &'a RunOptions,
    run: Run<'a>,
    access: AccessRun<'a>,
    /// With no rules left, the assignments the bridge made are still deleted (under the guard).
    access_active: bool,
    /// Rules reach only the principals of their source (a rule without one, only while there
    /// is a single source).
    sources: Vec<String>,
}

/// What the delete guard says of a plan.
enum Verdict {
    /// Refused, and why: nothing is changed.
    Refused(String),
    /// It may go, with the assignments as they will be once its principal changes are in
    /// (None: no access rules and no assignments made).
    Pass(Option<AccessPlan>),
}

/// What the latest plan left to report: the principals it skipped and those the filter failed
/// for (a re-plan replaces both).
struct Left {
    skipped: Vec<Skipped>,
    filter_failures: Vec<Skipped>,
}

impl<'a> Phases<'a> {
    /// Loads the run's state: the record, the guard's window, the approvals, the access run.
    async fn start(
        store: &'a dyn Store,
        directory: &'a dyn Directory,
        config: &'a SyncConfig,
        opts: &'a RunOptions,
        report: &RunReport,
    ) -> Result<Phases<'a>, SyncError> {
        let run =
            Run::start(store, directory, config, opts, report.run_id, report.pending.complete)
                .await?;
        let mut access =
            AccessRun::load(store, directory.sso(), report.run_id, opts.dry_run, opts.stop.clone())
                .await?;
        let access_active = access_apply::configured(&config.permission_sets, &config.assignments)
            || !access.state.assignments.is_empty();
        if access_active {
            // A full run reads the organisation afresh; a change run reuses a recent read.
            let freshness = if opts.full {
                Freshness::Now
            } else {
                Freshness::Within(config.sync.organization_poll())
            };
            let (org, cache) = (directory.organizations(), &config.organization);
            access.read_organization(org, cache, &config.assignments, freshness).await;
        }
        let sources = store.list_sources().await?.into_iter().map(|s| s.name.into()).collect();
        let mut phases = Phases { store, config, opts, run, access, access_active, sources };
        if phases.run.scoped && access_active {
            // A scoped plan reads what the access plan needs too, so that the assignments are
            // planned as against the whole directory.
            phases.run.context = phases.access_context().await?;
        }
        Ok(phases)
    }

    /// Settle: what a dead run left unrecorded (creates AWS may have made, assignment
    /// operations in flight) is found out first. A dry run changes nothing, so skips it.
    async fn settle(&mut self) -> Result<(), SyncError> {
        if !self.opts.dry_run {
            self.run.apply.resolve_pending().await?;
            if self.access_active {
                self.access.settle_in_flight().await?;
            }
        }
        Ok(())
    }

    /// Drift: a full run re-reads AWS and repairs the record to what it finds.
    async fn drift(&mut self, report: &mut RunReport) -> Result<(), SyncError> {
        if self.opts.full {
            self.run.drift =
                self.run.repair_drift(&mut report.counts, self.opts.progress()).await?;
            if self.access_active {
                self.access.repair_drift().await?;
            }
        }
        Ok(())
    }

    /// A change run: its plan of what changed, checked, applied, closed, then the access.
    async fn scoped(mut self, plan: Plan, report: &mut RunReport) -> Result<(), SyncError> {
        let access_plan = match self.guard(&plan).await? {
            Verdict::Pass(access_plan) => access_plan,
            Verdict::Refused(refusal) => {
                report.counts.extend(planned_counts(&plan));
                let pages = PlanWriter::new(self.store, report.run_id);
                report.refuse(pages, &plan, refusal).await?;
                return Ok(());
            }
        };
        let Some(mut left) = self.apply(plan, access_plan.as_ref(), report).await? else {
            return Ok(());
        };
        // The journal head covered is the one before the closing pass: the pass applies only
        // updates, so an IdP change it happens to see is left for the next run.
        let covered = self.run.lane.covered;
        self.close(&mut left).await?;
        self.access(&mut left, report).await?;
        self.finish(left, covered, report).await
    }

    /// A run that plans everything, page by page ([`super::paged`]): the survey, the guard,
    /// then (a real run) the deletes, the pages again, the closing pass and the access.
    async fn paged(mut self, report: &mut RunReport) -> Result<(), SyncError> {
        let context = if self.access_active { self.access_context().await? } else { Vec::new() };
        let in_context: HashSet<Uuid> = context.iter().copied().collect();
        if self.opts.dry_run {
            let mut sink = preview::DryRun::new(self.store, report.run_id);
            let mut survey = self.run.survey(&in_context, &mut sink).await?;
            if self.run.holding {
                self.run.held = hold::split(&mut survey.kept, &self.run.approved);
            }
            survey.show_skips();
            self.run.read_context(&context).await?;
            match self.guard(&survey.kept).await? {
                Verdict::Refused(refusal) => {
                    // The report shows the whole plan it refused (written page by page).
                    report.counts.extend(survey.counts);
                    let skips = Plan {
                        skipped: survey.kept.skipped,
                        filter_failures: survey.kept.filter_failures,
                        ..Plan::default()
                    };
                    report.refuse(sink.pages, &skips, refusal).await?;
                }
                Verdict::Pass(access_plan) => {
                    let declared = &self.config.permission_sets[..];
                    let access = (&self.access, access_plan.as_ref(), declared);
                    preview::report(report, survey, sink.pages, access).await?;
                    self.run.report_held(report);
                }
            }
            return Ok(());
        }
        let mut survey = self.run.survey(&in_context, paged::NoSink).await?;
        if self.run.holding {
            self.run.held = hold::split(&mut survey.kept, &self.run.approved);
        }
        survey.show_skips();
        self.run.read_context(&context).await?;
        let access_plan = match self.guard(&survey.kept).await? {
            Verdict::Pass(access_plan) => access_plan,
            Verdict::Refused(refusal) => {
                // The report shows what the guard weighed: the deletes and removals.
                report.counts.extend(survey.counts);
                let pages = PlanWriter::new(self.store, report.run_id);
                report.refuse(pages, &survey.kept, refusal).await?;
                return Ok(());
            }
        };
        self.unassign_doomed(&survey.kept, access_plan.as_ref()).await?;
        let progress = self.opts.progress();
        progress.phase("applying", survey.counts.values().sum());
        self.run.delete_first(&survey).await?;
        let mut skips = paged::Skips::default();
        let force = self.opts.force;
        if let Some(refusal) =
            self.run.apply_pages(&mut survey, &mut skips, false, force, progress).await?
        {
            report.counts.extend(self.run.apply.done.clone());
            report.removals = counts::removals_of(&self.run.apply.done);
            let pages = PlanWriter::new(self.store, report.run_id);
            report.refuse(pages, &survey.kept, refusal).await?;
            return Ok(());
        }
        let covered = self.run.lane.covered;
        // Close: renames that waited for a name another rename freed, then one pass for what
        // could only be planned once this run's creates had AWS ids (a manager created in the
        // same run). Its own creates wait for the next run.
        self.run.apply.retry_deferred().await?;
        if created_any(&self.run.apply.done) {
            let mut closing = paged::Skips::default();
            // Updates only: nothing in it is weighed by the guard.
            let _never_refused =
                self.run.apply_pages(&mut survey, &mut closing, true, force, progress).await?;
            skips = closing;
        }
        let mut left = Left { skipped: skips.skipped, filter_failures: skips.filter_failures };
        // The access plan is made against the principals it reads, as they are now.
        self.run.read_context(&context).await?;
        self.access(&mut left, report).await?;
        self.finish(left, covered, report).await
    }

    /// The assignments of the principals `plan` deletes: they go before the principals do.
    async fn unassign_doomed(
        &mut self,
        plan: &Plan,
        access_plan: Option<&AccessPlan>,
    ) -> Result<(), SyncError> {
        let Some(access_plan) = access_plan else { return Ok(()) };
        let doomed = deleted(plan);
        let first: Vec<_> = access_plan
            .unassign
            .iter()
            .filter(|u| doomed.contains(u.key.principal_id.as_str()))
            .cloned()
            .collect();
        self.access.unassign(&first).await?;
        Ok(())
    }

    /// The principals an access plan reads besides those a plan changes.
    async fn access_context(&self) -> Result<Vec<Uuid>, SyncError> {
        let assigned: Vec<String> =
            self.access.state.assignments.iter().map(|a| a.key.principal_id.clone()).collect();
        access_context(self.store, &self.config.assignments, &assigned).await
    }

    /// Guard: the plan's deletes and removals, then the assignment deletes the plan's principal
    /// changes lead to, checked before anything changes (a paged run's `plan` holds only what
    /// the guard weighs).
    async fn guard(&mut self, plan: &Plan) -> Result<Verdict, SyncError> {
        let (settings, force) = (&self.config.sync, self.opts.force);
        if let Some(refusal) = guard::principals(plan, &self.run.window, settings, force) {
            return Ok(Verdict::Refused(refusal));
        }
        let first_access_plan = if self.access_active {
            let config = self.config;
            let names =
                access_plan::permission_set_names(&config.permission_sets, &config.assignments);
            self.access
                .resolve_permission_sets(&names, &config.permission_sets, self.opts.full)
                .await?;
            let after = principals_after(&self.run.state, Some(plan));
            let mut access_plan =
                plan_access(config, &self.access, &self.run.snapshot, &after, &self.sources);
            if self.run.holding {
                self.run.held_access =
                    hold::split_unassign(&mut access_plan, &self.run.approved, &deleted(plan));
            }
            Some(access_plan)
        } else {
            None
        };
        if let Some(refusal) = first_access_plan
            .as_ref()
            .and_then(|p| guard::assignments(p, &self.run.window, settings, force))
        {
            return Ok(Verdict::Refused(refusal));
        }
        Ok(Verdict::Pass(first_access_plan))
    }

    /// Apply: the assignments of principals the plan deletes go first, then the plan, action by
    /// action. What the IdP changes meanwhile (the change lane) is re-planned and goes first,
    /// however much of the plan is left. None: a re-plan was refused (the report says so).
    async fn apply(
        &mut self,
        plan: Plan,
        access_plan: Option<&AccessPlan>,
        report: &mut RunReport,
    ) -> Result<Option<Left>, SyncError> {
        self.unassign_doomed(&plan, access_plan).await?;
        let (settings, force) = (&self.config.sync, self.opts.force);
        let mut left = Left { skipped: plan.skipped, filter_failures: plan.filter_failures };
        let mut queue: VecDeque<Action> = plan.actions.into();
        let progress = self.opts.progress();
        progress.phase("applying", queue.len() as u64);
        let mut applied = 0u64;
        while let Some(action) = queue.pop_front() {
            self.run.check_stop()?;
            self.run.apply.one(&action).await?;
            applied += 1;
            progress.step();
            if !self.run.lane.due(self.store).await? {
                continue;
            }
            // Changes that can no longer be planned apart wait for the next run.
            let Some((plan, changed)) = self.run.replan().await? else { continue };
            if let Some(refusal) = guard::principals(&plan, &self.run.window_now(), settings, force)
            {
                report.counts.extend(self.run.apply.done.clone());
                report.removals = counts::removals_of(&self.run.apply.done);
                report.refuse(PlanWriter::new(self.store, report.run_id), &plan, refusal).await?;
                return Ok(None);
            }
            tracing::info!(
                changed = changed.len(),
                "sync: pushing changes made during the run first"
            );
            left = Left { skipped: plan.skipped, filter_failures: plan.filter_failures };
            let (urgent, rest) = prioritise(plan.actions, &changed);
            queue = urgent.into_iter().chain(rest).collect();
            progress.resize(applied + queue.len() as u64);
        }
        Ok(Some(left))
    }

    /// Close: renames that waited for a name another rename freed (names swapped at the IdP),
    /// then one pass for what could only be planned once this run's creates had AWS ids (an
    /// enterprise manager created in the same run). One pass: its own creates wait for the next.
    async fn close(&mut self, left: &mut Left) -> Result<(), SyncError> {
        self.run.apply.retry_deferred().await?;
        if !created_any(&self.run.apply.done) {
            return Ok(());
        }
        let Some((plan, _)) = self.run.replan().await? else { return Ok(()) };
        let (settings, force) = (&self.config.sync, self.opts.force);
        if guard::principals(&plan, &self.run.window_now(), settings, force).is_none() {
            *left = Left { skipped: plan.skipped, filter_failures: plan.filter_failures };
            for action in plan.actions.iter().filter(|a| matches!(a, Action::Update { .. })) {
                self.run.apply.one(action).await?;
            }
        }
        Ok(())
    }

    /// Access: permission sets first (assignments need their ARNs), then the assignments,
    /// planned against the principals as AWS now has them.
    async fn access(&mut self, left: &mut Left, report: &mut RunReport) -> Result<(), SyncError> {
        if !self.access_active {
            return Ok(());
        }
        let config = self.config;
        self.access.sync_permission_sets(&config.permission_sets, self.opts.full).await?;
        let state = self.run.record_now().await?;
        // A principal this run created has no assignment yet: none is looked up for it.
        self.access.created_principals = self.run.apply.created.clone();
        let after = principals_after(&state, None);
        let mut access_plan =
            plan_access(config, &self.access, &self.run.snapshot, &after, &self.sources);
        if self.run.holding {
            // The principals this run deleted are gone from the record: their assignments
            // went first, and none is left to plan.
            self.run.held_access =
                hold::split_unassign(&mut access_plan, &self.run.approved, &HashSet::new());
        }
        if let Some(refusal) =
            guard::assignments(&access_plan, &self.run.window, &config.sync, self.opts.force)
        {
            // The principal changes since the first check made it so: the deletes wait, and
            // the run says so (partial).
            self.access
                .failures
                .push(Skipped { principal: "(assignments)".into(), message: refusal });
            access_plan.unassign.clear();
        }
        self.opts.progress().phase("assigning", 0);
        self.access.apply(&access_plan).await?;
        if access_plan.deletes_allowed {
            left.skipped.extend(access_plan.skipped);
        } else {
            // A rule names a permission set AWS does not have: the setup is wrong (exit 2).
            report.configuration_error = true;
            for s in &access_plan.skipped {
                tracing::error!(rule = %s.principal, "{}", s.message);
            }
            self.access.failures.extend(access_plan.skipped);
        }
        Ok(())
    }

    /// Report: counts, failures and status, then the holds are settled.
    async fn finish(
        self,
        left: Left,
        covered: i64,
        report: &mut RunReport,
    ) -> Result<(), SyncError> {
        let mut failures = self.run.apply.failures.clone();
        failures.extend(self.access.failures.iter().cloned());
        if !left.filter_failures.is_empty() {
            // A [sync.filter] expression that does not give true or false is a configuration
            // error (exit 2), listed per principal.
            report.configuration_error = true;
            failures.extend(left.filter_failures);
        }
        report.add_counts(&self.run.apply.done);
        counts::add_keyed(&mut report.counts, &self.access.done);
        report.removals = counts::removals_of(&report.counts);
        report.errors.extend(left.skipped);
        report.errors.extend(failures.iter().cloned());
        report.status = if failures.is_empty() { RunStatus::Succeeded } else { RunStatus::Partial };
        report.journal_head = Some(covered);
        self.run.report_held(report);
        self.run.settle_holds(report).await?;
        Ok(())
    }
}
