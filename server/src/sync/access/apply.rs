//! Making AWS's access match the plan: managed permission sets (created or adopted by name,
//! updated in place, re-provisioned when changed), then account assignments — asynchronous in
//! AWS, at most [`MAX_IN_FLIGHT`] outstanding, each polled to completion — then application
//! assignments (synchronous) and assignment configurations.
//!
//! Every change is recorded as AWS confirms it, and an assignment operation is recorded as
//! `creating` / `deleting` before it is sent, so a run killed half-way leaves a record the next
//! run settles ([`AccessRun::settle_in_flight`]) instead of creating twice or forgetting.

use super::plan::{AccessPlan, Assign, Unassign};
use super::rules::{AssignmentSettings, PermissionSetSettings};
use super::{AccountAssignment, OpState, OpStatus, PermissionSetShape, SsoAdmin};
use crate::store::{
    AccessObject, AccessObjectKind, AccessState, AssignmentKey, AssignmentKind, AssignmentRecord,
    AssignmentState, AuditRow, PrincipalType, Store,
};
use crate::sync::directory::AwsError;
use crate::sync::plan::Skipped;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Managed policies one permission set may hold (AWS's quota).
const MANAGED_POLICY_LIMIT: usize = 20;

/// AWS allows at most 10 outstanding account-assignment operations per instance.
pub const MAX_IN_FLIGHT: usize = 10;
/// How long one asynchronous operation may stay IN_PROGRESS before the run stops waiting (the
/// next run looks it up by its request id).
const GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);

/// Wait before the next status poll of an operation polled `polls` times: every second for
/// the first five seconds (AWS usually finishes within them, and a slot of the in-flight window
/// is freed as soon as it is seen done), then 2, 3 and at most 5 s apart.
fn poll_after(polls: u32) -> Duration {
    match polls {
        0..=4 => Duration::from_secs(1),
        5 => Duration::from_secs(2),
        6 => Duration::from_secs(3),
        _ => Duration::from_secs(5),
    }
}

/// The access part of one sync run.
pub struct AccessRun<'a> {
    store: &'a dyn Store,
    sso: &'a dyn SsoAdmin,
    run_id: Uuid,
    dry_run: bool,
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Changes done, by report key.
    pub done: BTreeMap<String, u64>,
    pub failures: Vec<Skipped>,
    /// The record as it now stands.
    pub state: AccessState,
    /// Permission set name → ARN (None: declared and not created yet). Names absent are not in
    /// AWS.
    pub permission_sets: HashMap<String, Option<String>>,
    /// Permission sets this run created (nothing can be assigned with them yet).
    created_sets: HashSet<String>,
    /// AWS ids of the principals this run created (nothing can be assigned to them yet); set
    /// by the engine once the principal changes are in.
    pub created_principals: HashSet<String>,
    /// Operations an earlier run left IN_PROGRESS in AWS: they occupy the in-flight window
    /// until AWS finishes them.
    open: Vec<AssignmentRecord>,
    /// Operations given up on (IN_PROGRESS past [`GIVE_UP_AFTER`]): still outstanding in AWS,
    /// so their slots stay taken for the rest of the run.
    stuck: usize,
    /// Principals whose assignment create failed in this run: their deletes wait, so that a
    /// principal moved from one rule to another is never left without access.
    create_failed: HashSet<String>,
    /// Who holds what in AWS, as read by this run before it changed anything: by (target,
    /// permission set ARN).
    listings: HashMap<(String, String), HashSet<(PrincipalType, String)>>,
}

