//! The admin API under `/admin/v1` (admin token only): start a sync run, pause and resume sync,
//! approve a run's held destructive actions, read runs (and a run's plan, page by page),
//! status, the audit log and the access report. Errors use the SCIM error shape like the rest
//! of the server.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::http::AppState;
use crate::status::run_json;
use crate::store::{AuditQuery, Trigger};
use crate::sync::control;
use crate::sync::engine::RunOptions;
use crate::sync::run::plan_pages::PAGE_SIZE;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpResponse, web};
use scim_schema::ScimError;
use serde::Deserialize;
use serde_json::{Value, json};

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
            .route("/sync/pause", web::post().to(pause_sync))
            .route("/sync/resume", web::post().to(resume_sync))
            .route("/sync/runs/{id}", web::get().to(get_run))
            .route("/sync/runs/{id}/plan", web::get().to(get_run_plan))
            .route("/sync/runs/{id}/approve", web::post().to(approve_run))
            .route("/status", web::get().to(status))
            .route("/audit", web::get().to(audit))
            .route("/access", web::get().to(access)),
    );
}

async fn require_admin_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    match crate::http::authenticate(&req).await {
        Ok((_, Principal::Admin { token_id })) => {
            req.extensions_mut().insert(AdminCaller(token_id));
            Ok(next.call(req).await?.map_into_left_body())
        }
        Ok((_, Principal::Scim { .. })) => Ok(crate::http::refused(
            req,
            ApiError::Scim(ScimError::new(
                403,
                None,
                "a source token cannot use the admin API: create one with `scimbridge token create --admin`",
            )),
        )),
        Err(e) => Ok(crate::http::refused(req, e)),
    }
}

/// The admin token of the request (what pause, resume and approve record as `by`).
#[derive(Debug, Clone, Copy)]
struct AdminCaller(uuid::Uuid);

impl AdminCaller {
    fn by(self) -> String {
        format!("admin:{}", self.0)
    }
}

/// 409 naming the pause: no run starts while sync is paused (a dry run still does).
fn paused_conflict(pause: crate::store::SyncPause) -> ApiError {
    ApiError::Scim(ScimError::new(
        409,
        None,
        format!(
            "{}; POST /admin/v1/sync/resume ends it (a dry run still works: it changes nothing)",
            control::describe_pause(&pause)
        ),
    ))
}

/// A JSON body that may be empty (then the default).
fn optional_body<T: Default + serde::de::DeserializeOwned>(
    body: &web::Bytes,
    shape: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("the body must be {shape} or empty: {e}")))
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
    let body: SyncRequest =
        optional_body(&body, "{\"dry_run\": bool, \"full\": bool, \"force\": bool}")?;
    let dry_run = query.dry_run || body.dry_run;
    if !dry_run && let Some(pause) = state.store.sync_pause().await? {
        return Err(paused_conflict(pause));
    }
    let opts = RunOptions {
        dry_run,
        full: query.full || body.full,
        force: query.force || body.force,
        trigger: Trigger::Admin,
        ..RunOptions::default()
    };
    let run_id = sync.request(opts).await.map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
    Ok(HttpResponse::Accepted().json(json!({ "run_id": run_id })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseRequest {
    reason: Option<String>,
}

/// `POST /sync/pause` (body `{"reason": "…"}` or empty) → 200 `{"paused": {since, reason, by},
/// "already_paused": bool}`. Pausing a paused sync keeps the first pause (its reason too).
async fn pause_sync(
    state: web::Data<AppState>,
    caller: web::ReqData<AdminCaller>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: PauseRequest = optional_body(&body, "{\"reason\": string}")?;
    let reason = control::reason(body.reason.as_deref()).map_err(bad_request)?;
    let paused = control::pause(&*state.store, reason, &caller.by()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "paused": control::pause_json(Some(&paused.pause)),
        "already_paused": !paused.new,
    })))
}

