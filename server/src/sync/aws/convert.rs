//! The AWS profile's JSON shape ([`AwsAttributes`]) into SDK requests.

use crate::mapping::aws_profile::AwsAttributes;
use crate::sync::target::{AttributeChange, AwsError};
use aws_sdk_identitystore::operation::create_user::builders::CreateUserFluentBuilder;
use aws_sdk_identitystore::types::{Address, AttributeOperation, Email, Name, PhoneNumber, Role};
use aws_smithy_types::{Document, Number};
use serde_json::Value;

/// JSON to a smithy Document (the value type of attribute operations and extensions).
pub fn document(v: &Value) -> Document {
    match v {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(if let Some(u) = n.as_u64() {
            Number::PosInt(u)
        } else if let Some(i) = n.as_i64() {
            Number::NegInt(i)
        } else {
            Number::Float(n.as_f64().unwrap_or_default())
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(document).collect()),
        Value::Object(o) => {
            Document::Object(o.iter().map(|(k, v)| (k.clone(), document(v))).collect())
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The first (the profile keeps one) element of a multi-valued attribute.
fn first<'a>(attrs: &'a AwsAttributes, key: &str) -> Option<&'a Value> {
    attrs.get(key).and_then(Value::as_array).and_then(|a| a.first())
}

fn primary(v: &Value) -> bool {
    v.get("primary").and_then(Value::as_bool).unwrap_or(true)
}

pub fn create_user(mut req: CreateUserFluentBuilder, a: &AwsAttributes) -> CreateUserFluentBuilder {
    let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
    req = req
        .set_user_name(s("userName"))
        .set_display_name(s("displayName"))
        .set_nick_name(s("nickName"))
        .set_profile_url(s("profileUrl"))
        .set_user_type(s("userType"))
        .set_title(s("title"))
        .set_preferred_language(s("preferredLanguage"))
        .set_locale(s("locale"))
        .set_timezone(s("timezone"));
    if let Some(n) = a.get("name") {
        let part = |k: &str| text(n, k).map(str::to_owned);
        req = req.name(
            Name::builder()
                .set_formatted(part("formatted"))
                .set_family_name(part("familyName"))
                .set_given_name(part("givenName"))
                .set_middle_name(part("middleName"))
                .set_honorific_prefix(part("honorificPrefix"))
                .set_honorific_suffix(part("honorificSuffix"))
                .build(),
        );
    }
    if let Some(e) = first(a, "emails") {
        let t = |k: &str| text(e, k).map(str::to_owned);
        req = req.emails(
            Email::builder().set_value(t("value")).set_type(t("type")).primary(primary(e)).build(),
        );
    }
    if let Some(p) = first(a, "phoneNumbers") {
        let t = |k: &str| text(p, k).map(str::to_owned);
        req = req.phone_numbers(
            PhoneNumber::builder()
                .set_value(t("value"))
                .set_type(t("type"))
                .primary(primary(p))
                .build(),
        );
    }
    if let Some(ad) = first(a, "addresses") {
        let t = |k: &str| text(ad, k).map(str::to_owned);
        req = req.addresses(
            Address::builder()
                .set_street_address(t("streetAddress"))
                .set_locality(t("locality"))
                .set_region(t("region"))
                .set_postal_code(t("postalCode"))
                .set_country(t("country"))
                .set_formatted(t("formatted"))
                .set_type(t("type"))
                .primary(primary(ad))
                .build(),
        );
    }
    if let Some(r) = first(a, "roles") {
        let t = |k: &str| text(r, k).map(str::to_owned);
        req = req.roles(
            Role::builder().set_value(t("value")).set_type(t("type")).primary(primary(r)).build(),
        );
    }
    if let Some(Value::Object(extensions)) = a.get("extensions") {
        for (key, value) in extensions {
            req = req.extensions(key, document(value));
        }
    }
    req
}

/// Attribute changes as UpdateUser / UpdateGroup operations (a removal carries no value).
pub fn operations(
    changes: &[AttributeChange],
    operation: &'static str,
) -> Result<Vec<AttributeOperation>, AwsError> {
    changes
        .iter()
        .map(|(path, value)| {
            AttributeOperation::builder()
                .attribute_path(path)
                .set_attribute_value(value.as_ref().map(document))
                .build()
                .map_err(|e| AwsError::Invalid { operation, message: e.to_string() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_mirror_json() {
        let d = document(&json!({"a": [1, -2, 1.5, "x", true, null]}));
        let Document::Object(o) = d else { panic!("object") };
        let Document::Array(items) = &o["a"] else { panic!("array") };
        assert_eq!(items[0], Document::Number(Number::PosInt(1)));
        assert_eq!(items[1], Document::Number(Number::NegInt(-2)));
        assert_eq!(items[2], Document::Number(Number::Float(1.5)));
        assert_eq!(items[3], Document::String("x".into()));
        assert_eq!(items[5], Document::Null);
    }

    #[test]
    fn removals_carry_no_value() {
        let ops = operations(
            &[("title".into(), None), ("displayName".into(), Some(json!("D")))],
            "UpdateUser",
        )
        .unwrap();
        assert_eq!(ops[0].attribute_value(), None);
        assert_eq!(ops[1].attribute_value(), Some(&Document::String("D".into())));
    }
}
