//! One sync run: read the SCIM side and the bridge's record, (on a full run) re-read AWS to
//! repair drift, plan, check the delete guard, apply — recording every AWS change as it
//! happens, so a run killed half-way leaves a record the next run continues from — and report.

use super::access::apply::{self as access_apply, AccessRun};
use super::access::plan::{self as access_plan, AccessPlan, PrincipalAfter};
use super::access::rules::{AssignmentSettings, PermissionSetSettings};
use super::apply::Apply;
use super::directory::{AwsError, Directory};
use super::guard;
use super::hold::{self, Held};
use super::plan::{self, Action, Plan, Policy, Skipped};
use crate::config::SyncSettings;
use crate::mapping::rules::Rules;
use crate::names::fold;
use crate::store::{AwsMembership, Removals, RunRecord, Snapshot, Store, SyncState};
use scim_schema::schema::ResourceKind;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Where a run reports how far it is (the CLI's progress bar); the default reports nowhere.
pub trait Progress: Send + Sync {
    /// A phase begins (`reading AWS`, `applying`) with this many steps.
    fn phase(&self, name: &str, steps: u64);
    /// One more step of the phase is done.
    fn step(&self);
    /// The phase now has this many steps (a re-plan changed what is left).
    fn resize(&self, steps: u64);
    /// The run is over.
    fn finish(&self) {}
}

#[derive(Clone, Default)]
pub struct RunOptions {
    /// Plan and report only: no AWS write.
    pub dry_run: bool,
    /// Re-read the Identity Store and repair drift before planning.
    pub full: bool,
    /// Pass the delete guard.
    pub force: bool,
    /// `cli`, `schedule`, `startup`, `change`, `admin`.
    pub trigger: String,
    /// The id to record the run under (the admin API hands it out before the run starts).
    pub run_id: Option<Uuid>,
    pub progress: Option<std::sync::Arc<dyn Progress>>,
    /// Set when the server shuts down: the run stops before its next AWS call.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// Why a run stopped early when the server shut down.
pub(crate) const STOPPED: &str =
    "stopped: the server is shutting down; the next run continues from the record";

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("dry_run", &self.dry_run)
            .field("full", &self.full)
            .field("force", &self.force)
            .field("trigger", &self.trigger)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    fn progress(&self) -> &dyn Progress {
        struct Silent;
        impl Progress for Silent {
            fn phase(&self, _: &str, _: u64) {}
            fn step(&self) {}
            fn resize(&self, _: u64) {}
        }
        self.progress.as_deref().unwrap_or(&Silent)
    }
}

/// What `scimbridge sync --json` prints and `GET /admin/v1/sync/runs/{id}` returns.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: Uuid,
    /// `succeeded`, `partial` (some principals failed), `failed`, `refused` (delete guard).
    pub status: &'static str,
    pub trigger: String,
    pub dry_run: bool,
    pub full: bool,
    pub counts: BTreeMap<String, u64>,
    pub aws_calls: BTreeMap<String, u64>,
    pub throttles: u64,
    pub errors: Vec<Skipped>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<Value>>,
    /// `[sync] approve_destructive`: the destructive actions the run held for approval (at
    /// most [`hold::SHOWN`]; `counts` has every `held_…`). A dry run shows what it would hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Value>,
    /// The approval the held actions wait for: `run_id` (what `sync approve` takes; an earlier
    /// run's when it held the same actions), `status` (`pending`, …), `held_at`, `held`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
    /// Runs whose approved actions this run applied (those still planned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applied_approvals: Vec<Uuid>,
    /// The fingerprint of the rules the run planned with ([`super::fingerprint`]); null for a
    /// requested run that never ran.
    pub rules_fingerprint: Option<String>,
    /// The change-journal head the run's last plan covered (a real run that finished).
    #[serde(skip)]
    pub journal_head: Option<i64>,
    /// The run failed because the setup is wrong (access denied, no identity store, KMS).
    #[serde(skip)]
    pub configuration_error: bool,
    /// The run failed because AWS could not be reached at all (see [`AwsError::Unreachable`]).
    #[serde(skip)]
    pub unreachable: bool,
    /// Run with `--force`.
    #[serde(skip)]
    pub forced: bool,
    /// What the run deleted and removed in AWS (for the guard's window).
    #[serde(skip)]
    pub removals: Removals,
}

impl RunReport {
    /// The CLI's exit code (DESIGN.md): 0 done (skips included), 1 AWS failures, 2 the setup
    /// is wrong (permissions, the identity store or its KMS key), 3 refused.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            "succeeded" => 0,
            "refused" => 3,
            _ if self.configuration_error => 2,
            _ => 1,
        }
    }
}

/// What a run needs of the configuration: `[sync]`, the compiled `[sync.filter]` and
/// `[mapping]`, `[[permission_sets]]` and `[assignments]`.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub sync: SyncSettings,
    pub rules: std::sync::Arc<Rules>,
    pub permission_sets: std::sync::Arc<Vec<PermissionSetSettings>>,
    pub assignments: std::sync::Arc<AssignmentSettings>,
    /// Sources with `adopt_existing` (see [`Policy::adopt_existing`]).
    pub adopt_existing: HashSet<String>,
    /// The fingerprint of these rules, recorded with every run.
    pub rules_fingerprint: String,
}

impl SyncConfig {
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<SyncConfig> {
        Ok(SyncConfig {
            sync: settings.sync.clone(),
            rules: std::sync::Arc::new(Rules::compile(&settings.sync.filter, &settings.mapping)?),
            permission_sets: std::sync::Arc::new(settings.permission_sets.clone()),
            assignments: std::sync::Arc::new(settings.assignments.clone()),
            adopt_existing: settings
                .sources
                .iter()
                .filter(|(_, s)| s.adopt_existing)
                .map(|(name, _)| name.clone())
                .collect(),
            rules_fingerprint: super::fingerprint::of(settings),
        })
    }
}

