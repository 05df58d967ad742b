//! What a client at the edge must not get through (issue 13, "Trust between sources"): body
//! size and time limits, a bound on large bodies in flight, forwarded headers from untrusted
//! peers, `/metrics` on the public listener, short mounted tokens, database secrets in
//! messages — and what it should get through: resource-type paths in another case.

use crate::on_both_backends;
use crate::support::binary::{command, free_port};
use crate::support::{Backend, eventually_ok, fresh_database, group, spawn_app_with, user};
use reqwest::{Method, StatusCode};
use scimbridge::config::Settings;
use scimbridge::startup::Application;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

on_both_backends!(request_body_limits, resource_paths_in_any_case);

const MIB: usize = 1024 * 1024;
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// `json` followed by whitespace up to `size` bytes: still the same valid JSON document.
fn padded(json: &Value, size: usize) -> Vec<u8> {
    let mut body = json.to_string().into_bytes();
    body.resize(size, b' ');
    body
}

/// 1 MiB outside `/Bulk` (413 with a SCIM error, nothing written); `/Bulk` keeps
/// `bulk.maxPayloadSize` (8 MiB), which ServiceProviderConfig still advertises.
async fn request_body_limits(b: Backend) {
    let app = spawn_app_with(b, Settings::default(), None).await;
    let ct = "application/scim+json";
    let big_user = padded(&user("big@example.com"), 2 * MIB);
    let r = app.raw(Method::POST, "/Users", ct, big_user).await;
    r.assert_error(413, None);
    assert!(r.body["detail"].as_str().unwrap().contains("scim.max_request_bytes"), "{}", r.body);
    // Also when the size is not declared up front (chunked): cut off once past the limit.
    let port = port_of(&app.base);
    let token = app.token.clone();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let head = format!(
            "POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("write head");
        let body = padded(&user("chunked@example.com"), 2 * MIB);
        for chunk in body.chunks(64 * 1024) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if stream.write_all(&framed).is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        read_response(&mut stream)
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("urn:ietf:params:scim:api:messages:2.0:Error"), "{response}");
    let r = app.raw(Method::POST, "/Users/.search", ct, padded(&json!({}), 2 * MIB)).await;
    r.assert_error(413, None);
    assert_eq!(app.get("/Users").await.body["totalResults"], 0, "nothing was written");
    // Just under the limit is fine.
    let r = app.raw(Method::POST, "/Users", ct, padded(&user("fits@example.com"), MIB)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let bulk = json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("bulk@example.com")}
    ]});
    let r = app.raw(Method::POST, "/Bulk", ct, padded(&bulk, 2 * MIB)).await;
    assert_eq!(r.status, StatusCode::OK, "/Bulk accepts 2 MiB: {}", r.body);
    assert_eq!(r.body["Operations"][0]["status"], "201", "{}", r.body);
    let r = app.raw(Method::POST, "/Bulk", ct, padded(&bulk, 9 * MIB)).await;
    r.assert_error(413, None);
    let spc = app.get("/ServiceProviderConfig").await;
    assert_eq!(spc.body["bulk"]["maxPayloadSize"], 8 * MIB, "{}", spc.body);
}

/// Sends the head of a request with this Content-Length and `sent` bytes of its body.
fn start_request(port: u16, path: &str, token: &str, length: usize, sent: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST /scim/v2{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write head");
    stream.write_all(sent).expect("write body");
    stream
}

/// The response on a raw connection: read until its JSON body ends, or the connection does.
fn read_response(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if response.windows(4).any(|w| w == b"\r\n\r\n") && response.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

fn port_of(base: &str) -> u16 {
    let authority = base.trim_start_matches("http://").split('/').next().unwrap();
    authority.rsplit(':').next().unwrap().parse().unwrap()
}

/// A client trickling its body is cut off with 408 after `server.request_body_timeout_seconds`
/// (1 s here), whether or not it keeps sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_times_out() {
    let mut settings = Settings::default();
    settings.server.request_body_timeout_seconds = 1;
    let app = spawn_app_with(Backend::Sqlite, settings, None).await;
    let port = port_of(&app.base);
    let token = app.token.clone();
    let started = Instant::now();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = start_request(port, "/Users", &token, 1000, b"{\"userName\"");
        // A byte every 200 ms: never idle for long, but far too slow.
        let mut trickle = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..50 {
                std::thread::sleep(Duration::from_millis(200));
                if trickle.write_all(b" ").is_err() {
                    break;
                }
            }
        });
        read_response(&mut stream)
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("urn:ietf:params:scim:api:messages:2.0:Error"), "{response}");
    assert!(response.contains("request_body_timeout_seconds"), "{response}");
    assert!(elapsed < Duration::from_secs(5), "cut off after {elapsed:?}");
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);
}

