//! Okta's request sequence, from reference `scim-and-idp-clients.md` §2.1 (Okta's SCIM 2.0
//! reference): connection test, existence check, create with `groups: []` and a password,
//! GET + full PUT, no-path PATCH (de)activation, Push Groups with its rename-before-members
//! PATCH, members by filter and by value array, full push, "Push now" on an empty group, rename,
//! delete. Okta never deletes users.

use super::{
    GROUP_SCHEMA, Idp, Replay, USER_SCHEMA, assert_no_content, created_id, list_total, patch,
    sorted,
};
use crate::on_both_backends;
use crate::support::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(okta_mode, generic_mode, auto_mode);

async fn okta_mode(b: Backend) {
    replay(b, "okta").await
}

async fn generic_mode(b: Backend) {
    replay(b, "generic").await
}

async fn auto_mode(b: Backend) {
    replay(b, "auto").await
}

const OKTA: Idp = Idp {
    source: "okta",
    user_agent: Some("Okta SCIM Client 1.0.0"),
    content_type: "application/json",
    query_suffix: None,
    detected_as: "okta",
};

/// The password Okta sends on create and update (the reference's example value).
const PASSWORD: &str = "1mz050nq";

/// Okta's create body (reference §2.1, "Create").
fn okta_user(user_name: &str, given: &str, family: &str, okta_id: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": okta_id,
        "groups": [],
        "password": PASSWORD,
        "active": true
    })
}

async fn replay(b: Backend, mode: &'static str) {
    let run = Replay::start(b, &OKTA, mode).await;
    let okta = &run.idp;

    // Connection test.
    let r = okta.get("/Users?startIndex=1&count=1").await;
    assert_eq!(list_total(&r), 0);

    let u1 =
        create_user(&run, "test.user@okta.local", "Test", "User", "00u1a2b3c4D5e6F7g8h9").await;

    // Profile update: GET, then PUT of the full object (with the password again).
    let mut full = run.user(&u1).await;
    full["name"]["familyName"] = json!("Userton");
    full["password"] = json!(PASSWORD);
    let r = okta.put(&format!("/Users/{u1}"), &full).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"]["familyName"], "Userton");

    // Deactivate (unassign, suspend, deactivate), then reactivate: no-path PATCHes.
    for active in [false, true] {
        let body = patch(json!([{"op": "replace", "value": {"active": active}}]));
        let r = okta.patch(&format!("/Users/{u1}"), &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], active, "{}", r.body);
    }

    let u2 =
        create_user(&run, "second.user@okta.local", "Second", "User", "00u9z8y7x6W5v4U3t2s1").await;

    // Push Groups: create, then the rename PATCH Okta sends before any member PATCH.
    let r = okta
        .post(
            "/Groups",
            &json!({"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2", "members": []}),
        )
        .await;
    let gid = created_id(&r);
    let group = format!("/Groups/{gid}");
    let r = okta
        .patch(
            &group,
            &patch(json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2"}}])),
        )
        .await;
    assert!(matches!(r.status.as_u16(), 200 | 204), "{} {}", r.status, r.body);

    // Add by value array: `display`, no `type`.
    let add_both = patch(json!([{"op": "add", "path": "members", "value": [
        {"value": u1, "display": "test.user@okta.local"},
        {"value": u2, "display": "second.user@okta.local"}
    ]}]));
    assert_no_content(&okta.patch(&group, &add_both).await);
    assert_eq!(run.members(&gid).await, sorted(&[&u1, &u2]));

    // Remove by filter path.
    let r = okta
        .patch(
            &group,
            &patch(json!([{"op": "remove", "path": format!("members[value eq \"{u1}\"]")}])),
        )
        .await;
    assert_no_content(&r);
    assert_eq!(run.members(&gid).await, sorted(&[&u2]));

    // A full push replaces the member list.
    let r = okta
        .patch(
            &group,
            &patch(json!([{"op": "replace", "path": "members", "value": [
                {"value": u1, "display": "test.user@okta.local"}
            ]}])),
        )
        .await;
    assert_no_content(&r);
    assert_eq!(run.members(&gid).await, sorted(&[&u1]));

    // "Push now": replace with [] empties the group, then the members are added again.
    let r = okta
        .patch(&group, &patch(json!([{"op": "replace", "path": "members", "value": []}])))
        .await;
    assert_no_content(&r);
    assert!(run.members(&gid).await.is_empty());
    assert_no_content(&okta.patch(&group, &add_both).await);
    assert_eq!(run.members(&gid).await, sorted(&[&u1, &u2]));

    // Rename: the same no-path replace, with the new name; members stay.
    let rename =
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 Renamed"}}]);
    let r = okta.patch(&group, &patch(rename)).await;
    assert!(matches!(r.status.as_u16(), 200 | 204), "{} {}", r.status, r.body);
    let g = okta.get(&group).await;
    assert_eq!(g.body["displayName"], "Test SCIMv2 Renamed");
    assert_eq!(super::member_ids(&g.body), sorted(&[&u1, &u2]));

    // Unlink with "delete in target app".
    let r = okta.delete(&group).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Final state: both users still exist (Okta never deletes them), the group is gone.
    let user = run.user(&u1).await;
    assert_eq!(user["active"], true);
    assert_eq!(user["name"]["familyName"], "Userton");
    assert_eq!(user["name"]["givenName"], "Test");
    assert_eq!(user["externalId"], "00u1a2b3c4D5e6F7g8h9");
    assert_eq!(run.user(&u2).await["active"], true);
    assert_eq!(list_total(&okta.get("/Users?startIndex=1&count=100").await), 2);
    run.assert_gone("Groups", &gid).await;
    assert_eq!(run.filter_total("/Groups", "displayName eq \"Test SCIMv2 Renamed\"", "").await, 0);

    // The password was accepted but never returned, stored or journalled.
    for reply in okta.replies() {
        assert!(!reply.contains(PASSWORD), "a reply carries the password:\n{reply}");
    }
    for doc in run.app.user_docs().await {
        assert!(!doc.contains(PASSWORD), "a stored user carries the password: {doc}");
    }
    let store = run.finish(&u1).await;
    for row in store.journal_since(0, 100_000).await.expect("journal") {
        let detail = row.detail.map(|d| d.to_string()).unwrap_or_default();
        assert!(!detail.contains(PASSWORD), "a journal row carries the password: {detail}");
    }
}

/// Okta's existence check (nothing found), then the create.
async fn create_user(
    run: &Replay,
    user_name: &str,
    given: &str,
    family: &str,
    okta_id: &str,
) -> String {
    let filter = format!("userName eq \"{user_name}\"");
    assert_eq!(run.filter_total("/Users", &filter, "&startIndex=1&count=100").await, 0);
    let r = run.idp.post("/Users", &okta_user(user_name, given, family, okta_id)).await;
    let id = created_id(&r);
    assert!(r.body.get("password").is_none(), "{}", r.body);
    assert_eq!(r.body["userName"], user_name);
    assert_eq!(r.body["active"], true);
    id
}
