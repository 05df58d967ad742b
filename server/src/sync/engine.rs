//! One sync run: read the SCIM side and the bridge's record, (on a full run) re-read AWS to
//! repair drift, plan, check the delete guard, apply — recording every AWS change as it
//! happens, so a run killed half-way leaves a record the next run continues from — and report.

use super::directory::{AwsError, Directory};
use super::plan::{self, Action, Plan, Policy, Skipped};
use crate::config::SyncSettings;
use crate::store::{AuditRow, AwsMembership, AwsPrincipal, Ownership, RunRecord, Store, SyncState};
use scim_schema::schema::ResourceKind;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Plan and report only: no AWS write.
    pub dry_run: bool,
    /// Re-read the Identity Store and repair drift before planning.
    pub full: bool,
    /// Pass the delete guard.
    pub force: bool,
    /// `cli`, `schedule`, `change`, `admin`.
    pub trigger: String,
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
}

impl RunReport {
    /// The CLI's exit code (DESIGN.md): 0 done (skips included), 1 AWS failures, 3 refused.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            "succeeded" => 0,
            "refused" => 3,
            _ => 1,
        }
    }
}

/// How long a run's lease lasts without renewal (a crashed holder blocks others this long).
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// [`run`] under the sync lease: one run at a time across every replica and CLI. Waits up to
/// `wait` for another run to finish; `None` when it did not.
pub async fn run_exclusive(
    store: std::sync::Arc<dyn Store>,
    directory: &dyn Directory,
    settings: &SyncSettings,
    opts: &RunOptions,
    wait: std::time::Duration,
) -> anyhow::Result<Option<RunReport>> {
    let holder = Uuid::now_v7();
    let until = || crate::store::now() + chrono::Duration::from_std(LEASE).unwrap_or_default();
    let deadline = std::time::Instant::now() + wait;
    while !store.acquire_sync_lease(holder, until()).await? {
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tracing::info!("another sync run holds the lease; waiting");
        tokio::time::sleep(std::time::Duration::from_secs(1).min(wait)).await;
    }
    // Renewed in the background while the run lasts.
    let renewer = {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                match store.acquire_sync_lease(holder, until()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::error!("the sync lease was lost to another run"),
                    Err(e) => tracing::warn!(error = %e, "could not renew the sync lease"),
                }
            }
        })
    };
    // Stops renewing however the run ends (error, panic, cancellation).
    let _renewing = AbortOnDrop(renewer);
    let report = run(&*store, directory, settings, opts).await;
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

pub async fn run(
    store: &dyn Store,
    directory: &dyn Directory,
    settings: &SyncSettings,
    opts: &RunOptions,
) -> anyhow::Result<RunReport> {
    let started_at = crate::store::now();
    let mut report = RunReport {
        run_id: Uuid::now_v7(),
        status: "running",
        trigger: opts.trigger.clone(),
        dry_run: opts.dry_run,
        full: opts.full,
        counts: BTreeMap::new(),
        aws_calls: BTreeMap::new(),
        throttles: 0,
        errors: Vec::new(),
        plan: None,
    };
    save(store, &report, started_at, false).await?;
    // The run's own calls (not, say, the instance discovery before it).
    let (calls_before, throttles_before) = (directory.calls(), directory.throttles());
    let outcome = execute(store, directory, settings, opts, &mut report).await;
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
        report.errors.push(Skipped { principal: "(run)".into(), message: format!("{e:#}") });
    }
    save(store, &report, started_at, true).await?;
    tracing::info!(
        run_id = %report.run_id, status = report.status, counts = ?report.counts,
        aws_calls = ?report.aws_calls, errors = report.errors.len(), "sync run finished"
    );
    Ok(report)
}

async fn save(
    store: &dyn Store,
    report: &RunReport,
    started_at: crate::store::Timestamp,
    finished: bool,
) -> anyhow::Result<()> {
    let record = RunRecord {
        id: report.run_id,
        trigger: report.trigger.clone(),
        dry_run: report.dry_run,
        status: report.status.to_owned(),
        started_at,
        finished_at: finished.then(crate::store::now),
        report: serde_json::to_value(report)?,
    };
    store.save_run(&record).await?;
    Ok(())
}

