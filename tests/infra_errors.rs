//! Issue 14, "commands say where they are" and "errors name the thing", through the real
//! binary: the database every command names, a CLI run from the wrong directory, usage errors
//! that exit 2, and each infrastructure failure (PostgreSQL refused or missing, an AWS endpoint
//! that cannot be reached, no credentials, no Region, a port in use, a database outage under
//! `serve`) with its message.

use crate::support::binary::{Server, binary, command, free_port};
use crate::support::moto::{AWS_ENV, Moto};
use crate::support::tcp_proxy::TcpProxy;
use crate::support::{Backend, eventually, eventually_ok, fresh_database};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `scimbridge` in `dir` with no database URL anywhere: the default `sqlite://scimbridge.db`.
fn in_dir(dir: &std::path::Path) -> Command {
    let mut cmd = command("unused");
    cmd.env_remove("DATABASE_URL").current_dir(dir);
    cmd
}

/// Run from a directory without a database, `token list` says so and creates nothing;
/// `migrate` creates it; then `token list` works and names the database by its absolute path.
#[test]
fn a_cli_in_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimbridge.db");
    let canonical = std::fs::canonicalize(dir.path()).unwrap().join("scimbridge.db");
    let path_named = |text: &str| {
        text.contains(&db.display().to_string()) || text.contains(&canonical.display().to_string())
    };

    let list = in_dir(dir.path()).args(["token", "list"]).output().unwrap();
    let err = stderr(&list);
    assert_eq!(list.status.code(), Some(2), "{err}");
    assert!(path_named(&err) && err.contains("--database-url"), "{err}");
    assert!(err.contains("DATABASE_URL") && err.contains("migrate"), "{err}");
    assert_eq!(stdout(&list), "", "nothing on stdout");
    assert!(!db.exists(), "token list created {}", db.display());
    for args in [
        &["token", "create", "--source", "okta"][..],
        &["audit"],
        &["show", "user", "x"],
        &["check"],
    ] {
        let out = in_dir(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!db.exists(), "{args:?} created the database");
    }

    let migrate = in_dir(dir.path()).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{}", stderr(&migrate));
    assert!(db.exists(), "migrate creates the database");
    let err = stderr(&migrate);
    let named = err.lines().find(|l| l.starts_with("database: sqlite:///")).unwrap_or_default();
    assert!(path_named(named), "migrate names the database: {err}");

    let list = in_dir(dir.path()).args(["token", "list"]).output().unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let err = stderr(&list);
    let named: Vec<&str> = err.lines().filter(|l| l.starts_with("database: ")).collect();
    assert_eq!(named.len(), 1, "one line names the database: {err}");
    assert!(path_named(named[0]), "{err}");
    assert_eq!(
        stdout(&list).lines().next(),
        Some("ID\tSOURCE\tCREATED\tEXPIRES\tLAST_USED\tSTATE\tCOMPAT")
    );
}

