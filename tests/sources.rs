//! Several identity sources side by side: isolation, token lifecycle, journal attribution.

use crate::on_both_backends;
use crate::support::{Backend, spawn_app, user};
use reqwest::{Method, StatusCode};

on_both_backends!(sources_are_isolated, token_lifecycle);

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
    let used = app.store.list_tokens().await.unwrap();
    assert!(used.iter().all(|t| t.last_used_at.is_some()), "last use is recorded");
    // An expired token is refused.
    let source = app.store.upsert_source("test", None).await.unwrap();
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
