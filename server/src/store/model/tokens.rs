//! Sources and the bearer tokens that authenticate SCIM clients and the admin API.

use super::Timestamp;
use crate::names::SourceName;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: i64,
    pub name: SourceName,
    /// The mode `token create --compat` stored (`[sources.NAME] compat` overrides it).
    pub compat: CompatMode,
    /// What `auto` recognised of the source's client, once it has.
    pub detected_compat: Option<CompatMode>,
}

/// A source's compatibility mode (`sources.compat`, `--compat`, `[sources.NAME] compat`): how
/// leniently its requests are read. `Auto` resolves to what was detected of the client, else
/// `Generic` (see `crate::scim::compat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompatMode {
    #[default]
    Auto,
    /// RFC 7643/7644 as written: no tolerance.
    Strict,
    Okta,
    Entra,
    Authentik,
    Ping,
    Generic,
}

text_enum!(
    CompatMode,
    "compat mode",
    Auto = "auto",
    Strict = "strict",
    Okta = "okta",
    Entra = "entra",
    Authentik = "authentik",
    Ping = "ping",
    Generic = "generic"
);

/// A token row to insert; `digest` is the SHA-256 of the secret, which is never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: uuid::Uuid,
    /// None for an admin-API token.
    pub source_id: Option<i64>,
    /// SHA-256 of the secret.
    pub digest: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

/// A stored token: what `token list` shows and authentication checks (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: uuid::Uuid,
    /// The source it authenticates, or None for an admin token.
    pub source: Option<Source>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl TokenInfo {
    pub fn revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// A token found by its digest (the digest is compared again in constant time).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub token: TokenInfo,
    /// SHA-256 of the secret.
    pub digest: Vec<u8>,
}
