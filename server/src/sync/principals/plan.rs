//! The plan: what must change in AWS so that it matches the SCIM side, computed from the store's
//! snapshot and the bridge's own record of what it pushed — pure, no I/O, so a dry run shows
//! exactly what a real run would do.
//!
//! Rules that keep identities safe:
//! - only principals in the bridge's record (created or adopted) are ever updated or deleted;
//! - a delete comes only from the SCIM side: the resource is gone (a DELETE at the IdP), or it
//!   is deactivated and `on_deactivate = "delete"`. A user that cannot be shaped for AWS (say,
//!   a userName with a space) is skipped with an error, never deleted;
//! - protected users and groups are left alone entirely (not adopted, changed or deleted),
//!   whether the IdP's name or the name recorded in AWS is the protected one;
//! - nested SCIM groups are flattened: an AWS group gets every user reachable through it.

pub use super::diff::diff;
use super::memberships::plan_memberships;
use super::scope::{self, PlanScope, Widen};
use crate::config::OnDeactivate;
use crate::mapping::aws_profile::{AwsAttributes, ENTERPRISE_EXTENSION, shape_group, shape_user};
use crate::mapping::rules::{Rules, Selection};
use crate::names::NameKey;
use crate::store::{AwsPrincipal, RecordTotals, Snapshot, SyncState};
use crate::sync::counts::ActionKind;
use crate::sync::target::AttributeChange;
use scim_schema::schema::ResourceKind;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// What the plan needs of the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub on_deactivate: OnDeactivate,
    /// userNames, by their keys.
    pub protected_users: HashSet<NameKey>,
    /// displayNames, by their keys.
    pub protected_groups: HashSet<NameKey>,
    /// `[sync.filter]` and `[mapping]`, compiled.
    pub rules: std::sync::Arc<Rules>,
    /// Sources whose creates may take over an unmanaged AWS principal of the same name
    /// (`[sources.NAME] adopt_existing`).
    pub adopt_existing: HashSet<String>,
}

