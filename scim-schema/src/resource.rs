//! Validating and normalising incoming resources (POST, PUT, Bulk, the result of a PATCH) and
//! rendering outgoing ones.
//!
//! Normalising checks every value against the schema ([`crate::schema`]), rewrites attribute
//! names to their canonical spelling, and drops what is never stored: unassigned values (null,
//! `[]`, `{}`; RFC 7643 §2.5), readOnly input (RFC 7644 §3.3), `password`, and — with
//! `ignore_unknown` — unknown attributes and schemas. What remains is stored as sent.
//!
//! Decisions where the RFCs leave room:
//! - A body that is not a JSON object is 400 `invalidSyntax`; a missing or wrong `schemas` is
//!   400 `invalidValue` (a required value is missing, RFC 7644 §3.12), as is a wrongly typed
//!   value. Unknown attributes and schemas are 400 `invalidSyntax` unless tolerated.
//! - A top-level key `<schema URN>:<attribute>` (RFC 7644 §3.10 notation) is accepted and filed
//!   under its schema. An unqualified extension attribute at the top level (`employeeNumber`)
//!   is unknown: extension attributes live under their URN key (RFC 7643 §3.3).
//! - More than one `primary: true` in a multi-valued attribute is kept as sent, except in the
//!   `strict` mode (all tolerances off), where it is 400 `invalidValue` (RFC 7643 §2.4).
//! - Group members are deduplicated by `value` (first one wins).

use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::schema::{
    AttrType, AttributeDef, ENTERPRISE_USER_URN, Mutability, ResourceKind, SchemaDef,
};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

mod values;

use values::{simple_value, type_error, type_phrase};

/// The `type` of a group member (RFC 7643 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemberType {
    User,
    Group,
}

/// One group member as sent; `display` and `$ref` are derived on output, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub value: String,
    pub member_type: Option<MemberType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The stored document: a JSON object with canonical attribute names (e.g. "userName" even
    /// if sent as "USERNAME"), core attributes at top level, extension attributes under their
    /// URN key. Never contains id, meta, schemas, groups (User), members (Group), password, or
    /// nulls / empty arrays / empty objects (all meaning "unassigned", RFC 7643 §2.5).
    pub doc: Value,
    /// Group members when the body has a `members` key (Some(vec![]) for "members": [] or
    /// null), None when absent.
    pub members: Option<Vec<MemberRef>>,
    /// Attributes and schema URNs that were dropped as unknown (for logging), as paths.
    pub ignored: Vec<String>,
}

/// A full resource from POST/PUT/Bulk: requires `schemas` (an array containing the core URN,
/// case-insensitively; otherwise 400 `invalidValue`), then [`normalize_doc`].
pub fn normalize_resource(
    kind: ResourceKind,
    body: &Value,
    tol: &Tolerances,
) -> Result<Normalized, ScimError> {
    reject_nul(body)?;
    let obj = as_object(body)?;
    require_core_schema(kind, get_ci(obj, "schemas"), tol)?;
    normalize_doc(kind, body, tol)
}

/// A NUL (U+0000) in any string or member name of a request value is `invalidValue`: no
/// database text type holds it (PostgreSQL's jsonb refuses `\u0000`; SQLite would store it),
/// and an attribute that is ignored today must not be stored tomorrow. The detail names where.
pub fn reject_nul(value: &Value) -> Result<(), ScimError> {
    match nul_at(value) {
        None => Ok(()),
        Some(at) => {
            let at = if at.is_empty() { String::new() } else { format!(" (at {at})") };
            Err(ScimError::invalid_value(format!(
                "values must not contain the NUL character (\\u0000){at}"
            )))
        }
    }
}

/// Where the first NUL is: a path such as `emails[0].value` ("" for the value itself).
/// Recursion is bounded by serde_json's nesting limit (128).
fn nul_at(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then(String::new),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v).map(|at| format!("[{i}]{}", dotted(&at)))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let key = k.replace('\0', "\\u0000");
            if k.contains('\0') {
                return Some(key);
            }
            nul_at(v).map(|at| format!("{key}{}", dotted(&at)))
        }),
        _ => None,
    }
}

fn dotted(rest: &str) -> String {
    if rest.is_empty() || rest.starts_with('[') { rest.to_owned() } else { format!(".{rest}") }
}

/// The same checks without the `schemas` requirement — the PATCH engine calls this on the
/// patched document.
pub fn normalize_doc(
    kind: ResourceKind,
    body: &Value,
    tol: &Tolerances,
) -> Result<Normalized, ScimError> {
    let obj = as_object(body)?;
    let mut n = Normalizer { kind, tol, ignored: Vec::new() };
    let mut doc = Map::new();
    let mut members = None;
    let mut extensions = ExtensionInput::default();
    for (key, value) in obj {
        match classify_key(kind, key) {
            Key::Schemas => n.check_schema_urns(value)?,
            Key::Members => members = Some(n.members(value)?),
            Key::Core(name) => n.put_attr(kind.core_schema(), None, name, value, &mut doc)?,
            Key::Extension(ext) => extensions.add_object(ext, value)?,
            Key::ExtensionAttr(ext, name) => extensions.add_attr(ext, name, value),
            Key::UnknownSchema => n.unknown(key, "schema")?,
        }
    }
    for (ext, raw) in extensions.0 {
        let mut attrs = Map::new();
        for (name, value) in &raw {
            n.put_attr(ext, Some(ext.id), name, value, &mut attrs)?;
        }
        if !attrs.is_empty() {
            doc.insert(ext.id.to_owned(), Value::Object(attrs));
        }
    }
    check_required(kind.core_schema(), &doc)?;
    if is_strict(tol) {
        check_single_primary(kind.core_schema(), &doc)?;
    }
    Ok(Normalized { doc: Value::Object(doc), members, ignored: n.ignored })
}

/// `meta` of a rendered resource (RFC 7643 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub resource_type: &'static str,
    pub created: String,
    pub last_modified: String,
    pub location: String,
    /// The ETag (`W/"3"`); left out of the JSON when empty.
    pub version: String,
}

impl Meta {
    pub fn to_json(&self) -> Value {
        let mut meta = json!({
            "resourceType": self.resource_type,
            "created": self.created,
            "lastModified": self.last_modified,
            "location": self.location,
        });
        if !self.version.is_empty() {
            meta["version"] = Value::String(self.version.clone());
        }
        meta
    }
}

