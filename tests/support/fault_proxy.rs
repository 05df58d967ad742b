//! A small fault-injecting proxy in front of the emulator: it forwards every request, except
//! that it can answer throttling above a request rate (as AWS does above ~20/s), fail every
//! n-th request with a 500, and add latency — so the adapter's limiter and retries are tested
//! against the wire, not against mocks.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Answer ThrottlingException when more than this many requests arrived in the last second.
    pub throttle_above_per_second: Option<usize>,
    /// Answer 500 InternalServerException to every n-th request.
    pub fail_every: Option<u64>,
    /// Added to every forwarded request.
    pub latency: Duration,
    /// Answer requests for this operation (`X-Amz-Target` suffix) with this AWS error body.
    pub answer: Option<(&'static str, serde_json::Value)>,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: u64,
    pub throttled: u64,
    pub failed: u64,
    /// Arrival times of forwarded requests (for rate measurements).
    pub forwarded_at: Vec<Instant>,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    window: Mutex<VecDeque<Instant>>,
}

pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            // A fresh connection per request: the emulator (Werkzeug) closes connections after
            // each answer, and a pooled one it already closed fails the next request.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("proxy client"),
            faults: Mutex::new(faults),
            stats: Mutex::new(Stats::default()),
            window: Mutex::new(VecDeque::new()),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(forward))
        })
        .workers(2)
        .bind(("127.0.0.1", 0))
        .expect("bind the fault proxy");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        FaultProxy { endpoint: format!("http://127.0.0.1:{port}"), state, handle }
    }

    pub fn set(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = faults;
    }

    pub fn stats(&self) -> Stats {
        let s = self.state.stats.lock().unwrap();
        Stats {
            requests: s.requests,
            throttled: s.throttled,
            failed: s.failed,
            forwarded_at: s.forwarded_at.clone(),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// An AWS JSON error; throttling carries `RetryAfterSeconds` as AWS's does.
fn aws_error(status: u16, kind: &str, message: &str) -> HttpResponse {
    let mut body = serde_json::json!({"__type": kind, "Message": message});
    if kind == "ThrottlingException" {
        body["RetryAfterSeconds"] = serde_json::json!(1);
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .insert_header(("x-amzn-errortype", kind))
        .content_type("application/x-amz-json-1.1")
        .body(body.to_string())
}

async fn forward(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let faults = state.faults.lock().unwrap().clone();
    let n = {
        let mut stats = state.stats.lock().unwrap();
        stats.requests += 1;
        stats.requests
    };
    if let Some(limit) = faults.throttle_above_per_second {
        let now = Instant::now();
        let mut window = state.window.lock().unwrap();
        while window.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1)) {
            window.pop_front();
        }
        if window.len() >= limit {
            state.stats.lock().unwrap().throttled += 1;
            return aws_error(400, "ThrottlingException", "Rate exceeded");
        }
        window.push_back(now);
    }
    if let Some((operation, error)) = &faults.answer {
        let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        if target.ends_with(&format!(".{operation}")) {
            return HttpResponse::BadRequest()
                .content_type("application/x-amz-json-1.1")
                .body(error.to_string());
        }
    }
    if faults.fail_every.is_some_and(|every| n % every == 0) {
        state.stats.lock().unwrap().failed += 1;
        return aws_error(500, "InternalServerException", "injected failure");
    }
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    state.stats.lock().unwrap().forwarded_at.push(Instant::now());
    let url = format!("{}{}", state.upstream, req.uri());
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = state.client.request(method, url).body(body.to_vec());
    for (name, value) in req.headers() {
        if name != "host" && name != "content-length" {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    match out.send().await {
        Ok(resp) => {
            let status = actix_web::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let mut builder = HttpResponse::build(status);
            for (name, value) in resp.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    builder.insert_header((name.as_str(), value.as_bytes()));
                }
            }
            builder.body(resp.bytes().await.unwrap_or_default())
        }
        Err(e) => aws_error(502, "BadGateway", &e.to_string()),
    }
}
