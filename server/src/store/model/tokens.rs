//! Sources and the bearer tokens that authenticate SCIM clients and the admin API.

use super::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub id: i64,
    pub name: String,
    pub compat: String,
    pub detected_compat: Option<String>,
}

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

/// What `token list` shows.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: uuid::Uuid,
    /// The source's name, or None for an admin token.
    pub source: Option<String>,
    /// The source's stored compatibility mode (None for an admin token).
    pub compat: Option<String>,
    /// What `auto` recognised of the source's client, once it has.
    pub detected_compat: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A token found by its digest, with what authentication needs.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: uuid::Uuid,
    pub digest: Vec<u8>,
    /// None for an admin token.
    pub source: Option<Source>,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked: bool,
}
