//! Backend-independent pieces of a write: the indexed columns derived from a document, member
//! resolution rules, journal details and the mapping of constraint violations to SCIM errors.

use scim_schema::ScimError;
use scim_schema::resource::{MemberRef, MemberType};
use scim_schema::schema::ResourceKind;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

/// The columns of `users` / `groups` that are copies of document attributes, kept for indexes
/// and uniqueness.
#[derive(Debug, Clone, PartialEq)]
pub struct Indexed {
    /// userName (User) or displayName (Group) as sent.
    pub name: String,
    /// `name` folded ([`crate::names::fold`]: NFC, trimmed, lower-cased by Unicode's rules):
    /// the unique key on both backends, so `" A-Admins"` and `"a-admins\u{a0}"` collide.
    pub name_lower: String,
    pub external_id: Option<String>,
    /// A user's displayName (shown as a member's `display`).
    pub display_name: Option<String>,
    pub active: bool,
}

impl Indexed {
    pub fn of(kind: ResourceKind, doc: &Value) -> Result<Indexed, ScimError> {
        let name_attr = match kind {
            ResourceKind::User => "userName",
            ResourceKind::Group => "displayName",
        };
        let name = doc
            .get(name_attr)
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_value(format!("{name_attr} is required")))?
            .to_owned();
        let external_id = doc.get("externalId").and_then(Value::as_str);
        check_indexed_length(name_attr, &name)?;
        if let Some(e) = external_id {
            check_indexed_length("externalId", e)?;
        }
        Ok(Indexed {
            name_lower: crate::names::fold(&name),
            name,
            external_id: external_id.map(str::to_owned),
            display_name: match kind {
                ResourceKind::User => {
                    doc.get("displayName").and_then(Value::as_str).map(str::to_owned)
                }
                ResourceKind::Group => None,
            },
            active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
        })
    }
}

/// Indexed values stay well below PostgreSQL's B-tree entry limit (2,704 bytes), so that no
/// value can make an insert fail; AWS itself allows 128 characters in a userName.
pub const MAX_INDEXED_CHARS: usize = 512;

fn check_indexed_length(attr: &str, value: &str) -> Result<(), ScimError> {
    if value.chars().count() > MAX_INDEXED_CHARS {
        return Err(ScimError::invalid_value(format!(
            "{attr} is longer than {MAX_INDEXED_CHARS} characters"
        )));
    }
    Ok(())
}

/// The error for a violated unique constraint, naming the value.
pub fn uniqueness_error(kind: ResourceKind, indexed: &Indexed) -> ScimError {
    match kind {
        ResourceKind::User => ScimError::uniqueness(format!(
            "userName \"{}\" is already in use (userName is unique case-insensitively)",
            indexed.name
        )),
        ResourceKind::Group => ScimError::uniqueness(format!(
            "a group with displayName \"{}\" already exists (displayName is unique case-insensitively)",
            indexed.name
        )),
    }
}

/// Whether an error is the unique violation of the resource's name.
pub fn is_name_conflict(e: &crate::store::StoreError) -> bool {
    let crate::store::StoreError::Database(e) = e else { return false };
    let Some(db) = e.as_database_error() else { return false };
    if !db.is_unique_violation() {
        return false;
    }
    match db.constraint() {
        Some(c) => c == "users_user_name_key" || c == "groups_display_name_key",
        // SQLite reports the columns instead of the constraint name.
        None => {
            let m = db.message();
            m.contains("user_name_lower") || m.contains("display_name_lower")
        }
    }
}

/// Parses member ids; a value that is not a UUID can name no resource of ours.
pub fn parse_member_ids(refs: &[MemberRef]) -> Result<Vec<Uuid>, ScimError> {
    let mut bad = Vec::new();
    let mut ids = Vec::with_capacity(refs.len());
    for r in refs {
        match Uuid::parse_str(&r.value) {
            Ok(id) => ids.push(id),
            Err(_) => bad.push(r.value.clone()),
        }
    }
    if bad.is_empty() { Ok(ids) } else { Err(unknown_members(&bad)) }
}

pub fn unknown_members(values: &[String]) -> ScimError {
    const SHOWN: usize = 10;
    let mut list: Vec<String> = values.iter().take(SHOWN).map(|v| format!("\"{v}\"")).collect();
    if values.len() > SHOWN {
        list.push(format!("and {} more", values.len() - SHOWN));
    }
    let noun = if values.len() == 1 { "member" } else { "members" };
    ScimError::invalid_value(format!(
        "unknown {noun} {}: no user or group with that id exists for this source",
        list.join(", ")
    ))
}

