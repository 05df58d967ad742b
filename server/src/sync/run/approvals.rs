//! `[sync] approve_destructive` at the end of a run: what it held goes into its report, and the
//! holds in the store are settled (approvals honoured, superseded, or a new one pending).

use super::report::RunReport;
use super::state::Run;
use crate::store::{Hold, HoldState};
use crate::sync::counts;
use crate::sync::error::SyncError;
use crate::sync::hold::{self, Held};
use std::collections::BTreeSet;

impl Run<'_> {
    /// The held actions into the report: `held_…` counts and the list (bounded).
    pub fn report_held(&self, report: &mut RunReport) {
        let all: Vec<&Held> = self.held.iter().chain(&self.held_access).collect();
        for kind in all.iter().filter_map(|h| h.count_key.held()) {
            counts::add(&mut report.counts, kind, 1);
        }
        report.held = all.iter().take(hold::SHOWN).map(|h| h.described.clone()).collect();
    }

    /// After a real run that was not refused: the approvals it honoured are applied; a pending
    /// approval for another set of actions than this run held is superseded; this run's held
    /// set waits for approval (under an earlier run's id when that run held exactly the same).
    pub async fn settle_holds(&self, report: &mut RunReport) -> Result<(), SyncError> {
        let now = crate::store::now();
        // An approved action that failed in AWS is still approved: the next run retries it
        // (while it is planned), instead of holding it for a second approval.
        let approved_runs =
            if report.status == "succeeded" { &self.approved_runs[..] } else { &[] };
        for run_id in approved_runs {
            if self
                .store
                .close_hold(*run_id, HoldState::Approved, HoldState::Applied, report.run_id, now)
                .await?
            {
                report.applied_approvals.push(*run_id);
            }
        }
        let held: Vec<&Held> = self.held.iter().chain(&self.held_access).collect();
        let keys: BTreeSet<&str> = held.iter().map(|h| h.key.as_str()).collect();
        let mut waiting = None;
        for h in self.store.open_holds().await? {
            if h.state != HoldState::Pending {
                continue;
            }
            let same = h.action_keys.iter().map(String::as_str).collect::<BTreeSet<_>>() == keys;
            if same && waiting.is_none() && !keys.is_empty() {
                waiting = Some(h);
            } else {
                self.store
                    .close_hold(
                        h.run_id,
                        HoldState::Pending,
                        HoldState::Superseded,
                        report.run_id,
                        now,
                    )
                    .await?;
            }
        }
        if waiting.is_none() && !keys.is_empty() {
            let h = Hold {
                run_id: report.run_id,
                held_at: now,
                state: HoldState::Pending,
                action_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                actions: report.held.clone(),
                approved_at: None,
                approved_by: None,
                closed_at: None,
                closed_by_run: None,
            };
            self.store.put_hold(&h).await?;
            waiting = Some(h);
        }
        if let Some(h) = &waiting {
            tracing::warn!(
                run_id = %report.run_id, approval = %h.run_id, held = keys.len(),
                "sync: destructive actions held for approval (scimbridge sync approve {})",
                h.run_id
            );
        }
        report.approval = waiting.as_ref().map(crate::sync::control::hold_json);
        Ok(())
    }
}
