//! Groups and membership: the relation, PATCH shapes real clients send, nesting, and what a
//! deleted member does to its groups.

use crate::on_both_backends;
use crate::support::{Backend, patch_op, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    create_with_members_and_read_back,
    patch_add_and_remove_members_answers_204,
    patch_with_attributes_answers_200,
    unknown_member_is_rejected_by_name,
    rename_without_members_keeps_members,
    replace_members_empty_list_empties_group,
    remove_with_value_array_removes_only_those,
    nested_groups_and_cycles,
    deleting_a_user_removes_its_memberships,
    excluded_members_and_user_groups,
    members_read_back_as_sent,
    display_name_unique,
);

async fn create_with_members_and_read_back(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("u1@example.com").await;
    let u2 = app.create_user("u2@example.com").await;
    let r = app.post("/Groups", &crate::support::group("Engineers", &[&u1, &u2])).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let members = r.body["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let m = members.iter().find(|m| m["value"] == u1.as_str()).unwrap();
    assert_eq!(m["type"], "User");
    assert!(m.get("display").is_none(), "display is returned only on request: {m}");
    assert!(m["$ref"].as_str().unwrap().ends_with(&format!("/Users/{u1}")));
    let gid = r.body["id"].as_str().unwrap();
    let g = app.get(&format!("/Groups/{gid}?attributes=members,members.display")).await.body;
    let m = g["members"].as_array().unwrap().iter().find(|m| m["value"] == u1.as_str()).unwrap();
    assert_eq!(m["display"], "Display u1@example.com");
    assert_eq!(m["type"], "User");
    let mut expected = vec![u1.clone(), u2.clone()];
    expected.sort();
    assert_eq!(app.member_ids(gid).await, expected);
}

async fn patch_add_and_remove_members_answers_204(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let u2 = app.create_user("b@example.com").await;
    let gid = app.create_group("Team", &[&u1]).await;
    let path = format!("/Groups/{gid}");
    // Okta: remove by filter, add by value array without `type`, in one request.
    let r = app
        .patch(
            &path,
            &patch_op(json!([
                {"op": "remove", "path": format!("members[value eq \"{u1}\"]")},
                {"op": "add", "path": "members", "value": [{"value": u2, "display": "b@example.com"}]}
            ])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.body, serde_json::Value::Null);
    assert_eq!(app.member_ids(&gid).await, vec![u2.clone()]);
    // Entra: capitalised op and `$ref: null`.
    let r = app
        .patch(
            &path,
            &patch_op(
                json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": u1}]}]),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.member_ids(&gid).await.len(), 2);
    // Adding a present member changes nothing, not even the version.
    let before = app.get(&path).await.body["meta"]["version"].clone();
    let r = app
        .patch(
            &path,
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u1}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path).await.body["meta"]["version"], before);
    let journal = app.journal().await;
    let last = journal.iter().rev().find(|j| j.action == "patch").unwrap();
    assert_eq!(last.detail, Some(json!({"members_added": [u1]})));
}

async fn patch_with_attributes_answers_200(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let gid = app.create_group("Team", &[]).await;
    let r = app
        .patch(
            &format!("/Groups/{gid}?attributes=members,displayName"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u1}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["members"][0]["value"], u1.as_str());
    assert_eq!(r.body["displayName"], "Team");
    assert!(r.body.get("meta").is_none(), "projection applies: {}", r.body);
}

async fn unknown_member_is_rejected_by_name(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let gid = app.create_group("Team", &[]).await;
    let ghost = uuid::Uuid::new_v4().to_string();
    let r = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u1}, {"value": ghost}]}])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains(&ghost), "{}", r.body);
    assert!(app.member_ids(&gid).await.is_empty(), "nothing half-written");
    let r = app.post("/Groups", &crate::support::group("Other", &["fake-member-id"])).await;
    r.assert_error(400, Some("invalidValue"));
    assert!(r.body["detail"].as_str().unwrap().contains("fake-member-id"));
    assert_eq!(app.get("/Groups").await.body["totalResults"], 1, "the failed create left no group");
}

async fn rename_without_members_keeps_members(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let gid = app.create_group("Old", &[&u1]).await;
    // Okta's rename: a no-path replace carrying id and displayName.
    let r = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "replace", "value": {"id": gid, "displayName": "New"}}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let g = app.get(&format!("/Groups/{gid}")).await.body;
    assert_eq!(g["displayName"], "New");
    assert_eq!(app.member_ids(&gid).await, vec![u1]);
    let detail = app.journal().await.last().unwrap().detail.clone();
    assert_eq!(detail, Some(json!({"renamed_from": "Old"})));
}

async fn replace_members_empty_list_empties_group(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let u2 = app.create_user("b@example.com").await;
    let gid = app.create_group("Team", &[&u1, &u2]).await;
    let r = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "replace", "path": "members", "value": []}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(app.member_ids(&gid).await.is_empty());
    // A full replace leaves exactly the listed members.
    let r = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "replace", "path": "members", "value": [{"value": u2}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.member_ids(&gid).await, vec![u2]);
}

