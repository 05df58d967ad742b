//! Health an admin can see (issue 14): `GET /admin/v1/status`, the `scimbridge_sync_healthy`
//! gauge and `scimbridge status` while AWS cannot be reached, once it is back, and while it
//! answers with errors — the real binary serving, moto behind the fault proxy.

use crate::admin::{QUIET, finished_run, root, root_client, sample, start_run, status};
use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient, free_port};
use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::moto::{Moto, SYNCING_ENV, aws_config_section};
use crate::support::{Backend, eventually_ok};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(status_shows_aws_unreachable_failing_and_recovered);

/// How long the scheduler may take to give up on an unreachable AWS (8 attempts with backoff)
/// or to reach it again.
const SETTLE: Duration = Duration::from_secs(120);

/// Polls `/admin/v1/status` until `done` holds; the status then.
async fn status_when(admin: &IdpClient, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually_ok(SETTLE, what, || async {
        let s = status(admin).await;
        if done(&s) { Ok(s) } else { Err(s.to_string()) }
    })
    .await
}

/// `/metrics`, and the `scimbridge_sync_healthy` series in it.
async fn healthy_series(app: &BinaryApp) -> (String, Vec<String>) {
    let text = reqwest::get(format!("{}/metrics", root(app)))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics");
    let series =
        text.lines().filter(|l| l.starts_with("scimbridge_sync_healthy")).map(str::to_owned);
    let series = series.collect();
    (text, series)
}

/// `scimbridge status --json` with the server's config and database: the object.
fn cli_status(app: &BinaryApp) -> Value {
    let out = app.cli(&["status", "--json"], SYNCING_ENV);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The CLI and the API say the same (a retry of the scheduler may fall between the two reads
/// and move the error's time: then both are read again).
async fn cli_matches_api(app: &BinaryApp, admin: &IdpClient) -> Value {
    let mut last = (Value::Null, Value::Null);
    for _ in 0..5 {
        let api = status(admin).await;
        let cli = cli_status(app);
        if api == cli {
            return cli;
        }
        last = (api, cli);
    }
    panic!("scimbridge status --json differs from /admin/v1/status:\n{}\n{}", last.0, last.1);
}

async fn status_shows_aws_unreachable_failing_and_recovered(b: Backend) {
    let moto = Moto::start().await;
    // Nothing answers at this endpoint until the proxy starts on it.
    let port = free_port();
    let config = format!("{}{QUIET}", aws_config_section(&format!("http://127.0.0.1:{port}"), 500));
    let app = BinaryApp::start_with_env(b, &config, SYNCING_ENV).await;
    let admin = root_client(&app, app.admin_token());

    let s = status_when(&admin, "unreachable", |s| s["sync"]["state"] == "unreachable").await;
    let sync = &s["sync"];
    assert_eq!((&sync["healthy"], &sync["reason"]), (&json!(false), &json!("unreachable")), "{s}");
    let error = &sync["last_error"];
    assert_eq!(error["kind"], "unreachable", "{s}");
    // The instance discovery is the first call; no run could start, so none is named.
    let message = error["message"].as_str().expect("the error's message");
    assert!(message.contains("ListInstances") && message.contains("not reachable"), "{s}");
    assert!(error["run_id"].is_null(), "{s}");
    let at = chrono::DateTime::parse_from_rfc3339(error["at"].as_str().expect("the error's time"))
        .expect("an RFC 3339 time");
    let age = chrono::Utc::now().signed_duration_since(at);
    assert!(age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::minutes(5), "{s}");
    assert!(s["last_run"].is_null(), "{s}");
    assert!(sync["identity_store"].is_null(), "never reached: {s}");
    // QUIET's schedule: midnight on 1 January.
    assert!(
        sync["next_run"].as_str().is_some_and(|t| t.ends_with("-01-01T00:00:00.000000Z")),
        "{s}"
    );
    assert_eq!((&sync["paused"], &sync["pending_approvals"]), (&json!(null), &json!([])), "{s}");
    let (text, series) = healthy_series(&app).await;
    assert_eq!(series, ["scimbridge_sync_healthy{reason=\"unreachable\"} 0"], "{text}");
    let cli = cli_matches_api(&app, &admin).await;
    assert_eq!(cli["sync"]["state"], "unreachable", "{cli}");
    let out = app.cli(&["status"], SYNCING_ENV);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("sync:              unreachable (not healthy: unreachable"),
        "{stdout}"
    );
    assert!(stdout.contains("not reachable"), "the error: {stdout}");

    // AWS is back: the scheduler reaches it, its start-up run succeeds, the error is gone.
    let proxy = FaultProxy::start_on(port, &moto.endpoint, Faults::default()).await;
    let s = status_when(&admin, "idle after a start-up run", |s| {
        s["sync"]["state"] == "idle" && s["last_run"]["status"] == "succeeded"
    })
    .await;
    let sync = &s["sync"];
    assert_eq!((&sync["healthy"], &sync["reason"]), (&json!(true), &json!("ok")), "{s}");
    assert!(sync["last_error"].is_null(), "{s}");
    assert_eq!(s["last_run"]["trigger"], "startup", "{s}");
    let store = &sync["identity_store"];
    assert_eq!(store["id"], moto.identity_store_id.as_str(), "{s}");
    assert_eq!(store["instance_arn"], moto.instance_arn.as_str(), "{s}");
    assert_eq!(store["region"], "us-east-1", "{s}");
    let fingerprint = sync["rules_fingerprint"].as_str().expect("the rules' fingerprint");
    assert_eq!(s["last_run"]["rules_fingerprint"], fingerprint, "{s}");
    let (text, series) = healthy_series(&app).await;
    assert_eq!(series, ["scimbridge_sync_healthy{reason=\"ok\"} 1"], "no stale series: {text}");
    assert_eq!(sample(&text, "scimbridge_sync_healthy", &[]), Some(1.0), "{text}");
    assert_eq!(cli_matches_api(&app, &admin).await["sync"]["state"], "idle");

    // AWS answers, with errors: failing, naming the run.
    let denied = json!({"__type": "AccessDeniedException", "Message": "not authorized"});
    proxy.set(Faults { answer: Some(("ListUsers", denied)), ..Faults::default() });
    let failed_id = start_run(&admin, "", Some(&json!({"full": true}))).await;
    assert_eq!(finished_run(&admin, &failed_id).await["status"], "failed");
    let s = status(&admin).await;
    let sync = &s["sync"];
    assert_eq!((&sync["state"], &sync["reason"]), (&json!("failing"), &json!("failing")), "{s}");
    assert_eq!(sync["last_error"]["kind"], "failing", "{s}");
    assert_eq!(sync["last_error"]["run_id"], failed_id.as_str(), "{s}");
    assert!(sync["last_error"]["message"].as_str().is_some_and(|m| m.contains("access denied")));
    let (text, series) = healthy_series(&app).await;
    assert_eq!(series, ["scimbridge_sync_healthy{reason=\"failing\"} 0"], "{text}");

    // A later run that succeeds clears it.
    proxy.set(Faults::default());
    let run_id = start_run(&admin, "", Some(&json!({"full": true}))).await;
    assert_eq!(finished_run(&admin, &run_id).await["status"], "succeeded");
    let s = status(&admin).await;
    assert_eq!(s["sync"]["state"], "idle", "{s}");
    assert!(s["sync"]["last_error"].is_null(), "{s}");
    let (text, series) = healthy_series(&app).await;
    assert_eq!(series, ["scimbridge_sync_healthy{reason=\"ok\"} 1"], "{text}");
}
