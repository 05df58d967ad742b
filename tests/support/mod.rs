//! The test harness: `spawn_app(backend)` starts scimbridge in-process on port 0 against a
//! fresh database and returns a client holding a new source token.

use reqwest::{Method, StatusCode};
use scimbridge::config::Settings;
use scimbridge::startup::Application;
use scimbridge::store::{self, Store};
use serde_json::{Value, json};
use std::sync::{Arc, Once};

pub mod binary;
pub mod fault_proxy;
pub mod moto;
pub mod tcp_proxy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod name { sqlite(), postgres() }` running `name(backend)` on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await
            }
        }
    )*};
}

pub struct TestApp {
    pub base: String,
    /// The database URL (for the binary's commands against the same database).
    pub url: String,
    pub token: String,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    _db: TestDatabase,
}

/// A response: status, headers and the JSON body (Null when empty).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    /// Asserts a SCIM error with this status (and scimType, when given).
    #[track_caller]
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{}",
            self.body
        );
        assert_eq!(
            self.body["status"],
            status.to_string(),
            "status is a JSON string: {}",
            self.body
        );
        if let Some(t) = scim_type {
            assert_eq!(self.body["scimType"], t, "{}", self.body);
        }
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{}", self.body);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/scim+json"),
            "error media type"
        );
    }
}

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            scimbridge::telemetry::init(scimbridge::config::LogFormat::Text, "info");
        }
    });
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database(backend: Backend) -> (String, TestDatabase) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("scimbridge.db").display());
            (url, TestDatabase { _dir: Some(dir), postgres: None })
        }
        Backend::Postgres => {
            let admin_url = std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres")).expect(
                "PostgreSQL tests need DATABASE_URL=postgres://…; run them with scripts/test.sh \
                 (or scripts/with-postgres.sh cargo test)",
            );
            let name = format!("scimbridge_test_{}", uuid::Uuid::new_v4().simple());
            let admin = sqlx::PgPool::connect(&admin_url).await.expect("connect to DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("create test database");
            admin.close().await;
            let (prefix, _) = admin_url.rsplit_once('/').expect("DATABASE_URL has a database name");
            let prefix = prefix.to_owned();
            let query = admin_url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
            let url = format!("{prefix}/{name}{query}");
            (url, TestDatabase { _dir: None, postgres: Some((admin_url, name)) })
        }
    }
}

/// A test's database, removed when dropped: the SQLite file's temporary directory, or the
/// PostgreSQL database (a server that runs many test rounds would otherwise fill up with them).
/// Keep it until the test is done: `let (url, _db) = …`, never `let (url, _) = …`.
pub struct TestDatabase {
    _dir: Option<tempfile::TempDir>,
    /// The server's admin URL and the database's name.
    postgres: Option<(String, String)>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else { return };
        // Drop runs inside the test's runtime, which must not block on itself: a thread with a
        // runtime of its own does the drop. FORCE ends the connections a server still holds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let admin = sqlx::PgPool::connect(&admin_url).await?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await?;
                admin.close().await;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("note: a test database was not dropped: {e}");
        }
    }
}

/// Waits until `done` holds, checking every 50 ms, and fails the test naming `what` when it
/// has not after `limit`: every poll in the tests has a deadline.
pub async fn eventually<F, Fut>(limit: std::time::Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// [`eventually`] for a poll that gives a value: waits until `poll` answers `Ok(value)` and
/// returns it; a poll that asserts fails the test at once. When it has not after `limit`, the
/// test fails naming `what` and what the last poll saw (its `Err`).
pub async fn eventually_ok<T, F, Fut>(limit: std::time::Duration, what: &str, mut poll: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = std::time::Instant::now();
    loop {
        match poll().await {
            Ok(value) => return value,
            Err(seen) => {
                assert!(start.elapsed() < limit, "{what}: not within {limit:?}; last: {seen}")
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs one SQL statement on a test database, behind the server's back.
pub async fn execute_sql(url: &str, sql: String) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("execute");
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.expect("execute");
        pool.close().await;
    }
}

/// A source name a test uses (valid by construction).
pub fn source(name: &str) -> scimbridge::names::SourceName {
    scimbridge::names::SourceName::parse(name).expect("a source name")
}

/// A compatibility mode a test names (`None`: the source's default).
fn mode(compat: Option<&str>) -> Option<scimbridge::store::CompatMode> {
    compat.map(|c| scimbridge::store::CompatMode::parse(c).expect("a compat mode"))
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Settings::default(), None).await
}

/// Starts the app with these settings (listen address and database are filled in) and a token
/// for source `test` in compat mode `compat` (default: the source default).
pub async fn spawn_app_with(
    backend: Backend,
    mut settings: Settings,
    compat: Option<&str>,
) -> TestApp {
    init_tracing();
    let (url, db) = fresh_database(backend).await;
    settings.server.listen = "127.0.0.1:0".to_owned();
    settings.database.url = url.clone();
    settings.scim.token_cache_seconds = 0;
    let store =
        store::connect(&url, settings.database.max_connections).await.expect("connect store");
    store.migrate().await.expect("migrate");
    let (_, token, _) =
        scimbridge::auth::create_token(&*store, Some((&source("test"), mode(compat))), None)
            .await
            .expect("token");
    let app = Application::build_with(settings, store.clone()).await.expect("build app");
    let base = format!("http://127.0.0.1:{}/scim/v2", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { base, token, url, store, client: reqwest::Client::new(), _db: db }
}

impl TestApp {
    /// A token for another source (created if new).
    pub async fn token_for(&self, source: &str, compat: Option<&str>) -> String {
        let source = Some((&self::source(source), mode(compat)));
        let (_, token, _) =
            scimbridge::auth::create_token(&*self.store, source, None).await.expect("token");
        token
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.request_as(&self.token, method, path, body, &[]).await
    }

    pub async fn request_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url =
            if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let mut req = self.client.request(method, url).bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().await.expect("request");
        reply(resp).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        reply(resp).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a user and returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let r = self.post("/Users", &user(user_name)).await;
        assert_eq!(r.status, StatusCode::CREATED, "create user {user_name}: {}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// Creates a group with these member ids and returns its id.
    pub async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let r = self.post("/Groups", &group(name, members)).await;
        assert_eq!(r.status, StatusCode::CREATED, "create group {name}: {}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// The member ids of a group, sorted.
    pub async fn member_ids(&self, group_id: &str) -> Vec<String> {
        let r = self.get(&format!("/Groups/{group_id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let mut ids: Vec<String> = r.body["members"]
            .as_array()
            .map(|m| m.iter().filter_map(|x| x["value"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Rows in the change journal.
    pub async fn journal(&self) -> Vec<scimbridge::store::JournalEntry> {
        self.store.journal_since(0, 100_000).await.expect("journal")
    }
}

async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply { status, headers, body }
}

pub fn user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Given", "familyName": "Family"},
        "displayName": format!("Display {user_name}"),
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    })
}

pub fn group(name: &str, members: &[&str]) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>()
    })
}

pub fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Percent-encodes a filter for a query string.
pub fn enc(s: &str) -> String {
    url_escape(s)
}

fn url_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