impl Policy {
    /// Protected by its name at the IdP (as AWS would receive it: trimmed) or by the name it
    /// has in AWS — so renaming or deleting it at the IdP cannot reach the AWS principal.
    pub fn is_protected(&self, kind: ResourceKind, name: &str, recorded: Option<&str>) -> bool {
        let set = match kind {
            ResourceKind::User => &self.protected_users,
            ResourceKind::Group => &self.protected_groups,
        };
        set.contains(&NameKey::of(name)) || recorded.is_some_and(|r| set.contains(&NameKey::of(r)))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Create {
        #[serde(serialize_with = "kind_name")]
        kind: ResourceKind,
        name: String,
        resource_id: Uuid,
        /// The source that pushed it.
        source: String,
        /// Whether the source may take over an unmanaged AWS principal holding the name
        /// (`adopt_existing`); otherwise such a create fails, leaving that principal alone.
        #[serde(skip)]
        may_adopt: bool,
        #[serde(skip)]
        attrs: AwsAttributes,
    },
    /// An unmanaged AWS principal of the same name, taken over (its attributes brought to
    /// ours) because its source has `adopt_existing`. Planned where the run looked AWS up (a
    /// dry run); a real run's create adopts when AWS answers that the name is taken.
    Adopt {
        #[serde(serialize_with = "kind_name")]
        kind: ResourceKind,
        name: String,
        resource_id: Uuid,
        source: String,
        aws_id: String,
        #[serde(skip)]
        attrs: AwsAttributes,
    },
    Update {
        #[serde(serialize_with = "kind_name")]
        kind: ResourceKind,
        name: String,
        resource_id: Uuid,
        aws_id: String,
        /// The attributes that change.
        attributes: Vec<String>,
        #[serde(skip)]
        changes: Vec<AttributeChange>,
        #[serde(skip)]
        attrs: AwsAttributes,
    },
    Delete {
        #[serde(serialize_with = "kind_name")]
        kind: ResourceKind,
        name: String,
        resource_id: Uuid,
        aws_id: String,
        reason: &'static str,
    },
    AddMember {
        group: String,
        user: String,
        group_id: Uuid,
        user_id: Uuid,
    },
    RemoveMember {
        group: String,
        user: String,
        group_id: Uuid,
        user_id: Uuid,
        #[serde(skip)]
        membership_id: String,
    },
}

/// `"User"` / `"Group"` in the run report's plan.
fn kind_name<S: serde::Serializer>(kind: &ResourceKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

impl Action {
    /// The key of `counts` in a run report.
    pub fn count_key(&self) -> ActionKind {
        match self {
            Action::Create { kind, .. } => ActionKind::create(*kind),
            Action::Adopt { kind, .. } => ActionKind::adopt(*kind),
            Action::Update { kind, .. } => ActionKind::update(*kind),
            Action::Delete { kind, .. } => ActionKind::delete(*kind),
            Action::AddMember { .. } => ActionKind::AddMembership,
            Action::RemoveMember { .. } => ActionKind::RemoveMembership,
        }
    }

    pub fn is_delete(&self) -> bool {
        matches!(self, Action::Delete { .. })
    }
}

/// A principal that is not synced as it is, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub principal: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// In the order they are applied: group and user deletes, updates, creates, then
    /// membership changes.
    pub actions: Vec<Action>,
    pub skipped: Vec<Skipped>,
    /// Principals a `[sync.filter]` expression failed for (an error, or not true or false):
    /// neither synced nor deleted, and unlike a deliberate skip they make the run `partial` —
    /// a broken filter must not look like a run that succeeded with nothing to do.
    pub filter_failures: Vec<Skipped>,
    /// Managed principals before the run (for the delete guard).
    pub managed: usize,
    /// Recorded memberships before the run, in all and per group (for the delete guard).
    pub memberships: usize,
    pub members_per_group: HashMap<Uuid, usize>,
}

impl Plan {
    pub fn deletes(&self) -> usize {
        self.actions.iter().filter(|a| a.is_delete()).count()
    }
}

/// A synced principal: its AWS name and shape, and the source that pushed it.
pub(super) struct Desired {
    pub(super) name: String,
    pub(super) attrs: AwsAttributes,
    pub(super) source: String,
}

/// What must change in AWS so that it matches `snapshot`, given the record `state`: the users
/// and groups as they are to be, then deletes, updates and creates, then memberships.
pub fn plan(snapshot: &Snapshot, state: &SyncState, policy: &Policy) -> Plan {
    plan_within(snapshot, state, policy, Reach::Everything, Plan::before(state)).0
}

/// The plan of a change run: the same rules as [`plan`] over a scoped read (the documents and
/// record of the scope only), acting only within `scope` — nothing outside it is deleted,
/// removed or added — and weighed by the delete guard against the whole record (`totals`).
/// Also what the scope turned out too narrow for ([`Widen`]): the caller reads more and plans
/// again.
pub fn plan_scoped(
    snapshot: &Snapshot,
    state: &SyncState,
    policy: &Policy,
    scope: &PlanScope,
    totals: &RecordTotals,
) -> (Plan, Widen) {
    let before = Plan {
        managed: totals.principals,
        memberships: totals.memberships,
        members_per_group: totals.members_per_group.clone(),
        ..Plan::default()
    };
    plan_within(snapshot, state, policy, Reach::Scope(scope), before)
}

/// What a plan may act on.
#[derive(Clone, Copy)]
pub(super) enum Reach<'a> {
    /// Everything: the snapshot and the record are the whole directory.
    Everything,
    /// A change run's scope: the snapshot and the record hold only it.
    Scope(&'a PlanScope),
}

impl Reach<'_> {
    /// Whether the plan may delete this recorded principal (its resource gone or no longer
    /// wanted): a scoped plan only those the change set names (a principal merely read for
    /// context, say a manager, is absent from a scoped snapshot without being gone).
    fn may_delete(self, id: Uuid) -> bool {
        match self {
            Reach::Everything => true,
            Reach::Scope(s) => s.deletable.contains(&id),
        }
    }

