//! Several identity sources side by side: isolation, token lifecycle, journal attribution.

use crate::on_both_backends;
use crate::support::{Backend, TestApp, eventually, spawn_app, spawn_app_with, user};
use reqwest::{Method, StatusCode};
use scimbridge::config::{Settings, SourceSettings};
use serde_json::{Value, json};

on_both_backends!(
    sources_are_isolated,
    token_lifecycle,
    migration_takes_over_users_and_groups,
    migration_is_off_by_default,
    migration_only_from_listed_sources,
);

async fn sources_are_isolated(b: Backend) {
    let app = spawn_app(b).await;
    let mine = app.create_user("mine@example.com").await;
    let gid = app.create_group("Mine", &[&mine]).await;
    let entra = app.token_for("entra", Some("entra")).await;
    // Another source's ids are 404 to it, for reads and writes alike.
    for (m, path) in [
        (Method::GET, format!("/Users/{mine}")),
        (Method::DELETE, format!("/Users/{mine}")),
        (Method::GET, format!("/Groups/{gid}")),
    ] {
        let r = app.request_as(&entra, m, &path, None, &[]).await;
        r.assert_error(404, None);
    }
    let r = app.request_as(&entra, Method::GET, "/Users", None, &[]).await;
    assert_eq!(r.body["totalResults"], 0);
    // Nor can it use them as members.
    let g = crate::support::group("Theirs", &[&mine]);
    let r = app.request_as(&entra, Method::POST, "/Groups", Some(&g), &[]).await;
    r.assert_error(400, Some("invalidValue"));
    let r = app
        .request_as(&entra, Method::POST, "/Users", Some(&user("theirs@example.com")), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let journal = app.journal().await;
    let sources: std::collections::BTreeSet<i64> = journal.iter().map(|j| j.source_id).collect();
    assert_eq!(sources.len(), 2, "each write records its source");
}

async fn token_lifecycle(b: Backend) {
    let app = spawn_app(b).await;
    // Rotation: a second live token for the same source sees the same data.
    let second = app.token_for("test", None).await;
    app.create_user("a@example.com").await;
    let r = app.request_as(&second, Method::GET, "/Users", None, &[]).await;
    assert_eq!(r.body["totalResults"], 1);
    let tokens = app.store.list_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    // Revoke the first: it stops working, the second still works.
    let first = tokens.iter().min_by_key(|t| t.created_at).unwrap().id;
    assert!(app.store.revoke_token(first).await.unwrap());
    app.get("/Users").await.assert_error(401, None);
    let r = app.request_as(&second, Method::GET, "/Users", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    // The last use is written in the background, after the reply.
    eventually(std::time::Duration::from_secs(5), "last use recorded", || async {
        let used = app.store.list_tokens().await.unwrap();
        used.iter().all(|t| t.last_used_at.is_some())
    })
    .await;
    // An expired token is refused.
    let source = app.store.upsert_source(&crate::support::source("test"), None).await.unwrap();
    let secret = scimbridge::auth::generate_token();
    let past = scimbridge::store::now() - chrono::TimeDelta::hours(1);
    let expired = scimbridge::store::NewToken {
        id: uuid::Uuid::now_v7(),
        source_id: Some(source.id),
        digest: scimbridge::auth::digest(&secret).to_vec(),
        created_at: past - chrono::TimeDelta::days(1),
        expires_at: Some(past),
    };
    app.store.insert_token(&expired).await.unwrap();
    let r = app.request_as(&secret, Method::GET, "/Users", None, &[]).await;
    r.assert_error(401, None);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"), "{}", r.body);
    // Admin tokens are not SCIM tokens.
    let (_, admin, _) = scimbridge::auth::create_token(&*app.store, None, None).await.unwrap();
    app.request_as(&admin, Method::GET, "/Users", None, &[]).await.assert_error(403, None);
}

/// An app whose source `entra` may take over what source `test` (the app's own token) holds.
async fn migrating_app(b: Backend) -> (TestApp, String) {
    let mut settings = Settings::default();
    let migration =
        SourceSettings { adopt_from: vec!["test".to_owned()], ..SourceSettings::default() };
    settings.sources.insert("entra".to_owned(), migration);
    let app = spawn_app_with(b, settings, None).await;
    let entra = app.token_for("entra", Some("entra")).await;
    (app, entra)
}

async fn post_as(app: &TestApp, token: &str, path: &str, body: &Value) -> crate::support::Reply {
    app.request_as(token, Method::POST, path, Some(body), &[]).await
}

async fn migration_takes_over_users_and_groups(b: Backend) {
    let (app, entra) = migrating_app(b).await;
    // What the old IdP provisioned.
    let alice = app.create_user("alice@example.com").await;
    let mut bob_doc = user("bob@example.com");
    bob_doc["externalId"] = json!("okta-bob");
    let bob = app.post("/Users", &bob_doc).await.body["id"].as_str().unwrap().to_owned();
    let gid = app.create_group("Engineers", &[&alice, &bob]).await;
    let before = app.journal().await.len();

    // The new IdP creates alice (another case, its own externalId): the same user comes back.
    let mut alice_doc = user("Alice@Example.com");
    alice_doc["externalId"] = json!("entra-alice");
    alice_doc["displayName"] = json!("Alice from Entra");
    let r = post_as(&app, &entra, "/Users", &alice_doc).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], alice.as_str(), "same id");
    assert_eq!(r.body["displayName"], "Alice from Entra", "the POSTed attributes win");
    assert_eq!(r.body["externalId"], "entra-alice");
    let groups: Vec<&str> =
        r.body["groups"].as_array().unwrap().iter().filter_map(|g| g["value"].as_str()).collect();
    assert_eq!(groups, [gid.as_str()], "memberships kept: {}", r.body);
    // Ownership moved: the new source reads it, the old one no longer does.
    let r = app.request_as(&entra, Method::GET, &format!("/Users/{alice}"), None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.get(&format!("/Users/{alice}")).await.assert_error(404, None);

    // Matched by externalId when the new IdP sends another userName: taken over and renamed.
    let mut bob_new = user("robert@example.com");
    bob_new["externalId"] = json!("okta-bob");
    let r = post_as(&app, &entra, "/Users", &bob_new).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], bob.as_str());
    assert_eq!(r.body["userName"], "robert@example.com");

    // The group, POSTed empty as Entra does: same id, members kept; POSTed members are added.
    let carol = app
        .request_as(&entra, Method::POST, "/Users", Some(&user("carol@example.com")), &[])
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "engineers",
        "members": [{"value": carol}]
    });
    let r = post_as(&app, &entra, "/Groups", &group).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], gid.as_str());
    let r = app.request_as(&entra, Method::GET, &format!("/Groups/{gid}"), None, &[]).await;
    let mut members: Vec<&str> =
        r.body["members"].as_array().unwrap().iter().filter_map(|m| m["value"].as_str()).collect();
    members.sort();
    let mut expected = vec![alice.as_str(), bob.as_str(), carol.as_str()];
    expected.sort();
    assert_eq!(members, expected);

    // Each takeover is one journal row naming the old source; nothing was deleted.
    let journal = app.journal().await;
    let adopted: Vec<_> = journal[before..].iter().filter(|j| j.action == "adopt").collect();
    assert_eq!(adopted.len(), 3, "{journal:?}");
    for j in &adopted {
        assert_eq!(j.detail.as_ref().unwrap()["adopted_from"], "test", "{j:?}");
    }
    let bob_row = adopted.iter().find(|j| j.resource_id == bob).unwrap();
    assert_eq!(bob_row.detail.as_ref().unwrap()["renamed_from"], "bob@example.com");
    let group_row = adopted.iter().find(|j| j.resource_id == gid).unwrap();
    assert_eq!(group_row.detail.as_ref().unwrap()["members_added"], json!([carol]));
    assert!(journal.iter().all(|j| j.action != "delete"), "{journal:?}");
}

