//! [`UserName`] and [`DisplayName`]: a principal's name in its normal form, from the edge on.

use super::{NameKey, normal_form};
use scim_schema::ScimError;

/// A name type that holds only normal forms ([`super::normalize`], no control characters, not
/// empty): `parse` is the one way in, so a value of it never needs checking again.
macro_rules! principal_name {
    ($(#[$doc:meta])* $ty:ident, $attr:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $ty(String);

        impl $ty {
            /// `raw` in its normal form; an invalidValue error naming the attribute when it
            /// holds a control character or nothing but whitespace.
            pub fn parse(raw: &str) -> Result<$ty, ScimError> {
                normal_form($attr, raw).map($ty)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The key it is compared by (case-insensitive; see [`NameKey`]).
            pub fn key(&self) -> NameKey {
                // Already in normal form: only the folding is left.
                NameKey(scim_schema::fold::lower(&self.0))
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> String {
                name.0
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        /// A plain string, normalised as [`parse`](Self::parse) does (and refused likewise).
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let raw = String::deserialize(d)?;
                $ty::parse(&raw).map_err(|e| serde::de::Error::custom(e.detail))
            }
        }
    };
}

principal_name!(
    /// A user's `userName` in its normal form.
    UserName,
    "userName"
);

principal_name!(
    /// A group's (or a user's) `displayName` in its normal form.
    DisplayName,
    "displayName"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_built_only_in_its_normal_form() {
        let name = UserName::parse(" A\u{30a}sa@example.com\u{a0}").unwrap();
        assert_eq!(name.as_str(), "\u{c5}sa@example.com");
        assert_eq!(name.to_string(), "\u{c5}sa@example.com");
        assert_eq!(name, "\u{c5}sa@example.com");
        let group = DisplayName::parse("\u{2003}AWS - Admins ").unwrap();
        assert_eq!(group.as_str(), "AWS - Admins");
    }

    #[test]
    fn control_characters_and_empty_names_are_refused_naming_the_attribute() {
        let err = UserName::parse("ana\n").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.detail.starts_with("userName contains the control character U+000A"), "{err}");
        let err = DisplayName::parse("a\u{0}b").unwrap_err();
        assert!(err.detail.starts_with("displayName contains the control character U+0000"));
        assert_eq!(UserName::parse(" \u{a0}\u{2003}").unwrap_err().detail, "userName is empty");
        assert_eq!(DisplayName::parse("").unwrap_err().detail, "displayName is empty");
    }

    #[test]
    fn the_key_folds_case_and_equals_the_key_of_the_raw_text() {
        let a = DisplayName::parse("A-Admins").unwrap();
        let b = DisplayName::parse("a-admins\u{2003}").unwrap();
        assert_ne!(a, b, "the names themselves keep their case");
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), NameKey::of(" A-ADMINS"));
        let decomposed = UserName::parse("A\u{30a}SA").unwrap();
        assert_eq!(decomposed.key(), UserName::parse("\u{e5}sa").unwrap().key());
        assert_ne!(a.key(), DisplayName::parse("A-Admin").unwrap().key());
    }

    #[test]
    fn serde_is_a_plain_string_and_deserializing_normalises_and_checks() {
        let name = UserName::parse("ana@example.com").unwrap();
        assert_eq!(serde_json::to_value(&name).unwrap(), serde_json::json!("ana@example.com"));
        let back: UserName =
            serde_json::from_value(serde_json::json!(" ana@example.com ")).unwrap();
        assert_eq!(back, name);
        let err = serde_json::from_value::<DisplayName>(serde_json::json!("x\u{1b}")).unwrap_err();
        assert!(err.to_string().contains("displayName contains the control character U+001B"));
        assert!(serde_json::from_value::<UserName>(serde_json::json!(7)).is_err());
    }
}
