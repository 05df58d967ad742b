//! One sync run: read the SCIM side and the bridge's record, (on a full run) re-read AWS to
//! repair drift, plan, check the delete guard, apply — recording every AWS change as it
//! happens, so a run killed half-way leaves a record the next run continues from — and report.
//!
//! [`run`] records the run around [`orchestrate`], which runs its phases; [`lease`] runs it
//! under the sync lease; [`lane`] follows the change journal while it lasts; [`pending`] reads
//! the pending set at the start and clears what a successful run covered; [`plan_pages`] keeps
//! a dry run's (or refused run's) plan inline while it is small and in stored pages once not.

mod approvals;
mod assignments;
mod changes;
pub mod config;
mod drift;
mod drift_overlay;
#[cfg(test)]
mod equivalence_tests;
mod lane;
pub mod lease;
pub mod options;
mod orchestrate;
mod paged;
pub mod pending;
pub mod plan_pages;
mod preview;
pub mod record;
pub mod report;
mod scoped;
mod state;

pub use super::counts::{ActionKind, Counts};
pub use config::{SyncConfig, SyncTimings};
pub use lease::run_exclusive;
pub use options::{Progress, RunOptions};
pub use pending::PendingRead;
pub use record::{record_abandoned, record_requested};
pub use report::RunReport;

use crate::store::{RunStatus, Store};
use crate::sync::error::SyncError;
use crate::sync::plan::Skipped;
use crate::sync::target::Directory;

/// Runs once (not under the lease: see [`run_exclusive`]) and records the run as it starts and
/// as it ends. A failed run is a report with status `failed`; Err only when the record cannot
/// be written.
pub async fn run(
    store: &dyn Store,
    directory: &dyn Directory,
    config: &SyncConfig,
    opts: &RunOptions,
) -> Result<RunReport, SyncError> {
    let started_at = crate::store::now();
    let mut report = RunReport::new(opts);
    report.rules_fingerprint = Some(config.rules_fingerprint.clone());
    record::save(store, &report, started_at, false).await?;
    // The run's own calls (not, say, the instance discovery before it).
    let (calls_before, throttles_before) = (directory.calls(), directory.throttles());
    // The pending set is read before anything of the SCIM side, so that whatever it names is
    // in what the run then reads (or newer). A dry run neither plans from it nor clears it.
    let read = if opts.dry_run { Ok(PendingRead::default()) } else { pending::read(store).await };
    let outcome = match read {
        Ok(read) => {
            report.pending = read;
            orchestrate::execute(store, directory, config, opts, &mut report).await
        }
        Err(e) => Err(e),
    };
    opts.progress().finish();
    report.aws_calls = directory
        .calls()
        .into_iter()
        .map(|(op, n)| {
            let before = calls_before.get(&op).copied().unwrap_or(0);
            (op, n - before)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    report.throttles = directory.throttles() - throttles_before;
    if let Err(e) = outcome {
        report.status = RunStatus::Failed;
        report.configuration_error = e.is_configuration();
        let e = e.into_anyhow();
        report.unreachable = report::unreachable(&e);
        report.errors.push(Skipped { principal: "(run)".into(), message: format!("{e:#}") });
    }
    if opts.records_health
        && let Err(e) = crate::sync::health::record_run(store, &report).await
    {
        tracing::warn!(error = %e, "sync: cannot record the sync's health");
    }
    // Before the run reads as finished: whoever sees it finished sees what it covered cleared.
    pending::clear_covered(store, &report).await;
    record::save(store, &report, started_at, true).await?;
    record::record_metrics(&report, started_at);
    tracing::info!(
        run_id = %report.run_id, status = report.status.as_str(),
        counts = %crate::telemetry::AsJson(&report.counts),
        aws_calls = %crate::telemetry::AsJson(&report.aws_calls), errors = report.errors.len(),
        dry_run = report.dry_run, "sync run finished"
    );
    Ok(report)
}
