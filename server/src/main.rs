use clap::Parser;
use scimbridge::cli::Cli;
use scimbridge::config::{Overrides, Settings};
use scimbridge::exit;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let overrides = Overrides {
        database_url: cli.global.database_url.clone(),
        listen: cli.global.listen.clone(),
    };
    let settings = match Settings::load(cli.global.config.as_deref(), &overrides) {
        Ok(s) => s,
        Err(e) => {
            // `check` reports it as one of its checks too (stdout is its report).
            if matches!(cli.command, scimbridge::cli::Command::Check) {
                let message = format!("{e:#}");
                println!("FAIL  config: {}", message.strip_prefix("config: ").unwrap_or(&message));
            }
            eprintln!("error: {e:#}");
            std::process::exit(exit::USAGE);
        }
    };
    scimbridge::telemetry::init(&settings.log.format, &settings.log.level);
    let code = match scimbridge::commands::run(cli.command, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::code(&e)
        }
    };
    std::process::exit(code);
}
