//! authentik's outbound SCIM provider, from reference `scim-and-idp-clients.md` §2.3 (its
//! `clients/{base,users,groups}.py` and default mapping blueprint): ServiceProviderConfig read
//! for `bulk.maxOperations`, users POSTed per the default mapping, a 409 answered by a bare
//! `userName eq x@y` lookup, every user update a full PUT (deactivation included), groups
//! POSTed without members then PATCHed one op per user in chunks of `bulk.maxOperations`,
//! removal by value array, a no-path group replace followed by a GET to diff `members`, DELETE.

use super::{GROUP_SCHEMA, Idp, Replay, USER_SCHEMA, assert_no_content, created_id, patch, sorted};
use crate::on_both_backends;
use crate::support::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(authentik_mode, generic_mode, auto_mode);

async fn authentik_mode(b: Backend) {
    replay(b, "authentik").await
}

async fn generic_mode(b: Backend) {
    replay(b, "generic").await
}

async fn auto_mode(b: Backend) {
    replay(b, "auto").await
}

const AUTHENTIK: Idp = Idp {
    source: "authentik",
    user_agent: Some("authentik@2025.2.1"),
    content_type: "application/scim+json",
    query_suffix: None,
    detected_as: "authentik",
};

/// The default user mapping: the name split on its first space, an avatar URL, email type
/// `other`; `externalId` is the authentik `uid`.
fn authentik_user(user_name: &str, name: &str, uid: &str, active: bool) -> Value {
    let (given, family) = name.split_once(' ').unwrap_or((name, ""));
    let avatar = format!("https://authentik.example.com/media/avatars/{uid}.png");
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"formatted": name, "givenName": given, "familyName": family},
        "displayName": name,
        "photos": [{"value": avatar, "type": "photo"}],
        "locale": "en",
        "active": active,
        "emails": [{"value": user_name, "type": "other", "primary": true}],
        "externalId": uid
    })
}

const ALICE_UID: &str = "5e8f1d7c3b2a49608f7e6d5c4b3a2918";

async fn replay(b: Backend, mode: &'static str) {
    let run = Replay::start(b, &AUTHENTIK, mode).await;
    let ak = &run.idp;

    let r = ak.get("/ServiceProviderConfig").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let max_ops = r.body["bulk"]["maxOperations"].as_u64().unwrap_or_else(|| panic!("{}", r.body));
    assert!(max_ops >= 1, "{}", r.body);

    let alice_as =
        |name: &str, active: bool| authentik_user("alice@example.com", name, ALICE_UID, active);
    let alice = created_id(&ak.post("/Users", &alice_as("Alice Example", true)).await);

    // A full sync re-creates: 409, then a bare, unquoted userName lookup finds the user.
    let r = ak.post("/Users", &alice_as("Alice Example", true)).await;
    r.assert_error(409, Some("uniqueness"));
    let filter = crate::support::enc("userName eq alice@example.com");
    let r = ak.get(&format!("/Users?filter={filter}")).await;
    assert_eq!(super::list_total(&r), 1);
    assert_eq!(r.body["Resources"][0]["id"], alice.as_str());

    // Updates, deactivation and reactivation are each a PUT of the whole object.
    let path = format!("/Users/{alice}");
    let r = ak.put(&path, &alice_as("Alice Q. Example", true)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["displayName"], "Alice Q. Example");
    for active in [false, true] {
        let r = ak.put(&path, &alice_as("Alice Q. Example", active)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], active, "{}", r.body);
    }

    let new_user =
        |user_name: &str, name: &str, uid: &str| authentik_user(user_name, name, uid, true);
    let bob = created_id(
        &ak.post(
            "/Users",
            &new_user("bob@example.com", "Bob Builder", "0b0b0b0b0b0b4b0b8b0b0b0b0b0b0b0b"),
        )
        .await,
    );
    let carol = created_id(
        &ak.post(
            "/Users",
            &new_user("carol@example.com", "Carol Singer", "ca201ca201ca4201a201ca201ca201ca"),
        )
        .await,
    );

    // The group mapping is only the display name: no members on create.
    let r =
        ak.post("/Groups", &json!({"schemas": [GROUP_SCHEMA], "displayName": "Developers"})).await;
    let gid = created_id(&r);
    let group = format!("/Groups/{gid}");

    // One op per user, chunked by bulk.maxOperations (one request for three users here).
    let ops: Vec<Value> = [&alice, &bob, &carol]
        .iter()
        .map(|id| json!({"op": "add", "path": "members", "value": [{"value": id}]}))
        .collect();
    let chunks: Vec<&[Value]> = ops.chunks(max_ops as usize).collect();
    assert_eq!(chunks.len(), 1, "maxOperations {max_ops} fits three ops in one request");
    for chunk in chunks {
        assert_no_content(&ak.patch(&group, &patch(json!(chunk))).await);
    }
    assert_eq!(run.members(&gid).await, sorted(&[&alice, &bob, &carol]));

    // Removal: the same shape with `remove` and a value array; only alice leaves.
    let r = ak
        .patch(
            &group,
            &patch(json!([{"op": "remove", "path": "members", "value": [{"value": alice}]}])),
        )
        .await;
    assert_no_content(&r);
    assert_eq!(run.members(&gid).await, sorted(&[&bob, &carol]));

    // An attribute update: the whole group JSON (no `members` key) in a no-path replace, then a
    // GET whose `members` authentik diffs against its own: nothing may have been dropped.
    let full =
        json!({"schemas": [GROUP_SCHEMA], "id": gid, "displayName": "Developers (platform)"});
    let r = ak.patch(&group, &patch(json!([{"op": "replace", "value": full}]))).await;
    assert!(matches!(r.status.as_u16(), 200 | 204), "{} {}", r.status, r.body);
    let r = ak.get(&group).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["displayName"], "Developers (platform)");
    assert_eq!(super::member_ids(&r.body), sorted(&[&bob, &carol]));

    // Deletions.
    let r = ak.delete(&format!("/Users/{carol}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(run.members(&gid).await, sorted(&[&bob]));
    let r = ak.delete(&group).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Final state.
    let user = run.user(&alice).await;
    assert_eq!(user["active"], true);
    assert_eq!(user["displayName"], "Alice Q. Example");
    assert_eq!(user["name"]["givenName"], "Alice");
    assert_eq!(user["name"]["familyName"], "Q. Example");
    assert_eq!(user["externalId"], ALICE_UID);
    assert_eq!(user["emails"][0]["type"], "other");
    assert_eq!(user["photos"][0]["type"], "photo");
    assert_eq!(run.user(&bob).await["active"], true);
    run.assert_gone("Users", &carol).await;
    run.assert_gone("Groups", &gid).await;
    assert_eq!(run.filter_total("/Users", "userName eq \"carol@example.com\"", "").await, 0);
    run.finish(&alice).await;
}
