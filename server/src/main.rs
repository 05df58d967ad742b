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
