//! Reading the PatchOp message (RFC 7644 §3.5.2) into [`PatchOperation`]s.

use serde_json::Value;

use super::{Object, PATCH_OP_URN, PatchOpKind, PatchOperation};
use crate::compat::Tolerances;
use crate::error::ScimError;
use crate::filter::parser::parse_patch_path;
use crate::resource::reject_nul;

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
    if let Some(v) = &value {
        reject_nul(v)?;
    }
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
pub(super) fn at_operation(error: ScimError, index: usize) -> ScimError {
    ScimError { detail: format!("Operations[{index}]: {}", error.detail), ..error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ScimType;
    use crate::patch::test_support::{body, lenient, ok, scim_type, strict, user};
    use crate::schema::ResourceKind;
    use serde_json::json;

    #[test]
    fn nul_in_a_path_is_invalid_path_and_in_a_value_invalid_value() {
        let kind = |ops| parse_patch_request(&body(ops), &lenient()).unwrap_err().scim_type;
        for path in
            ["title\u{0}", r#"emails[value eq "\u0000"].type"#, "members[value eq \"\u{0}\"]"]
        {
            let ops = json!([{"op": "remove", "path": path}]);
            assert_eq!(kind(ops), Some(ScimType::InvalidPath), "{path:?}");
        }
        for value in
            [json!("\u{0}"), json!({"name": {"givenName": "\u{0}"}}), json!([{"v\u{0}": 1}])]
        {
            let ops = json!([{"op": "add", "path": "title", "value": value}]);
            assert_eq!(kind(ops), Some(ScimType::InvalidValue), "{value}");
        }
    }

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
}
