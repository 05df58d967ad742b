//! The composition root: [`Application::build`] wires exactly what `scimbridge serve` runs (the
//! store sized from the connection budget, tokens from `auth.tokens_dir`, the sync scheduler
//! when `[sync] enabled`, retention's pruning, the listeners) and
//! [`Application::run_until_stopped`] runs it with an ordered shutdown. The in-process test
//! harness builds through the same code ([`Application::build_with`], with a store of its
//! own), so tests and production are wired alike. Listeners bind first (port 0 works).
//!
//! Also here, for every command: the checked settings ([`load_settings`]) and opening the
//! database ([`open_store`]).

mod database;
mod http_server;
mod resources;
mod settings;

pub use database::{open_store, open_store_sized};
pub use resources::cpus;
pub use settings::load_settings;

use crate::config::Settings;
use crate::store::budget::ConnectionBudget;
use crate::store::{IfMissing, Store};
use crate::sync::scheduler::SyncHandle;
use actix_web::dev::Server;
use std::future::Future;
use std::sync::Arc;

/// How long shutdown waits for a running sync to reach its next step (an AWS call in flight
/// is retried for at most about this long).
const SYNC_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The server, listening, the sync scheduler when `[sync] enabled`, and retention's pruning.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    server: Server,
    scheduler: Option<Scheduler>,
    pruner: crate::sync::retention::Pruner,
}

/// The scheduler's task and the handle that stops it.
struct Scheduler {
    task: tokio::task::JoinHandle<()>,
    handle: SyncHandle,
}

impl Application {
    /// What `serve` runs: checks `auth.tokens_dir`, opens (and creates) the database with the
    /// background share of the connection budget, then [`Application::build_with`].
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // A bad token file is a configuration error (exit 2), found before the database is
        // opened.
        if let Some(dir) = &settings.auth.tokens_dir
            && let Err(e) = crate::auth::read_tokens_dir(dir)
        {
            return Err(crate::exit::usage(format!("{e:#}")));
        }
        // The HTTP workers open pools of their own out of the same budget.
        let budget = ConnectionBudget::new(&settings.database, cpus());
        let store = open_store_sized(&settings, budget.background, IfMissing::Create).await?;
        Application::build_with(settings, store).await
    }

    /// The application over an open, migrated `store`: provisions the tokens of
    /// `auth.tokens_dir`, starts the scheduler when `[sync] enabled` and retention's pruning
    /// (always: the CLI's runs and the SCIM side add rows too), binds the listeners and says so.
    pub async fn build_with(
        settings: Settings,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Application> {
        // Checked before anything starts (load_settings checked it already for `serve`).
        let retention = crate::sync::retention::RetentionPolicy::from_settings(&settings)?;
        if let Some(dir) = &settings.auth.tokens_dir {
            let added = crate::auth::provision_from_dir(&*store, dir).await?;
            tracing::info!(target: crate::telemetry::COMMANDS_TARGET, added, dir = %dir.display(), "tokens from auth.tokens_dir");
        }
        let scheduler = if crate::sync::scheduler::enabled(&settings) {
            let (task, handle) =
                crate::sync::scheduler::spawn(store.clone(), Arc::new(settings.clone()))?;
            Some(Scheduler { task, handle })
        } else {
            tracing::warn!(
                target: crate::telemetry::COMMANDS_TARGET,
                "sync is off: serve pushes into AWS only with [sync] enabled = true \
                 (SCIMBRIDGE_SYNC__ENABLED=true); `scimbridge sync` still runs by hand"
            );
            None
        };
        let pruned = store.clone();
        let listen = settings.server.listen.clone();
        let metrics_listen = settings.server.metrics_listen.clone();
        let backend = store.backend();
        // Bound before "serving" is said: a port in use must not be announced as served.
        let sync = scheduler.as_ref().map(|s| s.handle.clone());
        let listening = http_server::start(settings, store, sync)?;
        let pruner = crate::sync::retention::spawn(pruned, retention);
        tracing::info!(target: crate::telemetry::COMMANDS_TARGET, listen = %listen, database = backend, "scimbridge serving SCIM at /scim/v2");
        if let Some(metrics) = &metrics_listen {
            tracing::info!(target: crate::telemetry::COMMANDS_TARGET, metrics_listen = %metrics, "/metrics, /livez and /readyz on their own address");
        }
        Ok(Application {
            port: listening.port,
            metrics_port: listening.metrics_port,
            server: listening.server,
            scheduler,
            pruner,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `server.metrics_listen`, when set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Serves until the server ends by itself or `shutdown` completes. Then, in order: a
    /// running sync stops before its next AWS call (recorded), and pruning after its batch in
    /// flight, while requests are still answered; then in-flight requests drain for `server.shutdown_timeout_seconds`.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let server = self.server.handle();
        let mut serving = tokio::spawn(self.server);
        tokio::select! {
            served = &mut serving => return Ok(served??),
            () = shutdown => tracing::info!(target: crate::telemetry::COMMANDS_TARGET, "shutting down"),
        }
        if let Some(scheduler) = self.scheduler {
            scheduler.stop().await;
        }
        self.pruner.stop().await;
        server.stop(true).await;
        serving.await??;
        Ok(())
    }
}

impl Scheduler {
    /// Asks the scheduler to stop and waits for it, at most [`SYNC_STOP_TIMEOUT`].
    async fn stop(self) {
        self.handle.shut_down();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(SYNC_STOP_TIMEOUT, self.task).await.is_err() {
            tracing::warn!(
                target: crate::telemetry::COMMANDS_TARGET,
                "sync: the running run did not stop in time; abandoning it"
            );
            abort.abort();
        }
    }
}

/// SIGTERM (Kubernetes) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
