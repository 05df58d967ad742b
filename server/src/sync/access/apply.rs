//! Making AWS's access match the plan, in order: managed permission sets (created or adopted
//! by name, updated in place, re-provisioned when changed), then account assignments —
//! asynchronous in AWS, at most [`MAX_IN_FLIGHT`] outstanding, each polled to completion —
//! then application assignments (synchronous) and assignment configurations.
//!
//! Every change is recorded as AWS confirms it, and an assignment operation is recorded as
//! `creating` / `deleting` before it is sent, so a run killed half-way leaves a record the next
//! run settles ([`AccessRun::settle_in_flight`]) instead of creating twice or forgetting.

pub use super::run::{AccessRun, MAX_IN_FLIGHT};

use super::plan::{AccessPlan, Unassign};
use super::record::Op;
use super::rules::{AssignmentSettings, PermissionSetSettings};
use crate::store::AssignmentKind;
use serde_json::{Value, json};
use std::collections::BTreeMap;

impl AccessRun<'_> {
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
        self.configure_applications(&plan.assignment_required).await?;
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
