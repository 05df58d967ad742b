//! An in-memory Identity Store and SSO Admin for unit tests: [`FakeAws`] implements
//! [`Directory`] and [`SsoAdmin`] with the semantics the AWS adapter relies on — a userName or
//! displayName taken is a conflict (case-insensitively, as AWS compares them), what is missing
//! is not found, deleting what is gone is success, adding an existing membership returns its
//! id, and account assignments and provisioning are asynchronous operations polled by request
//! id (done at once unless [`FakeAws::set_async_polls`] says otherwise). Lists come back whole
//! (the adapter pages them itself).
//!
//! Seed it with the `seed_*` methods, make calls fail with [`FakeAws::fail_on`] and
//! [`FakeAws::fail_assignment`], and inspect it with [`FakeAws::world`],
//! [`FakeAws::calls_of`] and [`Directory::calls`].

use super::{
    AccountAssignment, AttributeChange, AwsError, Directory, Listed, OpState, OpStatus,
    Organizations, PermissionSetShape, SsoAdmin,
};
use crate::mapping::aws_profile::AwsAttributes;
use crate::store::PrincipalType;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

pub mod organizations;
mod ssoadmin;

pub use organizations::FakeOrganization;

/// A user or group as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePrincipal {
    /// userName, or displayName.
    pub name: String,
    pub attrs: AwsAttributes,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakePermissionSet {
    pub name: String,
    pub shape: PermissionSetShape,
    /// Accounts it is provisioned to (one holding an assignment of it is).
    pub provisioned: BTreeSet<String>,
    /// Provisionings requested so far.
    pub provisions: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FakeApplication {
    pub assignments: BTreeSet<(PrincipalType, String)>,
    pub assignment_required: Option<bool>,
}

/// (account, permission set ARN, principal type, principal id).
pub type AssignmentTuple = (String, String, PrincipalType, String);

/// Everything the fake holds, for seeding and inspecting.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub users: BTreeMap<String, FakePrincipal>,
    pub groups: BTreeMap<String, FakePrincipal>,
    /// Membership id → (group id, user id).
    pub memberships: BTreeMap<String, (String, String)>,
    /// By ARN.
    pub permission_sets: BTreeMap<String, FakePermissionSet>,
    pub account_assignments: BTreeSet<AssignmentTuple>,
    /// By ARN.
    pub applications: BTreeMap<String, FakeApplication>,
    /// The organisation (none until [`FakeAws::seed_organization`]).
    pub organization: Option<FakeOrganization>,
    /// Asynchronous operations by request id.
    operations: BTreeMap<String, Operation>,
    next_id: u64,
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:04}", self.next_id)
    }
}

/// What an asynchronous operation does to the world when it succeeds.
#[derive(Debug, Clone)]
enum Effect {
    Assign(AssignmentTuple),
    Unassign(AssignmentTuple),
    Provision,
}

#[derive(Debug, Clone)]
struct Operation {
    /// Status polls that still answer IN_PROGRESS.
    polls_left: u32,
    /// Some: fails with this reason instead of taking effect.
    failure: Option<String>,
    effect: Effect,
    state: OpState,
}

/// A failure injected with [`FakeAws::fail_on`].
#[derive(Debug, Clone)]
struct Injected {
    operation: &'static str,
    /// Matched against the call's arguments; empty: every call.
    needle: String,
    error: AwsError,
}

