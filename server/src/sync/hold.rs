//! `[sync] approve_destructive`: a run applies everything in its plan except the destructive
//! actions — principal deletes, membership removals, assignment deletes — which it holds until
//! an admin approves them (`scimbridge sync approve RUN_ID`). Pure: the engine splits each plan
//! here, and a dry run shows the same split as the real run.
//!
//! An approval is for the actions that were held, by key, never a blank cheque: a later run
//! applies an approved action only while it is still planned, and holds any destructive action
//! that was not approved.

use super::access::plan::{AccessPlan, Unassign};
use super::counts::{self, ActionKind, Counts};
use super::plan::{Action, Plan};
use crate::store::AssignmentKey;
use serde_json::{Value, json};
use std::collections::HashSet;

/// At most this many held actions are listed in a run report and stored with a hold; the
/// counts (`held_…`) and the keys an approval lets go are always complete.
pub const SHOWN: usize = 1000;

/// One held destructive action.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// What an approval names: the action and exactly what it acts on (see [`key`]).
    pub key: String,
    /// The run report's count key of the action (`delete_user`, `remove_membership`, …).
    pub count_key: ActionKind,
    /// The action as the run report's plan lists it, with its `key`.
    pub described: Value,
}

/// The key of a destructive principal or membership action (None for the others). It names the
/// AWS id, so an approval to delete a principal does not reach another one recorded later for
/// the same SCIM resource.
pub fn key(action: &Action) -> Option<String> {
    match action {
        Action::Delete { kind, resource_id, aws_id, .. } => {
            Some(format!("delete:{}:{resource_id}:{aws_id}", kind.name()))
        }
        Action::RemoveMember { group_id, user_id, membership_id, .. } => {
            Some(format!("remove_membership:{group_id}:{user_id}:{membership_id}"))
        }
        Action::Create { .. }
        | Action::Adopt { .. }
        | Action::Update { .. }
        | Action::AddMember { .. } => None,
    }
}

/// The key of an assignment delete.
pub fn unassign_key(key: &AssignmentKey) -> String {
    format!(
        "delete_assignment:{}:{}:{}:{}:{}",
        key.kind.as_str(),
        key.target,
        key.permission_set_arn,
        key.principal_type.as_str(),
        key.principal_id
    )
}

fn held(key: String, count_key: ActionKind, mut described: Value) -> Held {
    if let Some(o) = described.as_object_mut() {
        o.insert("key".into(), json!(key));
    }
    Held { key, count_key, described }
}

/// Takes the destructive actions not in `approved` out of `plan` and returns them, in plan
/// order; what stays in the plan is what the run may apply.
pub fn split(plan: &mut Plan, approved: &HashSet<String>) -> Vec<Held> {
    let mut out = Vec::new();
    plan.actions.retain(|a| match key(a) {
        Some(k) if !approved.contains(&k) => {
            let described = super::plan::describe(std::slice::from_ref(a)).remove(0);
            out.push(held(k, a.count_key(), described));
            false
        }
        _ => true,
    });
    out
}

/// Takes the assignment deletes not in `approved` out of `plan` and returns them. The
/// assignments of a principal the run deletes (`deleted`: AWS ids) go with it: the principal's
/// delete was let go, and AWS must not keep an assignment to a principal that is gone.
pub fn split_unassign(
    plan: &mut AccessPlan,
    approved: &HashSet<String>,
    deleted: &HashSet<&str>,
) -> Vec<Held> {
    let mut out = Vec::new();
    plan.unassign.retain(|u: &Unassign| {
        let k = unassign_key(&u.key);
        if approved.contains(&k) || deleted.contains(u.key.principal_id.as_str()) {
            return true;
        }
        let action = ActionKind::delete_assignment(u.key.kind);
        let mut described = serde_json::to_value(u).unwrap_or_else(|_| json!({}));
        described["action"] = json!(action.as_str());
        out.push(held(k, action, described));
        false
    });
    out
}

