//! Stored resources → SCIM JSON (RFC 7643 §3: `schemas`, `id`, `meta`, plus `members` / `groups`).

use crate::store::{StoredResource, format_timestamp};
use scim_schema::resource::{self, MemberType, Meta};
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};

/// The full resource; `base` is the SCIM base URL (`https://host/scim/v2`).
pub fn render(res: &StoredResource, base: &str) -> Value {
    let meta = Meta {
        resource_type: res.kind.name(),
        created: format_timestamp(&res.created),
        last_modified: format_timestamp(&res.modified),
        location: location(base, res.kind, &res.id),
        version: res.etag(),
    };
    let mut out = resource::render(res.kind, &res.id, &res.doc, &meta);
    if let Some(members) = res.members.as_ref().filter(|m| !m.is_empty()) {
        let list: Vec<Value> = members
            .iter()
            .map(|m| {
                let kind = match m.member_type {
                    MemberType::User => ResourceKind::User,
                    MemberType::Group => ResourceKind::Group,
                };
                let mut v = json!({
                    "value": m.value,
                    "$ref": location(base, kind, &m.value),
                    "type": kind.name(),
                });
                if let Some(d) = &m.display {
                    v["display"] = json!(d);
                }
                v
            })
            .collect();
        out["members"] = Value::Array(list);
    }
    if let Some(groups) = res.groups.as_ref().filter(|g| !g.is_empty()) {
        let list: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.value,
                    "$ref": location(base, ResourceKind::Group, &g.value),
                    "display": g.display,
                    "type": "direct",
                })
            })
            .collect();
        out["groups"] = Value::Array(list);
    }
    out
}

pub fn location(base: &str, kind: ResourceKind, id: &str) -> String {
    format!("{base}{}/{id}", kind.endpoint())
}
