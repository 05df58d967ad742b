//! Recording runs: the run record in the store (as a run starts and as it ends, or a requested
//! run that never ran) and the run in `/metrics`.

use super::options::RunOptions;
use super::report::RunReport;
use crate::store::{RunRecord, RunStatus, Store, Timestamp};
use crate::sync::error::SyncError;
use crate::sync::plan::Skipped;

/// Records a requested run as `running` before it starts (it may wait for the lease).
pub async fn record_requested(store: &dyn Store, opts: &RunOptions) -> Result<(), SyncError> {
    save(store, &RunReport::new(opts), crate::store::now(), false).await
}

/// Records a requested run that never ran as failed.
pub async fn record_abandoned(
    store: &dyn Store,
    opts: &RunOptions,
    why: &str,
) -> Result<(), SyncError> {
    let mut report = RunReport::new(opts);
    report.status = RunStatus::Failed;
    report.errors.push(Skipped { principal: "(run)".into(), message: why.to_owned() });
    save(store, &report, crate::store::now(), true).await
}

/// Writes the run record; `finished` sets its end (and the journal head it covered).
pub(super) async fn save(
    store: &dyn Store,
    report: &RunReport,
    started_at: Timestamp,
    finished: bool,
) -> Result<(), SyncError> {
    let record = RunRecord {
        id: report.run_id,
        trigger: report.trigger,
        dry_run: report.dry_run,
        status: report.status,
        started_at,
        finished_at: finished.then(crate::store::now),
        journal_head: report.journal_head.filter(|_| finished),
        report: serde_json::to_value(report).map_err(anyhow::Error::from)?,
        forced: report.forced,
        removals: report.removals,
        rules_fingerprint: report.rules_fingerprint.clone(),
    };
    store.save_run(&record).await?;
    Ok(())
}

/// The run in `/metrics`: runs by trigger, status and whether they were dry runs, duration,
/// changes by action. Dry runs are labelled `dry_run="true"`, so that alerts on real runs
/// (`dry_run="false"`) are never satisfied by a preview.
pub(super) fn record_metrics(report: &RunReport, started_at: Timestamp) {
    let seconds = (crate::store::now() - started_at).as_seconds_f64().max(0.0);
    let (trigger, status) = (report.trigger.as_str(), report.status.as_str());
    let dry_run = if report.dry_run { "true" } else { "false" };
    metrics::counter!("scimbridge_sync_runs_total", "trigger" => trigger, "status" => status, "dry_run" => dry_run)
        .increment(1);
    metrics::histogram!("scimbridge_sync_run_duration_seconds", "trigger" => trigger, "dry_run" => dry_run)
        .record(seconds);
    metrics::gauge!("scimbridge_sync_last_run_timestamp_seconds", "status" => status, "dry_run" => dry_run)
        .set(crate::store::now().timestamp() as f64);
    if !report.dry_run && report.status != "refused" {
        // Held actions are not changes (they wait for approval).
        for (action, n) in report.counts.iter().filter(|(k, _)| !k.is_held()) {
            metrics::counter!("scimbridge_sync_changes_total", "action" => action.as_str())
                .increment(*n);
        }
    }
}
