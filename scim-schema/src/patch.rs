//! The PATCH engine (RFC 7644 §3.5.2), with the client deviations of
//! `shared/reference/scim-and-idp-clients.md` §2.6 behind [`Tolerances`].
//!
//! [`parse_patch_request`] turns a PatchOp body into [`PatchOperation`]s; [`apply_patch`] applies
//! them to the stored document of one resource (no `id`, `meta`, `schemas`, `groups`, `members`
//! or `password`; extension attributes under their URN key). Group membership never touches the
//! document: operations on `members` become [`MemberChange`]s that the server applies in SQL, so
//! a 50,000-member group is never loaded.
//!
//! Decisions where the RFC is silent or unhelpful:
//! - `remove` with a `value` on a multi-valued attribute (`members` included) removes only the
//!   listed values when `remove_member_values` is on. Strictly (RFC) the value is ignored and the
//!   whole attribute goes; since a client sending a value clearly meant *some* values, strict
//!   mode rejects such a request with `invalidValue` instead of silently removing everything.
//! - A filtered `remove` that matches nothing is a no-op when `filtered_path_creates` is on
//!   (removal is idempotent for the IdPs); strict mode answers `noTarget`.
//! - A filtered `replace` replaces each matching element with the value (the RFC's address
//!   example); a filtered `add` merges the value into each matching element.
//! - A path naming a sub-attribute of a multi-valued attribute without a filter (`emails.type`)
//!   addresses that sub-attribute in every element.
//! - Adding an element that is already present (same `value`, and same `type` if given; for
//!   elements without `value`, all given sub-attributes equal) merges into it instead of
//!   appending a duplicate.
//! - `manager` is replaced as a unit by `add`/`replace`: its `value` and `$ref` describe one
//!   reference, and merging would leave an old `$ref` next to a new `value`.
//! - `value: null` means unassigned (RFC 7643 §2.5): `replace` with null unsets, `add` with null
//!   adds nothing.
//! - Removing a required attribute (or making it empty) is `mutability` (RFC 7644 §3.5.2.2).
//! - Unknown attributes are `invalidPath`, or skipped and reported in
//!   [`PatchOutcome::ignored`] with `ignore_unknown`. `id`, `meta` and `schemas` inside a no-path
//!   value are skipped silently (clients echo the resource back, e.g. Okta's group rename);
//!   other readOnly attributes there are skipped and reported. A *path* naming a readOnly
//!   attribute is `mutability`.
//! - `password` is accepted and dropped (AWS has no passwords); it is reported in `ignored`.
//! - On `members`, only the whole attribute (`add`, `remove`, `replace`) and a filtered
//!   `remove` are supported; anything else (`replace members[…]`, `members.value`) is
//!   `invalidPath`.

use serde_json::{Map, Value};

use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::filter::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::filter::eval::{element_matches, get_ci, is_present};
use crate::filter::parser::parse_patch_path;
use crate::resource::{MemberRef, MemberType, normalize_doc};
use crate::schema::{AttrType, AttributeDef, Mutability, ResourceKind};

pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

type Object = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchOpKind {
    Add,
    Remove,
    Replace,
}

impl PatchOpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
        }
    }
}

/// One element of `Operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: PatchOpKind,
    pub path: Option<PatchPath>,
    /// `None` when the operation has no `value` member; `Some(Value::Null)` for `"value": null`.
    pub value: Option<Value>,
}

/// A change to a Group's membership, applied by the server's store.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberChange {
    /// Add members (duplicates of existing members are no-ops, by the store).
    Add(Vec<MemberRef>),
    /// Remove these member ids (ids that are not members are no-ops).
    Remove(Vec<String>),
    /// `remove` path `members` without a value.
    RemoveAll,
    /// `remove` path `members[<filter>]`: the store translates the filter over the membership
    /// table (sub-attributes `value`, `type`, `display`, `$ref`).
    RemoveWhere(Filter),
    /// `replace` path `members` (or a no-path `replace` whose value has `members`); `[]`
    /// empties the group (Okta "Push now").
    ReplaceAll(Vec<MemberRef>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// False when the patched document equals the original, so the server can keep
    /// `lastModified` and the version (RFC 7644 §3.5.2: adding a present value changes nothing).
    pub doc_changed: bool,
    pub member_changes: Vec<MemberChange>,
    /// Attributes that were dropped: unknown ones (with `ignore_unknown`), readOnly ones inside
    /// a no-path value, `password`, and whatever [`normalize_doc`] dropped.
    pub ignored: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Parsing the PatchOp message
// ---------------------------------------------------------------------------------------------

/// Parse a PatchOp body (RFC 7644 §3.5.2).
///
/// Errors: not an object, `schemas` without [`PATCH_OP_URN`], `Operations` missing or not an
/// array, an operation without a valid `op` → `invalidSyntax`; an empty `Operations` →
/// `invalidValue` (a no-op with `empty_operations`); a malformed `path` → `invalidPath`;
/// `remove` without a path → `noTarget`; `add`/`replace` without a value → `invalidValue`.
/// A `path` that is null or blank counts as absent. With `op_any_case`, `op` values and the
/// member names `Operations`, `op`, `path`, `value` may be in any case.
pub fn parse_patch_request(
    body: &Value,
    tol: &Tolerances,
) -> Result<Vec<PatchOperation>, ScimError> {
    let Some(obj) = body.as_object() else {
        return Err(ScimError::invalid_syntax("a PatchOp body must be a JSON object"));
    };
    check_message_schema(obj, tol)?;
    let operations = match member(obj, "Operations", tol.op_any_case) {
        Some(Value::Array(ops)) => ops,
        Some(_) => return Err(ScimError::invalid_syntax("\"Operations\" must be an array")),
        None => return Err(ScimError::invalid_syntax("a PatchOp needs \"Operations\"")),
    };
    if operations.is_empty() && !tol.empty_operations {
        return Err(ScimError::invalid_value(
            "\"Operations\" must contain at least one operation (RFC 7644 §3.5.2)",
        ));
    }
    operations
        .iter()
        .enumerate()
        .map(|(i, op)| parse_operation(op, tol).map_err(|e| at_operation(e, i)))
        .collect()
}

fn check_message_schema(obj: &Object, tol: &Tolerances) -> Result<(), ScimError> {
    let listed = match member(obj, "schemas", tol.op_any_case) {
        Some(Value::Array(schemas)) => {
            schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP_URN)))
        }
        _ => false,
    };
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_syntax(format!("\"schemas\" must contain \"{PATCH_OP_URN}\"")))
    }
}

fn parse_operation(value: &Value, tol: &Tolerances) -> Result<PatchOperation, ScimError> {
    let Some(obj) = value.as_object() else {
        return Err(ScimError::invalid_syntax("each operation must be a JSON object"));
    };
    let any_case = tol.op_any_case;
    let op = match member(obj, "op", any_case) {
        Some(Value::String(s)) => parse_op_kind(s, tol)?,
        Some(_) => return Err(ScimError::invalid_syntax("\"op\" must be a string")),
        None => return Err(ScimError::invalid_syntax("an operation needs \"op\"")),
    };
    let path = match member(obj, "path", any_case) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_patch_path(s, tol)?),
        Some(_) => return Err(ScimError::invalid_path("\"path\" must be a string")),
    };
    let value = member(obj, "value", any_case).cloned();
    match (op, &path, &value) {
        (PatchOpKind::Remove, None, _) => {
            Err(ScimError::no_target("\"remove\" needs a \"path\" (RFC 7644 §3.5.2.2)"))
        }
        (PatchOpKind::Add | PatchOpKind::Replace, _, None) => {
            Err(ScimError::invalid_value(format!("\"{}\" needs a \"value\"", op.as_str())))
        }
        _ => Ok(PatchOperation { op, path, value }),
    }
}

fn parse_op_kind(s: &str, tol: &Tolerances) -> Result<PatchOpKind, ScimError> {
    let kinds = [PatchOpKind::Add, PatchOpKind::Remove, PatchOpKind::Replace];
    let exact = kinds.iter().find(|k| k.as_str() == s);
    let found = exact.or_else(|| {
        // Entra sends `Add`, `Replace`, `Remove` (reference §2.2).
        if tol.op_any_case {
            kinds.iter().find(|k| k.as_str().eq_ignore_ascii_case(s))
        } else {
            None
        }
    });
    found.copied().ok_or_else(|| {
        ScimError::invalid_syntax(format!(
            "unknown op \"{s}\": expected \"add\", \"remove\" or \"replace\""
        ))
    })
}

/// A member of a message object, by exact name or, when `any_case`, case-insensitively.
fn member<'a>(obj: &'a Object, name: &str, any_case: bool) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        if any_case {
            obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
        } else {
            None
        }
    })
}

/// Prefix an error's detail with the failing operation's index, for the client's sake.
fn at_operation(error: ScimError, index: usize) -> ScimError {
    ScimError { detail: format!("Operations[{index}]: {}", error.detail), ..error }
}

// ---------------------------------------------------------------------------------------------
// Applying operations
// ---------------------------------------------------------------------------------------------

/// Apply `ops` in order to `doc`, the stored document of one resource.
///
/// Atomic: the operations run on a copy, and `doc` is only replaced (by the re-validated,
/// normalised result of [`normalize_doc`]) when all of them succeed and the result differs.
/// For Groups every operation on `members` becomes a [`MemberChange`] instead.
pub fn apply_patch(
    kind: ResourceKind,
    doc: &mut Value,
    ops: &[PatchOperation],
    tol: &Tolerances,
) -> Result<PatchOutcome, ScimError> {
    let root = doc.as_object().cloned().unwrap_or_default();
    let mut engine =
        Engine { kind, tol: *tol, root, member_changes: Vec::new(), ignored: Vec::new() };
    for (i, op) in ops.iter().enumerate() {
        engine.apply(op).map_err(|e| at_operation(e, i))?;
    }
    let Engine { root, member_changes, mut ignored, .. } = engine;
    check_required_kept(kind, doc, &root)?;
    check_immutable_kept(kind, doc, &root)?;
    let normalized = normalize_doc(kind, &Value::Object(root), tol)?;
    ignored.extend(normalized.ignored);
    let doc_changed = normalized.doc != *doc;
    if doc_changed {
        *doc = normalized.doc;
    }
    Ok(PatchOutcome { doc_changed, member_changes, ignored })
}

