//! userName and displayName mean one thing everywhere: one normal form (Unicode NFC, with
//! surrounding whitespace of any kind trimmed) and one case-insensitive key (that form,
//! lower-cased by [`scim_schema::fold::lower`], the folding filters use on both databases).
//! Rule matching and the protected lists compare keys ([`NameKey`]), so `"A-Admins\u{a0}"`,
//! `"a-admins"` and a decomposed `"Å"` all name the same principal.
//!
//! The names the bridge carries after the edge are types that can only be built through that
//! normal form ([`UserName`], [`DisplayName`]) or through the rules of source names
//! ([`SourceName`]).

mod principal;
mod source;

pub use principal::{DisplayName, UserName};
pub use source::{ADMIN_NAME, SourceName, SourceNameError};

use scim_schema::ScimError;
use scim_schema::schema::ResourceKind;
use serde_json::Value;
use unicode_normalization::UnicodeNormalization;

/// The attributes that name a resource: normalised where a request enters, so that storage,
/// uniqueness, AWS and the rules all see one form.
fn name_attributes(kind: ResourceKind) -> &'static [&'static str] {
    match kind {
        ResourceKind::User => &["userName", "displayName"],
        ResourceKind::Group => &["displayName"],
    }
}

/// Puts the resource's names ([`name_attributes`]) into their normal form; a name holding a
/// control character (a newline, a NUL, an escape) is refused: it could never be matched,
/// shown or sent to AWS as meant.
pub fn normalize_names(kind: ResourceKind, doc: &mut Value) -> Result<(), ScimError> {
    for attr in name_attributes(kind) {
        let Some(Value::String(name)) = doc.get_mut(*attr) else { continue };
        *name = normal_form(attr, name)?;
    }
    Ok(())
}

/// `raw` in its normal form ([`normalize`]), refused when it holds a control character or
/// nothing but whitespace; errors name the attribute `attr`.
fn normal_form(attr: &str, raw: &str) -> Result<String, ScimError> {
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(ScimError::invalid_value(format!(
            "{attr} contains the control character U+{:04X}; names may not hold control characters",
            u32::from(c)
        )));
    }
    let normal = normalize(raw);
    if normal.is_empty() {
        return Err(ScimError::invalid_value(format!("{attr} is empty")));
    }
    Ok(normal)
}

/// The name's normal form: NFC, surrounding whitespace (any Unicode `White_Space`) trimmed.
pub fn normalize(name: &str) -> String {
    name.nfc().collect::<String>().trim().to_owned()
}

/// The key names are compared by: the normal form, lower-cased by [`scim_schema::fold::lower`]
/// (so a stored key equals what PostgreSQL's `lower()` and SQLite's `scim_lower()` make of the
/// name, and what the filter evaluator compares).
pub fn fold(name: &str) -> String {
    scim_schema::fold::lower(&normalize(name))
}

/// The key a name is compared by ([`fold`]): two names with equal keys name the same
/// principal. Built from any text (a name in AWS, in the config, typed at the command line),
/// since folding normalises it first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameKey(String);

impl NameKey {
    pub fn of(name: &str) -> NameKey {
        NameKey(fold(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A part of a name (a `sw`/`co`/`ew` filter value) folded like [`fold`], keeping its spaces.
pub fn fold_fragment(fragment: &str) -> String {
    scim_schema::fold::lower(&fragment.nfc().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same(a: &str, b: &str) -> bool {
        fold(a) == fold(b)
    }

    #[test]
    fn names_are_normalised_and_control_characters_refused() {
        let mut doc = json!({"userName": " A\u{30a}sa@example.com\u{a0}", "displayName": "\tX"});
        let err = normalize_names(ResourceKind::User, &mut doc).unwrap_err();
        assert!(err.to_string().contains("U+0009"), "{err}");
        doc["displayName"] = json!("Åsa ");
        normalize_names(ResourceKind::User, &mut doc).unwrap();
        assert_eq!(doc, json!({"userName": "\u{c5}sa@example.com", "displayName": "Åsa"}));
        let mut group = json!({"displayName": "\u{2003}"});
        assert!(normalize_names(ResourceKind::Group, &mut group).is_err());
        let mut nul = json!({"displayName": "a\u{0}b"});
        assert!(normalize_names(ResourceKind::Group, &mut nul).is_err());
    }

    #[test]
    fn variants_of_one_name_fold_alike() {
        assert_eq!(normalize(" A-Admins\u{a0}"), "A-Admins");
        assert!(same("A-Admins", "a-admins\u{2003}"));
        // "Å" precomposed and as A + combining ring.
        assert!(same("\u{c5}sa", "A\u{30a}SA"));
        assert!(same("ÖSTERGÅRD", "östergård"));
        // One key per name, as PostgreSQL's lower() folds: no final-sigma rule, İ is i.
        assert_eq!(fold("ΟΔΟΣ"), "οδοσ");
        assert!(same("İSTANBUL", "istanbul"));
        assert!(!same("Admins", "Admin"));
        assert_eq!(NameKey::of(" A-Admins\u{a0}"), NameKey::of("a-admins"));
        assert_eq!(NameKey::of("\u{c5}sa").as_str(), "\u{e5}sa");
    }
}
