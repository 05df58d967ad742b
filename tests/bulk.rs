//! `/Bulk`: bulkId references, failOnErrors, and the advertised limits.

use crate::on_both_backends;
use crate::support::{Backend, spawn_app, user};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(bulk_with_references, bulk_keeps_client_order, bulk_fail_on_errors, bulk_limits);

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

async fn bulk_with_references(b: Backend) {
    let app = spawn_app(b).await;
    // The group references a user created later in the same request.
    let req = json!({
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "g1",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bulk Team",
                      "members": [{"type": "User", "value": "bulkId:u1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk@example.com")},
            {"method": "PATCH", "path": "/Users/bulkId:u1",
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "title", "value": "Bulk"}]}}
        ]
    });
    let r = app.post("/Bulk", &req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:BulkResponse");
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 3, "{}", r.body);
    for op in ops {
        assert!(op["status"] == "201" || op["status"] == "200", "{op}");
    }
    let user_loc =
        ops.iter().find(|o| o["bulkId"] == "u1").unwrap()["location"].as_str().unwrap().to_owned();
    let uid = user_loc.rsplit('/').next().unwrap();
    let groups = app.get("/Groups").await.body;
    assert_eq!(groups["Resources"][0]["members"][0]["value"], uid);
    assert_eq!(app.get(&format!("/Users/{uid}")).await.body["title"], "Bulk");
}

async fn bulk_keeps_client_order(b: Backend) {
    let app = spawn_app(b).await;
    let old = app.create_group("Old", &[]).await;
    // The PATCH needs the later POST (which runs first); the DELETE stays after the PATCH.
    let req = json!({
        "schemas": [BULK],
        "Operations": [
            {"method": "PATCH", "path": format!("/Groups/{old}"),
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": user("late@example.com")},
            {"method": "DELETE", "path": format!("/Groups/{old}")},
            {"method": "POST", "path": "/Users", "bulkId": "v",
             "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "v@example.com",
                      "title": "bulkId:not-a-reference"}}
        ]
    });
    let r = app.post("/Bulk", &req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 4, "{}", r.body);
    assert!(statuses.iter().all(|s| ["200", "201", "204"].contains(s)), "{}", r.body);
    app.get(&format!("/Groups/{old}")).await.assert_error(404, None);
    let v = app
        .get(&format!("/Users?filter={}", crate::support::enc("userName eq \"v@example.com\"")))
        .await;
    assert_eq!(v.body["Resources"][0]["title"], "bulkId:not-a-reference");
}

async fn bulk_fail_on_errors(b: Backend) {
    let app = spawn_app(b).await;
    let req = json!({
        "schemas": [BULK],
        "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("one@example.com")},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("one@example.com")},
            {"method": "POST", "path": "/Users", "bulkId": "c", "data": user("three@example.com")}
        ]
    });
    let r = app.post("/Bulk", &req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2, "processing stops after the first error: {}", r.body);
    assert_eq!(ops[1]["status"], "409");
    assert_eq!(ops[1]["response"]["scimType"], "uniqueness");
    assert_eq!(app.get("/Users").await.body["totalResults"], 1);
}

async fn bulk_limits(b: Backend) {
    let app = spawn_app(b).await;
    let ops: Vec<_> = (0..101)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": user(&format!("u{i}@example.com"))}))
        .collect();
    let r = app.post("/Bulk", &json!({"schemas": [BULK], "Operations": ops})).await;
    r.assert_error(413, None);
    assert_eq!(app.get("/Users").await.body["totalResults"], 0, "nothing was run");
    let r = app.post("/Bulk", &json!({"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "data": user("x@example.com")}]})).await;
    r.assert_error(400, Some("invalidSyntax"));
}
