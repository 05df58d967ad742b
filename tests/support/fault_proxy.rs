//! A small fault-injecting proxy in front of the emulator: it forwards every request, except
//! that it can answer throttling above a request rate (as AWS does above ~20/s), fail every
//! n-th request with a 500, add latency, answer an operation with an error, and hold AWS's
//! asynchronous operations IN_PROGRESS for a while (the emulator finishes them at once) — so the
//! adapter's limiter, retries and status polling are tested against the wire, not against mocks.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// Give `answer` only to the first this many matching requests since `set` (or `start`), then
    /// let that operation through — a transient error, such as a ConflictException while another
    /// operation runs. `None`: every matching request.
    pub answer_times: Option<u64>,
    /// Report CreateAccountAssignment, DeleteAccountAssignment and ProvisionPermissionSet as
    /// IN_PROGRESS, in their answer and in the Describe…Status answers, until this long after
    /// the answer passed — as AWS runs them asynchronously, where the emulator finishes at once.
    pub hold_in_progress: Option<Duration>,
    /// With `hold_in_progress`: a held operation ends FAILED with this reason (in the
    /// Describe…Status answers after its release) instead of SUCCEEDED.
    pub fail_held_with: Option<String>,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: u64,
    pub throttled: u64,
    pub failed: u64,
    /// Arrival times of forwarded requests (for rate measurements).
    pub forwarded_at: Vec<Instant>,
    /// Requests that arrived (before any fault), by operation (`X-Amz-Target` suffix; `?`
    /// without one).
    pub by_operation: BTreeMap<String, u64>,
    /// CreateAccountAssignment and DeleteAccountAssignment answers that passed (status 200).
    pub assignment_operations: u64,
    /// The most account-assignment operations outstanding at once, as AWS would count them
    /// against its limit on concurrent ones: an operation is outstanding from its answer until
    /// `hold_in_progress` later (only at that instant, without a hold). Counted as each starts.
    pub max_outstanding_assignments: usize,
}

/// The faults in force and how many answers `answer` gave under them, under one lock so that
/// `set` replaces both at once.
struct Armed {
    faults: Faults,
    answered: u64,
}

/// What an asynchronous request does, as its RequestId is remembered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Delete,
    Provision,
}

/// An asynchronous request held IN_PROGRESS.
struct Held {
    kind: Kind,
    release: Instant,
    /// The FailureReason it ends with, if it fails.
    fail: Option<String>,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    faults: Mutex<Armed>,
    stats: Mutex<Stats>,
    window: Mutex<VecDeque<Instant>>,
    /// RequestId -> the held request (kept until a later one finds it released).
    held: Mutex<HashMap<String, Held>>,
}

pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<State>,
    handle: actix_web::dev::ServerHandle,
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: Faults) -> FaultProxy {
        Self::start_on(0, upstream, faults).await
    }

    /// [`FaultProxy::start`] on this port (0: a free one): an endpoint that nothing answered
    /// at until now — AWS coming back.
    pub async fn start_on(port: u16, upstream: &str, faults: Faults) -> FaultProxy {
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            // A fresh connection per request: the emulator (Werkzeug) closes connections after
            // each answer, and a pooled one it already closed fails the next request.
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("proxy client"),
            faults: Mutex::new(Armed { faults, answered: 0 }),
            stats: Mutex::new(Stats::default()),
            window: Mutex::new(VecDeque::new()),
            held: Mutex::new(HashMap::new()),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(forward))
        })
        .workers(2)
        .bind(("127.0.0.1", port))
        .expect("bind the fault proxy");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        FaultProxy { endpoint: format!("http://127.0.0.1:{port}"), state, handle }
    }

    /// Replace the faults; `answer_times` counts afresh. Requests already held IN_PROGRESS stay
    /// held until their release.
    pub fn set(&self, faults: Faults) {
        *self.state.faults.lock().unwrap() = Armed { faults, answered: 0 };
    }

    pub fn stats(&self) -> Stats {
        let s = self.state.stats.lock().unwrap();
        Stats {
            requests: s.requests,
            throttled: s.throttled,
            failed: s.failed,
            forwarded_at: s.forwarded_at.clone(),
            by_operation: s.by_operation.clone(),
            assignment_operations: s.assignment_operations,
            max_outstanding_assignments: s.max_outstanding_assignments,
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

/// The operation of a request: the `X-Amz-Target` suffix after the last '.', or `?`.
fn operation_of(req: &HttpRequest) -> String {
    req.headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|target| target.rsplit('.').next())
        .unwrap_or("?")
        .to_owned()
}

/// Whether this request gets the `answer` error: it is for that operation and, with
/// `answer_times`, fewer than that many got it since the faults were set. Decided on the faults
/// in force now, under their lock, so a `set` meanwhile cannot be miscounted.
fn take_answer(state: &State, operation: &str) -> Option<serde_json::Value> {
    let mut armed = state.faults.lock().unwrap();
    let (target, error) = armed.faults.answer.clone()?;
    if target != operation || armed.faults.answer_times.is_some_and(|times| armed.answered >= times)
    {
        return None;
    }
    armed.answered += 1;
    Some(error)
}

/// The status object each asynchronous operation's answer carries, the kind of request it is
/// about, and whether the operation starts one (or describes it).
fn asynchronous(operation: &str) -> Option<(&'static str, Kind, bool)> {
    match operation {
        "CreateAccountAssignment" => Some(("AccountAssignmentCreationStatus", Kind::Create, true)),
        "DeleteAccountAssignment" => Some(("AccountAssignmentDeletionStatus", Kind::Delete, true)),
        "ProvisionPermissionSet" => {
            Some(("PermissionSetProvisioningStatus", Kind::Provision, true))
        }
        "DescribeAccountAssignmentCreationStatus" => {
            Some(("AccountAssignmentCreationStatus", Kind::Create, false))
        }
        "DescribeAccountAssignmentDeletionStatus" => {
            Some(("AccountAssignmentDeletionStatus", Kind::Delete, false))
        }
        "DescribePermissionSetProvisioningStatus" => {
            Some(("PermissionSetProvisioningStatus", Kind::Provision, false))
        }
        _ => None,
    }
}

/// A successful answer of an asynchronous operation, as AWS would give it: a request just
/// started, or described before its release, is IN_PROGRESS (see `Faults::hold_in_progress`).
/// Also counts the account-assignment operations outstanding. Other answers pass unchanged.
fn hold_asynchronous(
    state: &State,
    faults: &Faults,
    operation: &str,
    body: web::Bytes,
) -> web::Bytes {
    let hold = faults.hold_in_progress;
    let Some((key, kind, starts)) = asynchronous(operation) else { return body };
    let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(&body) else { return body };
    let Some(status) = answer.get_mut(key).and_then(|s| s.as_object_mut()) else { return body };
    let Some(request_id) = status.get("RequestId").and_then(|v| v.as_str()).map(str::to_owned)
    else {
        return body;
    };
    let now = Instant::now();
    let mut held = state.held.lock().unwrap();
    let in_progress = if starts {
        let release = now + hold.unwrap_or_default();
        if kind != Kind::Provision {
            let outstanding =
                1 + held.values().filter(|h| h.kind != Kind::Provision && h.release > now).count();
            let mut stats = state.stats.lock().unwrap();
            stats.assignment_operations += 1;
            stats.max_outstanding_assignments = stats.max_outstanding_assignments.max(outstanding);
        }
        if hold.is_some() && status.get("Status").and_then(|v| v.as_str()) == Some("SUCCEEDED") {
            held.retain(|_, h| h.release > now || h.fail.is_some());
            let fail = faults.fail_held_with.clone();
            held.insert(request_id, Held { kind, release, fail });
            true
        } else {
            false
        }
    } else {
        match held.get(&request_id).filter(|h| h.kind == kind) {
            Some(h) if h.release > now => true,
            Some(Held { fail: Some(reason), .. }) => {
                status.insert("Status".to_owned(), json!("FAILED"));
                status.insert("FailureReason".to_owned(), json!(reason));
                return web::Bytes::from(answer.to_string());
            }
            _ => false,
        }
    };
    if !in_progress {
        return body;
    }
    status.insert("Status".to_owned(), json!("IN_PROGRESS"));
    web::Bytes::from(answer.to_string())
}

async fn forward(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let faults = state.faults.lock().unwrap().faults.clone();
    let operation = operation_of(&req);
    let n = {
        let mut stats = state.stats.lock().unwrap();
        stats.requests += 1;
        *stats.by_operation.entry(operation.clone()).or_default() += 1;
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
    if let Some(error) = take_answer(&state, &operation) {
        let mut answer = HttpResponse::BadRequest();
        // As `aws_error` does: the SDK reads the error code from this header first.
        if let Some(kind) = error.get("__type").and_then(|v| v.as_str()) {
            answer.insert_header(("x-amzn-errortype", kind));
        }
        return answer.content_type("application/x-amz-json-1.1").body(error.to_string());
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
            let body = resp.bytes().await.unwrap_or_default();
            if status == actix_web::http::StatusCode::OK {
                builder.body(hold_asynchronous(&state, &faults, &operation, body))
            } else {
                builder.body(body)
            }
        }
        Err(e) => aws_error(502, "BadGateway", &e.to_string()),
    }
}
