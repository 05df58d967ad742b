//! The bearer-token gate in front of every SCIM endpoint.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::scim::Caller;
use crate::scim::compat::detect_from_request;
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use scim_schema::ScimError;

pub async fn require_source_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let (state, principal) = match crate::http::authenticate(&req).await {
        Ok(verified) => verified,
        Err(e) => return Ok(crate::http::refused(req, e)),
    };
    let caller = match principal {
        Principal::Scim { token_id, source } => Caller::new(source, token_id, &state.settings),
        Principal::Admin { .. } => {
            let e = ApiError::Scim(ScimError::new(
                403,
                None,
                "an admin token cannot use the SCIM API: create a source token with `scimbridge token create --source NAME`",
            ));
            return Ok(crate::http::refused(req, e));
        }
    };
    let user_agent =
        req.headers().get(actix_web::http::header::USER_AGENT).and_then(|h| h.to_str().ok());
    state.detections.observe(&caller, || detect_from_request(user_agent, req.query_string())).await;
    req.extensions_mut().insert(caller);
    Ok(next.call(req).await?.map_into_left_body())
}