/// How long a run's lease lasts without renewal (a crashed holder blocks others this long).
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// [`run`] under the sync lease: one run at a time across every replica and CLI. Waits up to
/// `wait` for another run to finish; `None` when it did not.
pub async fn run_exclusive(
    store: std::sync::Arc<dyn Store>,
    directory: &dyn Directory,
    config: &SyncConfig,
    opts: &RunOptions,
    wait: std::time::Duration,
) -> anyhow::Result<Option<RunReport>> {
    let holder = Uuid::now_v7();
    let deadline = std::time::Instant::now() + wait;
    while !store.acquire_sync_lease(holder, LEASE.as_secs() as u32).await? {
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tracing::info!("another sync run holds the lease; waiting");
        tokio::time::sleep(std::time::Duration::from_secs(1).min(wait)).await;
    }
    // Checked under the lease: a pause placed while this run waited for it is obeyed. A dry
    // run changes nothing, so it runs while paused.
    if !opts.dry_run
        && let Some(pause) = match store.sync_pause().await {
            Ok(p) => p,
            Err(e) => {
                let _ = store.release_sync_lease(holder).await;
                return Err(e.into());
            }
        }
    {
        if let Err(e) = store.release_sync_lease(holder).await {
            tracing::warn!(error = %e, "could not release the sync lease; it expires by itself");
        }
        return Err(super::control::SyncPaused(pause).into());
    }
    // Renewed in the background while the run lasts. Lost (this process stalled past the
    // lease and another run took it), the run stops: two runs at once could fight.
    let lost = std::sync::Arc::new(tokio::sync::Notify::new());
    let renewer = {
        let (store, lost) = (store.clone(), lost.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                match store.acquire_sync_lease(holder, LEASE.as_secs() as u32).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::error!(
                            "the sync lease was lost to another run; stopping this one"
                        );
                        lost.notify_one();
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "could not renew the sync lease"),
                }
            }
        })
    };
    // Stops renewing however the run ends (error, panic, cancellation).
    let _renewing = AbortOnDrop(renewer);
    let mut opts = opts.clone();
    opts.run_id.get_or_insert_with(Uuid::now_v7);
    let report = tokio::select! {
        report = run(&*store, directory, config, &opts) => report,
        () = lost.notified() => {
            let why = "the sync lease was lost to another run (this process stalled past it); \
                       the run stopped and the next one continues from its record";
            record_abandoned(&*store, &opts, why).await?;
            Err(anyhow::anyhow!(why))
        }
    };
    drop(_renewing);
    if let Err(e) = store.release_sync_lease(holder).await {
        tracing::warn!(error = %e, "could not release the sync lease; it expires by itself");
    }
    report.map(Some)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Records a requested run as `running` before it starts (it may wait for the lease).
pub async fn record_requested(store: &dyn Store, opts: &RunOptions) -> anyhow::Result<()> {
    save(store, &RunReport::new(opts), crate::store::now(), false).await
}

/// Records a requested run that never ran as failed.
pub async fn record_abandoned(
    store: &dyn Store,
    opts: &RunOptions,
    why: &str,
) -> anyhow::Result<()> {
    let mut report = RunReport::new(opts);
    report.status = "failed";
    report.errors.push(Skipped { principal: "(run)".into(), message: why.to_owned() });
    save(store, &report, crate::store::now(), true).await
}

impl RunReport {
    pub(crate) fn new(opts: &RunOptions) -> RunReport {
        RunReport {
            run_id: opts.run_id.unwrap_or_else(Uuid::now_v7),
            status: "running",
            trigger: opts.trigger.clone(),
            dry_run: opts.dry_run,
            full: opts.full,
            counts: BTreeMap::new(),
            aws_calls: BTreeMap::new(),
            throttles: 0,
            errors: Vec::new(),
            plan: None,
            held: Vec::new(),
            approval: None,
            applied_approvals: Vec::new(),
            rules_fingerprint: None,
            journal_head: None,
            configuration_error: false,
            unreachable: false,
            forced: opts.force && !opts.dry_run,
            removals: Removals::default(),
        }
    }
}

