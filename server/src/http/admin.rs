//! The admin API under `/admin/v1` (admin token only): start a sync run, read runs, status and
//! the audit log. Errors use the SCIM error shape like the rest of the server.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::AppState;
use crate::status::run_json;
use crate::store::AuditQuery;
use crate::sync::engine::RunOptions;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, web};
use scim_schema::ScimError;
use serde::Deserialize;
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin/v1")
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| bad_request(format!("bad query parameter: {e}")).into()),
            )
            .wrap(from_fn(require_admin_token))
            .route("/sync", web::post().to(start_sync))
            .route("/sync/runs", web::get().to(list_runs))
            .route("/sync/runs/{id}", web::get().to(get_run))
            .route("/status", web::get().to(status))
            .route("/audit", web::get().to(audit)),
    );
}

async fn require_admin_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match crate::http::authenticate(&req).await?.1 {
        Principal::Admin { .. } => next.call(req).await,
        Principal::Scim { .. } => Err(ApiError::Scim(ScimError::new(
            403,
            None,
            "a source token cannot use the admin API: create one with `scimbridge token create --admin`",
        ))
        .into()),
    }
}

fn bad_request(detail: impl Into<String>) -> ApiError {
    ApiError::Scim(ScimError::new(400, Some(scim_schema::ScimType::InvalidValue), detail))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncRequest {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    full: bool,
    #[serde(default)]
    force: bool,
}

/// `POST /sync` with options in the query string or a JSON body (either may be empty) → 202
/// `{"run_id"}`; the run goes through the scheduler (one at a time across replicas).
async fn start_sync(
    state: web::Data<AppState>,
    query: web::Query<SyncRequest>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(sync) = &state.sync else {
        return Err(ApiError::Scim(ScimError::new(
            409,
            None,
            "sync is off on this server: serve syncs only with [sync] enabled = true (and an AWS \
             Region); `scimbridge sync` runs by hand",
        )));
    };
    let body: SyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SyncRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            bad_request(format!("the body must be {{\"dry_run\", \"full\", \"force\"}}: {e}"))
        })?
    };
    let opts = RunOptions {
        dry_run: query.dry_run || body.dry_run,
        full: query.full || body.full,
        force: query.force || body.force,
        trigger: "admin".into(),
        ..RunOptions::default()
    };
    let run_id = sync.request(opts).await.map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    Ok(HttpResponse::Accepted().json(json!({ "run_id": run_id })))
}

#[derive(Debug, Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn list_runs(
    state: web::Data<AppState>,
    q: web::Query<Limit>,
) -> Result<HttpResponse, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let runs = state.store.list_runs(limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "runs": runs.iter().map(run_json).collect::<Vec<_>>() })))
}

async fn get_run(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("sync run", &id);
    let run_id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let run = state.store.get_run(run_id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(run_json(&run)))
}

/// The status report (`scimbridge status --json` prints the same): sources, counts, the last
/// run, and the sync's health.
async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let enabled = state.sync.is_some();
    let report = crate::status::report(&*state.store, &state.settings, enabled).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Debug, Deserialize)]
struct AuditParams {
    since: Option<String>,
    /// The `seq` of the last entry already read (paging).
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /audit?since=24h&after=SEQ&limit=N` → `{"entries": [...]}`, oldest first.
async fn audit(
    state: web::Data<AppState>,
    q: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let since = match &q.since {
        Some(s) => crate::sync::audit::parse_since(s, crate::store::now()).map_err(bad_request)?,
        None => chrono::DateTime::UNIX_EPOCH,
    };
    let query = AuditQuery {
        since,
        after_seq: q.after.unwrap_or(0),
        limit: q.limit.unwrap_or(1000).clamp(1, 10_000),
    };
    let entries = state.store.list_audit(&query).await?;
    Ok(HttpResponse::Ok().json(json!({ "entries": entries })))
}
