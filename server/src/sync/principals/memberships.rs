//! The membership part of a plan: which (group, user) pairs AWS should hold — nested SCIM
//! groups flattened, since AWS groups hold only users — against those the bridge recorded.

use super::plan::{Action, Desired, Plan, Reach, Recorded, Wanted};
use crate::store::{Snapshot, SyncState};
use scim_schema::resource::MemberType;
use scim_schema::schema::ResourceKind;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Memberships: every synced, active user reachable from a synced group is added; a recorded
/// one no longer wanted is removed, unless an end is deleted (that removes it) or not synced
/// (a membership of a protected or unshapeable principal stays as it is).
pub(super) fn plan_memberships(
    snapshot: &Snapshot,
    state: &SyncState,
    recorded: &Recorded,
    wanted: &Wanted,
    deleting: &HashSet<(ResourceKind, Uuid)>,
    reach: Reach,
    out: &mut Plan,
) {
    let mut want = desired_memberships(snapshot, &wanted.users, &wanted.groups, &wanted.inactive);
    want.retain(|(g, u)| reach.has_pair(*g, *u));
    let have: BTreeMap<(Uuid, Uuid), &str> = state
        .memberships
        .iter()
        .filter(|m| reach.has_pair(m.group_id, m.user_id))
        .map(|m| ((m.group_id, m.user_id), m.membership_id.as_str()))
        .collect();
    let name_of = |kind: ResourceKind, id: &Uuid| -> String {
        let desired = if kind == ResourceKind::User { &wanted.users } else { &wanted.groups };
        desired
            .get(id)
            .map(|d| d.name.clone())
            .or_else(|| recorded.get(&(kind, *id)).map(|p| p.name.clone()))
            .unwrap_or_else(|| id.to_string())
    };
    for (g, u) in &want {
        if !have.contains_key(&(*g, *u)) {
            out.actions.push(Action::AddMember {
                group: name_of(ResourceKind::Group, g),
                user: name_of(ResourceKind::User, u),
                group_id: *g,
                user_id: *u,
            });
        }
    }
    for ((g, u), membership_id) in &have {
        let ends_deleted = deleting.contains(&(ResourceKind::Group, *g))
            || deleting.contains(&(ResourceKind::User, *u));
        let ends_synced = wanted.groups.contains_key(g) && wanted.users.contains_key(u);
        if !want.contains(&(*g, *u)) && !ends_deleted && ends_synced {
            out.actions.push(Action::RemoveMember {
                group: name_of(ResourceKind::Group, g),
                user: name_of(ResourceKind::User, u),
                group_id: *g,
                user_id: *u,
                membership_id: (*membership_id).to_owned(),
            });
        }
    }
}

/// (group, user) for every synced group and every synced, active user reachable from it through
/// nested groups (cycles are cut; AWS groups hold only users).
fn desired_memberships(
    snapshot: &Snapshot,
    users: &BTreeMap<Uuid, Desired>,
    groups: &BTreeMap<Uuid, Desired>,
    inactive: &HashSet<Uuid>,
) -> BTreeSet<(Uuid, Uuid)> {
    let mut children: HashMap<Uuid, Vec<(Uuid, MemberType)>> = HashMap::new();
    for (g, m, t) in &snapshot.members {
        children.entry(*g).or_default().push((*m, *t));
    }
    let mut out = BTreeSet::new();
    for group in groups.keys() {
        let mut seen: HashSet<Uuid> = HashSet::from([*group]);
        let mut stack = vec![*group];
        while let Some(g) = stack.pop() {
            for (member, t) in children.get(&g).map(Vec::as_slice).unwrap_or_default() {
                match t {
                    MemberType::User => {
                        if users.contains_key(member) && !inactive.contains(member) {
                            out.insert((*group, *member));
                        }
                    }
                    MemberType::Group => {
                        if seen.insert(*member) {
                            stack.push(*member);
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::aws_profile::AwsAttributes;
    use crate::store::AwsMembership;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn kinds(p: &Plan) -> Vec<String> {
        p.actions.iter().map(|a| a.count_key().to_string()).collect()
    }

    #[test]
    fn memberships_of_unsynced_or_deleted_ends_are_not_removed() {
        let desired = |name: &str| Desired {
            name: name.into(),
            attrs: AwsAttributes::new(),
            source: "okta".into(),
        };
        // Synced: group 10, users 1 and 2. User 3 is protected (not wanted), user 4 deleted.
        let wanted = Wanted {
            users: BTreeMap::from([(id(1), desired("a@x")), (id(2), desired("b@x"))]),
            groups: BTreeMap::from([(id(10), desired("G"))]),
            inactive: HashSet::new(),
        };
        let snapshot =
            Snapshot { members: vec![(id(10), id(1), MemberType::User)], ..Snapshot::default() };
        let member = |u: u128| AwsMembership {
            group_id: id(10),
            user_id: id(u),
            membership_id: format!("m-{u}"),
        };
        let state =
            SyncState { principals: vec![], memberships: vec![member(2), member(3), member(4)] };
        let deleting = HashSet::from([(ResourceKind::User, id(4))]);
        let mut out = Plan::default();
        plan_memberships(
            &snapshot,
            &state,
            &HashMap::new(),
            &wanted,
            &deleting,
            Reach::Everything,
            &mut out,
        );
        // a is added; b, no longer a member, is removed; the protected and the deleted stay.
        assert_eq!(kinds(&out), ["add_membership", "remove_membership"]);
        assert!(matches!(&out.actions[1], Action::RemoveMember { user, .. } if user == "b@x"));
    }
}
