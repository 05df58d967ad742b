//! IdP replays: each IdP's documented request sequence (reference
//! `shared/reference/scim-and-idp-clients.md` §2) sent to the real binary on both databases,
//! in the IdP's own compat mode, in `generic`, and in `auto` (which must then have detected it).
//! The final state is checked through the API, as the IdP would see it.

use crate::support::binary::{BinaryApp, IdpClient};
use crate::support::{Backend, Reply};
use reqwest::StatusCode;
use scimbridge::store::{JournalEntry, Store};
use serde_json::{Value, json};
use std::sync::Arc;

mod authentik;
mod entra;
mod okta;
mod pingone;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// How one IdP talks to a SCIM server.
pub struct Idp {
    /// The source (and token) name.
    pub source: &'static str,
    pub user_agent: Option<&'static str>,
    pub content_type: &'static str,
    /// Appended to every query string.
    pub query_suffix: Option<&'static str>,
    /// What the `auto` mode must detect.
    pub detected_as: &'static str,
}

/// One replay: the served binary and the IdP's client, holding a token in compat `mode`.
pub struct Replay {
    pub app: BinaryApp,
    pub idp: IdpClient,
    source: &'static str,
    mode: &'static str,
    detected_as: &'static str,
}

impl Replay {
    pub async fn start(b: Backend, idp: &Idp, mode: &'static str) -> Replay {
        let app = BinaryApp::start(b, "").await;
        let token = app.token(idp.source, Some(mode));
        let client =
            IdpClient::new(&app.base, token, idp.user_agent, idp.content_type, idp.query_suffix);
        Replay { app, idp: client, source: idp.source, mode, detected_as: idp.detected_as }
    }

    /// An explicit mode stays as given; `auto` must have recognised the IdP.
    pub async fn assert_compat(&self, store: &dyn Store) {
        let sources = store.list_sources().await.expect("sources");
        let source = sources
            .iter()
            .find(|s| s.name == self.source)
            .unwrap_or_else(|| panic!("source {} missing: {sources:?}", self.source));
        assert_eq!(source.compat, self.mode, "{source:?}");
        if self.mode == "auto" {
            assert_eq!(
                source.detected_compat.map(|m| m.as_str()),
                Some(self.detected_as),
                "auto mode must detect {}: {source:?}",
                self.detected_as
            );
        }
    }

    /// The checks every replay ends with: the compat mode, and the journal rows of `user`'s
    /// deactivation and reactivation.
    pub async fn finish(&self, user: &str) -> Arc<dyn Store> {
        let store = self.app.store().await;
        self.assert_compat(&*store).await;
        let journal = store.journal_since(0, 100_000).await.expect("journal");
        assert_deactivated_then_reactivated(&journal, user);
        store
    }

    /// The member ids of a group, sorted, read as the IdP reads them.
    pub async fn members(&self, group: &str) -> Vec<String> {
        let r = self.idp.get(&format!("/Groups/{group}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        member_ids(&r.body)
    }

    /// GET /Users/{id}, which must exist.
    pub async fn user(&self, id: &str) -> Value {
        let r = self.idp.get(&format!("/Users/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "user {id}: {}", r.body);
        r.body
    }

    /// GET /{Users|Groups}/{id} answers 404 (deleted).
    pub async fn assert_gone(&self, resource: &str, id: &str) {
        let r = self.idp.get(&format!("/{resource}/{id}")).await;
        r.assert_error(404, None);
    }

    /// `GET {path}?filter=…` (percent-encoded, `extra` appended): the ListResponse's total.
    pub async fn filter_total(&self, path: &str, filter: &str, extra: &str) -> i64 {
        let r =
            self.idp.get(&format!("{path}?filter={}{extra}", crate::support::enc(filter))).await;
        list_total(&r)
    }
}

/// The `totalResults` of a 200 ListResponse.
#[track_caller]
pub fn list_total(r: &Reply) -> i64 {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["schemas"], json!([LIST_RESPONSE]), "{}", r.body);
    r.body["totalResults"].as_i64().unwrap_or_else(|| panic!("totalResults: {}", r.body))
}

/// The `id` of a 201 reply.
#[track_caller]
pub fn created_id(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap_or_else(|| panic!("id: {}", r.body)).to_owned()
}

/// A PATCH request with these operations.
pub fn patch(ops: Value) -> Value {
    crate::support::patch_op(ops)
}

/// A group PATCH without projection answers 204 with no body.
#[track_caller]
pub fn assert_no_content(r: &Reply) {
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(r.body, Value::Null);
}

/// The `members[].value`s of a group document, sorted.
pub fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["value"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// These ids, sorted (to compare with [`member_ids`]).
pub fn sorted(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The journal holds `user`'s deactivation (`active: false`) and, after it, its reactivation
/// (`active: true`), each from a PATCH or a PUT.
#[track_caller]
pub fn assert_deactivated_then_reactivated(journal: &[JournalEntry], user: &str) {
    let change_to = |active: bool, after: i64| {
        journal.iter().find(|j| {
            j.seq > after
                && j.resource_type.name() == "User"
                && j.resource_id == user
                && (j.action == "patch" || j.action == "replace")
                && j.detail.as_ref().and_then(|d| d.get("active")) == Some(&json!(active))
        })
    };
    let rows = || {
        journal
            .iter()
            .map(|j| {
                format!(
                    "{} {} {} {} {:?}",
                    j.seq,
                    j.resource_type.name(),
                    j.resource_id,
                    j.action,
                    j.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let off = change_to(false, i64::MIN)
        .unwrap_or_else(|| panic!("no journal row for {user}'s deactivation:\n{}", rows()));
    change_to(true, off.seq)
        .unwrap_or_else(|| panic!("no journal row for {user}'s reactivation:\n{}", rows()));
}
