//! What each CLI command does, one module per command family. Human-readable progress goes to
//! stderr (tracing); stdout carries only the documented output.

mod access;
mod audit;
mod check;
mod report;
mod serve;
mod show;
mod status;
mod sync;
mod token;

use crate::cli::{Cli, Command, SyncArgs};
use crate::config::{Overrides, Settings};
use crate::exit::ExitCode;
use clap::Parser;

/// The whole program, from the command line to the exit code: the `scimbridge` binary is this
/// and nothing else, and so is the end-to-end tests' build of it (`tests/bin/`), so that the
/// tests cannot run a binary older than the code.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        database_url: cli.global.database_url.clone(),
        listen: cli.global.listen.clone(),
    };
    let settings = match crate::startup::load_settings(cli.global.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(e) => {
            // `check` reports it as one of its checks too (stdout is its report).
            if matches!(cli.command, Command::Check) {
                let message = format!("{e:#}");
                println!("FAIL  config: {}", message.strip_prefix("config: ").unwrap_or(&message));
            }
            eprintln!("error: {e:#}");
            return ExitCode::Usage;
        }
    };
    crate::telemetry::init(settings.log.format, &settings.log.level);
    match run(cli.command, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::of(&e)
        }
    }
}

/// Runs one command; returns the process exit code.
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => serve::serve(settings).await,
        Command::Migrate => serve::migrate(&settings).await,
        Command::Token(t) => token::token(t, &settings).await,
        Command::Sync(SyncArgs { control: Some(control), .. }) => {
            sync::sync_control(control, &settings).await
        }
        Command::Sync(args) => sync::sync(&args, &settings).await,
        Command::Audit(args) => audit::audit(&args, &settings).await,
        Command::Status(args) => status::status(&args, &settings).await,
        Command::Check => check::check(&settings).await,
        Command::Show(cmd) => show::show(cmd, &settings).await,
        Command::Access(args) => access::access(&args, &settings).await,
    }
}