/// DESIGN: 2 for usage and configuration errors, each with a message naming what is wrong.
#[tokio::test]
async fn usage_and_configuration_errors_exit_2() {
    let (url, _dir) = fresh_database(Backend::Sqlite).await;
    let run = |args: &[&str]| command(&url).args(args).output().unwrap();
    assert!(run(&["migrate"]).status.success());

    let out = run(&["--listen", "localhost:abc", "serve"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("server.listen") && stderr(&out).contains("\"abc\""),
        "{}",
        stderr(&out)
    );

    let out = run(&["--database-url", "mysql://u:secret@db/s", "token", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("database.url") && err.contains("mysql://u:***@db/s"), "{err}");
    assert!(!err.contains("secret"), "{err}");

    let out = run(&["token", "create", "--source", "admin"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("reserved") && stderr(&out).contains("--admin"),
        "{}",
        stderr(&out)
    );

    // The help says what the codes are.
    let help = run(&["check", "--help"]);
    let text = stdout(&help);
    assert!(
        text.contains("0 every check passed, 1 a problem found, 2 usage or configuration"),
        "{text}"
    );
}

/// PostgreSQL on a port nobody listens on: the host, the port and "refused", once, at once.
#[test]
fn postgres_refusing_connections_is_named_at_once() {
    let port = free_port();
    let url = format!("postgres://postgres:pw@127.0.0.1:{port}/scimbridge");
    let started = Instant::now();
    let out = command(&url).args(["token", "list"]).output().unwrap();
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a runtime failure: {err}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}: {err}");
    let line = format!("cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused");
    assert_eq!(err.matches(&line).count(), 1, "{err}");
    assert!(
        err.contains(&format!("database: postgres://postgres:***@127.0.0.1:{port}/scimbridge")),
        "{err}"
    );
    assert!(!err.contains("pw@") && !err.contains("pool timed out"), "{err}");
}

/// A database that does not exist on a server that does: one line naming it, without sqlx's
/// repeated chain or the server's source position.
#[tokio::test]
async fn a_missing_postgres_database_is_one_clear_line() {
    let admin_url = std::env::var("DATABASE_URL").expect("DATABASE_URL=postgres://… for this test");
    let (prefix, _) = admin_url.rsplit_once('/').unwrap();
    let name = format!("scimbridge_missing_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{prefix}/{name}");
    let out = command(&url).args(["token", "list"]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("cannot connect to PostgreSQL at")
            && errors[0].contains(&format!("no such database \"{name}\"")),
        "{err}"
    );
    assert_eq!(
        err.matches(&name).count(),
        2,
        "named on the database line and once in the error: {err}"
    );
    assert!(!err.contains("at line") && !err.contains("error returned from database"), "{err}");
}

/// The `[aws]` section for an endpoint where nothing listens.
fn closed_endpoint_config(dir: &std::path::Path, extra: &str) -> (std::path::PathBuf, String) {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!("[aws]\nregion = \"eu-west-3\"\nendpoint_url = \"{endpoint}\"\n{extra}"),
    )
    .unwrap();
    (config, endpoint)
}

/// A wrong AWS endpoint: a fast failure naming the endpoint and the Region, from the first
/// call (instance discovery), and from a run's first call when the identity store is set.
#[tokio::test]
async fn an_unreachable_aws_endpoint_fails_fast_and_is_named() {
    let (url, _db) = fresh_database(Backend::Sqlite).await;
    assert!(command(&url).arg("migrate").output().unwrap().status.success());
    let dir = tempfile::tempdir().unwrap();
    for extra in [
        "",
        "identity_store_id = \"d-1234567890\"\ninstance_arn = \"arn:aws:sso:::instance/ssoins-1\"\n",
    ] {
        let (config, endpoint) = closed_endpoint_config(dir.path(), extra);
        let started = Instant::now();
        let out = command(&url)
            .envs(AWS_ENV.iter().copied())
            .arg("--config")
            .arg(&config)
            .args(["sync", "--full"])
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            elapsed < Duration::from_secs(5),
            "took {elapsed:?} (8 attempts took 17 s): {text}"
        );
        let named = format!(
            "AWS endpoint {endpoint} (Region eu-west-3) is not reachable: connection refused"
        );
        assert!(text.contains(&named), "{extra:?}: {text}");
    }
}

/// No credentials anywhere the SDK looks: a fast failure that says so, and a usage error.
#[tokio::test]
async fn missing_aws_credentials_fail_fast_and_are_named() {
    let (url, _db) = fresh_database(Backend::Sqlite).await;
    assert!(command(&url).arg("migrate").output().unwrap().status.success());
    let home = tempfile::tempdir().unwrap();
    let (config, endpoint) = closed_endpoint_config(home.path(), "");
    let started = Instant::now();
    let out = command(&url)
        .env("HOME", home.path())
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}: {err}");
    assert!(err.contains("no AWS credentials found") && err.contains(&endpoint), "{err}");
    assert!(err.contains("AWS_ACCESS_KEY_ID") && err.contains("~/.aws/credentials"), "{err}");
    assert!(!err.contains("WARN"), "no SDK warnings before the error: {err}");
}