pub async fn run(
    store: &dyn Store,
    directory: &dyn Directory,
    config: &SyncConfig,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    let started_at = crate::store::now();
    let mut report = RunReport::new(opts);
    report.rules_fingerprint = Some(config.rules_fingerprint.clone());
    save(store, &report, started_at, false).await?;
    // The run's own calls (not, say, the instance discovery before it).
    let (calls_before, throttles_before) = (directory.calls(), directory.throttles());
    let outcome = execute(store, directory, config, opts, &mut report).await;
    opts.progress().finish();
    report.aws_calls = directory
        .calls()
        .into_iter()
        .map(|(op, n)| {
            let before = calls_before.get(&op).copied().unwrap_or(0);
            (op, n - before)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    report.throttles = directory.throttles() - throttles_before;
    if let Err(e) = &outcome {
        report.status = "failed";
        report.configuration_error = matches!(
            e.downcast_ref::<AwsError>(),
            Some(AwsError::AccessDenied { .. } | AwsError::Configuration { .. })
        );
        report.unreachable =
            super::health::failure_kind(e) == crate::store::FailureKind::Unreachable;
        report.errors.push(Skipped { principal: "(run)".into(), message: format!("{e:#}") });
    }
    save(store, &report, started_at, true).await?;
    record_metrics(&report, started_at);
    tracing::info!(
        run_id = %report.run_id, status = report.status,
        counts = %crate::telemetry::AsJson(&report.counts),
        aws_calls = %crate::telemetry::AsJson(&report.aws_calls), errors = report.errors.len(),
        dry_run = report.dry_run, "sync run finished"
    );
    Ok(report)
}

/// The run in `/metrics`: runs by trigger, status and whether they were dry runs, duration,
/// changes by action. Dry runs are labelled `dry_run="true"`, so that alerts on real runs
/// (`dry_run="false"`) are never satisfied by a preview.
fn record_metrics(report: &RunReport, started_at: crate::store::Timestamp) {
    let seconds = (crate::store::now() - started_at).as_seconds_f64().max(0.0);
    let (trigger, status) = (report.trigger.clone(), report.status);
    let dry_run = if report.dry_run { "true" } else { "false" };
    metrics::counter!("scimbridge_sync_runs_total", "trigger" => trigger.clone(), "status" => status, "dry_run" => dry_run)
        .increment(1);
    metrics::histogram!("scimbridge_sync_run_duration_seconds", "trigger" => trigger, "dry_run" => dry_run)
        .record(seconds);
    metrics::gauge!("scimbridge_sync_last_run_timestamp_seconds", "status" => status, "dry_run" => dry_run)
        .set(crate::store::now().timestamp() as f64);
    if !report.dry_run && report.status != "refused" {
        // Held actions are not changes (they wait for approval).
        for (action, n) in report.counts.iter().filter(|(k, _)| !k.starts_with("held_")) {
            metrics::counter!("scimbridge_sync_changes_total", "action" => action.clone())
                .increment(*n);
        }
    }
}

async fn save(
    store: &dyn Store,
    report: &RunReport,
    started_at: crate::store::Timestamp,
    finished: bool,
) -> anyhow::Result<()> {
    let record = RunRecord {
        id: report.run_id,
        trigger: report.trigger.parse()?,
        dry_run: report.dry_run,
        status: report.status.parse()?,
        started_at,
        finished_at: finished.then(crate::store::now),
        journal_head: report.journal_head.filter(|_| finished),
        report: serde_json::to_value(report)?,
        forced: report.forced,
        removals: report.removals,
        rules_fingerprint: report.rules_fingerprint.clone(),
    };
    store.save_run(&record).await?;
    Ok(())
}

async fn execute(
    store: &dyn Store,
    directory: &dyn Directory,
    config: &SyncConfig,
    opts: &RunOptions,
    report: &mut RunReport,
) -> anyhow::Result<()> {
    let settings = &config.sync;
    let mut run = Run::start(store, directory, config, opts, report.run_id).await?;
    let mut access =
        AccessRun::load(store, directory.sso(), report.run_id, opts.dry_run, opts.stop.clone())
            .await?;
    // With no rules left, the assignments the bridge made are still deleted (under the guard).
    let access_active = access_apply::configured(&config.permission_sets, &config.assignments)
        || !access.state.assignments.is_empty();
    // Rules reach only the principals of their source (a rule without one, only while there
    // is a single source).
    let sources: Vec<String> = store.list_sources().await?.into_iter().map(|s| s.name).collect();
    if !opts.dry_run {
        run.apply.resolve_pending().await?;
        if access_active {
            access.settle_in_flight().await?;
        }
    }
    if opts.full {
        run.repair_drift(&mut report.counts, opts.progress()).await?;
        if access_active {
            access.repair_drift().await?;
        }
    }
    let mut plan = run.replan().await?.0;
    if opts.dry_run {
        // What a real run's creates would meet in AWS: adoptions, and refusals to adopt.
        resolve_adoptions(directory, &mut plan, &run.state).await?;
    }
    if let Some(refusal) = guard::principals(&plan, &run.window, settings, opts.force) {
        report.counts.extend(planned_counts(&plan));
        refuse(report, &plan, refusal);
        return Ok(());
    }
    // The assignments as they will be once the plan's principal changes are in: checked by the
    // guard before anything changes, and what a dry run shows.
    let first_access_plan = if access_active {
        let names = access_plan::permission_set_names(&config.permission_sets, &config.assignments);
        access.resolve_permission_sets(&names, &config.permission_sets, opts.full).await?;
        let after = principals_after(&run.state, Some(&plan));
        let mut access_plan = plan_access(config, &access, &run.snapshot, &after, &sources);
        if run.holding {
            run.held_access =
                hold::split_unassign(&mut access_plan, &run.approved, &deleted(&plan));
        }
        Some(access_plan)
    } else {
        None
    };
    if let Some(refusal) = first_access_plan
        .as_ref()
        .and_then(|p| guard::assignments(p, &run.window, settings, opts.force))
    {
        report.counts.extend(planned_counts(&plan));
        refuse(report, &plan, refusal);
        return Ok(());
    }
    if opts.dry_run {
        report.counts.extend(planned_counts(&plan));
        report.errors.extend(plan.skipped.iter().cloned());
        report.errors.extend(plan.filter_failures.iter().cloned());
        let mut described = plan::describe(&plan.actions);
        report.status = "succeeded";
        if !plan.filter_failures.is_empty() {
            // What the real run would say: the filter is wrong for these principals (exit 2).
            report.status = "partial";
            report.configuration_error = true;
        }
        if let Some(access_plan) = &first_access_plan {
            let sets = access.planned_permission_sets(&config.permission_sets);
            // What the drift check found, and what the plan would do.
            let planned = access_apply::planned_counts(access_plan, &sets);
            for (k, n) in access.done.iter().chain(&planned) {
                *report.counts.entry(k.clone()).or_default() += n;
            }
            described.extend(sets);
            described.extend(access_apply::describe(access_plan));
            report.errors.extend(access_plan.skipped.iter().cloned());
            if !access_plan.deletes_allowed {
                // A rule names a permission set AWS does not have: the real run would exit 2.
                report.status = "partial";
                report.configuration_error = true;
            }
        }
        report.plan = Some(described);
        run.report_held(report);
        return Ok(());
    }
    // Principals in AWS before this run's creates (a created one has no assignment yet).
    let existed_before: HashSet<String> =
        run.state.principals.iter().map(|p| p.aws_id.clone()).collect();
    if let Some(access_plan) = &first_access_plan {
        // The assignments of principals this run deletes go before the principals do.
        let doomed = deleted(&plan);
        let first: Vec<_> = access_plan
            .unassign
            .iter()
            .filter(|u| doomed.contains(u.key.principal_id.as_str()))
            .cloned()
            .collect();
        access.unassign(&first).await?;
    }
    let mut skipped = plan.skipped;
    let mut filter_failures = plan.filter_failures;
    let mut queue: VecDeque<Action> = plan.actions.into();
    let progress = opts.progress();
    progress.phase("applying", queue.len() as u64);
    let mut applied = 0u64;
    while let Some(action) = queue.pop_front() {
        run.check_stop()?;
        run.apply.one(&action).await?;
        applied += 1;
        progress.step();
        // The second lane: what the IdP changed since the plan was made goes first, however
        // much of the plan is left.
        if run.lane.due(store).await? {
            let (plan, changed) = run.replan().await?;
            if let Some(refusal) = guard::principals(&plan, &run.window_now(), settings, opts.force)
            {
                report.counts.extend(run.apply.done.clone());
                report.removals = guard::removals_of(&run.apply.done);
                refuse(report, &plan, refusal);
                return Ok(());
            }
            tracing::info!(
                changed = changed.len(),
                "sync: pushing changes made during the run first"
            );
            skipped = plan.skipped;
            filter_failures = plan.filter_failures;
            let (urgent, rest) = prioritise(plan.actions, &changed);
            queue = urgent.into_iter().chain(rest).collect();
            progress.resize(applied + queue.len() as u64);
        }
    }
    // Renames that waited for a name another rename freed (names swapped at the IdP).
    run.apply.retry_deferred().await?;
    // A closing pass for what could only be planned once this run's creates had AWS ids (an
    // enterprise manager created in the same run). One pass: its own creates wait for the next.
    // The journal head covered is the one before this pass: the pass applies only updates, so
    // an IdP change it happens to see is left for the next run.
    let covered = run.lane.covered;
    if run.apply.done.keys().any(|k| k.starts_with("create_")) {
        let (plan, _) = run.replan().await?;
        if guard::principals(&plan, &run.window_now(), settings, opts.force).is_none() {
            skipped = plan.skipped;
            filter_failures = plan.filter_failures;
            for action in plan.actions.iter().filter(|a| matches!(a, Action::Update { .. })) {
                run.apply.one(action).await?;
            }
        }
    }
    if access_active {
        // Permission sets first (assignments need their ARNs), then the assignments, planned
        // against the principals as AWS now has them.
        access.sync_permission_sets(&config.permission_sets, opts.full).await?;
        let state = store.sync_state().await?;
        access.created_principals = state
            .principals
            .iter()
            .filter(|p| p.ownership == crate::store::Ownership::Created)
            .filter(|p| !existed_before.contains(&p.aws_id))
            .map(|p| p.aws_id.clone())
            .collect();
        let mut access_plan =
            plan_access(config, &access, &run.snapshot, &principals_after(&state, None), &sources);
        if run.holding {
            // The principals this run deleted are gone from the record: their assignments
            // went first, and none is left to plan.
            run.held_access =
                hold::split_unassign(&mut access_plan, &run.approved, &HashSet::new());
        }
        if let Some(refusal) = guard::assignments(&access_plan, &run.window, settings, opts.force) {
            // The principal changes since the first check made it so: the deletes wait, and
            // the run says so (partial).
            access.failures.push(Skipped { principal: "(assignments)".into(), message: refusal });
            access_plan.unassign.clear();
        }
        progress.phase("assigning", 0);
        access.apply(&access_plan).await?;
        if access_plan.deletes_allowed {
            skipped.extend(access_plan.skipped);
        } else {
            // A rule names a permission set AWS does not have: the setup is wrong (exit 2).
            report.configuration_error = true;
            for s in &access_plan.skipped {
                tracing::error!(rule = %s.principal, "{}", s.message);
            }
            access.failures.extend(access_plan.skipped);
        }
    }
    let mut failures = run.apply.failures.clone();
    failures.extend(access.failures.iter().cloned());
    if !filter_failures.is_empty() {
        // A [sync.filter] expression that does not give true or false is a configuration
        // error (exit 2), listed per principal.
        report.configuration_error = true;
        failures.extend(filter_failures);
    }
    for (key, n) in run.apply.done.iter().chain(&access.done) {
        *report.counts.entry(key.clone()).or_default() += n;
    }
    report.removals = guard::removals_of(&report.counts);
    report.errors.extend(skipped);
    report.errors.extend(failures.iter().cloned());
    report.status = if failures.is_empty() { "succeeded" } else { "partial" };
    report.journal_head = Some(covered);
    run.report_held(report);
    run.settle_holds(report).await?;
    Ok(())
}

/// The AWS ids of the principals `plan` deletes.
fn deleted(plan: &Plan) -> HashSet<&str> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { aws_id, .. } => Some(aws_id.as_str()),
            _ => None,
        })
        .collect()
}

