//! Where a run meets the access module: the principals as the assignments are planned against
//! them, and the assignment plan itself.

use super::config::SyncConfig;
use crate::store::{Snapshot, SyncState};
use crate::sync::access::apply::AccessRun;
use crate::sync::access::plan::{self as access_plan, AccessPlan, PrincipalAfter};
use crate::sync::plan::{Action, Plan};
use std::collections::HashSet;

/// The AWS ids of the principals `plan` deletes.
pub(super) fn deleted(plan: &Plan) -> HashSet<&str> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { aws_id, .. } => Some(aws_id.as_str()),
            _ => None,
        })
        .collect()
}

/// The principals as AWS will have them once `plan`'s changes are in (None: as recorded).
pub(super) fn principals_after(state: &SyncState, plan: Option<&Plan>) -> Vec<PrincipalAfter> {
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

/// The assignments `[assignments]` wants for `principals`, against what the access run has.
pub(super) fn plan_access(
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
            organization: access.organization.as_deref(),
            management_account: access.management_account.as_deref(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AwsPrincipal, Ownership};
    use scim_schema::schema::ResourceKind;
    use uuid::Uuid;

    fn recorded(n: u128) -> AwsPrincipal {
        AwsPrincipal {
            kind: ResourceKind::User,
            resource_id: Uuid::from_u128(n),
            aws_id: format!("aws-{n}"),
            ownership: Ownership::Created,
            name: format!("u{n}"),
            pushed: serde_json::json!({}),
        }
    }

    #[test]
    fn principals_after_a_plan_lose_the_deleted_and_gain_the_created() {
        let state =
            SyncState { principals: vec![recorded(1), recorded(2)], ..SyncState::default() };
        let plan = Plan {
            actions: vec![
                Action::Delete {
                    kind: ResourceKind::User,
                    name: "u1".into(),
                    resource_id: Uuid::from_u128(1),
                    aws_id: "aws-1".into(),
                    reason: "deleted at the IdP",
                },
                Action::Create {
                    kind: ResourceKind::User,
                    name: "u3".into(),
                    resource_id: Uuid::from_u128(3),
                    source: "okta".into(),
                    may_adopt: false,
                    attrs: Default::default(),
                },
            ],
            ..Plan::default()
        };
        let after = principals_after(&state, Some(&plan));
        let ids: Vec<(u128, Option<&str>)> =
            after.iter().map(|p| (p.resource_id.as_u128(), p.aws_id.as_deref())).collect();
        assert_eq!(ids, [(2, Some("aws-2")), (3, None)]);
        assert_eq!(deleted(&plan), HashSet::from(["aws-1"]));
        assert_eq!(principals_after(&state, None).len(), 2);
    }
}
