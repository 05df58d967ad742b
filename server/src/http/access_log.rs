//! One log line per HTTP request (issue 14): method, route, status, latency, source, request id,
//! user agent and client address; for a rejected or failed request also its status, `scimType`
//! and detail, so that a rejection is that one line and no `Debug` dump. Never the
//! `Authorization` header or the query string (SCIM filters carry names, and a careless client
//! may put a secret there).
//!
//! `[log] access = false` leaves out the lines of requests that succeeded; rejected and failed
//! requests are logged either way. Probes and `/metrics` that succeed are logged at debug: the
//! kubelet and Prometheus call them every few seconds, and their lines would bury the rest.

use super::AppState;
use crate::error::ApiError;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;
use tracing::Instrument;

/// The routes polled by machines, logged at debug when they succeed.
const POLLED_ROUTES: [&str; 3] = ["/livez", "/readyz", "/metrics"];
/// Longer user agents and unmatched paths are cut: a client should not fill the log.
const MAX_LOGGED_CHARS: usize = 256;

/// What the inner layers learn about a request for its line: the route pattern it matched and
/// who sent it. Shared through the request's extensions, because a request a middleware refuses
/// (a 401) comes back to the outer layers as an error, without the request.
#[derive(Clone, Default)]
struct Learned(Rc<RefCell<Facts>>);

#[derive(Default)]
struct Facts {
    route: Option<String>,
    source: Option<String>,
}

/// Records who sent the request: the source of its token, or `admin`. Called once the token
/// is verified; the request's span carries it from then on, too.
pub fn record_source(req: &ServiceRequest, source: &str) {
    if let Some(learned) = req.extensions().get::<Learned>() {
        learned.0.borrow_mut().source = Some(source.to_owned());
    }
    tracing::Span::current().record("source", source);
}

/// Innermost, after the path was normalised: the route pattern the request matches
/// (`/scim/v2/Users/{id}`), so the line never carries ids.
pub async fn note_route(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(learned) = req.extensions().get::<Learned>() {
        learned.0.borrow_mut().route = req.match_pattern();
    }
    next.call(req).await
}

/// Outermost: gives the request an id and a span (so that whatever is logged while it is
/// served names the request), and writes its line when the response is ready. The latency is
/// the time to the response's head; a streamed body is not waited for.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().to_string();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let access = state.as_ref().is_none_or(|s| s.settings.log.access);
    let client_ip = state
        .as_ref()
        .and_then(|s| super::forwarded::client_ip(req.request(), &s.edge.trusted_proxies));
    let method = req.method().as_str().to_owned();
    let path = cut(req.path());
    let user_agent =
        req.headers().get(header::USER_AGENT).map(|v| cut(&String::from_utf8_lossy(v.as_bytes())));
    let learned = Learned::default();
    req.extensions_mut().insert(learned.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        path = %path,
        source = tracing::field::Empty
    );
    let result = next.call(req).instrument(span).await;

    let (status, error) = match &result {
        Ok(response) => (response.status(), response.response().error()),
        Err(e) => (e.as_response_error().status_code(), Some(e)),
    };
    let Facts { route, source } = learned.0.take();
    let line = Line {
        method: &method,
        route: route.as_deref().unwrap_or(&path),
        status: status.as_u16(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        source: source.as_deref(),
        request_id: &id,
        user_agent: user_agent.as_deref(),
        client_ip,
        error: error.map(Rejection::of),
    };
    line.write(access);
    let mut response = result?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    Ok(response)
}

/// What the client was told, and for a server fault the cause (the client saw only a generic
/// detail).
struct Rejection {
    scim_type: Option<&'static str>,
    detail: String,
    cause: Option<String>,
}

impl Rejection {
    fn of(e: &actix_web::Error) -> Rejection {
        match e.as_error::<ApiError>() {
            Some(api) => {
                let scim = api.scim_error();
                Rejection {
                    scim_type: scim.scim_type.map(|t| t.as_str()),
                    detail: scim.detail,
                    cause: match api {
                        ApiError::Internal(cause) => Some(format!("{cause:#}")),
                        _ => None,
                    },
                }
            }
            // actix's own: a body that is too large or too slow, a malformed header.
            None => Rejection { scim_type: None, detail: e.to_string(), cause: None },
        }
    }
}

struct Line<'a> {
    method: &'a str,
    route: &'a str,
    status: u16,
    latency_ms: f64,
    source: Option<&'a str>,
    request_id: &'a str,
    user_agent: Option<&'a str>,
    client_ip: Option<std::net::IpAddr>,
    error: Option<Rejection>,
}

impl Line<'_> {
    fn write(&self, access: bool) {
        // tracing needs a level known at compile time: one call per level.
        macro_rules! line {
            ($level:expr, $message:literal) => {
                tracing::event!(
                    target: "scimbridge::access",
                    $level,
                    method = %self.method,
                    route = self.route,
                    status = self.status,
                    latency_ms = (self.latency_ms * 1000.0).round() / 1000.0,
                    source = self.source,
                    request_id = %self.request_id,
                    user_agent = self.user_agent,
                    client_ip = self.client_ip.map(tracing::field::display),
                    scim_type = self.error.as_ref().and_then(|e| e.scim_type),
                    detail = self.error.as_ref().map(|e| e.detail.as_str()),
                    error = self.error.as_ref().and_then(|e| e.cause.as_deref()),
                    $message
                )
            };
        }
        use tracing::Level;
        let polled = POLLED_ROUTES.contains(&self.route);
        match self.status {
            500.. if polled => line!(Level::WARN, "request failed"),
            500.. => line!(Level::ERROR, "request failed"),
            // A wrong, expired or revoked token: an IdP that stopped provisioning, or a probe.
            401 | 403 => line!(Level::WARN, "request rejected"),
            400.. => line!(Level::INFO, "request rejected"),
            _ if !access => {}
            _ if polled => line!(Level::DEBUG, "request"),
            _ => line!(Level::INFO, "request"),
        }
    }
}

/// At most [`MAX_LOGGED_CHARS`] characters.
fn cut(s: &str) -> String {
    match s.char_indices().nth(MAX_LOGGED_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        assert_eq!(cut("okta"), "okta");
        let long = "x".repeat(1000);
        assert_eq!(cut(&long).chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(cut(&"é".repeat(300)).ends_with('…'));
    }

    #[test]
    fn rejections_carry_the_scim_error_and_faults_their_cause() {
        let e: actix_web::Error = ApiError::Scim(scim_schema::ScimError::bad_request(
            scim_schema::ScimType::Uniqueness,
            "userName taken",
        ))
        .into();
        let r = Rejection::of(&e);
        assert_eq!(
            (r.scim_type, r.detail.as_str(), r.cause),
            (Some("uniqueness"), "userName taken", None)
        );
        let e: actix_web::Error =
            ApiError::Internal(anyhow::anyhow!("disk full").context("writing the journal")).into();
        let r = Rejection::of(&e);
        assert!(r.detail.contains("internal error"), "{}", r.detail);
        assert_eq!(r.cause.as_deref(), Some("writing the journal: disk full"));
        assert_eq!(e.as_response_error().status_code(), 500);
    }
}
