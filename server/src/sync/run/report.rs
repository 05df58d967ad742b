//! What a run reports: [`RunReport`] (what `scimbridge sync --json` prints and
//! `GET /admin/v1/sync/runs/{id}` returns) and the CLI's exit code for it.

use super::options::RunOptions;
use super::plan_pages::PlanWriter;
use crate::store::{Removals, RunStatus, StoreError, Trigger};
use crate::sync::counts::Counts;
use crate::sync::plan::{Plan, Skipped};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// What `scimbridge sync --json` prints and `GET /admin/v1/sync/runs/{id}` returns.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: Uuid,
    /// `succeeded`, `partial` (some principals failed), `failed`, `refused` (delete guard).
    pub status: RunStatus,
    pub trigger: Trigger,
    pub dry_run: bool,
    pub full: bool,
    pub counts: Counts,
    pub aws_calls: BTreeMap<String, u64>,
    pub throttles: u64,
    pub errors: Vec<Skipped>,
    /// The described plan of a dry run or a refused run, when it has at most
    /// [`super::plan_pages::INLINE_MAX`] actions (see `plan_pages`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<Value>>,
    /// A larger plan is stored instead of `plan`, in this many pages of at most
    /// [`super::plan_pages::PAGE_SIZE`] actions, numbered from 0 in plan order
    /// (`GET /admin/v1/sync/runs/{id}/plan?page=N`; `sync --json` prints it whole as `plan`).
    /// 0, and not serialized, when the plan is inline or there is none.
    #[serde(skip_serializing_if = "is_zero")]
    pub plan_pages: u32,
    /// `[sync] approve_destructive`: the destructive actions the run held for approval (at
    /// most [`crate::sync::hold::SHOWN`]; `counts` has every `held_…`). A dry run shows what it would hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<Value>,
    /// The approval the held actions wait for: `run_id` (what `sync approve` takes; an earlier
    /// run's when it held the same actions), `status` (`pending`, …), `held_at`, `held`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Value>,
    /// Runs whose approved actions this run applied (those still planned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applied_approvals: Vec<Uuid>,
    /// The fingerprint of the rules the run planned with ([`crate::sync::fingerprint`]); null
    /// for a requested run that never ran.
    pub rules_fingerprint: Option<String>,
    /// The change-journal head the run's last plan covered (a real run that finished).
    #[serde(skip)]
    pub journal_head: Option<i64>,
    /// The pending resources the run read at its start (cleared at its end if it succeeded).
    #[serde(skip)]
    pub pending: super::pending::PendingRead,
    /// The run failed because the setup is wrong (access denied, no identity store, KMS).
    #[serde(skip)]
    pub configuration_error: bool,
    /// The run failed because AWS could not be reached at all (see
    /// [`crate::sync::target::AwsError::Unreachable`]).
    #[serde(skip)]
    pub unreachable: bool,
    /// Run with `--force`.
    #[serde(skip)]
    pub forced: bool,
    /// What the run deleted and removed in AWS (for the guard's window).
    #[serde(skip)]
    pub removals: Removals,
}

impl RunReport {
    /// The CLI's exit code (DESIGN.md): 0 done (skips included), 1 AWS failures, 2 the setup
    /// is wrong (permissions, the identity store or its KMS key), 3 refused.
    pub fn exit_code(&self) -> i32 {
        match self.status {
            RunStatus::Succeeded => 0,
            RunStatus::Refused => 3,
            _ if self.configuration_error => 2,
            _ => 1,
        }
    }

    pub(crate) fn new(opts: &RunOptions) -> RunReport {
        RunReport {
            run_id: opts.run_id.unwrap_or_else(Uuid::now_v7),
            status: RunStatus::Running,
            trigger: opts.trigger,
            dry_run: opts.dry_run,
            full: opts.full,
            counts: Counts::new(),
            aws_calls: BTreeMap::new(),
            throttles: 0,
            errors: Vec::new(),
            plan: None,
            plan_pages: 0,
            held: Vec::new(),
            approval: None,
            applied_approvals: Vec::new(),
            rules_fingerprint: None,
            journal_head: None,
            pending: Default::default(),
            configuration_error: false,
            unreachable: false,
            forced: opts.force && !opts.dry_run,
            removals: Removals::default(),
        }
    }

    /// Adds `counts` to the report's.
    pub(super) fn add_counts(&mut self, counts: &Counts) {
        for (kind, n) in counts {
            crate::sync::counts::add(&mut self.counts, *kind, *n);
        }
    }