impl<'a> AccessRun<'a> {
    pub async fn load(
        store: &'a dyn Store,
        sso: &'a dyn SsoAdmin,
        run_id: Uuid,
        dry_run: bool,
        stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    ) -> anyhow::Result<AccessRun<'a>> {
        Ok(AccessRun {
            store,
            sso,
            run_id,
            dry_run,
            stop,
            done: BTreeMap::new(),
            failures: Vec::new(),
            state: store.access_state().await?,
            permission_sets: HashMap::new(),
            created_sets: HashSet::new(),
            created_principals: HashSet::new(),
            open: Vec::new(),
            stuck: 0,
            create_failed: HashSet::new(),
            listings: HashMap::new(),
        })
    }

    fn stopped(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Acquire))
    }

    fn count(&mut self, key: &str) {
        *self.done.entry(key.to_owned()).or_default() += 1;
    }

    fn fail(&mut self, what: String, message: String) {
        tracing::warn!(%what, %message, "sync: access change failed");
        self.failures.retain(|f| f.principal != what);
        self.failures.push(Skipped { principal: what, message });
    }

    /// Per-item AWS errors are recorded and the run goes on; the rest end it.
    fn absorb(&mut self, what: String, e: AwsError) -> anyhow::Result<()> {
        if e.is_fatal() {
            return Err(e.into());
        }
        self.fail(what, e.to_string());
        Ok(())
    }

    async fn audit(
        &self,
        action: &str,
        kind: &str,
        name: &str,
        aws_id: Option<&str>,
        detail: Value,
    ) -> anyhow::Result<()> {
        let row = AuditRow {
            at: crate::store::now(),
            run_id: self.run_id,
            action: action.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            aws_id: aws_id.map(str::to_owned),
            detail: Some(detail),
        };
        self.store.append_audit(&row).await?;
        Ok(())
    }

    async fn put_row(&mut self, row: AssignmentRecord) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.put_assignment(&row).await?;
        }
        self.state.assignments.retain(|r| r.key != row.key);
        self.state.assignments.push(row);
        Ok(())
    }

    async fn remove_row(&mut self, key: &AssignmentKey) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.remove_assignment(key).await?;
        }
        self.state.assignments.retain(|r| &r.key != key);
        Ok(())
    }

    async fn put_object(&mut self, object: AccessObject) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.put_access_object(&object).await?;
        }
        self.state.objects.retain(|o| !(o.kind == object.kind && o.name == object.name));
        self.state.objects.push(object);
        Ok(())
    }

    async fn remove_object(&mut self, kind: AccessObjectKind, name: &str) -> anyhow::Result<()> {
        if !self.dry_run {
            self.store.remove_access_object(kind, name).await?;
        }
        self.state.objects.retain(|o| !(o.kind == kind && o.name == name));
        Ok(())
    }

    /// Who holds the permission set in the account (or the application), read once per run.
    async fn holders(
        &mut self,
        kind: AssignmentKind,
        target: &str,
        permission_set_arn: &str,
    ) -> Result<&HashSet<(PrincipalType, String)>, AwsError> {
        let key = (target.to_owned(), permission_set_arn.to_owned());
        if !self.listings.contains_key(&key) {
            let listed = match kind {
                AssignmentKind::Account => {
                    self.sso.list_account_assignments(target, permission_set_arn).await?
                }
                AssignmentKind::Application => {
                    self.sso.list_application_assignments(target).await?
                }
            };
            self.listings.insert(key.clone(), listed.into_iter().collect());
        }
        Ok(&self.listings[&key])
    }

    /// Assignment operations a dead process left `creating` / `deleting`: settled by their
    /// request id, or by looking at what AWS holds.
    pub async fn settle_in_flight(&mut self) -> anyhow::Result<()> {
        let open: Vec<AssignmentRecord> = self
            .state
            .assignments
            .iter()
            .filter(|r| matches!(r.state, AssignmentState::Creating | AssignmentState::Deleting))
            .cloned()
            .collect();
        for r in open {
            let deleting = r.state == AssignmentState::Deleting;
            let status = match (&r.request_id, r.key.kind) {
                (Some(id), AssignmentKind::Account) => {
                    match self.sso.account_assignment_status(id, deleting).await {
                        Ok(s) => Some(s.state),
                        Err(AwsError::NotFound { .. }) => None,
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => None,
            };
            let exists = match status {
                Some(OpState::InProgress) => {
                    self.open.push(r);
                    continue;
                }
                Some(OpState::Succeeded) => !deleting,
                Some(OpState::Failed(_)) => deleting,
                None => {
                    let k = &r.key;
                    let holders = self.holders(k.kind, &k.target, &k.permission_set_arn).await?;
                    holders.contains(&(k.principal_type, k.principal_id.clone()))
                }
            };
            self.settled(r, exists).await?;
        }
        Ok(())
    }

    /// Records how an operation an earlier run left open ended: the assignment `exists` in AWS
    /// or not. Audited as recovered when it changed AWS.
    async fn settled(&mut self, r: AssignmentRecord, exists: bool) -> anyhow::Result<()> {
        tracing::info!(key = ?r.key, exists, "sync: settled an assignment operation an earlier run left open");
        let deleting = r.state == AssignmentState::Deleting;
        let label = label_key(&r.key);
        let kind = kind_name(r.key.kind);
        let detail = json!({"target": r.key.target, "permission_set_arn": r.key.permission_set_arn,
            "principal_type": r.key.principal_type, "recovered": true});
        if exists {
            if !deleting {
                self.audit("assign", kind, &label, Some(&r.key.principal_id), detail).await?;
            }
            let row = AssignmentRecord { state: AssignmentState::Created, request_id: None, ..r };
            self.put_row(row).await
        } else {
            if deleting {
                self.audit("unassign", kind, &label, Some(&r.key.principal_id), detail).await?;
            }
            self.remove_row(&r.key).await
        }
    }

    /// A full run: assignments recorded but no longer in AWS (removed by hand) are forgotten,
    /// so the plan creates those still wanted again.
    pub async fn repair_drift(&mut self) -> anyhow::Result<()> {
        let pairs: BTreeSet<(AssignmentKind, String, String)> = self
            .state
            .assignments
            .iter()
            .filter(|r| matches!(r.state, AssignmentState::Created | AssignmentState::Foreign))
            .map(|r| (r.key.kind, r.key.target.clone(), r.key.permission_set_arn.clone()))
            .collect();
        for (kind, target, arn) in pairs {
            let holders = match self.holders(kind, &target, &arn).await {
                Ok(h) => h.clone(),
                // The permission set is gone: so are its assignments.
                Err(AwsError::NotFound { .. }) => HashSet::new(),
                Err(e) => return Err(e.into()),
            };
            let vanished: Vec<AssignmentKey> = self
                .state
                .assignments
                .iter()
                .filter(|r| {
                    r.key.kind == kind && r.key.target == target && r.key.permission_set_arn == arn
                })
                .filter(|r| matches!(r.state, AssignmentState::Created | AssignmentState::Foreign))
                .filter(|r| !holders.contains(&(r.key.principal_type, r.key.principal_id.clone())))
                .map(|r| r.key.clone())
                .collect();
            for key in vanished {
                tracing::warn!(
                    ?key,
                    "assignment removed outside the bridge; it will be made again if a rule wants it"
                );
                self.count("drift_recreated_assignment");
                self.remove_row(&key).await?;
            }
        }
        Ok(())
    }

    /// Permission set names → ARNs: from the record, else by listing the instance's permission
    /// sets (a full run checks the recorded ones still exist).
    pub async fn resolve_permission_sets(
        &mut self,
        names: &BTreeSet<String>,
        declared: &[PermissionSetSettings],
        full: bool,
    ) -> anyhow::Result<()> {
        let mut known: HashMap<String, String> = self
            .state
            .objects
            .iter()
            .filter(|o| o.kind == AccessObjectKind::PermissionSet)
            .map(|o| (o.name.clone(), o.arn.clone()))
            .collect();
        let mut listed: Option<Vec<String>> = None;
        if full && !known.is_empty() {
            let arns: HashSet<String> =
                self.sso.list_permission_sets().await?.into_iter().collect();
            let gone: Vec<String> = known
                .iter()
                .filter(|(_, arn)| !arns.contains(*arn))
                .map(|(n, _)| n.clone())
                .collect();
            for name in gone {
                tracing::warn!(%name, "permission set no longer in AWS; looking it up again");
                known.remove(&name);
                self.remove_object(AccessObjectKind::PermissionSet, &name).await?;
            }
            listed = Some(arns.into_iter().collect());
        }
        if names.iter().any(|n| !known.contains_key(n)) {
            let arns = match listed {
                Some(arns) => arns,
                None => self.sso.list_permission_sets().await?,
            };
            let recorded: HashSet<String> = known.values().cloned().collect();
            for arn in arns.into_iter().filter(|a| !recorded.contains(a)) {
                if names.iter().all(|n| known.contains_key(n)) {
                    break;
                }
                let name = self.sso.permission_set_name(&arn).await?;
                if known.contains_key(&name) {
                    // Recorded under another ARN (a full run checks recorded ARNs still exist).
                    continue;
                }
                // Every name read is remembered, so that a name AWS does not have (a typo in a
                // rule) costs one listing per run, not a read of every permission set. Not
                // managed: a declared one is taken over by `sync_permission_sets`.
                let object = AccessObject {
                    kind: AccessObjectKind::PermissionSet,
                    name: name.clone(),
                    arn: arn.clone(),
                    managed: false,
                    pushed: json!({}),
                    needs_provision: false,
                };
                self.put_object(object).await?;
                known.insert(name, arn);
            }
        }
        self.permission_sets = names
            .iter()
            .filter_map(|n| match known.get(n) {
                Some(arn) => Some((n.clone(), Some(arn.clone()))),
                None if declared.iter().any(|d| &d.name == n) => Some((n.clone(), None)),
                None => None,
            })
            .collect();
        Ok(())
    }

    fn object(&self, kind: AccessObjectKind, name: &str) -> Option<&AccessObject> {
        self.state.objects.iter().find(|o| o.kind == kind && o.name == name)
    }

    /// What `sync_permission_sets` would do, for a dry run's plan (from the record, which
    /// `resolve_permission_sets` has filled with the names it found in AWS: a declared one found
    /// there, not yet managed, is adopted by name).
    pub fn planned_permission_sets(&self, declared: &[PermissionSetSettings]) -> Vec<Value> {
        let mut out = Vec::new();
        for set in declared {
            let desired = PermissionSetShape::declared(set);
            match self.object(AccessObjectKind::PermissionSet, &set.name) {
                None => out.push(json!({"action": "create_permission_set", "name": set.name})),
                Some(o) if !o.managed => {
                    out.push(
                        json!({"action": "adopt_permission_set", "name": set.name, "arn": o.arn}),
                    );
                }
                Some(o) => {
                    let pushed: PermissionSetShape =
                        serde_json::from_value(o.pushed.clone()).unwrap_or_default();
                    let changes = desired.changes_from(&pushed);
                    if !changes.is_empty() {
                        out.push(json!({"action": "update_permission_set", "name": set.name, "attributes": changes}));
                    }
                    if !changes.is_empty() || o.needs_provision {
                        out.push(json!({"action": "provision_permission_set", "name": set.name}));
                    }
                }
            }
        }
        out
    }

    /// Creates, adopts and updates the declared permission sets, and re-provisions those that
    /// changed. A normal run touches only those whose declaration changed since it was pushed;
    /// a full run compares each with AWS.
    pub async fn sync_permission_sets(
        &mut self,
        declared: &[PermissionSetSettings],
        full: bool,
    ) -> anyhow::Result<()> {
        for set in declared {
            if self.stopped() {
                return Err(crate::sync::error::SyncError::Stopped.into());
            }
            let what = format!("permission set {}", set.name);
            if let Err(e) = self.sync_permission_set(set, full).await {
                match e.downcast::<AwsError>() {
                    Ok(aws) => self.absorb(what, aws)?,
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }

    async fn sync_permission_set(
        &mut self,
        set: &PermissionSetSettings,
        full: bool,
    ) -> anyhow::Result<()> {
        let desired = PermissionSetShape::declared(set);
        let pushed = serde_json::to_value(&desired)?;
        let record = self.object(AccessObjectKind::PermissionSet, &set.name).cloned();
        let up_to_date =
            record.as_ref().is_some_and(|o| o.managed && o.pushed == pushed && !o.needs_provision);
        if up_to_date && !full {
            return Ok(());
        }
        let mut arn = self.permission_sets.get(&set.name).cloned().flatten();
        let mut actual = None;
        if let Some(known) = &arn {
            match self.sso.read_permission_set(known).await {
                Ok(shape) => actual = Some(shape),
                // Deleted outside the bridge: it is created again (under a new ARN).
                Err(AwsError::NotFound { .. }) => {
                    self.forget_permission_set_arn(known).await?;
                    arn = None;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let (arn, changes, action) = match (arn, actual) {
            (Some(arn), Some(actual)) => {
                let changes = desired.changes_from(&actual);
                if !changes.is_empty() {
                    // Recorded before the push: a process that dies half-way leaves a record
                    // that says the accounts still need the new version.
                    let marker = AccessObject {
                        kind: AccessObjectKind::PermissionSet,
                        name: set.name.clone(),
                        arn: arn.clone(),
                        managed: record.as_ref().is_some_and(|o| o.managed),
                        pushed: record.as_ref().map_or_else(|| json!({}), |o| o.pushed.clone()),
                        needs_provision: true,
                    };
                    self.put_object(marker).await?;
                }
                self.push_permission_set(&arn, &desired, &actual, &changes).await?;
                let adopting = !record.as_ref().is_some_and(|o| o.managed);
                (arn, changes, if adopting { "adopt" } else { "update" })
            }
            _ => {
                let arn = self.sso.create_permission_set(&set.name, &desired).await?;
                for policy in &desired.managed_policies {
                    self.sso.attach_managed_policy(&arn, policy).await?;
                }
                for policy in &desired.customer_managed_policies {
                    self.sso.attach_customer_managed_policy(&arn, policy).await?;
                }
                if let Some(document) = &desired.inline_policy {
                    self.sso.put_inline_policy(&arn, document).await?;
                }
                self.created_sets.insert(set.name.clone());
                (arn, Vec::new(), "create")
            }
        };
        let needs_provision =
            record.as_ref().is_some_and(|o| o.needs_provision) || !changes.is_empty();
        let object = AccessObject {
            kind: AccessObjectKind::PermissionSet,
            name: set.name.clone(),
            arn: arn.clone(),
            managed: true,
            pushed,
            needs_provision,
        };
        self.put_object(object.clone()).await?;
        self.permission_sets.insert(set.name.clone(), Some(arn.clone()));
        if action != "update" || !changes.is_empty() {
            self.count(&format!("{action}_permission_set"));
            self.audit(
                action,
                "PermissionSet",
                &set.name,
                Some(&arn),
                json!({"attributes": changes}),
            )
            .await?;
        }
        if needs_provision {
            self.provision(object).await?;
        }
        Ok(())
    }

    /// Pushes what differs: attributes, then policies attached before those detached (the
    /// permission set never has less than either version grants, mid-way).
    async fn push_permission_set(
        &self,
        arn: &str,
        desired: &PermissionSetShape,
        actual: &PermissionSetShape,
        changes: &[&str],
    ) -> Result<(), AwsError> {
        if changes.iter().any(|c| ["description", "session_duration", "relay_state"].contains(c)) {
            self.sso.update_permission_set(arn, desired).await?;
        }
        // Unless attaching first would pass AWS's limit of managed policies per permission
        // set: then detach first (the role briefly has less).
        let detach_first =
            desired.managed_policies.union(&actual.managed_policies).count() > MANAGED_POLICY_LIMIT;
        let stale: Vec<&String> =
            actual.managed_policies.difference(&desired.managed_policies).collect();
        if detach_first {
            for p in &stale {
                self.sso.detach_managed_policy(arn, p).await?;
            }
        }
        for p in desired.managed_policies.difference(&actual.managed_policies) {
            self.sso.attach_managed_policy(arn, p).await?;
        }
        for p in desired.customer_managed_policies.difference(&actual.customer_managed_policies) {
            self.sso.attach_customer_managed_policy(arn, p).await?;
        }
        match (&desired.inline_policy, &actual.inline_policy) {
            (Some(d), a) if Some(d) != a.as_ref() => self.sso.put_inline_policy(arn, d).await?,
            (None, Some(_)) => self.sso.delete_inline_policy(arn).await?,
            _ => {}
        }
        if !detach_first {
            for p in &stale {
                self.sso.detach_managed_policy(arn, p).await?;
            }
        }
        for p in actual.customer_managed_policies.difference(&desired.customer_managed_policies) {
            self.sso.detach_customer_managed_policy(arn, p).await?;
        }
        Ok(())
    }

    /// Re-provisions a changed permission set to the accounts it is provisioned to, and waits
    /// for AWS to finish. Until it has, the record says so and the next run tries again.
    async fn provision(&mut self, mut object: AccessObject) -> anyhow::Result<()> {
        let accounts = self.sso.provisioned_accounts(&object.arn).await?;
        if !accounts.is_empty() {
            let mut status = self.sso.provision_permission_set(&object.arn).await?;
            let started = Instant::now();
            let mut polls = 0;
            while status.state == OpState::InProgress {
                if started.elapsed() > GIVE_UP_AFTER || self.stopped() {
                    self.fail(
                        format!("permission set {}", object.name),
                        "provisioning still IN_PROGRESS; the next run provisions it again".into(),
                    );
                    return Ok(());
                }
                tokio::time::sleep(poll_after(polls)).await;
                polls += 1;
                status = self.sso.provisioning_status(&status.request_id).await?;
            }
            if let OpState::Failed(reason) = status.state {
                self.fail(
                    format!("permission set {}", object.name),
                    failed("provisioning", &reason),
                );
                return Ok(());
            }
            self.count("provision_permission_set");
            self.audit(
                "provision",
                "PermissionSet",
                &object.name,
                Some(&object.arn),
                json!({"accounts": accounts}),
            )
            .await?;
        }
        object.needs_provision = false;
        self.put_object(object).await?;
        Ok(())
    }

    /// Applies the plan: every create first, then the deletes — none for a principal whose
    /// create failed in this run, so a principal moved from one rule to another is never left
    /// without access — then the assignment configurations.
    pub async fn apply(&mut self, plan: &AccessPlan) -> anyhow::Result<()> {
        let creates = self.claim_existing(&plan.assign).await?;
        let (accounts, applications): (Vec<_>, Vec<_>) =
            creates.into_iter().partition(|(a, _)| a.kind == AssignmentKind::Account);
        self.run_account_operations(accounts.into_iter().map(Op::from).collect()).await?;
        for a in applications {
            self.application(Op::from(a)).await?;
        }
        let deletes: Vec<Unassign> = plan
            .unassign
            .iter()
            .filter(|u| !self.create_failed.contains(&u.key.principal_id))
            .cloned()
            .collect();
        self.unassign(&deletes).await?;
        for (arn, required) in &plan.assignment_required {
            match self.sso.set_assignment_required(arn, *required).await {
                Ok(()) => {
                    let object = AccessObject {
                        kind: AccessObjectKind::Application,
                        name: arn.clone(),
                        arn: arn.clone(),
                        managed: true,
                        pushed: json!({"assignment_required": required}),
                        needs_provision: false,
                    };
                    self.put_object(object).await?;
                    self.count("set_assignment_required");
                    self.audit(
                        "update",
                        "Application",
                        arn,
                        Some(arn),
                        json!({"assignment_required": required}),
                    )
                    .await?;
                }
                Err(e) => self.absorb_item(format!("application {arn}"), e)?,
            }
        }
        for key in &plan.forget {
            self.remove_row(key).await?;
        }
        // Operations an earlier run left open that nothing above waited for.
        self.run_account_operations(Vec::new()).await
    }

    /// Deletes these assignments (and nothing else): those of principals this run is about to
    /// delete go first, so that AWS never holds an assignment to a principal that is gone.
    pub async fn unassign(&mut self, unassign: &[Unassign]) -> anyhow::Result<()> {
        let (accounts, applications): (Vec<_>, Vec<_>) =
            unassign.iter().cloned().partition(|u| u.key.kind == AssignmentKind::Account);
        self.run_account_operations(accounts.into_iter().map(Op::Delete).collect()).await?;
        for u in applications {
            self.application(Op::Delete(u)).await?;
        }
        Ok(())
    }

    /// A per-item failure, where AccessDenied is one too: AWS refuses some assignments alone
    /// (one to the management account, made from a delegated administrator).
    fn absorb_item(&mut self, what: String, e: AwsError) -> anyhow::Result<()> {
        match e {
            AwsError::AccessDenied { operation, message } => {
                let message = format!(
                    "{operation}: access denied: {message} (an assignment to the management \
                     account must be made from the management account)"
                );
                self.fail(what, message);
                Ok(())
            }
            other => self.absorb(what, other),
        }
    }

    /// The creates that AWS does not hold already. One it holds existed before any rule wanted
    /// it (the bridge records what it creates before creating it): recorded as foreign, never
    /// deleted. Nothing is assigned yet to a principal or permission set this run created, and a
    /// permission set not provisioned to an account has no assignment there, so only the rest
    /// is looked up, one listing per account and permission set. A look-up AWS refuses (an
    /// application that does not exist, a permission set deleted meanwhile) fails the
    /// assignments it was for, not the run.
    async fn claim_existing(
        &mut self,
        assign: &[Assign],
    ) -> anyhow::Result<Vec<(Assign, AssignmentKey)>> {
        let mut provisioned: HashMap<String, Result<HashSet<String>, AwsError>> = HashMap::new();
        let mut out = Vec::new();
        for a in assign {
            // A principal or permission set whose create failed: reported already.
            let Some(key) = a.key() else { continue };
            let new_set = a.permission_set.as_ref().is_some_and(|n| self.created_sets.contains(n));
            let new_principal = self.created_principals.contains(&key.principal_id);
            let may_exist = match key.kind {
                _ if new_principal => Ok(false),
                AssignmentKind::Application => Ok(true),
                AssignmentKind::Account if new_set => Ok(false),
                AssignmentKind::Account => {
                    if !provisioned.contains_key(&key.permission_set_arn) {
                        let accounts = self
                            .sso
                            .provisioned_accounts(&key.permission_set_arn)
                            .await
                            .map(|a| a.into_iter().collect());
                        provisioned.insert(key.permission_set_arn.clone(), accounts);
                    }
                    match &provisioned[&key.permission_set_arn] {
                        Ok(accounts) => Ok(accounts.contains(&key.target)),
                        Err(e) => Err(e.clone()),
                    }
                }
            };
            let held = match may_exist {
                Ok(false) => Ok(false),
                Ok(true) => self
                    .holders(key.kind, &key.target, &key.permission_set_arn)
                    .await
                    .map(|h| h.contains(&(key.principal_type, key.principal_id.clone()))),
                Err(e) => Err(e),
            };
            match held {
                Ok(false) => out.push((a.clone(), key)),
                Ok(true) => {
                    self.put_row(AssignmentRecord {
                        key: key.clone(),
                        state: AssignmentState::Foreign,
                        request_id: None,
                    })
                    .await?;
                    self.count("found_existing_assignment");
                    self.audit(
                        "found_existing",
                        kind_name(key.kind),
                        &label_assign(a),
                        Some(&key.principal_id),
                        detail(a, &key),
                    )
                    .await?;
                }
                Err(e) => {
                    if matches!(e, AwsError::NotFound { .. }) {
                        self.forget_permission_set_arn(&key.permission_set_arn).await?;
                    }
                    self.create_failed.insert(key.principal_id.clone());
                    self.absorb_item(label_assign(a), e)?;
                }
            }
        }
        Ok(out)
    }

    /// A permission set ARN AWS no longer knows: its name is looked up again by the next run.
    async fn forget_permission_set_arn(&mut self, arn: &str) -> anyhow::Result<()> {
        let stale: Vec<String> = self
            .state
            .objects
            .iter()
            .filter(|o| o.kind == AccessObjectKind::PermissionSet && o.arn == arn)
            .map(|o| o.name.clone())
            .collect();
        for name in stale {
            tracing::warn!(%name, %arn, "permission set no longer in AWS; it is looked up again");
            self.remove_object(AccessObjectKind::PermissionSet, &name).await?;
        }
        Ok(())
    }

    /// Account assignment creates and deletes, at most [`MAX_IN_FLIGHT`] outstanding — those
    /// an earlier run left IN_PROGRESS and those given up on included — each polled until AWS
    /// says it succeeded or failed.
    async fn run_account_operations(&mut self, ops: Vec<Op>) -> anyhow::Result<()> {
        let mut queue: VecDeque<Op> = ops.into();
        let now = Instant::now();
        let mut flight: Vec<Flight> = std::mem::take(&mut self.open)
            .into_iter()
            .map(|r| Flight {
                request_id: r.request_id.clone().unwrap_or_default(),
                op: Op::Settle(r),
                started: now,
                next_poll: now,
                polls: 0,
            })
            .collect();
        while !queue.is_empty() || !flight.is_empty() {
            if self.stopped() {
                return Err(crate::sync::error::SyncError::Stopped.into());
            }
            if flight.is_empty() && self.stuck >= MAX_IN_FLIGHT {
                // AWS still works on a full window of operations given up on: the rest waits.
                for op in queue.drain(..) {
                    self.fail(op.label(), "not sent: AWS has 10 assignment operations outstanding for over 15 minutes; the next run sends it".into());
                }
                break;
            }
            while flight.len() + self.stuck < MAX_IN_FLIGHT {
                let Some(op) = queue.pop_front() else { break };
                if let Some(f) = self.submit(op).await? {
                    flight.push(f);
                }
            }
            let Some(next) = (0..flight.len()).min_by_key(|i| flight[*i].next_poll) else {
                continue;
            };
            tokio::time::sleep_until(flight[next].next_poll.into()).await;
            let f = &flight[next];
            let status =
                match self.sso.account_assignment_status(&f.request_id, f.op.is_delete()).await {
                    Ok(s) => s,
                    Err(e) => {
                        // The row keeps its request id: the next run settles it.
                        let f = flight.swap_remove(next);
                        self.absorb_item(f.op.label(), e)?;
                        continue;
                    }
                };
            let f = &mut flight[next];
            if status.state == OpState::InProgress {
                f.polls += 1;
                f.next_poll = Instant::now() + poll_after(f.polls);
                if f.started.elapsed() > GIVE_UP_AFTER {
                    let f = flight.swap_remove(next);
                    // Still outstanding in AWS: its slot stays taken; the row keeps its
                    // request id and the next run settles it.
                    self.stuck += 1;
                    self.fail(
                        f.op.label(),
                        "still IN_PROGRESS after 15 minutes; the next run looks again".into(),
                    );
                }
                continue;
            }
            let f = flight.swap_remove(next);
            self.finish(f.op, status.state).await?;
        }
        Ok(())
    }

    /// Records the operation as under way (`creating` / `deleting`) before it is sent: a
    /// process that dies mid-call leaves a row the next run settles. Returns that state.
    async fn record_sending(&mut self, op: &Op) -> anyhow::Result<AssignmentState> {
        let before =
            if op.is_delete() { AssignmentState::Deleting } else { AssignmentState::Creating };
        let row = AssignmentRecord { key: op.key().clone(), state: before, request_id: None };
        self.put_row(row).await?;
        Ok(before)
    }

    /// An operation AWS answered with an error. When AWS refused it, it did nothing and the
    /// record goes back to what it was; otherwise (a timeout, a conflict after the retries) it
    /// is unknown whether AWS acted, so the row stays `creating` / `deleting` without a request
    /// id and the next run settles it by looking at what AWS holds — never taking its own
    /// create for someone else's. A failed create holds back the principal's deletes.
    async fn not_done(&mut self, op: &Op, e: AwsError) -> anyhow::Result<()> {
        if refused(&e) {
            self.revert(op).await?;
        } else {
            tracing::warn!(key = ?op.key(), error = %e, "assignment operation outcome unknown; the next run settles it");
        }
        if !op.is_delete() {
            self.create_failed.insert(op.key().principal_id.clone());
        }
        self.absorb_item(op.label(), e)
    }

    /// Sends one operation; Some while AWS is still working on it.
    async fn submit(&mut self, op: Op) -> anyhow::Result<Option<Flight>> {
        let key = op.key().clone();
        let before = self.record_sending(&op).await?;
        let request = AccountAssignment {
            account: key.target.clone(),
            permission_set_arn: key.permission_set_arn.clone(),
            principal_type: key.principal_type,
            principal_id: key.principal_id.clone(),
        };
        let sent = if op.is_delete() {
            self.sso.delete_account_assignment(&request).await
        } else {
            self.sso.create_account_assignment(&request).await
        };
        let status = match sent {
            Ok(s) => s,
            // Deleting what is gone is done.
            Err(AwsError::NotFound { .. }) if op.is_delete() => {
                OpStatus { request_id: String::new(), state: OpState::Succeeded }
            }
            Err(e) => {
                self.not_done(&op, e).await?;
                return Ok(None);
            }
        };
        if status.state != OpState::InProgress {
            self.finish(op, status.state).await?;
            return Ok(None);
        }
        self.put_row(AssignmentRecord {
            key,
            state: before,
            request_id: Some(status.request_id.clone()),
        })
        .await?;
        let now = Instant::now();
        Ok(Some(Flight {
            op,
            request_id: status.request_id,
            started: now,
            next_poll: now + poll_after(0),
            polls: 0,
        }))
    }

    /// The record as before an operation AWS refused.
    async fn revert(&mut self, op: &Op) -> anyhow::Result<()> {
        match op {
            Op::Create(..) => self.remove_row(op.key()).await,
            Op::Delete(u) => {
                let row = AssignmentRecord {
                    key: u.key.clone(),
                    state: AssignmentState::Created,
                    request_id: None,
                };
                self.put_row(row).await
            }
            Op::Settle(r) => {
                let deleting = r.state == AssignmentState::Deleting;
                self.settled(r.clone(), deleting).await
            }
        }
    }

    async fn finish(&mut self, op: Op, state: OpState) -> anyhow::Result<()> {
        if let OpState::Failed(reason) = state {
            self.revert(&op).await?;
            if matches!(op, Op::Create(..)) {
                self.create_failed.insert(op.key().principal_id.clone());
            }
            let what = if op.is_delete() { "the delete" } else { "the create" };
            self.fail(op.label(), failed(what, &reason));
            return Ok(());
        }
        self.done_op(&op).await
    }

    /// Records and audits an operation AWS completed.
    async fn done_op(&mut self, op: &Op) -> anyhow::Result<()> {
        let kind = op.key().kind;
        match op {
            Op::Create(a, key) => {
                let row = AssignmentRecord {
                    key: key.clone(),
                    state: AssignmentState::Created,
                    request_id: None,
                };
                self.put_row(row).await?;
                self.count(&format!("create_{}_assignment", kind.as_str()));
                self.audit(
                    "assign",
                    kind_name(kind),
                    &label_assign(a),
                    Some(&key.principal_id),
                    detail(a, key),
                )
                .await?;
            }
            Op::Delete(u) => {
                self.remove_row(&u.key).await?;
                self.count(&format!("delete_{}_assignment", kind.as_str()));
                let detail = json!({"target": u.key.target, "permission_set": u.permission_set,
                    "permission_set_arn": u.key.permission_set_arn, "principal_type": u.key.principal_type});
                self.audit(
                    "unassign",
                    kind_name(kind),
                    &label_unassign(u),
                    Some(&u.key.principal_id),
                    detail,
                )
                .await?;
            }
            Op::Settle(r) => {
                let exists = r.state != AssignmentState::Deleting;
                self.settled(r.clone(), exists).await?;
            }
        }
        // Done: no longer a failure of this run (a retry after a re-plan).
        let label = op.label();
        self.failures.retain(|f| f.principal != label);
        Ok(())
    }

    /// An application assignment: synchronous in AWS.
    async fn application(&mut self, op: Op) -> anyhow::Result<()> {
        if self.stopped() {
            return Err(crate::sync::error::SyncError::Stopped.into());
        }
        let key = op.key().clone();
        self.record_sending(&op).await?;
        let result = if op.is_delete() {
            self.sso
                .delete_application_assignment(&key.target, key.principal_type, &key.principal_id)
                .await
        } else {
            self.sso
                .create_application_assignment(&key.target, key.principal_type, &key.principal_id)
                .await
        };
        match result {
            Ok(()) => self.done_op(&op).await,
            Err(e) => self.not_done(&op, e).await,
        }
    }
}

/// AWS refused the request, or never got it: it did nothing. Other errors (timeouts, 5xx and
/// conflicts that outlasted the retries) leave it unknown whether an earlier attempt went
/// through.
fn refused(e: &AwsError) -> bool {
    matches!(
        e,
        AwsError::Invalid { .. }
            | AwsError::NotFound { .. }
            | AwsError::AccessDenied { .. }
            | AwsError::Configuration { .. }
            | AwsError::Unreachable { .. }
    )
}

/// One account or application assignment operation.
enum Op {
    Create(Assign, AssignmentKey),
    Delete(Unassign),
    /// One an earlier run sent and AWS still works on (its row holds the request id).
    Settle(AssignmentRecord),
}

impl Op {
    fn key(&self) -> &AssignmentKey {
        match self {
            Op::Create(_, key) => key,
            Op::Delete(u) => &u.key,
            Op::Settle(r) => &r.key,
        }
    }

    fn is_delete(&self) -> bool {
        match self {
            Op::Delete(_) => true,
            Op::Settle(r) => r.state == AssignmentState::Deleting,
            Op::Create(..) => false,
        }
    }

    fn label(&self) -> String {
        match self {
            Op::Create(a, _) => label_assign(a),
            Op::Delete(u) => label_unassign(u),
            Op::Settle(r) => label_key(&r.key),
        }
    }
}

impl From<(Assign, AssignmentKey)> for Op {
    fn from((a, key): (Assign, AssignmentKey)) -> Op {
        Op::Create(a, key)
    }
}

struct Flight {
    op: Op,
    request_id: String,
    started: Instant,
    next_poll: Instant,
    polls: u32,
}

fn kind_name(kind: AssignmentKind) -> &'static str {
    match kind {
        AssignmentKind::Account => "AccountAssignment",
        AssignmentKind::Application => "ApplicationAssignment",
    }
}

fn principal_label(t: PrincipalType, name: &str) -> String {
    match t {
        PrincipalType::User => format!("user {name}"),
        PrincipalType::Group => format!("group {name}"),
    }
}

/// `account 111111111111 / EC2AdminAccess / group AWS - EC2 Admin`.
fn label_assign(a: &Assign) -> String {
    let who = principal_label(a.principal_type, &a.principal);
    match (a.kind, &a.permission_set) {
        (AssignmentKind::Account, Some(set)) => format!("account {} / {set} / {who}", a.target),
        _ => format!("application {} / {who}", a.target),
    }
}

fn label_unassign(u: &Unassign) -> String {
    let who = principal_label(u.key.principal_type, &u.principal);
    match u.key.kind {
        AssignmentKind::Account => {
            let set = u.permission_set.as_deref().unwrap_or(&u.key.permission_set_arn);
            format!("account {} / {set} / {who}", u.key.target)
        }
        AssignmentKind::Application => format!("application {} / {who}", u.key.target),
    }
}

/// A label from the key alone (names unknown): `account 111111111111 / <ARN> / group <id>`.
fn label_key(key: &AssignmentKey) -> String {
    let who = principal_label(key.principal_type, &key.principal_id);
    match key.kind {
        AssignmentKind::Account => {
            format!("account {} / {} / {who}", key.target, key.permission_set_arn)
        }
        AssignmentKind::Application => format!("application {} / {who}", key.target),
    }
}

fn detail(a: &Assign, key: &AssignmentKey) -> Value {
    json!({"target": key.target, "permission_set": a.permission_set,
        "permission_set_arn": key.permission_set_arn, "principal_type": key.principal_type, "rule": a.rule})
}

fn failed(what: &str, reason: &str) -> String {
    if reason.trim().is_empty() {
        format!("AWS reports {what} FAILED and gives no reason")
    } else {
        format!("AWS reports {what} FAILED: {reason}")
    }
}

/// The plan as a dry run's report lists it.
pub fn describe(plan: &AccessPlan) -> Vec<Value> {
    let mut out = Vec::new();
    for a in &plan.assign {
        let mut v = serde_json::to_value(a).unwrap_or_default();
        v["action"] = json!(format!("create_{}_assignment", a.kind.as_str()));
        out.push(v);
    }
    for u in &plan.unassign {
        let mut v = serde_json::to_value(u).unwrap_or_default();
        v["action"] = json!(format!("delete_{}_assignment", u.key.kind.as_str()));
        out.push(v);
    }
    for (arn, required) in &plan.assignment_required {
        out.push(json!({"action": "set_assignment_required", "application_arn": arn, "assignment_required": required}));
    }
    out
}

/// The plan's counts, by report key.
pub fn planned_counts(plan: &AccessPlan, permission_sets: &[Value]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let mut add = |k: String| *counts.entry(k).or_default() += 1;
    for a in &plan.assign {
        add(format!("create_{}_assignment", a.kind.as_str()));
    }
    for u in &plan.unassign {
        add(format!("delete_{}_assignment", u.key.kind.as_str()));
    }
    for _ in &plan.assignment_required {
        add("set_assignment_required".into());
    }
    for p in permission_sets {
        if let Some(action) = p.get("action").and_then(Value::as_str) {
            add(action.to_owned());
        }
    }
    counts
}

/// Whether the configuration has anything for this module to do.
pub fn configured(sets: &[PermissionSetSettings], rules: &AssignmentSettings) -> bool {
    !sets.is_empty() || !rules.is_empty()
}
