//! Group membership PATCHes as sets: every `members[filter]` remove, many operations in one
//! request (applied in order, written as one DELETE and one INSERT), the operation cap, and
//! that a rejected request changes nothing.

use crate::on_both_backends;
use crate::support::{Backend, TestApp, patch_op, spawn_app, user};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Instant;

on_both_backends!(
    every_member_filter_removes_what_it_selects,
    adds_and_removes_in_one_request_apply_in_order,
    unknown_members_and_cycles_change_nothing,
    a_thousand_operations_add_a_thousand_members,
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

async fn adds_and_removes_in_one_request_apply_in_order(b: Backend) {
    let app = spawn_app(b).await;
    let f = fixture(&app).await;
    let c = app.create_user("c@example.com").await;
    let d = app.create_user("d@example.com").await;
    let gid = app.create_group("Team", &[&f.a, &f.b]).await;
    let path = format!("/Groups/{gid}");
    let version = |g: &Value| g["meta"]["version"].clone();
    let before = version(&app.get(&path).await.body);
    // Remove a, add c and d, remove d again, remove b and add it back, add Inner and remove
    // it by filter: a goes, b stays, c joins, d and Inner come and go.
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "remove", "path": format!("members[value eq \"{}\"]", f.a)},
                {"op": "add", "path": "members", "value": [{"value": c}, {"value": d}]},
                {"op": "remove", "path": "members", "value": [{"value": d}]},
                {"op": "remove", "path": "members", "value": [{"value": f.b}]},
                {"op": "add", "path": "members", "value": [{"value": f.b}]},
                {"op": "add", "path": "members", "value": [{"value": f.inner, "type": "Group"}]},
                {"op": "remove", "path": "members[type eq \"Group\"]"},
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.member_ids(&gid).await, sorted(vec![f.b.clone(), c.clone()]));
    let after = app.get(&path).await.body;
    assert_ne!(version(&after), before, "the members changed, so the version did");
    let journal = app.journal().await;
    let last = journal.last().unwrap();
    assert_eq!((last.action.as_str(), last.resource_id.as_str()), ("patch", gid.as_str()));
    assert_eq!(last.detail, Some(json!({"members_added": [c], "members_removed": [f.a]})));

    // A filtered remove sees the members added before it in the same request.
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "add", "path": "members", "value": [{"value": d}]},
                {"op": "remove", "path": "members[display eq \"Display d@example.com\"]"},
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.member_ids(&gid).await, sorted(vec![f.b.clone(), c.clone()]));

    // Remove all, then add: only the added; replace, then add: both.
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "remove", "path": "members"},
                {"op": "add", "path": "members", "value": [{"value": d}]},
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.member_ids(&gid).await, vec![d.clone()]);
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "add", "path": "members", "value": [{"value": c}]},
                {"op": "replace", "path": "members", "value": [{"value": f.a}]},
                {"op": "add", "path": "members", "value": [{"value": f.inner}]},
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.member_ids(&gid).await, sorted(vec![f.a.clone(), f.inner.clone()]));
    let last = app.journal().await.last().cloned().unwrap();
    assert_eq!(
        last.detail,
        Some(
            json!({"members_added": sorted(vec![f.a.clone(), f.inner.clone()]), "members_removed": [d]})
        )
    );

    // Adding and removing the same new member is no change: no version, no journal row.
    let rows = app.journal().await.len();
    let before = version(&app.get(&path).await.body);
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "add", "path": "members", "value": [{"value": c}]},
                {"op": "remove", "path": "members", "value": [{"value": c}]},
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(version(&app.get(&path).await.body), before);
    assert_eq!(app.journal().await.len(), rows);
}