/// doc + `schemas` (core URN, plus each extension URN whose key is present in doc) + `id` +
/// `meta` → the wire resource. The caller adds `groups` / `members`.
pub fn render(kind: ResourceKind, id: &str, doc: &Value, meta: &Meta) -> Value {
    let empty = Map::new();
    let doc = doc.as_object().unwrap_or(&empty);
    let mut schemas = vec![Value::from(kind.core_schema().id)];
    schemas.extend(
        kind.extensions()
            .iter()
            .filter(|ext| get_ci(doc, ext.id).is_some())
            .map(|ext| Value::from(ext.id)),
    );
    let mut out = Map::new();
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::from(id));
    for (key, value) in doc {
        // The server owns these; a stored copy must never shadow them.
        if !["schemas", "id", "meta"].iter().any(|r| key.eq_ignore_ascii_case(r)) {
            out.insert(key.clone(), value.clone());
        }
    }
    out.insert("meta".into(), meta.to_json());
    Value::Object(out)
}

// --- keys ---------------------------------------------------------------------------------------

/// What a top-level key of a resource body addresses.
enum Key<'a> {
    Schemas,
    /// Group `members`, which are stored apart from the document.
    Members,
    Core(&'a str),
    /// An extension object keyed by its URN.
    Extension(&'static SchemaDef),
    /// `<extension URN>:<attribute>`.
    ExtensionAttr(&'static SchemaDef, &'a str),
    /// Any other key with a `:` — a URN no schema here has (Entra's `…enterprise:2.0User`).
    UnknownSchema,
}

fn classify_key(kind: ResourceKind, key: &str) -> Key<'_> {
    if key.eq_ignore_ascii_case("schemas") {
        return Key::Schemas;
    }
    if let Some(ext) = kind.extension(key) {
        return Key::Extension(ext);
    }
    let name = strip_urn_prefix(key, kind.core_schema().id).unwrap_or(key);
    if kind == ResourceKind::Group && name.eq_ignore_ascii_case("members") {
        return Key::Members;
    }
    if let Some((ext, attr)) =
        kind.extensions().iter().find_map(|ext| Some((*ext, strip_urn_prefix(key, ext.id)?)))
    {
        return Key::ExtensionAttr(ext, attr);
    }
    if name.contains(':') { Key::UnknownSchema } else { Key::Core(name) }
}

/// `key` without a leading `urn` + `:` (case-insensitive), if it has one.
fn strip_urn_prefix<'a>(key: &'a str, urn: &str) -> Option<&'a str> {
    let head = key.get(..urn.len())?;
    let rest = key[urn.len()..].strip_prefix(':')?;
    head.eq_ignore_ascii_case(urn).then_some(rest)
}

/// Extension attributes gathered from the URN object and from URN-qualified keys, so both
/// spellings end up in one object.
#[derive(Default)]
struct ExtensionInput(Vec<(&'static SchemaDef, Map<String, Value>)>);

impl ExtensionInput {
    fn entry(&mut self, ext: &'static SchemaDef) -> &mut Map<String, Value> {
        let pos = match self.0.iter().position(|(e, _)| e.id == ext.id) {
            Some(pos) => pos,
            None => {
                self.0.push((ext, Map::new()));
                self.0.len() - 1
            }
        };
        &mut self.0[pos].1
    }

    fn add_object(&mut self, ext: &'static SchemaDef, value: &Value) -> Result<(), ScimError> {
        match value {
            Value::Null => Ok(()),
            Value::Object(o) => {
                self.entry(ext).extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
                Ok(())
            }
            _ => Err(type_error(ext.id, "an object")),
        }
    }

    fn add_attr(&mut self, ext: &'static SchemaDef, name: &str, value: &Value) {
        self.entry(ext).insert(name.to_owned(), value.clone());
    }
}

// --- values -------------------------------------------------------------------------------------

struct Normalizer<'t> {
    kind: ResourceKind,
    tol: &'t Tolerances,
    ignored: Vec<String>,
}

impl Normalizer<'_> {
    /// An unknown attribute or schema: dropped and listed with `ignore_unknown`, else 400.
    fn unknown(&mut self, path: &str, what: &str) -> Result<(), ScimError> {
        if self.tol.ignore_unknown {
            self.ignored.push(path.to_owned());
            Ok(())
        } else {
            Err(ScimError::invalid_syntax(format!("unknown {what} \"{path}\"")))
        }
    }

    /// Every URN in `schemas` must belong to this resource type.
    fn check_schema_urns(&mut self, value: &Value) -> Result<(), ScimError> {
        for urn in schema_urns(value, self.tol)? {
            let known = urn.eq_ignore_ascii_case(self.kind.core_schema().id)
                || self.kind.extension(urn).is_some();
            if !known {
                self.unknown(urn, "schema")?;
            }
        }
        Ok(())
    }

    /// Validates one attribute of `schema` and files it in `out` under its canonical name
    /// (a later spelling of the same attribute wins, a null one unassigns it).
    fn put_attr(
        &mut self,
        schema: &'static SchemaDef,
        ext: Option<&'static str>,
        name: &str,
        value: &Value,
        out: &mut Map<String, Value>,
    ) -> Result<(), ScimError> {
        let Some(def) = schema.attribute(name) else {
            return self.unknown(&qualified(ext, name), "attribute");
        };
        // readOnly input is ignored (RFC 7644 §3.3: id, meta, groups); writeOnly is password,
        // which AWS has no use for and scimbridge never stores.
        if matches!(def.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
            return Ok(());
        }
        let path = qualified(ext, def.name);
        let normalized = if ext == Some(ENTERPRISE_USER_URN) && def.name == "manager" {
            self.manager(def, value, &path)?
        } else {
            self.value(def, value, &path)?
        };
        match normalized {
            Some(v) => out.insert(def.name.to_owned(), v),
            None => out.remove(def.name),
        };
        Ok(())
    }

    /// A value of `def`; None when it is unassigned.
    fn value(
        &mut self,
        def: &AttributeDef,
        value: &Value,
        path: &str,
    ) -> Result<Option<Value>, ScimError> {
        match value {
            Value::Null => Ok(None),
            _ if def.multi_valued => self.multi(def, value, path),
            _ => self.single(def, value, path),
        }
    }

    fn multi(
        &mut self,
        def: &AttributeDef,
        value: &Value,
        path: &str,
    ) -> Result<Option<Value>, ScimError> {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single if self.tol.single_value_as_array => vec![single],
            _ => return Err(type_error(path, "an array")),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items.into_iter().filter(|v| !v.is_null()) {
            out.extend(self.single(def, item, path)?);
        }
        Ok((!out.is_empty()).then_some(Value::Array(out)))
    }

    fn single(
        &mut self,
        def: &AttributeDef,
        value: &Value,
        path: &str,
    ) -> Result<Option<Value>, ScimError> {
        if def.attr_type == AttrType::Complex {
            return self.complex(def, value, path);
        }
        match simple_value(def.attr_type, value, self.tol) {
            Some(v) => Ok(Some(v)),
            None => Err(type_error(path, type_phrase(def.attr_type))),
        }
    }

    fn complex(
        &mut self,
        def: &AttributeDef,
        value: &Value,
        path: &str,
    ) -> Result<Option<Value>, ScimError> {
        let Value::Object(obj) = value else {
            let what = if def.multi_valued { "an array of objects" } else { "an object" };
            return Err(type_error(path, what));
        };
        let mut out = Map::new();
        for (key, sub_value) in obj {
            let Some(sub) = def.sub_attribute(key) else {
                self.unknown(&format!("{path}.{key}"), "attribute")?;
                continue;
            };
            // e.g. manager.displayName (RFC 7644 §3.3).
            if sub.mutability == Mutability::ReadOnly {
                continue;
            }
            match self.value(sub, sub_value, &format!("{path}.{}", sub.name))? {
                Some(v) => out.insert(sub.name.to_owned(), v),
                None => out.remove(sub.name),
            };
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }

    /// Enterprise `manager`. Entra sends a bare id string, or an array of one `{value, $ref}`
    /// object, and clears it with an empty value (shared/reference §2.2, §2.6 item 6).
    fn manager(
        &mut self,
        def: &AttributeDef,
        value: &Value,
        path: &str,
    ) -> Result<Option<Value>, ScimError> {
        if !self.tol.manager_any_shape {
            return self.value(def, value, path);
        }
        let shaped = match value {
            Value::String(id) if id.trim().is_empty() => return Ok(None),
            Value::String(id) => json!({ "value": id }),
            Value::Array(items) => match items.as_slice() {
                [] => return Ok(None),
                [one] => return self.manager(def, one, path),
                _ => return Err(ScimError::invalid_value(format!("\"{path}\" takes one manager"))),
            },
            other => other.clone(),
        };
        let normalized = self.value(def, &shaped, path)?;
        // `{"value": ""}` is how Entra's "replace with empty" arrives after a PATCH.
        let blank_id = normalized
            .as_ref()
            .and_then(|m| m.get("value"))
            .and_then(Value::as_str)
            .is_some_and(|id| id.trim().is_empty());
        Ok(if blank_id { None } else { normalized })
    }

    /// Group `members` (RFC 7643 §4.2). Only `value` and `type` are kept: `display` and `$ref`
    /// are derived from the member on output.
    fn members(&mut self, value: &Value) -> Result<Vec<MemberRef>, ScimError> {
        let items: Vec<&Value> = match value {
            Value::Null => Vec::new(),
            Value::Array(items) => items.iter().collect(),
            Value::Object(_) if self.tol.single_value_as_array => vec![value],
            _ => return Err(type_error("members", "an array")),
        };
        let mut out: Vec<MemberRef> = Vec::with_capacity(items.len());
        // Duplicates are found in a set beside the list: searching the list instead made a
        // group of 50,000 members cost 1.25 billion comparisons (seconds per POST).
        let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
        for item in items.into_iter().filter(|v| !v.is_null()) {
            let member = self.member(item)?;
            if seen.insert(member.value.clone()) {
                out.push(member);
            }
        }
        Ok(out)
    }

    fn member(&mut self, item: &Value) -> Result<MemberRef, ScimError> {
        let Value::Object(obj) = item else {
            return Err(type_error("members", "an array of objects"));
        };
        let members_def = self.kind.core_schema().attribute("members");
        let mut value = None;
        let mut member_type = None;
        for (key, v) in obj {
            match members_def.and_then(|d| d.sub_attribute(key)).map(|s| s.name) {
                Some("value") => value = v.as_str().filter(|s| !s.trim().is_empty()),
                Some("type") => member_type = parse_member_type(v)?,
                Some(_) => {} // $ref (Okta and Entra send null) and display
                None => self.unknown(&format!("members.{key}"), "attribute")?,
            }
        }
        match value {
            Some(value) => Ok(MemberRef { value: value.to_owned(), member_type }),
            None => Err(ScimError::invalid_value(
                "each element of \"members\" needs a non-empty string \"value\"",
            )),
        }
    }
}

fn parse_member_type(v: &Value) -> Result<Option<MemberType>, ScimError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.eq_ignore_ascii_case("user") => Ok(Some(MemberType::User)),
        Value::String(s) if s.eq_ignore_ascii_case("group") => Ok(Some(MemberType::Group)),
        _ => Err(ScimError::invalid_value(format!(
            "attribute \"members.type\" must be \"User\" or \"Group\", not {v}"
        ))),
    }
}

