//! What each CLI command does. Human-readable progress goes to stderr (tracing); stdout carries
//! only the documented output.

use crate::auth::create_token;
use crate::cli::{
    AuditArgs, Command, ShowCommand, StatusArgs, SyncArgs, SyncControl, TokenCommand,
    TokenCreateArgs,
};
use crate::config::Settings;
use crate::exit;
use crate::startup::Application;
use crate::store::{self, IfMissing, Store, TokenInfo, format_timestamp};
use anyhow::Context;
use serde_json::Value;
use std::sync::Arc;

/// Runs one command; returns the process exit code.
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<i32> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            open_store_sized(&settings, settings.database.max_connections, IfMissing::Create)
                .await?;
            tracing::info!("migrations applied");
            Ok(0)
        }
        Command::Token(t) => token(t, &settings).await,
        Command::Sync(SyncArgs { control: Some(control), .. }) => {
            sync_control(control, &settings).await
        }
        Command::Sync(args) => sync(&args, &settings).await,
        Command::Audit(args) => audit(&args, &settings).await,
        Command::Status(args) => status(&args, &settings).await,
        Command::Check => check(&settings).await,
        Command::Show(cmd) => show(cmd, &settings).await,
    }
}

/// `scimbridge check`: every check on its own line, `ok` or `FAIL`, exit 1 on any failure.
async fn check(settings: &Settings) -> anyhow::Result<i32> {
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
        Err(e) if exit::code(&e) == exit::USAGE => return Err(e),
        Err(e) => report("database", Some(format!("{e:#}")), ""),
    }
    // The Region as `sync` resolves it (the SDK's chain after [aws] region), so that the two
    // never disagree about it.
    if crate::sync::aws::resolve_region(&settings.aws).await.is_none() {
        report("aws", Some(crate::sync::aws::NO_REGION.into()), "");
        return Ok(i32::from(failed));
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
    Ok(i32::from(failed))
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
    let sources: Vec<String> = store.list_sources().await?.into_iter().map(|s| s.name).collect();
    let snapshot = store.snapshot().await?;
    Ok(crate::sync::access::plan::rule_problems(&settings.assignments, &snapshot, &sources))
}

/// A progress bar on stderr when it is a terminal (stdout keeps only the documented output).
fn progress_bar() -> Option<Arc<dyn crate::sync::engine::Progress>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    struct Bar(indicatif::ProgressBar);
    impl crate::sync::engine::Progress for Bar {
        fn phase(&self, name: &str, steps: u64) {
            self.0.reset();
            self.0.set_length(steps);
            self.0.set_message(name.to_owned());
        }
        fn step(&self) {
            self.0.inc(1);
        }
        fn resize(&self, steps: u64) {
            self.0.set_length(steps);
        }
        fn finish(&self) {
            self.0.finish_and_clear();
        }
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(Arc::new(Bar(bar)))
}

async fn audit(args: &AuditArgs, settings: &Settings) -> anyhow::Result<i32> {
    let since = match &args.since {
        Some(s) => match crate::sync::audit::parse_since(s, crate::store::now()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: --since: {e}");
                return Ok(2);
            }
        },
        None => chrono::DateTime::UNIX_EPOCH,
    };
    let store = open_store(settings).await?;
    let mut query = crate::store::AuditQuery { since, after_seq: 0, limit: 10_000 };
    let name_key = args.name.as_deref().map(crate::names::fold);
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
    Ok(0)
}

/// `scimbridge status`: what `GET /admin/v1/status` shows, from the database.
async fn status(args: &StatusArgs, settings: &Settings) -> anyhow::Result<i32> {
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
    Ok(0)
}

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

