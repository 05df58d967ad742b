//! A run's described plan, in memory only while it is small: [`PlanWriter`] takes the plan's
//! described actions as the run produces them, and keeps up to [`INLINE_MAX`] of them; a plan
//! that grows past that is written to the store in pages of [`PAGE_SIZE`] (the buffered ones
//! first), so that memory stays bounded whatever the plan's size. A small plan is the report's
//! `plan`, as it always was; a large one is the report's `plan_pages`, which
//! `scimbridge sync --json` streams out page by page and
//! `GET /admin/v1/sync/runs/{id}/plan?page=N` serves.

use super::report::RunReport;
use crate::store::{PlanPages, StoreError};
use crate::sync::plan::{self, Action};
use serde_json::Value;
use uuid::Uuid;

/// Up to this many described actions, the plan stays inline in the run's report (what small
/// dry runs always did); past it, the whole plan is paged.
pub const INLINE_MAX: usize = 5_000;

/// Described actions per stored page: a few hundred kilobytes, one row, one response.
pub const PAGE_SIZE: usize = 1_000;

/// Where a run's described plan goes: inline while it fits, then page by page into the store.
/// Push the actions in plan order (in any number of calls, of any size), then
/// [`PlanWriter::finish`] into the report. It holds at most [`INLINE_MAX`] + 1 actions.
pub struct PlanWriter<'a> {
    store: &'a dyn PlanPages,
    run_id: Uuid,
    /// The whole plan while it fits inline; once paged, the page being filled.
    held: Vec<Value>,
    /// Pages written so far; None while the plan is inline.
    written: Option<u32>,
}

