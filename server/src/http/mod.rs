//! The HTTP surface: SCIM under `/scim/v2`, the admin API under `/admin/v1`, health probes and
//! Prometheus metrics at the root.

pub mod access_log;
pub mod admin;
pub mod forwarded;
pub mod health;
pub mod listeners;
pub mod prometheus;
pub mod scim;
pub mod tls;

use crate::auth::Authenticator;
use crate::config::Settings;
use crate::error::ApiError;
use crate::scim::ResourceService;
use crate::scim::compat::DetectionRecorder;
use crate::store::Store;
use actix_web::web;
use scim_schema::discovery::ServiceProviderSettings;
use std::sync::Arc;

/// Shared by every request.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub auth: Authenticator,
    pub resources: ResourceService,
    pub provider: ServiceProviderSettings,
    /// What `auto` recognised of each source's client.
    pub detections: DetectionRecorder,
    /// Starts sync runs; None when sync is off (no AWS Region configured).
    pub sync: Option<crate::sync::scheduler::SyncHandle>,
    /// Shared by every worker.
    pub edge: Arc<Edge>,
}

/// What the HTTP workers share about the edge of the server (issue 13).
pub struct Edge {
    /// Peers whose forwarded headers are honoured.
    pub trusted_proxies: forwarded::TrustedProxies,
    /// One permit per `/Bulk` body larger than `scim.max_request_bytes` being read or processed.
    pub large_bodies: Arc<tokio::sync::Semaphore>,
    /// The `server.metrics_listen` address as bound, when set.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        settings: Arc<Settings>,
        sync: Option<crate::sync::scheduler::SyncHandle>,
        edge: Arc<Edge>,
    ) -> AppState {
        let ttl = std::time::Duration::from_secs(settings.scim.token_cache_seconds);
        AppState {
            auth: Authenticator::new(store.clone(), ttl),
            resources: ResourceService::new(store.clone(), &settings),
            detections: DetectionRecorder::new(store.clone()),
            provider: ServiceProviderSettings {
                max_results: settings.scim.max_results,
                bulk_max_operations: settings.scim.bulk_max_operations,
                bulk_max_payload_size: settings.scim.max_payload_bytes,
                documentation_uri: None,
            },
            store,
            settings,
            sync,
            edge,
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::livez).service(health::readyz).service(prometheus::metrics_endpoint);
    admin::configure(cfg);
    scim::configure(cfg);
}

/// The application state and the verified bearer token of a request (for the SCIM and admin
/// gates).
pub(crate) async fn authenticate(
    req: &actix_web::dev::ServiceRequest,
) -> Result<(web::Data<AppState>, crate::auth::Principal), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
    let header =
        req.headers().get(actix_web::http::header::AUTHORIZATION).and_then(|h| h.to_str().ok());
    let principal = state.auth.authenticate(header).await.map_err(ApiError::from)?;
    let source = match &principal {
        crate::auth::Principal::Scim { source, .. } => source.name.as_str(),
        crate::auth::Principal::Admin { .. } => "admin",
    };
    access_log::record_source(req, source);
    Ok((state, principal))
}

/// A gate's refusal (401, 403) as a response rather than an `Err`: an error leaves the outer
/// middleware without its request, so it could not carry `X-Request-Id`.
pub(crate) fn refused<B>(
    req: actix_web::dev::ServiceRequest,
    error: ApiError,
) -> actix_web::dev::ServiceResponse<actix_web::body::EitherBody<B>> {
    let (http_req, _) = req.into_parts();
    actix_web::dev::ServiceResponse::from_err(error, http_req).map_into_right_body()
}

/// Unknown paths get a SCIM 404, not an empty body.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(no_such_endpoint(&req))
}

pub fn no_such_endpoint(req: &actix_web::HttpRequest) -> ApiError {
    ApiError::Scim(scim_schema::ScimError::not_found(format!("no such endpoint: {}", req.path())))
}