/// `POST /sync/resume` → 200 `{"resumed": bool, "was_paused": {since, reason, by} | null}`;
/// resuming a sync that is not paused changes nothing.
async fn resume_sync(
    state: web::Data<AppState>,
    caller: web::ReqData<AdminCaller>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad_request("POST /admin/v1/sync/resume takes no body"));
    }
    let ended = control::resume(&*state.store, &caller.by()).await?;
    Ok(HttpResponse::Ok().json(json!({
        "resumed": ended.is_some(),
        "was_paused": control::pause_json(ended.as_ref()),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveRequest {
    #[serde(default)]
    force: bool,
}

/// `POST /sync/runs/{id}/approve` (body `{"force": true}` to pass the delete guard, or empty):
/// records the approval of what the run held and requests a run that applies it → 202
/// `{"approved": id, "run_id": "…"}`. While sync is paused, or off on this server, the approval
/// is recorded and waits for the next run: 200 with `"run_id": null` and a `note`.
async fn approve_run(
    state: web::Data<AppState>,
    caller: web::ReqData<AdminCaller>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let run_id = uuid::Uuid::parse_str(&id)
        .map_err(|_| bad_request(format!("{:?} is not a sync run id (a UUID)", id.as_str())))?;
    let body: ApproveRequest = optional_body(&body, "{\"force\": bool}")?;
    let hold = control::approve(&*state.store, run_id, &caller.by())
        .await?
        .map_err(|e| ApiError::Scim(ScimError::new(e.status(), None, e.to_string())))?;
    let approved = json!({"approved": run_id, "held": hold.action_keys.len()});
    let wait = |note: String| {
        let mut v = approved.clone();
        v["run_id"] = Value::Null;
        v["note"] = json!(note);
        HttpResponse::Ok().json(v)
    };
    if let Some(pause) = state.store.sync_pause().await? {
        return Ok(wait(format!(
            "{}: the approved actions go with the first run after it is resumed",
            control::describe_pause(&pause)
        )));
    }
    let Some(sync) = &state.sync else {
        return Ok(wait(
            "sync is off on this server: the approved actions go with the next `scimbridge sync`"
                .into(),
        ));
    };
    let opts =
        RunOptions { force: body.force, trigger: Trigger::Approval, ..RunOptions::default() };
    match sync.request(opts).await {
        Ok(new_run) => {
            let mut v = approved;
            v["run_id"] = json!(new_run);
            Ok(HttpResponse::Accepted().json(v))
        }
        Err(e) => Ok(wait(format!("{e:#}; the approved actions go with the next run"))),
    }
}

/// The run's approval as it stands now (the report has it as it was when the run ended).
async fn with_live_approval(state: &AppState, mut run: Value) -> Result<Value, ApiError> {
    let hold_run = run
        .get("approval")
        .and_then(|a| a.get("run_id"))
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok());
    if let Some(id) = hold_run
        && let Some(hold) = state.store.get_hold(id).await?
    {
        run["approval"] = control::hold_json(&hold);
    }
    Ok(run)
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
    let mut runs = Vec::new();
    for r in state.store.list_runs(limit).await? {
        runs.push(with_live_approval(&state, run_json(&r)).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "runs": runs })))
}

async fn get_run(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("sync run", &id);
    let run_id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let run = state.store.get_run(run_id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(with_live_approval(&state, run_json(&run)).await?))
}

#[derive(Debug, Deserialize)]
struct PlanPageQuery {
    /// Read as text, so that `-1` or `x` get a message about pages, not about integers.
    page: Option<String>,
}

/// `GET /sync/runs/{id}/plan?page=N` (from 0; default 0) → `{"run_id", "page", "pages",
/// "actions"}`: one page of the run's plan, at most [`PAGE_SIZE`] actions in plan order. A
/// large plan is read from its stored pages (the run report has `plan_pages`); a small one,
/// inline in the report, is served in the same pages, so a client can page any plan. 400 bad
/// page; 404 unknown run, a run without a plan, or a page past the end.
async fn get_run_plan(
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<PlanPageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = match q.page.as_deref() {
        None => 0,
        Some(p) => p.parse::<u32>().map_err(|_| {
            bad_request(format!("page={p:?} is not a page number: pages are numbered 0, 1, 2, …"))
        })?,
    };
    let not_found = || ApiError::not_found("sync run", &id);
    let run_id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let run = state.store.get_run(run_id).await?.ok_or_else(not_found)?;
    let past_end = |pages: usize| {
        ApiError::Scim(ScimError::not_found(format!(
            "sync run {run_id}'s plan has {pages} page{} (0 to {}): there is no page {page}",
            if pages == 1 { "" } else { "s" },
            pages - 1
        )))
    };
    let mut report = run.report;
    let stored = report.get("plan_pages").and_then(Value::as_u64).unwrap_or(0);
    let (pages, actions) = if stored > 0 {
        if u64::from(page) >= stored {
            return Err(past_end(usize::try_from(stored).unwrap_or(usize::MAX)));
        }
        let actions = state.store.plan_page(run_id, page).await?.ok_or_else(|| {
            ApiError::Scim(ScimError::not_found(format!(
                "page {page} of sync run {run_id}'s plan is no longer stored"
            )))
        })?;
        (stored, actions)
    } else if let Some(Value::Array(plan)) = report.get_mut("plan").map(Value::take) {
        // Even an empty plan has its one (empty) page.
        let pages = plan.len().div_ceil(PAGE_SIZE).max(1);
        let first = usize::try_from(page).unwrap_or(usize::MAX);
        if first >= pages {
            return Err(past_end(pages));
        }
        let actions = plan.into_iter().skip(first * PAGE_SIZE).take(PAGE_SIZE).collect();
        (pages as u64, actions)
    } else {
        let running = if run.status == crate::store::RunStatus::Running {
            " (it is still running)"
        } else {
            ""
        };
        return Err(ApiError::Scim(ScimError::not_found(format!(
            "sync run {run_id} has no plan{running}: only dry runs and runs the delete guard \
             refused list one"
        ))));
    };
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run_id,
        "page": page,
        "pages": pages,
        "actions": actions,
    })))
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessParams {
    user: Option<String>,
    group: Option<String>,
    account: Option<String>,
    permission_set: Option<String>,
    /// Read as text, so that `0` or `x` get a message about page sizes, not about integers.
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /access?user=|group=|account=|permission_set=&limit=N&cursor=…` → `{"rows": [...],
/// "next_cursor": "…" | null, "as_of": {"last_full_run", "last_run"}}`: who can reach what, one
/// filter at a time, a page of at most `limit` rows (default 100, at most 1000); the next page
/// is read with the same filter and `cursor=next_cursor`. 400 for two filters, a malformed
/// account id, a bad limit, or a cursor this server did not write for this query.
async fn access(
    state: web::Data<AppState>,
    q: web::Query<AccessParams>,
) -> Result<HttpResponse, ApiError> {
    use crate::access_report::{Filters, cursor, limit};
    let q = q.into_inner();
    let filters = Filters {
        user: q.user,
        group: q.group,
        account: q.account,
        permission_set: q.permission_set,
    };
    let filter = filters.parse().map_err(bad_request)?;
    let limit = limit(q.limit.as_deref()).map_err(bad_request)?;
    let after = match q.cursor.as_deref() {
        Some(c) => Some(cursor::decode(c, filter.as_ref()).map_err(bad_request)?),
        None => None,
    };
    let query = crate::store::AccessQuery { filter, after, limit };
    let page = state.store.access_page(&query).await?;
    let next_cursor = match page.rows.last() {
        Some(last) if page.more => Some(cursor::encode(query.filter.as_ref(), &last.position())),
        _ => None,
    };
    let as_of = state.store.access_as_of().await?;
    Ok(HttpResponse::Ok().json(json!({
        "rows": page.rows,
        "next_cursor": next_cursor,
        "as_of": as_of,
    })))
}
