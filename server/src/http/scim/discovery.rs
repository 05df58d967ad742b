//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas` (RFC 7644 §4). Read-only: other
//! methods answer 405.

use super::response::{base_url, list_response, scim_json};
use crate::error::ApiError;
use crate::http::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use scim_schema::ScimError;
use scim_schema::discovery;

pub async fn service_provider_config(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = base_url(&req, &state);
    scim_json(StatusCode::OK, &discovery::service_provider_config(&base, &state.provider))
}

pub async fn resource_types(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let all = discovery::resource_types(&base_url(&req, &state));
    let total = all.len() as i64;
    scim_json(StatusCode::OK, &list_response(total, 1, all))
}

pub async fn resource_type(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let base = base_url(&req, &state);
    discovery::resource_types(&base)
        .into_iter()
        .find(|rt| rt["id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(&name)))
        .map(|rt| scim_json(StatusCode::OK, &rt))
        .ok_or_else(|| {
            ApiError::Scim(ScimError::not_found(format!("resource type \"{name}\" not found")))
        })
}

pub async fn schemas(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let all = discovery::schemas(&base_url(&req, &state));
    let total = all.len() as i64;
    scim_json(StatusCode::OK, &list_response(total, 1, all))
}

pub async fn schema(
    req: HttpRequest,
    state: web::Data<AppState>,
    urn: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    discovery::schema_by_urn(&urn, &base_url(&req, &state))
        .map(|s| scim_json(StatusCode::OK, &s))
        .ok_or_else(|| ApiError::Scim(ScimError::not_found(format!("schema \"{urn}\" not found"))))
}