/// `held_<action>` counts for the run report.
pub fn counts(held: &[Held]) -> Counts {
    let mut out = Counts::new();
    for kind in held.iter().filter_map(|h| h.count_key.held()) {
        counts::add(&mut out, kind, 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AssignmentKind, PrincipalType};
    use scim_schema::schema::ResourceKind;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn plan() -> Plan {
        let actions = vec![
            Action::Delete {
                kind: ResourceKind::User,
                name: "gone@x".into(),
                resource_id: id(1),
                aws_id: "aws-1".into(),
                reason: "deleted at the IdP",
            },
            Action::Create {
                kind: ResourceKind::User,
                name: "new@x".into(),
                resource_id: id(2),
                source: "okta".into(),
                may_adopt: false,
                attrs: Default::default(),
            },
            Action::AddMember {
                group: "G".into(),
                user: "new@x".into(),
                group_id: id(10),
                user_id: id(2),
            },
            Action::RemoveMember {
                group: "G".into(),
                user: "left@x".into(),
                group_id: id(10),
                user_id: id(3),
                membership_id: "m-3".into(),
            },
        ];
        Plan { actions, ..Plan::default() }
    }

    #[test]
    fn deletes_and_removals_are_held_and_the_rest_stays() {
        let mut p = plan();
        let held = split(&mut p, &HashSet::new());
        assert_eq!(
            p.actions.iter().map(|a| a.count_key().as_str()).collect::<Vec<_>>(),
            ["create_user", "add_membership"]
        );
        assert_eq!(
            held.iter().map(|h| h.count_key.as_str()).collect::<Vec<_>>(),
            ["delete_user", "remove_membership"]
        );
        assert_eq!(held[0].described["action"], "delete");
        assert_eq!(held[0].described["name"], "gone@x");
        assert_eq!(held[0].described["key"], json!(held[0].key));
        assert_eq!(
            counts(&held).iter().map(|(k, n)| (k.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            BTreeMap::from([("held_delete_user".into(), 1), ("held_remove_membership".into(), 1)])
        );
    }

    #[test]
    fn only_the_approved_actions_go() {
        let mut p = plan();
        let all = split(&mut p.clone(), &HashSet::new());
        // The delete was approved, the removal was not.
        let approved = HashSet::from([all[0].key.clone()]);
        let held = split(&mut p, &approved);
        assert_eq!(
            p.actions.iter().map(|a| a.count_key().as_str()).collect::<Vec<_>>(),
            ["delete_user", "create_user", "add_membership"]
        );
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].count_key.as_str(), "remove_membership");
    }

    #[test]
    fn an_approval_names_the_aws_principal_too() {
        let mut p = plan();
        let approved: HashSet<String> =
            split(&mut p.clone(), &HashSet::new()).into_iter().map(|h| h.key).collect();
        // The same SCIM resource, recorded under another AWS id since the approval.
        if let Action::Delete { aws_id, .. } = &mut p.actions[0] {
            *aws_id = "aws-other".into();
        }
        let held = split(&mut p, &approved);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].count_key.as_str(), "delete_user");
    }

    fn unassign(principal_id: &str) -> Unassign {
        Unassign {
            key: AssignmentKey {
                kind: AssignmentKind::Account,
                target: "111111111111".into(),
                permission_set_arn: "arn:ps".into(),
                principal_type: PrincipalType::Group,
                principal_id: principal_id.into(),
            },
            permission_set: Some("Admin".into()),
            principal: "G".into(),
        }
    }

    #[test]
    fn assignment_deletes_are_held_unless_approved_or_their_principal_goes() {
        let mut p = AccessPlan {
            unassign: vec![unassign("g-1"), unassign("g-2"), unassign("g-3")],
            ..AccessPlan::default()
        };
        let approved = HashSet::from([unassign_key(&unassign("g-2").key)]);
        let held = split_unassign(&mut p, &approved, &HashSet::from(["g-3"]));
        assert_eq!(
            p.unassign.iter().map(|u| u.key.principal_id.as_str()).collect::<Vec<_>>(),
            ["g-2", "g-3"]
        );
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].count_key.as_str(), "delete_account_assignment");
        assert_eq!(held[0].described["action"], "delete_account_assignment");
        assert_eq!(held[0].described["principal_id"], "g-1");
    }
}
