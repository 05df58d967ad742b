//! Bad input gets the right status and scimType, never a 500, never a partial change.

use crate::on_both_backends;
use crate::support::{Backend, patch_op, spawn_app, spawn_app_with, user};
use reqwest::{Method, StatusCode};
use scimbridge::config::Settings;
use serde_json::json;

on_both_backends!(
    malformed_bodies,
    values_the_database_cannot_hold,
    nul_is_refused_wherever_it_is_sent,
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

/// U+0000, sent raw (JSON `\u0000`) or escaped inside a filter string (`\u0000` in the filter
/// text), is refused with the scimType of where it is, on both backends, and changes nothing:
/// PostgreSQL's jsonb and text refuse it (a 500 before), SQLite would store it.
async fn nul_is_refused_wherever_it_is_sent(b: Backend) {
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let app = spawn_app(b).await;
    let uid = app.create_user("a@example.com").await;
    let member = app.create_user("m@example.com").await;
    let gid = app.create_group("Team", &[&member]).await;
    let user_path = format!("/Users/{uid}");
    let group_path = format!("/Groups/{gid}");
    let user_before = app.get(&user_path).await.body;
    let group_before = app.get(&group_path).await.body;
    let rows = app.journal().await.len();

    // Filters: escaped in the filter string, or raw; in a query or a /.search body.
    for filter in [
        r#"userName eq "a\u0000b""#,
        "userName eq \"a\u{0}b\"",
        "userName eq a\u{0}b",
        r#"emails[value eq "\u0000"]"#,
        r#"userName pr and title co "\u0000""#,
    ] {
        let r = app.get(&format!("/Users?filter={}", crate::support::enc(filter))).await;
        r.assert_error(400, Some("invalidFilter"));
        let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});
        app.post("/Users/.search", &search).await.assert_error(400, Some("invalidFilter"));
        app.post("/.search", &search).await.assert_error(400, Some("invalidFilter"));
    }
    let r = app
        .get(&format!("/Groups?filter={}", crate::support::enc(r#"members[display eq "\u0000"]"#)))
        .await;
    r.assert_error(400, Some("invalidFilter"));

    // PATCH paths: raw (JSON-escaped) or escaped in the path's filter.
    for (path, res) in [
        ("title\u{0}", &user_path),
        (r#"emails[value eq "a\u0000"].type"#, &user_path),
        ("emails[value eq \"a\u{0}\"].type", &user_path),
        (r#"members[display eq "a\u0000"]"#, &group_path),
        ("members[value eq \"\u{0}\"]", &group_path),
    ] {
        let ops = json!([{"op": "remove", "path": path}]);
        app.patch(res, &patch_op(ops)).await.assert_error(400, Some("invalidPath"));
    }

    // PATCH values, with and without a path, nested and in the extension.
    for (ops, res) in [
        (json!([{"op": "replace", "path": "title", "value": "a\u{0}b"}]), &user_path),
        (json!([{"op": "replace", "value": {"name": {"givenName": "a\u{0}"}}}]), &user_path),
        (
            json!([{"op": "add", "path": "emails", "value": [{"value": "x@example.com", "type": "w\u{0}"}]}]),
            &user_path,
        ),
        (
            json!([{"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "\u{0}"}]),
            &user_path,
        ),
        (json!([{"op": "replace", "value": {ENTERPRISE: {"costCenter": "c\u{0}"}}}]), &user_path),
        (json!([{"op": "replace", "value": {"favouriteColour\u{0}": "blue"}}]), &user_path),
        (json!([{"op": "replace", "path": "displayName", "value": "T\u{0}"}]), &group_path),
        (json!([{"op": "add", "path": "members", "value": [{"value": "\u{0}"}]}]), &group_path),
        (
            json!([{"op": "remove", "path": "members", "value": [{"value": member, "display": "\u{0}"}]}]),
            &group_path,
        ),
    ] {
        let r = app.patch(res, &patch_op(ops.clone())).await;
        r.assert_error(400, Some("invalidValue"));
        assert!(r.body["detail"].as_str().unwrap().contains("NUL"), "{ops}: {}", r.body);
    }

    // POST and PUT bodies, nested, in the extension, in a member name, in an ignored attribute.
    let bodies = |name: &str| {
        let mut with_given = user(name);
        with_given["name"]["givenName"] = json!("G\u{0}");
        let mut with_email = user(name);
        with_email["emails"][0]["type"] = json!("work\u{0}");
        let mut with_ext = user(name);
        with_ext["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]);
        with_ext[ENTERPRISE] = json!({"manager": {"value": "m\u{0}"}});
        let mut with_key = user(name);
        with_key["name"]["given\u{0}Name"] = json!("G");
        let mut ignored = user(name);
        ignored["favouriteColour"] = json!("blue\u{0}");
        let mut user_name = user(name);
        user_name["userName"] = json!("a\u{0}@example.com");
        [with_given, with_email, with_ext, with_key, ignored, user_name]
    };
    for body in bodies("new@example.com") {
        let r = app.post("/Users", &body).await;
        r.assert_error(400, Some("invalidValue"));
    }
    for body in bodies("a@example.com") {
        app.put(&user_path, &body).await.assert_error(400, Some("invalidValue"));
    }
    let mut g = crate::support::group("Team", &[&member]);
    g["displayName"] = json!("Team\u{0}");
    app.put(&group_path, &g).await.assert_error(400, Some("invalidValue"));
    app.post("/Groups", &g).await.assert_error(400, Some("invalidValue"));

    // Bulk: each operation answers as it would alone.
    let mut bad_user = user("bulk@example.com");
    bad_user["title"] = json!("\u{0}");
    let req = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": bad_user},
            {"method": "PUT", "path": user_path, "data": bodies("a@example.com")[0]},
            {"method": "PATCH", "path": user_path,
             "data": patch_op(json!([{"op": "replace", "path": "title", "value": "\u{0}"}]))},
            {"method": "PATCH", "path": group_path,
             "data": patch_op(json!([{"op": "remove", "path": "members[display eq \"\\u0000\"]"}]))},
        ]
    });
    let r = app.post("/Bulk", &req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let types: Vec<(&str, &str)> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| (op["status"].as_str().unwrap(), op["response"]["scimType"].as_str().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            ("400", "invalidValue"),
            ("400", "invalidValue"),
            ("400", "invalidValue"),
            ("400", "invalidPath")
        ],
        "{}",
        r.body
    );

    // Nothing changed, nothing was stored, nothing journaled.
    assert_eq!(app.get(&user_path).await.body, user_before);
    assert_eq!(app.get(&group_path).await.body, group_before);
    assert_eq!(app.get("/Users").await.body["totalResults"], 2);
    assert_eq!(app.get("/Groups").await.body["totalResults"], 1);
    assert_eq!(app.journal().await.len(), rows);
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