/// `/Bulk` bodies over `scim.max_request_bytes` take one of `scim.max_concurrent_large_requests`
/// permits while read and run: another one gets 503 with Retry-After, small ones still pass,
/// and the permit returns when the request ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bulk_bodies_in_flight_are_bounded() {
    let mut settings = Settings::default();
    settings.scim.max_concurrent_large_requests = Some(1);
    let app = spawn_app_with(Backend::Sqlite, settings, None).await;
    let port = port_of(&app.base);
    let ct = "application/scim+json";
    let bulk = |name: &str| {
        json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": user(name)}
        ]})
    };
    // A 3 MiB body that stays in flight: half of it sent, then nothing.
    let token = app.token.clone();
    let holder = tokio::task::spawn_blocking(move || {
        start_request(port, "/Bulk", &token, 3 * MIB, &vec![b' '; 3 * MIB / 2])
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = app.raw(Method::POST, "/Bulk", ct, padded(&bulk("second@example.com"), 2 * MIB)).await;
    r.assert_error(503, None);
    assert!(r.header("retry-after").is_some(), "Retry-After is set");
    let r = app.post("/Bulk", &bulk("small@example.com")).await;
    assert_eq!(r.status, StatusCode::OK, "a small /Bulk still passes: {}", r.body);
    drop(holder);
    eventually_ok(Duration::from_secs(5), "the permit coming back", || async {
        let r =
            app.raw(Method::POST, "/Bulk", ct, padded(&bulk("third@example.com"), 2 * MIB)).await;
        if r.status == StatusCode::OK { Ok(()) } else { Err(r.body.to_string()) }
    })
    .await;
}

/// `meta.location` and `Location` of a created user, sent with these extra headers.
async fn locations(
    app: &crate::support::TestApp,
    name: &str,
    headers: &[(&str, &str)],
) -> (String, String) {
    let r = app.request_as(&app.token, Method::POST, "/Users", Some(&user(name)), headers).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let meta = r.body["meta"]["location"].as_str().unwrap().to_owned();
    (meta, r.header("location").unwrap())
}

/// Forwarded headers choose the host in `meta.location` and `Location` only when the peer is
/// in `server.trusted_proxies`; `public_url` wins over both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_only_from_trusted_proxies() {
    let x_forwarded = [("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Proto", "https")];
    let forwarded = [("Forwarded", "proto=https;host=proxy.example")];

    let app = spawn_app_with(Backend::Sqlite, Settings::default(), None).await;
    for (i, headers) in [&x_forwarded[..], &forwarded[..]].into_iter().enumerate() {
        let (meta, location) = locations(&app, &format!("u{i}@example.com"), headers).await;
        assert!(meta.starts_with(&format!("{}/Users/", app.base)), "ignored: {meta}");
        assert_eq!(location, meta);
    }
    let r =
        app.request_as(&app.token, Method::GET, "/ResourceTypes/User", None, &x_forwarded).await;
    assert!(r.body["meta"]["location"].as_str().unwrap().starts_with(&app.base), "{}", r.body);

    let mut settings = Settings::default();
    settings.server.trusted_proxies = vec!["127.0.0.1/32".into()];
    let app = spawn_app_with(Backend::Sqlite, settings.clone(), None).await;
    let (meta, location) = locations(&app, "x@example.com", &x_forwarded).await;
    assert!(meta.starts_with("https://evil.example/scim/v2/Users/"), "honoured: {meta}");
    assert_eq!(location, meta);
    let (meta, _) = locations(&app, "f@example.com", &forwarded).await;
    assert!(meta.starts_with("https://proxy.example/scim/v2/Users/"), "honoured: {meta}");
    let (meta, _) = locations(&app, "none@example.com", &[]).await;
    assert!(meta.starts_with(&format!("{}/Users/", app.base)), "{meta}");

    settings.server.public_url = Some("https://scim.example.com/".into());
    let app = spawn_app_with(Backend::Sqlite, settings, None).await;
    let (meta, location) = locations(&app, "p@example.com", &x_forwarded).await;
    assert!(meta.starts_with("https://scim.example.com/scim/v2/Users/"), "{meta}");
    assert_eq!(location, meta);
}

/// `server.metrics_listen`: `/metrics` and the probes on the second address, which serves
/// nothing else; the main listener answers 404 for `/metrics` and keeps the probes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_address() {
    let (url, _db) = fresh_database(Backend::Sqlite).await;
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.metrics_listen = Some("127.0.0.1:0".into());
    settings.database.url = url.clone();
    let store = scimbridge::store::connect(&url, 2).await.unwrap();
    store.migrate().await.unwrap();
    let (_, token, _) = scimbridge::auth::create_token(
        &*store,
        Some((&crate::support::source("okta"), None)),
        None,
    )
    .await
    .unwrap();
    let app = Application::build_with(settings, store).await.unwrap();
    let main = format!("http://127.0.0.1:{}", app.port());
    let metrics = format!("http://127.0.0.1:{}", app.metrics_port().expect("a metrics port"));
    assert_ne!(main, metrics);
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let get = |url: String| {
        let req = client.get(url).bearer_auth(&token);
        async move { req.send().await.unwrap() }
    };

    let r = get(format!("{metrics}/metrics")).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("scimbridge_"), "Prometheus text");
    for probe in ["/livez", "/readyz"] {
        assert_eq!(get(format!("{metrics}{probe}")).await.status(), 200, "{probe} on metrics");
        assert_eq!(get(format!("{main}{probe}")).await.status(), 200, "{probe} on main");
    }
    for path in ["/metrics", "/metrics/", "//metrics"] {
        let r = get(format!("{main}{path}")).await;
        assert_eq!(r.status(), 404, "{path} is not served on the main listener");
    }
    assert_eq!(get(format!("{main}/scim/v2/Users")).await.status(), 200);
    for path in ["/scim/v2/Users", "/admin/v1/status", "/admin/"] {
        assert_eq!(get(format!("{metrics}{path}")).await.status(), 404, "{path} on metrics");
    }
}