    /// The run is refused by the delete guard: the plan is shown (written by `pages`), nothing
    /// was changed.
    pub(super) async fn refuse(
        &mut self,
        mut pages: PlanWriter<'_>,
        plan: &Plan,
        refusal: String,
    ) -> Result<(), StoreError> {
        self.status = RunStatus::Refused;
        pages.push_actions(&plan.actions).await?;
        pages.finish(self).await?;
        self.errors.extend(plan.skipped.iter().cloned());
        self.errors.extend(plan.filter_failures.iter().cloned());
        self.errors.push(Skipped { principal: "(run)".into(), message: refusal.clone() });
        tracing::error!(run_id = %self.run_id, "{refusal}");
        Ok(())
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many of each kind of action `plan` has.
pub(super) fn planned_counts(plan: &Plan) -> Counts {
    let mut counts = Counts::new();
    for a in &plan.actions {
        crate::sync::counts::add(&mut counts, a.count_key(), 1);
    }
    counts
}

/// Whether the counts include principals created in AWS.
pub(super) fn created_any(counts: &Counts) -> bool {
    counts.keys().any(|k| k.is_create())
}

/// Whether the error ended the run because AWS could not be reached at all.
pub(super) fn unreachable(e: &anyhow::Error) -> bool {
    crate::sync::health::failure_kind(e) == crate::store::FailureKind::Unreachable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::counts::ActionKind;
    use crate::sync::plan::Action;

    #[test]
    fn exit_codes_follow_the_status() {
        let mut report = RunReport::new(&RunOptions::default());
        report.status = RunStatus::Succeeded;
        assert_eq!(report.exit_code(), 0);
        report.status = RunStatus::Refused;
        assert_eq!(report.exit_code(), 3);
        report.status = RunStatus::Partial;
        assert_eq!(report.exit_code(), 1);
        report.configuration_error = true;
        assert_eq!(report.exit_code(), 2);
    }

    #[test]
    fn planned_counts_count_each_kind() {
        let delete = |n: u128| Action::Delete {
            kind: scim_schema::schema::ResourceKind::User,
            name: format!("u{n}"),
            resource_id: Uuid::from_u128(n),
            aws_id: format!("aws-{n}"),
            reason: "deleted at the IdP",
        };
        let plan = Plan { actions: vec![delete(1), delete(2)], ..Plan::default() };
        assert_eq!(planned_counts(&plan), Counts::from([(ActionKind::DeleteUser, 2)]));
        assert!(!created_any(&planned_counts(&plan)));
    }

    /// A refused run's plan is what a real run would have done: as large as a dry run's, so
    /// paged the same way.
    #[tokio::test]
    async fn a_refused_runs_large_plan_is_paged() {
        use super::super::plan_pages::{INLINE_MAX, PlanWriter};
        for t in crate::store::tests::stores().await {
            let s = &*t.store;
            let mut report = RunReport::new(&RunOptions::default());
            let record = crate::store::RunRecord {
                id: report.run_id,
                trigger: report.trigger,
                dry_run: false,
                status: RunStatus::Running,
                started_at: crate::store::now(),
                finished_at: None,
                journal_head: None,
                report: serde_json::json!({}),
                forced: false,
                removals: Removals::default(),
                rules_fingerprint: None,
            };
            s.save_run(&record).await.unwrap();
            let delete = |n: usize| Action::Delete {
                kind: scim_schema::schema::ResourceKind::User,
                name: format!("u{n}"),
                resource_id: Uuid::from_u128(n as u128),
                aws_id: format!("aws-{n}"),
                reason: "deleted at the IdP",
            };
            let plan = Plan { actions: (0..=INLINE_MAX).map(delete).collect(), ..Plan::default() };
            let pages = PlanWriter::new(s, report.run_id);
            report.refuse(pages, &plan, "too many deletes".into()).await.unwrap();
            assert_eq!(report.status, RunStatus::Refused);
            assert_eq!((report.plan.is_none(), report.plan_pages), (true, 6), "{}", s.backend());
            assert_eq!(s.plan_page(report.run_id, 5).await.unwrap().unwrap()[0]["name"], "u5000");
            assert_eq!(report.errors.last().map(|e| e.message.as_str()), Some("too many deletes"));
            t.drop_database().await;
        }
    }
}
