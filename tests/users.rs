//! User lifecycle: create, read, replace, patch, delete — and what the journal records.

use crate::on_both_backends;
use crate::support::{Backend, patch_op, spawn_app, user};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    create_returns_resource_location_and_never_password,
    get_put_delete_lifecycle,
    put_never_creates,
    user_name_unique_case_insensitively,
    patch_deactivate_and_reactivate,
    patch_is_atomic,
    read_only_attributes_rejected_in_patch,
    enterprise_extension_round_trips,
);

async fn create_returns_resource_location_and_never_password(b: Backend) {
    let app = spawn_app(b).await;
    let mut body = user("alice@example.com");
    body["password"] = json!("s3cret!");
    body["groups"] = json!([]);
    let r = app.post("/Users", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(r.header("location").as_deref(), r.body["meta"]["location"].as_str());
    assert!(r.body["meta"]["location"].as_str().unwrap().ends_with(&format!("/Users/{id}")));
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.header("etag").as_deref(), r.body["meta"]["version"].as_str());
    assert_eq!(r.body["userName"], "alice@example.com");
    assert!(r.body.get("password").is_none(), "password must never be returned");
    let got = app.get(&format!("/Users/{id}?attributes=password,userName")).await;
    assert!(got.body.get("password").is_none(), "password must never be returned: {}", got.body);
    // And it is not stored either.
    let journal = app.journal().await;
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].action, "create");
    assert_eq!(journal[0].resource_type.name(), "User");
    assert_eq!(journal[0].resource_id, id);
    assert!(journal[0].token_id.is_some(), "the journal records the token");
}

async fn get_put_delete_lifecycle(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_user("bob@example.com").await;
    let path = format!("/Users/{id}");
    let got = app.get(&path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"]["givenName"], "Given");

    // PUT replaces: omitted attributes are cleared.
    let put = app
        .put(
            &path,
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bob@example.com",
                    "title": "Engineer"}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.body["title"], "Engineer");
    assert!(put.body.get("name").is_none(), "PUT clears omitted attributes: {}", put.body);
    assert!(put.body.get("emails").is_none());

    let del = app.delete(&path).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    app.get(&path).await.assert_error(404, None);
    app.delete(&path).await.assert_error(404, None);
    let actions: Vec<String> =
        app.journal().await.into_iter().map(|j| j.action.to_string()).collect();
    assert_eq!(actions, ["create", "replace", "delete"]);
}

async fn put_never_creates(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.put(&format!("/Users/{}", uuid::Uuid::new_v4()), &user("ghost@example.com")).await;
    r.assert_error(404, None);
    let list = app.get("/Users").await;
    assert_eq!(list.body["totalResults"], 0);
}

async fn user_name_unique_case_insensitively(b: Backend) {
    let app = spawn_app(b).await;
    app.create_user("Carol@Example.com").await;
    app.post("/Users", &user("carol@example.COM")).await.assert_error(409, Some("uniqueness"));
    // Unique across sources too: AWS requires it.
    let other = app.token_for("entra", None).await;
    let r = app
        .request_as(&other, reqwest::Method::POST, "/Users", Some(&user("CAROL@example.com")), &[])
        .await;
    r.assert_error(409, Some("uniqueness"));
    // Renaming onto a taken name is a conflict as well.
    let dave = app.create_user("dave@example.com").await;
    let r = app
        .patch(
            &format!("/Users/{dave}"),
            &patch_op(json!([{"op": "replace", "path": "userName", "value": "CAROL@EXAMPLE.COM"}])),
        )
        .await;
    r.assert_error(409, Some("uniqueness"));
    assert_eq!(app.get(&format!("/Users/{dave}")).await.body["userName"], "dave@example.com");
}

async fn patch_deactivate_and_reactivate(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_user("erin@example.com").await;
    let path = format!("/Users/{id}");
    // Okta's deactivation: a no-path replace.
    let r =
        app.patch(&path, &patch_op(json!([{"op": "replace", "value": {"active": false}}]))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(app.get(&path).await.body["active"], false, "the user is kept, inactive");
    let r = app
        .patch(&path, &patch_op(json!([{"op": "replace", "path": "active", "value": true}])))
        .await;
    assert_eq!(r.body["active"], true);
    let journal = app.journal().await;
    let details: Vec<_> =
        journal.iter().filter(|j| j.action == "patch").map(|j| j.detail.clone()).collect();
    assert_eq!(details, [Some(json!({"active": false})), Some(json!({"active": true}))]);
}

async fn patch_is_atomic(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_user("frank@example.com").await;
    let path = format!("/Users/{id}");
    let before = app.get(&path).await.body;
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "replace", "path": "title", "value": "Boss"},
                {"op": "replace", "path": "emails[type eq \"home\"].value", "value": 7}
            ])),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    let after = app.get(&path).await.body;
    assert_eq!(before, after, "a failed PATCH changes nothing");
    assert_eq!(app.journal().await.len(), 1, "no journal row for a failed PATCH");
}

async fn read_only_attributes_rejected_in_patch(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_user("gina@example.com").await;
    let r = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "replace", "path": "id", "value": "x"}])),
        )
        .await;
    r.assert_error(400, Some("mutability"));
    let r = app
        .patch(&format!("/Users/{id}"), &patch_op(json!([{"op": "remove", "path": "userName"}])))
        .await;
    assert_eq!(r.status.as_u16(), 400, "userName is required: {}", r.body);
}

async fn enterprise_extension_round_trips(b: Backend) {
    let app = spawn_app(b).await;
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let mut body = user("hank@example.com");
    body["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", ent]);
    body[ent] = json!({"department": "Sales", "employeeNumber": "42", "manager": {"value": "m-1"}});
    let r = app.post("/Users", &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body[ent]["department"], "Sales");
    assert!(r.body["schemas"].as_array().unwrap().iter().any(|s| s == ent));
    let id = r.body["id"].as_str().unwrap();
    let r = app
        .patch(
            &format!("/Users/{id}"),
            &patch_op(
                json!([{"op": "replace", "path": format!("{ent}:department"), "value": "Support"}]),
            ),
        )
        .await;
    assert_eq!(r.body[ent]["department"], "Support", "{}", r.body);
    assert_eq!(r.body[ent]["employeeNumber"], "42");
}
