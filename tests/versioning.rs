//! ETags (RFC 7644 §3.14): `meta.version`, If-Match → 412, If-None-Match → 304.

use crate::on_both_backends;
use crate::support::{Backend, patch_op, spawn_app, user};
use reqwest::{Method, StatusCode};
use serde_json::json;

on_both_backends!(etags_and_preconditions);

async fn etags_and_preconditions(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_user("alice@example.com").await;
    let path = format!("/Users/{id}");
    let got = app.get(&path).await;
    let etag = got.header("etag").unwrap();
    assert_eq!(got.body["meta"]["version"], etag.as_str());

    let r = app.request_as(&app.token, Method::GET, &path, None, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);

    let stale = "W/\"999\"";
    let body = user("alice@example.com");
    let r =
        app.request_as(&app.token, Method::PUT, &path, Some(&body), &[("If-Match", stale)]).await;
    r.assert_error(412, None);
    let p = patch_op(json!([{"op": "replace", "path": "title", "value": "x"}]));
    let r =
        app.request_as(&app.token, Method::PATCH, &path, Some(&p), &[("If-Match", stale)]).await;
    r.assert_error(412, None);
    let r = app.request_as(&app.token, Method::DELETE, &path, None, &[("If-Match", stale)]).await;
    r.assert_error(412, None);

    let r =
        app.request_as(&app.token, Method::PATCH, &path, Some(&p), &[("If-Match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let new_etag = r.header("etag").unwrap();
    assert_ne!(new_etag, etag, "a change makes a new version");
    let r = app.request_as(&app.token, Method::GET, &path, None, &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, StatusCode::OK, "old ETag no longer matches");
    let r =
        app.request_as(&app.token, Method::DELETE, &path, None, &[("If-Match", &new_etag)]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}
