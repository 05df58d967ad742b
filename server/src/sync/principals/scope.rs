//! What a change run plans: the SCIM resources changed since the last run that covered the
//! directory ([`ChangeSet`]), the scope they reach once grown through nested groups
//! ([`PlanScope`]), and what a scoped plan turned out to need beyond it ([`Widen`]).
//!
//! A user's change is planned with every group that reaches it, pair by pair: one user changed
//! in a group of 50,000 plans that user's memberships, never the other 49,999. A group whose
//! own resource or nesting changed is planned whole, with every user it reaches, and so are
//! the groups that contain a group whose nesting changed.

use super::plan::{Action, Plan};
use crate::store::{JournalAction, JournalEntry, ScopeSeeds, Snapshot};
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// A change run with more changed resources than this plans everything instead: a scoped read
/// of that many costs about what a full one does.
pub const MAX_CHANGED_RESOURCES: usize = 10_000;

/// The SCIM resources a change run plans, by SCIM id. An id may name a resource deleted since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Users whose resource changed, or who joined or left a group: planned with every group
    /// that reaches them.
    pub users: BTreeSet<Uuid>,
    /// Groups whose resource or nesting changed: planned whole (every user they reach), and so
    /// are the groups that contain them.
    pub groups: BTreeSet<Uuid>,
    /// Groups whose change may be users joining or leaving only (those users are in `users`)
    /// and their own attributes: planned for themselves. A group so planned that turns out to
    /// need its whole membership (created, renamed, deleted) is widened ([`Widen`]).
    pub touched: BTreeSet<Uuid>,
}

impl ChangeSet {
    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len() + self.touched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The change set the journal rows `rows` name. `kinds` says what each member id named in
    /// a group's change is (a user or a group), where the rows themselves do not; a member of
    /// unknown kind is taken for a group (its group is planned whole).
    pub fn from_journal(rows: &[JournalEntry], kinds: &HashMap<Uuid, ResourceKind>) -> ChangeSet {
        let mut own: HashMap<Uuid, ResourceKind> = HashMap::new();
        for row in rows {
            if let Ok(id) = row.resource_id.parse() {
                own.insert(id, row.resource_type);
            }
        }
        let kind_of = |id: &Uuid| own.get(id).or_else(|| kinds.get(id)).copied();
        let mut out = ChangeSet::default();
        for row in rows {
            let Ok(id) = row.resource_id.parse::<Uuid>() else { continue };
            match row.resource_type {
                ResourceKind::User => {
                    out.users.insert(id);
                }
                ResourceKind::Group => match row.action {
                    // A new resource, a taken-over one, one gone: all of its membership.
                    JournalAction::Create | JournalAction::Adopt | JournalAction::Delete => {
                        out.groups.insert(id);
                    }
                    JournalAction::Replace
                    | JournalAction::Patch
                    | JournalAction::MemberDeleted => {
                        let members = members_named(row.detail.as_ref());
                        if members.iter().all(|m| kind_of(m) == Some(ResourceKind::User)) {
                            out.users.extend(members);
                            out.touched.insert(id);
                        } else {
                            out.groups.insert(id);
                        }
                    }
                },
            }
        }
        // Planned whole covers planned for itself.
        out.touched.retain(|g| !out.groups.contains(g));
        out
    }

    /// The member ids the journal rows' details name whose kind the rows do not say.
    pub fn unknown_members(rows: &[JournalEntry]) -> Vec<Uuid> {
        let own: HashSet<Uuid> = rows.iter().filter_map(|r| r.resource_id.parse().ok()).collect();
        let mut out: BTreeSet<Uuid> = BTreeSet::new();
        // Only a membership change's members are read (a group created is planned whole).
        let read = |r: &&JournalEntry| {
            r.resource_type == ResourceKind::Group
                && matches!(
                    r.action,
                    JournalAction::Replace | JournalAction::Patch | JournalAction::MemberDeleted
                )
        };
        for row in rows.iter().filter(read) {
            out.extend(members_named(row.detail.as_ref()).into_iter().filter(|m| !own.contains(m)));
        }
        out.into_iter().collect()
    }
}