async fn sync(args: &SyncArgs, settings: &Settings) -> anyhow::Result<i32> {
    let config = crate::sync::engine::SyncConfig::from_settings(settings)?;
    let store = open_store(settings).await?;
    if let Some(pause) = store.sync_pause().await? {
        if !args.dry_run {
            eprintln!(
                "error: {} (a dry run still works: it changes nothing)",
                crate::sync::control::SyncPaused(pause)
            );
            return Ok(2);
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
        return Ok(2);
    }
    if let Some(message) = differ.as_ref().filter(|_| !args.dry_run) {
        tracing::warn!("--config-differs-ok: running although {message}");
    }
    let opts = crate::sync::engine::RunOptions {
        dry_run: args.dry_run,
        full: args.full,
        force: args.force,
        trigger: "cli".to_owned(),
        progress: progress_bar(),
        ..Default::default()
    };
    let note = differ.filter(|_| args.dry_run);
    run_and_report(store, settings, &config, &opts, args.json, args.wait, note).await
}

/// `scimbridge sync pause|resume|approve`.
async fn sync_control(control: SyncControl, settings: &Settings) -> anyhow::Result<i32> {
    use crate::sync::control;
    match control {
        SyncControl::Pause { reason } => {
            let reason = match control::reason(reason.as_deref()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: --reason: {e}");
                    return Ok(2);
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
            Ok(0)
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
            Ok(0)
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
                return Ok(2);
            }
            let hold = match control::approve(&*store, args.run_id, "cli").await? {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(2);
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
                return Ok(0);
            }
            let opts = crate::sync::engine::RunOptions {
                force: args.force,
                trigger: "approval".to_owned(),
                progress: progress_bar(),
                ..Default::default()
            };
            run_and_report(store, settings, &config, &opts, args.json, args.wait, None).await
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
) -> anyhow::Result<i32> {
    // No Region, no credentials, no instance, a wrong identity store: the setup, so exit 2;
    // an endpoint that cannot be reached is a failure of AWS or the network (1), as it is in
    // a run.
    let directory = match crate::sync::aws::AwsDirectory::connect(&settings.aws).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e:#}");
            let unreachable = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<crate::sync::directory::AwsError>(),
                    Some(crate::sync::directory::AwsError::Unreachable { .. })
                )
            });
            return Ok(if unreachable { exit::FAILURE } else { exit::USAGE });
        }
    };
    tracing::info!(
        identity_store_id = directory.identity_store_id(),
        "syncing into the Identity Store"
    );
    let wait = std::time::Duration::from_secs(wait_seconds);
    let report =
        match crate::sync::engine::run_exclusive(store, &directory, config, opts, wait).await {
            Ok(Some(report)) => report,
            Ok(None) => {
                eprintln!(
                    "error: another sync run holds the lock and did not finish within \
                     {wait_seconds}s"
                );
                return Ok(4);
            }
            // Paused while this command waited for the lease.
            Err(e) if e.downcast_ref::<crate::sync::control::SyncPaused>().is_some() => {
                eprintln!("error: {e}");
                return Ok(2);
            }
            Err(e) => return Err(e),
        };
    if json {
        let mut json = serde_json::to_value(&report)?;
        if let (Some(o), Some(message)) = (json.as_object_mut(), &differ_note) {
            o.insert("rules_differ".into(), Value::String(message.clone()));
        }
        println!("{}", serde_json::to_string(&json)?);
    } else {
        let dry = if report.dry_run { " (dry run: nothing was changed)" } else { "" };
        println!("run {} {}{dry}", report.run_id, report.status);
        if let Some(message) = &differ_note {
            println!("  note: {message}");
        }
        for (action, n) in &report.counts {
            println!("  {action}: {n}");
        }
        let calls: u64 = report.aws_calls.values().sum();
        println!("  aws calls: {calls} ({} throttled)", report.throttles);
        for e in &report.errors {
            println!("  error: {}: {}", e.principal, e.message);
        }
        if let Some(plan) = &report.plan {
            println!("  plan ({} steps):", plan.len());
            for line in plan_table(plan) {
                println!("    {line}");
            }
        }
        if !report.held.is_empty() {
            let total: u64 =
                report.counts.iter().filter(|(k, _)| k.is_held()).map(|(_, n)| n).sum();
            let approve = report
                .approval
                .as_ref()
                .and_then(|a| a.get("run_id"))
                .and_then(Value::as_str)
                .map(|id| format!("; approve with `scimbridge sync approve {id}`"))
                .unwrap_or_default();
            println!("  held for approval ({total} destructive actions{approve}):");
            for line in plan_table(&report.held) {
                println!("    {line}");
            }
        }
    }
    Ok(report.exit_code())
}