/// `check` finds the Region where `sync` does: in the profile's `~/.aws/config`; and with no
/// Region anywhere, says so in one line without the SDK's WARN dumps.
#[tokio::test]
async fn check_resolves_the_region_as_sync_does() {
    let moto = Moto::start().await;
    let (url, _db) = fresh_database(Backend::Sqlite).await;
    assert!(command(&url).arg("migrate").output().unwrap().status.success());
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("c.toml");
    std::fs::write(&config, format!("[aws]\nendpoint_url = \"{}\"\n", moto.endpoint)).unwrap();
    let check = || {
        command(&url)
            .env("HOME", home.path())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("RUST_LOG", "info")
            .arg("--config")
            .arg(&config)
            .arg("check")
            .output()
            .unwrap()
    };

    let out = check();
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}{}", stderr(&out));
    assert!(report.contains("FAIL  aws: no AWS Region"), "{report}");
    assert!(report.contains("~/.aws/config"), "{report}");
    assert!(!stderr(&out).contains("WARN"), "{}", stderr(&out));

    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(home.path().join(".aws/config"), "[default]\nregion = us-east-1\n").unwrap();
    let out = check();
    let report = stdout(&out);
    assert!(!report.contains("no AWS Region"), "{report}");
    assert!(
        report.contains("ok    aws: identity store") && report.contains("(Region us-east-1)"),
        "{report}"
    );
}

/// A port in use: the error names the address and the cause, and no "serving" line comes
/// before it.
#[tokio::test]
async fn a_port_in_use_is_named_and_never_announced() {
    let (url, _db) = fresh_database(Backend::Sqlite).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = command(&url)
        .env("RUST_LOG", "info")
        .args(["serve", "--listen", &addr.to_string()])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}: address already in use")), "{err}");
    assert!(!err.contains("serving"), "{err}");
}

/// `serve` while PostgreSQL goes away (a proxy in between is cut): 503 "database
/// unavailable", not "busy"; and 200 again once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_tells_an_outage_from_a_busy_database() {
    let (url, _db) = fresh_database(Backend::Postgres).await;
    assert!(command(&url).arg("migrate").output().unwrap().status.success());
    let created = command(&url).args(["token", "create", "--source", "okta"]).output().unwrap();
    let token = stdout(&created).lines().last().unwrap().to_owned();
    // postgres://user@host:port/db → the proxy in place of host:port.
    let (scheme_user, rest) = url.split_once('@').unwrap();
    let (host_port, db) = rest.split_once('/').unwrap();
    let proxy = TcpProxy::start(host_port).await;
    let proxied = format!("{scheme_user}@127.0.0.1:{}/{db}", proxy.port);

    let port = free_port();
    let child = Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &proxied)
        .env("SCIMBRIDGE_SCIM__TOKEN_CACHE_SECONDS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let client = reqwest::Client::new();
    let users = format!("http://127.0.0.1:{port}/scim/v2/Users");
    let get = || client.get(&users).bearer_auth(&token).send();
    eventually(Duration::from_secs(30), "serve coming up", || async {
        get().await.map(|r| r.status().as_u16()).ok() == Some(200)
    })
    .await;

    proxy.cut();
    // A connection lost mid-use, then new ones refused (after the pool's wait).
    for _ in 0..2 {
        let r = get().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["detail"], "database unavailable; retry shortly", "{body}");
    }

    proxy.restore().await;
    eventually_ok(Duration::from_secs(30), "200 after the outage", || async {
        let status = get().await.unwrap().status();
        if status == 200 { Ok(()) } else { Err(format!("still {status}")) }
    })
    .await;
}