    /// Whether the plan decides this membership: a scoped plan only those of a group planned
    /// whole or of a user planned whole.
    pub(super) fn has_pair(self, group: Uuid, user: Uuid) -> bool {
        match self {
            Reach::Everything => true,
            Reach::Scope(s) => s.whole_groups.contains(&group) || s.users.contains(&user),
        }
    }
}

fn plan_within(
    snapshot: &Snapshot,
    state: &SyncState,
    policy: &Policy,
    reach: Reach,
    mut out: Plan,
) -> (Plan, Widen) {
    let recorded: Recorded =
        state.principals.iter().map(|p| ((p.kind, p.resource_id), p)).collect();
    let mut standing = Standing::default();
    let users = desired_users(snapshot, &recorded, policy, &mut standing, &mut out);
    let groups = desired_groups(snapshot, &recorded, policy, &mut standing, &mut out);
    let wanted = Wanted { users, groups, inactive: std::mem::take(&mut standing.inactive) };
    let unwanted: Vec<(ResourceKind, Uuid)> = state
        .principals
        .iter()
        .map(|p| (p.kind, p.resource_id))
        .filter(|k| !standing.keep.contains(k))
        .collect();
    let deleting: HashSet<(ResourceKind, Uuid)> =
        unwanted.iter().copied().filter(|(_, id)| reach.may_delete(*id)).collect();
    plan_deletes(snapshot, state, policy, &deleting, &standing.unselected, &mut out);
    plan_upserts(&recorded, policy, &wanted, &mut out);
    plan_memberships(snapshot, state, &recorded, &wanted, &deleting, reach, &mut out);
    let widen = match reach {
        Reach::Everything => Widen::default(),
        Reach::Scope(scope) => scope::widen(scope, snapshot, &out, &unwanted),
    };
    (out, widen)
}

/// The record of every managed principal, by kind and SCIM resource.
pub(super) type Recorded<'a> = HashMap<(ResourceKind, Uuid), &'a AwsPrincipal>;

/// What the SCIM side says of the recorded principals while the desired ones are worked out.
#[derive(Default)]
struct Standing {
    /// Principals that stay (the others recorded are deleted).
    keep: HashSet<(ResourceKind, Uuid)>,
    /// Resources `[sync.filter]` does not select: not synced, and deleted if they were.
    unselected: HashSet<Uuid>,
    /// Deactivated users under `on_deactivate = "remove_memberships"`: in no group.
    inactive: HashSet<Uuid>,
}

/// The synced users and groups, by SCIM resource.
pub(super) struct Wanted {
    pub(super) users: BTreeMap<Uuid, Desired>,
    pub(super) groups: BTreeMap<Uuid, Desired>,
    pub(super) inactive: HashSet<Uuid>,
}

impl Plan {
    /// An empty plan with what the delete guard weighs it against: the record before the run.
    fn before(state: &SyncState) -> Plan {
        let mut members_per_group: HashMap<Uuid, usize> = HashMap::new();
        for m in &state.memberships {
            *members_per_group.entry(m.group_id).or_default() += 1;
        }
        Plan {
            managed: state.principals.len(),
            memberships: state.memberships.len(),
            members_per_group,
            ..Plan::default()
        }
    }
}

const PROTECTED: &str = "protected: never adopted, changed or deleted";

impl Standing {
    /// The protection and `[sync.filter]` verdict on one SCIM resource (`key`), users and
    /// groups alike: true when it goes on to be shaped. A protected one is skipped (kept:
    /// never deleted for it); an unselected one is not kept (deleted if it was synced); one
    /// the filter fails for is neither synced nor deleted — an expression error must never
    /// remove anyone.
    fn admit(
        &mut self,
        key: (ResourceKind, Uuid),
        label: &str,
        select: impl FnOnce() -> Selection,
        recorded: &Recorded,
        policy: &Policy,
        out: &mut Plan,
    ) -> bool {
        self.keep.insert(key);
        let recorded_name = recorded.get(&key).map(|p| p.name.as_str());
        if policy.is_protected(key.0, label, recorded_name) {
            out.skipped.push(skipped(label, PROTECTED));
            return false;
        }
        match select() {
            Selection::Selected => true,
            Selection::NotSelected => {
                self.keep.remove(&key);
                self.unselected.insert(key.1);
                false
            }
            Selection::Failed(e) => {
                out.filter_failures.push(skipped(label, &e));
                false
            }
        }
    }
}