/// A run's plan as a table: action, kind, name, what changes. The columns are read from the
/// plan's JSON (what `--json` prints), so every kind of step — principals, memberships,
/// permission sets, assignments — gets a row.
fn plan_table(plan: &[Value]) -> Vec<String> {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let rows: Vec<[String; 4]> = plan
        .iter()
        .map(|step| {
            let action = text(step, "action").unwrap_or_default();
            let (kind, name) = match (text(step, "group"), text(step, "user")) {
                (Some(group), Some(user)) => {
                    ("Membership".to_owned(), format!("{user} in {group}"))
                }
                _ => (
                    text(step, "kind").unwrap_or_else(|| {
                        if action.ends_with("_assignment") {
                            "Assignment".to_owned()
                        } else if action.ends_with("_permission_set") {
                            "PermissionSet".to_owned()
                        } else {
                            String::new()
                        }
                    }),
                    text(step, "name")
                        .or_else(|| text(step, "principal"))
                        .or_else(|| text(step, "application_arn"))
                        .unwrap_or_default(),
                ),
            };
            let mut detail = Vec::new();
            if let Some(attributes) = step.get("attributes").and_then(Value::as_array) {
                let names: Vec<&str> = attributes.iter().filter_map(Value::as_str).collect();
                detail.push(names.join(", "));
            }
            for key in ["reason", "permission_set", "target", "aws_id", "rule"] {
                if let Some(v) = text(step, key) {
                    detail.push(format!("{key} {v}"));
                }
            }
            [action, kind, name, detail.join("; ")]
        })
        .collect();
    let header = ["ACTION", "KIND", "NAME", "CHANGES"].map(str::to_owned);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|[a, k, n, d]| {
            format!(
                "{a:<w0$}  {k:<w1$}  {n:<w2$}  {d}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
            .trim_end()
            .to_owned()
        })
        .collect()
}

/// Connects and applies pending migrations (every command that touches the database does).
/// A missing SQLite file is not created: only `serve` and `migrate` do that.
async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    open_store_sized(settings, settings.database.max_connections, IfMissing::Refuse).await
}

