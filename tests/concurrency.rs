//! Concurrent PATCHes of one group never lose a member (Okta sends them in parallel), and
//! deletes racing membership changes never leave a member that does not exist nor fail with 500.

use crate::on_both_backends;
use crate::support::{Backend, patch_op, spawn_app};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;

on_both_backends!(concurrent_member_adds, deletes_racing_member_adds);

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

async fn deletes_racing_member_adds(b: Backend) {
    let app = Arc::new(spawn_app(b).await);
    let mut users = Vec::new();
    for i in 0..24 {
        users.push(app.create_user(&format!("r{i}@example.com")).await);
    }
    let mut groups = Vec::new();
    for g in 0..6 {
        let members: Vec<&str> = users.iter().map(String::as_str).collect();
        groups.push(app.create_group(&format!("G{g}"), &members).await);
    }
    // Half the users are deleted while every group gets them re-added, in parallel: deletes
    // lock the user then its groups, adds lock the group then the user.
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let app = app.clone();
        let u = u.clone();
        let groups = groups.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            if i % 2 == 0 {
                statuses.push(app.delete(&format!("/Users/{u}")).await.status.as_u16());
            }
            for g in &groups {
                let body = patch_op(json!([
                    {"op": "remove", "path": format!("members[value eq \"{u}\"]")},
                    {"op": "add", "path": "members", "value": [{"value": u}]}
                ]));
                statuses.push(app.patch(&format!("/Groups/{g}"), &body).await.status.as_u16());
            }
            statuses
        }));
    }
    for t in tasks {
        for status in t.await.unwrap() {
            // 400: the user was already deleted when the add ran ("unknown member").
            assert!([204, 400].contains(&status), "status {status}");
        }
    }
    let survivors: std::collections::BTreeSet<String> =
        users.iter().enumerate().filter(|(i, _)| i % 2 == 1).map(|(_, u)| u.clone()).collect();
    for g in &groups {
        let members: std::collections::BTreeSet<String> =
            app.member_ids(g).await.into_iter().collect();
        assert_eq!(members, survivors, "exactly the surviving users, no deleted ones");
    }
}