async fn execute(
    store: &dyn Store,
    directory: &dyn Directory,
    settings: &SyncSettings,
    opts: &RunOptions,
    report: &mut RunReport,
) -> anyhow::Result<()> {
    let snapshot = store.snapshot().await?;
    let mut state = store.sync_state().await?;
    if opts.full {
        repair_drift(store, directory, &mut state, opts.dry_run, report).await?;
    }
    let policy = Policy {
        on_deactivate: settings.on_deactivate,
        protected_users: settings.protected_users.iter().map(|u| u.to_lowercase()).collect(),
        protected_groups: settings.protected_groups.iter().map(|g| g.to_lowercase()).collect(),
    };
    let plan = plan::plan(&snapshot, &state, &policy);
    report.errors.extend(plan.skipped.iter().cloned());
    for a in &plan.actions {
        *report.counts.entry(a.count_key()).or_default() += 1;
    }
    if let Some(refusal) = guard(&plan, settings, opts.force) {
        report.status = "refused";
        report.plan = Some(plan::describe(&plan.actions));
        report.errors.push(Skipped { principal: "(run)".into(), message: refusal.clone() });
        tracing::error!(run_id = %report.run_id, "{refusal}");
        return Ok(());
    }
    if opts.dry_run {
        report.plan = Some(plan::describe(&plan.actions));
        report.status = "succeeded";
        return Ok(());
    }
    let mut apply = Apply::new(store, directory, report.run_id, &state);
    for action in &plan.actions {
        apply.one(action).await?;
    }
    report.errors.extend(apply.failures.iter().cloned());
    report.status = if apply.failures.is_empty() { "succeeded" } else { "partial" };
    Ok(())
}

/// The delete guard: refuses a run that would delete more than `max_delete_fraction` of the
/// managed principals (when there are at least `min_principals_for_guard`), unless forced.
fn guard(plan: &Plan, settings: &SyncSettings, force: bool) -> Option<String> {
    let deletes = plan.deletes();
    if force || deletes == 0 || (plan.managed as u64) < settings.min_principals_for_guard {
        return None;
    }
    let fraction = deletes as f64 / plan.managed as f64;
    (fraction > settings.max_delete_fraction).then(|| {
        format!(
            "refused: the run would delete {deletes} of {} managed principals ({:.0}% > \
             max_delete_fraction {:.0}%); check the IdP, then run with --force if it is meant",
            plan.managed,
            fraction * 100.0,
            settings.max_delete_fraction * 100.0
        )
    })
}

/// A full run re-reads AWS: a managed principal deleted outside the bridge is forgotten (and so
/// re-created), and the memberships of managed groups are taken from AWS (so missing ones are
/// added again and foreign additions of managed users removed). Users the bridge does not
/// manage keep their memberships.
async fn repair_drift(
    store: &dyn Store,
    directory: &dyn Directory,
    state: &mut SyncState,
    dry_run: bool,
    report: &mut RunReport,
) -> anyhow::Result<()> {
    let users: HashSet<String> = directory.list_users().await?.into_iter().map(|l| l.id).collect();
    let groups: HashSet<String> =
        directory.list_groups().await?.into_iter().map(|l| l.id).collect();
    let mut vanished = Vec::new();
    state.principals.retain(|p| {
        let exists = match p.kind {
            ResourceKind::User => users.contains(&p.aws_id),
            ResourceKind::Group => groups.contains(&p.aws_id),
        };
        if !exists {
            vanished.push(p.clone());
        }
        exists
    });
    for p in &vanished {
        *report.counts.entry("drift_recreated".into()).or_default() += 1;
        tracing::warn!(name = %p.name, aws_id = %p.aws_id, "managed principal deleted outside the bridge; it will be re-created");
        if !dry_run {
            store.remove_principal(p.kind, p.resource_id).await?;
        }
    }
    let user_of_aws: HashMap<&str, Uuid> = state
        .principals
        .iter()
        .filter(|p| p.kind == ResourceKind::User)
        .map(|p| (p.aws_id.as_str(), p.resource_id))
        .collect();
    let mut actual = Vec::new();
    for g in state.principals.iter().filter(|p| p.kind == ResourceKind::Group) {
        for (membership_id, aws_user) in directory.list_memberships(&g.aws_id).await? {
            if let Some(user) = user_of_aws.get(aws_user.as_str()) {
                actual.push(AwsMembership {
                    group_id: g.resource_id,
                    user_id: *user,
                    membership_id,
                });
            }
        }
    }
    if !dry_run {
        let now: HashSet<(Uuid, Uuid)> = actual.iter().map(|m| (m.group_id, m.user_id)).collect();
        for m in &state.memberships {
            if !now.contains(&(m.group_id, m.user_id)) {
                store.remove_membership(m.group_id, m.user_id).await?;
            }
        }
        for m in &actual {
            if !state.memberships.contains(m) {
                store.put_membership(m).await?;
            }
        }
    }
    state.memberships = actual;
    Ok(())
}

