//! `POST /Bulk`: the request size and operation count are checked against what
//! `/ServiceProviderConfig` advertises (413 beyond either).

use super::body::read_bulk_json;
use super::response::{base_url, scim_json};
use crate::error::ApiError;
use crate::http::AppState;
use crate::scim::Caller;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

pub async fn bulk(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The permit (a body over scim.max_request_bytes) is held until the response is built.
    let (body, _permit) = read_bulk_json(&req, payload, &state).await?;
    let base = base_url(&req, &state);
    let response = crate::scim::bulk::run(
        &state.resources,
        &caller,
        &body,
        state.settings.scim.bulk_max_operations,
        &base,
    )
    .await?;
    Ok(scim_json(StatusCode::OK, &response))
}
