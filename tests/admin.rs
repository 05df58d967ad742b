//! The admin API (`/admin/v1`: sync runs, status, audit log), `scimbridge audit` and `/metrics`,
//! end to end: the real binary serves a fresh database and syncs into the moto emulator; an
//! admin token (`scimbridge token create --admin`) drives the runs, a source token writes
//! through SCIM, and what the API reports is checked against what AWS holds.
//!
//! The server syncs by itself too: a full run at start-up (waited for before anything else),
//! on `sync.schedule` and `debounce_seconds` after a SCIM change. The config here puts both of
//! the latter out of reach (1 January, an hour of quiet), so the only runs are the start-up
//! run and the test's own.

use crate::on_both_backends;
use crate::support::binary::{BinaryApp, IdpClient, command};
use crate::support::moto::{Moto, SYNCING_ENV, writes};
use crate::support::{Backend, Reply, eventually_ok, group, user};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    admin_sync_runs_and_reports,
    status_and_audit,
    admin_auth,
    sync_off_without_a_region,
    an_ambient_aws_region_does_not_start_sync,
    metrics_report_runs_and_calls,
);

/// No scheduled run during a test (at midnight on 1 January, UTC) and no change-triggered one
/// (a change waits an hour of quiet).
pub(crate) const QUIET: &str = "[sync]\nschedule = \"0 0 0 1 1 *\"\ndebounce_seconds = 3600\n";

/// How long a run (or the start-up run) may take against the emulator.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// `http://127.0.0.1:PORT`: the server's root (the admin API and `/metrics` live there).
pub(crate) fn root(app: &BinaryApp) -> String {
    app.base.strip_suffix("/scim/v2").expect("the SCIM base ends in /scim/v2").to_owned()
}

/// A client at the server's root with this bearer token (paths are `/admin/v1/...`).
pub(crate) fn root_client(app: &BinaryApp, token: String) -> IdpClient {
    IdpClient::new(&root(app), token, None, "application/json", None)
}

/// A request without an Authorization header.
async fn anonymous(url: &str) -> Reply {
    let resp = reqwest::get(url).await.expect("request");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str::<Value>(&text).unwrap_or_else(|_| Value::String(text.clone()));
    Reply { status, headers, body }
}

/// The emulator, `scimbridge serve` syncing into it (see [`QUIET`]), a SCIM client of source
/// `okta` and an admin client; returns once the server's start-up run has ended.
async fn serve_with_sync(b: Backend) -> (Moto, BinaryApp, IdpClient, IdpClient) {
    let moto = Moto::start().await;
    let config = format!("{}{QUIET}", moto.config());
    let app = BinaryApp::start_with_env(b, &config, SYNCING_ENV).await;
    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    let admin = root_client(&app, app.admin_token());
    startup_run_done(&admin).await;
    (moto, app, idp, admin)
}

/// Waits for the full run the server makes at start-up: the last run is there and has ended
/// (on an empty database, with nothing to do).
pub(crate) async fn startup_run_done(admin: &IdpClient) {
    let last = eventually_ok(RUN_TIMEOUT, "the start-up run ending", || async {
        let r = admin.get("/admin/v1/status").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let last = &r.body["last_run"];
        if last.is_object() && last["status"] != "running" {
            Ok(last.clone())
        } else {
            Err(r.body.to_string())
        }
    })
    .await;
    assert_eq!(last["trigger"], "startup", "{last}");
    assert_eq!(last["status"], "succeeded", "{last}");
    assert_eq!(last["full"], true, "the start-up run re-reads AWS: {last}");
}