/// Up to this many creates of a kind, a dry run looks each name up in AWS; beyond, it lists
/// the kind once (a page holds 100).
const LOOKUPS_BEFORE_LISTING: usize = 200;

/// Turns a dry run's creates into what the real run would meet: a name held in AWS by a
/// principal the bridge does not manage becomes an `adopt` (the source has `adopt_existing`)
/// or an error, with the memberships it would have had (the principal is left as it is).
async fn resolve_adoptions(
    directory: &dyn Directory,
    plan: &mut Plan,
    state: &SyncState,
) -> anyhow::Result<()> {
    let managed: HashSet<(ResourceKind, &str)> =
        state.principals.iter().map(|p| (p.kind, p.aws_id.as_str())).collect();
    let mut held: HashMap<(ResourceKind, String), String> = HashMap::new();
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let names: Vec<&str> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Create { kind: k, name, .. } if *k == kind => Some(name.as_str()),
                _ => None,
            })
            .collect();
        if names.len() > LOOKUPS_BEFORE_LISTING {
            let listed = match kind {
                ResourceKind::User => directory.list_users().await?,
                ResourceKind::Group => directory.list_groups().await?,
            };
            held.extend(listed.into_iter().map(|l| ((kind, fold(&l.name)), l.id)));
        } else {
            for name in names {
                let found = match kind {
                    ResourceKind::User => directory.find_user(name).await?,
                    ResourceKind::Group => directory.find_group(name).await?,
                };
                if let Some(id) = found {
                    held.insert((kind, fold(name)), id);
                }
            }
        }
    }
    let mut refused: HashSet<Uuid> = HashSet::new();
    let mut actions = Vec::with_capacity(plan.actions.len());
    for action in std::mem::take(&mut plan.actions) {
        let Action::Create { kind, name, resource_id, source, may_adopt, attrs } = action else {
            actions.push(action);
            continue;
        };
        // A holder the bridge manages for another resource is not adoptable: the create goes
        // ahead and the run reports that conflict.
        let unmanaged = held
            .get(&(kind, fold(&name)))
            .filter(|aws_id| !managed.contains(&(kind, aws_id.as_str())));
        match unmanaged {
            None => {
                actions.push(Action::Create { kind, name, resource_id, source, may_adopt, attrs })
            }
            Some(aws_id) if may_adopt => actions.push(Action::Adopt {
                kind,
                name,
                resource_id,
                source,
                aws_id: aws_id.clone(),
                attrs,
            }),
            Some(aws_id) => {
                refused.insert(resource_id);
                let message = super::apply::not_adoptable(kind, &name, aws_id, &source);
                plan.skipped.push(Skipped { principal: name, message });
            }
        }
    }
    actions.retain(|a| match a {
        Action::AddMember { group_id, user_id, .. } => {
            !refused.contains(group_id) && !refused.contains(user_id)
        }
        _ => true,
    });
    plan.actions = actions;
    Ok(())
}