/// Where an operation came from: its `path`, or a key of a no-path (or whole-extension) value.
/// A readOnly attribute is an error in a path but skipped in a value, where clients echo
/// server-assigned attributes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Path,
    ValueKey,
}

/// What a path designates.
enum Target<'p> {
    /// Nothing to do (unknown attribute tolerated, `password`, readOnly inside a value).
    Skip,
    /// A Group's `members`.
    Members(&'static AttributeDef),
    /// A whole extension object (`urn:…:enterprise:2.0:User`).
    Extension(&'static str),
    Attr(AttrTarget<'p>),
}

struct AttrTarget<'p> {
    /// The extension URN the attribute lives under; `None` for the core schema.
    extension: Option<&'static str>,
    attr: &'static AttributeDef,
    /// `name.givenName`, `emails.value` or the `value` of `emails[type eq "work"].value`.
    sub: Option<&'static AttributeDef>,
    filter: Option<&'p Filter>,
}

struct Engine {
    kind: ResourceKind,
    tol: Tolerances,
    root: Object,
    member_changes: Vec<MemberChange>,
    ignored: Vec<String>,
}

impl Engine {
    fn apply(&mut self, op: &PatchOperation) -> Result<(), ScimError> {
        match &op.path {
            None if op.op == PatchOpKind::Remove => {
                Err(ScimError::no_target("\"remove\" needs a \"path\" (RFC 7644 §3.5.2.2)"))
            }
            None => self.apply_no_path(op.op, op.value.as_ref()),
            Some(path) => self.apply_path(op.op, path, op.value.as_ref(), Origin::Path),
        }
    }

    /// `{"op":"replace","value":{"active":false}}`: each key is an attribute (or, with
    /// `dotted_patch_keys`, a path such as `name.givenName`).
    fn apply_no_path(&mut self, op: PatchOpKind, value: Option<&Value>) -> Result<(), ScimError> {
        match required(value, op)? {
            Value::Object(fields) => {
                for (key, v) in fields {
                    self.apply_value_key(op, None, key, v)?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "\"{}\" without a path needs an object of attributes as its value",
                op.as_str()
            ))),
        }
    }

    /// One key of a no-path value (`extension` = None) or of a whole-extension value.
    fn apply_value_key(
        &mut self,
        op: PatchOpKind,
        extension: Option<&'static str>,
        key: &str,
        value: &Value,
    ) -> Result<(), ScimError> {
        if extension.is_none() {
            if ["id", "meta", "schemas"].iter().any(|n| n.eq_ignore_ascii_case(key)) {
                return Ok(());
            }
            if let Some(ext) = self.kind.extension(key) {
                return self.extension_op(op, ext.id, Some(value));
            }
        }
        match self.value_key_path(key, extension)? {
            Some(path) => self.apply_path(op, &path, Some(value), Origin::ValueKey),
            None => Ok(()),
        }
    }

    /// The path a value key stands for; `None` when it is skipped.
    fn value_key_path(
        &mut self,
        key: &str,
        extension: Option<&'static str>,
    ) -> Result<Option<PatchPath>, ScimError> {
        let plain = !key.contains(['.', ':', '[']);
        let mut path = if plain || !self.tol.dotted_patch_keys {
            // Strictly, `name.givenName` is no attribute name; resolving it fails below.
            PatchPath { attr: AttrPath::new(key), filter: None, filter_sub_attr: None }
        } else {
            match parse_patch_path(key, &self.tol) {
                Ok(path) => path,
                Err(_) if self.tol.ignore_unknown => {
                    self.ignored.push(key.to_owned());
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        };
        if path.attr.urn.is_none() {
            path.attr.urn = extension.map(str::to_owned);
        }
        Ok(Some(path))
    }

    fn apply_path(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        value: Option<&Value>,
        origin: Origin,
    ) -> Result<(), ScimError> {
        match self.target(path, origin)? {
            Target::Skip => Ok(()),
            Target::Members(attr) => self.members_op(op, path, attr, value),
            Target::Extension(urn) => self.extension_op(op, urn, value),
            Target::Attr(target) => self.attr_op(op, &target, value),
        }
    }

    fn target<'p>(&mut self, path: &'p PatchPath, origin: Origin) -> Result<Target<'p>, ScimError> {
        let label = path_label(&path.attr);
        if let Some(urn) = self.whole_extension(&path.attr) {
            if path.filter.is_some() || path.filter_sub_attr.is_some() {
                return Err(ScimError::invalid_path(format!("{label} is not multi-valued")));
            }
            return Ok(Target::Extension(urn));
        }
        let Some(resolved) = self.kind.resolve(&path.attr) else {
            return self.unknown(label);
        };
        let filter_sub = match &path.filter_sub_attr {
            None => None,
            Some(name) => match resolved.attr.sub_attribute(name) {
                Some(sub) => Some(sub),
                None => return self.unknown(format!("{label}.{name}")),
            },
        };
        if self.kind == ResourceKind::Group
            && resolved.extension.is_none()
            && resolved.attr.name == "members"
        {
            return Ok(Target::Members(resolved.attr));
        }
        let sub = resolved.sub.or(filter_sub);
        let mutability =
            |m: Mutability| resolved.attr.mutability == m || sub.is_some_and(|s| s.mutability == m);
        if mutability(Mutability::WriteOnly) {
            // `password`: accepted, never stored.
            self.ignored.push(label);
            return Ok(Target::Skip);
        }
        if mutability(Mutability::ReadOnly) {
            return match origin {
                Origin::Path => Err(ScimError::mutability(format!("{label} is readOnly"))),
                Origin::ValueKey => {
                    if !resolved.attr.name.eq_ignore_ascii_case("id")
                        && !resolved.attr.name.eq_ignore_ascii_case("meta")
                    {
                        self.ignored.push(label);
                    }
                    Ok(Target::Skip)
                }
            };
        }
        Ok(Target::Attr(AttrTarget {
            extension: resolved.extension,
            attr: resolved.attr,
            sub,
            filter: path.filter.as_ref(),
        }))
    }

    /// The extension a path names as a whole. The parser splits a URN at its last `:`, so
    /// `urn:…:enterprise:2.0:User` arrives as urn `urn:…:enterprise:2.0`, name `User`.
    fn whole_extension(&self, path: &AttrPath) -> Option<&'static str> {
        let urn = path.urn.as_deref()?;
        if path.sub_attr.is_some() {
            return None;
        }
        self.kind.extension(&format!("{urn}:{}", path.name)).map(|ext| ext.id)
    }

    fn unknown<'p>(&mut self, label: String) -> Result<Target<'p>, ScimError> {
        if self.tol.ignore_unknown {
            self.ignored.push(label);
            Ok(Target::Skip)
        } else {
            Err(ScimError::invalid_path(format!("unknown attribute \"{label}\"")))
        }
    }

    /// add/replace merge an object into the extension (like a complex attribute, unnamed
    /// attributes stay); remove drops the whole extension.
    fn extension_op(
        &mut self,
        op: PatchOpKind,
        urn: &'static str,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if op == PatchOpKind::Remove {
            remove_ci(&mut self.root, urn);
            return Ok(());
        }
        match required(value, op)? {
            Value::Null => {
                if op == PatchOpKind::Replace {
                    remove_ci(&mut self.root, urn);
                }
                Ok(())
            }
            Value::Object(fields) => {
                for (key, v) in fields {
                    self.apply_value_key(op, Some(urn), key, v)?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!("the value for {urn} must be an object"))),
        }
    }

    fn attr_op(
        &mut self,
        op: PatchOpKind,
        target: &AttrTarget<'_>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let tol = self.tol;
        let attr = target.attr;
        self.with_container(target.extension, |obj| {
            if attr.multi_valued {
                multi_op(obj, target, op, value, &tol)
            } else if target.filter.is_some() {
                Err(ScimError::invalid_path(format!(
                    "{} is single-valued: a value filter needs a multi-valued attribute",
                    attr.name
                )))
            } else if let Some(sub) = target.sub {
                single_sub_op(obj, attr, sub, op, value, &tol)
            } else {
                single_op(obj, attr, op, value, &tol)
            }
        })
    }

    /// Run `f` on the object holding the attribute: the root, or the extension object (created
    /// on demand, dropped again when left empty).
    fn with_container<R>(
        &mut self,
        extension: Option<&'static str>,
        f: impl FnOnce(&mut Object) -> R,
    ) -> R {
        match extension {
            None => f(&mut self.root),
            Some(urn) => {
                let mut container = take_object(&mut self.root, urn);
                let result = f(&mut container);
                put_object(&mut self.root, urn, container);
                result
            }
        }
    }

    fn members_op(
        &mut self,
        op: PatchOpKind,
        path: &PatchPath,
        attr: &AttributeDef,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if path.attr.sub_attr.is_some() || path.filter_sub_attr.is_some() {
            return Err(ScimError::invalid_path(
                "members can only be added, removed or replaced as a whole, not by sub-attribute",
            ));
        }
        let change = match (&path.filter, op) {
            (Some(filter), PatchOpKind::Remove) => member_filter_removal(filter, attr)?,
            (Some(_), _) => {
                return Err(ScimError::invalid_path(
                    "a filtered members path is only supported with \"remove\"",
                ));
            }
            (None, PatchOpKind::Add) => {
                let refs = parse_members(required(value, op)?, &self.tol)?;
                if refs.is_empty() {
                    return Ok(());
                }
                MemberChange::Add(refs)
            }
            (None, PatchOpKind::Replace) => {
                MemberChange::ReplaceAll(parse_members(required(value, op)?, &self.tol)?)
            }
            (None, PatchOpKind::Remove) => match value {
                None | Some(Value::Null) => MemberChange::RemoveAll,
                Some(listed) if self.tol.remove_member_values => {
                    let ids: Vec<String> =
                        parse_members(listed, &self.tol)?.into_iter().map(|m| m.value).collect();
                    if ids.is_empty() {
                        return Ok(());
                    }
                    MemberChange::Remove(ids)
                }
                Some(_) => return Err(remove_with_value_error("members")),
            },
        };
        self.member_changes.push(change);
        Ok(())
    }
}

