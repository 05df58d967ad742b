//! Bad input gets the right status and scimType, never a 500, never a partial change.

use crate::on_both_backends;
use crate::support::{Backend, spawn_app, spawn_app_with, user};
use reqwest::{Method, StatusCode};
use scimbridge::config::Settings;
use serde_json::json;

on_both_backends!(
    malformed_bodies,
    values_the_database_cannot_hold,
    wrong_shapes,
    unknown_attributes_by_mode,
    oversized_body,
    routing_errors,
    auth_errors
);

async fn malformed_bodies(b: Backend) {
    let app = spawn_app(b).await;
    for body in [&b"{"[..], b"", b"[1,2]", b"null", b"\"x\"", b"{\"userName\": \"\xff\xfe\"}"] {
        let r = app.raw(Method::POST, "/Users", "application/scim+json", body.to_vec()).await;
        assert_eq!(r.status.as_u16(), 400, "body {:?}: {}", String::from_utf8_lossy(body), r.body);
        r.assert_error(400, None);
    }
    let deep = format!("{{\"userName\": {}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let r = app.raw(Method::POST, "/Users", "application/scim+json", deep.into_bytes()).await;
    r.assert_error(400, Some("invalidSyntax"));
    // application/json is accepted too.
    let r = app
        .raw(
            Method::POST,
            "/Users",
            "application/json",
            user("json@example.com").to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app.get("/Users").await;
    assert_eq!(r.body["totalResults"], 1, "nothing else was written");
}

async fn values_the_database_cannot_hold(b: Backend) {
    let app = spawn_app(b).await;
    // NUL is valid JSON but no text column holds it (PostgreSQL rejects it outright).
    let r = app
        .raw(
            Method::POST,
            "/Users",
            "application/scim+json",
            br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a\u0000b"}"#
                .to_vec(),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let r =
        app.get(&format!("/Users?filter={}", crate::support::enc("userName eq \"a\u{0}\""))).await;
    r.assert_error(400, Some("invalidFilter"));
    // Indexed values have a length limit below PostgreSQL's index entry limit.
    let long: String = (0..600).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    app.post("/Users", &user(&long)).await.assert_error(400, Some("invalidValue"));
    let mut u = user("ok@example.com");
    u["externalId"] = json!("x".repeat(3000));
    app.post("/Users", &u).await.assert_error(400, Some("invalidValue"));
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);
}

async fn wrong_shapes(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.post("/Users", &json!({"userName": "a@example.com"})).await;
    assert_eq!(r.status.as_u16(), 400, "schemas is required: {}", r.body);
    let r = app
        .post("/Users", &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}))
        .await;
    r.assert_error(400, Some("invalidValue"));
    let mut u = user("a@example.com");
    u["active"] = json!({"nested": true});
    app.post("/Users", &u).await.assert_error(400, Some("invalidValue"));
    let mut u = user("a@example.com");
    u["emails"] = json!("not-a-list-of-objects");
    app.post("/Users", &u).await.assert_error(400, Some("invalidValue"));
    let mut u = user("a@example.com");
    u["userName"] = json!(42);
    app.post("/Users", &u).await.assert_error(400, Some("invalidValue"));
    let id = app.create_user("ok@example.com").await;
    let r = app.patch(&format!("/Users/{id}"), &json!({"Operations": "nope"})).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    let r = app
        .patch(&format!("/Users/{id}"), &crate::support::patch_op(json!([{"op": "remove"}])))
        .await;
    r.assert_error(400, Some("noTarget"));
    let r = app
        .patch(
            &format!("/Users/{id}"),
            &crate::support::patch_op(json!([{"op": "add", "path": "emails[type eq", "value": 1}])),
        )
        .await;
    r.assert_error(400, Some("invalidPath"));
    assert_eq!(app.journal().await.len(), 1, "only the one good create was journaled");
}

async fn unknown_attributes_by_mode(b: Backend) {
    let app = spawn_app(b).await;
    let mut u = user("lenient@example.com");
    u["favouriteColour"] = json!("blue");
    u["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", "urn:example:unknown"]);
    let r = app.post("/Users", &u).await;
    assert_eq!(r.status, StatusCode::CREATED, "ignored by default: {}", r.body);
    assert!(r.body.get("favouriteColour").is_none());

    let strict = spawn_app_with(b, Settings::default(), Some("strict")).await;
    let mut u = user("strict@example.com");
    u["favouriteColour"] = json!("blue");
    let r = strict.post("/Users", &u).await;
    assert_eq!(r.status.as_u16(), 400, "strict mode rejects unknown attributes: {}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("favouriteColour"));
}

async fn oversized_body(b: Backend) {
    let app = spawn_app(b).await;
    let mut u = user("big@example.com");
    u["title"] = json!("x".repeat(9 * 1024 * 1024));
    let r = app.post("/Users", &u).await;
    r.assert_error(413, None);
    assert_eq!(app.get("/Users").await.body["totalResults"], 0);
}

async fn routing_errors(b: Backend) {
    let app = spawn_app(b).await;
    app.get("/Nope").await.assert_error(404, None);
    app.get("/Me").await.assert_error(501, None);
    app.request(Method::DELETE, "/Users", None).await.assert_error(405, None);
    app.request(Method::POST, "/ServiceProviderConfig", Some(&json!({})))
        .await
        .assert_error(405, None);
    app.request(Method::PUT, "/Schemas", Some(&json!({}))).await.assert_error(405, None);
    // A trailing slash on the base URL or a collection works.
    let r = app.get("/Users/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.get("/ServiceProviderConfig/").await;
    assert_eq!(r.status, StatusCode::OK);
    // Unknown query parameters (Entra's aadOptscim062020) are ignored.
    assert_eq!(app.get("/Users?aadOptscim062020").await.status, StatusCode::OK);
}

async fn auth_errors(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.client.get(format!("{}/Users", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("www-authenticate").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "401");
    let r = app.request_as("scimbridge_wrong", Method::GET, "/Users", None, &[]).await;
    r.assert_error(401, None);
    let r = app.request_as("", Method::GET, "/Users", None, &[]).await;
    r.assert_error(401, None);
}
