//! Opening the database a command works on: named on stderr first, migrated, and created only
//! when the command may create it.

use crate::config::{LogFormat, Settings};
use crate::store::{self, IfMissing, Store};
use anyhow::Context;
use std::sync::Arc;

/// Connects and applies pending migrations (every command that touches the database does).
/// A missing SQLite file is not created: only `serve` and `migrate` do that.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    open_store_sized(settings, settings.database.max_connections, IfMissing::Refuse).await
}

/// [`open_store`] with a pool of `max_connections`. Names the database on stderr first
/// (redacted; a SQLite file by its absolute path), so that every command says where it is:
/// as a line of its own, or in `serve`'s start-up log.
pub async fn open_store_sized(
    settings: &Settings,
    max_connections: u32,
    if_missing: IfMissing,
) -> anyhow::Result<Arc<dyn Store>> {
    let database = store::describe_url(&settings.database.url);
    match settings.log.format {
        // A log pipeline reads stderr line by line as JSON: a plain line would break it.
        LogFormat::Json => {
            tracing::info!(target: crate::telemetry::COMMANDS_TARGET, database = %database, "database")
        }
        LogFormat::Text => eprintln!("database: {database}"),
    }
    // The store's errors name the database and the cause already; no context repeats them.
    let store = store::open(&settings.database, max_connections, if_missing).await?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}