async fn migration_is_off_by_default(b: Backend) {
    let app = spawn_app(b).await;
    app.create_user("alice@example.com").await;
    app.create_group("Engineers", &[]).await;
    let entra = app.token_for("entra", Some("entra")).await;
    let r = post_as(&app, &entra, "/Users", &user("alice@example.com")).await;
    r.assert_error(409, Some("uniqueness"));
    let r = post_as(&app, &entra, "/Groups", &crate::support::group("Engineers", &[])).await;
    r.assert_error(409, Some("uniqueness"));
}

async fn migration_only_from_listed_sources(b: Backend) {
    let (app, _entra) = migrating_app(b).await;
    // `jumpcloud` is not in entra's adopt_from: its users stay its own.
    let jumpcloud = app.token_for("jumpcloud", None).await;
    let r = post_as(&app, &jumpcloud, "/Users", &user("dave@example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let entra = app.token_for("entra", None).await;
    let r = post_as(&app, &entra, "/Users", &user("dave@example.com")).await;
    r.assert_error(409, Some("uniqueness"));
    // Nor does `test` take anything back from entra (adoption is one-way, per source).
    post_as(&app, &entra, "/Users", &user("erin@example.com")).await;
    app.post("/Users", &user("erin@example.com")).await.assert_error(409, Some("uniqueness"));
}