#[derive(Default)]
pub struct FakeAws {
    world: Mutex<World>,
    calls: Mutex<BTreeMap<String, u64>>,
    failures: Mutex<Vec<Injected>>,
    /// Principal ids whose account assignment operations AWS reports FAILED, with the reason.
    failing_assignments: Mutex<BTreeMap<String, String>>,
    async_polls: Mutex<u32>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn same_name(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn not_found(operation: &'static str, what: &str) -> AwsError {
    AwsError::NotFound { operation, message: format!("{what} not found") }
}

impl FakeAws {
    pub fn new() -> FakeAws {
        FakeAws::default()
    }

    /// A copy of everything the fake holds.
    pub fn world(&self) -> World {
        lock(&self.world).clone()
    }

    /// Asynchronous operations answer IN_PROGRESS to this many status polls before they end
    /// (0, the default: they end at once, as the create or delete answers).
    pub fn set_async_polls(&self, polls: u32) {
        *lock(&self.async_polls) = polls;
    }

    /// Every call of `operation` (the AWS name, `CreateAccountAssignment`) whose arguments
    /// contain `needle` (every call when it is empty) fails with `error`, until
    /// [`FakeAws::clear_failures`].
    pub fn fail_on(&self, operation: &'static str, needle: &str, error: AwsError) {
        lock(&self.failures).push(Injected { operation, needle: needle.to_owned(), error });
    }

    pub fn clear_failures(&self) {
        lock(&self.failures).clear();
        lock(&self.failing_assignments).clear();
    }

    /// Account assignment operations for this principal are accepted, then reported FAILED
    /// with `reason`.
    pub fn fail_assignment(&self, principal_id: &str, reason: &str) {
        lock(&self.failing_assignments).insert(principal_id.to_owned(), reason.to_owned());
    }

    /// Calls of one operation so far.
    pub fn calls_of(&self, operation: &str) -> u64 {
        lock(&self.calls).get(operation).copied().unwrap_or_default()
    }

    pub fn seed_user(&self, user_name: &str) -> String {
        let mut w = lock(&self.world);
        let id = w.id("u");
        let mut attrs = AwsAttributes::new();
        attrs.insert("userName".into(), Value::String(user_name.to_owned()));
        w.users.insert(id.clone(), FakePrincipal { name: user_name.to_owned(), attrs });
        id
    }

    pub fn seed_group(&self, display_name: &str) -> String {
        let mut w = lock(&self.world);
        let id = w.id("g");
        let mut attrs = AwsAttributes::new();
        attrs.insert("displayName".into(), Value::String(display_name.to_owned()));
        w.groups.insert(id.clone(), FakePrincipal { name: display_name.to_owned(), attrs });
        id
    }

    pub fn seed_membership(&self, group_id: &str, user_id: &str) -> String {
        let mut w = lock(&self.world);
        let id = w.id("m");
        w.memberships.insert(id.clone(), (group_id.to_owned(), user_id.to_owned()));
        id
    }

    /// A permission set made outside the bridge; returns its ARN.
    pub fn seed_permission_set(&self, name: &str, shape: PermissionSetShape) -> String {
        let mut w = lock(&self.world);
        let arn = format!("arn:aws:sso:::permissionSet/ssoins-fake/{}", w.id("ps"));
        let set = FakePermissionSet { name: name.to_owned(), shape, ..Default::default() };
        w.permission_sets.insert(arn.clone(), set);
        arn
    }

    /// An assignment made outside the bridge (its permission set is provisioned there).
    pub fn seed_account_assignment(&self, a: &AccountAssignment) {
        let mut w = lock(&self.world);
        if let Some(set) = w.permission_sets.get_mut(&a.permission_set_arn) {
            set.provisioned.insert(a.account.clone());
        }
        w.account_assignments.insert(tuple(a));
    }

    pub fn seed_application(&self, arn: &str) {
        lock(&self.world).applications.entry(arn.to_owned()).or_default();
    }

    pub fn has_account_assignment(&self, a: &AccountAssignment) -> bool {
        lock(&self.world).account_assignments.contains(&tuple(a))
    }

    /// Counts the call, and answers it with an injected failure that matches.
    fn enter(&self, operation: &'static str, args: &[&str]) -> Result<(), AwsError> {
        *lock(&self.calls).entry(operation.to_owned()).or_default() += 1;
        let failures = lock(&self.failures);
        let hit = failures.iter().find(|f| {
            f.operation == operation
                && (f.needle.is_empty() || args.iter().any(|a| a.contains(&f.needle)))
        });
        match hit {
            Some(f) => Err(f.error.clone()),
            None => Ok(()),
        }
    }

    /// Starts an asynchronous operation: done at once, or after the configured polls.
    fn start(&self, effect: Effect, failure: Option<String>) -> OpStatus {
        let polls_left = *lock(&self.async_polls);
        let mut w = lock(&self.world);
        let request_id = w.id("req");
        let mut op = Operation { polls_left, failure, effect, state: OpState::InProgress };
        if polls_left == 0 {
            finish(&mut w, &mut op);
        }
        let state = op.state.clone();
        w.operations.insert(request_id.clone(), op);
        OpStatus { request_id, state }
    }

    fn poll(&self, operation: &'static str, request_id: &str) -> Result<OpStatus, AwsError> {
        let mut w = lock(&self.world);
        let Some(mut op) = w.operations.remove(request_id) else {
            return Err(not_found(operation, &format!("request {request_id}")));
        };
        if op.state == OpState::InProgress {
            if op.polls_left > 0 {
                op.polls_left -= 1;
            }
            if op.polls_left == 0 {
                finish(&mut w, &mut op);
            }
        }
        let state = op.state.clone();
        w.operations.insert(request_id.to_owned(), op);
        Ok(OpStatus { request_id: request_id.to_owned(), state })
    }

    fn principals(&self, groups: bool) -> Vec<Listed> {
        let w = lock(&self.world);
        let all = if groups { &w.groups } else { &w.users };
        all.iter().map(|(id, p)| Listed { id: id.clone(), name: p.name.clone() }).collect()
    }

    fn create_principal(
        &self,
        operation: &'static str,
        groups: bool,
        attrs: &AwsAttributes,
    ) -> Result<String, AwsError> {
        let key = if groups { "displayName" } else { "userName" };
        let Some(name) = attrs.get(key).and_then(Value::as_str).map(str::to_owned) else {
            return Err(AwsError::Invalid { operation, message: format!("{key} is required") });
        };
        self.enter(operation, &[&name])?;
        let mut w = lock(&self.world);
        let all = if groups { &w.groups } else { &w.users };
        if all.values().any(|p| same_name(&p.name, &name)) {
            let message = format!("Duplicate {key}: {name}");
            return Err(AwsError::Conflict { operation, message });
        }
        let id = w.id(if groups { "g" } else { "u" });
        let all = if groups { &mut w.groups } else { &mut w.users };
        all.insert(id.clone(), FakePrincipal { name, attrs: attrs.clone() });
        Ok(id)
    }

    fn update_principal(
        &self,
        operation: &'static str,
        groups: bool,
        id: &str,
        changes: &[AttributeChange],
    ) -> Result<(), AwsError> {
        self.enter(operation, &[id])?;
        let key = if groups { "displayName" } else { "userName" };
        let mut w = lock(&self.world);
        let all = if groups { &mut w.groups } else { &mut w.users };
        let renamed = changes.iter().find(|(path, _)| path == key);
        if let Some((_, Some(Value::String(name)))) = renamed
            && all.iter().any(|(other, p)| other != id && same_name(&p.name, name))
        {
            let message = format!("Duplicate {key}: {name}");
            return Err(AwsError::Conflict { operation, message });
        }
        let Some(p) = all.get_mut(id) else { return Err(not_found(operation, id)) };
        for (path, value) in changes {
            set_path(&mut p.attrs, path, value.clone());
        }
        if let Some(name) = p.attrs.get(key).and_then(Value::as_str) {
            p.name = name.to_owned();
        }
        Ok(())
    }

    fn find_principal(
        &self,
        operation: &'static str,
        groups: bool,
        name: &str,
    ) -> Result<Option<String>, AwsError> {
        self.enter(operation, &[name])?;
        let w = lock(&self.world);
        let all = if groups { &w.groups } else { &w.users };
        Ok(all.iter().find(|(_, p)| same_name(&p.name, name)).map(|(id, _)| id.clone()))
    }

    fn with_set<T>(
        &self,
        operation: &'static str,
        arn: &str,
        f: impl FnOnce(&mut FakePermissionSet) -> T,
    ) -> Result<T, AwsError> {
        self.enter(operation, &[arn])?;
        let mut w = lock(&self.world);
        let set = w.permission_sets.get_mut(arn).ok_or_else(|| not_found(operation, arn))?;
        Ok(f(set))
    }

    fn with_application<T>(
        &self,
        operation: &'static str,
        args: &[&str],
        f: impl FnOnce(&mut FakeApplication) -> T,
    ) -> Result<T, AwsError> {
        self.enter(operation, args)?;
        let mut w = lock(&self.world);
        let arn = args.first().copied().unwrap_or_default();
        let app = w.applications.get_mut(arn).ok_or_else(|| not_found(operation, arn))?;
        Ok(f(app))
    }

    fn assignment_operation(
        &self,
        operation: &'static str,
        a: &AccountAssignment,
        delete: bool,
    ) -> Result<OpStatus, AwsError> {
        self.enter(operation, &[&a.account, &a.permission_set_arn, &a.principal_id])?;
        if !lock(&self.world).permission_sets.contains_key(&a.permission_set_arn) {
            return Err(not_found(operation, &a.permission_set_arn));
        }
        let failure = lock(&self.failing_assignments).get(&a.principal_id).cloned();
        let effect = if delete { Effect::Unassign(tuple(a)) } else { Effect::Assign(tuple(a)) };
        Ok(self.start(effect, failure))
    }
}

fn tuple(a: &AccountAssignment) -> AssignmentTuple {
    (a.account.clone(), a.permission_set_arn.clone(), a.principal_type, a.principal_id.clone())
}

/// Ends an operation: FAILED with its injected reason, else SUCCEEDED and in effect.
fn finish(w: &mut World, op: &mut Operation) {
    if let Some(reason) = &op.failure {
        op.state = OpState::Failed(reason.clone());
        return;
    }
    match &op.effect {
        Effect::Assign(t) => {
            if let Some(set) = w.permission_sets.get_mut(&t.1) {
                set.provisioned.insert(t.0.clone());
            }
            w.account_assignments.insert(t.clone());
        }
        Effect::Unassign(t) => {
            w.account_assignments.remove(t);
        }
        Effect::Provision => {}
    }
    op.state = OpState::Succeeded;
}

/// Sets (or, with None, removes) an attribute by its dotted path (`name.givenName`).
fn set_path(attrs: &mut AwsAttributes, path: &str, value: Option<Value>) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut at = attrs;
    for part in parts {
        let entry = at.entry(part.to_owned()).or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(next) = entry else { return };
        at = next;
    }
    match value {
        Some(v) => {
            at.insert(last.to_owned(), v);
        }
        None => {
            at.remove(last);
        }
    }
}

#[async_trait]
impl Directory for FakeAws {
    async fn create_user(&self, attrs: &AwsAttributes) -> Result<String, AwsError> {
        self.create_principal("CreateUser", false, attrs)
    }