/// Users: shaped, unless protected or unshapeable (both skipped, never deleted).
fn desired_users(
    snapshot: &Snapshot,
    recorded: &Recorded,
    policy: &Policy,
    standing: &mut Standing,
    out: &mut Plan,
) -> BTreeMap<Uuid, Desired> {
    let mut users = BTreeMap::new();
    for u in &snapshot.users {
        let label = u.doc.get("userName").and_then(Value::as_str).unwrap_or("?").to_owned();
        let select = || policy.rules.select_user(&u.doc);
        let key = (ResourceKind::User, u.id);
        if !standing.admit(key, &label, select, recorded, policy, out) {
            continue;
        }
        if !u.active {
            match policy.on_deactivate {
                OnDeactivate::Delete => {
                    standing.keep.remove(&(ResourceKind::User, u.id));
                    continue;
                }
                OnDeactivate::RemoveMemberships => {
                    standing.inactive.insert(u.id);
                }
                OnDeactivate::Ignore => {}
            }
        }
        let mapped = shape_user(&u.doc).and_then(|shaped| {
            let mut attrs = shaped.attributes;
            if let Some(manager) = shaped.manager_scim_id.as_deref() {
                set_manager(&mut attrs, manager, recorded);
            }
            policy.rules.map_user(&u.doc, &mut attrs).map(|()| attrs)
        });
        match mapped {
            Ok(attrs) => {
                // A mapping may set the userName: the AWS name is what is sent.
                let name =
                    attrs.get("userName").and_then(Value::as_str).map_or(label, str::to_owned);
                if policy.is_protected(ResourceKind::User, &name, None) {
                    out.skipped.push(skipped(&name, PROTECTED));
                    continue;
                }
                users.insert(u.id, Desired { name, attrs, source: u.source.clone() });
            }
            Err(e) => out.skipped.push(skipped(&label, &e.0)),
        }
    }
    users
}

/// Groups: shaped, unless protected or unshapeable (both skipped, never deleted).
fn desired_groups(
    snapshot: &Snapshot,
    recorded: &Recorded,
    policy: &Policy,
    standing: &mut Standing,
    out: &mut Plan,
) -> BTreeMap<Uuid, Desired> {
    let mut groups = BTreeMap::new();
    for g in &snapshot.groups {
        let label = g.doc.get("displayName").and_then(Value::as_str).unwrap_or("?").to_owned();
        let select = || policy.rules.select_group(&g.doc);
        let key = (ResourceKind::Group, g.id);
        if !standing.admit(key, &label, select, recorded, policy, out) {
            continue;
        }
        match shape_group(&g.doc) {
            Ok(attrs) => {
                groups.insert(g.id, Desired { name: label, attrs, source: g.source.clone() });
            }
            Err(e) => out.skipped.push(skipped(&label, &e.0)),
        }
    }
    groups
}

/// Deletes first (groups, then users), so that a name the IdP freed — a user deleted and
/// provisioned again — is free when the create comes. Deleting a principal removes its
/// memberships in AWS.
fn plan_deletes(
    snapshot: &Snapshot,
    state: &SyncState,
    policy: &Policy,
    deleting: &HashSet<(ResourceKind, Uuid)>,
    unselected: &HashSet<Uuid>,
    out: &mut Plan,
) {
    for kind in [ResourceKind::Group, ResourceKind::User] {
        for p in state.principals.iter().filter(|p| p.kind == kind) {
            if deleting.contains(&(kind, p.resource_id))
                && !policy.is_protected(kind, &p.name, None)
            {
                let gone = !snapshot_has(snapshot, kind, p.resource_id);
                out.actions.push(Action::Delete {
                    kind,
                    name: p.name.clone(),
                    resource_id: p.resource_id,
                    aws_id: p.aws_id.clone(),
                    reason: if gone {
                        "deleted at the IdP"
                    } else if unselected.contains(&p.resource_id) {
                        "no longer selected by sync.filter"
                    } else {
                        "deactivated (on_deactivate = delete)"
                    },
                });
            }
        }
    }
}

