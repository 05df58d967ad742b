//! Storage: the store's role traits ([`roles`]: [`Resources`], [`Tokens`], [`Journal`],
//! [`Pending`], [`SyncRecord`], [`AccessRecord`], [`AccessReport`], [`RunLog`], [`PlanPages`],
//! [`Lease`], [`Control`], [`Retention`], [`Admin`]; [`Store`] is all of them), implemented
//! once in [`sql`] over a [`backend`] codec: PostgreSQL for production, SQLite as the embedded
//! default, chosen by the database URL's scheme.
//!
//! Every write runs in one transaction that also appends its change-journal row, so a write is
//! acknowledged only once both are durable. Group membership is a relation (`group_members`),
//! so adding or removing one member of a huge group touches one row.

mod backend;
pub mod budget;
pub mod filter_sql;
mod model;
mod roles;
mod sql;
mod url;

pub use backend::{Bind, postgres};
pub use model::*;
pub use roles::*;
pub use url::{describe_url, redact_url, url_problem};

use backend::postgres::PgBackend;
use backend::sqlite::{self, SqliteBackend};
use sql::SqlStore;
use std::sync::Arc;

/// Opens the store the URL names: `postgres://…`/`postgresql://…` or `sqlite://…`, with at
/// most `max_connections` pooled connections (SQLite: readers, plus its one writer), and the
/// default `[database]` settings otherwise.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Arc<dyn Store>> {
    let database = crate::config::DatabaseSettings { url: url.to_owned(), ..Default::default() };
    connect_configured(&database, max_connections).await
}

/// [`connect`] with every `[database]` setting (`statement_timeout_seconds`).
pub async fn connect_configured(
    database: &crate::config::DatabaseSettings,
    max_connections: u32,
) -> anyhow::Result<Arc<dyn Store>> {
    open(database, max_connections, IfMissing::Create).await
}

/// What opening a SQLite database does when its file does not exist. Only `serve` and
/// `migrate` create one (issue 14): any other command run from the wrong directory would
/// otherwise work on a new, empty database and say nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    Create,
    /// A usage error ([`crate::exit::Usage`]) naming the path and `--database-url`.
    Refuse,
}

/// [`connect_configured`], creating a missing SQLite file only when `if_missing` says so.
pub async fn open(
    database: &crate::config::DatabaseSettings,
    max_connections: u32,
    if_missing: IfMissing,
) -> anyhow::Result<Arc<dyn Store>> {
    let url = database.url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let timeout = database.statement_timeout_seconds;
        let backend = PgBackend::connect(url, max_connections, timeout).await?;
        Ok(Arc::new(SqlStore::new(backend)))
    } else if url.starts_with("sqlite:") {
        let create = if_missing == IfMissing::Create;
        if let Some(path) = sqlite::file_path(url)
            && !create
            && !path.exists()
        {
            return Err(crate::exit::usage(format!(
                "no database at {}: only `serve` and `migrate` create one. Set --database-url \
                 (or DATABASE_URL, or [database] url) to the database the server uses, or run \
                 `scimbridge migrate` to create this one",
                path.display()
            )));
        }
        let backend = SqliteBackend::open(url, max_connections, create).await?;
        Ok(Arc::new(SqlStore::new(backend)))
    } else {
        anyhow::bail!("database.url: {}", url_problem(url).unwrap_or_default())
    }
}

#[cfg(test)]
mod access_report_tests;
#[cfg(test)]
pub(crate) mod tests;
