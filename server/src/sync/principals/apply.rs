//! Applying a plan: one AWS call per action, each change recorded in the store (what the
//! principal is in AWS, what was pushed, which memberships the bridge made) and in the audit
//! log as soon as AWS has it, so a run killed half-way leaves a record the next run continues
//! from.

use super::outcome::{
    Adoption, Failure, Outcome, name_attribute, not_adoptable, principal_of, renames,
};
use super::plan::{self, Action, Skipped};
use crate::mapping::aws_profile::AwsAttributes;
use crate::store::{
    AuditRow, AwsMembership, AwsPrincipal, Ownership, PendingCreate, Store, SyncState,
};
use crate::sync::counts::{self, ActionKind, Counts};
use crate::sync::error::SyncError;
use crate::sync::target::{AttributeChange, AwsError, Directory};
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Applies actions one by one, recording each AWS change in the store and the audit log.
pub(crate) struct Apply<'a> {
    store: &'a dyn Store,
    directory: &'a dyn Directory,
    run_id: Uuid,
    /// Actions done, by `Action::count_key` (the run report's `counts`).
    pub done: Counts,
    /// Memberships added or removed by this run (a full run's drift repair leaves them be: its
    /// listing of AWS may predate them).
    pub touched_memberships: HashSet<(Uuid, Uuid)>,
    /// Renames that met a name still taken, to try again once the run's other changes are in,
    /// with the name the principal had.
    deferred: Vec<(Action, String)>,
    /// Principals given a temporary name in this run (once each).
    set_aside: HashSet<(ResourceKind, Uuid)>,
    /// The record of every managed principal by SCIM resource, kept as the store has it (AWS
    /// ids for memberships, names, ownership, what was pushed).
    principals: HashMap<(ResourceKind, Uuid), AwsPrincipal>,
    /// Memberships recorded per principal, for deletes.
    memberships: Vec<AwsMembership>,
    /// Creates a dead run sent whose principal AWS did not have when this run looked: the
    /// request may still land (a request AWS takes after its sender gave up), so a conflict on
    /// that name in this run is taken for that create, not for a principal made by hand.
    unresolved_creates: HashSet<(ResourceKind, Uuid, String)>,
    /// The AWS ids of the principals this run created.
    pub created: HashSet<String>,
    /// The AWS ids of the principals this run recorded anew (created or adopted): a listing of
    /// AWS read before they were may lack them.
    pub newly_recorded: HashSet<String>,
    pub failures: Vec<Skipped>,
}

impl<'a> Apply<'a> {
    pub fn new(
        store: &'a dyn Store,
        directory: &'a dyn Directory,
        run_id: Uuid,
        state: &SyncState,
    ) -> Self {
        let mut apply = Apply {
            store,
            directory,
            run_id,
            done: Counts::new(),
            touched_memberships: HashSet::new(),
            deferred: Vec::new(),
            set_aside: HashSet::new(),
            principals: HashMap::new(),
            memberships: Vec::new(),
            unresolved_creates: HashSet::new(),
            created: HashSet::new(),
            newly_recorded: HashSet::new(),
            failures: Vec::new(),
        };
        apply.reset(state);
        apply
    }

    /// Takes the record as the store now has it (after a re-plan or a drift repair).
    pub fn reset(&mut self, state: &SyncState) {
        self.principals =
            state.principals.iter().map(|p| ((p.kind, p.resource_id), p.clone())).collect();
        self.memberships = state.memberships.clone();
    }

    fn aws_id(&self, kind: ResourceKind, resource_id: Uuid) -> Option<String> {
        self.principals.get(&(kind, resource_id)).map(|p| p.aws_id.clone())
    }

    fn recorded_name(&self, kind: ResourceKind, resource_id: Uuid) -> String {
        self.principals.get(&(kind, resource_id)).map(|p| p.name.clone()).unwrap_or_default()
    }

    /// Whether this AWS principal is recorded for some SCIM resource. The store is asked when
    /// the run's record does not have it: a change run holds the record of its scope only.
    async fn is_managed(&self, kind: ResourceKind, aws_id: &str) -> Result<bool, Failure> {
        if self.principals.values().any(|p| p.kind == kind && p.aws_id == aws_id) {
            return Ok(true);
        }
        let found = self.store.recorded(&[], &[aws_id.to_owned()]).await?;
        Ok(found.iter().any(|p| p.kind == kind))
    }

    /// Whether another managed principal is recorded under this name (AWS compares names
    /// without case).
    fn held_by_another(&self, kind: ResourceKind, name: &str, resource_id: Uuid) -> bool {
        self.principals.values().any(|p| {
            p.kind == kind && p.resource_id != resource_id && p.name.eq_ignore_ascii_case(name)
        })
    }

