//! Pagination, sorting, `.search` and projection on lists.

use crate::on_both_backends;
use crate::support::{Backend, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    pages_are_stable_and_complete,
    sorting,
    search_endpoints,
    count_zero_and_bounds,
    relations_on_deeper_pages
);

async fn pages_are_stable_and_complete(b: Backend) {
    let app = spawn_app(b).await;
    for i in 0..25 {
        app.create_user(&format!("user{i:02}@example.com")).await;
    }
    let mut seen = Vec::new();
    for start in [1, 11, 21] {
        let r = app.get(&format!("/Users?startIndex={start}&count=10")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["totalResults"], 25);
        assert_eq!(r.body["startIndex"], start);
        let page = r.body["Resources"].as_array().unwrap();
        assert_eq!(r.body["itemsPerPage"], page.len());
        seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen.len(), 25);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 25, "no resource appears on two pages");
    // The same page twice is the same page.
    let a = app.get("/Users?startIndex=11&count=10").await.body["Resources"].clone();
    let b2 = app.get("/Users?startIndex=11&count=10").await.body["Resources"].clone();
    assert_eq!(a, b2);
}

async fn sorting(b: Backend) {
    let app = spawn_app(b).await;
    for n in ["carol", "alice", "bob"] {
        app.create_user(&format!("{n}@example.com")).await;
    }
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let asc = app.get("/Users?sortBy=userName").await.body;
    assert_eq!(names(&asc), ["alice@example.com", "bob@example.com", "carol@example.com"]);
    let desc = app.get("/Users?sortBy=userName&sortOrder=descending").await.body;
    assert_eq!(names(&desc), ["carol@example.com", "bob@example.com", "alice@example.com"]);
    let by_email = app.get("/Users?sortBy=emails.value&sortOrder=descending").await.body;
    assert_eq!(names(&by_email), ["carol@example.com", "bob@example.com", "alice@example.com"]);
    app.get("/Users?sortOrder=sideways").await.assert_error(400, Some("invalidValue"));
}

async fn search_endpoints(b: Backend) {
    let app = spawn_app(b).await;
    let u = app.create_user("alice@example.com").await;
    app.create_user("bob@example.com").await;
    app.create_group("Team", &[&u]).await;
    let req = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"a\"",
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10
    });
    let r = app.post("/Users/.search", &req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 1);
    let res = &r.body["Resources"][0];
    assert_eq!(res["userName"], "alice@example.com");
    assert!(res.get("emails").is_none(), "attributes projection: {res}");
    assert!(res.get("id").is_some(), "id is always returned");
    // Root search spans Users and Groups.
    let all =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 2});
    let r = app.post("/.search", &all).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["totalResults"], 3);
    assert_eq!(r.body["itemsPerPage"], 2);
    let r = app.post("/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": 3})).await;
    assert_eq!(r.body["Resources"][0]["displayName"], "Team", "{}", r.body);
    let r = app.post("/.search", &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName eq \"Team\""})).await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
}

async fn count_zero_and_bounds(b: Backend) {
    let app = spawn_app(b).await;
    app.create_user("a@example.com").await;
    app.create_user("b@example.com").await;
    let r = app.get("/Users?count=0").await.body;
    assert_eq!(r["totalResults"], 2);
    assert_eq!(r["Resources"], json!([]));
    let r = app.get("/Users?startIndex=0&count=-3").await.body;
    assert_eq!(r["startIndex"], 1);
    assert_eq!(r["itemsPerPage"], 0);
    let r = app.get("/Users?startIndex=50").await.body;
    assert_eq!(r["totalResults"], 2);
    assert_eq!(r["Resources"], json!([]));
    app.get("/Users?count=lots").await.assert_error(400, Some("invalidValue"));
}

async fn relations_on_deeper_pages(b: Backend) {
    let app = spawn_app(b).await;
    let a = app.create_user("a@example.com").await;
    let bb = app.create_user("b@example.com").await;
    let c = app.create_user("c@example.com").await;
    let g = app.create_group("Team", &[&bb, &c]).await;
    for (start, id, in_group) in [(1, &a, false), (2, &bb, true), (3, &c, true)] {
        let r = app.get(&format!("/Users?startIndex={start}&count=1")).await.body;
        assert_eq!(r["totalResults"], 3, "{r}");
        assert_eq!(r["Resources"][0]["id"], id.as_str());
        let groups = &r["Resources"][0]["groups"];
        if in_group {
            assert_eq!(groups[0]["value"], g.as_str(), "page {start}: {r}");
        } else {
            assert!(groups.is_null(), "page {start}: {r}");
        }
    }
    let r = app.get("/Groups?startIndex=1&count=5").await.body;
    assert_eq!(r["Resources"][0]["members"].as_array().map(Vec::len), Some(2));
}
