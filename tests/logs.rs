//! What the real binary logs (issue 14): one access line per request, in text and JSON, with
//! the request's context and never a token or a query string; one line per rejected request
//! without Debug dumps; a sync run's counts as JSON objects; no PostgreSQL notice on start.

use crate::support::binary::{Server, command, free_port};
use crate::support::moto::{AWS_ENV, Moto};
use crate::support::{Backend, TestDatabase, eventually, fresh_database, spawn_app};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// `scimbridge serve` with its stderr in a file, on a migrated database.
struct Logged {
    root: String,
    log: PathBuf,
    _server: Server,
    _dir: tempfile::TempDir,
}

impl Logged {
    async fn serve(url: &str, config_toml: &str, env: &[(&str, &str)]) -> Logged {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("scimbridge.toml");
        std::fs::write(&config, config_toml).expect("config");
        let log = dir.path().join("stderr.log");
        let port = free_port();
        let child = command(url)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn serve");
        let mut server = Server(child);
        let root = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(30), "serve coming up", || {
            assert!(server.0.try_wait().expect("wait").is_none(), "serve exited");
            let ready = reqwest::get(format!("{root}/readyz"));
            async { ready.await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        Logged { root, log, _server: server, _dir: dir }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).expect("read the log")
    }

    /// GET `path` with this token and User-Agent (and other headers); the X-Request-Id answered.
    async fn get(
        &self,
        path: &str,
        token: &str,
        agent: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut req = reqwest::Client::new()
            .get(format!("{}{path}", self.root))
            .bearer_auth(token)
            .header("user-agent", agent);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("request");
        let id = r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), id.unwrap_or_default())
    }
}

