//! `scimbridge audit`: the audit log, as lines or one JSON array.

use crate::cli::AuditArgs;
use crate::config::Settings;
use crate::exit::ExitCode;
use crate::startup::open_store;

pub(super) async fn audit(args: &AuditArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let since = match &args.since {
        Some(s) => match crate::sync::audit::parse_since(s, crate::store::now()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --since: {e}");
                return Ok(ExitCode::Usage);
            }
        },
        None => chrono::DateTime::UNIX_EPOCH,
    };
    let store = open_store(settings).await?;
    let mut query = crate::store::AuditQuery { since, after_seq: 0, limit: 10_000 };
    let name_key = args.name.as_deref().map(crate::names::NameKey::of);
    let wanted = |e: &crate::store::AuditEntry| {
        args.action.as_ref().is_none_or(|a| &e.action == a)
            && args.run.is_none_or(|r| e.run_id == r)
            && name_key.as_ref().is_none_or(|k| crate::sync::audit::concerns(e, k))
    };
    let mut all = Vec::new();
    loop {
        let mut page = store.list_audit(&query).await?;
        let Some(last) = page.last() else { break };
        query.after_seq = last.seq;
        page.retain(wanted);
        if args.json {
            all.extend(page);
        } else {
            for e in &page {
                println!("{}", crate::sync::audit::line(e));
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&all)?);
    }
    Ok(ExitCode::Ok)
}