/// Applies actions one by one, recording each AWS change in the store and the audit log.
struct Apply<'a> {
    store: &'a dyn Store,
    directory: &'a dyn Directory,
    run_id: Uuid,
    /// SCIM id → AWS id, for memberships (filled in as principals are created).
    aws_ids: HashMap<(ResourceKind, Uuid), String>,
    ownership: HashMap<(ResourceKind, Uuid), Ownership>,
    /// Memberships recorded per principal, for deletes.
    memberships: Vec<AwsMembership>,
    failures: Vec<Skipped>,
}

impl<'a> Apply<'a> {
    fn new(
        store: &'a dyn Store,
        directory: &'a dyn Directory,
        run_id: Uuid,
        state: &SyncState,
    ) -> Self {
        Apply {
            store,
            directory,
            run_id,
            aws_ids: state
                .principals
                .iter()
                .map(|p| ((p.kind, p.resource_id), p.aws_id.clone()))
                .collect(),
            ownership: state
                .principals
                .iter()
                .map(|p| ((p.kind, p.resource_id), p.ownership))
                .collect(),
            memberships: state.memberships.clone(),
            failures: Vec::new(),
        }
    }

    /// Per-principal AWS errors are recorded and the run goes on; access and availability
    /// errors end it (the next call would fail the same way).
    async fn one(&mut self, action: &Action) -> anyhow::Result<()> {
        match self.act(action).await {
            Ok(()) => Ok(()),
            Err(Failure::Aws(e)) if e.is_fatal() => Err(e.into()),
            Err(Failure::Aws(e)) => {
                self.failures
                    .push(Skipped { principal: principal_of(action), message: e.to_string() });
                Ok(())
            }
            Err(Failure::Other(e)) => Err(e),
        }
    }