/// `scimbridge token create --source okta` on this database: the token.
fn token(url: &str) -> String {
    let out = command(url).args(["token", "create", "--source", "okta"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_owned()
}

async fn migrated(b: Backend) -> (String, TestDatabase) {
    let (url, dir) = fresh_database(b).await;
    let out = command(&url).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (url, dir)
}

const WRONG_TOKEN: &str = "scimbridge_ThisIsNotAValidTokenButLooksLikeOne0000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_access_lines() {
    let (url, _dir) = migrated(Backend::Sqlite).await;
    let token = token(&url);
    let app = Logged::serve(&url, "", &[]).await;
    let created = reqwest::Client::new()
        .post(format!("{}/scim/v2/Users", app.root))
        .bearer_auth(&token)
        .header("content-type", "application/scim+json")
        .body(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let (status, request_id) =
        app.get(&format!("/scim/v2/Users/{id}"), &token, "e2e-idp/1.0", &[]).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .get("/scim/v2/Users?filter=userName%20eq%20%22query-secret%22", &token, "e2e-idp/1.0", &[])
        .await;
    assert_eq!(status, 200);
    // A 401 from a peer that claims to be someone else (it is no trusted proxy).
    let spoof = [("x-forwarded-for", "203.0.113.99")];
    let (status, rejected_id) =
        app.get("/scim/v2/Users", WRONG_TOKEN, "e2e-stranger/2.0", &spoof).await;
    assert_eq!(status, 401);
    assert_eq!(app.get("/livez", "", "kube-probe/1.31", &[]).await.0, 200);

    let logs = app.logs();
    let access: Vec<&str> = logs.lines().filter(|l| l.contains("scimbridge::access")).collect();
    let line = access
        .iter()
        .find(|l| l.contains(&format!("request_id={request_id}")))
        .unwrap_or_else(|| panic!("an access line with the X-Request-Id {request_id}: {logs}"));
    for field in [
        " INFO scimbridge::access: request ",
        "method=GET",
        r#"route="/scim/v2/Users/{id}""#,
        "status=200",
        "latency_ms=",
        r#"source="okta""#,
        r#"user_agent="e2e-idp/1.0""#,
        "client_ip=127.0.0.1",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(!line.contains(&id), "the route pattern, not the path with the id: {line}");
    let rejected: Vec<&&str> = access.iter().filter(|l| l.contains("e2e-stranger")).collect();
    assert_eq!(rejected.len(), 1, "one line for the 401: {logs}");
    let request_id = format!("request_id={rejected_id}");
    for field in ["WARN", "request rejected", "status=401", &request_id, "client_ip=127.0.0.1"] {
        assert!(rejected[0].contains(field), "{field} in {}", rejected[0]);
    }
    assert!(
        logs.lines().filter(|l| l.contains("status=401") || l.contains("invalid token")).count()
            == 1,
        "the 401 is logged once: {logs}"
    );
    for never in [
        token.as_str(),
        WRONG_TOKEN,
        "query-secret",
        "203.0.113.99",
        "ScimError {",
        "ApiError",
        "Unauthorized(",
        "\u{1b}",
    ] {
        assert!(!logs.contains(never), "{never:?} in the log: {logs}");
    }
    assert!(!logs.contains(r#"route="/livez""#), "probes are logged at debug: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_access_lines_and_the_switch() {
    let (url, _dir) = migrated(Backend::Sqlite).await;
    let token = token(&url);
    let json = "[log]\nformat = \"json\"\n";
    let app = Logged::serve(&url, json, &[]).await;
    let (status, request_id) = app.get("/scim/v2/Users", &token, "e2e-idp/1.0", &[]).await;
    assert_eq!(status, 200);
    let (status, rejected_id) =
        app.get("/scim/v2/Users", WRONG_TOKEN, "e2e-stranger/2.0", &[]).await;
    assert_eq!(status, 401);
    let lines = parsed(&app.logs());
    let line = lines
        .iter()
        .find(|l| l["fields"]["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("an access line for {request_id}: {lines:?}"));
    assert_eq!(line["target"], "scimbridge::access");
    assert_eq!(line["level"], "INFO");
    let f = &line["fields"];
    assert_eq!(f["message"], "request");
    assert_eq!(f["method"], "GET");
    assert_eq!(f["route"], "/scim/v2/Users");
    assert_eq!(f["status"], 200);
    assert!(f["latency_ms"].is_number(), "{f}");
    assert_eq!(f["source"], "okta");
    assert_eq!(f["user_agent"], "e2e-idp/1.0");
    assert_eq!(f["client_ip"], "127.0.0.1");
    let rejected: Vec<&Value> =
        lines.iter().filter(|l| l["fields"]["user_agent"] == "e2e-stranger/2.0").collect();
    assert_eq!(rejected.len(), 1, "{lines:?}");
    let f = &rejected[0]["fields"];
    assert_eq!(
        (f["message"].as_str(), f["status"].as_u64()),
        (Some("request rejected"), Some(401))
    );
    assert_eq!(f["detail"], "invalid token");
    assert_eq!(f["request_id"], rejected_id.as_str(), "the 401's X-Request-Id: {f}");
    assert_eq!(rejected_id.len(), 36, "{f}");
    assert_eq!(f["client_ip"], "127.0.0.1");
    assert_eq!(f.get("source"), None, "no source for an unauthenticated request: {f}");
    drop(app);

    // Switched off: successes leave no line, the rejection still does.
    let quiet = Logged::serve(&url, json, &[("SCIMBRIDGE_LOG__ACCESS", "false")]).await;
    assert_eq!(quiet.get("/scim/v2/Users", &token, "e2e-idp/1.0", &[]).await.0, 200);
    assert_eq!(quiet.get("/scim/v2/Users", WRONG_TOKEN, "e2e-stranger/2.0", &[]).await.0, 401);
    let lines = parsed(&quiet.logs());
    let access: Vec<&Value> =
        lines.iter().filter(|l| l["target"] == "scimbridge::access").collect();
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["fields"]["status"], 401);
}

/// Every stderr line is one JSON object.
fn parsed(logs: &str) -> Vec<Value> {
    logs.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_a_runs_counts_as_objects() {
    let (app, moto) = (spawn_app(Backend::Sqlite).await, Moto::start().await);
    app.create_user("a@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("{}[log]\nformat = \"json\"\n", moto.config())).unwrap();
    let out = command(&app.url)
        .envs(AWS_ENV.iter().copied())
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines = parsed(&stderr);
    let finished = lines
        .iter()
        .find(|l| l["fields"]["message"] == "sync run finished")
        .unwrap_or_else(|| panic!("{stderr}"));
    let f = &finished["fields"];
    assert_eq!(f["counts"]["create_user"], 1, "an object, not a string: {f}");
    assert_eq!(f["aws_calls"]["CreateUser"], 1, "{f}");
    assert_eq!(f["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_postgres_notice_on_start() {
    let (url, _dir) = migrated(Backend::Postgres).await;
    // The second start is the one PostgreSQL answered with a NOTICE (the migrations table
    // already exists).
    let out = command(&url).env("RUST_LOG", "info").arg("migrate").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("migrations applied"), "{stderr}");
    assert!(!stderr.contains("notice") && !stderr.contains("already exists"), "{stderr}");
}