/// The members a group's journal row says joined or left.
fn members_named(detail: Option<&Value>) -> Vec<Uuid> {
    let Some(detail) = detail else { return Vec::new() };
    ["members_added", "members_removed"]
        .iter()
        .filter_map(|k| detail.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// What a scoped plan decides, once the store has grown the change set into a scope.
#[derive(Debug, Clone, Default)]
pub struct PlanScope {
    /// Users planned whole: every membership of theirs is decided.
    pub users: HashSet<Uuid>,
    /// Groups planned whole: every membership of theirs is decided.
    pub whole_groups: HashSet<Uuid>,
    /// The principals the plan may delete: those the change set names (and those widened
    /// in). A recorded principal read only for context is never deleted by a scoped plan.
    pub deletable: HashSet<Uuid>,
}

/// A change set's scope: where the store's read starts, and what the plan may act on.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub seeds: ScopeSeeds,
    /// The resources the change set names, and those widened in: what may be deleted.
    pub changed: BTreeSet<Uuid>,
}

impl Scope {
    /// The scope of `changes`, plus `context`: principals read for themselves (what the access
    /// rules name, the principals of recorded assignments).
    pub fn of(changes: &ChangeSet, context: impl IntoIterator<Item = Uuid>) -> Scope {
        let mut seeds = ScopeSeeds {
            users: changes.users.clone(),
            nesting: changes.groups.clone(),
            whole: BTreeSet::new(),
            single: changes.touched.clone(),
            max_edges: None,
        };
        seeds.single.extend(context);
        let changed = changes.users.iter().chain(&changes.groups).chain(&changes.touched);
        Scope { changed: changed.copied().collect(), seeds }
    }

    /// What the plan over the scope's read may act on; `whole_groups` are the groups the read
    /// took whole.
    pub fn plan_scope(&self, whole_groups: &BTreeSet<Uuid>) -> PlanScope {
        PlanScope {
            users: self.seeds.users.iter().copied().collect(),
            whole_groups: whole_groups.iter().copied().collect(),
            deletable: self.changed.iter().copied().collect(),
        }
    }

    /// Takes in what a plan found the scope too narrow for; false when there was nothing.
    pub fn widen(&mut self, widen: &Widen) -> bool {
        if widen.is_empty() {
            return false;
        }
        self.seeds.users.extend(widen.users.iter().copied());
        self.seeds.whole.extend(widen.groups.iter().copied());
        self.changed.extend(widen.users.iter().chain(&widen.groups).copied());
        true
    }
}

/// Principals a scoped plan changes in a way that reaches beyond what was read of them: it
/// creates, deletes or (a group) updates one that was planned for itself only. A created
/// principal needs every membership it has, a deleted one every membership recorded for it;
/// they are read whole and planned again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Widen {
    pub users: BTreeSet<Uuid>,
    pub groups: BTreeSet<Uuid>,
}

impl Widen {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }
}

