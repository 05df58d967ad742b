//! `scimbridge show user|group NAME`: one user or group as the bridge sees it.

use crate::cli::ShowCommand;
use crate::config::Settings;
use crate::exit::ExitCode;
use crate::startup::open_store;

/// `scimbridge show user|group NAME`.
pub(super) async fn show(cmd: ShowCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    use scim_schema::schema::ResourceKind;
    let (kind, args) = match cmd {
        ShowCommand::User(args) => (ResourceKind::User, args),
        ShowCommand::Group(args) => (ResourceKind::Group, args),
    };
    let store = open_store(settings).await?;
    let shown =
        crate::show::find(&*store, kind, &args.name, args.source.as_deref(), args.limit).await?;
    if args.json {
        println!("{}", serde_json::to_string(&shown.to_json())?);
    } else {
        println!("{}", shown.to_text());
    }
    Ok(ExitCode::Ok)
}