    async fn act(&mut self, action: &Action) -> Result<(), Failure> {
        match action {
            Action::Create { kind, name, resource_id, attrs } => {
                self.create(*kind, name, *resource_id, attrs).await
            }
            Action::Update { kind, name, resource_id, aws_id, changes, attrs, .. } => {
                let kind = *kind;
                let r = match kind {
                    ResourceKind::User => self.directory.update_user(aws_id, changes).await,
                    ResourceKind::Group => self.directory.update_group(aws_id, changes).await,
                };
                match r {
                    Ok(()) => {
                        self.record(kind, *resource_id, aws_id, name, attrs, None).await?;
                        let detail = json!({"attributes": changes.iter().map(|(k, _)| k).collect::<Vec<_>>()});
                        self.audit("update", kind, name, Some(aws_id), Some(detail)).await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Action::AddMember { group, user, group_id, user_id } => {
                let (Some(g), Some(u)) = (
                    self.aws_ids.get(&(ResourceKind::Group, *group_id)).cloned(),
                    self.aws_ids.get(&(ResourceKind::User, *user_id)).cloned(),
                ) else {
                    // One end failed to be created: its error is reported already.
                    return Ok(());
                };
                match self.directory.add_member(&g, &u).await {
                    Ok(membership_id) => {
                        let m =
                            AwsMembership { group_id: *group_id, user_id: *user_id, membership_id };
                        self.store.put_membership(&m).await?;
                        self.memberships.push(m);
                        let detail = json!({"user": user});
                        self.audit("add_member", ResourceKind::Group, group, Some(&g), Some(detail))
                            .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Action::RemoveMember { group, user, group_id, user_id, membership_id } => {
                match self.directory.remove_member(membership_id).await {
                    Ok(()) => {
                        self.store.remove_membership(*group_id, *user_id).await?;
                        let g = self.aws_ids.get(&(ResourceKind::Group, *group_id)).cloned();
                        let detail = json!({"user": user});
                        self.audit(
                            "remove_member",
                            ResourceKind::Group,
                            group,
                            g.as_deref(),
                            Some(detail),
                        )
                        .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Action::Delete { kind, name, resource_id, aws_id, reason } => {
                let kind = *kind;
                let r = match kind {
                    ResourceKind::User => self.directory.delete_user(aws_id).await,
                    ResourceKind::Group => self.directory.delete_group(aws_id).await,
                };
                match r {
                    Ok(()) => {
                        self.store.remove_principal(kind, *resource_id).await?;
                        let id = *resource_id;
                        for m in
                            self.memberships.iter().filter(|m| m.group_id == id || m.user_id == id)
                        {
                            self.store.remove_membership(m.group_id, m.user_id).await?;
                        }
                        self.memberships.retain(|m| m.group_id != id && m.user_id != id);
                        self.audit(
                            "delete",
                            kind,
                            name,
                            Some(aws_id),
                            Some(json!({"reason": reason})),
                        )
                        .await
                    }
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// Create; when the name is taken in AWS, adopt that principal (userName / displayName
    /// only, never by email) and bring its attributes to ours.
    async fn create(
        &mut self,
        kind: ResourceKind,
        name: &str,
        resource_id: Uuid,
        attrs: &crate::mapping::aws_profile::AwsAttributes,
    ) -> Result<(), Failure> {
        let created = match kind {
            ResourceKind::User => self.directory.create_user(attrs).await,
            ResourceKind::Group => self.directory.create_group(attrs).await,
        };
        match created {
            Ok(aws_id) => {
                self.record(kind, resource_id, &aws_id, name, attrs, Some(Ownership::Created))
                    .await?;
                self.audit("create", kind, name, Some(&aws_id), None).await
            }
            Err(AwsError::Conflict { .. }) => {
                let existing = match kind {
                    ResourceKind::User => self.directory.find_user(name).await?,
                    ResourceKind::Group => self.directory.find_group(name).await?,
                };
                let operation =
                    if kind == ResourceKind::User { "CreateUser" } else { "CreateGroup" };
                let Some(aws_id) = existing else {
                    return Err(Failure::Aws(AwsError::Conflict {
                        operation,
                        message: "another AWS principal holds a unique value of it (for a user: its email)".into(),
                    }));
                };
                // Never take over a principal recorded for another SCIM resource (say, the same
                // userName deleted and provisioned again at the IdP): overwriting it would give
                // one AWS identity two owners. The other resource's change frees it first.
                if self.aws_ids.values().any(|managed| *managed == aws_id) {
                    return Err(Failure::Aws(AwsError::Conflict {
                        operation,
                        message: format!(
                            "the AWS principal named {name:?} is managed for another SCIM resource; \
                             it is taken over once that one is deleted or renamed"
                        ),
                    }));
                }
                // Every attribute of ours, as changes against nothing.
                let changes = plan::diff(&Value::Object(Default::default()), attrs);
                match kind {
                    ResourceKind::User => self.directory.update_user(&aws_id, &changes).await?,
                    ResourceKind::Group => self.directory.update_group(&aws_id, &changes).await?,
                }
                self.record(kind, resource_id, &aws_id, name, attrs, Some(Ownership::Adopted))
                    .await?;
                self.audit("adopt", kind, name, Some(&aws_id), None).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records the principal as pushed; `ownership` None keeps the recorded one.
    async fn record(
        &mut self,
        kind: ResourceKind,
        resource_id: Uuid,
        aws_id: &str,
        name: &str,
        attrs: &crate::mapping::aws_profile::AwsAttributes,
        ownership: Option<Ownership>,
    ) -> Result<(), Failure> {
        let ownership = ownership
            .or_else(|| self.ownership.get(&(kind, resource_id)).copied())
            .unwrap_or(Ownership::Created);
        self.ownership.insert((kind, resource_id), ownership);
        let principal = AwsPrincipal {
            kind,
            resource_id,
            aws_id: aws_id.to_owned(),
            ownership,
            name: name.to_owned(),
            pushed: Value::Object(attrs.clone()),
        };
        self.store.put_principal(&principal).await.map_err(anyhow::Error::from)?;
        self.aws_ids.insert((kind, resource_id), aws_id.to_owned());
        Ok(())
    }

    async fn audit(
        &self,
        action: &str,
        kind: ResourceKind,
        name: &str,
        aws_id: Option<&str>,
        detail: Option<Value>,
    ) -> Result<(), Failure> {
        let row = AuditRow {
            at: crate::store::now(),
            run_id: self.run_id,
            action: action.to_owned(),
            kind: kind.name().to_owned(),
            name: name.to_owned(),
            aws_id: aws_id.map(str::to_owned),
            detail,
        };
        self.store.append_audit(&row).await.map_err(anyhow::Error::from)?;
        Ok(())
    }
}

enum Failure {
    Aws(AwsError),
    Other(anyhow::Error),
}

impl From<AwsError> for Failure {
    fn from(e: AwsError) -> Self {
        Failure::Aws(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Other(e.into())
    }
}

fn principal_of(action: &Action) -> String {
    match action {
        Action::Create { name, .. } | Action::Update { name, .. } | Action::Delete { name, .. } => {
            name.clone()
        }
        Action::AddMember { group, user, .. } | Action::RemoveMember { group, user, .. } => {
            format!("{group} / {user}")
        }
    }
}