/// What `plan` (over `snapshot`, within `scope`) needs read whole; `unwanted`: the recorded
/// principals the SCIM side no longer wants (deleted when the scope may).
pub(super) fn widen(
    scope: &PlanScope,
    snapshot: &Snapshot,
    plan: &Plan,
    unwanted: &[(ResourceKind, Uuid)],
) -> Widen {
    let read_whole = |kind: ResourceKind, id: &Uuid| match kind {
        ResourceKind::User => scope.users.contains(id),
        ResourceKind::Group => scope.whole_groups.contains(id),
    };
    let mut out = Widen::default();
    let mut add = |kind: ResourceKind, id: Uuid| {
        match kind {
            ResourceKind::User => out.users.insert(id),
            ResourceKind::Group => out.groups.insert(id),
        };
    };
    for a in &plan.actions {
        match a {
            Action::Create { kind, resource_id, .. }
            | Action::Adopt { kind, resource_id, .. }
            | Action::Delete { kind, resource_id, .. }
                if !read_whole(*kind, resource_id) =>
            {
                add(*kind, *resource_id);
            }
            // A group's rename or new attributes may come with a new [sync.filter] verdict on
            // it: its membership is planned whole.
            Action::Update { kind: ResourceKind::Group, resource_id, .. }
                if !scope.whole_groups.contains(resource_id) =>
            {
                add(ResourceKind::Group, *resource_id);
            }
            _ => {}
        }
    }
    // In the read but not named by the change set: left alone by this plan, planned with the
    // change set once widened in.
    let in_snapshot: HashSet<Uuid> =
        snapshot.users.iter().map(|u| u.id).chain(snapshot.groups.iter().map(|g| g.id)).collect();
    for (kind, id) in unwanted {
        if in_snapshot.contains(id) && !scope.deletable.contains(id) {
            add(*kind, *id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn row(
        kind: ResourceKind,
        n: u128,
        action: JournalAction,
        detail: Option<Value>,
    ) -> JournalEntry {
        JournalEntry {
            seq: 1,
            at: crate::store::now(),
            source_id: 1,
            token_id: None,
            resource_type: kind,
            resource_id: id(n).to_string(),
            action,
            detail,
        }
    }

    #[test]
    fn a_user_joining_a_group_plans_the_pair_and_a_nested_group_the_whole_group() {
        let kinds = HashMap::from([(id(1), ResourceKind::User), (id(20), ResourceKind::Group)]);
        let rows = vec![
            // User 1 joins group 10; group 11 gains the nested group 20; 12 is renamed.
            row(
                ResourceKind::Group,
                10,
                JournalAction::Patch,
                Some(json!({"members_added": [id(1).to_string()]})),
            ),
            row(
                ResourceKind::Group,
                11,
                JournalAction::Patch,
                Some(json!({"members_added": [id(20).to_string()]})),
            ),
            row(ResourceKind::Group, 12, JournalAction::Patch, Some(json!({"renamed_from": "x"}))),
            // 13 lost a member of unknown kind: whole.
            row(
                ResourceKind::Group,
                13,
                JournalAction::Replace,
                Some(json!({"members_removed": [id(99).to_string()]})),
            ),
            // User 2 is deleted and leaves group 14 with it.
            row(ResourceKind::User, 2, JournalAction::Delete, None),
            row(
                ResourceKind::Group,
                14,
                JournalAction::MemberDeleted,
                Some(json!({"members_removed": [id(2).to_string()]})),
            ),
            row(ResourceKind::Group, 15, JournalAction::Create, None),
        ];
        assert_eq!(ChangeSet::unknown_members(&rows), vec![id(1), id(20), id(99)]);
        let set = ChangeSet::from_journal(&rows, &kinds);
        assert_eq!(set.users, BTreeSet::from([id(1), id(2)]));
        assert_eq!(set.groups, BTreeSet::from([id(11), id(13), id(15)]));
        assert_eq!(set.touched, BTreeSet::from([id(10), id(12), id(14)]));
    }

    #[test]
    fn a_scope_widens_what_a_plan_creates_or_deletes_beyond_its_read() {
        let changes = ChangeSet {
            users: BTreeSet::from([id(1)]),
            groups: BTreeSet::new(),
            touched: BTreeSet::from([id(10)]),
        };
        let mut scope = Scope::of(&changes, [id(30)]);
        assert_eq!(scope.seeds.single, BTreeSet::from([id(10), id(30)]));
        assert_eq!(scope.changed, BTreeSet::from([id(1), id(10)]));
        let plan_scope = scope.plan_scope(&BTreeSet::new());
        let plan = Plan {
            actions: vec![
                // The touched group 10 is created: its whole membership is needed.
                Action::Create {
                    kind: ResourceKind::Group,
                    name: "G".into(),
                    resource_id: id(10),
                    source: "okta".into(),
                    may_adopt: false,
                    attrs: Default::default(),
                },
                // User 1 is planned whole already.
                Action::Delete {
                    kind: ResourceKind::User,
                    name: "u".into(),
                    resource_id: id(1),
                    aws_id: "a".into(),
                    reason: "deleted at the IdP",
                },
            ],
            ..Plan::default()
        };
        // User 3, read for a group's membership, is unwanted (say, deactivated under delete).
        let snapshot = Snapshot {
            users: vec![crate::store::SnapshotUser {
                id: id(3),
                doc: json!({}),
                active: false,
                source: "okta".into(),
            }],
            ..Snapshot::default()
        };
        let unwanted = [(ResourceKind::User, id(3)), (ResourceKind::User, id(4))];
        let w = widen(&plan_scope, &snapshot, &plan, &unwanted);
        // 4 is not in the read (a manager's record, say): never widened in, never deleted.
        assert_eq!(w, Widen { users: BTreeSet::from([id(3)]), groups: BTreeSet::from([id(10)]) });
        assert!(scope.widen(&w));
        assert!(scope.seeds.whole.contains(&id(10)) && scope.seeds.users.contains(&id(3)));
        assert!(scope.changed.contains(&id(3)));
        assert!(!scope.widen(&Widen::default()));
    }

    mod scoped_plans {
        use super::super::PlanScope;
        use crate::config::OnDeactivate;
        use crate::mapping::aws_profile::shape_user;
        use crate::store::{
            AwsMembership, AwsPrincipal, Ownership, RecordTotals, Snapshot, SnapshotGroup,
            SnapshotUser, SyncState,
        };
        use crate::sync::plan::{Action, Policy, plan_scoped};
        use scim_schema::resource::MemberType;
        use scim_schema::schema::ResourceKind;
        use serde_json::{Value, json};
        use std::collections::HashSet;
        use uuid::Uuid;

        fn id(n: u128) -> Uuid {
            Uuid::from_u128(n)
        }

        fn policy(on_deactivate: OnDeactivate) -> Policy {
            Policy {
                on_deactivate,
                protected_users: HashSet::new(),
                protected_groups: HashSet::new(),
                rules: Default::default(),
                adopt_existing: HashSet::new(),
            }
        }

        fn user(n: u128, active: bool) -> SnapshotUser {
            SnapshotUser {
                id: id(n),
                doc: json!({"userName": format!("u{n}@x"), "displayName": "D N"}),
                active,
                source: "okta".into(),
            }
        }

        fn recorded(kind: ResourceKind, n: u128, pushed: Value) -> AwsPrincipal {
            let name = match kind {
                ResourceKind::User => format!("u{n}@x"),
                ResourceKind::Group => format!("G{n}"),
            };
            AwsPrincipal {
                kind,
                resource_id: id(n),
                aws_id: format!("aws-{n}"),
                ownership: Ownership::Created,
                name,
                pushed,
            }
        }

        fn shaped(n: u128) -> Value {
            Value::Object(shape_user(&user(n, true).doc).unwrap().attributes)
        }

        fn membership(g: u128, u: u128) -> AwsMembership {
            AwsMembership { group_id: id(g), user_id: id(u), membership_id: format!("m{g}-{u}") }
        }

        fn totals() -> RecordTotals {
            RecordTotals { principals: 1_001, memberships: 1_000, ..RecordTotals::default() }
        }

        /// User 1 of group 10 (1,000 members, of which the read holds only user 1) is
        /// deactivated; the manager 7 is read for context only.
        fn world() -> (Snapshot, SyncState, PlanScope) {
            let snapshot = Snapshot {
                users: vec![user(1, false)],
                groups: vec![SnapshotGroup {
                    id: id(10),
                    doc: json!({"displayName": "G10"}),
                    source: "okta".into(),
                }],
                members: vec![(id(10), id(1), MemberType::User)],
            };
            let state = SyncState {
                principals: vec![
                    recorded(ResourceKind::User, 1, shaped(1)),
                    recorded(ResourceKind::User, 7, shaped(7)),
                    recorded(ResourceKind::Group, 10, json!({"displayName": "G10"})),
                ],
                memberships: vec![membership(10, 1)],
            };
            let scope = PlanScope {
                users: HashSet::from([id(1)]),
                whole_groups: HashSet::new(),
                deletable: HashSet::from([id(1)]),
            };
            (snapshot, state, scope)
        }

        fn kinds(actions: &[Action]) -> Vec<String> {
            actions.iter().map(|a| a.count_key().to_string()).collect()
        }

        #[test]
        fn a_deactivation_in_a_big_group_plans_that_user_alone_under_each_policy() {
            let (snapshot, state, scope) = world();
            let plan_with = |on: OnDeactivate| {
                let (plan, widen) = plan_scoped(&snapshot, &state, &policy(on), &scope, &totals());
                assert!(widen.is_empty(), "{widen:?}");
                plan
            };
            let plan = plan_with(OnDeactivate::RemoveMemberships);
            assert_eq!(kinds(&plan.actions), ["remove_membership"]);
            // Weighed against the whole record, not the scope's three principals.
            assert_eq!((plan.managed, plan.memberships), (1_001, 1_000));
            assert!(plan_with(OnDeactivate::Ignore).actions.is_empty());
            let plan = plan_with(OnDeactivate::Delete);
            assert_eq!(kinds(&plan.actions), ["delete_user"]);
            // The manager read for context, absent from the scoped snapshot, is never deleted.
            assert!(
                !plan.actions.iter().any(
                    |a| matches!(a, Action::Delete { resource_id, .. } if *resource_id == id(7))
                )
            );
        }

        #[test]
        fn a_rename_of_a_group_planned_for_itself_widens_it_whole() {
            let (mut snapshot, mut state, mut scope) = world();
            snapshot.users = vec![user(1, true)];
            state.principals[2] = recorded(ResourceKind::Group, 10, json!({"displayName": "Old"}));
            scope.deletable.insert(id(10));
            let (plan, widen) = plan_scoped(
                &snapshot,
                &state,
                &policy(OnDeactivate::RemoveMemberships),
                &scope,
                &totals(),
            );
            assert_eq!(kinds(&plan.actions), ["update_group"]);
            assert_eq!(widen.groups, std::collections::BTreeSet::from([id(10)]));
            // Once whole, nothing more to widen.
            scope.whole_groups.insert(id(10));
            let (_, widen) = plan_scoped(
                &snapshot,
                &state,
                &policy(OnDeactivate::RemoveMemberships),
                &scope,
                &totals(),
            );
            assert!(widen.is_empty());
        }

        #[test]
        fn memberships_outside_the_pairs_in_scope_are_left_alone() {
            // Group 10 is read for user 1's pair; user 2's recorded membership is not in scope
            // (user 2 is not planned whole), even though the read lacks the edge for it.
            let (mut snapshot, mut state, scope) = world();
            snapshot.users = vec![user(1, true), user(2, true)];
            state.principals.push(recorded(ResourceKind::User, 2, shaped(2)));
            state.memberships.push(membership(10, 2));
            let (plan, _) = plan_scoped(
                &snapshot,
                &state,
                &policy(OnDeactivate::RemoveMemberships),
                &scope,
                &totals(),
            );
            assert!(plan.actions.is_empty(), "{:?}", plan.actions);
            // Planned whole, the group's membership of 2 (no longer an edge) is removed.
            let mut whole = scope.clone();
            whole.whole_groups.insert(id(10));
            let (plan, _) = plan_scoped(
                &snapshot,
                &state,
                &policy(OnDeactivate::RemoveMemberships),
                &whole,
                &totals(),
            );
            assert_eq!(kinds(&plan.actions), ["remove_membership"]);
        }
    }
}