// --- whole-document checks ---------------------------------------------------------------------

/// Required attributes (userName, Group displayName) must hold something other than
/// whitespace (RFC 7643 §4.1.1: "a non-empty userName value").
fn check_required(schema: &SchemaDef, doc: &Map<String, Value>) -> Result<(), ScimError> {
    for def in schema.attributes.iter().filter(|a| a.required) {
        let present = match doc.get(def.name) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(_) => true,
            None => false,
        };
        if !present {
            return Err(ScimError::invalid_value(format!(
                "attribute \"{}\" is required",
                def.name
            )));
        }
    }
    Ok(())
}

/// RFC 7643 §2.4: "The primary attribute value "true" MUST appear no more than once."
fn check_single_primary(schema: &SchemaDef, doc: &Map<String, Value>) -> Result<(), ScimError> {
    for def in schema.attributes.iter().filter(|a| a.multi_valued) {
        let Some(Value::Array(items)) = doc.get(def.name) else { continue };
        let primaries = items.iter().filter(|i| i.get("primary") == Some(&Value::Bool(true)));
        if primaries.count() > 1 {
            return Err(ScimError::invalid_value(format!(
                "attribute \"{}\" has more than one primary value",
                def.name
            )));
        }
    }
    Ok(())
}

/// The `strict` compatibility mode: every tolerance off.
fn is_strict(tol: &Tolerances) -> bool {
    *tol == Tolerances::strict()
}

/// The body must name the resource type's core schema (RFC 7643 §3: `schemas` is REQUIRED).
fn require_core_schema(
    kind: ResourceKind,
    schemas: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let core = kind.core_schema().id;
    let listed = match schemas {
        Some(v) => schema_urns(v, tol)?.iter().any(|u| u.eq_ignore_ascii_case(core)),
        None => false,
    };
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!("\"schemas\" must contain \"{core}\"")))
    }
}

/// The URNs of a `schemas` value: an array of strings (or one string, when tolerated).
fn schema_urns<'v>(value: &'v Value, tol: &Tolerances) -> Result<Vec<&'v str>, ScimError> {
    let invalid = || type_error("schemas", "an array of strings");
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if tol.single_value_as_array => Ok(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(|v| v.as_str().ok_or_else(invalid)).collect(),
        _ => Err(invalid()),
    }
}

// --- small helpers ------------------------------------------------------------------------------

fn as_object(body: &Value) -> Result<&Map<String, Value>, ScimError> {
    body.as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))
}

