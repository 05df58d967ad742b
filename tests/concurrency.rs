//! Concurrent PATCHes of one group never lose a member (Okta sends them in parallel).

use crate::on_both_backends;
use crate::support::{Backend, patch_op, spawn_app};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;

on_both_backends!(concurrent_member_adds);

async fn concurrent_member_adds(b: Backend) {
    let app = Arc::new(spawn_app(b).await);
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(app.create_user(&format!("c{i}@example.com")).await);
    }
    let gid = app.create_group("Busy", &[]).await;
    let mut tasks = Vec::new();
    for u in users.clone() {
        let app = app.clone();
        let gid = gid.clone();
        tasks.push(tokio::spawn(async move {
            let body = patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u}]}]));
            app.patch(&format!("/Groups/{gid}"), &body).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NO_CONTENT);
    }
    let mut expected = users;
    expected.sort();
    assert_eq!(app.member_ids(&gid).await, expected, "every concurrent add survived");
    let journal = app.journal().await;
    assert_eq!(journal.iter().filter(|j| j.action == "patch").count(), 40);
}
