//! Every repository function, written once: SQL text, [`Bind`](super::backend::Bind)s and row
//! decoding ([`RowExt`](super::backend::RowExt)) per role, over a [`Backend`] that runs them.
//!
//! [`SqlStore`] is generic over its backend rather than holding a `dyn` one: each backend has
//! its own row type (`PgRow`, `SqliteRow`), its own connection and transaction types, and the
//! decoding of a row is then a static call with no boxing per row. The price is that the SQL
//! layer is compiled twice, which is invisible to its readers: they see one body of code.
//! Consumers still hold `Arc<dyn Store>` (or one role of it).

mod access;
mod access_report;
mod columns;
mod control;
mod journal;
mod lease;
mod members;
mod pending;
mod plan_pages;
mod record_pages;
mod resource_sql;
mod resources;
mod retention;
mod runs;
mod scope;
mod steps;
mod sync_record;
mod tokens;

use super::backend::Backend;
use super::roles::{Admin, Store};
use super::{PoolStats, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The store: every role trait, implemented once over a backend.
pub struct SqlStore<B: Backend> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub fn new(backend: B) -> SqlStore<B> {
        SqlStore { backend }
    }
}

#[async_trait]
impl<B: Backend> Admin for SqlStore<B> {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.backend.pool_stats()
    }

    fn for_http_worker(self: Arc<Self>, max_connections: u32) -> Arc<dyn Store> {
        match self.backend.for_http_worker(max_connections) {
            Some(backend) => Arc::new(SqlStore { backend }),
            None => self,
        }
    }

    #[tracing::instrument(skip_all, fields(backend = B::NAME), level = "debug")]
    async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrate().await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        if !self.backend.pending_migrations().await?.is_empty() {
            return Err(StoreError::Corrupt("migrations pending".into()));
        }
        Ok(())
    }
}

/// Runs a write again when PostgreSQL aborted it as a deadlock victim or a serialisation
/// failure (rare: lock order is consistent, but a membership change and a member's delete lock
/// the same two rows from opposite ends). The writes are idempotent until commit. SQLite never
/// reports these codes (its one writer holds the write lock from `BEGIN IMMEDIATE`).
async fn retry_transient<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    const ATTEMPTS: u32 = 4;
    let mut n = 1;
    loop {
        match attempt().await {
            Err(StoreError::Database(e)) if n < ATTEMPTS && is_transient(&e) => {
                tracing::info!(error = %e, attempt = n, "retrying a write after a transient conflict");
                tokio::time::sleep(Duration::from_millis(10 * u64::from(n) + rand_jitter_ms()))
                    .await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// deadlock_detected or serialization_failure.
fn is_transient(e: &sqlx::Error) -> bool {
    e.as_database_error().and_then(|d| d.code()).is_some_and(|c| c == "40P01" || c == "40001")
}

fn rand_jitter_ms() -> u64 {
    u64::from(rand::random::<u8>() % 20)
}
