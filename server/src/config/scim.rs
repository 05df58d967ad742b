//! `[scim]`: the limits of the SCIM endpoints.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScimSettings {
    /// Page size cap and the default `count` (advertised as `filter.maxResults`).
    pub max_results: u32,
    /// Operations per Bulk request (advertised as `bulk.maxOperations`; authentik sizes its
    /// PATCH batches by it).
    pub bulk_max_operations: u32,
    /// Largest `/Bulk` request body in bytes (advertised as `bulk.maxPayloadSize`).
    pub max_payload_bytes: u64,
    /// Operations per PATCH request; more is 400 `tooMany`. Each runs inside the resource's
    /// write transaction, so this bounds how long one request holds the writes of every source
    /// (SQLite) or the group's lock (PostgreSQL). SCIM has no ServiceProviderConfig field for it.
    pub max_patch_operations: u32,
    /// Largest request body in bytes everywhere else (a parsed body costs many times its size
    /// in memory).
    pub max_request_bytes: u64,
    /// How many `/Bulk` bodies larger than `max_request_bytes` may be read and processed at
    /// once; another one gets 503 with `Retry-After`. Unset: sized from the memory available
    /// (`startup::resources::large_request_permits`).
    pub max_concurrent_large_requests: Option<u32>,
    /// How long a verified token stays cached; a revocation takes effect within this time.
    pub token_cache_seconds: u64,
}

impl Default for ScimSettings {
    fn default() -> Self {
        ScimSettings {
            max_results: 1000,
            bulk_max_operations: 100,
            max_payload_bytes: 8 * 1024 * 1024,
            max_patch_operations: 1000,
            max_request_bytes: 1024 * 1024,
            max_concurrent_large_requests: None,
            token_cache_seconds: 5,
        }
    }
}