    async fn update(
        &self,
        kind: ResourceKind,
        aws_id: &str,
        changes: &[AttributeChange],
    ) -> Result<(), AwsError> {
        match kind {
            ResourceKind::User => self.directory.update_user(aws_id, changes).await,
            ResourceKind::Group => self.directory.update_group(aws_id, changes).await,
        }
    }

    /// The AWS principal with this userName / displayName, if any.
    async fn find(&self, kind: ResourceKind, name: &str) -> Result<Option<String>, AwsError> {
        match kind {
            ResourceKind::User => self.directory.find_user(name).await,
            ResourceKind::Group => self.directory.find_group(name).await,
        }
    }

    /// Renames the principal in AWS and records the new name (keeping the rest of what was
    /// pushed).
    async fn rename(
        &mut self,
        kind: ResourceKind,
        resource_id: Uuid,
        aws_id: &str,
        name: &str,
    ) -> Result<(), Failure> {
        let key = name_attribute(kind);
        self.update(kind, aws_id, &[(key.to_owned(), Some(json!(name)))]).await?;
        let mut pushed = match self.principals.get(&(kind, resource_id)).map(|p| &p.pushed) {
            Some(Value::Object(p)) => p.clone(),
            _ => AwsAttributes::new(),
        };
        pushed.insert(key.into(), json!(name));
        self.record(kind, resource_id, aws_id, name, &pushed, None).await
    }

    /// Tries the renames put off by [`Self::rename_temporarily`] again; one whose name is still
    /// taken goes back to the name it had, never staying under the temporary one.
    pub async fn retry_deferred(&mut self) -> Result<(), SyncError> {
        for (action, old_name) in std::mem::take(&mut self.deferred) {
            self.one(&action).await?;
            let principal = principal_of(&action);
            let Action::Update { kind, resource_id, aws_id, .. } = &action else { continue };
            if old_name.is_empty() || !self.failures.iter().any(|f| f.principal == principal) {
                continue;
            }
            match self.rename(*kind, *resource_id, aws_id, &old_name).await {
                // AWS refused the old name too: the failure above stands.
                Err(Failure::Aws(_)) => continue,
                Err(other) => return Err(other.into_sync_error()),
                Ok(()) => {}
            }
            self.audit(
                "update",
                *kind,
                &old_name,
                Some(aws_id),
                Some(json!({"restored_name": true})),
            )
            .await
            .map_err(Failure::into_sync_error)?;
        }
        Ok(())
    }

    /// Per-principal AWS errors are recorded and the run goes on; access and availability
    /// errors end it (the next call would fail the same way).
    pub async fn one(&mut self, action: &Action) -> Result<(), SyncError> {
        match self.act(action).await {
            Ok(outcome) => {
                // Tried again after a re-plan and done: no longer a failure of this run.
                let principal = principal_of(action);
                self.failures.retain(|f| f.principal != principal);
                let key = match (outcome, action) {
                    (Outcome::Adopted, Action::Create { kind, .. }) => ActionKind::adopt(*kind),
                    _ => action.count_key(),
                };
                counts::add(&mut self.done, key, 1);
                if let Action::AddMember { group_id, user_id, .. }
                | Action::RemoveMember { group_id, user_id, .. } = action
                {
                    self.touched_memberships.insert((*group_id, *user_id));
                }
                Ok(())
            }
            Err(Failure::Aws(e)) if e.is_fatal() => Err(e.into()),
            Err(Failure::Aws(e)) => {
                // One entry per principal: the latest error (a re-plan may try it again).
                let principal = principal_of(action);
                self.failures.retain(|f| f.principal != principal);
                self.failures.push(Skipped { principal, message: e.to_string() });
                Ok(())
            }
            Err(Failure::Refused(message)) => {
                let principal = principal_of(action);
                self.failures.retain(|f| f.principal != principal);
                self.failures.push(Skipped { principal, message });
                Ok(())
            }
            Err(Failure::EndMissing | Failure::Deferred) => Ok(()),
            Err(Failure::Other(e)) => Err(e),
        }
    }

    async fn act(&mut self, action: &Action) -> Result<Outcome, Failure> {
        match action {
            Action::Create { kind, name, resource_id, source, may_adopt, attrs } => {
                let adoption = Adoption { source, allowed: *may_adopt };
                self.create(*kind, name, *resource_id, &adoption, attrs).await
            }
            Action::Adopt { kind, name, resource_id, aws_id, attrs, .. } => {
                self.adopt(*kind, name, *resource_id, aws_id, attrs).await?;
                Ok(Outcome::Adopted)
            }
            other => self.change(other).await.map(|()| Outcome::AsPlanned),
        }
    }