/// [`open_store`] with a pool of `max_connections`. Names the database on stderr first
/// (redacted; a SQLite file by its absolute path), so that every command says where it is:
/// as a line of its own, or in `serve`'s start-up log.
async fn open_store_sized(
    settings: &Settings,
    max_connections: u32,
    if_missing: IfMissing,
) -> anyhow::Result<Arc<dyn Store>> {
    let database = store::describe_url(&settings.database.url);
    if settings.log.format == "json" {
        // A log pipeline reads stderr line by line as JSON: a plain line would break it.
        tracing::info!(database = %database, "database");
    } else {
        eprintln!("database: {database}");
    }
    // The store's errors name the database and the cause already; no context repeats them.
    let store = store::open(&settings.database, max_connections, if_missing).await?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// SIGTERM (Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// How long shutdown waits for a running sync to reach its next step (an AWS call in flight
/// is retried for at most about this long).
const SYNC_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve(settings: Settings) -> anyhow::Result<i32> {
    // A bad token file is a configuration error (exit 2), found before the database is opened.
    if let Some(dir) = &settings.auth.tokens_dir
        && let Err(e) = crate::auth::read_tokens_dir(dir)
    {
        eprintln!("error: {e:#}");
        return Ok(2);
    }
    // The HTTP workers open pools of their own out of the same budget.
    let budget = settings.database.budget(crate::startup::cpus());
    let store = open_store_sized(&settings, budget.background, IfMissing::Create).await?;
    if let Some(dir) = &settings.auth.tokens_dir {
        let added = crate::auth::provision_from_dir(&*store, dir).await?;
        tracing::info!(added, dir = %dir.display(), "tokens from auth.tokens_dir");
    }
    let listen = settings.server.listen.clone();
    let metrics_listen = settings.server.metrics_listen.clone();
    let (scheduler, handle) = if crate::sync::scheduler::enabled(&settings) {
        let (task, handle) =
            crate::sync::scheduler::spawn(store.clone(), Arc::new(settings.clone()))?;
        (Some(task), Some(handle))
    } else {
        tracing::warn!(
            "sync is off: serve pushes into AWS only with [sync] enabled = true \
             (SCIMBRIDGE_SYNC__ENABLED=true); `scimbridge sync` still runs by hand"
        );
        (None, None)
    };
    // Bound before "serving" is said: a port in use must not be announced as served.
    let app = Application::build_with_store(settings, store.clone(), handle.clone()).await?;
    tracing::info!(listen = %listen, database = store.backend(), "scimbridge serving SCIM at /scim/v2");
    if let Some(metrics) = &metrics_listen {
        tracing::info!(metrics_listen = %metrics, "/metrics, /livez and /readyz on their own address");
    }
    let server = app.handle();
    let mut serving = tokio::spawn(app.run_until_stopped());
    tokio::select! {
        served = &mut serving => return served?.map(|()| 0).map_err(Into::into),
        () = shutdown_signal() => tracing::info!("shutting down"),
    }
    // A running sync stops before its next AWS call, recorded; then requests drain.
    if let (Some(task), Some(handle)) = (scheduler, handle) {
        handle.shut_down();
        let abort = task.abort_handle();
        if tokio::time::timeout(SYNC_STOP_TIMEOUT, task).await.is_err() {
            tracing::warn!("sync: the running run did not stop in time; abandoning it");
            abort.abort();
        }
    }
    server.stop(true).await;
    serving.await??;
    Ok(0)
}

async fn token(cmd: TokenCommand, settings: &Settings) -> anyhow::Result<i32> {
    if let TokenCommand::Create(TokenCreateArgs { source: Some(name), .. }) = &cmd {
        validate_source_name(name)?;
    }
    let store = open_store(settings).await?;
    match cmd {
        TokenCommand::Create(args) => token_create(&*store, &args).await,
        TokenCommand::List { json } => {
            let mut tokens = store.list_tokens().await?;
            for t in &mut tokens {
                // A mode set in the config file wins over the stored one (as when serving).
                let configured = t.source.as_ref().and_then(|s| settings.sources.get(s));
                if let Some(mode) = configured.and_then(|c| c.compat.clone()) {
                    t.compat = Some(mode);
                }
            }
            if json {
                let rows: Vec<Value> = tokens.iter().map(token_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!("{TOKEN_HEADER}");
                for t in &tokens {
                    println!("{}", token_line(t));
                }
            }
            Ok(0)
        }
        TokenCommand::Revoke { id } => {
            if store.revoke_token(id).await? {
                println!("revoked {id}");
                Ok(0)
            } else {
                eprintln!("no live token with id {id}");
                Ok(1)
            }
        }
    }
}

async fn token_create(store: &dyn Store, args: &TokenCreateArgs) -> anyhow::Result<i32> {
    let source = args.source.as_deref().map(|name| (name, args.compat.as_deref()));
    let (id, secret, source) = create_token(store, source, args.expires_in).await?;
    let who = match &source {
        Some(s) => format!("source {} (compat {})", s.name, s.compat),
        None => "the admin API".to_owned(),
    };
    let expiry =
        args.expires_in.map_or("never expires".to_owned(), |d| format!("expires in {d} days"));
    eprintln!("Created token {id} for {who}; it {expiry}. It is shown only once: store it now.");
    println!("{secret}");
    Ok(0)
}

fn validate_source_name(name: &str) -> anyhow::Result<()> {
    match crate::auth::source_name_problem(name) {
        Some(problem) if name == "admin" => {
            Err(exit::usage(format!("--source: {problem} (use --admin)")))
        }
        Some(problem) => Err(exit::usage(format!("--source: {problem}"))),
        None => Ok(()),
    }
}

/// The header row of `token list` (tab-separated, like the rows, so `cut -f` still works).
const TOKEN_HEADER: &str = "ID\tSOURCE\tCREATED\tEXPIRES\tLAST_USED\tSTATE\tCOMPAT";

/// `live`, `expired` or `revoked`.
fn token_state(t: &TokenInfo) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= store::now()) {
        "expired"
    } else {
        "live"
    }
}