/// `remove` on a multi-valued attribute with a value: strictly the value is ignored and ALL
/// values go (RFC 7644 §3.5.2.2). Clients sending a value meant only those (Entra, authentik),
/// so rather than lose data we refuse.
fn remove_with_value_error(name: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "\"remove\" on {name} with a \"value\" would remove all of its values (RFC 7644 \
         §3.5.2.2); select the values with a filter, e.g. {name}[value eq \"…\"]"
    ))
}

/// The `value` of an add/replace, which `parse_patch_request` guarantees but hand-built
/// operations may lack.
fn required(value: Option<&Value>, op: PatchOpKind) -> Result<&Value, ScimError> {
    value.ok_or_else(|| ScimError::invalid_value(format!("\"{}\" needs a \"value\"", op.as_str())))
}

fn path_label(path: &AttrPath) -> String {
    let mut label = match &path.urn {
        Some(urn) => format!("{urn}:{}", path.name),
        None => path.name.clone(),
    };
    if let Some(sub) = &path.sub_attr {
        label.push('.');
        label.push_str(sub);
    }
    label
}

// --- single-valued attributes -----------------------------------------------------------------

fn single_op(
    obj: &mut Object,
    attr: &AttributeDef,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    if op == PatchOpKind::Remove {
        remove_ci(obj, attr.name);
        return Ok(());
    }
    let value = coerce(attr, required(value, op)?, tol);
    if attr.attr_type != AttrType::Complex || is_manager(attr) {
        assign(obj, attr.name, op, value);
        return Ok(());
    }
    match value {
        Value::Null => {
            assign(obj, attr.name, op, Value::Null);
            Ok(())
        }
        // RFC 7644 §3.5.2.1/§3.5.2.3: both merge; unnamed sub-attributes stay.
        Value::Object(fields) => {
            let mut current = take_object(obj, attr.name);
            for (key, v) in fields {
                assign(&mut current, &key, op, v);
            }
            put_object(obj, attr.name, current);
            Ok(())
        }
        _ => Err(ScimError::invalid_value(format!(
            "{} is complex: the value must be an object",
            attr.name
        ))),
    }
}

/// `name.givenName`: set or unset one sub-attribute, creating the parent when needed.
fn single_sub_op(
    obj: &mut Object,
    attr: &AttributeDef,
    sub: &AttributeDef,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let value = match op {
        PatchOpKind::Remove => None,
        _ => Some(coerce(sub, required(value, op)?, tol)),
    };
    let mut parent = take_object(obj, attr.name);
    match value {
        None => {
            remove_ci(&mut parent, sub.name);
        }
        Some(v) => assign(&mut parent, sub.name, op, v),
    }
    put_object(obj, attr.name, parent);
    Ok(())
}

/// Set a member, or for a null value: `replace` unsets, `add` adds nothing.
fn assign(obj: &mut Object, name: &str, op: PatchOpKind, value: Value) {
    if !value.is_null() {
        set_ci(obj, name, value);
    } else if op == PatchOpKind::Replace {
        remove_ci(obj, name);
    }
}

// --- multi-valued attributes ------------------------------------------------------------------

fn multi_op(
    obj: &mut Object,
    target: &AttrTarget<'_>,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let mut items = take_array(obj, target.attr.name);
    let result = if target.filter.is_none() && target.sub.is_none() {
        whole_set_op(&mut items, target.attr, op, value, tol)
    } else {
        selected_op(&mut items, target, op, value, tol)
    };
    put_array(obj, target.attr.name, items);
    result
}

/// `emails` without a filter: add appends, replace replaces the set, remove removes all.
fn whole_set_op(
    items: &mut Vec<Value>,
    attr: &AttributeDef,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    match op {
        PatchOpKind::Add => {
            let mut touched = Vec::new();
            for new in coerce_values(attr, required(value, op)?, tol)? {
                if is_present(&new) {
                    touched.push(add_element(items, attr, new));
                }
            }
            settle_primary(items, &touched);
        }
        PatchOpKind::Replace => {
            let new = coerce_values(attr, required(value, op)?, tol)?;
            *items = new.into_iter().filter(is_present).collect();
        }
        PatchOpKind::Remove => match value {
            None | Some(Value::Null) => items.clear(),
            Some(listed) if tol.remove_member_values => {
                for wanted in coerce_values(attr, listed, tol)? {
                    items.retain(|el| !same_value(el, &wanted, attr));
                }
            }
            Some(_) => return Err(remove_with_value_error(attr.name)),
        },
    }
    Ok(())
}

/// Append `new` unless the same value is present, in which case it is merged into that
/// element. Returns the element's index.
fn add_element(items: &mut Vec<Value>, attr: &AttributeDef, new: Value) -> usize {
    let existing = items.iter().position(|el| duplicate_of(el, &new, attr));
    match (existing, new) {
        (Some(i), Value::Object(fields)) => {
            if let Some(el) = items[i].as_object_mut() {
                for (key, v) in fields {
                    // Keep the stored spelling of what matched (`BABS@jensen.org` vs
                    // `babs@jensen.org`); only genuinely new sub-values are written.
                    if !field(el, &key).is_some_and(|old| strings_equal(old, &v, false)) {
                        set_ci(el, &key, v);
                    }
                }
            }
            i
        }
        (Some(i), _) => i,
        (None, new) => {
            items.push(new);
            items.len() - 1
        }
    }
}

/// Whether `new` is a value already in `el`: the same `value` (and `type`, when `new` has one);
/// for elements without `value`, every given sub-attribute equal.
fn duplicate_of(el: &Value, new: &Value, attr: &AttributeDef) -> bool {
    let Some(new_obj) = new.as_object() else { return el == new };
    if field(new_obj, "value").is_none() {
        return new_obj.iter().all(|(k, v)| get_ci(el, k) == Some(v));
    }
    let same_type = match (field(new_obj, "type"), get_ci(el, "type")) {
        (None, _) => true,
        (Some(a), Some(b)) => strings_equal(a, b, false),
        (Some(_), None) => false,
    };
    same_type && same_value(el, new, attr)
}

/// Whether `el` holds the value `wanted` names: by the `value` sub-attribute (honouring its
/// caseExact) when `wanted` has one or is a bare string, else by equality of what `wanted` gives.
fn same_value(el: &Value, wanted: &Value, attr: &AttributeDef) -> bool {
    let case_exact = attr.sub_attribute("value").map_or(attr.case_exact, |d| d.case_exact);
    let wanted_value = match wanted {
        Value::Object(obj) => field(obj, "value"),
        scalar => Some(scalar),
    };
    match (wanted_value, el) {
        (Some(w), Value::Object(_)) => {
            get_ci(el, "value").is_some_and(|v| strings_equal(v, w, case_exact))
        }
        (Some(w), scalar) => strings_equal(scalar, w, case_exact),
        (None, _) => {
            wanted.as_object().is_some_and(|o| o.iter().all(|(k, v)| get_ci(el, k) == Some(v)))
        }
    }
}

fn strings_equal(a: &Value, b: &Value, case_exact: bool) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) if !case_exact => a.to_lowercase() == b.to_lowercase(),
        _ => a == b,
    }
}

/// `emails[type eq "work"]`, `emails[type eq "work"].value` and `emails.value`.
fn selected_op(
    items: &mut Vec<Value>,
    target: &AttrTarget<'_>,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let attr = target.attr;
    let matched: Vec<usize> = (0..items.len())
        .filter(|&i| target.filter.is_none_or(|f| element_matches(f, &items[i], attr)))
        .collect();
    if matched.is_empty() {
        return create_or_fail(items, target, op, value, tol);
    }
    let new = match op {
        PatchOpKind::Remove => Value::Null,
        _ => selected_value(target, required(value, op)?, tol)?,
    };
    match (op, target.sub) {
        (PatchOpKind::Add, _) if new.is_null() => {}
        (PatchOpKind::Remove | PatchOpKind::Replace, None) if new.is_null() => {
            remove_indices(items, &matched);
        }
        (PatchOpKind::Remove | PatchOpKind::Replace, Some(sub)) if new.is_null() => {
            for &i in &matched {
                if let Some(el) = items[i].as_object_mut() {
                    remove_ci(el, sub.name);
                }
            }
            items.retain(is_present);
        }
        (_, sub) => {
            for &i in &matched {
                update_element(&mut items[i], sub, op, &new);
            }
            settle_primary(items, &matched);
        }
    }
    Ok(())
}

/// The value for the selected elements (or their sub-attribute), coerced.
fn selected_value(
    target: &AttrTarget<'_>,
    value: &Value,
    tol: &Tolerances,
) -> Result<Value, ScimError> {
    if let Some(sub) = target.sub {
        return Ok(coerce(sub, value, tol));
    }
    let attr = target.attr;
    let single = match value {
        Value::Array(items) if items.len() == 1 && tol.single_value_as_array => &items[0],
        Value::Array(_) => {
            return Err(ScimError::invalid_value(format!(
                "a filtered {} path selects single values: the value must not be an array",
                attr.name
            )));
        }
        v => v,
    };
    let coerced = coerce(attr, single, tol);
    if attr.attr_type == AttrType::Complex && !(coerced.is_object() || coerced.is_null()) {
        return Err(ScimError::invalid_value(format!(
            "the elements of {} are complex: the value must be an object",
            attr.name
        )));
    }
    Ok(coerced)
}

fn update_element(el: &mut Value, sub: Option<&AttributeDef>, op: PatchOpKind, new: &Value) {
    match (sub, el.as_object_mut(), new) {
        (Some(sub), Some(obj), _) => set_ci(obj, sub.name, new.clone()),
        (None, Some(obj), Value::Object(fields)) if op == PatchOpKind::Add => {
            for (key, v) in fields {
                assign(obj, key, op, v.clone());
            }
        }
        // A sub-attribute of a simple value cannot be set; nothing to do.
        (Some(_), None, _) => {}
        _ => *el = new.clone(),
    }
}

