//! Building SCIM responses: media type, ETag / Location headers, ListResponse, conditional
//! request headers (RFC 7644 §3.14) and the base URL for `meta.location`.

use crate::http::AppState;
use crate::store::IfMatch;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub fn scim_json(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status).content_type(crate::error::SCIM_CONTENT_TYPE).body(body.to_string())
}

/// A single resource with its ETag.
pub fn resource_response(status: StatusCode, body: &Value, etag: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(crate::error::SCIM_CONTENT_TYPE)
        .insert_header((header::ETAG, etag.to_owned()))
        .body(body.to_string())
}

pub fn list_response(total: i64, start_index: i64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `https://host/scim/v2`: the configured public URL, else what the request was sent to
/// (forwarded headers honoured only from `server.trusted_proxies`).
pub fn base_url(req: &HttpRequest, state: &AppState) -> String {
    match &state.settings.server.public_url {
        Some(url) => format!("{}/scim/v2", url.trim_end_matches('/')),
        None => {
            format!("{}/scim/v2", crate::http::forwarded::origin(req, &state.edge.trusted_proxies))
        }
    }
}

/// The `If-Match` precondition of a write.
pub fn if_match(headers: &HeaderMap) -> IfMatch {
    let Some(value) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return IfMatch::None;
    };
    if value.trim() == "*" {
        return IfMatch::Any;
    }
    IfMatch::Versions(value.split(',').filter_map(version_of_etag).collect())
}

/// True when `If-None-Match` names the current version (or is `*`): answer 304.
pub fn not_modified(headers: &HeaderMap, version: i64) -> bool {
    let Some(value) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value.trim() == "*" || value.split(',').filter_map(version_of_etag).any(|v| v == version)
}

/// `W/"7"` or `"7"` → 7 (weak comparison, RFC 7232 §2.3.2).
fn version_of_etag(tag: &str) -> Option<i64> {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn if_match_parsing() {
        assert_eq!(if_match(&HeaderMap::new()), IfMatch::None);
        assert_eq!(if_match(&headers(header::IF_MATCH, "*")), IfMatch::Any);
        assert_eq!(
            if_match(&headers(header::IF_MATCH, "W/\"3\", \"4\"")),
            IfMatch::Versions(vec![3, 4])
        );
        assert_eq!(if_match(&headers(header::IF_MATCH, "garbage")), IfMatch::Versions(vec![]));
    }

    #[test]
    fn if_none_match() {
        assert!(not_modified(&headers(header::IF_NONE_MATCH, "W/\"2\""), 2));
        assert!(!not_modified(&headers(header::IF_NONE_MATCH, "W/\"2\""), 3));
    }
}
