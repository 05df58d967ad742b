//! `[sources.NAME]`: what each identity source may do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSettings {
    /// Compatibility mode; overrides what `token create --compat` stored.
    pub compat: Option<String>,
    /// Sources whose users and groups this one may take over (identity-source migration).
    pub adopt_from: Vec<String>,
    /// Whether this source's creates may take over an unmanaged AWS user or group of the same
    /// userName / displayName (one an admin made by hand, or another tool). Off: such a
    /// create is an error naming the AWS principal, which is left as it is.
    pub adopt_existing: bool,
}
