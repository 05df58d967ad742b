//! `/metrics` in the Prometheus text format (no token: keep it inside the cluster, see the
//! chart's NetworkPolicy), and the middleware that counts and times every HTTP request.

use super::AppState;
use crate::scim::Caller;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, get, web};

#[get("/metrics")]
pub async fn metrics_endpoint(state: web::Data<AppState>) -> HttpResponse {
    // Gauges of the database's state are read at scrape time, so every replica reports the
    // same values whichever ran the sync.
    match state.store.sync_counts().await {
        Ok(c) => {
            metrics::gauge!("scimbridge_sync_pending_journal_entries")
                .set(c.pending_journal_entries as f64);
            metrics::gauge!("scimbridge_aws_principals", "kind" => "user").set(c.aws_users as f64);
            metrics::gauge!("scimbridge_aws_principals", "kind" => "group")
                .set(c.aws_groups as f64);
            metrics::gauge!("scimbridge_aws_memberships").set(c.aws_memberships as f64);
            metrics::gauge!("scimbridge_aws_assignments", "kind" => "account")
                .set(c.aws_account_assignments as f64);
            metrics::gauge!("scimbridge_aws_assignments", "kind" => "application")
                .set(c.aws_application_assignments as f64);
            metrics::gauge!("scimbridge_database_up").set(1.0);
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the sync counts");
            metrics::gauge!("scimbridge_database_up").set(0.0);
        }
    }
    match state.store.pending_summary().await {
        Ok(p) => metrics::gauge!("scimbridge_sync_pending_resources").set(p.count as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the pending changes"),
    }
    // Also set by the scheduler when it sees a pause; read here too, so that every replica
    // (sync on or off) reports the database's pause.
    match state.store.sync_pause().await {
        Ok(pause) => {
            metrics::gauge!("scimbridge_sync_paused").set(if pause.is_some() { 1.0 } else { 0.0 })
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read whether sync is paused"),
    }
    for p in state.store.pool_stats() {
        let busy = p.open.saturating_sub(p.idle);
        metrics::gauge!("scimbridge_db_pool_connections", "pool" => p.pool, "state" => "idle")
            .set(f64::from(p.idle));
        metrics::gauge!("scimbridge_db_pool_connections", "pool" => p.pool, "state" => "busy")
            .set(f64::from(busy));
        metrics::gauge!("scimbridge_db_pool_max_connections", "pool" => p.pool)
            .set(f64::from(p.max));
    }
    let mut body = crate::telemetry::prometheus().render();
    body.push_str(&sync_healthy(&state).await);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

/// `scimbridge_sync_healthy{reason}`: 1 while changes reach AWS as configured (`ok`, or
/// `disabled` on a replica that does not sync), else 0 with why (`paused`, `failing`,
/// `unreachable`, `approval_pending`). Written here rather than through the recorder, which
/// cannot drop a series: exactly one series, of the current reason, is ever exposed, and it is
/// read from the database at scrape time, so every replica reports the same.
async fn sync_healthy(state: &AppState) -> String {
    let reason = match crate::sync::health::read(&*state.store, state.sync.is_some()).await {
        Ok(reading) => reading.health.reason,
        Err(e) => {
            // scimbridge_database_up says so; no guess at the sync's health.
            tracing::warn!(error = %e, "metrics: cannot read the sync's health");
            return String::new();
        }
    };
    format!(
        "# HELP scimbridge_sync_healthy 1 while changes reach AWS as configured, else 0; reason says why\n\
         # TYPE scimbridge_sync_healthy gauge\n\
         scimbridge_sync_healthy{{reason=\"{}\"}} {}\n",
        reason.as_str(),
        u8::from(reason.healthy())
    )
}

/// `scimbridge_http_requests_total{route, method, status, source}` and
/// `scimbridge_http_request_duration_seconds{route, method}`; the route is the matched pattern
/// (`/scim/v2/Users/{id}`), never the raw path, so ids do not explode the label set.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let result = next.call(req).await;
    // A request refused by a middleware (401, 403) arrives as an error: counted all the same.
    let (status, source) = match &result {
        Ok(response) => (
            response.status(),
            response
                .request()
                .extensions()
                .get::<Caller>()
                .map_or_else(String::new, |c| c.source.name.to_string()),
        ),
        Err(e) => (e.as_response_error().status_code(), String::new()),
    };
    let status = status.as_u16().to_string();
    metrics::counter!("scimbridge_http_requests_total", "route" => route.clone(),
        "method" => method.clone(), "status" => status, "source" => source)
    .increment(1);
    metrics::histogram!("scimbridge_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    result
}
