//! `scimbridge sync` and `sync pause|resume|approve`: one run now, to completion, or the sync
//! control stored in the database.

use crate::cli::{SyncArgs, SyncControl};
use crate::config::Settings;
use crate::exit::ExitCode;
use crate::startup::open_store;
use crate::store::{Store, Trigger, format_timestamp};
use std::sync::Arc;

/// How these rules differ from the serving replicas' (None: the same, or no serving run yet).
fn rules_differ(ours: &str, serving: Option<&crate::store::ServingRules>) -> Option<String> {
    use crate::sync::fingerprint::short;
    let serving = serving.filter(|s| s.fingerprint != ours)?;
    Some(format!(
        "the rules of this config (fingerprint {}) differ from those of the serving replicas' \
         last run (fingerprint {}, run {}, {} at {}): the server's next run would undo what this \
         run does differently. Ask the server to run with its rules (POST /admin/v1/sync), or \
         pass --config-differs-ok to run with these anyway",
        short(ours),
        short(&serving.fingerprint),
        serving.run_id,
        serving.trigger,
        format_timestamp(&serving.started_at)
    ))
}

pub(super) async fn sync(args: &SyncArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let config = crate::sync::engine::SyncConfig::from_settings(settings)?;
    let store = open_store(settings).await?;
    if let Some(pause) = store.sync_pause().await? {
        if !args.dry_run {
            eprintln!(
                "error: {} (a dry run still works: it changes nothing)",
                crate::sync::control::SyncPaused(pause)
            );
            return Ok(ExitCode::Usage);
        }
        eprintln!(
            "note: {}; this dry run changes nothing",
            crate::sync::control::describe_pause(&pause)
        );
    }
    // Before AWS is touched: a run the server would undo is refused (issue 14). A dry run
    // changes nothing, so it only says so.
    let differ = rules_differ(&config.rules_fingerprint, store.serving_rules().await?.as_ref());
    if let Some(message) = &differ
        && !args.dry_run
        && !args.config_differs_ok
    {
        eprintln!("error: {message}");
        return Ok(ExitCode::Usage);
    }
    if let Some(message) = differ.as_ref().filter(|_| !args.dry_run) {
        tracing::warn!(target: crate::telemetry::COMMANDS_TARGET, "--config-differs-ok: running although {message}");
    }
    let opts = crate::sync::engine::RunOptions {
        dry_run: args.dry_run,
        full: args.full,
        force: args.force,
        trigger: Trigger::Cli,
        progress: super::report::progress_bar(),
        ..Default::default()
    };
    let note = differ.filter(|_| args.dry_run);
    run_and_report(store, settings, &config, &opts, args.run.json, args.run.wait, note).await
}

/// `scimbridge sync pause|resume|approve`.
pub(super) async fn sync_control(
    control: SyncControl,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    use crate::sync::control;
    match control {
        SyncControl::Pause { reason } => {
            let reason = match control::reason(reason.as_deref()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: --reason: {e}");
                    return Ok(ExitCode::Usage);
                }
            };
            let store = open_store(settings).await?;
            let paused = control::pause(&*store, reason, "cli").await?;
            if paused.new {
                println!("{}", control::describe_pause(&paused.pause));
            } else {
                println!(
                    "{} already; the first pause and its reason stay",
                    control::describe_pause(&paused.pause)
                );
            }
            Ok(ExitCode::Ok)
        }
        SyncControl::Resume => {
            let store = open_store(settings).await?;
            match control::resume(&*store, "cli").await? {
                Some(p) => println!(
                    "sync resumed (it was paused since {}, by {})",
                    format_timestamp(&p.since),
                    p.by
                ),
                None => println!("sync was not paused"),
            }
            Ok(ExitCode::Ok)
        }
        SyncControl::Approve(args) => {
            let config = crate::sync::engine::SyncConfig::from_settings(settings)?;
            let store = open_store(settings).await?;
            // The approval run applies these rules; the server's would undo what they do
            // differently, so an approval with other rules goes through the server instead.
            let serving = store.serving_rules().await?;
            if let Some(message) = rules_differ(&config.rules_fingerprint, serving.as_ref()) {
                eprintln!(
                    "error: nothing approved: {message}. To approve with the server's rules: \
                     POST /admin/v1/sync/runs/{}/approve",
                    args.run_id
                );
                return Ok(ExitCode::Usage);
            }
            let hold = match control::approve(&*store, args.run_id, "cli").await? {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::Usage);
                }
            };
            eprintln!(
                "approved the {} actions run {} held; applying those still planned",
                hold.action_keys.len(),
                args.run_id
            );
            if let Some(pause) = store.sync_pause().await? {
                eprintln!(
                    "{}: the approved actions go with the first run after `scimbridge sync resume`",
                    control::describe_pause(&pause)
                );
                return Ok(ExitCode::Ok);
            }
            let opts = crate::sync::engine::RunOptions {
                force: args.force,
                trigger: Trigger::Approval,
                progress: super::report::progress_bar(),
                ..Default::default()
            };
            run_and_report(store, settings, &config, &opts, args.run.json, args.run.wait, None)
                .await
        }
    }
}

/// One run now, to completion, and its report on stdout; the exit code.
async fn run_and_report(
    store: Arc<dyn Store>,
    settings: &Settings,
    config: &crate::sync::engine::SyncConfig,
    opts: &crate::sync::engine::RunOptions,
    json: bool,
    wait_seconds: u64,
    // Said with a dry run's report: how its rules differ from the serving replicas'.
    differ_note: Option<String>,
) -> anyhow::Result<ExitCode> {
    // No Region, no credentials, no instance, a wrong identity store: the setup, so exit 2;
    // an endpoint that cannot be reached is a failure of AWS or the network (1), as it is in
    // a run.
    let directory = match crate::sync::aws::AwsDirectory::connect(&settings.aws).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            let unreachable = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<crate::sync::target::AwsError>(),
                    Some(crate::sync::target::AwsError::Unreachable { .. })
                )
            });
            return Ok(if unreachable { ExitCode::Failure } else { ExitCode::Usage });
        }
    };
    tracing::info!(
        target: crate::telemetry::COMMANDS_TARGET,
        identity_store_id = directory.identity_store_id(),
        "syncing into the Identity Store"
    );
    let wait = std::time::Duration::from_secs(wait_seconds);
    let report =
        match crate::sync::engine::run_exclusive(store.clone(), &directory, config, opts, wait)
            .await
        {
            Ok(Some(report)) => report,
            Ok(None) => {
                eprintln!(
                    "error: another sync run holds the lock and did not finish within \
                     {wait_seconds}s"
                );
                return Ok(ExitCode::Locked);
            }
            // Paused while this command waited for the lease.
            Err(e) if e.downcast_ref::<crate::sync::control::SyncPaused>().is_some() => {
                eprintln!("error: {e}");
                return Ok(ExitCode::Usage);
            }
            Err(e) => return Err(e),
        };
    super::report::print(&*store, &report, json, differ_note.as_deref()).await?;
    Ok(ExitCode::from_run(report.exit_code()))
}