/// A member of `obj` by case-insensitive key.
fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// `name`, or `urn:name` for an extension attribute (RFC 7644 §3.10).
fn qualified(ext: Option<&str>, name: &str) -> String {
    match ext {
        Some(urn) => format!("{urn}:{name}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::values::is_date_time;
    use super::*;
    use crate::error::ScimType;
    use crate::schema::{GROUP_URN, USER_URN};

    const ENTERPRISE: &str = ENTERPRISE_USER_URN;
    const LENIENT: Tolerances = Tolerances::lenient();
    const STRICT: Tolerances = Tolerances::strict();

    fn user(body: Value) -> Result<Normalized, ScimError> {
        normalize_resource(ResourceKind::User, &body, &LENIENT)
    }

    #[test]
    fn nul_anywhere_is_invalid_value_naming_where() {
        let detail = |body: Value| {
            let e = user(body).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
            e.detail
        };
        let base = json!({"schemas": [USER_URN], "userName": "a"});
        let mut b = base.clone();
        b["name"] = json!({"givenName": "x\u{0}"});
        assert!(detail(b).contains("at name.givenName"));
        let mut b = base.clone();
        b["emails"] = json!([{"value": "a@b.c"}, {"value": "\u{0}"}]);
        assert!(detail(b).contains("at emails[1].value"));
        let mut b = base.clone();
        b[ENTERPRISE] = json!({"manager": {"value": "m\u{0}"}});
        assert!(detail(b).contains(&format!("at {ENTERPRISE}.manager.value")));
        let mut b = base.clone();
        b["x\u{0}"] = json!(1);
        assert!(detail(b).contains("at x\\u0000"));
        assert!(reject_nul(&json!("\u{0}")).is_err());
        assert!(reject_nul(&json!({"a": ["b", {"c": "d"}], "e": 1})).is_ok());
    }

    fn strict_user(body: Value) -> Result<Normalized, ScimError> {
        normalize_resource(ResourceKind::User, &body, &STRICT)
    }

    fn group(body: Value) -> Result<Normalized, ScimError> {
        normalize_resource(ResourceKind::Group, &body, &LENIENT)
    }

    /// A user body with the given extra members.
    fn with(extra: Value) -> Value {
        let mut body = json!({"schemas": [USER_URN], "userName": "bjensen"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    }

    fn assert_error(result: Result<Normalized, ScimError>, scim_type: ScimType, detail: &str) {
        let err = result.expect_err("expected an error");
        assert_eq!((err.status, err.scim_type), (400, Some(scim_type)), "{err}");
        assert!(err.detail.contains(detail), "{:?} does not contain {detail:?}", err.detail);
    }

    fn rfc_meta() -> Value {
        json!({
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff590\"",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
        })
    }

    /// RFC 7643 §8.2, the full user.
    fn rfc_full_user() -> Value {
        json!({
            "schemas": [USER_URN],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {
                "formatted": "Ms. Barbara J Jensen, III",
                "familyName": "Jensen",
                "givenName": "Barbara",
                "middleName": "Jane",
                "honorificPrefix": "Ms.",
                "honorificSuffix": "III"
            },
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "profileUrl": "https://login.example.com/bjensen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "addresses": [
                {
                    "type": "work",
                    "streetAddress": "100 Universal City Plaza",
                    "locality": "Hollywood",
                    "region": "CA",
                    "postalCode": "91608",
                    "country": "USA",
                    "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                    "primary": true
                },
                {
                    "type": "home",
                    "streetAddress": "456 Hollywood Blvd",
                    "locality": "Hollywood",
                    "region": "CA",
                    "postalCode": "91608",
                    "country": "USA",
                    "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA"
                }
            ],
            "phoneNumbers": [
                {"value": "555-555-5555", "type": "work"},
                {"value": "555-555-4444", "type": "mobile"}
            ],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "photos": [
                {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"},
                {"value": "https://photos.example.com/profilephoto/72930000000Ccne/T", "type": "thumbnail"}
            ],
            "userType": "Employee",
            "title": "Tour Guide",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "password": "t1meMa$heen",
            "groups": [
                {
                    "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
                    "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
                    "display": "Tour Guides"
                }
            ],
            "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMC"}],
            "meta": rfc_meta()
        })
    }

    // --- RFC 7643 §8 examples ---------------------------------------------------------------

    #[test]
    fn rfc_minimal_user() {
        let body = json!({
            "schemas": [USER_URN],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "bjensen@example.com",
            "meta": rfc_meta()
        });
        for tol in [LENIENT, STRICT] {
            let n = normalize_resource(ResourceKind::User, &body, &tol).unwrap();
            assert_eq!(n.doc, json!({"userName": "bjensen@example.com"}));
            assert_eq!((n.members, n.ignored.len()), (None, 0));
        }
    }

    #[test]
    fn rfc_full_user_keeps_everything_but_server_owned_and_password() {
        let body = rfc_full_user();
        // Strict mode too: the RFC example is plain RFC.
        let n = strict_user(body.clone()).unwrap();
        let mut expected = body;
        let obj = expected.as_object_mut().unwrap();
        for dropped in ["schemas", "id", "meta", "password", "groups"] {
            obj.remove(dropped);
        }
        assert_eq!(n.doc, expected);
        assert!(n.ignored.is_empty());
    }

    #[test]
    fn rfc_enterprise_user_files_the_extension_under_its_urn() {
        let mut body = rfc_full_user();
        body["schemas"] = json!([USER_URN, ENTERPRISE]);
        body[ENTERPRISE] = json!({
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                "displayName": "John Smith"
            }
        });
        let n = strict_user(body).unwrap();
        assert_eq!(
            n.doc[ENTERPRISE],
            json!({
                "employeeNumber": "701984",
                "costCenter": "4130",
                "organization": "Universal Studios",
                "division": "Theme Park",
                "department": "Tour Operations",
                // displayName is readOnly (RFC 7643 §4.3) and silently dropped.
                "manager": {
                    "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                    "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d"
                }
            })
        );
        assert_eq!(n.doc["userName"], "bjensen@example.com");
    }

    #[test]
    fn rfc_group_members_are_returned_apart() {
        let body = json!({
            "schemas": [GROUP_URN],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "displayName": "Tour Guides",
            "members": [
                {
                    "value": "2819c223-7f76-453a-919d-413861904646",
                    "$ref": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646",
                    "display": "Babs Jensen"
                },
                {
                    "value": "902c246b-6245-4190-8e05-00816be7344a",
                    "$ref": "https://example.com/v2/Users/902c246b-6245-4190-8e05-00816be7344a",
                    "display": "Mandy Pepperidge"
                }
            ],
            "meta": {"resourceType": "Group"}
        });
        let n = normalize_resource(ResourceKind::Group, &body, &STRICT).unwrap();
        assert_eq!(n.doc, json!({"displayName": "Tour Guides"}));
        let members = n.members.unwrap();
        assert_eq!(
            members,
            [
                MemberRef {
                    value: "2819c223-7f76-453a-919d-413861904646".into(),
                    member_type: None
                },
                MemberRef {
                    value: "902c246b-6245-4190-8e05-00816be7344a".into(),
                    member_type: None
                },
            ]
        );
    }

    // --- IdP payloads (shared/reference §2) ----------------------------------------------------

    #[test]
    fn okta_create_user_drops_groups_and_password() {
        let body = json!({
            "schemas": [USER_URN],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00u1abcd",
            "groups": [],
            "password": "1mz050nq",
            "active": true
        });
        let n = user(body).unwrap();
        assert!(n.doc.get("groups").is_none() && n.doc.get("password").is_none());
        assert_eq!(n.doc["externalId"], "00u1abcd");
        assert_eq!(
            n.doc["emails"][0],
            json!({"primary": true, "value": "test.user@okta.local", "type": "work"})
        );
        assert!(n.ignored.is_empty());
    }

    #[test]
    fn entra_create_user_with_nulls_typo_urn_and_empty_roles() {
        let body = json!({
            "schemas": [USER_URN, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "userName": "OwenS@contoso.com",
            "active": "True",
            "addresses": null,
            "displayName": null,
            "emails": [{"primary": true, "type": "work", "value": "OwenS@contoso.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "Owen Smith", "familyName": "Smith", "givenName": "Owen"},
            "roles": [],
            ENTERPRISE: {"department": null, "manager": null}
        });
        let n = user(body.clone()).unwrap();
        assert_eq!(
            n.doc,
            json!({
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "userName": "OwenS@contoso.com",
                "active": true,
                "emails": [{"primary": true, "type": "work", "value": "OwenS@contoso.com"}],
                "name": {"formatted": "Owen Smith", "familyName": "Smith", "givenName": "Owen"}
            })
        );
        assert_eq!(n.ignored, ["urn:ietf:params:scim:schemas:extension:enterprise:2.0User"]);
        // Strict: the typo URN is rejected by name.
        assert_error(strict_user(body), ScimType::InvalidSyntax, "enterprise:2.0User");
    }

    #[test]
    fn entra_create_group_with_adscim_schema() {
        let adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
        let body = json!({
            "schemas": [GROUP_URN, adscim],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Group1DisplayName",
            "meta": {"resourceType": "Group"},
            "members": []
        });
        let n = group(body.clone()).unwrap();
        assert_eq!(
            n.doc,
            json!({"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1DisplayName"})
        );
        assert_eq!(n.members, Some(vec![]));
        assert_eq!(n.ignored, [adscim]);
        let strict = normalize_resource(ResourceKind::Group, &body, &STRICT);
        assert_error(strict, ScimType::InvalidSyntax, adscim);
    }

    // --- body shape and schemas ---------------------------------------------------------------

    #[test]
    fn body_must_be_an_object() {
        for body in [json!([]), json!("x"), json!(null), json!(1)] {
            let r = normalize_resource(ResourceKind::User, &body, &LENIENT);
            assert_error(r, ScimType::InvalidSyntax, "JSON object");
            let r = normalize_doc(ResourceKind::User, &body, &LENIENT);
            assert_error(r, ScimType::InvalidSyntax, "JSON object");
        }
    }

    #[test]
    fn schemas_must_name_the_core_schema() {
        assert_error(user(json!({"userName": "a"})), ScimType::InvalidValue, "\"schemas\"");
        assert_error(
            user(json!({"schemas": [], "userName": "a"})),
            ScimType::InvalidValue,
            USER_URN,
        );
        let wrong = json!({"schemas": [GROUP_URN], "userName": "a"});
        assert_error(user(wrong), ScimType::InvalidValue, USER_URN);
        assert_error(
            user(json!({"schemas": [ENTERPRISE], "userName": "a"})),
            ScimType::InvalidValue,
            USER_URN,
        );
        assert_error(
            user(json!({"schemas": [1], "userName": "a"})),
            ScimType::InvalidValue,
            "schemas",
        );
        // URNs compare case-insensitively; the key too.
        let upper = json!({"SCHEMAS": [USER_URN.to_uppercase()], "userName": "a"});
        assert_eq!(user(upper).unwrap().doc, json!({"userName": "a"}));
    }

    #[test]
    fn a_single_schema_string_needs_the_tolerance() {
        let body = json!({"schemas": USER_URN, "userName": "a"});
        assert!(user(body.clone()).is_ok());
        assert_error(strict_user(body), ScimType::InvalidValue, "schemas");
    }

    #[test]
    fn normalize_doc_does_not_require_schemas() {
        let n = normalize_doc(ResourceKind::User, &json!({"userName": "a"}), &STRICT).unwrap();
        assert_eq!(n.doc, json!({"userName": "a"}));
    }

    // --- names ------------------------------------------------------------------------------------

    #[test]
    fn names_are_rewritten_to_canonical_spelling() {
        let body = json!({
            "schemas": [USER_URN, ENTERPRISE],
            "USERNAME": "bjensen",
            "Name": {"GIVENNAME": "Barbara"},
            "EMAILS": [{"VALUE": "b@example.com", "Primary": true}],
            ENTERPRISE.to_uppercase(): {"EmployeeNumber": "42", "MANAGER": {"VALUE": "m1"}}
        });
        let n = strict_user(body).unwrap();
        assert_eq!(
            n.doc,
            json!({
                "userName": "bjensen",
                "name": {"givenName": "Barbara"},
                "emails": [{"value": "b@example.com", "primary": true}],
                ENTERPRISE: {"employeeNumber": "42", "manager": {"value": "m1"}}
            })
        );
    }

    #[test]
    fn urn_qualified_keys_are_filed_under_their_schema() {
        let body = json!({
            "schemas": [USER_URN, ENTERPRISE],
            format!("{USER_URN}:userName"): "bjensen",
            format!("{ENTERPRISE}:department"): "Tour Operations",
            ENTERPRISE: {"costCenter": "4130"}
        });
        let n = strict_user(body).unwrap();
        assert_eq!(
            n.doc,
            json!({"userName": "bjensen", ENTERPRISE: {"department": "Tour Operations", "costCenter": "4130"}})
        );
    }

    #[test]
    fn a_later_spelling_wins_and_null_unassigns() {
        let n = user(with(json!({"displayName": "A", "DISPLAYNAME": "B"}))).unwrap();
        assert_eq!(n.doc["displayName"], "B");
        let n = user(with(json!({"displayName": "A", "DisplayName": null}))).unwrap();
        assert!(n.doc.get("displayName").is_none());
    }

    // --- types ------------------------------------------------------------------------------------

    #[test]
    fn wrong_types_are_invalid_value_naming_the_path() {
        let cases = [
            (json!({"active": "yes"}), "attribute \"active\" must be a boolean"),
            (json!({"active": 1}), "attribute \"active\" must be a boolean"),
            (json!({"displayName": 5}), "attribute \"displayName\" must be a string"),
            (json!({"externalId": {"a": 1}}), "attribute \"externalId\" must be a string"),
            (json!({"name": "Barbara"}), "attribute \"name\" must be an object"),
            (json!({"name": {"givenName": true}}), "attribute \"name.givenName\" must be a string"),
            (json!({"emails": [{"value": 5}]}), "attribute \"emails.value\" must be a string"),
            (json!({"emails": ["a@b.c"]}), "attribute \"emails\" must be an array of objects"),
            (
                json!({"emails": [{"primary": "yes"}]}),
                "attribute \"emails.primary\" must be a boolean",
            ),
            (json!({"profileUrl": 1}), "attribute \"profileUrl\" must be a URI string"),
            (
                json!({ENTERPRISE: {"department": 7}}),
                &format!("attribute \"{ENTERPRISE}:department\" must be a string"),
            ),
            (json!({ENTERPRISE: "x"}), &format!("attribute \"{ENTERPRISE}\" must be an object")),
        ];
        for (extra, detail) in cases {
            assert_error(user(with(extra.clone())), ScimType::InvalidValue, detail);
            assert_error(strict_user(with(extra)), ScimType::InvalidValue, detail);
        }
    }

    #[test]
    fn boolean_strings_need_the_tolerance() {
        for (sent, stored) in [("True", true), ("False", false), ("true", true), ("FALSE", false)] {
            let n = user(with(json!({"active": sent}))).unwrap();
            assert_eq!(n.doc["active"], json!(stored), "{sent}");
            assert_error(
                strict_user(with(json!({"active": sent}))),
                ScimType::InvalidValue,
                "\"active\"",
            );
        }
        let n = user(with(json!({"emails": [{"value": "a@b.c", "primary": "True"}]}))).unwrap();
        assert_eq!(n.doc["emails"][0]["primary"], json!(true));
    }

    #[test]
    fn single_values_as_arrays_need_the_tolerance() {
        let extra = json!({"emails": {"value": "a@b.c", "type": "work"}});
        let n = user(with(extra.clone())).unwrap();
        assert_eq!(n.doc["emails"], json!([{"value": "a@b.c", "type": "work"}]));
        assert_error(
            strict_user(with(extra)),
            ScimType::InvalidValue,
            "\"emails\" must be an array",
        );
    }

    #[test]
    fn simple_types() {
        let t = &STRICT;
        assert!(simple_value(AttrType::Integer, &json!(3), t).is_some());
        assert!(simple_value(AttrType::Integer, &json!(-3), t).is_some());
        assert!(simple_value(AttrType::Integer, &json!(3.5), t).is_none());
        assert!(simple_value(AttrType::Integer, &json!("3"), t).is_none());
        assert!(simple_value(AttrType::Decimal, &json!(3.5), t).is_some());
        assert!(simple_value(AttrType::Decimal, &json!(3), t).is_some());
        assert!(simple_value(AttrType::Decimal, &json!("3.5"), t).is_none());
        assert!(simple_value(AttrType::Binary, &json!("TUlJ"), t).is_some());
        assert!(simple_value(AttrType::DateTime, &json!("2011-05-13T04:42:34Z"), t).is_some());
        assert!(simple_value(AttrType::DateTime, &json!("yesterday"), t).is_none());
        assert!(simple_value(AttrType::Boolean, &json!("true"), t).is_none());
        assert_eq!(simple_value(AttrType::Boolean, &json!("true"), &LENIENT), Some(json!(true)));
        assert!(simple_value(AttrType::Boolean, &json!("yes"), &LENIENT).is_none());
    }

    #[test]
    fn date_times() {
        for ok in [
            "2008-01-23T04:56:22Z",
            "2008-01-23t04:56:22z",
            "2008-01-23T04:56:22.123456Z",
            "2008-01-23T04:56:22+05:30",
            "2008-01-23T04:56:22-08:00",
            "2016-12-31T23:59:60Z",
            "2008-01-23T04:56:22",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "",
            "2008-01-23",
            "2008-13-23T04:56:22Z",
            "2008-00-23T04:56:22Z",
            "2008-01-00T04:56:22Z",
            "2008-01-23T24:56:22Z",
            "2008-01-23 04:56:22Z",
            "2008-01-23T04:56:22.Z",
            "2008-01-23T04:56:22+0530",
            "2008-01-23T04:56:22+05:30x",
            "2008-01-23T04:56:22ZZ",
            "2008-1-23T04:56:22Z",
            "２００８-01-23T04:56:22Z",
            "2008-01-23T04:56:2é",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }

    // --- unassigned values ------------------------------------------------------------------------

    #[test]
    fn nulls_and_empty_values_are_unassigned() {
        let extra = json!({
            "displayName": null,
            "addresses": null,
            "roles": [],
            "name": {"formatted": null, "givenName": null},
            "phoneNumbers": [null, {"value": null}, {}],
            "emails": [null, {"value": "a@b.c"}],
            ENTERPRISE: {}
        });
        for tol in [LENIENT, STRICT] {
            let n = normalize_resource(ResourceKind::User, &with(extra.clone()), &tol).unwrap();
            assert_eq!(n.doc, json!({"userName": "bjensen", "emails": [{"value": "a@b.c"}]}));
        }
    }

    #[test]
    fn strings_are_stored_as_sent() {
        let n =
            user(with(json!({"displayName": "  Babs  ", "nickName": "", "title": "Tour Guide\n"})))
                .unwrap();
        assert_eq!(n.doc["displayName"], "  Babs  ");
        assert_eq!(n.doc["nickName"], "");
        assert_eq!(n.doc["title"], "Tour Guide\n");
        let n = user(json!({"schemas": [USER_URN], "userName": " Alice@Example.com "})).unwrap();
        assert_eq!(n.doc["userName"], " Alice@Example.com ");
    }

    // --- required, readOnly, password ------------------------------------------------------------

    #[test]
    fn required_attributes_must_be_present_and_not_blank() {
        for body in [
            json!({"schemas": [USER_URN]}),
            json!({"schemas": [USER_URN], "userName": null}),
            json!({"schemas": [USER_URN], "userName": ""}),
            json!({"schemas": [USER_URN], "userName": " \t\n"}),
        ] {
            assert_error(user(body), ScimType::InvalidValue, "attribute \"userName\" is required");
        }
        for body in
            [json!({"schemas": [GROUP_URN]}), json!({"schemas": [GROUP_URN], "displayName": "  "})]
        {
            assert_error(
                group(body),
                ScimType::InvalidValue,
                "attribute \"displayName\" is required",
            );
        }
        // The PATCH engine's check catches a removed userName too.
        let r = normalize_doc(ResourceKind::User, &json!({"displayName": "x"}), &LENIENT);
        assert_error(r, ScimType::InvalidValue, "userName");
    }

    #[test]
    fn read_only_input_is_silently_ignored() {
        let extra = json!({
            "id": "client-chosen",
            "meta": {"created": "not even a date"},
            "groups": [{"value": "g1"}],
            ENTERPRISE: {"manager": {"value": "m1", "displayName": "Boss"}}
        });
        for tol in [LENIENT, STRICT] {
            let n = normalize_resource(ResourceKind::User, &with(extra.clone()), &tol).unwrap();
            assert_eq!(
                n.doc,
                json!({"userName": "bjensen", ENTERPRISE: {"manager": {"value": "m1"}}})
            );
            assert!(n.ignored.is_empty());
        }
    }

    #[test]
    fn password_is_never_stored() {
        let n = strict_user(with(json!({"password": "t1meMa$heen"}))).unwrap();
        assert!(n.doc.get("password").is_none());
        let n = user(with(json!({"PASSWORD": 12345}))).unwrap();
        assert_eq!(n.doc, json!({"userName": "bjensen"}));
    }

    // --- unknown attributes ----------------------------------------------------------------------

    #[test]
    fn unknown_attributes_are_dropped_and_listed_when_tolerated() {
        let extra = json!({
            "favouriteColour": "blue",
            "name": {"givenName": "B", "nick": "x"},
            "emails": [{"value": "a@b.c", "label": "x"}],
            "urn:example:custom:2.0:User": {"a": 1},
            ENTERPRISE: {"badge": "7", "department": "Ops"}
        });
        let n = user(with(extra)).unwrap();
        assert_eq!(
            n.doc,
            json!({
                "userName": "bjensen",
                "name": {"givenName": "B"},
                "emails": [{"value": "a@b.c"}],
                ENTERPRISE: {"department": "Ops"}
            })
        );
        assert_eq!(
            n.ignored,
            [
                "favouriteColour".to_owned(),
                "name.nick".to_owned(),
                "emails.label".to_owned(),
                "urn:example:custom:2.0:User".to_owned(),
                format!("{ENTERPRISE}:badge"),
            ]
        );
    }

    #[test]
    fn unknown_attributes_are_invalid_syntax_when_strict() {
        let cases = [
            (json!({"favouriteColour": "blue"}), "unknown attribute \"favouriteColour\""),
            (json!({"name": {"nick": "x"}}), "unknown attribute \"name.nick\""),
            (json!({"emails": [{"label": "x"}]}), "unknown attribute \"emails.label\""),
            (
                json!({"urn:example:custom:2.0:User": {}}),
                "unknown schema \"urn:example:custom:2.0:User\"",
            ),
            (json!({ENTERPRISE: {"badge": "7"}}), "badge"),
            (json!({"members": []}), "unknown attribute \"members\""),
        ];
        for (extra, detail) in cases {
            assert_error(strict_user(with(extra)), ScimType::InvalidSyntax, detail);
        }
        let body = json!({"schemas": [USER_URN, "urn:example:custom:2.0:User"], "userName": "a"});
        assert_error(strict_user(body), ScimType::InvalidSyntax, "unknown schema");
    }

    // --- members ----------------------------------------------------------------------------------

    fn members_of(members: Value) -> Result<Normalized, ScimError> {
        group(json!({"schemas": [GROUP_URN], "displayName": "G", "members": members}))
    }

    #[test]
    fn members_present_empty_null_or_absent() {
        assert_eq!(members_of(json!([])).unwrap().members, Some(vec![]));
        assert_eq!(members_of(json!(null)).unwrap().members, Some(vec![]));
        assert_eq!(members_of(json!([null])).unwrap().members, Some(vec![]));
        let n = group(json!({"schemas": [GROUP_URN], "displayName": "G"})).unwrap();
        assert_eq!(n.members, None);
        assert!(n.doc.get("members").is_none());
    }

    #[test]
    fn member_type_ref_and_display() {
        let n = members_of(json!([
            {"value": "u1", "type": "User", "$ref": null, "display": "Babs"},
            {"VALUE": "g1", "TYPE": "group", "$ref": "https://x/Groups/g1"},
            {"value": "u2", "type": null},
            {"value": "u1", "type": "User"}
        ]))
        .unwrap();
        assert_eq!(
            n.members.unwrap(),
            [
                MemberRef { value: "u1".into(), member_type: Some(MemberType::User) },
                MemberRef { value: "g1".into(), member_type: Some(MemberType::Group) },
                MemberRef { value: "u2".into(), member_type: None },
            ]
        );
        assert!(n.doc.get("members").is_none());
    }

    #[test]
    fn a_large_member_list_keeps_the_first_of_each_duplicate_in_linear_time() {
        const N: usize = 50_000;
        let id = |i: usize| format!("00000000-0000-7000-8000-{i:012}");
        let mut members: Vec<Value> = (0..N).map(|i| json!({"value": id(i)})).collect();
        // Every member again, typed this time: the first occurrence (untyped) is the one kept.
        members.extend((0..N).map(|i| json!({"value": id(i), "type": "User"})));
        let started = std::time::Instant::now();
        let n = members_of(Value::Array(members)).unwrap();
        let elapsed = started.elapsed();
        let kept = n.members.unwrap();
        assert_eq!(kept.len(), N);
        assert!(kept.iter().enumerate().all(|(i, m)| m.value == id(i) && m.member_type.is_none()));
        // Linear work takes well under a second even unoptimised on a busy machine; comparing
        // each member with every earlier one (3.75 billion comparisons here) takes far longer.
        assert!(elapsed < std::time::Duration::from_secs(3), "{N} members took {elapsed:?}");
    }

    #[test]
    fn invalid_members() {
        for members in [
            json!([{"display": "no value"}]),
            json!([{"value": ""}]),
            json!([{"value": "  "}]),
            json!([{"value": 42}]),
            json!([{"value": null}]),
        ] {
            assert_error(members_of(members), ScimType::InvalidValue, "non-empty string \"value\"");
        }
        assert_error(
            members_of(json!([{"value": "u1", "type": "Device"}])),
            ScimType::InvalidValue,
            "members.type",
        );
        assert_error(
            members_of(json!([{"value": "u1", "type": 1}])),
            ScimType::InvalidValue,
            "members.type",
        );
        assert_error(
            members_of(json!(["u1"])),
            ScimType::InvalidValue,
            "\"members\" must be an array of objects",
        );
        assert_error(
            members_of(json!("u1")),
            ScimType::InvalidValue,
            "\"members\" must be an array",
        );
    }

    #[test]
    fn a_single_member_object_needs_the_tolerance() {
        assert_eq!(members_of(json!({"value": "u1"})).unwrap().members.unwrap().len(), 1);
        let body = json!({"schemas": [GROUP_URN], "displayName": "G", "members": {"value": "u1"}});
        let strict = normalize_resource(ResourceKind::Group, &body, &STRICT);
        assert_error(strict, ScimType::InvalidValue, "members");
    }

    #[test]
    fn unknown_member_sub_attributes() {
        let n = members_of(json!([{"value": "u1", "operation": "add"}])).unwrap();
        assert_eq!(n.ignored, ["members.operation"]);
        let body = json!({"schemas": [GROUP_URN], "displayName": "G", "members": [{"value": "u1", "x": 1}]});
        let strict = normalize_resource(ResourceKind::Group, &body, &STRICT);
        assert_error(strict, ScimType::InvalidSyntax, "members.x");
    }

    // --- manager ----------------------------------------------------------------------------------

    fn manager(value: Value, tol: &Tolerances) -> Result<Normalized, ScimError> {
        let body = with(json!({ENTERPRISE: {"department": "Ops", "manager": value}}));
        normalize_resource(ResourceKind::User, &body, tol)
    }

    #[test]
    fn manager_in_any_shape_when_tolerated() {
        let id = "26118915-6090-4610-87e4-49d8ca9f808d";
        let cases = [
            (json!(id), json!({"value": id})),
            (
                json!([{"$ref": "../Users/x", "value": id}]),
                json!({"$ref": "../Users/x", "value": id}),
            ),
            (json!([id]), json!({"value": id})),
            (json!({"value": id}), json!({"value": id})),
        ];
        for (sent, stored) in cases {
            let n = manager(sent.clone(), &LENIENT).unwrap();
            assert_eq!(n.doc[ENTERPRISE]["manager"], stored, "{sent}");
        }
        for empty in [
            json!(""),
            json!("  "),
            json!([]),
            json!(null),
            json!({"value": ""}),
            json!([{"value": ""}]),
        ] {
            let n = manager(empty.clone(), &LENIENT).unwrap();
            assert_eq!(n.doc[ENTERPRISE], json!({"department": "Ops"}), "{empty}");
        }
        assert_error(
            manager(json!([{"value": "a"}, {"value": "b"}]), &LENIENT),
            ScimType::InvalidValue,
            "one manager",
        );
    }

    #[test]
    fn manager_must_be_an_object_when_strict() {
        let path = format!("attribute \"{ENTERPRISE}:manager\" must be an object");
        assert_error(manager(json!("id"), &STRICT), ScimType::InvalidValue, &path);
        assert_error(manager(json!([{"value": "id"}]), &STRICT), ScimType::InvalidValue, &path);
        let tol = Tolerances { manager_any_shape: false, ..LENIENT };
        assert_error(manager(json!("id"), &tol), ScimType::InvalidValue, &path);
        // null is unassigned in every mode (RFC 7643 §2.5).
        assert_eq!(
            manager(json!(null), &STRICT).unwrap().doc[ENTERPRISE],
            json!({"department": "Ops"})
        );
    }

    // --- primary ----------------------------------------------------------------------------------

    #[test]
    fn several_primaries_are_kept_unless_strict() {
        let extra = json!({"emails": [
            {"value": "a@b.c", "primary": true},
            {"value": "d@e.f", "primary": true}
        ]});
        let n = user(with(extra.clone())).unwrap();
        assert_eq!(n.doc["emails"], extra["emails"]);
        assert_error(strict_user(with(extra)), ScimType::InvalidValue, "more than one primary");
        let one = json!({"emails": [{"value": "a@b.c", "primary": true}, {"value": "d@e.f", "primary": false}]});
        assert!(strict_user(with(one)).is_ok());
    }

    // --- PATCH engine round trip ------------------------------------------------------------------

    #[test]
    fn normalizing_a_normalized_doc_changes_nothing() {
        let mut body = rfc_full_user();
        body[ENTERPRISE] = json!({"department": "Ops", "manager": {"value": "m1"}});
        let first = user(body).unwrap();
        for tol in [LENIENT, STRICT] {
            let again = normalize_doc(ResourceKind::User, &first.doc, &tol).unwrap();
            assert_eq!(again.doc, first.doc);
            assert!(again.ignored.is_empty());
        }
    }

    // --- render -----------------------------------------------------------------------------------

    fn meta() -> Meta {
        Meta {
            resource_type: "User",
            created: "2010-01-23T04:56:22Z".into(),
            last_modified: "2011-05-13T04:42:34Z".into(),
            location: "https://example.com/v2/Users/2819c223".into(),
            version: "W/\"3\"".into(),
        }
    }

    #[test]
    fn render_adds_schemas_id_and_meta() {
        let doc = json!({"userName": "bjensen", "active": true});
        let out = render(ResourceKind::User, "2819c223", &doc, &meta());
        assert_eq!(
            out,
            json!({
                "schemas": [USER_URN],
                "id": "2819c223",
                "userName": "bjensen",
                "active": true,
                "meta": {
                    "resourceType": "User",
                    "created": "2010-01-23T04:56:22Z",
                    "lastModified": "2011-05-13T04:42:34Z",
                    "location": "https://example.com/v2/Users/2819c223",
                    "version": "W/\"3\""
                }
            })
        );
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys.first().map(|k| k.as_str()), Some("schemas"));
        assert_eq!(keys.last().map(|k| k.as_str()), Some("meta"));
    }

    #[test]
    fn render_lists_present_extensions_only() {
        let doc = json!({"userName": "bjensen", ENTERPRISE: {"department": "Ops"}});
        let out = render(ResourceKind::User, "1", &doc, &meta());
        assert_eq!(out["schemas"], json!([USER_URN, ENTERPRISE]));
        assert_eq!(out[ENTERPRISE]["department"], "Ops");
    }

    #[test]
    fn render_never_lets_the_doc_shadow_server_fields() {
        let doc = json!({"id": "evil", "meta": {}, "schemas": [], "displayName": "G"});
        let m = Meta { resource_type: "Group", version: String::new(), ..meta() };
        let out = render(ResourceKind::Group, "g1", &doc, &m);
        assert_eq!(out["id"], "g1");
        assert_eq!(out["schemas"], json!([GROUP_URN]));
        assert_eq!(out["meta"]["resourceType"], "Group");
        assert!(out["meta"].get("version").is_none(), "an empty version is left out");
    }

    #[test]
    fn member_type_serializes_as_the_rfc_spelling() {
        assert_eq!(serde_json::to_value(MemberType::User).unwrap(), json!("User"));
        assert_eq!(
            serde_json::from_value::<MemberType>(json!("Group")).unwrap(),
            MemberType::Group
        );
    }
}
