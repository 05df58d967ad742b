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
    if contains_nul(&value) {
        // Valid JSON, but no database text type can hold it (PostgreSQL rejects U+0000).
        return Err(ScimError::invalid_value(
            "strings must not contain the NUL character (\\u0000)",
        )
        .into());
    }
    Ok(value)
}

fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
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
        assert_eq!(status(parse_json(br#"{"a":["x\u0000"]}"#)), 400);
        assert_eq!(status(parse_json(br#"{"a\u0000":1}"#)), 400);
    }
}