/// No element matched. A filtered path answers `noTarget` unless `filtered_path_creates`, in
/// which case add/replace create an element from the filter's `eq` terms plus the value (Entra,
/// reference §2.2), so that successive adds on `addresses[type eq "work"].locality` and
/// `.region` build one element. Without a filter (`emails.value` on no emails) add/replace
/// create the element in every mode (RFC 7644 §3.5.2.3: replacing a missing target adds it).
fn create_or_fail(
    items: &mut Vec<Value>,
    target: &AttrTarget<'_>,
    op: PatchOpKind,
    value: Option<&Value>,
    tol: &Tolerances,
) -> Result<(), ScimError> {
    let attr = target.attr;
    if target.filter.is_some() && !tol.filtered_path_creates {
        return Err(ScimError::no_target(format!("no value of {} matches the filter", attr.name)));
    }
    if op == PatchOpKind::Remove {
        return Ok(());
    }
    let new = selected_value(target, required(value, op)?, tol)?;
    if new.is_null() {
        return Ok(());
    }
    if attr.sub_attributes.is_empty() {
        items.push(new);
    } else {
        let mut element = target.filter.map(|f| seed_from_filter(f, attr, tol)).unwrap_or_default();
        match (target.sub, new) {
            (Some(sub), v) => set_ci(&mut element, sub.name, v),
            (None, Value::Object(fields)) => {
                for (key, v) in fields {
                    assign(&mut element, &key, PatchOpKind::Add, v);
                }
            }
            (None, _) => {}
        }
        items.push(Value::Object(element));
    }
    let created = items.len() - 1;
    settle_primary(items, &[created]);
    Ok(())
}

/// The sub-attribute values a filter pins with `eq` (through `and` only: an `or` or `not` does
/// not say what the element holds).
fn seed_from_filter(filter: &Filter, attr: &AttributeDef, tol: &Tolerances) -> Object {
    let mut seed = Object::new();
    collect_eq_terms(filter, attr, tol, &mut seed);
    seed
}

fn collect_eq_terms(filter: &Filter, attr: &AttributeDef, tol: &Tolerances, seed: &mut Object) {
    match filter {
        Filter::And(a, b) => {
            collect_eq_terms(a, attr, tol, seed);
            collect_eq_terms(b, attr, tol, seed);
        }
        Filter::Compare(path, CompareOp::Eq, comp)
            if path.urn.is_none() && path.sub_attr.is_none() =>
        {
            let Some(sub) = attr.sub_attribute(&path.name) else { return };
            if sub.mutability == Mutability::ReadOnly {
                return;
            }
            let value = match comp {
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => return,
            };
            set_ci(seed, sub.name, coerce(sub, &value, tol));
        }
        _ => {}
    }
}

fn remove_indices(items: &mut Vec<Value>, indices: &[usize]) {
    let mut i = 0;
    items.retain(|_| {
        let keep = !indices.contains(&i);
        i += 1;
        keep
    });
}

/// RFC 7643 §2.4: `primary: true` appears at most once. When the elements just written include
/// a primary one, the others lose the flag.
fn settle_primary(items: &mut [Value], touched: &[usize]) {
    if !touched.iter().any(|&i| items.get(i).is_some_and(is_primary)) {
        return;
    }
    for (i, el) in items.iter_mut().enumerate() {
        if !touched.contains(&i)
            && is_primary(el)
            && let Some(obj) = el.as_object_mut()
        {
            set_ci(obj, "primary", Value::Bool(false));
        }
    }
}

fn is_primary(el: &Value) -> bool {
    get_ci(el, "primary") == Some(&Value::Bool(true))
}

// --- members ----------------------------------------------------------------------------------

/// `remove members[value eq "a" or value eq "b"]` → `Remove(["a","b"])`; any other filter over
/// the members' sub-attributes → `RemoveWhere`.
fn member_filter_removal(filter: &Filter, attr: &AttributeDef) -> Result<MemberChange, ScimError> {
    check_member_filter(filter, attr)?;
    let mut ids = Vec::new();
    Ok(if value_eq_ids(filter, &mut ids) {
        MemberChange::Remove(ids)
    } else {
        MemberChange::RemoveWhere(filter.clone())
    })
}

/// Every attribute in a members filter must be a sub-attribute of `members`, since the store
/// translates it into SQL over the membership table.
fn check_member_filter(filter: &Filter, attr: &AttributeDef) -> Result<(), ScimError> {
    let check_path = |path: &AttrPath| {
        if path.urn.is_none() && path.sub_attr.is_none() && attr.sub_attribute(&path.name).is_some()
        {
            Ok(())
        } else {
            Err(ScimError::invalid_path(format!(
                "members filters may only use value, type, display and $ref, not {}",
                path_label(path)
            )))
        }
    };
    match filter {
        Filter::Present(path) | Filter::Compare(path, _, _) => check_path(path),
        Filter::ValuePath(path, _) => Err(ScimError::invalid_path(format!(
            "members filters cannot nest a value path ({})",
            path_label(path)
        ))),
        Filter::Not(inner) => check_member_filter(inner, attr),
        Filter::And(a, b) | Filter::Or(a, b) => {
            check_member_filter(a, attr)?;
            check_member_filter(b, attr)
        }
    }
}

/// Whether the filter is `value eq "x"` or an `or` of such; collects the ids.
fn value_eq_ids(filter: &Filter, ids: &mut Vec<String>) -> bool {
    match filter {
        Filter::Compare(path, CompareOp::Eq, comp) if path.name.eq_ignore_ascii_case("value") => {
            match comp {
                CompValue::String(s) => ids.push(s.clone()),
                // An unquoted numeric id (`value eq 42`) parses as a number.
                CompValue::Number(n) => ids.push(n.to_string()),
                CompValue::Bool(_) | CompValue::Null => return false,
            }
            true
        }
        Filter::Or(a, b) => value_eq_ids(a, ids) && value_eq_ids(b, ids),
        _ => false,
    }
}

/// Member objects: `value` (a string) is required; `type` is optional (`User`/`Group`, any
/// case; Okta sends none); `$ref` (may be null) and `display` are ignored.
fn parse_members(value: &Value, tol: &Tolerances) -> Result<Vec<MemberRef>, ScimError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(parse_member).collect(),
        Value::Object(_) if tol.single_value_as_array => Ok(vec![parse_member(value)?]),
        _ => Err(ScimError::invalid_value("members must be an array of {\"value\": id} objects")),
    }
}

fn parse_member(value: &Value) -> Result<MemberRef, ScimError> {
    let id = match get_ci(value, "value") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(ScimError::invalid_value("each member needs a string \"value\" (its id)")),
    };
    let member_type = match get_ci(value, "type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("user") => Some(MemberType::User),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("group") => Some(MemberType::Group),
        Some(other) => {
            return Err(ScimError::invalid_value(format!(
                "member type must be \"User\" or \"Group\", not {other}"
            )));
        }
    };
    Ok(MemberRef { value: id, member_type })
}

// --- coercion ---------------------------------------------------------------------------------

/// Bring a client value into the stored shape where the engine needs it (canonical sub-attribute
/// names, booleans, `manager`). Type validation is left to [`normalize_doc`].
fn coerce(def: &AttributeDef, value: &Value, tol: &Tolerances) -> Value {
    match (def.attr_type, value) {
        (_, Value::Null) => Value::Null,
        (AttrType::Boolean, Value::String(s)) if tol.bool_strings => {
            match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => value.clone(),
            }
        }
        (AttrType::Complex, _) if is_manager(def) && tol.manager_any_shape => {
            coerce_manager(def, value, tol)
        }
        (AttrType::Complex, Value::Object(fields)) => {
            Value::Object(canonical_fields(def, fields, tol))
        }
        _ => value.clone(),
    }
}

/// Entra sends `manager` as `"id"`, `[{"$ref":…,"value":"id"}]` or an object, and removes it
/// with `""` or `{}` (reference §2.2, §2.6 item 6). Empty shapes become null (unassigned).
fn coerce_manager(def: &AttributeDef, value: &Value, tol: &Tolerances) -> Value {
    match value {
        Value::String(s) if s.trim().is_empty() => Value::Null,
        Value::String(s) => {
            let mut obj = Object::new();
            obj.insert("value".to_owned(), Value::String(s.clone()));
            Value::Object(obj)
        }
        Value::Array(items) => match items.as_slice() {
            [] => Value::Null,
            // One level only: a nested array is not a manager.
            [one] if !one.is_array() => coerce_manager(def, one, tol),
            // Several managers: left for normalize_doc to reject.
            _ => value.clone(),
        },
        Value::Object(fields) => {
            let obj = canonical_fields(def, fields, tol);
            if obj.values().any(is_present) { Value::Object(obj) } else { Value::Null }
        }
        other => other.clone(),
    }
}

fn is_manager(def: &AttributeDef) -> bool {
    def.name == "manager" && def.attr_type == AttrType::Complex && !def.multi_valued
}

fn canonical_fields(def: &AttributeDef, fields: &Object, tol: &Tolerances) -> Object {
    fields
        .iter()
        .map(|(key, v)| match def.sub_attribute(key) {
            Some(sub) => (sub.name.to_owned(), coerce(sub, v, tol)),
            None => (key.clone(), v.clone()),
        })
        .collect()
}

/// The values of a multi-valued attribute: an array, or one value with
/// `single_value_as_array`.
fn coerce_values(
    attr: &AttributeDef,
    value: &Value,
    tol: &Tolerances,
) -> Result<Vec<Value>, ScimError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => Ok(items.iter().map(|v| coerce(attr, v, tol)).collect()),
        single if tol.single_value_as_array => Ok(vec![coerce(attr, single, tol)]),
        _ => Err(ScimError::invalid_value(format!(
            "{} is multi-valued: the value must be an array",
            attr.name
        ))),
    }
}

// --- final checks -----------------------------------------------------------------------------

/// RFC 7644 §3.5.2.2: a required attribute that is removed or becomes unassigned is
/// `mutability`.
fn check_required_kept(
    kind: ResourceKind,
    before: &Value,
    after: &Object,
) -> Result<(), ScimError> {
    for (extension, attr) in schema_attributes(kind) {
        if !attr.required {
            continue;
        }
        let had = lookup(before.as_object(), extension, attr.name).is_some_and(is_present);
        let has = lookup(Some(after), extension, attr.name).is_some_and(is_present);
        if had && !has {
            return Err(ScimError::mutability(format!(
                "{} is required and cannot be removed",
                attr.name
            )));
        }
    }
    Ok(())
}

