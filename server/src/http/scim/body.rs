//! Reading a JSON request body within its size cap and time limit (issue 13). Any content type is accepted
//! (`application/scim+json` and `application/json` alike, RFC 7644 §3.1, and clients that send
//! none); malformed JSON, invalid UTF-8 and nesting beyond serde_json's limit are 400s.

use crate::error::ApiError;
use crate::http::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use scim_schema::ScimError;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// A request body of any endpoint but `/Bulk`: at most `scim.max_request_bytes`.
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Value, ApiError> {
    let limit =
        Limit { bytes: state.settings.scim.max_request_bytes, key: "scim.max_request_bytes" };
    let (bytes, _) = read_body(req, payload, state, limit, false).await?;
    parse_json(&bytes)
}

/// A `/Bulk` body: at most `scim.max_payload_bytes` (`bulk.maxPayloadSize`). One larger than
/// `scim.max_request_bytes` needs one of `scim.max_concurrent_large_requests` permits, held
/// until the returned permit is dropped: parsing and running it costs many times its size in
/// memory.
pub async fn read_bulk_json(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Value, Option<OwnedSemaphorePermit>), ApiError> {
    let limit = Limit { bytes: state.settings.scim.max_payload_bytes, key: "bulk.maxPayloadSize" };
    let (bytes, permit) = read_body(req, payload, state, limit, true).await?;
    Ok((parse_json(&bytes)?, permit))
}

#[derive(Clone, Copy)]
struct Limit {
    bytes: u64,
    /// The setting (or advertised attribute) named in the 413.
    key: &'static str,
}

async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
    limit: Limit,
    large_allowed: bool,
) -> Result<(web::BytesMut, Option<OwnedSemaphorePermit>), ApiError> {
    let small = state.settings.scim.max_request_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // A declared size beyond the limit is refused before a byte of the body is read.
    if declared.is_some_and(|n| n > limit.bytes) {
        return Err(too_large(limit));
    }
    let mut permit = None;
    if large_allowed && declared.is_some_and(|n| n > small) {
        permit = Some(large_body_permit(state)?);
    }
    let seconds = state.settings.server.request_body_timeout_seconds;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let capacity = declared.unwrap_or(0).min(small.min(limit.bytes));
    let mut buf = web::BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    loop {
        // One deadline for the whole body: a client trickling a byte now and then is cut off
        // all the same.
        let chunk = tokio::time::timeout_at(deadline, payload.next())
            .await
            .map_err(|_| timed_out(seconds))?;
        let Some(chunk) = chunk else { break };
        let chunk = chunk.map_err(|e| {
            ApiError::Scim(ScimError::invalid_syntax(format!(
                "could not read the request body: {e}"
            )))
        })?;
        let len = (buf.len() + chunk.len()) as u64;
        if len > limit.bytes {
            return Err(too_large(limit));
        }
        if large_allowed && permit.is_none() && len > small {
            permit = Some(large_body_permit(state)?);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, permit))
}

/// Refused at once rather than queued: a queued request would hold its connection and the
/// part of the body already read, which is what the bound is for; IdPs retry a 503.
fn large_body_permit(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    state.edge.large_bodies.clone().try_acquire_owned().map_err(|_| {
        metrics::counter!("scimbridge_http_large_bodies_refused_total").increment(1);
        ApiError::Unavailable(
            "too many large requests in progress (scim.max_concurrent_large_requests); retry shortly"
                .to_owned(),
        )
    })
}

fn too_large(limit: Limit) -> ApiError {
    ApiError::Scim(ScimError::new(
        413,
        None,
        format!(
            "the request body is larger than the maximum of {} bytes ({})",
            limit.bytes, limit.key
        ),
    ))
}

fn timed_out(seconds: u64) -> ApiError {
    ApiError::Scim(ScimError::new(
        408,
        None,
        format!(
            "the request body did not arrive within {seconds} seconds (server.request_body_timeout_seconds)"
        ),
    ))
}

pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax(
            "the request body is empty; a JSON object is required",
        )
        .into());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let what = if std::str::from_utf8(bytes).is_err() {
            "the request body is not valid UTF-8".to_owned()
        } else {
            format!("the request body is not valid JSON: {e}")
        };
        ApiError::Scim(ScimError::invalid_syntax(what))
    })?;
    // A NUL (valid JSON, held by no database text type) is refused where the value is read,
    // so that each place answers with its own scimType: `invalidValue` in a resource or PATCH
    // value (`scim_schema::resource::reject_nul`), `invalidPath` in a PATCH path,
    // `invalidFilter` in a filter (the filter parser).
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Result<Value, ApiError>) -> u16 {
        match r {
            Err(ApiError::Scim(e)) => e.status,
            Err(_) => 500,
            Ok(_) => 200,
        }
    }

    #[test]
    fn rejects_bad_bodies_with_400() {
        assert_eq!(status(parse_json(b"")), 400);
        assert_eq!(status(parse_json(b"{")), 400);
        assert_eq!(status(parse_json(b"{\"a\":\"\xff\"}")), 400);
        let deep = "[".repeat(100_000);
        assert_eq!(status(parse_json(deep.as_bytes())), 400);
        assert_eq!(status(parse_json(b"{\"a\":1}")), 200);
    }
}