    async fn update_user(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError> {
        self.update_principal("UpdateUser", false, id, changes)
    }

    async fn delete_user(&self, id: &str) -> Result<(), AwsError> {
        self.enter("DeleteUser", &[id])?;
        let mut w = lock(&self.world);
        w.users.remove(id);
        w.memberships.retain(|_, (_, user)| user != id);
        Ok(())
    }

    async fn find_user(&self, user_name: &str) -> Result<Option<String>, AwsError> {
        self.find_principal("GetUserId", false, user_name)
    }

    async fn list_users(&self) -> Result<Vec<Listed>, AwsError> {
        self.enter("ListUsers", &[])?;
        Ok(self.principals(false))
    }

    async fn create_group(&self, attrs: &AwsAttributes) -> Result<String, AwsError> {
        self.create_principal("CreateGroup", true, attrs)
    }

    async fn update_group(&self, id: &str, changes: &[AttributeChange]) -> Result<(), AwsError> {
        self.update_principal("UpdateGroup", true, id, changes)
    }

    async fn delete_group(&self, id: &str) -> Result<(), AwsError> {
        self.enter("DeleteGroup", &[id])?;
        let mut w = lock(&self.world);
        w.groups.remove(id);
        w.memberships.retain(|_, (group, _)| group != id);
        Ok(())
    }

    async fn find_group(&self, display_name: &str) -> Result<Option<String>, AwsError> {
        self.find_principal("GetGroupId", true, display_name)
    }

    async fn list_groups(&self) -> Result<Vec<Listed>, AwsError> {
        self.enter("ListGroups", &[])?;
        Ok(self.principals(true))
    }

    async fn list_memberships(&self, group_id: &str) -> Result<Vec<(String, String)>, AwsError> {
        const OP: &str = "ListGroupMemberships";
        self.enter(OP, &[group_id])?;
        let w = lock(&self.world);
        if !w.groups.contains_key(group_id) {
            return Err(not_found(OP, group_id));
        }
        let members = w.memberships.iter().filter(|(_, (g, _))| g == group_id);
        Ok(members.map(|(id, (_, user))| (id.clone(), user.clone())).collect())
    }

    async fn add_member(&self, group_id: &str, user_id: &str) -> Result<String, AwsError> {
        const OP: &str = "CreateGroupMembership";
        self.enter(OP, &[group_id, user_id])?;
        let mut w = lock(&self.world);
        if !w.groups.contains_key(group_id) {
            return Err(not_found(OP, group_id));
        }
        if !w.users.contains_key(user_id) {
            return Err(not_found(OP, user_id));
        }
        let existing = w.memberships.iter().find(|(_, (g, u))| g == group_id && u == user_id);
        if let Some((id, _)) = existing {
            return Ok(id.clone());
        }
        let id = w.id("m");
        w.memberships.insert(id.clone(), (group_id.to_owned(), user_id.to_owned()));
        Ok(id)
    }

    async fn remove_member(&self, membership_id: &str) -> Result<(), AwsError> {
        self.enter("DeleteGroupMembership", &[membership_id])?;
        lock(&self.world).memberships.remove(membership_id);
        Ok(())
    }

    fn sso(&self) -> &dyn SsoAdmin {
        self
    }

    fn organizations(&self) -> &dyn Organizations {
        self
    }

    fn calls(&self) -> BTreeMap<String, u64> {
        lock(&self.calls).clone()
    }

    fn throttles(&self) -> u64 {
        0
    }
}
