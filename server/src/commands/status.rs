//! `scimbridge status`: the sync's state and health, from the database.

use crate::cli::StatusArgs;
use crate::config::Settings;
use crate::exit::ExitCode;
use crate::startup::open_store;

/// `scimbridge status`: what `GET /admin/v1/status` shows, from the database.
pub(super) async fn status(args: &StatusArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let enabled = crate::sync::scheduler::enabled(settings);
    let report = crate::status::report(&*store, settings, enabled).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for line in crate::status::text(&report) {
            println!("{line}");
        }
    }
    Ok(ExitCode::Ok)
}