/// RFC 7643 §2.2: an immutable attribute may be set when unassigned, never changed.
fn check_immutable_kept(
    kind: ResourceKind,
    before: &Value,
    after: &Object,
) -> Result<(), ScimError> {
    for (extension, attr) in schema_attributes(kind) {
        let old = lookup(before.as_object(), extension, attr.name);
        let new = lookup(Some(after), extension, attr.name);
        let changed =
            |old: Option<&Value>, new: Option<&Value>| old.is_some_and(is_present) && old != new;
        if attr.mutability == Mutability::Immutable && changed(old, new) {
            return Err(ScimError::mutability(format!("{} is immutable", attr.name)));
        }
        if attr.multi_valued {
            continue;
        }
        for sub in attr.sub_attributes.iter().filter(|s| s.mutability == Mutability::Immutable) {
            let old_sub = old.and_then(|v| get_ci(v, sub.name));
            let new_sub = new.and_then(|v| get_ci(v, sub.name));
            if changed(old_sub, new_sub) {
                return Err(ScimError::mutability(format!(
                    "{}.{} is immutable",
                    attr.name, sub.name
                )));
            }
        }
    }
    Ok(())
}

/// Every top-level attribute of the resource type, with the extension it lives under.
fn schema_attributes(
    kind: ResourceKind,
) -> impl Iterator<Item = (Option<&'static str>, &'static AttributeDef)> {
    let core = kind.core_schema().attributes.iter().map(|a| (None, a));
    let extensions = kind
        .extensions()
        .iter()
        .flat_map(|ext| ext.attributes.iter().map(move |a| (Some(ext.id), a)));
    core.chain(extensions)
}

fn lookup<'a>(root: Option<&'a Object>, extension: Option<&str>, name: &str) -> Option<&'a Value> {
    let root = root?;
    match extension {
        None => field(root, name),
        Some(urn) => field(root, urn)?.as_object().and_then(|ext| field(ext, name)),
    }
}

// --- case-insensitive object access (attribute names, RFC 7643 §2.1) --------------------------

fn field<'a>(obj: &'a Object, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Remove every spelling of `name`; returns the exact spelling's value if any, else another's.
fn remove_ci(obj: &mut Object, name: &str) -> Option<Value> {
    let mut found = obj.shift_remove(name);
    let variants: Vec<String> =
        obj.keys().filter(|k| k.eq_ignore_ascii_case(name)).cloned().collect();
    for key in variants {
        let value = obj.shift_remove(&key);
        if found.is_none() {
            found = value;
        }
    }
    found
}

/// Set `name` (the canonical spelling), dropping other spellings.
fn set_ci(obj: &mut Object, name: &str, value: Value) {
    let variants: Vec<String> =
        obj.keys().filter(|k| *k != name && k.eq_ignore_ascii_case(name)).cloned().collect();
    for key in variants {
        obj.shift_remove(&key);
    }
    obj.insert(name.to_owned(), value);
}

fn take_object(obj: &mut Object, name: &str) -> Object {
    match remove_ci(obj, name) {
        Some(Value::Object(inner)) => inner,
        _ => Object::new(),
    }
}

/// Put a complex value back; an empty one is unassigned (RFC 7643 §2.5) and left out.
fn put_object(obj: &mut Object, name: &str, inner: Object) {
    if !inner.is_empty() {
        obj.insert(name.to_owned(), Value::Object(inner));
    }
}

fn take_array(obj: &mut Object, name: &str) -> Vec<Value> {
    match remove_ci(obj, name) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(single) => vec![single],
    }
}

