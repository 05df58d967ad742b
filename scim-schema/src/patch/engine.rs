//! Applying operations to the stored document: [`apply_patch`], and the dispatch of each
//! operation (with or without a path, or one key of a no-path value) to the code for its target.

use serde_json::Value;

use super::checks::{check_immutable_kept, check_required_kept};
use super::members::member_change;
use super::message::at_operation;
use super::multi_valued::multi_op;
use super::object::{put_object, remove_ci, take_object};
use super::single_valued::{single_op, single_sub_op};
use super::targets::{AttrTarget, Origin, Target};
use super::{MemberChange, Object, PatchOpKind, PatchOperation, PatchOutcome};
use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::filter::ast::{AttrPath, PatchPath};
use crate::filter::parser::parse_patch_path;
use crate::resource::normalize_doc;
use crate::schema::ResourceKind;

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

/// One `apply_patch` run: the working copy of the document and what the operations produced.
/// Path resolution (`targets`) reads `kind` and `tol` and records skipped attributes, hence the
/// fields it shares.
pub(super) struct Engine {
    pub(super) kind: ResourceKind,
    pub(super) tol: Tolerances,
    root: Object,
    member_changes: Vec<MemberChange>,
    pub(super) ignored: Vec<String>,
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
        // An extension object that restates its own URN in `schemas` (client libraries such
        // as scim2-models serialise it so) says nothing more: not an unknown attribute.
        if let Some(urn) = extension
            && key.eq_ignore_ascii_case("schemas")
            && value.as_array().is_some_and(|s| s.iter().all(|u| u.as_str() == Some(urn)))
        {
            return Ok(());
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
            Target::Members(attr) => {
                self.member_changes.extend(member_change(op, path, attr, value, &self.tol)?);
                Ok(())
            }
            Target::Extension(urn) => self.extension_op(op, urn, value),
            Target::Attr(target) => self.attr_op(op, &target, value),
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
}

/// `remove` on a multi-valued attribute with a value: strictly the value is ignored and ALL
/// values go (RFC 7644 §3.5.2.2). Clients sending a value meant only those (Entra, authentik),
/// so rather than lose data we refuse.
pub(super) fn remove_with_value_error(name: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "\"remove\" on {name} with a \"value\" would remove all of its values (RFC 7644 \
         §3.5.2.2); select the values with a filter, e.g. {name}[value eq \"…\"]"
    ))
}

/// The `value` of an add/replace, which `parse_patch_request` guarantees but hand-built
/// operations may lack.
pub(super) fn required(value: Option<&Value>, op: PatchOpKind) -> Result<&Value, ScimError> {
    value.ok_or_else(|| ScimError::invalid_value(format!("\"{}\" needs a \"value\"", op.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::patch::test_support::{ENT, err, group, lenient, ok, run, scim_type, strict, user};
    use serde_json::json;

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
    fn an_extension_value_restating_its_schema_is_accepted_strictly() {
        let value = json!({"schemas": [ENT], "employeeNumber": "7"});
        let ops = json!([{"op": "add", "path": ENT, "value": value}]);
        let (doc, outcome) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(doc[ENT]["employeeNumber"], json!("7"));
        assert!(doc[ENT].get("schemas").is_none(), "{doc}");
        assert!(outcome.ignored.is_empty(), "{:?}", outcome.ignored);
        // Another schema there is still unknown in strict mode.
        let value = json!({"schemas": ["urn:example:other"], "employeeNumber": "8"});
        let ops = json!([{"op": "add", "path": ENT, "value": value}]);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidPath);
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
    fn okta_rename_is_a_no_path_replace_with_id() {
        let ops = json!([{"op": "replace", "value": {"id": "abf4dd94-a4c0-4f67-89c9-76b03340cb9b", "displayName": "Test SCIMv2"}}]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc, json!({"displayName": "Test SCIMv2", "externalId": "g-1"}));
        assert!(outcome.doc_changed);
        assert!(outcome.member_changes.is_empty(), "a rename never touches members");
    }

    #[test]
    fn authentik_attribute_update_is_a_no_path_replace_of_the_group_json() {
        let ops = json!([{"op": "replace", "value": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Renamed"}}]);
        let (doc, outcome) = ok(ResourceKind::Group, &group(), ops, strict());
        assert_eq!(doc["displayName"], json!("Renamed"));
        assert!(outcome.member_changes.is_empty());
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
    fn member_changes_are_discarded_when_a_later_operation_fails() {
        let ops = json!([
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "replace", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}
        ]);
        let (patched, result) = run(ResourceKind::Group, &group(), ops, lenient());
        assert!(result.is_err());
        assert_eq!(patched, group());
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