/// `POST /admin/v1/sync{query}` with this body → 202: the run id.
pub(crate) async fn start_run(admin: &IdpClient, query: &str, body: Option<&Value>) -> String {
    let r = admin.send(Method::POST, &format!("/admin/v1/sync{query}"), body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    r.body["run_id"].as_str().expect("a run_id").to_owned()
}

/// Polls the run until it is no longer `running`; returns it.
pub(crate) async fn finished_run(admin: &IdpClient, run_id: &str) -> Value {
    eventually_ok(RUN_TIMEOUT, &format!("run {run_id} ending"), || async {
        let r = admin.get(&format!("/admin/v1/sync/runs/{run_id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["status"] != "running" { Ok(r.body) } else { Err(r.body.to_string()) }
    })
    .await
}

/// `GET /admin/v1/status` → 200: the body.
pub(crate) async fn status(admin: &IdpClient) -> Value {
    let r = admin.get("/admin/v1/status").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// The runs `GET /admin/v1/sync/runs{query}` lists, as run ids (newest first).
async fn run_ids(admin: &IdpClient, query: &str) -> Vec<String> {
    let r = admin.get(&format!("/admin/v1/sync/runs{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["runs"]
        .as_array()
        .expect("a runs array")
        .iter()
        .map(|run| run["run_id"].as_str().expect("run_id").to_owned())
        .collect()
}

/// The entries `GET /admin/v1/audit{query}` lists.
async fn audit(admin: &IdpClient, query: &str) -> Vec<Value> {
    let r = admin.get(&format!("/admin/v1/audit{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["entries"].as_array().expect("an entries array").clone()
}

async fn create_user(idp: &IdpClient, user_name: &str) -> String {
    let r = idp.post("/Users", &user(user_name)).await;
    assert_eq!(r.status, StatusCode::CREATED, "create user {user_name}: {}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

async fn create_group(idp: &IdpClient, name: &str, members: &[&str]) -> String {
    let r = idp.post("/Groups", &group(name, members)).await;
    assert_eq!(r.status, StatusCode::CREATED, "create group {name}: {}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
}

fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key].as_u64().unwrap_or(0)
}

fn pending(status: &Value) -> i64 {
    status["pending_journal_entries"].as_i64().expect("pending_journal_entries")
}

async fn admin_sync_runs_and_reports(b: Backend) {
    let (moto, _app, idp, admin) = serve_with_sync(b).await;
    let startup = run_ids(&admin, "").await;
    assert_eq!(startup.len(), 1, "only the start-up run so far: {startup:?}");
    let alice = create_user(&idp, "alice@example.com").await;
    let bob = create_user(&idp, "bob@example.com").await;
    create_group(&idp, "AWS - Admins", &[&alice, &bob]).await;

    let run_id = start_run(&admin, "", None).await;
    // Recorded when asked for: it can be looked up at once, whether it has run yet or not.
    let r = admin.get(&format!("/admin/v1/sync/runs/{run_id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["run_id"], run_id.as_str(), "{}", r.body);
    assert_eq!(r.body["trigger"], "admin", "{}", r.body);
    assert!(r.body["started_at"].is_string(), "{}", r.body);
    if r.body["status"] == "running" {
        assert!(r.body["finished_at"].is_null(), "{}", r.body);
    }

    let run = finished_run(&admin, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["run_id"], run_id.as_str(), "{run}");
    assert_eq!(run["trigger"], "admin", "{run}");
    assert_eq!((run["dry_run"].clone(), run["full"].clone()), (json!(false), json!(false)));
    assert_eq!(count(&run, "create_user"), 2, "{run}");
    assert_eq!(count(&run, "create_group"), 1, "{run}");
    assert_eq!(count(&run, "add_membership"), 2, "{run}");
    assert_eq!(run["aws_calls"]["CreateUser"], 2, "{run}");
    assert_eq!(run["throttles"], 0, "{run}");
    assert_eq!(run["errors"], json!([]), "{run}");
    assert!(run["plan"].is_null(), "a real run lists no plan: {run}");
    let (started_at, finished_at) = (
        run["started_at"].as_str().expect("started_at"),
        run["finished_at"].as_str().expect("a finished run has finished_at"),
    );
    assert!(started_at <= finished_at, "{run}");
    let users = moto.users().await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["alice@example.com", "bob@example.com"]);
    let admins = moto.groups().await.get("AWS - Admins").expect("the group in AWS").clone();
    assert_eq!(moto.members(&admins).await, ["alice@example.com", "bob@example.com"]);

    // Newest first.
    assert_eq!(run_ids(&admin, "").await, [run_id.clone(), startup[0].clone()]);

    // A dry run (asked for in the query string) plans and writes nothing.
    create_user(&idp, "carol@example.com").await;
    let dry_id = start_run(&admin, "?dry_run=true", None).await;
    let dry = finished_run(&admin, &dry_id).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["trigger"], "admin", "{dry}");
    let plan = dry["plan"].as_array().expect("a dry run lists its plan");
    assert_eq!(plan.len(), 1, "{dry}");
    assert_eq!(plan[0]["action"], "create", "{dry}");
    assert_eq!(plan[0]["kind"], "User", "{dry}");
    assert_eq!(plan[0]["name"], "carol@example.com", "{dry}");
    assert_eq!(count(&dry, "create_user"), 1, "what it would do: {dry}");
    assert_eq!(writes(&dry), 0, "{dry}");
    assert!(!moto.users().await.contains_key("carol@example.com"), "the dry run wrote to AWS");

    // Options in a JSON body.
    let full_id = start_run(&admin, "", Some(&json!({"full": true}))).await;
    let full = finished_run(&admin, &full_id).await;
    assert_eq!(full["status"], "succeeded", "{full}");
    assert_eq!((full["full"].clone(), full["dry_run"].clone()), (json!(true), json!(false)));
    assert_eq!(full["counts"], json!({"create_user": 1}), "{full}");
    assert!(full["aws_calls"]["ListUsers"].as_u64().unwrap_or(0) >= 1, "a full run reads: {full}");
    assert!(moto.users().await.contains_key("carol@example.com"));

    // An unknown option is refused, and no run is started for it.
    let r = admin.post("/admin/v1/sync", &json!({"bogus": 1})).await;
    r.assert_error(400, Some("invalidValue"));
    let runs = run_ids(&admin, "").await;
    assert_eq!(runs, [full_id.clone(), dry_id, run_id, startup[0].clone()]);
    assert_eq!(run_ids(&admin, "?limit=1").await, [full_id]);
}

async fn status_and_audit(b: Backend) {
    let (moto, app, idp, admin) = serve_with_sync(b).await;
    let before = status(&admin).await;
    assert_eq!(pending(&before), 0, "{before}");
    let alice = create_user(&idp, "alice@example.com").await;
    let bob = create_user(&idp, "bob@example.com").await;
    create_group(&idp, "Team", &[&alice, &bob]).await;
    let written = status(&admin).await;
    assert!(pending(&written) > 0, "SCIM writes no run has pushed yet: {written}");
    assert_eq!(written["last_run"]["trigger"], "startup", "no run since: {written}");

    let run_id = start_run(&admin, "", None).await;
    assert_eq!(finished_run(&admin, &run_id).await["status"], "succeeded");

    let s = status(&admin).await;
    let database = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(s["database"], database, "{s}");
    let sync = &s["sync"];
    assert_eq!(
        (&sync["enabled"], &sync["schedule"], &sync["debounce_seconds"]),
        (&json!(true), &json!("0 0 0 1 1 *"), &json!(3600)),
        "{s}"
    );
    assert_eq!(
        (&sync["state"], &sync["healthy"], &sync["reason"]),
        (&json!("idle"), &json!(true), &json!("ok")),
        "{s}"
    );
    assert!(
        sync["next_run"].as_str().is_some_and(|t| t.ends_with("-01-01T00:00:00.000000Z")),
        "{s}"
    );
    assert!(sync["last_error"].is_null(), "{s}");
    assert_eq!(sync["identity_store"]["id"], moto.identity_store_id.as_str(), "{s}");
    assert_eq!((&sync["paused"], &sync["pending_approvals"]), (&json!(null), &json!([])), "{s}");
    assert_eq!(sync["rules_fingerprint"], s["last_run"]["rules_fingerprint"], "{s}");
    let sources = s["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 1, "{s}");
    assert_eq!(sources[0]["name"], "okta", "{s}");
    assert!(sources[0]["compat"].is_string(), "the source's mode: {s}");
    assert_eq!((sources[0]["users"].clone(), sources[0]["groups"].clone()), (json!(2), json!(1)));
    let (users, groups) = (moto.users().await, moto.groups().await);
    let team = groups.get("Team").expect("Team in AWS").clone();
    let memberships = moto.members(&team).await.len();
    assert_eq!(s["aws"]["users"].as_u64(), Some(users.len() as u64), "{s}");
    assert_eq!(s["aws"]["groups"].as_u64(), Some(groups.len() as u64), "{s}");
    assert_eq!(s["aws"]["memberships"].as_u64(), Some(memberships as u64), "{s}");
    assert_eq!((users.len(), groups.len(), memberships), (2, 1, 2));
    assert_eq!(pending(&s), 0, "the run covered every change: {s}");
    assert_eq!(s["last_run"]["run_id"], run_id.as_str(), "{s}");
    assert_eq!(s["last_run"]["status"], "succeeded", "{s}");

    // The audit log: one row per AWS change of the run, with names and AWS ids, oldest first.
    let entries = audit(&admin, "").await;
    assert_eq!(entries.len(), 5, "2 users, 1 group, 2 memberships: {entries:#?}");
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "oldest first: {seqs:?}");
    for e in &entries {
        assert_eq!(e["run_id"], run_id.as_str(), "{e}");
        assert!(e["at"].is_string(), "{e}");
    }
    let created = |kind: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == "create" && e["kind"] == kind)
            .map(|e| {
                let name = e["name"].as_str().expect("name").to_owned();
                (name, e["aws_id"].as_str().expect("aws_id").to_owned())
            })
            .collect::<std::collections::BTreeMap<String, String>>()
    };
    assert_eq!(created("User"), users, "a create per user, with the id AWS reports");
    assert_eq!(created("Group"), groups, "a create per group, with the id AWS reports");
    let mut added: Vec<&str> = entries
        .iter()
        .filter(|e| e["action"] == "add_member")
        .map(|e| {
            assert_eq!((e["name"].as_str(), e["aws_id"].as_str()), (Some("Team"), Some(&*team)));
            e["detail"]["user"].as_str().expect("the member's userName")
        })
        .collect();
    added.sort();
    assert_eq!(added, ["alice@example.com", "bob@example.com"]);

    assert_eq!(audit(&admin, "?since=24h").await, entries);
    assert_eq!(audit(&admin, "?since=2000-01-01T00:00:00Z").await, entries);
    assert_eq!(audit(&admin, "?since=2999-01-01T00:00:00Z").await, Vec::<Value>::new());
    admin.get("/admin/v1/audit?since=bogus").await.assert_error(400, Some("invalidValue"));
    assert_eq!(audit(&admin, &format!("?after={}", seqs[0])).await, entries[1..]);
    assert_eq!(audit(&admin, "?limit=2").await, entries[..2]);
    assert_eq!(audit(&admin, &format!("?after={}&limit=2", seqs[1])).await, entries[2..4]);

    // The CLI reads the same log from the database.
    let out = command(&app.url).args(["audit", "--json"]).output().expect("run scimbridge audit");
    assert!(out.status.success(), "audit --json: {}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("audit --json printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    });
    assert_eq!(printed, Value::Array(entries.clone()));
    let out = command(&app.url).arg("audit").output().expect("run scimbridge audit");
    assert!(out.status.success(), "audit: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), entries.len(), "one line per entry:\n{text}");
    for (line, e) in lines.iter().zip(&entries) {
        for field in ["at", "action", "kind", "name", "aws_id", "run_id"] {
            let value = e[field].as_str().expect("a string field");
            assert!(line.contains(value), "{line:?} lacks the {field} {value:?}");
        }
    }
    let out = command(&app.url)
        .args(["audit", "--since", "2999-01-01T00:00:00Z"])
        .output()
        .expect("run scimbridge audit");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "nothing that recent");
    let out =
        command(&app.url).args(["audit", "--since", "bogus"]).output().expect("run scimbridge");
    assert_eq!(out.status.code(), Some(2), "a bad --since is a usage error");

    // A new SCIM write is pending until a run pushes it.
    create_user(&idp, "carol@example.com").await;
    let after = status(&admin).await;
    assert!(pending(&after) > 0, "{after}");
    assert_eq!(after["last_run"]["run_id"], run_id.as_str(), "no run since: {after}");
}

async fn admin_auth(b: Backend) {
    let app = BinaryApp::start(b, "").await;
    let status_url = format!("{}/admin/v1/status", root(&app));

    let r = anonymous(&status_url).await;
    r.assert_error(401, None);
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let forged = root_client(&app, "scimbridge_not_a_real_token".to_owned());
    forged.get("/admin/v1/status").await.assert_error(401, None);

    // A source's SCIM token is not an admin token, for any admin endpoint.
    let source = root_client(&app, app.token("okta", None));
    for path in ["/admin/v1/status", "/admin/v1/sync/runs", "/admin/v1/audit"] {
        source.get(path).await.assert_error(403, None);
    }
    source.send(Method::POST, "/admin/v1/sync", None).await.assert_error(403, None);

    let token = app.admin_token();
    let admin = root_client(&app, token.clone());
    let s = status(&admin).await;
    assert!(s["last_run"].is_null(), "no run on a server that does not sync: {s}");
    assert_eq!(run_ids(&admin, "").await, Vec::<String>::new());
    assert_eq!(audit(&admin, "").await, Vec::<Value>::new());
    // ...and an admin token is not a SCIM token.
    let as_idp = IdpClient::new(&app.base, token, None, "application/scim+json", None);
    as_idp.get("/Users").await.assert_error(403, None);

    let unknown = uuid::Uuid::new_v4();
    admin.get(&format!("/admin/v1/sync/runs/{unknown}")).await.assert_error(404, None);
    admin.get("/admin/v1/sync/runs/not-a-run-id").await.assert_error(404, None);
}

async fn sync_off_without_a_region(b: Backend) {
    // No [aws] section, and the binary gets no AWS_REGION.
    let app = BinaryApp::start(b, "").await;
    let admin = root_client(&app, app.admin_token());
    admin.send(Method::POST, "/admin/v1/sync", None).await.assert_error(409, None);
    admin.post("/admin/v1/sync", &json!({"dry_run": true})).await.assert_error(409, None);
    let s = status(&admin).await;
    assert_eq!(s["sync"]["enabled"], false, "{s}");
    assert!(s["last_run"].is_null(), "{s}");
    assert_eq!(run_ids(&admin, "").await, Vec::<String>::new(), "a refused run is not recorded");
}

/// The README quick start with `AWS_REGION` (and credentials, and an endpoint) in the shell:
/// `serve` must not push into that Identity Store unless `[sync] enabled = true`.
async fn an_ambient_aws_region_does_not_start_sync(b: Backend) {
    let moto = Moto::start().await;
    let endpoint = moto.endpoint.clone();
    let mut env: Vec<(&str, &str)> = crate::support::moto::AWS_ENV.to_vec();
    env.push(("AWS_ENDPOINT_URL", &endpoint));
    let app = BinaryApp::start_with_env(b, "[sync]\ndebounce_seconds = 1\n", &env).await;
    let idp =
        IdpClient::new(&app.base, app.token("okta", None), None, "application/scim+json", None);
    create_user(&idp, "colleague@example.com").await;
    // Past the debounce and what a start-up run would take.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(moto.users().await.is_empty(), "nothing pushed into AWS");
    let admin = root_client(&app, app.admin_token());
    let s = status(&admin).await;
    assert_eq!(s["sync"]["enabled"], false, "{s}");
    assert!(s["last_run"].is_null(), "{s}");
    admin.send(Method::POST, "/admin/v1/sync", None).await.assert_error(409, None);
}

/// The sum of the samples of metric `name` whose labels include each of `labels`
/// (`key="value"`); None when there is none.
pub(crate) fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .map(|l| {
            let (_, value) = l.rsplit_once(' ').expect("a sample line ends in its value");
            value.parse::<f64>().unwrap_or_else(|e| panic!("{l:?}: {e}"))
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

async fn metrics_report_runs_and_calls(b: Backend) {
    let (_moto, app, idp, admin) = serve_with_sync(b).await;
    let user_id = create_user(&idp, "metered@example.com").await;
    let r = idp.get(&format!("/Users/{user_id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let run_id = start_run(&admin, "", None).await;
    let run = finished_run(&admin, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    // A dry run is counted apart: it cannot stand in for a real run in an alert.
    let dry_id = start_run(&admin, "", Some(&json!({"dry_run": true}))).await;
    assert_eq!(finished_run(&admin, &dry_id).await["status"], "succeeded");

    // No token: scraped from inside the cluster.
    let resp = reqwest::get(format!("{}/metrics", root(&app))).await.expect("GET /metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = resp.text().await.expect("the metrics");

    let runs = |trigger: &str, dry_run: &str| {
        let trigger = format!("trigger=\"{trigger}\"");
        let dry_run = format!("dry_run=\"{dry_run}\"");
        let labels = [trigger.as_str(), "status=\"succeeded\"", dry_run.as_str()];
        sample(&text, "scimbridge_sync_runs_total", &labels)
    };
    assert_eq!(runs("startup", "false"), Some(1.0), "{text}");
    assert_eq!(runs("admin", "false"), Some(1.0), "the dry run is not counted here: {text}");
    assert_eq!(runs("admin", "true"), Some(1.0), "{text}");
    let create_user_ok = ["operation=\"CreateUser\"", "outcome=\"ok\""];
    assert_eq!(sample(&text, "scimbridge_aws_calls_total", &create_user_ok), Some(1.0), "{text}");
    assert!(
        sample(&text, "scimbridge_aws_calls_total", &["operation=\"ListUsers\"", "outcome=\"ok\""])
            .is_some_and(|n| n >= 1.0),
        "the start-up run lists the users: {text}"
    );
    let created = ["action=\"create_user\""];
    assert_eq!(sample(&text, "scimbridge_sync_changes_total", &created), Some(1.0), "{text}");
    assert_eq!(sample(&text, "scimbridge_sync_pending_journal_entries", &[]), Some(0.0), "{text}");
    // The database pools: at least one open connection, and their limits.
    let pool = if b == Backend::Postgres { "pool=\"postgres\"" } else { "pool=\"readers\"" };
    let max = sample(&text, "scimbridge_db_pool_max_connections", &[pool]);
    assert!(max.is_some_and(|m| m >= 1.0), "{text}");
    let open = sample(&text, "scimbridge_db_pool_connections", &[pool]);
    assert!(open.is_some_and(|n| n >= 1.0), "{text}");
    if b == Backend::Postgres {
        // The HTTP workers' own pools, reported together: the requests above opened some.
        let http = "pool=\"postgres_http\"";
        let open = sample(&text, "scimbridge_db_pool_connections", &[http]);
        assert!(open.is_some_and(|n| n >= 1.0), "{text}");
        let max = sample(&text, "scimbridge_db_pool_max_connections", &[http]);
        assert!(max.is_some_and(|m| m >= 2.0), "one pool per worker: {text}");
    }

    // Requests by route pattern, method, status and source; never a raw id in a label.
    let post = ["route=\"/scim/v2/Users\"", "method=\"POST\"", "status=\"201\"", "source=\"okta\""];
    assert_eq!(sample(&text, "scimbridge_http_requests_total", &post), Some(1.0), "{text}");
    let get = ["route=\"/scim/v2/Users/{id}\"", "method=\"GET\"", "status=\"200\""];
    assert_eq!(sample(&text, "scimbridge_http_requests_total", &get), Some(1.0), "{text}");
    // The run and the dry run.
    let asked = ["route=\"/admin/v1/sync\"", "method=\"POST\"", "status=\"202\""];
    assert_eq!(sample(&text, "scimbridge_http_requests_total", &asked), Some(2.0), "{text}");
    assert!(!text.contains(&user_id), "a user id in the metrics: {text}");
    assert!(!text.contains(&run_id), "a run id in the metrics: {text}");
}