async fn remove_with_value_array_removes_only_those(b: Backend) {
    let app = spawn_app(b).await;
    let ids = [
        app.create_user("a@example.com").await,
        app.create_user("b@example.com").await,
        app.create_user("c@example.com").await,
    ];
    let gid = app.create_group("Team", &[&ids[0], &ids[1], &ids[2]]).await;
    // Entra's and authentik's remove: path "members" with a value array.
    let r = app
        .patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let mut expected = vec![ids[0].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(app.member_ids(&gid).await, expected);
}

async fn nested_groups_and_cycles(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let inner = app.create_group("Inner", &[&u1]).await;
    let outer = app.create_group("Outer", &[&inner]).await;
    let g = app.get(&format!("/Groups/{outer}?attributes=members,members.display")).await.body;
    assert_eq!(g["members"][0]["type"], "Group");
    assert_eq!(g["members"][0]["display"], "Inner");
    // Inner ⊂ Outer, so Outer may not join Inner, nor a group itself.
    let r = app
        .patch(
            &format!("/Groups/{inner}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": outer}]}])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    let r = app
        .patch(
            &format!("/Groups/{inner}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": inner}]}])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
    // A wrong `type` is rejected.
    let r = app
        .patch(
            &format!("/Groups/{outer}"),
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u1, "type": "Group"}]}])),
        )
        .await;
    r.assert_error(400, Some("invalidValue"));
}

async fn deleting_a_user_removes_its_memberships(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let u2 = app.create_user("b@example.com").await;
    let gid = app.create_group("Team", &[&u1, &u2]).await;
    let v_before = app.get(&format!("/Groups/{gid}")).await.body["meta"]["version"].clone();
    assert_eq!(app.delete(&format!("/Users/{u1}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.member_ids(&gid).await, vec![u2]);
    let v_after = app.get(&format!("/Groups/{gid}")).await.body["meta"]["version"].clone();
    assert_ne!(v_before, v_after, "the group's version changes with its members");
    let journal = app.journal().await;
    let del = journal.iter().find(|j| j.action == "delete").unwrap();
    assert_eq!(del.detail, Some(json!({"name": "a@example.com", "member_of": [gid]})));
    let lost = journal.iter().find(|j| j.action == "member_deleted").expect("a row for the group");
    assert_eq!(lost.resource_id, gid);
    assert_eq!(lost.resource_type.name(), "Group");
    assert_eq!(lost.detail, Some(json!({"members_removed": [u1]})));
}

async fn excluded_members_and_user_groups(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let gid = app.create_group("Team", &[&u1]).await;
    let g = app.get(&format!("/Groups/{gid}?excludedAttributes=members")).await.body;
    assert!(g.get("members").is_none(), "{g}");
    assert_eq!(g["displayName"], "Team");
    let list = app.get("/Groups?excludedAttributes=members").await.body;
    assert!(list["Resources"][0].get("members").is_none());
    let u = app.get(&format!("/Users/{u1}")).await.body;
    assert_eq!(u["groups"][0]["value"], gid.as_str());
    assert_eq!(u["groups"][0]["display"], "Team");
}

/// scim2-tester's PATCH add/replace checks: a member added without `display` reads back exactly
/// as sent. `display` is readOnly and derived, so it is returned only when asked for.
async fn members_read_back_as_sent(b: Backend) {
    let app = spawn_app(b).await;
    let u1 = app.create_user("a@example.com").await;
    let u2 = app.create_user("b@example.com").await;
    let gid = app.create_group("Team", &[]).await;
    let path = format!("/Groups/{gid}");
    let sent =
        |id: &str| json!({"value": id, "$ref": format!("{}/Users/{id}", app.base), "type": "User"});
    for (op, id) in [("add", &u1), ("replace", &u2)] {
        let r = app
            .patch(&path, &patch_op(json!([{"op": op, "path": "members", "value": [sent(id)]}])))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let g = app.get(&path).await.body;
        assert_eq!(g["members"], json!([sent(id)]), "after {op}");
        let list = app.get("/Groups").await.body;
        assert_eq!(list["Resources"][0]["members"], json!([sent(id)]), "after {op}");
    }
    // A `display` sent by the client (Okta) is ignored; the derived one is there on request.
    let r = app
        .patch(
            &path,
            &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u1, "display": "Sent"}]}])),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let g = app.get(&format!("{path}?attributes=members.display")).await.body;
    let mut displays: Vec<&str> =
        g["members"].as_array().unwrap().iter().map(|m| m["display"].as_str().unwrap()).collect();
    displays.sort();
    assert_eq!(displays, ["Display a@example.com", "Display b@example.com"]);
    let u = app.get(&format!("/Users/{u1}")).await.body;
    assert_eq!(u["groups"][0]["display"], "Team", "User.groups keeps its display by default");
}

async fn display_name_unique(b: Backend) {
    let app = spawn_app(b).await;
    app.create_group("Admins", &[]).await;
    app.post("/Groups", &crate::support::group("ADMINS", &[]))
        .await
        .assert_error(409, Some("uniqueness"));
}