impl<'a> PlanWriter<'a> {
    /// A writer of run `run_id`'s plan (the run must be recorded: its pages refer to it).
    pub fn new(store: &'a dyn PlanPages, run_id: Uuid) -> PlanWriter<'a> {
        PlanWriter { store, run_id, held: Vec::new(), written: None }
    }

    /// Adds described actions to the end of the plan, writing each page as it fills.
    pub async fn push(
        &mut self,
        actions: impl IntoIterator<Item = Value>,
    ) -> Result<(), StoreError> {
        for action in actions {
            self.held.push(action);
            match self.written {
                None if self.held.len() > INLINE_MAX => self.spill().await?,
                Some(_) if self.held.len() == PAGE_SIZE => self.flush().await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Adds the plan's principal actions, described a page at a time (the described form is
    /// far larger than the action, so it is never made for the whole plan at once).
    pub async fn push_actions(&mut self, actions: &[Action]) -> Result<(), StoreError> {
        for chunk in actions.chunks(PAGE_SIZE) {
            self.push(plan::describe(chunk)).await?;
        }
        Ok(())
    }

    /// The plan in the report: inline (`plan`, even empty) when it fit, else every page
    /// written and `plan_pages` set (and no `plan`).
    pub async fn finish(mut self, report: &mut RunReport) -> Result<(), StoreError> {
        match self.written {
            None => {
                report.plan = Some(std::mem::take(&mut self.held));
                report.plan_pages = 0;
            }
            Some(_) => {
                if !self.held.is_empty() {
                    self.flush().await?;
                }
                report.plan = None;
                report.plan_pages = self.written.unwrap_or(0);
            }
        }
        Ok(())
    }

    /// The plan no longer fits inline: writes its full pages, keeping the rest as the page
    /// being filled.
    async fn spill(&mut self) -> Result<(), StoreError> {
        let mut held = std::mem::take(&mut self.held);
        let full = held.len() / PAGE_SIZE * PAGE_SIZE;
        self.written = Some(0);
        for page in held[..full].chunks(PAGE_SIZE) {
            self.write(page).await?;
        }
        held.drain(..full);
        self.held = held;
        Ok(())
    }

    /// Writes the page being filled.
    async fn flush(&mut self) -> Result<(), StoreError> {
        let page = std::mem::take(&mut self.held);
        self.write(&page).await?;
        // The next page reuses the allocation.
        self.held = page;
        self.held.clear();
        Ok(())
    }

    async fn write(&mut self, actions: &[Value]) -> Result<(), StoreError> {
        let n = self.written.unwrap_or(0);
        self.store.put_plan_page(self.run_id, n, actions).await?;
        self.written = Some(n + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::stores;
    use crate::store::{RunRecord, RunStatus, Store, Trigger};
    use crate::sync::run::RunOptions;
    use serde_json::json;

    /// A recorded run (pages refer to it) and its empty report.
    async fn recorded_run(store: &dyn Store) -> RunReport {
        let report = RunReport::new(&RunOptions { dry_run: true, ..RunOptions::default() });
        let record = RunRecord {
            id: report.run_id,
            trigger: Trigger::Cli,
            dry_run: true,
            status: RunStatus::Running,
            started_at: crate::store::now(),
            finished_at: None,
            journal_head: None,
            report: json!({}),
            forced: false,
            removals: Default::default(),
            rules_fingerprint: None,
        };
        store.save_run(&record).await.unwrap();
        report
    }

    fn actions(range: std::ops::Range<usize>) -> Vec<Value> {
        range
            .map(|i| json!({"action": "create", "kind": "User", "name": format!("u{i:06}")}))
            .collect()
    }

    /// Pushes `total` actions in uneven calls, checking that the writer never holds more than
    /// the inline limit (plus the one that tips it over).
    async fn write_plan(store: &dyn Store, report: &mut RunReport, total: usize, call: usize) {
        let mut writer = PlanWriter::new(store, report.run_id);
        let mut next = 0;
        while next < total {
            let end = (next + call).min(total);
            writer.push(actions(next..end)).await.unwrap();
            assert!(writer.held.len() <= INLINE_MAX, "{} held", writer.held.len());
            next = end;
        }
        writer.finish(report).await.unwrap();
    }

    async fn read_pages(store: &dyn Store, run_id: Uuid, pages: u32) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        for page in 0..pages {
            out.push(store.plan_page(run_id, page).await.unwrap().expect("the page"));
        }
        assert_eq!(store.plan_page(run_id, pages).await.unwrap(), None, "no page past the end");
        out
    }

    #[tokio::test]
    async fn a_plan_within_the_inline_limit_stays_inline_and_stores_nothing() {
        for t in stores().await {
            let s = &*t.store;
            for total in [0, 1, INLINE_MAX] {
                let mut report = recorded_run(s).await;
                write_plan(s, &mut report, total, 777).await;
                assert_eq!(report.plan.as_deref(), Some(&actions(0..total)[..]), "{}", s.backend());
                assert_eq!(report.plan_pages, 0);
                assert_eq!(s.count_plan_pages(report.run_id).await.unwrap(), 0);
                // As every small dry run's report always was: a `plan`, no `plan_pages`.
                let json = serde_json::to_value(&report).unwrap();
                assert!(json["plan"].is_array() && json.get("plan_pages").is_none(), "{json}");
            }
            t.drop_database().await;
        }
    }

    #[tokio::test]
    async fn a_plan_past_the_inline_limit_is_paged_whole_in_order() {
        for t in stores().await {
            let s = &*t.store;
            // Just past the limit (the buffered pages, then one of a single action), and a
            // plan of many pages pushed in calls that straddle pages.
            for (total, call, pages) in [(INLINE_MAX + 1, INLINE_MAX + 1, 6), (12_345, 777, 13)] {
                let mut report = recorded_run(s).await;
                write_plan(s, &mut report, total, call).await;
                assert_eq!(report.plan, None, "{}", s.backend());
                assert_eq!(report.plan_pages, pages);
                assert_eq!(s.count_plan_pages(report.run_id).await.unwrap(), pages);
                let read = read_pages(s, report.run_id, pages).await;
                assert!(read.iter().all(|p| !p.is_empty() && p.len() <= PAGE_SIZE));
                assert!(read[..read.len() - 1].iter().all(|p| p.len() == PAGE_SIZE), "full pages");
                assert_eq!(
                    read.concat(),
                    actions(0..total),
                    "{}: every action, in order",
                    s.backend()
                );
                let json = serde_json::to_value(&report).unwrap();
                assert_eq!(json["plan_pages"], json!(pages), "{json}");
                assert!(json.get("plan").is_none(), "{json}");
            }
            t.drop_database().await;
        }
    }

    #[tokio::test]
    async fn described_principal_actions_page_like_any_other() {
        for t in stores().await {
            let s = &*t.store;
            let mut report = recorded_run(s).await;
            let delete = |n: usize| Action::Delete {
                kind: scim_schema::schema::ResourceKind::User,
                name: format!("u{n}"),
                resource_id: Uuid::from_u128(n as u128),
                aws_id: format!("aws-{n}"),
                reason: "deleted at the IdP",
            };
            let plan: Vec<Action> = (0..INLINE_MAX + 10).map(delete).collect();
            let mut writer = PlanWriter::new(s, report.run_id);
            writer.push_actions(&plan).await.unwrap();
            writer.push([json!({"action": "create_permission_set", "name": "P"})]).await.unwrap();
            writer.finish(&mut report).await.unwrap();
            assert_eq!(report.plan_pages, 6);
            let read = read_pages(s, report.run_id, 6).await.concat();
            assert_eq!(read.len(), INLINE_MAX + 11);
            assert_eq!(read[..INLINE_MAX + 10], plan::describe(&plan)[..]);
            assert_eq!(read[INLINE_MAX + 10]["action"], "create_permission_set");
            t.drop_database().await;
        }
    }
}
