//! The real `scimbridge` binary: run its commands, serve on a free port, and talk to it the way
//! an IdP does (its own User-Agent, Content-Type and query-string flags).

use super::{Backend, Reply, TestDatabase, fresh_database, reply};
use reqwest::Method;
use scimbridge::store::Store;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The `scimbridge` program as Cargo built it for this test run, from the code under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scimbridge-under-test"))
}

/// `scimbridge` against this database, with no config file from the environment and quiet logs.
pub fn command(database_url: &str) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env("DATABASE_URL", database_url).env_remove("SCIMBRIDGE_CONFIG").env("RUST_LOG", "warn");
    // Never real AWS: a test that syncs passes the emulator's settings itself.
    for var in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A spawned `scimbridge serve`, killed when dropped.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `scimbridge serve` on a free port against a fresh, migrated database.
pub struct BinaryApp {
    /// `http://127.0.0.1:PORT/scim/v2`
    pub base: String,
    /// The database URL.
    pub url: String,
    config: PathBuf,
    _server: Server,
    _config_dir: TempDir,
    /// Last: dropped after the server has stopped. None for a replica (the first app's).
    _db: Option<TestDatabase>,
}

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

impl BinaryApp {
    /// Migrates a fresh database with `scimbridge migrate`, then serves it and waits for
    /// `/readyz`. `config_toml` is passed with `--config`.
    pub async fn start(backend: Backend, config_toml: &str) -> BinaryApp {
        Self::start_with_env(backend, config_toml, &[]).await
    }

    /// [`BinaryApp::start`] with these extra environment variables for the server.
    pub async fn start_with_env(
        backend: Backend,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> BinaryApp {
        let (url, db) = fresh_database(backend).await;
        Self::serve(url, Some(db), config_toml, env).await
    }

    /// Another replica: `scimbridge serve` on this app's database (already migrated).
    pub async fn replica(&self, config_toml: &str, env: &[(&str, &str)]) -> BinaryApp {
        Self::serve(self.url.clone(), None, config_toml, env).await
    }

    async fn serve(
        url: String,
        db: Option<TestDatabase>,
        config_toml: &str,
        env: &[(&str, &str)],
    ) -> BinaryApp {
        let config_dir = tempfile::tempdir().expect("temp dir");
        let config = config_dir.path().join("scimbridge.toml");
        std::fs::write(&config, config_toml).expect("write config");

        let migrate = run(&url, &config, &["migrate"]);
        assert!(migrate.status.success(), "migrate: {}", String::from_utf8_lossy(&migrate.stderr));

        let port = free_port();
        let logs =
            || if std::env::var("TEST_LOG").is_ok() { Stdio::inherit() } else { Stdio::null() };
        let child = command(&url)
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(logs())
            .stderr(logs())
            .spawn()
            .expect("spawn scimbridge serve");
        let mut server = Server(child);
        wait_until_ready(&mut server, port).await;

        BinaryApp {
            base: format!("http://127.0.0.1:{port}/scim/v2"),
            url,
            config,
            _server: server,
            _db: db,
            _config_dir: config_dir,
        }
    }

    /// SIGTERM (what Kubernetes sends), then waits up to `limit` for the process to exit; its
    /// exit status, or None when it did not exit in time.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self._server.0.id().to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self._server.0.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// `scimbridge ARGS` with this server's config file and database, and these extra
    /// environment variables.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        command(&self.url)
            .envs(env.iter().copied())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run scimbridge")
    }

    /// `scimbridge token create --admin`: the new admin-API token.
    pub fn admin_token(&self) -> String {
        let out = run(&self.url, &self.config, &["token", "create", "--admin"]);
        assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout.lines().last().expect("the token on the last line").trim().to_owned()
    }

    /// `scimbridge token create --source SOURCE [--compat MODE]`: the new token.
    pub fn token(&self, source: &str, compat: Option<&str>) -> String {
        let mut args = vec!["token", "create", "--source", source];
        if let Some(mode) = compat {
            args.extend(["--compat", mode]);
        }
        let out = run(&self.url, &self.config, &args);
        assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        stdout.lines().last().expect("the token on the last line").trim().to_owned()
    }