/// The source's mode, with what `auto` detected (`auto:entra`); None for an admin token.
fn token_compat(t: &TokenInfo) -> Option<String> {
    match (t.compat.as_deref(), t.detected_compat.as_deref()) {
        (None, _) => None,
        (Some("auto"), Some(detected)) => Some(format!("auto:{detected}")),
        (Some(mode), _) => Some(mode.to_owned()),
    }
}

/// `id  source  created  expires  last-used  state  compat`, tab-separated; `never` for no
/// expiry or no use, compat `-` for an admin token.
fn token_line(t: &TokenInfo) -> String {
    let opt = |v: &Option<store::Timestamp>, none: &str| {
        v.as_ref().map_or(none.to_owned(), format_timestamp)
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        t.id,
        t.source.as_deref().unwrap_or("admin"),
        format_timestamp(&t.created_at),
        opt(&t.expires_at, "never"),
        opt(&t.last_used_at, "never"),
        token_state(t),
        token_compat(t).as_deref().unwrap_or("-")
    )
}

/// One token of `token list --json`: the columns of the text form, with null for no expiry,
/// no use, no revocation, and an admin token's compat.
fn token_json(t: &TokenInfo) -> Value {
    let opt = |v: &Option<store::Timestamp>| v.as_ref().map(format_timestamp);
    serde_json::json!({
        "id": t.id,
        "source": t.source.as_deref().unwrap_or("admin"),
        "created": format_timestamp(&t.created_at),
        "expires": opt(&t.expires_at),
        "last_used": opt(&t.last_used_at),
        "state": token_state(t),
        "compat": token_compat(t),
        "revoked": opt(&t.revoked_at),
    })
}

/// `scimbridge show user|group NAME`.
async fn show(cmd: ShowCommand, settings: &Settings) -> anyhow::Result<i32> {
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
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_plan_reads_as_a_table() {
        let plan = vec![
            json!({"action": "update", "kind": "User", "name": "ana@example.com", "attributes": ["displayName", "title"]}),
            json!({"action": "delete", "kind": "Group", "name": "Old", "reason": "deleted at the IdP"}),
            json!({"action": "add_member", "group": "Admins", "user": "ana@example.com"}),
            json!({"action": "create_account_assignment", "principal": "Admins", "permission_set": "AdminAccess", "target": "111111111111", "rule": "assignments.account[0]"}),
        ];
        let lines = plan_table(&plan);
        // Columns line up under the header.
        assert!(lines[0].starts_with("ACTION") && lines[0].ends_with("CHANGES"), "{lines:?}");
        assert_eq!(lines[0].find("KIND"), lines[1].find("User"), "{lines:?}");
        assert_eq!(lines[0].find("NAME"), lines[1].find("ana@example.com"), "{lines:?}");
        assert_eq!(lines[0].find("CHANGES"), lines[1].find("displayName, title"), "{lines:?}");
        assert!(lines[2].ends_with("reason deleted at the IdP"), "{lines:?}");
        assert!(lines[3].contains("Membership  ana@example.com in Admins"), "{lines:?}");
        assert!(
            lines[4].contains("Assignment  Admins")
                && lines[4].ends_with(
                    "permission_set AdminAccess; target 111111111111; rule assignments.account[0]"
                ),
            "{lines:?}"
        );
    }
}