/// The principals as AWS will have them once `plan`'s changes are in (None: as recorded).
fn principals_after(state: &SyncState, plan: Option<&Plan>) -> Vec<PrincipalAfter> {
    let mut deleted = HashSet::new();
    let mut created = Vec::new();
    for a in plan.map(|p| p.actions.as_slice()).unwrap_or_default() {
        match a {
            Action::Delete { kind, resource_id, .. } => {
                deleted.insert((*kind, *resource_id));
            }
            Action::Create { kind, resource_id, .. } => created.push(PrincipalAfter {
                kind: *kind,
                resource_id: *resource_id,
                aws_id: None,
            }),
            Action::Adopt { kind, resource_id, aws_id, .. } => created.push(PrincipalAfter {
                kind: *kind,
                resource_id: *resource_id,
                aws_id: Some(aws_id.clone()),
            }),
            _ => {}
        }
    }
    state
        .principals
        .iter()
        .filter(|p| !deleted.contains(&(p.kind, p.resource_id)))
        .map(|p| PrincipalAfter {
            kind: p.kind,
            resource_id: p.resource_id,
            aws_id: Some(p.aws_id.clone()),
        })
        .chain(created)
        .collect()
}

fn plan_access(
    config: &SyncConfig,
    access: &AccessRun,
    snapshot: &Snapshot,
    principals: &[PrincipalAfter],
    sources: &[String],
) -> AccessPlan {
    access_plan::plan(
        &config.assignments,
        &access_plan::Inputs {
            snapshot,
            principals,
            on_deactivate: config.sync.on_deactivate,
            permission_sets: &access.permission_sets,
            recorded: &access.state.assignments,
            objects: &access.state.objects,
            sources,
        },
    )
}

fn planned_counts(plan: &Plan) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for a in &plan.actions {
        *counts.entry(a.count_key()).or_default() += 1;
    }
    counts
}

fn refuse(report: &mut RunReport, plan: &Plan, refusal: String) {
    report.status = "refused";
    report.plan = Some(plan::describe(&plan.actions));
    report.errors.extend(plan.skipped.iter().cloned());
    report.errors.extend(plan.filter_failures.iter().cloned());
    report.errors.push(Skipped { principal: "(run)".into(), message: refusal.clone() });
    tracing::error!(run_id = %report.run_id, "{refusal}");
}

