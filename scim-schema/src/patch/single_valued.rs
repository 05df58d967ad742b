//! add/replace/remove on a single-valued attribute (`title`, `name`) or one sub-attribute of
//! it (`name.givenName`).

use serde_json::Value;

use super::coerce::{coerce, is_manager};
use super::engine::required;
use super::object::{assign, put_object, remove_ci, take_object};
use super::{Object, PatchOpKind};
use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::schema::{AttrType, AttributeDef};

pub(super) fn single_op(
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
pub(super) fn single_sub_op(
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

#[cfg(test)]
mod tests {
    use crate::patch::test_support::{bare_user, lenient, ok, strict, user};
    use crate::schema::ResourceKind;
    use serde_json::json;

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
    fn replace_of_a_complex_attribute_keeps_unnamed_sub_attributes() {
        // RFC 7644 §3.5.2.3.
        let ops = json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs", "FAMILYNAME": "J"}}]);
        let (doc, _) = ok(ResourceKind::User, &user(), ops, strict());
        assert_eq!(
            doc["name"],
            json!({"formatted": "Ms. Barbara J Jensen", "familyName": "J", "givenName": "Babs"})
        );
    }
}
