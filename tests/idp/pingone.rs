//! PingOne's SCIM outbound provisioning, from reference `scim-and-idp-clients.md` §2.4 (Ping's
//! provisioning and filter-expression docs, and the AWS blog's setup): the admin-set filter
//! `username Eq "…"` (lower-case attribute, capitalised operator), "Username" mapped to both
//! `userName` and `displayName`, one work email, updates and disable/enable as PUTs (Ping's
//! provisioner does not PATCH users), group membership "Overwrite" (a PUT of the full member
//! list) and "Merge" (read, then PUT the union), remove action "Delete".
//!
//! Ping documents no request bodies (§2.4, "Gap"): the PUT shapes here are the plain RFC ones.

use super::{GROUP_SCHEMA, Idp, Replay, USER_SCHEMA, created_id, sorted};
use crate::on_both_backends;
use crate::support::Backend;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(ping_mode, generic_mode, auto_mode);

async fn ping_mode(b: Backend) {
    replay(b, "ping").await
}

async fn generic_mode(b: Backend) {
    replay(b, "generic").await
}

async fn auto_mode(b: Backend) {
    replay(b, "auto").await
}

/// Ping documents no User-Agent; `auto` recognises one that names PingOne.
const PINGONE: Idp = Idp {
    source: "pingone",
    user_agent: Some("PingOne-SCIM/1.0"),
    content_type: "application/json",
    query_suffix: None,
    detected_as: "ping",
};

/// The AWS blog's mapping: "Username" → `userName` and `displayName`, "Email Address" →
/// the work email.
fn ping_user(user_name: &str, given: &str, family: &str, active: bool) -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "displayName": user_name,
        "emails": [{"value": user_name, "type": "work"}],
        "active": active
    })
}

fn ping_group(name: &str, members: &[&str]) -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": name,
        "members": members.iter().map(|id| json!({"value": id})).collect::<Vec<_>>()
    })
}

/// The User Filter Expression `username Eq "%s"`.
fn user_filter(user_name: &str) -> String {
    format!("username Eq \"{user_name}\"")
}

async fn replay(b: Backend, mode: &'static str) {
    let run = Replay::start(b, &PINGONE, mode).await;
    let ping = &run.idp;

    let alice = create_user(&run, "alice@example.com", "Alice", "Example").await;
    assert_eq!(run.filter_total("/Users", &user_filter("alice@example.com"), "").await, 1);

    // Update (a new family name), disable, re-enable: each a PUT of the full object.
    let path = format!("/Users/{alice}");
    for active in [true, false, true] {
        let mut body = ping_user("alice@example.com", "Alice", "Exemplar", active);
        body["id"] = json!(alice);
        let r = ping.put(&path, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["active"], active, "{}", r.body);
        assert_eq!(r.body["name"]["familyName"], "Exemplar", "{}", r.body);
    }

    let bob = create_user(&run, "bob@example.com", "Bob", "Builder").await;
    let carol = create_user(&run, "carol@example.com", "Carol", "Singer").await;

    let gid = created_id(&ping.post("/Groups", &ping_group("Engineering", &[])).await);
    let group = format!("/Groups/{gid}");

    // "Overwrite": the full member list, then a smaller one.
    put_group(&run, &gid, "Engineering", &[&alice, &bob, &carol]).await;
    put_group(&run, &gid, "Engineering", &[&alice, &bob]).await;
    assert_eq!(run.members(&gid).await, sorted(&[&alice, &bob]), "carol was overwritten away");

    // "Merge": read the group, PUT the union.
    let mut union = run.members(&gid).await;
    union.push(carol.clone());
    let union: Vec<&str> = union.iter().map(String::as_str).collect();
    put_group(&run, &gid, "Engineering", &union).await;
    assert_eq!(run.members(&gid).await, sorted(&[&alice, &bob, &carol]));

    // Rename: a PUT with the current members.
    let current = run.members(&gid).await;
    let current: Vec<&str> = current.iter().map(String::as_str).collect();
    put_group(&run, &gid, "Platform Engineering", &current).await;
    let r = ping.get(&group).await;
    assert_eq!(r.body["displayName"], "Platform Engineering");
    assert_eq!(super::member_ids(&r.body), sorted(&[&alice, &bob, &carol]));

    // Remove action "Delete".
    let r = ping.delete(&format!("/Users/{carol}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(run.members(&gid).await, sorted(&[&alice, &bob]));
    let r = ping.delete(&group).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Final state.
    let user = run.user(&alice).await;
    assert_eq!(user["active"], true);
    assert_eq!(user["name"]["familyName"], "Exemplar");
    assert_eq!(user["displayName"], "alice@example.com");
    assert_eq!(user["emails"], json!([{"value": "alice@example.com", "type": "work"}]));
    assert_eq!(run.user(&bob).await["active"], true);
    run.assert_gone("Users", &carol).await;
    assert_eq!(run.filter_total("/Users", &user_filter("carol@example.com"), "").await, 0);
    run.assert_gone("Groups", &gid).await;
    run.finish(&alice).await;
}

/// Ping's lookup with the admin's filter expression (nothing found), then the create.
async fn create_user(run: &Replay, user_name: &str, given: &str, family: &str) -> String {
    assert_eq!(run.filter_total("/Users", &user_filter(user_name), "").await, 0);
    let r = run.idp.post("/Users", &ping_user(user_name, given, family, true)).await;
    let id = created_id(&r);
    assert_eq!(r.body["displayName"], user_name);
    id
}

/// PUT /Groups/{id} with this name and the full member list (the reply lists them).
async fn put_group(run: &Replay, gid: &str, name: &str, members: &[&str]) {
    let r = run.idp.put(&format!("/Groups/{gid}"), &ping_group(name, members)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(super::member_ids(&r.body), sorted(members), "{}", r.body);
}
