//! Middleware that runs before routing: which paths each listener serves
//! (`server.metrics_listen`), and SCIM resource-type segments in any case.

use super::AppState;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::uri::PathAndQuery;
use actix_web::middleware::Next;
use actix_web::web;

/// What the `server.metrics_listen` address serves. The probes stay on the main listener too,
/// so that probes and load balancers set up before `metrics_listen` keep working.
const METRICS_LISTENER_PATHS: [&str; 3] = ["/metrics", "/livez", "/readyz"];

/// With `server.metrics_listen` set, the metrics listener serves only `/metrics` and the
/// probes, and the main listener no longer serves `/metrics` (it labels series with source
/// names): both answer 404 otherwise.
pub async fn split_by_listener(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let metrics_addr =
        req.app_data::<web::Data<AppState>>().and_then(|state| state.edge.metrics_addr);
    if let Some(metrics_addr) = metrics_addr {
        let path = req.path().trim_end_matches('/');
        let on_metrics_listener = req.app_config().local_addr() == metrics_addr;
        let allowed = if on_metrics_listener {
            METRICS_LISTENER_PATHS.contains(&path)
        } else {
            path != "/metrics"
        };
        if !allowed {
            let (http_req, _) = req.into_parts();
            let error = super::no_such_endpoint(&http_req);
            return Ok(ServiceResponse::from_err(error, http_req).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The resource-type segments of the SCIM base, as routed.
const SCIM_SEGMENTS: [&str; 8] = [
    "Users",
    "Groups",
    ".search",
    "Bulk",
    "ServiceProviderConfig",
    "ResourceTypes",
    "Schemas",
    "Me",
];
const SCIM_BASE: &str = "/scim/v2/";

/// `/scim/v2/users/.SEARCH` → `/scim/v2/Users/.search`: validators and some IdPs send
/// resource-type segments in another case. Only those segments change; resource ids and
/// everything else stay as sent. None when nothing changes.
pub fn canonical_scim_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix(SCIM_BASE)?;
    let mut segments: Vec<&str> = rest.split('/').collect();
    let canonical = |s: &str, among: &[&'static str]| -> Option<&'static str> {
        among.iter().copied().find(|c| c.eq_ignore_ascii_case(s) && *c != s)
    };
    let mut changed = false;
    let first = segments.first().copied().unwrap_or_default();
    let kind = SCIM_SEGMENTS.iter().copied().find(|c| c.eq_ignore_ascii_case(first));
    if let (Some(c), Some(seg)) = (canonical(first, &SCIM_SEGMENTS), segments.first_mut()) {
        *seg = c;
        changed = true;
    }
    if matches!(kind, Some("Users" | "Groups"))
        && let Some(second) = segments.get_mut(1)
        && let Some(c) = canonical(second, &[".search"])
    {
        *second = c;
        changed = true;
    }
    changed.then(|| format!("{SCIM_BASE}{}", segments.join("/")))
}

/// Rewrites the request path as [`canonical_scim_path`] says, before routing.
pub async fn case_insensitive_scim_paths(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(path) = canonical_scim_path(req.path()) {
        let head = req.head_mut();
        let mut parts = head.uri.clone().into_parts();
        let path_and_query = match parts.path_and_query.as_ref().and_then(|pq| pq.query()) {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(pq) = PathAndQuery::from_maybe_shared(path_and_query) {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                // Only the letters' case changed, so every byte offset stays valid.
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
            }
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_type_segments_in_any_case() {
        let c = |p: &str| canonical_scim_path(p);
        assert_eq!(c("/scim/v2/users").as_deref(), Some("/scim/v2/Users"));
        assert_eq!(c("/scim/v2/USERS/").as_deref(), Some("/scim/v2/Users/"));
        assert_eq!(c("/scim/v2/groups/.SEARCH").as_deref(), Some("/scim/v2/Groups/.search"));
        assert_eq!(c("/scim/v2/Groups/.Search").as_deref(), Some("/scim/v2/Groups/.search"));
        assert_eq!(
            c("/scim/v2/serviceproviderconfig").as_deref(),
            Some("/scim/v2/ServiceProviderConfig")
        );
        assert_eq!(c("/scim/v2/bulk").as_deref(), Some("/scim/v2/Bulk"));
        assert_eq!(c("/scim/v2/.SEARCH").as_deref(), Some("/scim/v2/.search"));
        assert_eq!(c("/scim/v2/schemas/urn:x:Y").as_deref(), Some("/scim/v2/Schemas/urn:x:Y"));
        // Ids are left as sent.
        assert_eq!(c("/scim/v2/users/AbC-Def").as_deref(), Some("/scim/v2/Users/AbC-Def"));
        assert_eq!(c("/scim/v2/Users/USERS"), None);
        assert_eq!(c("/scim/v2/Users/.SEARCHx"), None);
        // Already canonical, unknown, or outside the SCIM base: untouched.
        assert_eq!(c("/scim/v2/Users/abc"), None);
        assert_eq!(c("/scim/v2/Nope"), None);
        assert_eq!(c("/admin/v1/users"), None);
        assert_eq!(c("/scim/v2"), None);
    }
}
