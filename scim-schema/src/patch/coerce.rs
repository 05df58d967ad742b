//! Bringing client values into the stored shape: canonical sub-attribute names, booleans sent
//! as strings, Entra's `manager` shapes, one value where an array belongs.

use serde_json::Value;

use super::Object;
use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::filter::eval::is_present;
use crate::schema::{AttrType, AttributeDef};

/// Bring a client value into the stored shape where the engine needs it (canonical sub-attribute
/// names, booleans, `manager`). Type validation is left to
/// [`normalize_doc`](crate::resource::normalize_doc).
pub(super) fn coerce(def: &AttributeDef, value: &Value, tol: &Tolerances) -> Value {
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

pub(super) fn is_manager(def: &AttributeDef) -> bool {
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
pub(super) fn coerce_values(
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

#[cfg(test)]
mod tests {
    use crate::error::ScimType;
    use crate::patch::test_support::{ENT, bare_user, err, lenient, ok, scim_type, strict, user};
    use crate::schema::ResourceKind;
    use serde_json::json;

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
    fn single_value_for_a_multi_valued_attribute_only_when_lenient() {
        let ops = json!([{"op": "add", "path": "emails", "value": {"value": "x@y.org", "type": "other"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops.clone(), lenient());
        assert_eq!(doc["emails"].as_array().unwrap().len(), 3);
        let e = err(ResourceKind::User, &user(), ops, strict());
        assert_eq!(scim_type(&e), ScimType::InvalidValue);
    }
}
