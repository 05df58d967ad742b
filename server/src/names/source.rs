//! [`SourceName`]: the name of an identity source (`token create --source`, a file of
//! `[auth] tokens_dir`, `[sources.NAME]`, a rule's `source`).

use std::fmt;

/// The name admin tokens go by (their file in `[auth] tokens_dir`, the source column of
/// `token list`); no source may take it.
pub const ADMIN_NAME: &str = "admin";

/// Why a text is not a source name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceNameError {
    #[error("use 1-64 letters, digits, '-' or '_' (got {0:?})")]
    Malformed(String),
    /// `admin`, the name of admin tokens in a tokens directory.
    #[error("\"admin\" is reserved for admin tokens")]
    Reserved,
}

/// 1-64 ASCII letters, digits, '-' or '_', and not `admin`. Compared exactly, as the database
/// keeps it: a source name is an admin's label, not something an IdP sends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SourceName(String);

impl SourceName {
    pub fn parse(raw: &str) -> Result<SourceName, SourceNameError> {
        let well_formed = !raw.is_empty()
            && raw.len() <= 64
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !well_formed {
            return Err(SourceNameError::Malformed(raw.to_owned()));
        }
        if raw == ADMIN_NAME {
            return Err(SourceNameError::Reserved);
        }
        Ok(SourceName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for SourceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<SourceName> for String {
    fn from(name: SourceName) -> String {
        name.0
    }
}

impl PartialEq<str> for SourceName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SourceName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::str::FromStr for SourceName {
    type Err = SourceNameError;

    fn from_str(s: &str) -> Result<SourceName, SourceNameError> {
        SourceName::parse(s)
    }
}

/// A plain string, checked as [`SourceName::parse`] does.
impl<'de> serde::Deserialize<'de> for SourceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SourceName, D::Error> {
        let raw = String::deserialize(d)?;
        SourceName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_are_short_ascii_labels() {
        for ok in ["okta", "entra-prod", "Okta_2", "a", &"x".repeat(64)] {
            assert_eq!(SourceName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", " okta", "okta tenant", "ökta", "a/b", "okta\n", &"x".repeat(65)] {
            assert_eq!(SourceName::parse(bad), Err(SourceNameError::Malformed(bad.to_owned())));
        }
    }

    #[test]
    fn errors_keep_their_text_and_admin_is_reserved() {
        let err = SourceName::parse("okta tenant").unwrap_err();
        assert_eq!(err.to_string(), "use 1-64 letters, digits, '-' or '_' (got \"okta tenant\")");
        let err = SourceName::parse("admin").unwrap_err();
        assert_eq!(err, SourceNameError::Reserved);
        assert_eq!(err.to_string(), "\"admin\" is reserved for admin tokens");
        // Exact: only the lower-case name is the admin tokens' file name.
        assert!(SourceName::parse("Admin").is_ok());
    }

    #[test]
    fn serde_is_a_plain_string_and_deserializing_checks() {
        let name = SourceName::parse("okta").unwrap();
        assert_eq!(serde_json::to_value(&name).unwrap(), serde_json::json!("okta"));
        assert_eq!(serde_json::from_value::<SourceName>(serde_json::json!("okta")).unwrap(), name);
        let err = serde_json::from_value::<SourceName>(serde_json::json!("admin")).unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert_eq!("okta".parse::<SourceName>().unwrap(), "okta");
    }
}