fn put_array(obj: &mut Object, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        obj.insert(name.to_owned(), Value::Array(items));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::schema::ENTERPRISE_USER_URN;
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_URN;

    fn lenient() -> Tolerances {
        Tolerances::lenient()
    }

    fn strict() -> Tolerances {
        Tolerances::strict()
    }

    fn user() -> Value {
        json!({
            "userName": "bjensen@example.com",
            "externalId": "ext-1",
            "name": {"formatted": "Ms. Barbara J Jensen", "familyName": "Jensen", "givenName": "Barbara"},
            "displayName": "Babs Jensen",
            "active": true,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
            ENT: {
                "employeeNumber": "701984",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        })
    }

    fn bare_user() -> Value {
        json!({"userName": "alice@example.com"})
    }

    fn group() -> Value {
        json!({"displayName": "Tour Guides", "externalId": "g-1"})
    }

    fn body(ops: Value) -> Value {
        json!({"schemas": [PATCH_OP_URN], "Operations": ops})
    }

    /// Parse and apply; returns the patched doc (unchanged on error) and the result.
    fn run(
        kind: ResourceKind,
        doc: &Value,
        ops: Value,
        tol: Tolerances,
    ) -> (Value, Result<PatchOutcome, ScimError>) {
        let mut patched = doc.clone();
        let result = parse_patch_request(&body(ops), &tol)
            .and_then(|ops| apply_patch(kind, &mut patched, &ops, &tol));
        (patched, result)
    }

    fn ok(kind: ResourceKind, doc: &Value, ops: Value, tol: Tolerances) -> (Value, PatchOutcome) {
        let (patched, result) = run(kind, doc, ops, tol);
        match result {
            Ok(outcome) => (patched, outcome),
            Err(e) => panic!("patch failed: {e}"),
        }
    }

    /// Applies and asserts the error's scimType and that the document is untouched.
    fn err(kind: ResourceKind, doc: &Value, ops: Value, tol: Tolerances) -> ScimError {
        let (patched, result) = run(kind, doc, ops, tol);
        assert_eq!(&patched, doc, "a failed patch must leave the document as it was");
        match result {
            Ok(outcome) => panic!("expected an error, got {outcome:?} and {patched}"),
            Err(e) => e,
        }
    }

    fn scim_type(e: &ScimError) -> ScimType {
        e.scim_type.unwrap_or_else(|| panic!("no scimType in {e}"))
    }

    fn member(id: &str) -> MemberRef {
        MemberRef { value: id.to_owned(), member_type: None }
    }

    // --- parse_patch_request ------------------------------------------------------------------

    #[test]
    fn parse_patch_request_reads_rfc_operations() {
        let ops = parse_patch_request(
            &body(json!([
                {"op": "add", "path": "emails", "value": [{"value": "a@b.c"}]},
                {"op": "remove", "path": "members[value eq \"2819c223\"]"},
                {"op": "replace", "value": {"active": false}},
                {"op": "replace", "path": "title", "value": null}
            ])),
            &strict(),
        )
        .unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].op, PatchOpKind::Add);
        assert_eq!(ops[0].path.as_ref().unwrap().attr.name, "emails");
        assert_eq!(ops[1].op, PatchOpKind::Remove);
        assert!(ops[1].path.as_ref().unwrap().filter.is_some());
        assert_eq!(ops[1].value, None);
        assert_eq!(ops[2].path, None);
        assert_eq!(ops[3].value, Some(Value::Null), "an explicit null is kept, not 'no value'");
    }

    #[test]
    fn parse_patch_request_requires_the_patch_op_schema() {
        let no_schema = json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]});
        let e = parse_patch_request(&no_schema, &lenient()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidSyntax);
        let wrong =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []});
        assert_eq!(
            scim_type(&parse_patch_request(&wrong, &lenient()).unwrap_err()),
            ScimType::InvalidSyntax
        );
        assert_eq!(
            scim_type(&parse_patch_request(&json!([]), &lenient()).unwrap_err()),
            ScimType::InvalidSyntax
        );
    }

    #[test]
    fn parse_patch_request_requires_an_operations_array() {
        let missing = json!({"schemas": [PATCH_OP_URN]});
        assert_eq!(
            scim_type(&parse_patch_request(&missing, &lenient()).unwrap_err()),
            ScimType::InvalidSyntax
        );
        let not_array = json!({"schemas": [PATCH_OP_URN], "Operations": {"op": "add"}});
        assert_eq!(
            scim_type(&parse_patch_request(&not_array, &lenient()).unwrap_err()),
            ScimType::InvalidSyntax
        );
    }

    #[test]
    fn empty_operations_is_a_no_op_when_lenient_and_invalid_value_when_strict() {
        // Microsoft SCIM Validator (reference §2.6 item 13).
        assert_eq!(parse_patch_request(&body(json!([])), &lenient()).unwrap(), vec![]);
        let e = parse_patch_request(&body(json!([])), &strict()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
        let (doc, outcome) = ok(ResourceKind::User, &user(), json!([]), lenient());
        assert_eq!(doc, user());
        assert!(!outcome.doc_changed);
    }

    #[test]
    fn op_case_is_tolerated_only_when_lenient() {
        let ops = json!([{"op": "Replace", "path": "displayName", "value": "B"}]);
        assert_eq!(
            parse_patch_request(&body(ops.clone()), &lenient()).unwrap()[0].op,
            PatchOpKind::Replace
        );
        let e = parse_patch_request(&body(ops), &strict()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidSyntax);
        let e = parse_patch_request(&body(json!([{"op": "delete", "path": "title"}])), &lenient())
            .unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidSyntax);
        assert!(e.detail.contains("delete"), "{e}");
    }

    #[test]
    fn operations_member_names_in_any_case_only_when_lenient() {
        let b = json!({"schemas": [PATCH_OP_URN], "operations": [{"Op": "add", "Path": "title", "Value": "x"}]});
        let ops = parse_patch_request(&b, &lenient()).unwrap();
        assert_eq!(ops[0].value, Some(json!("x")));
        assert!(parse_patch_request(&b, &strict()).is_err());
    }

    #[test]
    fn remove_without_path_is_no_target_and_add_without_value_is_invalid_value() {
        let e = parse_patch_request(&body(json!([{"op": "remove"}])), &lenient()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::NoTarget);
        let e = parse_patch_request(&body(json!([{"op": "add", "path": "title"}])), &lenient())
            .unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
        let e = parse_patch_request(&body(json!([{"op": "replace"}])), &lenient()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn malformed_path_is_invalid_path_and_names_the_operation() {
        let ops = json!([
            {"op": "add", "path": "title", "value": "x"},
            {"op": "add", "path": "emails[type eq]", "value": "x"}
        ]);
        let e = parse_patch_request(&body(ops), &lenient()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
        assert!(e.detail.starts_with("Operations[1]"), "{e}");
        let e =
            parse_patch_request(&body(json!([{"op": "add", "path": 3, "value": "x"}])), &lenient())
                .unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
    }

    #[test]
    fn null_or_blank_path_counts_as_absent() {
        let ops = parse_patch_request(
            &body(json!([{"op": "replace", "path": "", "value": {"active": false}},
                         {"op": "replace", "path": null, "value": {"active": false}}])),
            &strict(),
        )
        .unwrap();
        assert!(ops.iter().all(|o| o.path.is_none()));
    }

    // --- users: client shapes -----------------------------------------------------------------

    #[test]
    fn okta_deactivation_is_a_no_path_replace() {
        let ops = json!([{"op": "replace", "value": {"active": false}}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), strict());
        assert_eq!(doc["active"], json!(false));
        assert!(outcome.doc_changed);
        assert!(outcome.member_changes.is_empty());
        // Deactivating again changes nothing, so lastModified stays.
        let (again, outcome) = ok(ResourceKind::User, &doc, ops, strict());
        assert_eq!(again, doc);
        assert!(!outcome.doc_changed);
    }

    #[test]
    fn entra_default_disables_with_a_string_boolean() {
        let ops = json!([{"op": "Replace", "path": "active", "value": "False"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(doc["active"], json!(false));
        // Strict: "Replace" is rejected; with a lower-case op the string is a type error.
        let strict_ops = json!([{"op": "replace", "path": "active", "value": "False"}]);
        let e = err(ResourceKind::User, &user(), strict_ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn entra_flagged_disable_uses_a_real_boolean() {
        let ops = json!([{"op": "replace", "path": "active", "value": false}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["active"], json!(false));
    }

    #[test]
    fn entra_adds_an_attribute() {
        let ops = json!([{"op": "Add", "path": "nickName", "value": "Babs"}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(doc["nickName"], json!("Babs"));
        assert!(outcome.doc_changed);
    }

    #[test]
    fn entra_default_replaces_one_attribute_per_operation() {
        let ops = json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Jensen-Smith"},
            {"op": "Replace", "path": "userName", "value": "barbara@example.com"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Eqpj"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "barbara@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ])
        );
        assert_eq!(doc["name"]["familyName"], json!("Jensen-Smith"));
        assert_eq!(doc["name"]["givenName"], json!("Barbara"));
        assert_eq!(doc["userName"], json!("barbara@example.com"));
        assert_eq!(doc[ENT]["employeeNumber"], json!("Eqpj"));
        assert_eq!(doc[ENT]["department"], json!("Tour Operations"));
    }

    #[test]
    fn entra_flagged_sends_one_no_path_replace_with_dotted_and_urn_keys() {
        let ops = json!([{"op": "replace", "value": {
            "displayName": "Bjfe",
            "name.givenName": "Kkom",
            "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"
        }}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(doc["displayName"], json!("Bjfe"));
        assert_eq!(
            doc["name"],
            json!({"formatted": "Ms. Barbara J Jensen", "familyName": "Unua", "givenName": "Kkom"})
        );
        assert_eq!(doc[ENT]["employeeNumber"], json!("Aklq"));
        assert!(outcome.ignored.is_empty(), "{:?}", outcome.ignored);
        // Strictly, a dotted key is no attribute name.
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
    }

    #[test]
    fn no_path_value_with_an_extension_object_merges_into_it_in_every_mode() {
        let ops = json!([{"op": "replace", "value": {ENT: {"department": "Sales", "costCenter": "4130"}}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc[ENT]["department"], json!("Sales"));
        assert_eq!(doc[ENT]["costCenter"], json!("4130"));
        assert_eq!(doc[ENT]["employeeNumber"], json!("701984"));
    }

    #[test]
    fn entra_manager_as_an_array_of_references() {
        let ops = json!([{"op": "Add", "path": "manager", "value": [
            {"$ref": "http://example.com/Users/00aa", "value": "00aa"}
        ]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(
            doc[ENT]["manager"],
            json!({"$ref": "http://example.com/Users/00aa", "value": "00aa"}),
            "the old manager is replaced as a unit"
        );
        let strict_ops = json!([{"op": "add", "path": "manager", "value": [{"value": "00aa"}]}]);
        let e = err(ResourceKind::User, &user(), strict_ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn entra_manager_as_a_plain_string() {
        let ops = json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "2c2f"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops.clone(), lenient());
        assert_eq!(doc[ENT]["manager"], json!({"value": "2c2f"}));
        let e = err(ResourceKind::User, &bare_user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn manager_is_removed_by_remove_or_an_empty_replace() {
        for empty in [json!(""), json!({}), json!(null), json!({"value": ""}), json!([])] {
            let ops = json!([{"op": "Replace", "path": "manager", "value": empty}]);
            let (doc, outcome) = ok(ResourceKind::User, &user(), ops, lenient());
            assert!(doc[ENT].get("manager").is_none(), "{empty}: {doc}");
            assert_eq!(doc[ENT]["department"], json!("Tour Operations"));
            assert!(outcome.doc_changed);
        }
        let ops = json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc[ENT].get("manager").is_none());
        // Adding an empty manager adds nothing.
        let ops = json!([{"op": "add", "path": "manager", "value": ""}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(doc, user());
        assert!(!outcome.doc_changed);
    }

    #[test]
    fn manager_display_name_is_read_only() {
        let ops = json!([{"op": "replace", "path": "manager.displayName", "value": "Boss"}]);
        let e = err(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(scim_type(&e), ScimType::Mutability);
    }

    #[test]
    fn filtered_adds_on_a_missing_element_create_one_element() {
        // Entra (SCIM-SDK#680): several sub-attribute adds with one filter build one address.
        let ops = json!([
            {"op": "Add", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St\nSpringfield"},
            {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"},
            {"op": "Add", "path": "addresses[type eq \"work\"].region", "value": "IL"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops.clone(), lenient());
        assert_eq!(
            doc["addresses"],
            json!([{"type": "work", "formatted": "1 Main St\nSpringfield", "locality": "Springfield", "region": "IL"}])
        );
        let strict_ops = json!([{"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"}]);
        let e = err(ResourceKind::User, &bare_user(), strict_ops, strict());
        assert_eq!(scim_type(&e), ScimType::NoTarget);
    }

    #[test]
    fn filtered_value_add_on_a_user_without_emails_creates_the_email() {
        // SCIM-SDK#416.
        let ops = json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "alice@example.com"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, lenient());
        assert_eq!(doc["emails"], json!([{"type": "work", "value": "alice@example.com"}]));
    }

    #[test]
    fn filtered_replace_without_a_match_creates_when_lenient_and_is_no_target_when_strict() {
        let ops = json!([{"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-0100"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(
            doc["phoneNumbers"],
            json!([{"value": "555-555-8377", "type": "work"}, {"type": "mobile", "value": "555-0100"}])
        );
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::NoTarget);
    }

    #[test]
    fn created_element_only_takes_eq_terms_joined_by_and() {
        let ops = json!([{"op": "add", "path": "emails[type eq \"other\" and display eq \"Alt\" or value co \"x\"].value", "value": "o@x.org"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, lenient());
        assert_eq!(doc["emails"], json!([{"value": "o@x.org"}]), "an `or` pins nothing");
        let ops = json!([{"op": "add", "path": "emails[type eq \"other\" and display eq \"Alt\"].value", "value": "o@x.org"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, lenient());
        assert_eq!(doc["emails"], json!([{"type": "other", "display": "Alt", "value": "o@x.org"}]));
    }

    #[test]
    fn validator_patches_display_and_primary_of_the_work_email() {
        let ops = json!([
            {"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"},
            {"op": "replace", "path": "emails[type eq \"home\"].display", "value": "Home mail"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "babs@jensen.org", "type": "home", "primary": true, "display": "Home mail"}
            ]),
            "one primary at most (RFC 7643 §2.4)"
        );
    }

    // --- users: RFC 7644 §3.5.2 semantics -----------------------------------------------------

    #[test]
    fn add_appends_to_a_multi_valued_attribute_and_skips_present_values() {
        let ops = json!([{"op": "add", "path": "emails", "value": [
            {"value": "babs@jensen.org", "type": "home"},
            {"value": "barbara@other.org", "type": "other"}
        ]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        let emails = doc["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 3);
        assert_eq!(emails[2], json!({"value": "barbara@other.org", "type": "other"}));
        // RFC 7644 §3.5.2.1: adding a value already present changes nothing.
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "BABS@jensen.org", "type": "home"}]}]);
        let (same, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(same, user());
        assert!(!outcome.doc_changed);
    }

    #[test]
    fn adding_a_primary_value_clears_the_other_primary() {
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": true}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][0]["primary"], json!(false));
        assert_eq!(doc["emails"][2]["primary"], json!(true));
        // Re-adding an existing email as primary merges into it instead of duplicating it.
        let ops = json!([{"op": "add", "path": "emails", "value": [{"value": "babs@jensen.org", "primary": true}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["emails"],
            json!([
                {"value": "bjensen@example.com", "type": "work", "primary": false},
                {"value": "babs@jensen.org", "type": "home", "primary": true}
            ])
        );
    }

    #[test]
    fn no_path_add_appends_multi_valued_and_merges_complex() {
        let ops = json!([{"op": "add", "value": {
            "emails": [{"value": "babs@example.org", "type": "other"}],
            "nickName": "Babs",
            "name": {"middleName": "Jane"}
        }}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"].as_array().unwrap().len(), 3);
        assert_eq!(doc["nickName"], json!("Babs"));
        assert_eq!(doc["name"]["middleName"], json!("Jane"));
        assert_eq!(doc["name"]["givenName"], json!("Barbara"));
    }

    #[test]
    fn replace_replaces_the_whole_set_of_a_multi_valued_attribute() {
        let ops = json!([{"op": "replace", "path": "emails", "value": [{"value": "only@example.com", "type": "work"}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"], json!([{"value": "only@example.com", "type": "work"}]));
        let ops = json!([{"op": "replace", "path": "emails", "value": []}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("emails").is_none());
    }

    #[test]
    fn replace_of_a_complex_attribute_keeps_unnamed_sub_attributes() {
        // RFC 7644 §3.5.2.3.
        let ops = json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs", "FAMILYNAME": "J"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["name"],
            json!({"formatted": "Ms. Barbara J Jensen", "familyName": "J", "givenName": "Babs"})
        );
    }

    #[test]
    fn filtered_replace_replaces_the_matching_elements() {
        let ops = json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "b@home.org", "type": "home"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][1], json!({"value": "b@home.org", "type": "home"}));
        assert_eq!(doc["emails"][0]["value"], json!("bjensen@example.com"));
    }

    #[test]
    fn filtered_add_merges_into_the_matching_elements() {
        let ops = json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"display": "Home"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["emails"][1],
            json!({"value": "babs@jensen.org", "type": "home", "display": "Home"})
        );
    }

    #[test]
    fn remove_by_filter_removes_matching_values_only() {
        let ops = json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        let ops = json!([{"op": "remove", "path": "emails[value ew \"example.com\" or type eq \"home\"]"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("emails").is_none(), "no values left: unassigned");
    }

    #[test]
    fn remove_of_a_sub_attribute_in_matching_values() {
        let ops = json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][0], json!({"value": "bjensen@example.com", "type": "work"}));
    }

    #[test]
    fn filtered_remove_without_a_match_is_a_no_op_when_lenient() {
        let ops = json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(doc, user());
        assert!(!outcome.doc_changed);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::NoTarget);
    }

    #[test]
    fn remove_without_filter_removes_all_values() {
        let ops =
            json!([{"op": "remove", "path": "emails"}, {"op": "remove", "path": "displayName"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("emails").is_none());
        assert!(doc.get("displayName").is_none());
    }

    #[test]
    fn remove_with_a_value_removes_only_listed_values_when_lenient() {
        let ops =
            json!([{"op": "remove", "path": "emails", "value": [{"value": "BABS@jensen.org"}]}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(
            doc["emails"],
            json!([{"value": "bjensen@example.com", "type": "work", "primary": true}])
        );
        // Strictly the value is ignored and ALL emails would go: refused instead.
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn sub_attribute_of_a_multi_valued_attribute_without_filter_addresses_every_value() {
        let ops = json!([{"op": "replace", "path": "phoneNumbers.type", "value": "mobile"}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["phoneNumbers"], json!([{"value": "555-555-8377", "type": "mobile"}]));
        let ops = json!([{"op": "add", "path": "phoneNumbers.value", "value": "555-0100"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, strict());
        assert_eq!(doc["phoneNumbers"], json!([{"value": "555-0100"}]));
    }

    #[test]
    fn single_value_for_a_multi_valued_attribute_only_when_lenient() {
        let ops = json!([{"op": "add", "path": "emails", "value": {"value": "x@y.org", "type": "other"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(doc["emails"].as_array().unwrap().len(), 3);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn single_valued_set_and_unset() {
        let ops = json!([
            {"op": "add", "path": "title", "value": "Tour Guide"},
            {"op": "replace", "path": "nickName", "value": "Babs"},
            {"op": "replace", "path": "displayName", "value": null},
            {"op": "add", "path": "name.honorificPrefix", "value": "Ms."},
            {"op": "remove", "path": "name.formatted"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["title"], json!("Tour Guide"));
        assert_eq!(doc["nickName"], json!("Babs"));
        assert!(doc.get("displayName").is_none(), "replace with null unassigns");
        assert_eq!(
            doc["name"],
            json!({"familyName": "Jensen", "givenName": "Barbara", "honorificPrefix": "Ms."})
        );
    }

    #[test]
    fn sub_attribute_path_creates_the_parent() {
        let ops = json!([{"op": "replace", "path": "name.givenName", "value": "Alice"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, strict());
        assert_eq!(doc["name"], json!({"givenName": "Alice"}));
        let ops = json!([{"op": "remove", "path": "name.givenName"}]);
        let (doc, _) = ok(ResourceKind::User, &doc, ops, strict());
        assert!(doc.get("name").is_none(), "an empty complex value is unassigned");
    }

    #[test]
    fn paths_are_case_insensitive_and_stored_in_canonical_case() {
        let ops = json!([
            {"op": "replace", "path": "EMAILS[TYPE eq \"WORK\"].VALUE", "value": "b@example.com"},
            {"op": "add", "path": "NICKNAME", "value": "Babs"},
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:COSTCENTER", "value": "4130"}
        ]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["emails"][0]["value"], json!("b@example.com"), "type is caseExact:false");
        assert_eq!(doc["nickName"], json!("Babs"));
        assert_eq!(doc[ENT]["costCenter"], json!("4130"));
    }

    #[test]
    fn whole_extension_path_merges_and_removes() {
        let ops = json!([{"op": "add", "path": ENT, "value": {"division": "Theme Park", "department": "Sales"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc[ENT]["division"], json!("Theme Park"));
        assert_eq!(doc[ENT]["department"], json!("Sales"));
        assert_eq!(doc[ENT]["employeeNumber"], json!("701984"));
        let ops = json!([{"op": "remove", "path": ENT}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get(ENT).is_none());
        assert_eq!(doc["userName"], json!("bjensen@example.com"));
    }

    #[test]
    fn unqualified_extension_attribute_resolves() {
        let ops = json!([{"op": "replace", "path": "department", "value": "Sales"}]);
        let (doc, _) = ok(ResourceKind::User, &bare_user(), ops, strict());
        assert_eq!(doc[ENT], json!({"department": "Sales"}));
    }

    #[test]
    fn value_filter_on_a_single_valued_attribute_is_invalid_path() {
        let ops = json!([{"op": "replace", "path": "name[givenName eq \"Barbara\"].familyName", "value": "X"}]);
        let e = err(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
    }

    #[test]
    fn unchanged_value_leaves_doc_changed_false() {
        let ops = json!([
            {"op": "replace", "path": "displayName", "value": "Babs Jensen"},
            {"op": "replace", "value": {"active": true, "name": {"givenName": "Barbara"}}},
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "bjensen@example.com"}
        ]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc, user());
        assert!(!outcome.doc_changed);
    }

    // --- errors and atomicity -----------------------------------------------------------------

    #[test]
    fn a_failing_operation_leaves_the_document_untouched() {
        let ops = json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "remove", "path": "emails"},
            {"op": "replace", "path": "emails[type eq \"nope\"].value", "value": "x"}
        ]);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::NoTarget);
        assert!(e.detail.starts_with("Operations[2]"), "{e}");
        // A type error found by the final validation is atomic too.
        let ops = json!([{"op": "replace", "path": "displayName", "value": "Changed"},
                         {"op": "replace", "path": "active", "value": "maybe"}]);
        let e = err(ResourceKind::User, &user(), ops, lenient());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn read_only_paths_are_mutability_errors() {
        for path in [
            "id",
            "meta",
            "meta.lastModified",
            "groups",
            "groups[value eq \"g1\"]",
            "manager.displayName",
        ] {
            let ops = json!([{"op": "replace", "path": path, "value": "x"}]);
            let e = err(ResourceKind::User, &user(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::Mutability, "{path}");
        }
        let e =
            err(ResourceKind::Group, &group(), json!([{"op": "remove", "path": "id"}]), lenient());
        assert_eq!(scim_type(&e), ScimType::Mutability);
    }

    #[test]
    fn removing_a_required_attribute_is_a_mutability_error() {
        // RFC 7644 §3.5.2.2.
        for ops in [
            json!([{"op": "remove", "path": "userName"}]),
            json!([{"op": "replace", "path": "userName", "value": null}]),
            json!([{"op": "replace", "value": {"userName": ""}}]),
        ] {
            let e = err(ResourceKind::User, &user(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::Mutability);
        }
        let e = err(
            ResourceKind::Group,
            &group(),
            json!([{"op": "remove", "path": "displayName"}]),
            strict(),
        );
        assert_eq!(scim_type(&e), ScimType::Mutability);
    }

    #[test]
    fn read_only_keys_in_a_no_path_value_are_skipped() {
        let ops = json!([{"op": "replace", "value": {
            "id": "2819c223", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "meta": {"resourceType": "User"}, "groups": [], "displayName": "Babs"
        }}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc["displayName"], json!("Babs"));
        assert!(
            doc.get("id").is_none() && doc.get("meta").is_none() && doc.get("groups").is_none()
        );
        assert_eq!(outcome.ignored, vec!["groups".to_owned()]);
    }

    #[test]
    fn password_is_accepted_and_never_stored() {
        let ops = json!([
            {"op": "replace", "path": "password", "value": "1mz050nq"},
            {"op": "replace", "value": {"password": "t1meMa$heen", "nickName": "Babs"}}
        ]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert!(doc.get("password").is_none());
        assert_eq!(doc["nickName"], json!("Babs"));
        assert_eq!(outcome.ignored, vec!["password".to_owned(), "password".to_owned()]);
    }

    #[test]
    fn unknown_attributes_are_ignored_when_lenient_and_invalid_path_when_strict() {
        for path in [
            "favoriteColor",
            "name.nickname",
            "emails[type eq \"work\"].color",
            "urn:example:ext:1.0:User:badge",
        ] {
            let ops = json!([{"op": "add", "path": path, "value": "x"},
                             {"op": "add", "path": "title", "value": "T"}]);
            let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
            assert_eq!(doc["title"], json!("T"));
            assert_eq!(outcome.ignored.len(), 1, "{path}: {:?}", outcome.ignored);
            let e = err(ResourceKind::User, &user(), ops, strict());
            assert_eq!(scim_type(&e), ScimType::InvalidPath, "{path}");
        }
        let ops = json!([{"op": "replace", "value": {"favoriteColor": "blue", "title": "T"}}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(
            (doc["title"].clone(), outcome.ignored),
            (json!("T"), vec!["favoriteColor".to_owned()])
        );
        assert_eq!(
            scim_type(&err(ResourceKind::User, &user(), ops, strict())),
            ScimType::InvalidPath
        );
    }

    #[test]
    fn users_have_no_members() {
        let ops = json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]}]);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
    }

    #[test]
    fn hand_built_operations_are_checked_too() {
        let mut doc = user();
        let ops = [PatchOperation { op: PatchOpKind::Remove, path: None, value: None }];
        let e = apply_patch(ResourceKind::User, &mut doc, &ops, &lenient()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::NoTarget);
        let path = parse_patch_path("title", &lenient()).unwrap();
        let ops = [PatchOperation { op: PatchOpKind::Add, path: Some(path), value: None }];
        let e = apply_patch(ResourceKind::User, &mut doc, &ops, &lenient()).unwrap_err();
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
        assert_eq!(doc, user());
    }

    // --- groups -------------------------------------------------------------------------------

    #[test]
    fn okta_membership_patch_removes_by_filter_and_adds_by_value_array() {
        let ops = json!([
            {"op": "remove", "path": "members[value eq \"89bb1940-b905-4575-9e7f-6f887cfb368e\"]"},
            {"op": "add", "path": "members", "value": [
                {"value": "23a35c27-23d3-4c03-b4c5-6443c09e7173", "display": "test.user@okta.local"}
            ]}
        ]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc, group());
        assert!(!outcome.doc_changed);
        assert_eq!(
            outcome.member_changes,
            vec![
                MemberChange::Remove(vec!["89bb1940-b905-4575-9e7f-6f887cfb368e".to_owned()]),
                MemberChange::Add(vec![member("23a35c27-23d3-4c03-b4c5-6443c09e7173")]),
            ]
        );
    }

    #[test]
    fn okta_rename_is_a_no_path_replace_with_id() {
        let ops = json!([{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"}}]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc, json!({"displayName": "Test SCIMv2", "externalId": "g-1"}));
        assert!(outcome.doc_changed);
        assert!(outcome.member_changes.is_empty(), "a rename never touches members");
    }

    #[test]
    fn okta_push_now_on_an_empty_group_replaces_members_with_nothing() {
        let ops = json!([{"op": "replace", "path": "members", "value": []}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(outcome.member_changes, vec![MemberChange::ReplaceAll(vec![])]);
        let ops = json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}, {"value": "u2", "type": "User"}]}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::ReplaceAll(vec![
                member("u1"),
                MemberRef { value: "u2".to_owned(), member_type: Some(MemberType::User) },
            ])]
        );
    }

    #[test]
    fn entra_default_group_patches() {
        let ops = json!([
            {"op": "Replace", "path": "displayName", "value": "Sales"},
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "f648"}]},
            {"op": "Remove", "path": "members", "value": [{"value": "u1091"}]}
        ]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, lenient());
        assert_eq!(doc["displayName"], json!("Sales"));
        assert_eq!(
            outcome.member_changes,
            vec![
                MemberChange::Add(vec![member("f648")]),
                MemberChange::Remove(vec!["u1091".to_owned()])
            ]
        );
    }

    #[test]
    fn remove_members_with_a_value_is_refused_when_strict() {
        // Strictly the value is ignored and ALL members would be removed
        // (MicrosoftDocs/azure-docs#30826): refuse rather than lose memberships.
        let ops = json!([{"op": "remove", "path": "members", "value": [{"value": "u1091"}]}]);
        let e = err(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn entra_flagged_removes_a_member_by_filter() {
        let ops = json!([{"op": "remove", "path": "members[value eq \"7f4b\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(outcome.member_changes, vec![MemberChange::Remove(vec!["7f4b".to_owned()])]);
    }

    #[test]
    fn authentik_patches_one_operation_per_user() {
        let ops = json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "add", "path": "members", "value": [{"value": "u2"}]},
            {"op": "remove", "path": "members", "value": [{"value": "u3"}]}
        ]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, lenient());
        assert_eq!(
            outcome.member_changes,
            vec![
                MemberChange::Add(vec![member("u1")]),
                MemberChange::Add(vec![member("u2")]),
                MemberChange::Remove(vec!["u3".to_owned()]),
            ]
        );
    }

    #[test]
    fn authentik_attribute_update_is_a_no_path_replace_of_the_group_json() {
        let ops = json!([{"op": "replace", "value": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Renamed"}}]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc["displayName"], json!("Renamed"));
        assert!(outcome.member_changes.is_empty());
    }

    #[test]
    fn remove_members_without_value_removes_all() {
        let ops = json!([{"op": "remove", "path": "members"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(outcome.member_changes, vec![MemberChange::RemoveAll]);
    }

    #[test]
    fn remove_members_by_other_filters() {
        let ops = json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\" or value eq \"c\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::Remove(vec!["a".to_owned(), "b".to_owned(), "c".to_owned()])]
        );
        let ops = json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        let expected =
            parse_patch_path("members[type eq \"Group\"]", &strict()).unwrap().filter.unwrap();
        assert_eq!(outcome.member_changes, vec![MemberChange::RemoveWhere(expected)]);
        let ops = json!([{"op": "remove", "path": "members[value eq \"a\" and type eq \"User\"]"}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert!(matches!(outcome.member_changes[..], [MemberChange::RemoveWhere(_)]));
    }

    #[test]
    fn members_filters_on_unknown_attributes_are_invalid_path() {
        let ops = json!([{"op": "remove", "path": "members[userName eq \"a\"]"}]);
        let e = err(ResourceKind::Group, &group(), ops, lenient());
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
    }

    #[test]
    fn unsupported_member_paths_are_invalid_path() {
        for (op, path) in [
            ("replace", "members[value eq \"a\"]"),
            ("add", "members[value eq \"a\"]"),
            ("replace", "members.value"),
            ("remove", "members[value eq \"a\"].display"),
        ] {
            let ops = json!([{"op": op, "path": path, "value": [{"value": "b"}]}]);
            let e = err(ResourceKind::Group, &group(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::InvalidPath, "{op} {path}");
        }
    }

    #[test]
    fn no_path_members_key_adds_or_replaces() {
        let ops = json!([{"op": "add", "value": {"members": [{"value": "u1", "type": "user"}]}}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::Add(vec![MemberRef {
                value: "u1".to_owned(),
                member_type: Some(MemberType::User)
            }])]
        );
        let ops = json!([{"op": "replace", "value": {"displayName": "X", "members": [{"value": "g2", "type": "GROUP"}]}}]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc["displayName"], json!("X"));
        assert_eq!(
            outcome.member_changes,
            vec![MemberChange::ReplaceAll(vec![MemberRef {
                value: "g2".to_owned(),
                member_type: Some(MemberType::Group)
            }])]
        );
    }

    #[test]
    fn invalid_members_are_invalid_value() {
        for value in [
            json!([{"display": "no value"}]),
            json!([{"value": 42}]),
            json!([{"value": ""}]),
            json!([{"value": "u1", "type": "Robot"}]),
            json!("u1"),
        ] {
            let ops = json!([{"op": "add", "path": "members", "value": value}]);
            let e = err(ResourceKind::Group, &group(), ops, lenient());
            assert_eq!(scim_type(&e), ScimType::InvalidValue, "{value}");
        }
    }

    #[test]
    fn a_single_member_object_is_one_member_when_lenient() {
        let ops = json!([{"op": "add", "path": "members", "value": {"value": "u1"}}]);
        let (_, outcome) = ok(ResourceKind::Group, &group(), ops.clone(), lenient());
        assert_eq!(outcome.member_changes, vec![MemberChange::Add(vec![member("u1")])]);
        let e = err(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }

    #[test]
    fn member_changes_are_discarded_when_a_later_operation_fails() {
        let ops = json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "replace", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}
        ]);
        let (patched, result) = run(ResourceKind::Group, &group(), ops, lenient());
        assert!(result.is_err());
        assert_eq!(patched, group());
    }

    // --- invariants (the fuzz target checks the same on arbitrary input) ----------------------

    #[test]
    fn invariants_hold_on_odd_input() {
        let corpus = [
            json!([{"op": "add", "path": "manager", "value": [[{"value": "x"}]]}]),
            json!([{"op": "add", "path": "manager", "value": [{"value": "a"}, {"value": "b"}]}]),
            json!([{"op": "replace", "path": "emails[primary eq true]", "value": "nope"}]),
            json!([{"op": "replace", "path": "emails[primary eq true].primary", "value": false}]),
            json!([{"op": "add", "path": "emails[primary eq true]", "value": {"Value": "p@x.org"}}]),
            json!([{"op": "add", "path": "emails", "value": [null, {}, {"value": "a@b.c", "primary": "TRUE"}]}]),
            json!([{"op": "add", "path": "addresses[type eq \"work\" and primary eq true].region", "value": "IL"}]),
            json!([{"op": "replace", "path": "name", "value": "Barbara"}]),
            json!([{"op": "replace", "path": "name", "value": {"givenName": null, "familyName": null, "formatted": null}}]),
            json!([{"op": "replace", "value": {ENT: null}}]),
            json!([{"op": "replace", "value": {ENT: "x"}}]),
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "m2"}}]),
            json!([{"op": "replace", "value": {"emails[type eq \"home\"].value": "h@x.org", "name.bogus": 1}}]),
            json!([{"op": "replace", "value": {"bad key[": 1}}]),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": {"manager": "m3", "employeeNumber": 5}}]),
            json!([{"op": "remove", "path": "emails[type eq \"work\"].value"}, {"op": "remove", "path": "emails[type eq \"work\"].type"}]),
            json!([{"op": "add", "path": "x509Certificates", "value": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}]}]),
            json!([{"op": "replace", "path": "displayName", "value": ["a"]}]),
            json!([{"op": "replace", "path": "members", "value": {"value": "u1"}}, {"op": "replace", "path": "displayName", "value": "G"}]),
            json!([{"op": "remove", "path": "members[not (value eq \"u1\")]"}]),
            json!([{"op": "remove", "path": "members[value eq 42]"}]),
            json!([{"op": "replace", "value": {"members": null, "displayName": "G2"}}]),
            json!([{"op": "add", "path": "externalId", "value": "e2"}, {"op": "remove", "path": "externalId"}]),
        ];
        for ops in corpus {
            for tol in [strict(), lenient()] {
                for (kind, original) in
                    [(ResourceKind::User, user()), (ResourceKind::Group, group())]
                {
                    let (doc, result) = run(kind, &original, ops.clone(), tol);
                    let Ok(outcome) = result else {
                        assert_eq!(doc, original, "{ops}: failed but changed the document");
                        continue;
                    };
                    assert_eq!(outcome.doc_changed, doc != original, "{ops}");
                    let again = normalize_doc(kind, &doc, &tol).unwrap();
                    assert_eq!(again.doc, doc, "{ops}: result is not normalised");
                    for key in ["id", "meta", "schemas", "password", "groups", "members"] {
                        assert!(doc.get(key).is_none(), "{ops}: {key} stored");
                    }
                }
            }
        }
    }
}
