//! Documents and helpers shared by the PATCH tests: a parse-and-apply runner and its
//! assertions.

use serde_json::{Value, json};

use super::{PATCH_OP_URN, PatchOutcome, apply_patch, parse_patch_request};
use crate::compat::Tolerances;
use crate::error::{ScimError, ScimType};
use crate::resource::MemberRef;
use crate::schema::{ENTERPRISE_USER_URN, ResourceKind};

pub(super) const ENT: &str = ENTERPRISE_USER_URN;

pub(super) fn lenient() -> Tolerances {
    Tolerances::lenient()
}

pub(super) fn strict() -> Tolerances {
    Tolerances::strict()
}

pub(super) fn user() -> Value {
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

pub(super) fn bare_user() -> Value {
    json!({"userName": "alice@example.com"})
}

pub(super) fn group() -> Value {
    json!({"displayName": "Tour Guides", "externalId": "g-1"})
}

pub(super) fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_URN], "Operations": ops})
}

/// Parse and apply; returns the patched doc (unchanged on error) and the result.
pub(super) fn run(
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

pub(super) fn ok(
    kind: ResourceKind,
    doc: &Value,
    ops: Value,
    tol: Tolerances,
) -> (Value, PatchOutcome) {
    let (patched, result) = run(kind, doc, ops, tol);
    match result {
        Ok(outcome) => (patched, outcome),
        Err(e) => panic!("patch failed: {e}"),
    }
}

/// Applies and asserts the error's scimType and that the document is untouched.
pub(super) fn err(kind: ResourceKind, doc: &Value, ops: Value, tol: Tolerances) -> ScimError {
    let (patched, result) = run(kind, doc, ops, tol);
    assert_eq!(&patched, doc, "a failed patch must leave the document as it was");
    match result {
        Ok(outcome) => panic!("expected an error, got {outcome:?} and {patched}"),
        Err(e) => e,
    }
}

pub(super) fn scim_type(e: &ScimError) -> ScimType {
    e.scim_type.unwrap_or_else(|| panic!("no scimType in {e}"))
}

pub(super) fn member(id: &str) -> MemberRef {
    MemberRef { value: id.to_owned(), member_type: None }
}
