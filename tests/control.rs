//! Sync control (issue 14), end to end through the real binary: `scimbridge sync pause` /
//! `resume` and the admin API's, obeyed by every replica and kept across restarts; and
//! `[sync] approve_destructive`, where a run holds deletes and removals (the rest of its plan
//! goes through) until `scimbridge sync approve RUN_ID` lets exactly those go.

use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient, cli_with_config as scimbridge, command};
use crate::support::moto::{Moto, SYNCING_ENV};
use crate::support::{Backend, Reply, eventually, patch_op, spawn_app, user};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

on_both_backends!(
    cli_sync_is_refused_while_paused_and_a_dry_run_still_works,
    approval_holds_deletes_while_creates_go_through,
    approvals_through_the_admin_api,
    assignment_deletes_wait_for_approval,
);

/// A JSON report on stdout (`sync --json`, `sync approve --json`).
fn report(out: &(i32, String, String)) -> Value {
    serde_json::from_str(out.1.trim())
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {}\nstderr: {}", out.1, out.2))
}

fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key].as_u64().unwrap_or(0)
}

async fn cli_sync_is_refused_while_paused_and_a_dry_run_still_works(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let config = moto.config();
    app.create_user("waiting@example.com").await;
    let cli = |args: &[&str]| scimbridge(&app.url, &config, args);

    let (code, stdout, stderr) = cli(&["sync", "pause", "--reason", "IdP migration"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("sync is paused") && stdout.contains("IdP migration"), "{stdout}");
    // A second pause keeps the first and says so.
    let (code, stdout, _) = cli(&["sync", "pause", "--reason", "something else"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("already") && stdout.contains("IdP migration"), "{stdout}");
    assert!(!stdout.contains("something else"), "{stdout}");

    // A real run is refused, naming the pause; nothing reaches AWS.
    let (code, stdout, stderr) = cli(&["sync", "--json"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("sync is paused") && stderr.contains("IdP migration"), "{stderr}");
    assert!(stderr.contains("sync resume"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(moto.users().await.is_empty());
    // A dry run changes nothing, so it runs, and shows what the real run will do.
    let out = cli(&["sync", "--json", "--dry-run"]);
    assert_eq!(out.0, 0, "{}", out.2);
    assert!(out.2.contains("sync is paused"), "{}", out.2);
    assert_eq!(report(&out)["plan"][0]["action"], "create");
    assert!(moto.users().await.is_empty());

    // Careless input: run flags with a subcommand, an unbounded or multi-line reason.
    let (code, _, stderr) = cli(&["sync", "--dry-run", "resume"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = cli(&["sync", "pause", "--reason", &"x".repeat(501)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("500"), "{stderr}");
    let (code, _, stderr) = cli(&["sync", "pause", "--reason", "two\nlines"]);
    assert_eq!(code, 2, "{stderr}");

    let (code, stdout, _) = cli(&["sync", "resume"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("sync resumed"), "{stdout}");
    let (code, stdout, _) = cli(&["sync", "resume"]);
    assert_eq!((code, stdout.trim()), (0, "sync was not paused"));
    let out = cli(&["sync", "--json"]);
    assert_eq!(out.0, 0, "{}", out.2);
    assert!(moto.users().await.contains_key("waiting@example.com"));

    // Each pause and resume is audited, with who did it.
    let (_, audit, _) = cli(&["audit", "--json"]);
    let audit: Value = serde_json::from_str(&audit).expect("audit JSON");
    let control: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "Sync")
        .map(|e| (e["action"].as_str().unwrap(), e["detail"]["by"].as_str().unwrap()))
        .collect();
    assert_eq!(control, [("pause", "cli"), ("resume", "cli")], "{audit}");
}

async fn approval_holds_deletes_while_creates_go_through(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let config = format!("{}[sync]\napprove_destructive = true\n", moto.config());
    let cli = |args: &[&str]| scimbridge(&app.url, &config, args);
    let a = app.create_user("a@example.com").await;
    let bee = app.create_user("b@example.com").await;
    let c = app.create_user("c@example.com").await;
    let e = app.create_user("e@example.com").await;
    let team = app.create_group("Team", &[&a, &bee]).await;
    let first = report(&cli(&["sync", "--json"]));
    assert_eq!(count(&first, "create_user"), 4, "{first}");
    assert!(first.get("held").is_none() && first.get("approval").is_none(), "{first}");
    let team_aws = moto.groups().await["Team"].clone();

    // c deleted and b taken out of Team at the IdP; d is new.
    app.delete(&format!("/Users/{c}")).await;
    let remove_b = json!([{"op": "remove", "path": format!("members[value eq \"{bee}\"]")}]);
    let r = app.patch(&format!("/Groups/{team}"), &patch_op(remove_b)).await;
    assert!(r.status.is_success(), "{}", r.body);
    app.create_user("d@example.com").await;

    let out = cli(&["sync", "--json"]);
    assert_eq!(out.0, 0, "holding is not a failure: {}", out.2);
    let held_run = report(&out);
    let run_id = held_run["run_id"].as_str().unwrap().to_owned();
    assert_eq!(count(&held_run, "create_user"), 1, "{held_run}");
    assert_eq!(count(&held_run, "delete_user"), 0, "{held_run}");
    assert_eq!(count(&held_run, "held_delete_user"), 1, "{held_run}");
    assert_eq!(count(&held_run, "held_remove_membership"), 1, "{held_run}");
    let held: Vec<(&str, &str)> = held_run["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let name = h["name"].as_str().or_else(|| h["user"].as_str()).unwrap();
            (h["action"].as_str().unwrap(), name)
        })
        .collect();
    assert_eq!(held, [("delete", "c@example.com"), ("remove_member", "b@example.com")]);
    assert_eq!(held_run["approval"]["run_id"], run_id.as_str());
    assert_eq!(held_run["approval"]["status"], "pending");
    // In AWS: the create went through, the delete and the removal did not.
    let users = moto.users().await;
    assert!(users.contains_key("d@example.com") && users.contains_key("c@example.com"));
    assert_eq!(moto.members(&team_aws).await.len(), 2);

    // A run that holds the same actions keeps the approval it waits for.
    let again = report(&cli(&["sync", "--json"]));
    assert_eq!(again["approval"]["run_id"], run_id.as_str(), "{again}");

    // Approving what cannot be approved fails cleanly (exit 2) and changes nothing.
    let unknown = uuid::Uuid::now_v7().to_string();
    let (code, _, stderr) = cli(&["sync", "approve", &unknown]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no sync run"), "{stderr}");
    let (code, _, stderr) = cli(&["sync", "approve", "not-a-run-id"]);
    assert_eq!(code, 2, "{stderr}");
    let first_id = first["run_id"].as_str().unwrap();
    let (code, _, stderr) = cli(&["sync", "approve", first_id]);
    assert_eq!(code, 2);
    assert!(stderr.contains("held nothing"), "{stderr}");
    let (code, _, stderr) = cli(&["sync", "approve", again["run_id"].as_str().unwrap()]);
    assert_eq!(code, 2, "the later run held nothing of its own: {stderr}");
    assert!(moto.users().await.contains_key("c@example.com"));

    // e is deleted after the approval was asked for: approving the run lets c and b go, and
    // never e, which is held again under the approval run.
    app.delete(&format!("/Users/{e}")).await;
    let out = cli(&["sync", "approve", &run_id, "--json"]);
    assert_eq!(out.0, 0, "{}", out.2);
    let approval = report(&out);
    assert_eq!(approval["trigger"], "approval");
    assert_eq!(count(&approval, "delete_user"), 1, "{approval}");
    assert_eq!(count(&approval, "remove_membership"), 1, "{approval}");
    assert_eq!(count(&approval, "held_delete_user"), 1, "{approval}");
    assert_eq!(approval["applied_approvals"], json!([run_id]));
    assert_eq!(approval["approval"]["run_id"], approval["run_id"]);
    let users = moto.users().await;
    assert!(!users.contains_key("c@example.com"), "{users:?}");
    assert!(users.contains_key("e@example.com"), "e was not approved: {users:?}");
    let team_members = moto.members(&team_aws).await;
    assert_eq!(team_members.len(), 1, "{team_members:?}");

    // Approved once: approving it again is refused.
    let (code, _, stderr) = cli(&["sync", "approve", &run_id]);
    assert_eq!(code, 2);
    assert!(stderr.contains("applied by run"), "{stderr}");

    // A newer run holding another set supersedes the pending approval.
    let e_hold = approval["run_id"].as_str().unwrap().to_owned();
    let f = app.create_user("f@example.com").await;
    report(&cli(&["sync", "--json"]));
    app.delete(&format!("/Users/{f}")).await;
    let newer = report(&cli(&["sync", "--json"]));
    assert_eq!(count(&newer, "held_delete_user"), 2, "{newer}");
    assert_eq!(newer["approval"]["run_id"], newer["run_id"]);
    let (code, _, stderr) = cli(&["sync", "approve", &e_hold]);
    assert_eq!(code, 2);
    assert!(stderr.contains("superseded by run"), "{stderr}");

    // The delete guard still judges what an approval lets go: 2 of 6 managed is over 10%
    // once the guard is on (min_principals_for_guard = 1).
    let guarded = format!("{config}min_principals_for_guard = 1\n");
    let newer_id = newer["run_id"].as_str().unwrap();
    let out = scimbridge(&app.url, &guarded, &["sync", "approve", newer_id, "--json"]);
    assert_eq!(out.0, 3, "{}", out.2);
    assert_eq!(report(&out)["status"], "refused");
    assert!(moto.users().await.contains_key("e@example.com"));
    // The approval stands; a forced run applies it.
    let out = scimbridge(&app.url, &guarded, &["sync", "--json", "--force"]);
    assert_eq!(out.0, 0, "{}", out.2);
    let users = moto.users().await;
    assert!(!users.contains_key("e@example.com") && !users.contains_key("f@example.com"));
    assert!(report(&out).get("approval").is_none(), "nothing left to hold");

    // The audit log names the approvals.
    let (_, audit, _) = cli(&["audit", "--json"]);
    let approvals = serde_json::from_str::<Value>(&audit)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "approve")
        .count();
    assert_eq!(approvals, 2, "{audit}");
}

/// The admin API's side: who may approve, bad ids, the pending approval in `/status`, and an
/// approval recorded while the server does not sync, applied by the next run.
async fn approvals_through_the_admin_api(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    let config = format!("{}[sync]\napprove_destructive = true\n", moto.config());
    let cli = |args: &[&str]| scimbridge(&app.url, &config, args);
    let gone = app.create_user("gone@example.com").await;
    let first = report(&cli(&["sync", "--json"]));
    app.delete(&format!("/Users/{gone}")).await;
    let held = report(&cli(&["sync", "--json"]));
    let run_id = held["run_id"].as_str().unwrap().to_owned();

    let root = app.base.strip_suffix("/scim/v2").unwrap().to_owned();
    let (_, admin, _) =
        scimbridge::auth::create_token(&*app.store, None, None).await.expect("admin token");
    let post = |token: String, path: String, body: Option<Value>| {
        let (app, url) = (&app, format!("{root}/admin/v1{path}"));
        async move { app.request_as(&token, Method::POST, &url, body.as_ref(), &[]).await }
    };
    let approve = |token: String, id: &str| post(token, format!("/sync/runs/{id}/approve"), None);

    // A source token cannot approve, pause or resume.
    for path in
        [format!("/sync/runs/{run_id}/approve"), "/sync/pause".into(), "/sync/resume".into()]
    {
        let r = post(app.token.clone(), path.clone(), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
    }
    let r = approve(admin.clone(), "not-a-uuid").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = approve(admin.clone(), &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = approve(admin.clone(), first["run_id"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("held nothing"), "{}", r.body);
    let r =
        post(admin.clone(), format!("/sync/runs/{run_id}/approve"), Some(json!({"forse": true})))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown fields are refused: {}", r.body);

    // /status lists the pending approval with what it holds.
    let status =
        app.request_as(&admin, Method::GET, &format!("{root}/admin/v1/status"), None, &[]).await;
    let pending = &status.body["sync"]["pending_approvals"];
    assert_eq!(pending[0]["run_id"], run_id.as_str(), "{}", status.body);
    assert_eq!(pending[0]["status"], "pending");
    assert_eq!(pending[0]["held"]["delete_user"], 1, "{}", status.body);
    assert_eq!(status.body["sync"]["paused"], Value::Null);

    // This server does not sync: the approval is recorded and the next run applies it.
    let r = approve(admin.clone(), &run_id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["run_id"], Value::Null);
    assert!(r.body["note"].as_str().unwrap().contains("sync is off"), "{}", r.body);
    let r = approve(admin.clone(), &run_id).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let run = app
        .request_as(&admin, Method::GET, &format!("{root}/admin/v1/sync/runs/{run_id}"), None, &[])
        .await;
    assert_eq!(run.body["approval"]["status"], "approved", "{}", run.body);
    assert!(run.body["approval"]["approved_by"].as_str().unwrap().starts_with("admin:"));
    assert!(moto.users().await.contains_key("gone@example.com"));
    let next = report(&cli(&["sync", "--json"]));
    assert_eq!(count(&next, "delete_user"), 1, "{next}");
    assert!(moto.users().await.is_empty());
    let status =
        app.request_as(&admin, Method::GET, &format!("{root}/admin/v1/status"), None, &[]).await;
    assert_eq!(status.body["sync"]["pending_approvals"], json!([]), "{}", status.body);
}

/// An assignment no rule wants any more is held like a delete; the new one goes through.
async fn assignment_deletes_wait_for_approval(b: Backend) {
    let (app, moto) = (spawn_app(b).await, Moto::start().await);
    app.create_group("Ops", &[]).await;
    let view_only = moto.create_permission_set("ViewOnly").await;
    let rule = |accounts: &str| {
        format!(
            "{}[sync]\napprove_destructive = true\n\n[[assignments.account]]\ngroup = \"Ops\"\n\
             permission_set = \"ViewOnly\"\naccounts = {accounts}\n",
            moto.config()
        )
    };
    let before = rule(r#"["111111111111", "222222222222"]"#);
    let out = scimbridge(&app.url, &before, &["sync", "--json"]);
    assert_eq!(count(&report(&out), "create_account_assignment"), 2, "{}", out.1);

    // The rule moves from account 2… to 3…: the create goes, the delete is held.
    let after = rule(r#"["111111111111", "333333333333"]"#);
    let out = scimbridge(&app.url, &after, &["sync", "--json"]);
    let held = report(&out);
    assert_eq!(out.0, 0, "{}", out.2);
    assert_eq!(count(&held, "create_account_assignment"), 1, "{held}");
    assert_eq!(count(&held, "held_delete_account_assignment"), 1, "{held}");
    assert_eq!(held["held"][0]["action"], "delete_account_assignment", "{held}");
    assert_eq!(held["held"][0]["target"], "222222222222", "{held}");
    assert_eq!(moto.account_assignments("222222222222", &view_only).await.len(), 1);
    assert_eq!(moto.account_assignments("333333333333", &view_only).await.len(), 1);

    let out = scimbridge(
        &app.url,
        &after,
        &["sync", "approve", held["run_id"].as_str().unwrap(), "--json"],
    );
    assert_eq!(out.0, 0, "{}", out.2);
    assert_eq!(count(&report(&out), "delete_account_assignment"), 1, "{}", out.1);
    assert!(moto.account_assignments("222222222222", &view_only).await.is_empty());
    assert_eq!(moto.account_assignments("111111111111", &view_only).await.len(), 1);
}

/// No scheduled run during the test; changes are pushed a second after the IdP pauses.
const REPLICA_CONFIG: &str = "[sync]\nschedule = \"0 0 0 1 1 *\"\ndebounce_seconds = 1\n";

fn admin_client(app: &BinaryApp, token: &str) -> IdpClient {
    let root = app.base.strip_suffix("/scim/v2").unwrap();
    IdpClient::new(root, token.to_owned(), None, "application/json", None)
}

/// `scimbridge_sync_paused` in a `/metrics` body.
fn paused_gauge(metrics: &Value) -> Option<f64> {
    metrics
        .as_str()?
        .lines()
        .find_map(|l| l.strip_prefix("scimbridge_sync_paused ").and_then(|v| v.trim().parse().ok()))
}

/// Waits `for_at_least` and asserts the user never reached AWS meanwhile.
async fn stays_out_of_aws(moto: &Moto, name: &str, for_at_least: Duration) {
    let started = Instant::now();
    while started.elapsed() < for_at_least {
        assert!(!moto.users().await.contains_key(name), "{name} reached AWS while paused");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn reaches_aws(moto: &Moto, name: &str) {
    eventually(Duration::from_secs(30), &format!("{name} reaching AWS"), || async {
        moto.users().await.contains_key(name)
    })
    .await;
}

/// Two replicas on one PostgreSQL database: a pause through one holds the other's scheduler,
/// `/status` and `/metrics` show it, a restarted replica keeps it, and after the resume what
/// changed meanwhile goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_for_every_replica_and_survives_a_restart() {
    let moto = Moto::start().await;
    let config = format!("{}{REPLICA_CONFIG}", moto.config());
    let a = BinaryApp::start_with_env(Backend::Postgres, &config, SYNCING_ENV).await;
    let mut b = a.replica(&config, SYNCING_ENV).await;
    let token = a.admin_token();
    let (admin_a, admin_b) = (admin_client(&a, &token), admin_client(&b, &token));

    // Careless and hostile bodies change nothing.
    for body in [json!({"reason": 7}), json!({"why": "x"}), json!({"reason": "x".repeat(501)})] {
        let r = admin_a.post("/admin/v1/sync/pause", &body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    let r: Reply = admin_a.get("/admin/v1/status").await;
    assert_eq!(r.body["sync"]["paused"], Value::Null, "{}", r.body);

    let r = admin_a.post("/admin/v1/sync/pause", &json!({"reason": "IdP cut-over"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["already_paused"], false);
    let by = r.body["paused"]["by"].as_str().unwrap().to_owned();
    assert!(by.starts_with("admin:"), "{by}");
    let r = admin_b.post("/admin/v1/sync/pause", &json!({"reason": "other"})).await;
    assert_eq!(r.body["already_paused"], true, "{}", r.body);
    assert_eq!(r.body["paused"]["reason"], "IdP cut-over", "the first pause stays");

    // Replica B knows: /status, POST /sync (409; a dry run is still accepted), /metrics.
    let status = admin_b.get("/admin/v1/status").await.body;
    assert_eq!(status["sync"]["paused"]["reason"], "IdP cut-over", "{status}");
    assert_eq!(status["sync"]["paused"]["by"], by.as_str());
    assert_eq!(
        (&status["sync"]["state"], &status["sync"]["reason"]),
        (&json!("paused"), &json!("paused"))
    );
    let r = admin_b.post("/admin/v1/sync", &json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("IdP cut-over"), "{}", r.body);
    let r = admin_b.post("/admin/v1/sync", &json!({"dry_run": true})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let metrics = admin_b.get("/metrics").await.body;
    assert_eq!(paused_gauge(&metrics), Some(1.0), "{metrics}");
    assert!(
        metrics
            .as_str()
            .unwrap_or_default()
            .contains("scimbridge_sync_healthy{reason=\"paused\"} 0"),
        "{metrics}"
    );

    // A SCIM change on B does not reach AWS while paused.
    let idp = IdpClient::new(&b.base, a.token("okta", None), None, "application/scim+json", None);
    let r = idp.post("/Users", &user("during@example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    stays_out_of_aws(&moto, "during@example.com", Duration::from_secs(5)).await;

    // Restarted, a replica still obeys the pause (its start-up run waits too).
    assert!(b.terminate(Duration::from_secs(30)).is_some(), "replica B did not stop");
    let c = a.replica(&config, SYNCING_ENV).await;
    stays_out_of_aws(&moto, "during@example.com", Duration::from_secs(4)).await;

    // The CLI resumes for every replica; the change goes out.
    let (code, stdout, stderr) = {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, &config).unwrap();
        let out = command(&a.url)
            .arg("--config")
            .arg(&path)
            .args(["sync", "resume"])
            .output()
            .expect("sync resume");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("sync resumed"), "{stdout}");
    reaches_aws(&moto, "during@example.com").await;
    let admin_c = admin_client(&c, &token);
    assert_eq!(admin_c.get("/admin/v1/status").await.body["sync"]["paused"], Value::Null);
    let metrics = admin_c.get("/metrics").await.body;
    assert_eq!(paused_gauge(&metrics), Some(0.0), "{metrics}");
    let audit = admin_c.get("/admin/v1/audit").await.body;
    let control: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "Sync")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(control, ["pause", "resume"], "one pause recorded, not the repeated one: {audit}");
    drop(b);
}
