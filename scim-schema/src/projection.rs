//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) combined with the `returned`
//! characteristic of each attribute (RFC 7643 §2.2).
//!
//! Decisions where the RFCs leave room:
//! - Both parameters given (they are "mutually exclusive"): `attributes` wins and
//!   `excludedAttributes` is ignored, as most servers do, rather than failing an IdP request.
//! - Unknown or malformed names are ignored; an `attributes` list naming only unknown
//!   attributes therefore returns just the `returned: always` ones (`id`, `schemas`).
//! - A bare extension URN (`urn:…:enterprise:2.0:User`) names the whole extension object.
//! - An extension URN whose object is projected away is also removed from `schemas`.

use crate::error::ScimError;
use crate::filter::parse_attr_path;
use crate::schema::{AttributeDef, ResourceKind, Returned};
use serde_json::{Map, Value};

/// What the response of one request returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    kind: ResourceKind,
    mode: Mode,
}

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    /// Neither parameter: `returned: default` and `always` attributes.
    Default,
    /// `attributes`: the named ones plus `returned: always`.
    Include(Vec<Selector>),
    /// `excludedAttributes`: the default set minus the named ones.
    Exclude(Vec<Selector>),
}

/// One resolved name from the parameter lists.
#[derive(Debug, Clone, PartialEq)]
enum Selector {
    /// A whole extension object.
    Extension(&'static str),
    /// An attribute (`extension` set for extension attributes), or one of its sub-attributes.
    Attr { extension: Option<&'static str>, name: &'static str, sub: Option<&'static str> },
}

/// How much of one attribute a selector list names.
#[derive(Debug, Default)]
struct Named {
    whole: bool,
    subs: Vec<&'static str>,
}

impl Projection {
    /// From the `attributes` / `excludedAttributes` query or SearchRequest values
    /// (comma-separated attribute paths, possibly URN-qualified and with sub-attributes, e.g.
    /// "userName,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department").
    /// Both given: `attributes` wins (see the module docs). Unknown attribute names are ignored
    /// (not an error).
    pub fn parse(
        kind: ResourceKind,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        let mode = match (non_blank(attributes), non_blank(excluded)) {
            (Some(list), _) => Mode::Include(selectors(kind, list)),
            (None, Some(list)) => Mode::Exclude(selectors(kind, list)),
            (None, None) => Mode::Default,
        };
        Ok(Projection { kind, mode })
    }

    /// The default: every attribute whose `returned` is `always` or `default`.
    pub fn all(kind: ResourceKind) -> Projection {
        Projection { kind, mode: Mode::Default }
    }

    /// Whether the top-level attribute (canonical name, e.g. "members", "groups") will appear
    /// — lets the server skip loading 50,000 members. An extension URN asks about the
    /// extension object.
    pub fn includes(&self, attr: &str) -> bool {
        if let Some(ext) = self.kind.extension(attr) {
            return self.includes_extension(ext.id);
        }
        let Some(def) = self.kind.core_schema().attribute(attr) else {
            return !matches!(self.mode, Mode::Include(_));
        };
        match def.returned {
            Returned::Always => true,
            Returned::Never => false,
            returned => match &self.mode {
                Mode::Default => returned == Returned::Default,
                Mode::Include(sel) => named(sel, None, def.name).is_some(),
                Mode::Exclude(sel) => {
                    returned == Returned::Default
                        && !named(sel, None, def.name).is_some_and(|n| n.whole)
                }
            },
        }
    }

    /// True when attributes or excludedAttributes were given.
    pub fn has_explicit(&self) -> bool {
        !matches!(self.mode, Mode::Default)
    }

    /// Applies the rules of RFC 7644 §3.4.2.5 / §3.9 and RFC 7643 §2.2 "returned" to a rendered
    /// resource in place: `returned: always` (id, schemas) always kept; `never` (password)
    /// always removed; `request` only when named; `default` unless excluded / not named.
    /// Sub-attribute selection works (name.givenName keeps only that sub-attr; emails.value
    /// keeps only value inside each element). Extension attributes under their URN key.
    /// `meta` is returned by default and removable with excludedAttributes=meta. `schemas`
    /// always kept.
    pub fn apply(&self, resource: &mut Value) {
        let Some(obj) = resource.as_object_mut() else { return };
        obj.retain(|key, value| self.keep_top_level(key, value));
        self.prune_schemas(obj);
    }

    fn keep_top_level(&self, key: &str, value: &mut Value) -> bool {
        if key.eq_ignore_ascii_case("schemas") {
            return true;
        }
        if let Some(ext) = self.kind.extension(key) {
            return self.keep_extension(ext.id, value);
        }
        match self.kind.core_schema().attribute(key) {
            Some(def) => self.keep_attr(None, def, value),
            // Nothing the renderer emits; keep it unless the client listed what it wants.
            None => !matches!(self.mode, Mode::Include(_)),
        }
    }

    fn keep_extension(&self, urn: &'static str, value: &mut Value) -> bool {
        let whole = |sel: &[Selector]| sel.contains(&Selector::Extension(urn));
        let inner = match &self.mode {
            Mode::Include(sel) if whole(sel) => Projection::all(self.kind),
            Mode::Exclude(sel) if whole(sel) => return false,
            _ => self.clone(),
        };
        let Some(schema) = self.kind.extension(urn) else { return false };
        let Some(obj) = value.as_object_mut() else { return true };
        obj.retain(|key, v| match schema.attribute(key) {
            Some(def) => inner.keep_attr(Some(urn), def, v),
            None => !matches!(inner.mode, Mode::Include(_)),
        });
        !obj.is_empty()
    }

    /// Whether an attribute stays, trimming its sub-attributes in place.
    fn keep_attr(&self, ext: Option<&'static str>, def: &AttributeDef, value: &mut Value) -> bool {
        match def.returned {
            Returned::Always => return true,
            Returned::Never => return false,
            Returned::Default | Returned::Request => {}
        }
        let named = match &self.mode {
            Mode::Default => None,
            Mode::Include(sel) | Mode::Exclude(sel) => named(sel, ext, def.name),
        };
        match (&self.mode, named) {
            (Mode::Include(_), None) => false,
            // `attributes=members,members.display`: the default sub-attributes plus the
            // `returned: request` ones named as well.
            (Mode::Include(_), Some(n)) if n.whole => {
                retain_subs(value, |k| default_sub(def, k) || requested_sub(def, k, &n.subs))
            }
            (Mode::Include(_), Some(n)) => {
                retain_subs(value, |k| requested_sub(def, k, &n.subs) || always_sub(def, k))
            }
            _ if def.returned == Returned::Request => false,
            (_, Some(n)) if n.whole => false,
            (_, Some(n)) => {
                retain_subs(value, |k| default_sub(def, k) && !in_subs(def, k, &n.subs))
            }
            (_, None) => retain_subs(value, |k| default_sub(def, k)),
        }
    }

    fn includes_extension(&self, urn: &'static str) -> bool {
        match &self.mode {
            Mode::Default => true,
            Mode::Include(sel) => sel.iter().any(|s| match s {
                Selector::Extension(u) => *u == urn,
                Selector::Attr { extension, .. } => *extension == Some(urn),
            }),
            Mode::Exclude(sel) => !sel.contains(&Selector::Extension(urn)),
        }
    }

    /// `schemas` lists only the extensions still present (RFC 7643 §3).
    fn prune_schemas(&self, obj: &mut Map<String, Value>) {
        let present: Vec<bool> = match obj.get("schemas") {
            Some(Value::Array(urns)) => urns
                .iter()
                .map(|u| {
                    let ext = u.as_str().and_then(|u| self.kind.extension(u));
                    ext.is_none_or(|e| obj.keys().any(|k| k.eq_ignore_ascii_case(e.id)))
                })
                .collect(),
            _ => return,
        };
        if let Some(Value::Array(urns)) = obj.get_mut("schemas") {
            let mut keep = present.into_iter();
            urns.retain(|_| keep.next().unwrap_or(true));
        }
    }
}

fn non_blank(list: Option<&str>) -> Option<&str> {
    list.filter(|l| !l.trim().is_empty())
}

/// Parses a comma-separated list into selectors, dropping unknown and malformed names.
fn selectors(kind: ResourceKind, list: &str) -> Vec<Selector> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .filter_map(|t| selector(kind, t))
        .collect()
}

fn selector(kind: ResourceKind, token: &str) -> Option<Selector> {
    if let Some(ext) = kind.extension(token) {
        return Some(Selector::Extension(ext.id));
    }
    let path = parse_attr_path(token).ok()?;
    let resolved = kind.resolve(&path)?;
    Some(Selector::Attr {
        extension: resolved.extension,
        name: resolved.attr.name,
        sub: resolved.sub.map(|s| s.name),
    })
}

/// How much of the attribute `name` (in `ext`) the selectors name; None when not at all.
fn named(sel: &[Selector], ext: Option<&'static str>, name: &str) -> Option<Named> {
    let mut found: Option<Named> = None;
    for s in sel {
        if let Selector::Attr { extension, name: n, sub } = s
            && *extension == ext
            && *n == name
        {
            let entry = found.get_or_insert_with(Named::default);
            match sub {
                Some(sub) => entry.subs.push(sub),
                None => entry.whole = true,
            }
        }
    }
    found
}

/// Sub-attributes returned by default (never: no `never`/`request` ones).
fn default_sub(def: &AttributeDef, key: &str) -> bool {
    def.sub_attribute(key)
        .is_none_or(|s| matches!(s.returned, Returned::Default | Returned::Always))
}

fn always_sub(def: &AttributeDef, key: &str) -> bool {
    def.sub_attribute(key).is_some_and(|s| s.returned == Returned::Always)
}

fn requested_sub(def: &AttributeDef, key: &str, subs: &[&str]) -> bool {
    in_subs(def, key, subs) && def.sub_attribute(key).is_some_and(|s| s.returned != Returned::Never)
}

fn in_subs(def: &AttributeDef, key: &str, subs: &[&str]) -> bool {
    def.sub_attribute(key).is_some_and(|s| subs.contains(&s.name))
}

/// Keeps the sub-attributes `keep` accepts in a complex value, or in each element of a
/// multi-valued one (dropping elements left empty). Returns whether anything is left; simple
/// values are left alone.
fn retain_subs(value: &mut Value, keep: impl Fn(&str) -> bool) -> bool {
    let trim = |obj: &mut Map<String, Value>| {
        obj.retain(|k, _| keep(k));
        !obj.is_empty()
    };
    match value {
        Value::Object(obj) => trim(obj),
        Value::Array(items) => {
            items.retain_mut(|item| match item {
                Value::Object(obj) => trim(obj),
                _ => true,
            });
            !items.is_empty()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{Meta, render};
    use crate::schema::{ENTERPRISE_USER_URN, GROUP_URN, USER_URN, user_schema};
    use serde_json::json;

    const ENTERPRISE: &str = ENTERPRISE_USER_URN;
    const USER: ResourceKind = ResourceKind::User;
    const GROUP: ResourceKind = ResourceKind::Group;

    fn meta(resource_type: &'static str) -> Meta {
        Meta {
            resource_type,
            created: "2010-01-23T04:56:22Z".into(),
            last_modified: "2011-05-13T04:42:34Z".into(),
            location: "https://example.com/v2/x/1".into(),
            version: "W/\"1\"".into(),
        }
    }

    fn rendered_user() -> Value {
        let doc = json!({
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {"familyName": "Jensen", "givenName": "Barbara", "middleName": "Jane"},
            "displayName": "Babs Jensen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"type": "home"}
            ],
            "active": true,
            ENTERPRISE: {"department": "Tour Operations", "manager": {"value": "m1", "$ref": "../Users/m1"}}
        });
        let mut user = render(USER, "u1", &doc, &meta("User"));
        user["groups"] = json!([{"value": "g1", "display": "Tour Guides"}]);
        user
    }

    fn rendered_group() -> Value {
        let doc = json!({"externalId": "e1", "displayName": "Tour Guides"});
        let mut group = render(GROUP, "g1", &doc, &meta("Group"));
        group["members"] = json!([{"value": "u1", "display": "Babs", "type": "User"}]);
        group
    }

    fn project(
        kind: ResourceKind,
        attrs: Option<&str>,
        excluded: Option<&str>,
        mut v: Value,
    ) -> Value {
        Projection::parse(kind, attrs, excluded).unwrap().apply(&mut v);
        v
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn default_returns_everything_but_returned_never() {
        let mut user = rendered_user();
        user["password"] = json!("leaked");
        let expected = rendered_user();
        Projection::all(USER).apply(&mut user);
        assert_eq!(user, expected);
        assert!(!Projection::all(USER).has_explicit());
        assert_eq!(project(USER, None, None, rendered_user()), expected);
    }

    #[test]
    fn attributes_user_name_keeps_id_schemas_and_user_name() {
        for list in ["userName", "USERNAME", " userName ", "userName,"] {
            let out = project(USER, Some(list), None, rendered_user());
            assert_eq!(
                out,
                json!({"schemas": [USER_URN], "id": "u1", "userName": "bjensen@example.com"}),
                "{list}"
            );
        }
    }

    #[test]
    fn excluded_members() {
        let p = Projection::parse(GROUP, None, Some("members")).unwrap();
        assert!(p.has_explicit());
        assert!(!p.includes("members"));
        assert!(p.includes("displayName") && p.includes("meta") && p.includes("id"));
        let mut group = rendered_group();
        p.apply(&mut group);
        assert_eq!(keys(&group), ["schemas", "id", "externalId", "displayName", "meta"]);
        assert_eq!(group["schemas"], json!([GROUP_URN]));
    }

    #[test]
    fn sub_attribute_selection() {
        let out = project(USER, Some("name.givenName"), None, rendered_user());
        assert_eq!(
            out,
            json!({"schemas": [USER_URN], "id": "u1", "name": {"givenName": "Barbara"}})
        );

        let out = project(USER, Some("name.givenName,name.FAMILYNAME"), None, rendered_user());
        assert_eq!(out["name"], json!({"familyName": "Jensen", "givenName": "Barbara"}));

        // emails.value keeps value in each element; an element without one disappears.
        let out = project(USER, Some("emails.value"), None, rendered_user());
        assert_eq!(out["emails"], json!([{"value": "bjensen@example.com"}]));

        // The whole attribute named as well wins over the sub-attribute.
        let out = project(USER, Some("name.givenName,name"), None, rendered_user());
        assert_eq!(out["name"], rendered_user()["name"]);
    }

    #[test]
    fn excluded_sub_attributes() {
        let out = project(USER, None, Some("emails.type,name.middleName"), rendered_user());
        assert_eq!(out["emails"], json!([{"value": "bjensen@example.com", "primary": true}]));
        assert_eq!(out["name"], json!({"familyName": "Jensen", "givenName": "Barbara"}));
        assert_eq!(out["userName"], "bjensen@example.com");

        let p = Projection::parse(GROUP, None, Some("members.display")).unwrap();
        assert!(p.includes("members"), "members still appear, without display");
        let out = project(GROUP, None, Some("members.display"), rendered_group());
        assert_eq!(out["members"], json!([{"value": "u1", "type": "User"}]));
    }

    #[test]
    fn urn_qualified_extension_attributes() {
        let list = format!("userName,{ENTERPRISE}:department");
        let out = project(USER, Some(&list), None, rendered_user());
        assert_eq!(
            out,
            json!({
                "schemas": [USER_URN, ENTERPRISE],
                "id": "u1",
                "userName": "bjensen@example.com",
                ENTERPRISE: {"department": "Tour Operations"}
            })
        );
        let list = format!("{ENTERPRISE}:manager.value");
        let out = project(USER, Some(&list), None, rendered_user());
        assert_eq!(out[ENTERPRISE], json!({"manager": {"value": "m1"}}));
        // Unqualified extension names, as clients send them.
        let out = project(USER, Some("department"), None, rendered_user());
        assert_eq!(out[ENTERPRISE], json!({"department": "Tour Operations"}));
        // The core URN may qualify core names.
        let list = format!("{USER_URN}:displayName");
        assert_eq!(
            keys(&project(USER, Some(&list), None, rendered_user())),
            ["schemas", "id", "displayName"]
        );
    }

    #[test]
    fn whole_extension_by_urn() {
        let out = project(USER, Some(ENTERPRISE), None, rendered_user());
        assert_eq!(out[ENTERPRISE], rendered_user()[ENTERPRISE]);
        assert_eq!(keys(&out), ["schemas", "id", ENTERPRISE]);

        let out = project(USER, None, Some(&ENTERPRISE.to_lowercase()), rendered_user());
        assert!(out.get(ENTERPRISE).is_none());
        assert_eq!(out["schemas"], json!([USER_URN]), "the URN leaves schemas with its object");
        assert_eq!(out["userName"], "bjensen@example.com");
    }

    #[test]
    fn excluding_every_extension_attribute_removes_the_extension() {
        let list = format!("{ENTERPRISE}:manager");
        let out = project(USER, None, Some(&list), rendered_user());
        assert_eq!(out[ENTERPRISE], json!({"department": "Tour Operations"}));
        assert_eq!(out["schemas"], json!([USER_URN, ENTERPRISE]));

        let list = format!("{ENTERPRISE}:manager,{ENTERPRISE}:department");
        let out = project(USER, None, Some(&list), rendered_user());
        assert!(out.get(ENTERPRISE).is_none());
        assert_eq!(out["schemas"], json!([USER_URN]));
    }

    #[test]
    fn returned_always_cannot_be_excluded() {
        let out = project(USER, None, Some("id,schemas"), rendered_user());
        assert_eq!(out, rendered_user());
    }

    #[test]
    fn meta_is_default_and_excludable() {
        let out = project(USER, None, Some("meta"), rendered_user());
        assert!(out.get("meta").is_none());
        assert_eq!(out["id"], "u1");
        let out = project(USER, Some("meta.lastModified"), None, rendered_user());
        assert_eq!(
            out,
            json!({"schemas": [USER_URN], "id": "u1", "meta": {"lastModified": "2011-05-13T04:42:34Z"}})
        );
    }

    #[test]
    fn returned_never_is_never_returned() {
        let mut user = rendered_user();
        user["password"] = json!("x");
        let out = project(USER, Some("password,userName"), None, user.clone());
        assert!(out.get("password").is_none());
        assert!(!Projection::parse(USER, Some("password"), None).unwrap().includes("password"));
        let out = project(USER, None, Some("displayName"), user);
        assert!(out.get("password").is_none());
        assert!(out.get("displayName").is_none());
    }

    /// Group `members.display` is the one `returned: request` sub-attribute scimbridge has.
    #[test]
    fn members_display_only_when_named() {
        let group = || {
            json!({
                "schemas": [GROUP_URN], "id": "g1", "displayName": "Team",
                "members": [{"value": "u1", "$ref": "https://x/Users/u1", "type": "User", "display": "Babs"}]
            })
        };
        let bare = json!([{"value": "u1", "$ref": "https://x/Users/u1", "type": "User"}]);
        assert_eq!(project(GROUP, None, None, group())["members"], bare);
        assert_eq!(project(GROUP, Some("members"), None, group())["members"], bare);
        assert_eq!(project(GROUP, None, Some("displayName"), group())["members"], bare);
        assert_eq!(
            project(GROUP, Some("members.display"), None, group())["members"],
            json!([{"display": "Babs"}])
        );
        let mut full = group();
        full.as_object_mut().unwrap().remove("displayName");
        assert_eq!(project(GROUP, Some("members,members.display"), None, group()), full);
    }

    /// The rule on a synthetic top-level attribute and sub-attribute.
    #[test]
    fn returned_request_only_when_named() {
        let mut def = user_schema().attribute("nickName").unwrap().clone();
        def.returned = Returned::Request;
        let check = |attrs: Option<&str>, excluded: Option<&str>| {
            let p = Projection::parse(USER, attrs, excluded).unwrap();
            p.keep_attr(None, &def, &mut json!("Babs"))
        };
        assert!(!check(None, None));
        assert!(check(Some("nickName"), None));
        assert!(!check(Some("userName"), None));
        assert!(!check(None, Some("userName")));

        let mut sub_def = user_schema().attribute("name").unwrap().clone();
        sub_def.sub_attributes[2].returned = Returned::Request; // givenName
        let mut name = json!({"familyName": "Jensen", "givenName": "Barbara"});
        assert!(Projection::all(USER).keep_attr(None, &sub_def, &mut name));
        assert_eq!(name, json!({"familyName": "Jensen"}));
        let mut name = json!({"familyName": "Jensen", "givenName": "Barbara"});
        let p = Projection::parse(USER, Some("name.givenName"), None).unwrap();
        assert!(p.keep_attr(None, &sub_def, &mut name));
        assert_eq!(name, json!({"givenName": "Barbara"}));
    }

    #[test]
    fn unknown_and_malformed_names_are_ignored() {
        let out = project(
            USER,
            Some("bogus,name.bogus,userName.x,emails[type eq \"work\"],,"),
            None,
            rendered_user(),
        );
        assert_eq!(out, json!({"schemas": [USER_URN], "id": "u1"}));
        let out = project(USER, None, Some("bogus,urn:example:x:1.0:User:foo"), rendered_user());
        assert_eq!(out, rendered_user());
        assert!(Projection::parse(USER, Some("%%%"), Some("$$$")).is_ok());
    }

    #[test]
    fn attributes_win_over_excluded_attributes() {
        let out = project(USER, Some("userName"), Some("userName"), rendered_user());
        assert_eq!(out["userName"], "bjensen@example.com");
        assert_eq!(keys(&out), ["schemas", "id", "userName"]);
    }

    #[test]
    fn blank_lists_mean_not_given() {
        let p = Projection::parse(USER, Some(""), Some("  ")).unwrap();
        assert!(!p.has_explicit());
        assert_eq!(p, Projection::all(USER));
        // A blank attributes does not hide a real excludedAttributes.
        let p = Projection::parse(GROUP, Some(""), Some("members")).unwrap();
        assert!(!p.includes("members"));
    }

    #[test]
    fn includes_tells_the_server_what_to_load() {
        let all = Projection::all(GROUP);
        assert!(all.includes("members") && all.includes("MEMBERS") && all.includes("meta"));
        let p = Projection::parse(GROUP, Some("displayName"), None).unwrap();
        assert!(!p.includes("members"));
        assert!(p.includes("id"));
        assert!(!p.includes("meta"));
        let p = Projection::parse(GROUP, Some("members.value"), None).unwrap();
        assert!(p.includes("members"));

        let all = Projection::all(USER);
        assert!(all.includes("groups") && !all.includes("password") && all.includes(ENTERPRISE));
        let p = Projection::parse(USER, None, Some("groups")).unwrap();
        assert!(!p.includes("groups") && p.includes("userName"));
        let p = Projection::parse(USER, Some("department"), None).unwrap();
        assert!(p.includes(ENTERPRISE) && !p.includes("groups"));
        let p = Projection::parse(USER, Some("userName"), None).unwrap();
        assert!(!p.includes(ENTERPRISE));
        let p = Projection::parse(USER, None, Some(ENTERPRISE)).unwrap();
        assert!(!p.includes(ENTERPRISE));
    }

    #[test]
    fn every_schema_attribute_is_known_to_the_projection() {
        // readOnly ones too: the renderer adds groups and meta, which must not be treated as
        // unknown keys.
        for def in &user_schema().attributes {
            let p = Projection::parse(USER, Some(def.name), None).unwrap();
            let expected = def.returned != Returned::Never;
            assert_eq!(p.includes(def.name), expected, "{}", def.name);
        }
    }
}