    /// A second connection to the server's database (no migration), to read what the API does
    /// not show: sources and the journal.
    pub async fn store(&self) -> Arc<dyn Store> {
        scimbridge::store::connect(&self.url, 2).await.expect("connect to the server's database")
    }

    /// Every stored user document as text, read with plain SQL.
    pub async fn user_docs(&self) -> Vec<String> {
        const SQL: &str = "SELECT CAST(doc AS TEXT) FROM users";
        if self.url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
            let docs: Vec<String> = sqlx::query_scalar(SQL).fetch_all(&pool).await.expect("users");
            pool.close().await;
            docs
        } else {
            let pool = sqlx::SqlitePool::connect(&self.url).await.expect("connect");
            let docs: Vec<String> = sqlx::query_scalar(SQL).fetch_all(&pool).await.expect("users");
            pool.close().await;
            docs
        }
    }
}

/// `scimbridge --config <config_toml> ARGS` against this database with the emulator's
/// credentials: exit code, stdout, stderr.
pub fn cli_with_config(url: &str, config_toml: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("scimbridge.toml");
    std::fs::write(&config, config_toml).expect("config");
    let out = command(url)
        .envs(super::moto::AWS_ENV.iter().copied())
        .arg("--config")
        .arg(&config)
        .args(args)
        .output()
        .expect("run scimbridge");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run(url: &str, config: &Path, args: &[&str]) -> Output {
    command(url).arg("--config").arg(config).args(args).output().expect("run scimbridge")
}

async fn wait_until_ready(server: &mut Server, port: u16) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let what = format!("scimbridge serve: {url} answering 200");
    super::eventually(STARTUP_TIMEOUT, &what, || {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!(
                "scimbridge serve exited with {status} before it was ready (TEST_LOG=1 shows why)"
            );
        }
        let ready = client.get(&url).send();
        async { ready.await.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) }
    })
    .await;
}

/// An HTTP client that sends what one IdP sends: its bearer token, its User-Agent (or none),
/// its Content-Type, and a flag appended to every query string (Entra's `aadOptscim062020`).
/// Every reply is kept, so a test can check that a secret never came back.
pub struct IdpClient {
    pub base: String,
    pub token: String,
    /// None sends no User-Agent header at all (reqwest adds none by default).
    pub user_agent: Option<String>,
    pub content_type: &'static str,
    /// Appended to every request's query string, after `?` or `&`.
    pub query_suffix: Option<String>,
    client: reqwest::Client,
    replies: Mutex<Vec<String>>,
}

impl IdpClient {
    pub fn new(
        base: &str,
        token: String,
        user_agent: Option<&str>,
        content_type: &'static str,
        query_suffix: Option<&str>,
    ) -> IdpClient {
        IdpClient {
            base: base.to_owned(),
            token,
            user_agent: user_agent.map(str::to_owned),
            content_type,
            query_suffix: query_suffix.map(str::to_owned),
            client: reqwest::Client::new(),
            replies: Mutex::new(Vec::new()),
        }
    }

    /// The URL of `path` (relative to the SCIM base) with the query suffix.
    pub fn url(&self, path: &str) -> String {
        let mut url = format!("{}{path}", self.base);
        if let Some(suffix) = &self.query_suffix {
            url.push(if path.contains('?') { '&' } else { '?' });
            url.push_str(suffix);
        }
        url
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut req = self.client.request(method.clone(), self.url(path)).bearer_auth(&self.token);
        if let Some(ua) = &self.user_agent {
            req = req.header(reqwest::header::USER_AGENT, ua);
        }
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, self.content_type).body(b.to_string());
        }
        let r = reply(req.send().await.expect("request")).await;
        let headers: Vec<String> =
            r.headers.iter().map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?"))).collect();
        self.replies.lock().unwrap().push(format!(
            "{method} {path} -> {}\n{}\n{}",
            r.status,
            headers.join("\n"),
            r.body
        ));
        r
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Every reply so far (status, headers and body), one entry per request.
    pub fn replies(&self) -> Vec<String> {
        self.replies.lock().unwrap().clone()
    }
}