/// Splits a plan into the actions that concern a changed SCIM resource (with the creates their
/// memberships need) and the rest; each part keeps the plan's order (deletes, updates,
/// creates, memberships).
fn prioritise(actions: Vec<Action>, changed: &HashSet<Uuid>) -> (Vec<Action>, Vec<Action>) {
    let mut needed: HashSet<Uuid> = changed.clone();
    for a in &actions {
        if let Action::AddMember { group_id, user_id, .. } = a
            && concerns_any(a, changed)
        {
            needed.insert(*group_id);
            needed.insert(*user_id);
        }
    }
    // A delete that frees the name of an urgent create goes first too (a user deleted and
    // provisioned again at the IdP).
    let freed: HashSet<(ResourceKind, String)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { kind, name, resource_id, .. }
            | Action::Adopt { kind, name, resource_id, .. }
                if needed.contains(resource_id) =>
            {
                Some((*kind, name.to_lowercase()))
            }
            _ => None,
        })
        .collect();
    let first = |a: &Action| match a {
        Action::Create { resource_id, .. } | Action::Adopt { resource_id, .. } => {
            needed.contains(resource_id)
        }
        Action::Delete { kind, name, .. } if freed.contains(&(*kind, name.to_lowercase())) => true,
        other => concerns_any(other, changed),
    };
    actions.into_iter().partition(first)
}

/// How often a run looks at the change journal for changes made while it lasts.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// At most this many journal rows name the changes to push first; beyond, the re-plan still
/// covers them, in the plan's order.
const PRIORITY_ROWS: i64 = 10_000;

/// Watches the change journal during a run: changes made after the current plan was made are
/// due once the journal has been quiet for `debounce_seconds` (as the scheduler would push
/// them), so a change reaches AWS within seconds even while a long run lasts.
struct ChangeLane {
    enabled: bool,
    debounce: Duration,
    /// The journal head the current plan covers.
    covered: i64,
    seen: i64,
    moved_at: Instant,
    looked_at: Instant,
}

impl ChangeLane {
    async fn due(&mut self, store: &dyn Store) -> anyhow::Result<bool> {
        if !self.enabled || self.looked_at.elapsed() < LOOK_EVERY {
            return Ok(false);
        }
        self.looked_at = Instant::now();
        let head = store.journal_head().await?;
        if head != self.seen {
            self.seen = head;
            self.moved_at = Instant::now();
            // The run looks only between its steps (a page of a long listing can take a
            // while): the quiet time counts from the newest change, not from when it was seen.
            if let Some(row) = store.journal_since(head - 1, 1).await?.first() {
                let age = (crate::store::now() - row.at).to_std().unwrap_or_default();
                self.moved_at = Instant::now().checked_sub(age).unwrap_or(self.moved_at);
            }
        }
        Ok(head > self.covered && self.moved_at.elapsed() >= self.debounce)
    }

    /// The SCIM resources the journal names after `covered`, up to `head`, which becomes the
    /// covered head.
    async fn take(&mut self, store: &dyn Store, head: i64) -> anyhow::Result<HashSet<Uuid>> {
        let mut changed = HashSet::new();
        if head > self.covered {
            for row in store.journal_since(self.covered, PRIORITY_ROWS).await? {
                if row.seq > head {
                    break;
                }
                if let Ok(id) = row.resource_id.parse() {
                    changed.insert(id);
                }
            }
        }
        self.covered = head;
        Ok(changed)
    }
}

/// What a full run read of the Identity Store.
struct Listing {
    users: HashSet<String>,
    groups: HashSet<String>,
    /// Per listed group (AWS id): (membership id, AWS user id).
    memberships: HashMap<String, Vec<(String, String)>>,
}

/// One run's working state: the record it applies against and the change lane.
struct Run<'a> {
    store: &'a dyn Store,
    directory: &'a dyn Directory,
    settings: &'a SyncSettings,
    dry_run: bool,
    policy: Policy,
    lane: ChangeLane,
    apply: Apply<'a>,
    /// The record as the current plan saw it.
    state: SyncState,
    /// The SCIM side as the current plan saw it.
    snapshot: Snapshot,
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// What the runs of the guard's window deleted and removed before this one.
    window: Removals,
    /// `[sync] approve_destructive`: destructive actions wait for an approval.
    holding: bool,
    /// The keys of the approved actions (of the holds approved when the run started), and
    /// those holds' runs.
    approved: HashSet<String>,
    approved_runs: Vec<Uuid>,
    /// What the latest plan held of the principal and membership changes, and of the
    /// assignment deletes.
    held: Vec<Held>,
    held_access: Vec<Held>,
}

