//! The sync lease: one run at a time across every replica and CLI. A run holds it while it
//! lasts, renewing it in the background, and stops when it is lost.

use super::config::{SyncConfig, SyncTimings};
use super::options::RunOptions;
use super::record::record_abandoned;
use super::report::RunReport;
use crate::store::Store;
use crate::sync::error::SyncError;
use crate::sync::target::Directory;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// [`super::run`] under the sync lease: one run at a time across every replica and CLI. Waits
/// up to `wait` for another run to finish; `None` when it did not.
pub async fn run_exclusive(
    store: Arc<dyn Store>,
    directory: &dyn Directory,
    config: &SyncConfig,
    opts: &RunOptions,
    wait: Duration,
) -> anyhow::Result<Option<RunReport>> {
    let holder = Uuid::now_v7();
    let lease = config.timings.lease_seconds();
    let deadline = Instant::now() + wait;
    while !store.acquire_sync_lease(holder, lease).await? {
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tracing::info!("another sync run holds the lease; waiting");
        tokio::time::sleep(Duration::from_secs(1).min(wait)).await;
    }
    // Checked under the lease: a pause placed while this run waited for it is obeyed. A dry
    // run changes nothing, so it runs while paused.
    if !opts.dry_run
        && let Some(pause) = match store.sync_pause().await {
            Ok(p) => p,
            Err(e) => {
                let _ = store.release_sync_lease(holder).await;
                return Err(e.into());
            }
        }
    {
        release(&*store, holder).await;
        return Err(crate::sync::control::SyncPaused(pause).into());
    }
    let lost = Arc::new(tokio::sync::Notify::new());
    // Stops renewing however the run ends (error, panic, cancellation).
    let renewing = AbortOnDrop(renew(store.clone(), holder, config.timings, lost.clone()));
    let mut opts = opts.clone();
    opts.run_id.get_or_insert_with(Uuid::now_v7);
    let report = tokio::select! {
        report = super::run(&*store, directory, config, &opts) => report.map_err(SyncError::into_anyhow),
        () = lost.notified() => {
            let why = SyncError::LeaseLost;
            record_abandoned(&*store, &opts, &why.to_string())
                .await
                .map_err(SyncError::into_anyhow)?;
            Err(why.into_anyhow())
        }
    };
    drop(renewing);
    release(&*store, holder).await;
    report.map(Some)
}

/// Renews the lease every third of it in the background. Lost (this process stalled past the
/// lease and another run took it), `lost` is notified: the run stops, since two runs at once
/// could fight.
fn renew(
    store: Arc<dyn Store>,
    holder: Uuid,
    timings: SyncTimings,
    lost: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<()> {
    let seconds = timings.lease_seconds();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(timings.lease / 3).await;
            match store.acquire_sync_lease(holder, seconds).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!("the sync lease was lost to another run; stopping this one");
                    lost.notify_one();
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "could not renew the sync lease"),
            }
        }
    })
}

async fn release(store: &dyn Store, holder: Uuid) {
    if let Err(e) = store.release_sync_lease(holder).await {
        tracing::warn!(error = %e, "could not release the sync lease; it expires by itself");
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
