//! `scimbridge serve` and `scimbridge migrate`: the two commands that create a missing SQLite
//! database.

use crate::config::Settings;
use crate::exit::ExitCode;
use crate::startup::{Application, open_store_sized, shutdown_signal};
use crate::store::IfMissing;

/// The server (and the scheduler, with `[sync] enabled`) until SIGTERM or Ctrl-C.
pub(super) async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    Application::build(settings).await?.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::Ok)
}

pub(super) async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    open_store_sized(settings, settings.database.max_connections, IfMissing::Create).await?;
    tracing::info!(target: crate::telemetry::COMMANDS_TARGET, "migrations applied");
    Ok(ExitCode::Ok)
}
