//! How a run is asked for: [`RunOptions`] (dry run, full, forced, who asked, how to stop it)
//! and where it reports its progress ([`Progress`]).

use crate::store::Trigger;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use uuid::Uuid;

/// Where a run reports how far it is (the CLI's progress bar); the default reports nowhere.
pub trait Progress: Send + Sync {
    /// A phase begins (`reading AWS`, `applying`) with this many steps.
    fn phase(&self, name: &str, steps: u64);
    /// One more step of the phase is done.
    fn step(&self);
    /// The phase now has this many steps (a re-plan changed what is left).
    fn resize(&self, steps: u64);
    /// The run is over.
    fn finish(&self) {}
}

#[derive(Clone, Default)]
pub struct RunOptions {
    /// Plan and report only: no AWS write.
    pub dry_run: bool,
    /// Re-read the Identity Store and repair drift before planning.
    pub full: bool,
    /// Pass the delete guard.
    pub force: bool,
    /// What started the run.
    pub trigger: Trigger,
    /// The id to record the run under (the admin API hands it out before the run starts).
    pub run_id: Option<Uuid>,
    pub progress: Option<Arc<dyn Progress>>,
    /// Set when the server shuts down: the run stops before its next AWS call.
    pub stop: Option<Arc<AtomicBool>>,
    /// A run of the serving sync: its outcome sets the sync's health (`/admin/v1/status`)
    /// before the run is recorded finished, so whoever sees it finished sees its health too.
    pub records_health: bool,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("dry_run", &self.dry_run)
            .field("full", &self.full)
            .field("force", &self.force)
            .field("trigger", &self.trigger)
            .field("run_id", &self.run_id)
            .field("records_health", &self.records_health)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    pub(crate) fn progress(&self) -> &dyn Progress {
        struct Silent;
        impl Progress for Silent {
            fn phase(&self, _: &str, _: u64) {}
            fn step(&self) {}
            fn resize(&self, _: u64) {}
        }
        self.progress.as_deref().unwrap_or(&Silent)
    }
}