impl<'a> Run<'a> {
    async fn start(
        store: &'a dyn Store,
        directory: &'a dyn Directory,
        config: &'a SyncConfig,
        opts: &RunOptions,
        run_id: Uuid,
    ) -> anyhow::Result<Run<'a>> {
        let settings = &config.sync;
        let head = store.journal_head().await?;
        let state = store.sync_state().await?;
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
                protected_users: settings.protected_users.iter().map(|u| fold(u)).collect(),
                protected_groups: settings.protected_groups.iter().map(|g| fold(g)).collect(),
                rules: config.rules.clone(),
                adopt_existing: config.adopt_existing.clone(),
            },
            lane: ChangeLane {
                enabled: !opts.dry_run,
                debounce: Duration::from_secs(settings.debounce_seconds),
                covered: head,
                seen: head,
                moved_at: Instant::now(),
                looked_at: Instant::now(),
            },
            apply: Apply::new(store, directory, run_id, &state),
            state,
            snapshot: Snapshot::default(),
            stop: opts.stop.clone(),
            window,
            holding: settings.approve_destructive,
            approved,
            approved_runs,
            held: Vec::new(),
            held_access: Vec::new(),
        })
    }

    /// The held actions into the report: `held_…` counts and the list (bounded).
    fn report_held(&self, report: &mut RunReport) {
        let all: Vec<&Held> = self.held.iter().chain(&self.held_access).collect();
        for h in &all {
            *report.counts.entry(format!("held_{}", h.count_key)).or_default() += 1;
        }
        report.held = all.iter().take(hold::SHOWN).map(|h| h.described.clone()).collect();
    }

    /// After a real run that was not refused: the approvals it honoured are applied; a pending
    /// approval for another set of actions than this run held is superseded; this run's held
    /// set waits for approval (under an earlier run's id when that run held exactly the same).
    async fn settle_holds(&self, report: &mut RunReport) -> anyhow::Result<()> {
        use crate::store::{Hold, HoldState};
        let now = crate::store::now();
        // An approved action that failed in AWS is still approved: the next run retries it
        // (while it is planned), instead of holding it for a second approval.
        let approved_runs =
            if report.status == "succeeded" { &self.approved_runs[..] } else { &[] };
        for run_id in approved_runs {
            if self
                .store
                .close_hold(*run_id, HoldState::Approved, HoldState::Applied, report.run_id, now)
                .await?
            {
                report.applied_approvals.push(*run_id);
            }
        }
        let held: Vec<&Held> = self.held.iter().chain(&self.held_access).collect();
        let keys: std::collections::BTreeSet<&str> = held.iter().map(|h| h.key.as_str()).collect();
        let mut waiting = None;
        for h in self.store.open_holds().await? {
            if h.state != HoldState::Pending {
                continue;
            }
            let same =
                h.action_keys.iter().map(String::as_str).collect::<std::collections::BTreeSet<_>>()
                    == keys;
            if same && waiting.is_none() && !keys.is_empty() {
                waiting = Some(h);
            } else {
                self.store
                    .close_hold(
                        h.run_id,
                        HoldState::Pending,
                        HoldState::Superseded,
                        report.run_id,
                        now,
                    )
                    .await?;
            }
        }
        if waiting.is_none() && !keys.is_empty() {
            let h = Hold {
                run_id: report.run_id,
                held_at: now,
                state: HoldState::Pending,
                action_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                actions: report.held.clone(),
                approved_at: None,
                approved_by: None,
                closed_at: None,
                closed_by_run: None,
            };
            self.store.put_hold(&h).await?;
            waiting = Some(h);
        }
        if let Some(h) = &waiting {
            tracing::warn!(
                run_id = %report.run_id, approval = %h.run_id, held = keys.len(),
                "sync: destructive actions held for approval (scimbridge sync approve {})",
                h.run_id
            );
        }
        report.approval = waiting.as_ref().map(super::control::hold_json);
        Ok(())
    }

    /// The window's removals and this run's so far: what a re-plan is judged with.
    fn window_now(&self) -> Removals {
        self.window + guard::removals_of(&self.apply.done)
    }

    /// Err once the server is shutting down (between AWS calls: what is done is recorded).
    fn check_stop(&self) -> anyhow::Result<()> {
        match &self.stop {
            Some(stop) if stop.load(std::sync::atomic::Ordering::Acquire) => {
                anyhow::bail!(STOPPED)
            }
            _ => Ok(()),
        }
    }

    /// A plan from the SCIM side and the record as they are now, and the SCIM resources changed
    /// since the previous plan. A dry run keeps its in-memory record (its drift repair is not
    /// written).
    async fn replan(&mut self) -> anyhow::Result<(Plan, HashSet<Uuid>)> {
        let head = self.store.journal_head().await?;
        let snapshot = self.store.snapshot().await?;
        if !self.dry_run {
            self.state = self.store.sync_state().await?;
            self.apply.reset(&self.state);
        }
        let changed = self.lane.take(self.store, head).await?;
        let mut plan = plan::plan(&snapshot, &self.state, &self.policy);
        if self.holding {
            self.held = hold::split(&mut plan, &self.approved);
        }
        self.snapshot = snapshot;
        Ok((plan, changed))
    }

    /// Pushes the changes made since the last plan, and only those (the read phase of a full
    /// run). A plan the delete guard would refuse is left to the run's own plan to refuse.
    async fn push_changes(&mut self) -> anyhow::Result<()> {
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

    /// Reads the Identity Store (pushing changes in between: reading a large one takes minutes)
    /// and repairs drift: a managed principal deleted outside the bridge is forgotten (and so
    /// re-created), and the memberships of managed groups are taken from AWS (so missing ones
    /// are added again and foreign additions of managed users removed). Users the bridge does
    /// not manage keep their memberships; what this run itself changed after a listing is left
    /// as recorded.
    async fn repair_drift(
        &mut self,
        counts: &mut BTreeMap<String, u64>,
        progress: &dyn Progress,
    ) -> anyhow::Result<()> {
        let before = self.state.clone();
        let listing = self.read_directory(&before, progress).await?;
        let existed: HashSet<(ResourceKind, &str)> =
            before.principals.iter().map(|p| (p.kind, p.aws_id.as_str())).collect();
        let mut state = if self.dry_run { before.clone() } else { self.store.sync_state().await? };
        let mut vanished = Vec::new();
        state.principals.retain(|p| {
            let listed = match p.kind {
                ResourceKind::User => &listing.users,
                ResourceKind::Group => &listing.groups,
            };
            let gone =
                existed.contains(&(p.kind, p.aws_id.as_str())) && !listed.contains(&p.aws_id);
            if gone {
                vanished.push(p.clone());
            }
            !gone
        });
        for p in &vanished {
            *counts.entry("drift_recreated".into()).or_default() += 1;
            tracing::warn!(name = %p.name, aws_id = %p.aws_id, "managed principal deleted outside the bridge; it will be re-created");
            if !self.dry_run {
                self.store.remove_principal(p.kind, p.resource_id).await?;
            }
        }
        let managed = |kind: ResourceKind| -> HashMap<String, Uuid> {
            state
                .principals
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| (p.aws_id.clone(), p.resource_id))
                .collect()
        };
        let (user_of_aws, group_of_aws) =
            (managed(ResourceKind::User), managed(ResourceKind::Group));
        let listed_groups: HashSet<Uuid> =
            listing.memberships.keys().filter_map(|g| group_of_aws.get(g).copied()).collect();
        let mut actual = HashMap::new();
        for (aws_group, members) in &listing.memberships {
            let Some(group_id) = group_of_aws.get(aws_group) else { continue };
            for (membership_id, aws_user) in members {
                if let Some(user_id) = user_of_aws.get(aws_user) {
                    actual.insert((*group_id, *user_id), membership_id.clone());
                }
            }
        }
        let touched = &self.apply.touched_memberships;
        let users: HashSet<Uuid> = user_of_aws.values().copied().collect();
        let groups: HashSet<Uuid> = group_of_aws.values().copied().collect();
        let mut memberships = Vec::new();
        for m in &state.memberships {
            let key = (m.group_id, m.user_id);
            let ends_gone = !groups.contains(&m.group_id) || !users.contains(&m.user_id);
            let judged = listed_groups.contains(&m.group_id) && !touched.contains(&key);
            if ends_gone || (judged && !actual.contains_key(&key)) {
                if !self.dry_run {
                    self.store.remove_membership(m.group_id, m.user_id).await?;
                }
            } else {
                memberships.push(m.clone());
            }
        }
        let recorded: HashSet<(Uuid, Uuid)> =
            state.memberships.iter().map(|m| (m.group_id, m.user_id)).collect();
        for ((group_id, user_id), membership_id) in actual {
            if recorded.contains(&(group_id, user_id)) || touched.contains(&(group_id, user_id)) {
                continue;
            }
            let m = AwsMembership { group_id, user_id, membership_id };
            if !self.dry_run {
                self.store.put_membership(&m).await?;
            }
            memberships.push(m);
        }
        state.memberships = memberships;
        self.state = state;
        Ok(())
    }

    async fn read_directory(
        &mut self,
        state: &SyncState,
        progress: &dyn Progress,
    ) -> anyhow::Result<Listing> {
        let groups_to_read = state.principals.iter().filter(|p| p.kind == ResourceKind::Group);
        progress.phase("reading AWS", 2 + groups_to_read.count() as u64);
        let users = self.directory.list_users().await?.into_iter().map(|l| l.id).collect();
        let groups: HashSet<String> =
            self.directory.list_groups().await?.into_iter().map(|l| l.id).collect();
        progress.step();
        progress.step();
        let mut memberships = HashMap::new();
        for g in state.principals.iter().filter(|p| p.kind == ResourceKind::Group) {
            self.check_stop()?;
            if self.lane.due(self.store).await? {
                self.push_changes().await?;
            }
            // A group this run deleted meanwhile (a pushed change) is not read.
            let still_managed = self.dry_run
                || self.state.principals.iter().any(|p| p.kind == g.kind && p.aws_id == g.aws_id);
            if groups.contains(&g.aws_id) && still_managed {
                match self.directory.list_memberships(&g.aws_id).await {
                    Ok(members) => {
                        memberships.insert(g.aws_id.clone(), members);
                    }
                    // Deleted since the group list was read: not judged now; the next full run
                    // sees it gone.
                    Err(AwsError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            progress.step();
        }
        Ok(Listing { users, groups, memberships })
    }
}

fn concerns_any(a: &Action, changed: &HashSet<Uuid>) -> bool {
    match a {
        Action::Create { resource_id, .. }
        | Action::Adopt { resource_id, .. }
        | Action::Update { resource_id, .. }
        | Action::Delete { resource_id, .. } => changed.contains(resource_id),
        Action::AddMember { group_id, user_id, .. }
        | Action::RemoveMember { group_id, user_id, .. } => {
            changed.contains(group_id) || changed.contains(user_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(kind: ResourceKind, id: Uuid) -> Action {
        Action::Create {
            kind,
            name: id.to_string(),
            resource_id: id,
            source: "okta".into(),
            may_adopt: false,
            attrs: Default::default(),
        }
    }

    #[test]
    fn changed_resources_and_the_creates_they_need_go_first_in_plan_order() {
        let (u1, u2, u3, g) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let add = |user_id| Action::AddMember {
            group: "g".into(),
            user: "u".into(),
            group_id: g,
            user_id,
        };
        let actions = vec![
            create(ResourceKind::User, u1),
            create(ResourceKind::User, u2),
            create(ResourceKind::User, u3),
            create(ResourceKind::Group, g),
            add(u1),
            add(u3),
        ];
        // The group changed (a member added): it, its memberships and the users they need.
        let (urgent, rest) = prioritise(actions.clone(), &HashSet::from([g]));
        assert_eq!(
            urgent,
            vec![
                actions[0].clone(),
                actions[2].clone(),
                actions[3].clone(),
                actions[4].clone(),
                actions[5].clone()
            ]
        );
        assert_eq!(rest, vec![actions[1].clone()]);
        // Only u2 changed: nothing else is urgent.
        let (urgent, rest) = prioritise(actions.clone(), &HashSet::from([u2]));
        assert_eq!(urgent, vec![actions[1].clone()]);
        assert_eq!(rest.len(), 5);
    }
}
