//! `scimbridge check`: the preflight, one line per check.

use crate::config::Settings;
use crate::exit::ExitCode;
use crate::startup::open_store;
use serde_json::Value;

/// `scimbridge check`: every check on its own line, `ok` or `FAIL`, exit 1 on any failure.
pub(super) async fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut report = |name: &str, problem: Option<String>, detail: &str| match problem {
        None => println!("ok    {name}: {detail}"),
        Some(p) => {
            failed = true;
            println!("FAIL  {name}: {p}");
        }
    };
    report("config", None, "valid (filters and mappings compiled)");
    match open_store(settings).await {
        Ok(store) => {
            let ready = store.ready().await.err().map(|e| format!("{e}"));
            let is_ready = ready.is_none();
            report(
                "database",
                ready,
                &format!("{} reachable, migrations applied", store.backend()),
            );
            if is_ready && !settings.sync.filter.is_empty() {
                match filter_failures(&*store, settings).await {
                    Ok((failures, users, groups)) if failures.is_empty() => report(
                        "sync.filter",
                        None,
                        &format!(
                            "gives true or false for each of {users} users and {groups} groups"
                        ),
                    ),
                    Ok((failures, ..)) => {
                        for f in failures.iter().take(FAILURES_SHOWN) {
                            report(&f.principal, Some(f.message.clone()), "");
                        }
                        if failures.len() > FAILURES_SHOWN {
                            println!("FAIL  sync.filter: {} more", failures.len() - FAILURES_SHOWN);
                        }
                    }
                    Err(e) => report("sync.filter", Some(format!("{e:#}")), ""),
                }
            }
            if is_ready && !settings.assignments.is_empty() {
                match rule_problems(&*store, settings).await {
                    Ok(problems) if problems.is_empty() => report(
                        "assignment rules",
                        None,
                        "each names one source's principals unambiguously",
                    ),
                    Ok(problems) => {
                        for p in problems {
                            report(&p.principal, Some(p.message), "");
                        }
                    }
                    Err(e) => report("assignment rules", Some(format!("{e:#}")), ""),
                }
            }
        }
        // A missing SQLite file is no problem found but the wrong place asked (exit 2).
        Err(e) if ExitCode::of(&e) == ExitCode::Usage => return Err(e),
        Err(e) => report("database", Some(format!("{e:#}")), ""),
    }
    // The Region as `sync` resolves it (the SDK's chain after [aws] region), so that the two
    // never disagree about it.
    if crate::sync::aws::resolve_region(&settings.aws).await.is_none() {
        report("aws", Some(crate::sync::aws::NO_REGION.into()), "");
        return Ok(ExitCode::failed_if(failed));
    }
    match crate::sync::aws::AwsDirectory::connect(&settings.aws).await {
        Ok(directory) => {
            let detail = format!(
                "identity store {} (Region {})",
                directory.identity_store_id(),
                directory.region()
            );
            report("aws", None, &detail);
            for c in directory.preflight().await {
                report(&c.name, c.problem, "permitted");
            }
            println!(
                "-     identitystore:CreateUser, identitystore:CreateGroup: not checked (a probe would create)"
            );
            if crate::sync::access::apply::configured(
                &settings.permission_sets,
                &settings.assignments,
            ) {
                for c in directory
                    .access_preflight(&settings.permission_sets, &settings.assignments)
                    .await
                {
                    report(&c.name, c.problem, "ok");
                }
                println!(
                    "-     sso:CreateAccountAssignment, sso:CreateApplicationAssignment, sso:CreatePermissionSet, \
                     sso:ProvisionPermissionSet: not checked (a probe would create)"
                );
            }
        }
        Err(e) => report("aws", Some(format!("{e:#}")), ""),
    }
    Ok(ExitCode::failed_if(failed))
}

/// How many principals a failing filter is shown for.
const FAILURES_SHOWN: usize = 10;

/// `[sync.filter]` run over the stored users and groups, as the next run will: the principals
/// it fails for (an error, or not true or false), and how many users and groups it ran on.
/// The config load already tried each filter on sample resources; this finds what depends on
/// the data.
async fn filter_failures(
    store: &dyn crate::store::Store,
    settings: &Settings,
) -> anyhow::Result<(Vec<crate::sync::plan::Skipped>, usize, usize)> {
    use crate::mapping::rules::{Rules, Selection};
    let rules = Rules::compile(&settings.sync.filter, &settings.mapping)?;
    let snapshot = store.snapshot().await?;
    let name = |doc: &Value, attribute: &str| {
        doc.get(attribute).and_then(Value::as_str).unwrap_or("?").to_owned()
    };
    let users =
        snapshot.users.iter().map(|u| (rules.select_user(&u.doc), name(&u.doc, "userName")));
    let groups =
        snapshot.groups.iter().map(|g| (rules.select_group(&g.doc), name(&g.doc, "displayName")));
    let failures = users
        .chain(groups)
        .filter_map(|(selection, principal)| match selection {
            Selection::Failed(message) => Some(crate::sync::plan::Skipped { principal, message }),
            _ => None,
        })
        .collect();
    Ok((failures, snapshot.users.len(), snapshot.groups.len()))
}

/// The assignment rules that name no source while several exist, or whose externalId matches
/// more than one group of its source.
async fn rule_problems(
    store: &dyn crate::store::Store,
    settings: &Settings,
) -> anyhow::Result<Vec<crate::sync::plan::Skipped>> {
    let sources: Vec<String> =
        store.list_sources().await?.into_iter().map(|s| s.name.into()).collect();
    let snapshot = store.snapshot().await?;
    Ok(crate::sync::access::plan::rule_problems(&settings.assignments, &snapshot, &sources))
}
