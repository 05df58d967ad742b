//! Reading a JSON request body with the advertised size cap. Any content type is accepted
//! (`application/scim+json` and `application/json` alike, RFC 7644 §3.1, and clients that send
//! none); malformed JSON, invalid UTF-8 and nesting beyond serde_json's limit are 400s.

use crate::error::ApiError;
use actix_web::web;
use futures_util::StreamExt;
use scim_schema::ScimError;
use serde_json::Value;

pub async fn read_json(mut payload: web::Payload, limit: u64) -> Result<Value, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::Scim(ScimError::invalid_syntax(format!(
                "could not read the request body: {e}"
            )))
        })?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    parse_json(&buf)
}

pub fn too_large(limit: u64) -> ApiError {
    ApiError::Scim(ScimError::new(
        413,
        None,
        format!(
            "the request body is larger than the maximum of {limit} bytes (bulk.maxPayloadSize)"
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