/// Checks the looked-up kinds of the requested members: every id exists, any `type` given
/// agrees, and a group is not its own member. Returns (id, type) pairs without duplicates.
pub fn check_members(
    group_id: Uuid,
    refs: &[MemberRef],
    ids: &[Uuid],
    found: &HashMap<Uuid, MemberType>,
) -> Result<Vec<(Uuid, MemberType)>, ScimError> {
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for (r, id) in refs.iter().zip(ids) {
        let Some(actual) = found.get(id) else {
            missing.push(r.value.clone());
            continue;
        };
        if let Some(claimed) = r.member_type
            && claimed != *actual
        {
            return Err(ScimError::invalid_value(format!(
                "member \"{}\" is a {:?}, not a {:?}",
                r.value, actual, claimed
            )));
        }
        if *id == group_id {
            return Err(ScimError::invalid_value("a group cannot be a member of itself"));
        }
        if seen.insert(*id) {
            out.push((*id, *actual));
        }
    }
    if missing.is_empty() { Ok(out) } else { Err(unknown_members(&missing)) }
}

pub fn cycle_error(member: &Uuid) -> ScimError {
    ScimError::invalid_value(format!(
        "group \"{member}\" contains this group (directly or through nested groups): adding it would make a cycle"
    ))
}

pub fn member_type_str(t: MemberType) -> &'static str {
    match t {
        MemberType::User => "User",
        MemberType::Group => "Group",
    }
}

pub fn member_type_of(s: &str) -> MemberType {
    if s == "Group" { MemberType::Group } else { MemberType::User }
}

/// Accumulates what a write changed in a group's membership, for the journal. Sets, so that a
/// full replace of a huge group stays linear.
#[derive(Debug, Default)]
pub struct MemberDelta {
    pub added: BTreeSet<String>,
    pub removed: BTreeSet<String>,
}

impl MemberDelta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    pub fn record_added(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            // A member removed and re-added by one request is unchanged.
            if !self.removed.remove(&id) {
                self.added.insert(id);
            }
        }
    }

    pub fn record_removed(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if !self.added.remove(&id) {
                self.removed.insert(id);
            }
        }
    }
}

/// The journal `detail` of a write: what the sync engine may want without re-reading.
pub fn journal_detail(
    kind: ResourceKind,
    before: Option<&Value>,
    after: Option<&Value>,
    delta: &MemberDelta,
) -> Option<Value> {
    let mut d = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before, after) {
        if kind == ResourceKind::User && b.get("active") != a.get("active") {
            d.insert(
                "active".into(),
                json!(a.get("active").and_then(Value::as_bool).unwrap_or(true)),
            );
        }
        let name = if kind == ResourceKind::User { "userName" } else { "displayName" };
        if b.get(name) != a.get(name) {
            d.insert("renamed_from".into(), b.get(name).cloned().unwrap_or(Value::Null));
        }
    }
    if !delta.added.is_empty() {
        d.insert("members_added".into(), json!(delta.added));
    }
    if !delta.removed.is_empty() {
        d.insert("members_removed".into(), json!(delta.removed));
    }
    if d.is_empty() { None } else { Some(Value::Object(d)) }
}

/// Ids as the journal and the API show them.
pub fn ids(v: Vec<Uuid>) -> Vec<String> {
    v.iter().map(Uuid::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_columns_lower_unicode() {
        let doc = json!({"userName": "ÅSA@Example.com", "externalId": "e1", "active": false});
        let ix = Indexed::of(ResourceKind::User, &doc).unwrap();
        assert_eq!(ix.name_lower, "åsa@example.com");
        assert_eq!(ix.external_id.as_deref(), Some("e1"));
        assert!(!ix.active);
    }

    #[test]
    fn member_delta_cancels_remove_then_add() {
        let mut d = MemberDelta::default();
        d.record_removed(["a".to_string()]);
        d.record_added(["a".to_string(), "b".to_string()]);
        assert_eq!(d.added.iter().collect::<Vec<_>>(), ["b"]);
        assert!(d.removed.is_empty());
    }

    #[test]
    fn unknown_member_message_names_ids() {
        let e = unknown_members(&["x1".into()]);
        assert_eq!(e.status, 400);
        assert!(e.detail.contains("\"x1\""));
    }
}