/// Updates before creates, so that a name one principal gives up is free for the next; users
/// first (memberships need both ends).
fn plan_upserts(recorded: &Recorded, policy: &Policy, wanted: &Wanted, out: &mut Plan) {
    let mut creates = Vec::new();
    for (kind, desired) in
        [(ResourceKind::User, &wanted.users), (ResourceKind::Group, &wanted.groups)]
    {
        for (id, d) in desired {
            match recorded.get(&(kind, *id)) {
                None => creates.push(Action::Create {
                    kind,
                    name: d.name.clone(),
                    resource_id: *id,
                    source: d.source.clone(),
                    may_adopt: policy.adopt_existing.contains(&d.source),
                    attrs: d.attrs.clone(),
                }),
                Some(p) => {
                    let changes = diff(&p.pushed, &d.attrs);
                    if !changes.is_empty() {
                        out.actions.push(Action::Update {
                            kind,
                            name: d.name.clone(),
                            resource_id: *id,
                            aws_id: p.aws_id.clone(),
                            attributes: changes.iter().map(|(k, _)| k.clone()).collect(),
                            changes,
                            attrs: d.attrs.clone(),
                        });
                    }
                }
            }
        }
    }
    out.actions.extend(creates);
}

fn skipped(principal: &str, message: &str) -> Skipped {
    Skipped { principal: principal.to_owned(), message: message.to_owned() }
}

/// The enterprise `manager` as the Identity Store knows it: the AWS id of the manager's user.
/// A manager not (yet) in AWS is left out; the run's closing pass or the next run adds it once
/// the manager is created.
fn set_manager(attrs: &mut AwsAttributes, manager_scim_id: &str, recorded: &Recorded) {
    let Ok(id) = Uuid::parse_str(manager_scim_id) else { return };
    let Some(manager) = recorded.get(&(ResourceKind::User, id)) else { return };
    let extensions = attrs.entry("extensions").or_insert_with(|| json!({}));
    if let Some(extensions) = extensions.as_object_mut() {
        let enterprise = extensions.entry(ENTERPRISE_EXTENSION).or_insert_with(|| json!({}));
        if let Some(enterprise) = enterprise.as_object_mut() {
            enterprise.insert("manager".into(), json!({ "value": manager.aws_id }));
        }
    }
}

fn snapshot_has(s: &Snapshot, kind: ResourceKind, id: Uuid) -> bool {
    match kind {
        ResourceKind::User => s.users.iter().any(|u| u.id == id),
        ResourceKind::Group => s.groups.iter().any(|g| g.id == id),
    }
}

