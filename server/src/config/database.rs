//! `[database]`: which database, and how many connections a replica may hold.

use serde::{Deserialize, Serialize};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://scimbridge.db";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`.
    pub url: String,
    /// PostgreSQL connections per replica (SQLite: readers; it always has one writer). `serve`
    /// shares them out as `store::budget::ConnectionBudget` says.
    pub max_connections: u32,
    /// PostgreSQL `statement_timeout` of every connection (0: none), so a runaway statement
    /// cannot hold a connection forever. Migrations run without it.
    pub statement_timeout_seconds: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: DEFAULT_DATABASE_URL.to_owned(),
            max_connections: 10,
            statement_timeout_seconds: 30,
        }
    }
}
