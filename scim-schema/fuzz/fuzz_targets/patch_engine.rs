//! Feeds arbitrary JSON to the PATCH engine: `parse_patch_request`, then `apply_patch` on a
//! fixed User and a fixed Group, in strict and lenient mode. Input that is not JSON is skipped;
//! a bare JSON array is taken as the `Operations` of a PatchOp, so the fuzzer reaches the
//! engine sooner. Checks:
//! - no panic, whatever the input;
//! - atomicity: a failed patch leaves the document exactly as it was;
//! - `doc_changed` is true exactly when the document changed;
//! - the result is a stored document: normalising it again changes nothing, and it never holds
//!   `id`, `meta`, `schemas`, `password`, `groups` or `members`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_schema::Tolerances;
use scim_schema::patch::{PATCH_OP_URN, apply_patch, parse_patch_request};
use scim_schema::resource::normalize_doc;
use scim_schema::schema::{ENTERPRISE_USER_URN, ResourceKind};
use serde_json::{Value, json};

fn sample_user() -> Value {
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
        "addresses": [{"type": "work", "locality": "Hollywood", "region": "CA"}],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        ENTERPRISE_USER_URN: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

fn sample_group() -> Value {
    json!({"displayName": "Tour Guides", "externalId": "g-1"})
}

fn check(kind: ResourceKind, original: &Value, body: &Value, tol: &Tolerances) {
    let Ok(ops) = parse_patch_request(body, tol) else { return };
    let mut doc = original.clone();
    match apply_patch(kind, &mut doc, &ops, tol) {
        Err(_) => assert_eq!(&doc, original, "a failed patch changed the document"),
        Ok(outcome) => {
            assert_eq!(outcome.doc_changed, &doc != original, "doc_changed is wrong");
            let again = normalize_doc(kind, &doc, tol)
                .unwrap_or_else(|e| panic!("patched document no longer valid: {e}: {doc}"));
            assert_eq!(again.doc, doc, "patched document is not normalised");
            let obj = doc.as_object().unwrap_or_else(|| panic!("not an object: {doc}"));
            for key in ["id", "meta", "schemas", "password", "groups", "members"] {
                assert!(!obj.keys().any(|k| k.eq_ignore_ascii_case(key)), "{key} stored: {doc}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(data) else { return };
    let body = match json {
        Value::Array(_) => json!({"schemas": [PATCH_OP_URN], "Operations": json}),
        other => other,
    };
    let (user, group) = (sample_user(), sample_group());
    for tol in [Tolerances::strict(), Tolerances::lenient()] {
        check(ResourceKind::User, &user, &body, &tol);
        check(ResourceKind::Group, &group, &body, &tol);
    }
});