async fn unknown_members_and_cycles_change_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let f = fixture(&app).await;
    let outer = app.create_group("Outer", &[&f.inner]).await;
    let gid = app.create_group("Team", &[&f.a]).await;
    let path = format!("/Groups/{gid}");
    let ghost = uuid::Uuid::new_v4().to_string();
    let snapshot = |g: Value| (g["meta"]["version"].clone(), g["members"].clone());
    let before = snapshot(app.get(&path).await.body);
    let rows = app.journal().await.len();
    // An unknown member in a later operation: the earlier ones are not written either.
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "remove", "path": "members", "value": [{"value": f.a}]},
                {"op": "add", "path": "members", "value": [{"value": f.b}]},
                {"op": "add", "path": "members", "value": [{"value": ghost}]},
            ])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains(&ghost) && detail.contains("unknown member"), "{detail}");
    // Even when a later operation removes it again (each operation is checked, as before).
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "add", "path": "members", "value": [{"value": "fake-member-id"}]},
                {"op": "remove", "path": "members", "value": [{"value": "fake-member-id"}]},
            ])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains("fake-member-id"), "{}", r.body);
    // A member of the wrong type.
    let r = app
        .patch(
            &path,
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": f.b, "type": "Group"}]}])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert_eq!(snapshot(app.get(&path).await.body), before);

    // Inner ⊂ Outer: Outer may not join Inner, even after good operations, nor through a
    // replace; and a group may not join itself.
    let inner_path = format!("/Groups/{}", f.inner);
    let inner_before = snapshot(app.get(&inner_path).await.body);
    for ops in [
        json!([
            {"op": "add", "path": "members", "value": [{"value": f.a}]},
            {"op": "add", "path": "members", "value": [{"value": outer, "type": "Group"}]},
        ]),
        json!([{"op": "replace", "path": "members", "value": [{"value": f.b}, {"value": outer}]}]),
        json!([{"op": "add", "path": "members", "value": [{"value": f.inner}]}]),
    ] {
        let r = app.patch(&inner_path, &patch_op(ops.clone())).await;
        r.assert_error(400, Some("invalidValue"));
        assert_eq!(snapshot(app.get(&inner_path).await.body), inner_before, "{ops}");
    }
    let r = app
        .patch(
            &inner_path,
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": outer}]}])),
        )
        .await;
    assert!(r.body["detail"].as_str().unwrap().contains("cycle"), "{}", r.body);
    assert_eq!(app.journal().await.len(), rows, "no rejected request was journaled");
}

/// `n` users created through /Bulk (100 per request); their ids.
async fn many_users(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let names: Vec<String> = (0..n).map(|i| format!("member{i:05}@example.com")).collect();
    for chunk in names.chunks(100) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|name| json!({"method": "POST", "path": "/Users", "bulkId": name, "data": user(name)}))
            .collect();
        let req = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
        let r = app.post("/Bulk", &req).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for op in r.body["Operations"].as_array().unwrap() {
            assert_eq!(op["status"], "201", "{op}");
            ids.push(op["location"].as_str().unwrap().rsplit('/').next().unwrap().to_owned());
        }
    }
    ids
}

fn one_add_per_member(ids: &[String]) -> Value {
    let ops: Vec<Value> = ids
        .iter()
        .map(|id| json!({"op": "add", "path": "members", "value": [{"value": id}]}))
        .collect();
    patch_op(Value::Array(ops))
}

async fn a_thousand_operations_add_a_thousand_members(b: Backend) {
    let app = spawn_app(b).await;
    let ids = many_users(&app, 1000).await;
    let gid = app.create_group("Everyone", &[]).await;
    let started = Instant::now();
    let r = app.patch(&format!("/Groups/{gid}"), &one_add_per_member(&ids)).await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    eprintln!("{b:?}: a 1,000-operation PATCH adding 1,000 members took {took:?}");
    assert_eq!(app.member_ids(&gid).await, sorted(ids.clone()));
    let last = app.journal().await.last().cloned().unwrap();
    assert_eq!(last.detail, Some(json!({"members_added": sorted(ids.clone())})));
    // And 1,000 removes, one per operation.
    let ops: Vec<Value> = ids
        .iter()
        .map(|id| json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")}))
        .collect();
    let r = app.patch(&format!("/Groups/{gid}"), &patch_op(Value::Array(ops))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(app.member_ids(&gid).await.is_empty());
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