    /// Updates, deletes and membership changes ([`Self::act`] takes creates and adoptions,
    /// whose outcome can differ from the plan, and never passes them here).
    async fn change(&mut self, action: &Action) -> Result<(), Failure> {
        match action {
            Action::Create { .. } | Action::Adopt { .. } => Ok(()),
            Action::Update { kind, name, resource_id, aws_id, changes, attrs, .. } => {
                let kind = *kind;
                match self.update(kind, aws_id, changes).await {
                    Ok(()) => {
                        self.record(kind, *resource_id, aws_id, name, attrs, None).await?;
                        let detail = json!({"attributes": changes.iter().map(|(k, _)| k).collect::<Vec<_>>()});
                        self.audit("update", kind, name, Some(aws_id), Some(detail)).await
                    }
                    // Renamed to a name another managed principal still holds (two names swapped
                    // at the IdP): step aside under a temporary name and try again at the end.
                    // Only when a principal the bridge manages holds the name (it is renamed
                    // later in the plan): a foreign holder would keep it.
                    Err(AwsError::Conflict { .. })
                        if renames(kind, changes)
                            && self.held_by_another(kind, name, *resource_id)
                            && self.set_aside.insert((kind, *resource_id)) =>
                    {
                        let old = self.recorded_name(kind, *resource_id);
                        self.rename_temporarily(kind, *resource_id, aws_id, name).await?;
                        self.deferred.push((action.clone(), old));
                        Err(Failure::Deferred)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Action::AddMember { group, user, group_id, user_id } => {
                let (Some(g), Some(u)) = (
                    self.aws_id(ResourceKind::Group, *group_id),
                    self.aws_id(ResourceKind::User, *user_id),
                ) else {
                    // One end failed to be created: its error is reported already.
                    return Err(Failure::EndMissing);
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
                        let g = self.aws_id(ResourceKind::Group, *group_id);
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

    /// Create; when the name is taken in AWS by a principal the bridge does not manage, adopt
    /// it (userName / displayName only, never by email) if the source may, and bring its
    /// attributes to ours.
    async fn create(
        &mut self,
        kind: ResourceKind,
        name: &str,
        resource_id: Uuid,
        adoption: &Adoption<'_>,
        attrs: &AwsAttributes,
    ) -> Result<Outcome, Failure> {
        // Written first: if the process dies after AWS created the principal and before it is
        // recorded, the next run finds it by this name (see `Apply::resolve_pending`).
        let pending = PendingCreate { kind, resource_id, name: name.to_owned() };
        self.store.put_pending_create(&pending).await?;
        let outcome = self.create_or_adopt(kind, name, resource_id, adoption, attrs).await;
        self.store.remove_pending_create(kind, resource_id).await?;
        outcome
    }

    /// Principals whose create a dead process left unrecorded: found in AWS by the name they
    /// were sent with and recorded as created (with only their name as pushed, so the next
    /// plan brings every other attribute up to date), or forgotten when AWS never made them.
    pub async fn resolve_pending(&mut self) -> Result<(), SyncError> {
        for p in self.store.pending_creates().await? {
            if !self.principals.contains_key(&(p.kind, p.resource_id)) {
                let found = self.find(p.kind, &p.name).await?;
                if found.is_none() {
                    self.unresolved_creates.insert((p.kind, p.resource_id, p.name.clone()));
                } else if let Some(aws_id) = found
                    && !self.is_managed(p.kind, &aws_id).await.map_err(Failure::into_sync_error)?
                {
                    tracing::warn!(name = %p.name, %aws_id, "recording a create an earlier run did not live to record");
                    let mut pushed = AwsAttributes::new();
                    pushed.insert(name_attribute(p.kind).into(), json!(p.name));
                    self.record(
                        p.kind,
                        p.resource_id,
                        &aws_id,
                        &p.name,
                        &pushed,
                        Some(Ownership::Created),
                    )
                    .await
                    .map_err(Failure::into_sync_error)?;
                    self.audit(
                        "create",
                        p.kind,
                        &p.name,
                        Some(&aws_id),
                        Some(json!({"recovered": true})),
                    )
                    .await
                    .map_err(Failure::into_sync_error)?;
                }
            }
            self.store.remove_pending_create(p.kind, p.resource_id).await?;
        }
        Ok(())
    }

    async fn create_or_adopt(
        &mut self,
        kind: ResourceKind,
        name: &str,
        resource_id: Uuid,
        adoption: &Adoption<'_>,
        attrs: &AwsAttributes,
    ) -> Result<Outcome, Failure> {
        let created = match kind {
            ResourceKind::User => self.directory.create_user(attrs).await,
            ResourceKind::Group => self.directory.create_group(attrs).await,
        };
        match created {
            Ok(aws_id) => {
                self.record(kind, resource_id, &aws_id, name, attrs, Some(Ownership::Created))
                    .await?;
                self.created.insert(aws_id.clone());
                self.audit("create", kind, name, Some(&aws_id), None).await?;
                Ok(Outcome::AsPlanned)
            }
            Err(AwsError::Conflict { .. }) => {
                let existing = self.find(kind, name).await?;
                let operation =
                    if kind == ResourceKind::User { "CreateUser" } else { "CreateGroup" };
                let Some(aws_id) = existing else {
                    return Err(Failure::Aws(AwsError::Conflict {
                        operation,
                        message: "another AWS principal holds a unique value of it (for a user: its email)".into(),
                    }));
                };
                if self.unresolved_creates.remove(&(kind, resource_id, name.to_owned()))
                    && !self.is_managed(kind, &aws_id).await?
                {
                    // The dead run's create landed after all: ours, as created, with every
                    // attribute of ours (it was sent with an older version).
                    tracing::warn!(%name, %aws_id, "recording a create an earlier run sent and AWS took late");
                    let changes = plan::diff(&Value::Object(Default::default()), attrs);
                    self.update(kind, &aws_id, &changes).await?;
                    self.record(kind, resource_id, &aws_id, name, attrs, Some(Ownership::Created))
                        .await?;
                    self.created.insert(aws_id.clone());
                    self.audit(
                        "create",
                        kind,
                        name,
                        Some(&aws_id),
                        Some(json!({"recovered": true})),
                    )
                    .await?;
                    return Ok(Outcome::AsPlanned);
                }
                if !adoption.allowed {
                    return Err(Failure::Refused(not_adoptable(
                        kind,
                        name,
                        &aws_id,
                        adoption.source,
                    )));
                }
                self.adopt(kind, name, resource_id, &aws_id, attrs).await?;
                Ok(Outcome::Adopted)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Takes over the unmanaged AWS principal `aws_id`, bringing its attributes to ours.
    async fn adopt(
        &mut self,
        kind: ResourceKind,
        name: &str,
        resource_id: Uuid,
        aws_id: &str,
        attrs: &AwsAttributes,
    ) -> Result<(), Failure> {
        // Never take over a principal recorded for another SCIM resource (say, the same
        // userName deleted and provisioned again at the IdP): overwriting it would give one AWS
        // identity two owners. The other resource's change frees it first.
        if self.is_managed(kind, aws_id).await? {
            return Err(Failure::Aws(AwsError::Conflict {
                operation: if kind == ResourceKind::User { "CreateUser" } else { "CreateGroup" },
                message: format!(
                    "the AWS principal named {name:?} is managed for another SCIM resource; \
                     it is taken over once that one is deleted or renamed"
                ),
            }));
        }
        // Every attribute of ours, as changes against nothing.
        let changes = plan::diff(&Value::Object(Default::default()), attrs);
        self.update(kind, aws_id, &changes).await?;
        self.record(kind, resource_id, aws_id, name, attrs, Some(Ownership::Adopted)).await?;
        self.audit("adopt", kind, name, Some(aws_id), None).await
    }

    /// Gives the principal a unique temporary name, recorded as pushed, so that a crash leaves
    /// a state the next run's plan renames back.
    async fn rename_temporarily(
        &mut self,
        kind: ResourceKind,
        resource_id: Uuid,
        aws_id: &str,
        name: &str,
    ) -> Result<(), Failure> {
        let temporary = format!("scimbridge-renaming-{}", Uuid::now_v7().simple());
        self.rename(kind, resource_id, aws_id, &temporary).await?;
        let detail = json!({"temporary_name": temporary, "renaming_to": name});
        self.audit("update", kind, name, Some(aws_id), Some(detail)).await
    }

    /// Records the principal as pushed; `ownership` None keeps the recorded one.
    async fn record(
        &mut self,
        kind: ResourceKind,
        resource_id: Uuid,
        aws_id: &str,
        name: &str,
        attrs: &AwsAttributes,
        ownership: Option<Ownership>,
    ) -> Result<(), Failure> {
        let recorded = self.principals.get(&(kind, resource_id));
        if recorded.is_none_or(|p| p.aws_id != aws_id) {
            self.newly_recorded.insert(aws_id.to_owned());
        }
        let ownership =
            ownership.or_else(|| recorded.map(|p| p.ownership)).unwrap_or(Ownership::Created);
        let principal = AwsPrincipal {
            kind,
            resource_id,
            aws_id: aws_id.to_owned(),
            ownership,
            name: name.to_owned(),
            pushed: Value::Object(attrs.clone()),
        };
        self.store.put_principal(&principal).await?;
        self.principals.insert((kind, resource_id), principal);
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
        self.store.append_audit(&row).await?;
        Ok(())
    }
}