/// Validators and some IdPs send `/users`, `/GROUPS/.search`, `/serviceproviderconfig`: the
/// resource-type segments are matched in any case; ids are not touched.
async fn resource_paths_in_any_case(b: Backend) {
    let app = spawn_app_with(b, Settings::default(), None).await;
    let r = app.post("/users", &user("lower@example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert!(r.header("location").unwrap().ends_with(&format!("/Users/{id}")));
    let r = app.get(&format!("/users/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get(&format!("/USERS/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get("/users?filter=userName%20eq%20%22lower@example.com%22").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r =
        app.post("/Users/.SEARCH", &json!({"filter": "userName eq \"lower@example.com\""})).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = app.post("/groups", &group("Lower", &[&id])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.post("/Groups/.search", &json!({"filter": "displayName eq \"Lower\""})).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    let r = app.post("/groups/.Search", &json!({"filter": "displayName eq \"Lower\""})).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    for path in ["/serviceproviderconfig", "/resourcetypes", "/SCHEMAS", "/Resourcetypes/User/"] {
        assert_eq!(app.get(path).await.status, StatusCode::OK, "{path}");
    }
    let r = app.request(Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

/// Runs the command to its end, failing the test (not hanging it) if it is still running after
/// 30 s — as `serve` would be if it accepted what it must refuse.
fn output_within_30s(cmd: &mut std::process::Command) -> std::process::Output {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("still running after 30 s: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn config_file(dir: &std::path::Path, toml: &str) -> String {
    let path = dir.join("c.toml");
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

/// An invalid CIDR in `server.trusted_proxies` is a configuration error naming the key.
#[test]
fn an_invalid_trusted_proxy_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let cfg =
        config_file(dir.path(), "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n");
    let out = output_within_30s(command(&url).args([
        "--config",
        &cfg,
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("server.trusted_proxies") && stderr.contains("10.0.0.0/33"),
        "{stderr}"
    );
    assert!(!dir.path().join("x.db").exists(), "refused before the database is opened");
}

/// A mounted token under 32 characters stops `serve` (exit 2), naming the file.
#[test]
fn a_short_mounted_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    std::fs::write(tokens.join("okta"), format!("scimbridge_{}", "o".repeat(43))).unwrap();
    std::fs::write(tokens.join("entra"), "abc\n").unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let out = output_within_30s(command(&url).env("SCIMBRIDGE_AUTH__TOKENS_DIR", &tokens).args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&tokens.join("entra").display().to_string()), "{stderr}");
    assert!(stderr.contains("32"), "{stderr}");
    assert!(!stderr.contains("abc"), "the token itself is not shown: {stderr}");
}

/// Database URL secrets (`password=`, `sslpassword=`, the userinfo password) never reach a
/// message: an unreachable PostgreSQL, and an unsupported scheme.
#[test]
fn database_url_secrets_are_redacted() {
    let port = free_port(); // nothing listens there
    for url in [
        format!(
            "postgres://scim:secret1@127.0.0.1:{port}/db?password=secret2&sslmode=disable&sslpassword=secret3"
        ),
        "mysql://scim:secret1@db/x?password=secret2".to_owned(),
    ] {
        let out = output_within_30s(command(&url).arg("migrate"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("scim:***@"), "the URL is shown, redacted: {stderr}");
        assert!(stderr.contains("password=***"), "{stderr}");
        assert!(!stderr.contains("secret"), "{stderr}");
    }
}

/// Every PostgreSQL connection of the store runs with `database.statement_timeout_seconds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statement_timeout() {
    let (url, _db) = fresh_database(Backend::Postgres).await;
    let options = scimbridge::store::postgres::connect_options(&url, 1).unwrap();
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let shown: String =
        sqlx::query_scalar("SHOW statement_timeout").fetch_one(&pool).await.unwrap();
    assert_eq!(shown, "1s");
    let err = sqlx::query("SELECT pg_sleep(3)").execute(&pool).await.unwrap_err();
    let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("57014"), "query_canceled: {err}");
    let none = scimbridge::store::postgres::connect_options(&url, 0).unwrap();
    let pool = sqlx::PgPool::connect_with(none).await.unwrap();
    let shown: String =
        sqlx::query_scalar("SHOW statement_timeout").fetch_one(&pool).await.unwrap();
    assert_eq!(shown, "0");
    // The store migrates with such a timeout in force (the migration connection lifts it).
    let store = scimbridge::store::connect_configured(
        &scimbridge::config::DatabaseSettings {
            url: url.clone(),
            statement_timeout_seconds: 1,
            ..Default::default()
        },
        2,
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store.ready().await.unwrap();
}
