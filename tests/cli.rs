//! The real `scimbridge` binary: token management, migrate, serve, config errors.

use crate::on_both_backends;
use crate::support::binary::{Server, binary, command, free_port};
use crate::support::{Backend, eventually, execute_sql, fresh_database};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

on_both_backends!(
    token_commands_and_serve,
    tokens_from_a_mounted_secret,
    starts_on_a_database_a_newer_release_migrated
);

fn run(url: &str, args: &[&str]) -> Output {
    command(url).args(args).output().expect("run scimbridge")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn token_commands_and_serve(b: Backend) {
    let (url, _dir) = fresh_database(b).await;

    let migrate = run(&url, &["migrate"]);
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    assert_eq!(stdout(&migrate), "", "migrate prints nothing on stdout");

    let created = run(
        &url,
        &["token", "create", "--source", "okta", "--compat", "okta", "--expires-in", "30"],
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let out = stdout(&created);
    let token = out.lines().last().expect("a line").to_owned();
    assert!(
        token.starts_with("scimbridge_") && token.len() > 40,
        "token alone on the last line: {out:?}"
    );

    let admin = run(&url, &["token", "create", "--admin"]);
    assert!(admin.status.success());
    let usage = run(&url, &["token", "create", "--admin", "--source", "x"]);
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2");
    let bad_mode = run(&url, &["token", "create", "--source", "x", "--compat", "nonsense"]);
    assert_eq!(bad_mode.status.code(), Some(2));

    let list = run(&url, &["token", "list"]);
    let mut lines: Vec<String> = stdout(&list).lines().map(str::to_owned).collect();
    assert_eq!(lines.remove(0), "ID\tSOURCE\tCREATED\tEXPIRES\tLAST_USED\tSTATE\tCOMPAT");
    assert_eq!(lines.len(), 2, "one line per token under the header: {lines:?}");
    let okta_line = lines.iter().find(|l| l.contains("\tokta\t")).expect("okta token listed");
    assert!(lines.iter().any(|l| l.contains("\tadmin\t")));
    assert!(okta_line.contains("live") && okta_line.contains("never"), "{okta_line}");
    assert!(okta_line.ends_with("\tokta"), "the source's mode is the last column: {okta_line}");
    assert!(lines.iter().any(|l| l.contains("\tadmin\t") && l.ends_with("\t-")), "{lines:?}");
    assert!(!stdout(&list).contains(&token), "the secret is never shown again");
    let okta_id = okta_line.split('\t').next().unwrap().to_owned();

    // Serve with the token.
    let port = free_port();
    let child = Command::new(binary())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .env("SCIMBRIDGE_SCIM__TOKEN_CACHE_SECONDS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let _server = Server(child);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    eventually(Duration::from_secs(10), "serve coming up", || async {
        client.get(format!("{base}/livez")).send().await.is_ok()
    })
    .await;
    assert_eq!(client.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    let r = client.get(format!("{base}/scim/v2/Users")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // `auto` records the client it recognised, and `token list` shows it.
    let created = run(&url, &["token", "create", "--source", "idp"]);
    let idp_token = stdout(&created).lines().last().expect("a token").to_owned();
    let r = client
        .get(format!("{base}/scim/v2/Users"))
        .bearer_auth(&idp_token)
        .header("user-agent", "authentik@2025.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list = stdout(&run(&url, &["token", "list"]));
    let idp_line = list.lines().find(|l| l.contains("\tidp\t")).expect("idp token listed");
    assert!(idp_line.ends_with("\tauto:authentik"), "{idp_line}");

    let revoked = run(&url, &["token", "revoke", &okta_id]);
    assert!(revoked.status.success());
    assert_eq!(stdout(&revoked).trim(), format!("revoked {okta_id}"));
    let again = run(&url, &["token", "revoke", &okta_id]);
    assert_eq!(again.status.code(), Some(1));
    let r = client.get(format!("{base}/scim/v2/Users")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401, "a revoked token stops working");

    // A config error names the key and exits 2.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\nlisen = \"x\"\n").unwrap();
    let bad = run(&url, &["--config", cfg.to_str().unwrap(), "migrate"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("lisen"));
    // A log level that would silently turn logging off is one too.
    std::fs::write(&cfg, "[log]\nlevel = \"verbose\"\n").unwrap();
    let bad = run(&url, &["--config", cfg.to_str().unwrap(), "migrate"]);
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("log.level") && stderr.contains("verbose"), "{stderr}");
    // Logs written to a pipe (kubectl logs) carry no colour codes.
    let migrated = command(&url).env("RUST_LOG", "info").arg("migrate").output().unwrap();
    let stderr = String::from_utf8_lossy(&migrated.stderr);
    assert!(stderr.contains("migrations applied"), "{stderr:?}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}

/// `[auth] tokens_dir` (how the Helm chart hands over tokens): a Kubernetes-style mounted
/// Secret (keys as symlinks into `..data`) is accepted at start — a source token and the admin
/// token work, a restart adds nothing, and a badly named file stops the server with the key.
async fn tokens_from_a_mounted_secret(b: Backend) {
    use crate::support::binary::{BinaryApp, IdpClient};
    let secret = tempfile::tempdir().unwrap();
    let data = secret.path().join("..2026_11_23_00_00_00.000000000");
    std::fs::create_dir(&data).unwrap();
    let okta = format!("scimbridge_{}", "o".repeat(43));
    let admin = format!("scimbridge_{}", "a".repeat(43));
    std::fs::write(data.join("okta"), format!("{okta}\n")).unwrap();
    std::fs::write(data.join("admin"), &admin).unwrap();
    std::os::unix::fs::symlink(&data, secret.path().join("..data")).unwrap();
    for key in ["okta", "admin"] {
        std::os::unix::fs::symlink(format!("..data/{key}"), secret.path().join(key)).unwrap();
    }
    let config = format!("[auth]\ntokens_dir = {:?}\n", secret.path().display().to_string());
    let app = BinaryApp::start(b, &config).await;
    let idp = IdpClient::new(&app.base, okta.clone(), None, "application/scim+json", None);
    assert_eq!(idp.get("/Users").await.status, 200, "the okta token from the file works");
    let root = app.base.trim_end_matches("/scim/v2");
    let status = reqwest::Client::new()
        .get(format!("{root}/admin/v1/status"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200, "the admin token from the file works");
    let store = app.store().await;
    assert_eq!(store.list_tokens().await.unwrap().len(), 2);
    // Accepting them again (a restart, another replica) adds nothing.
    let again = scimbridge::auth::provision_from_dir(&*store, secret.path()).await.unwrap();
    assert_eq!(again, 0);
    assert_eq!(store.list_tokens().await.unwrap().len(), 2);

    // A file whose name is no source name: the server refuses to start, naming the key.
    std::fs::write(secret.path().join("bad name"), "scimbridge_x").unwrap();
    let (url, _dir) = fresh_database(b).await;
    let out = command(&url)
        .env("SCIMBRIDGE_AUTH__TOKENS_DIR", secret.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .output()
        .expect("run serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("auth.tokens_dir"), "{stderr}");
}

/// A database migrated by a newer release (a migration this binary does not know) still starts:
/// a rolling upgrade restarts old pods and a rollback runs the old code on the newer schema.
async fn starts_on_a_database_a_newer_release_migrated(b: Backend) {
    let (url, _dir) = fresh_database(b).await;
    let migrate = || command(&url).arg("migrate").output().expect("run migrate");
    assert!(migrate().status.success());
    let newer = "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES (99990101000000, 'from a newer release', TRUE, ";
    let checksum = if url.starts_with("postgres") { "'\\x00'::bytea" } else { "X'00'" };
    execute_sql(&url, format!("{newer}{checksum}, 0)")).await;
    let out = migrate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = command(&url).args(["token", "create", "--source", "okta"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The engine's clocks (`[sync]`'s advanced keys) are settings tests shorten; a careless value
/// is a configuration error naming the key and its range (exit 2), before anything starts.
#[test]
fn a_careless_sync_timing_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("never-opened.db").display());
    for (setting, named) in [
        ("lease_seconds = 1", "sync.lease_seconds = 1 is out of range: it must be from 5 to 3600"),
        ("journal_poll_milliseconds = 0", "sync.journal_poll_milliseconds = 0 is out of range"),
        ("scheduler_tick_milliseconds = 10", "from 50 to 60000 milliseconds"),
    ] {
        let (code, _, stderr) = crate::support::binary::cli_with_config(
            &url,
            &format!("[sync]\n{setting}\n"),
            &["migrate"],
        );
        assert_eq!(code, 2, "{setting}: {stderr}");
        assert!(stderr.contains(named), "{setting}: {stderr}");
    }
    // In range, it is taken.
    let (code, _, stderr) = crate::support::binary::cli_with_config(
        &url,
        "[sync]\nlease_seconds = 5\njournal_poll_milliseconds = 50\nscheduler_tick_milliseconds = 50\n",
        &["migrate"],
    );
    assert_eq!(code, 0, "{stderr}");
}

/// Names that no source or principal can have are configuration errors naming the key
/// (exit 2), before the database is opened: a `[sources.NAME]` no token can belong to, a
/// protected name no principal can hold, an unknown compat mode.
#[test]
fn a_name_nothing_can_have_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("never-opened.db");
    let url = format!("sqlite://{}", db.display());
    for (config, named) in [
        (
            "[sources.\"okta tenant\"]\nadopt_existing = true\n",
            "config: sources.okta tenant: not a source name: use 1-64 letters, digits, '-' or '_' (got \"okta tenant\")",
        ),
        (
            "[sources.entra]\nadopt_from = [\"admin\"]\n",
            "sources.entra.adopt_from: not a source name",
        ),
        ("[sync]\nprotected_users = [\"  \"]\n", "config: sync.protected_users: userName is empty"),
        (
            "[sources.x]\ncompat = \"lenient\"\n",
            "config: sources.x.compat: unknown mode `lenient` (one of auto, strict, okta, entra, authentik, ping, generic)",
        ),
    ] {
        let (code, _, stderr) = crate::support::binary::cli_with_config(&url, config, &["migrate"]);
        assert_eq!(code, 2, "{config}: {stderr}");
        assert!(stderr.contains(named), "{config}: {stderr}");
    }
    assert!(!db.exists(), "a refused configuration opens no database");
}