/// The plan as the run report lists it.
pub fn describe(actions: &[Action]) -> Vec<Value> {
    actions.iter().map(|a| serde_json::to_value(a).unwrap_or_else(|_| json!({}))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AwsMembership, Ownership, SnapshotGroup, SnapshotUser};
    use scim_schema::resource::MemberType;
    use std::collections::BTreeSet;

    fn policy() -> Policy {
        Policy {
            on_deactivate: OnDeactivate::RemoveMemberships,
            protected_users: HashSet::from([NameKey::of("breakglass@example.com")]),
            protected_groups: HashSet::new(),
            rules: Default::default(),
            adopt_existing: HashSet::new(),
        }
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn user(n: u128, name: &str, active: bool) -> SnapshotUser {
        SnapshotUser {
            id: id(n),
            doc: json!({"userName": name, "displayName": "D N"}),
            active,
            source: "okta".into(),
        }
    }

    fn group(n: u128, name: &str) -> SnapshotGroup {
        SnapshotGroup { id: id(n), doc: json!({"displayName": name}), source: "okta".into() }
    }

    fn recorded(kind: ResourceKind, n: u128, name: &str, pushed: Value) -> AwsPrincipal {
        AwsPrincipal {
            kind,
            resource_id: id(n),
            aws_id: format!("aws-{n}"),
            ownership: Ownership::Created,
            name: name.into(),
            pushed,
        }
    }

    fn kinds(p: &Plan) -> Vec<String> {
        p.actions.iter().map(|a| a.count_key().to_string()).collect()
    }

    #[test]
    fn first_run_creates_and_flattens_nested_groups() {
        let snapshot = Snapshot {
            users: vec![user(1, "a@x", true), user(2, "b@x", true), user(3, "c@x", false)],
            groups: vec![group(10, "Outer"), group(11, "Inner")],
            members: vec![
                (id(10), id(1), MemberType::User),
                (id(10), id(11), MemberType::Group),
                (id(11), id(2), MemberType::User),
                (id(11), id(3), MemberType::User),
                (id(11), id(10), MemberType::Group),
            ],
        };
        let p = plan(&snapshot, &SyncState::default(), &policy());
        assert_eq!(kinds(&p).iter().filter(|k| *k == "create_user").count(), 3);
        assert_eq!(kinds(&p).iter().filter(|k| *k == "create_group").count(), 2);
        let adds: BTreeSet<(Uuid, Uuid)> = p
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::AddMember { group_id, user_id, .. } => Some((*group_id, *user_id)),
                _ => None,
            })
            .collect();
        // Outer holds a and (through Inner) b; Inner holds b and, through the cycle back to
        // Outer, a; the inactive c is in no group; the cycle does not loop.
        let want =
            BTreeSet::from([(id(10), id(1)), (id(10), id(2)), (id(11), id(1)), (id(11), id(2))]);
        assert_eq!(adds, want);
    }

    #[test]
    fn a_second_run_with_nothing_changed_plans_nothing() {
        let snapshot = Snapshot { users: vec![user(1, "a@x", true)], ..Snapshot::default() };
        let first = plan(&snapshot, &SyncState::default(), &policy());
        let Action::Create { attrs, .. } = &first.actions[0] else { panic!("create") };
        let state = SyncState {
            principals: vec![recorded(ResourceKind::User, 1, "a@x", Value::Object(attrs.clone()))],
            memberships: vec![],
        };
        assert!(plan(&snapshot, &state, &policy()).actions.is_empty());
    }

    #[test]
    fn extensions_change_key_by_key() {
        let pushed = json!({"userName": "a", "extensions": {"aws:identitystore:enterprise": {"department": "Sales", "costCenter": "1"}}});
        let mut desired = pushed.as_object().unwrap().clone();
        desired["extensions"] =
            json!({"aws:identitystore:enterprise": {"department": "Ops", "division": "EU"}});
        assert_eq!(
            diff(&pushed, &desired),
            vec![
                ("aws:identitystore:enterprise.department".to_owned(), Some(json!("Ops"))),
                ("aws:identitystore:enterprise.division".to_owned(), Some(json!("EU"))),
                ("aws:identitystore:enterprise.costCenter".to_owned(), None),
            ]
        );
    }

    #[test]
    fn updates_send_only_what_changed() {
        let snapshot = Snapshot { users: vec![user(1, "a@x", true)], ..Snapshot::default() };
        let mut pushed = shape_user(&snapshot.users[0].doc).unwrap().attributes;
        pushed.insert("title".into(), json!("Old title"));
        pushed.insert("displayName".into(), json!("Old"));
        let state = SyncState {
            principals: vec![recorded(ResourceKind::User, 1, "a@x", Value::Object(pushed))],
            memberships: vec![],
        };
        let p = plan(&snapshot, &state, &policy());
        let [Action::Update { changes, .. }] = p.actions.as_slice() else {
            panic!("{:?}", p.actions)
        };
        assert_eq!(
            changes,
            &vec![("displayName".to_owned(), Some(json!("D N"))), ("title".to_owned(), None)]
        );
    }

    #[test]
    fn deletes_come_only_from_the_scim_side() {
        let shaped =
            |n: &str| Value::Object(shape_user(&json!({"userName": n})).unwrap().attributes);
        // 1 deleted at the IdP, 2 can no longer be shaped (space), 3 protected now.
        let snapshot = Snapshot {
            users: vec![user(2, "b x", true), user(3, "breakglass@example.com", true)],
            ..Snapshot::default()
        };
        let state = SyncState {
            principals: vec![
                recorded(ResourceKind::User, 1, "a@x", shaped("a@x")),
                recorded(ResourceKind::User, 2, "b@x", shaped("b@x")),
                recorded(
                    ResourceKind::User,
                    3,
                    "breakglass@example.com",
                    shaped("breakglass@example.com"),
                ),
            ],
            memberships: vec![],
        };
        let p = plan(&snapshot, &state, &policy());
        assert_eq!(kinds(&p), vec!["delete_user"], "{:?}", p.actions);
        assert!(
            matches!(&p.actions[0], Action::Delete { resource_id, .. } if *resource_id == id(1))
        );
        assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
    }

    #[test]
    fn deactivation_follows_the_policy() {
        let snapshot = Snapshot {
            users: vec![user(1, "a@x", false)],
            groups: vec![group(10, "G")],
            members: vec![(id(10), id(1), MemberType::User)],
        };
        let a = Value::Object(shape_user(&snapshot.users[0].doc).unwrap().attributes);
        let state = SyncState {
            principals: vec![
                recorded(ResourceKind::User, 1, "a@x", a),
                recorded(ResourceKind::Group, 10, "G", json!({"displayName": "G"})),
            ],
            memberships: vec![AwsMembership {
                group_id: id(10),
                user_id: id(1),
                membership_id: "m".into(),
            }],
        };
        let mut pol = policy();
        assert_eq!(kinds(&plan(&snapshot, &state, &pol)), vec!["remove_membership"]);
        pol.on_deactivate = OnDeactivate::Ignore;
        assert!(plan(&snapshot, &state, &pol).actions.is_empty());
        pol.on_deactivate = OnDeactivate::Delete;
        assert_eq!(kinds(&plan(&snapshot, &state, &pol)), vec!["delete_user"]);
    }

    #[test]
    fn a_protected_aws_name_is_never_renamed_or_deleted_from_the_idp() {
        let shaped =
            |n: &str| Value::Object(shape_user(&json!({"userName": n})).unwrap().attributes);
        // Recorded as breakglass@…, renamed at the IdP: no update.
        let snapshot = Snapshot { users: vec![user(1, "renamed@x", true)], ..Snapshot::default() };
        let state = SyncState {
            principals: vec![recorded(
                ResourceKind::User,
                1,
                "breakglass@example.com",
                shaped("breakglass@example.com"),
            )],
            memberships: vec![],
        };
        assert!(plan(&snapshot, &state, &policy()).actions.is_empty());
        // Deleted at the IdP: no delete either.
        assert!(plan(&Snapshot::default(), &state, &policy()).actions.is_empty());
        // And a trailing space does not get around the list.
        let padded = Snapshot {
            users: vec![user(2, "breakglass@example.com ", true)],
            ..Snapshot::default()
        };
        assert!(plan(&padded, &SyncState::default(), &policy()).actions.is_empty());
    }

    #[test]
    fn a_name_given_up_is_free_before_it_is_taken() {
        let shaped =
            |n: &str| Value::Object(shape_user(&json!({"userName": n})).unwrap().attributes);
        // jdoe and taken deleted at the IdP and provisioned again under new SCIM ids.
        let snapshot = Snapshot {
            users: vec![user(1, "new@x", true), user(3, "jdoe@x", true), user(4, "taken@x", true)],
            ..Snapshot::default()
        };
        let state = SyncState {
            principals: vec![
                recorded(ResourceKind::User, 2, "jdoe@x", shaped("jdoe@x")),
                recorded(ResourceKind::User, 5, "taken@x", shaped("taken@x")),
            ],
            memberships: vec![],
        };
        let keys = kinds(&plan(&snapshot, &state, &policy()));
        let first_create = keys.iter().position(|k| k == "create_user").unwrap();
        assert!(
            keys[..first_create].iter().filter(|k| *k == "delete_user").count() == 2,
            "{keys:?}"
        );
    }

    #[test]
    fn filters_choose_what_is_synced_and_never_delete_on_an_expression_error() {
        let mut p = policy();
        p.rules = std::sync::Arc::new(
            Rules::compile(
                &[("groups".to_owned(), r#"group.displayName.startsWith("AWS - ")"#.to_owned())]
                    .into(),
                &Default::default(),
            )
            .unwrap(),
        );
        let snapshot = Snapshot {
            users: vec![user(1, "a@x", true)],
            groups: vec![group(10, "AWS - Admins"), group(11, "Staff"), group(12, "Renamed")],
            members: vec![],
        };
        // "Renamed" was synced as "AWS - Old" and no longer matches: deleted, with the reason.
        let state = SyncState {
            principals: vec![recorded(
                ResourceKind::Group,
                12,
                "AWS - Old",
                json!({"displayName": "AWS - Old"}),
            )],
            memberships: vec![],
        };
        let plan = plan(&snapshot, &state, &p);
        let creates: Vec<&str> = plan
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Create { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(creates, ["a@x", "AWS - Admins"]);
        assert!(plan.actions.iter().any(|a| matches!(a,
            Action::Delete { resource_id, reason, .. }
                if *resource_id == id(12) && *reason == "no longer selected by sync.filter")));

        // A filter that fails for a managed group leaves it alone (no update, no delete) and is
        // a failure of the run, not a deliberate skip.
        p.rules = std::sync::Arc::new(
            Rules::compile(
                &[("groups".to_owned(), "group.owner == 1".to_owned())].into(),
                &Default::default(),
            )
            .unwrap(),
        );
        let plan = super::plan(&snapshot, &state, &p);
        assert!(!plan.actions.iter().any(Action::is_delete), "{:?}", plan.actions);
        assert!(plan.filter_failures.iter().any(|s| s.principal == "Renamed"));
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
    }

    #[test]
    fn groups_are_kept_skipped_or_wanted_on_their_own() {
        let snapshot = Snapshot {
            groups: vec![group(10, "G"), group(11, "Admins"), group(12, "  ")],
            ..Snapshot::default()
        };
        let mut pol = policy();
        pol.protected_groups = HashSet::from([NameKey::of("admins")]);
        let (mut standing, mut out) = (Standing::default(), Plan::default());
        let groups = desired_groups(&snapshot, &HashMap::new(), &pol, &mut standing, &mut out);
        // G is wanted; Admins is protected and the blank name unshapeable: both skipped, and
        // all three are kept (never deleted for it).
        assert_eq!(groups.keys().copied().collect::<Vec<_>>(), [id(10)]);
        assert_eq!(out.skipped.len(), 2, "{:?}", out.skipped);
        assert_eq!(out.skipped[0].message, PROTECTED);
        assert_eq!(standing.keep.len(), 3);
        assert!(standing.unselected.is_empty() && standing.inactive.is_empty());
    }

    #[test]
    fn a_delete_says_why() {
        let state = SyncState {
            principals: vec![
                recorded(ResourceKind::User, 1, "gone@x", json!({})),
                recorded(ResourceKind::User, 2, "unselected@x", json!({})),
                recorded(ResourceKind::User, 3, "off@x", json!({})),
                recorded(ResourceKind::Group, 10, "G", json!({})),
            ],
            memberships: vec![],
        };
        let snapshot = Snapshot {
            users: vec![user(2, "unselected@x", true), user(3, "off@x", false)],
            ..Snapshot::default()
        };
        let deleting: HashSet<(ResourceKind, Uuid)> = state
            .principals
            .iter()
            .filter(|p| p.resource_id != id(10))
            .map(|p| (p.kind, p.resource_id))
            .collect();
        let mut out = Plan::default();
        let unselected = HashSet::from([id(2)]);
        plan_deletes(&snapshot, &state, &policy(), &deleting, &unselected, &mut out);
        let reasons: Vec<(&str, &str)> = out
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::Delete { name, reason, .. } => Some((name.as_str(), *reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            reasons,
            [
                ("gone@x", "deleted at the IdP"),
                ("unselected@x", "no longer selected by sync.filter"),
                ("off@x", "deactivated (on_deactivate = delete)"),
            ]
        );
    }
}
