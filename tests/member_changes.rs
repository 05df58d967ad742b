//! Group membership PATCHes: every `members[filter]` remove, and the cap on operations per
//! PATCH (a rejected request changes nothing).

use crate::on_both_backends;
use crate::support::{Backend, TestApp, patch_op, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    every_member_filter_removes_what_it_selects,
    more_operations_than_the_cap_change_nothing,
);

/// Users a and b and a group Inner: the members of each group under test.
struct Fixture {
    a: String,
    b: String,
    inner: String,
}

async fn fixture(app: &TestApp) -> Fixture {
    Fixture {
        a: app.create_user("a@example.com").await,
        b: app.create_user("b@example.com").await,
        inner: app.create_group("Inner", &[]).await,
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

async fn every_member_filter_removes_what_it_selects(b: Backend) {
    let app = spawn_app(b).await;
    let f = fixture(&app).await;
    let (ua, ub, gi) = (f.a.as_str(), f.b.as_str(), f.inner.as_str());
    let ghost = uuid::Uuid::new_v4().to_string();
    // (filter, the members that stay)
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("display eq \"Display a@example.com\"".into(), vec![ub, gi]),
        ("display eq \"DISPLAY A@EXAMPLE.COM\"".into(), vec![ub, gi]),
        ("display eq \"Inner\"".into(), vec![ua, ub]),
        ("display sw \"Display\"".into(), vec![gi]),
        ("display co \"b@\"".into(), vec![ua, gi]),
        (format!("value ne \"{ua}\""), vec![ua]),
        ("type eq \"User\"".into(), vec![gi]),
        ("type eq \"Group\"".into(), vec![ua, ub]),
        (format!("value eq \"{ua}\" or value eq \"{ub}\""), vec![gi]),
        (format!("value eq \"{ua}\" or type eq \"Group\""), vec![ub]),
        (format!("value eq \"{ua}\" and type eq \"User\""), vec![ub, gi]),
        ("not (type eq \"User\")".into(), vec![ua, ub]),
        ("value pr".into(), vec![]),
        (format!("value eq \"{ghost}\""), vec![ua, ub, gi]),
        ("value eq \"not-a-uuid\"".into(), vec![ua, ub, gi]),
    ];
    for (n, (filter, stay)) in cases.iter().enumerate() {
        let gid = app.create_group(&format!("Team {n}"), &[ua, ub, gi]).await;
        let r = app
            .patch(
                &format!("/Groups/{gid}"),
                &patch_op(json!([{"op": "remove", "path": format!("members[{filter}]")}])),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "members[{filter}]: {}", r.body);
        let stay: Vec<String> = stay.iter().map(|s| s.to_string()).collect();
        assert_eq!(app.member_ids(&gid).await, sorted(stay.clone()), "members[{filter}]");
        // The journal names exactly the members removed.
        let gone: Vec<String> = sorted(
            [ua, ub, gi].iter().map(|s| s.to_string()).filter(|m| !stay.contains(m)).collect(),
        );
        let journal = app.journal().await;
        let last = journal.iter().rev().find(|j| j.resource_id == gid).unwrap();
        if gone.is_empty() {
            assert_eq!(
                last.action, "create",
                "members[{filter}]: nothing removed, nothing journaled"
            );
        } else {
            assert_eq!(last.action, "patch", "members[{filter}]");
            assert_eq!(last.detail, Some(json!({"members_removed": gone})), "members[{filter}]");
        }
    }
    // A filter naming no sub-attribute of members is a bad path, and changes nothing.
    let gid = app.create_group("Team x", &[ua]).await;
    let r = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "remove", "path": "members[userName eq \"a\"]"}])),
        )
        .await;
    r.assert_error(400, Some("invalidPath"));
    assert_eq!(app.member_ids(&gid).await, vec![ua.to_owned()]);
}

fn one_add_per_member(ids: &[String]) -> Value {
    let ops: Vec<Value> = ids
        .iter()
        .map(|id| json!({"op": "add", "path": "members", "value": [{"value": id}]}))
        .collect();
    patch_op(Value::Array(ops))
}

async fn more_operations_than_the_cap_change_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let u = app.create_user("a@example.com").await;
    let gid = app.create_group("Team", &[]).await;
    let path = format!("/Groups/{gid}");
    let before = app.get(&path).await.body;
    let rows = app.journal().await.len();
    let ids = vec![u.clone(); 1001];
    let r = app.patch(&path, &one_add_per_member(&ids)).await;
    r.assert_error(400, Some("tooMany"));
    assert!(r.body["detail"].as_str().unwrap().contains("1000"), "{}", r.body);
    assert_eq!(app.get(&path).await.body, before);
    assert_eq!(app.journal().await.len(), rows);
    // Users too, and inside /Bulk.
    let ops: Vec<Value> = (0..1001)
        .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
        .collect();
    let r = app.patch(&format!("/Users/{u}"), &patch_op(Value::Array(ops.clone()))).await;
    r.assert_error(400, Some("tooMany"));
    let req = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "PATCH", "path": format!("/Users/{u}"), "data": patch_op(Value::Array(ops))}]
    });
    let r = app.post("/Bulk", &req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["Operations"][0]["status"], "400", "{}", r.body);
    assert_eq!(r.body["Operations"][0]["response"]["scimType"], "tooMany", "{}", r.body);
    assert!(app.get(&format!("/Users/{u}")).await.body.get("title").is_none());
    assert_eq!(app.journal().await.len(), rows);
    // Exactly at the cap is fine.
    let r = app.patch(&path, &one_add_per_member(&ids[..1000])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.member_ids(&gid).await, vec![u]);
}
