//! The sync lease (the [`Lease`] role): one row, taken by one run at a time across every
//! replica and the CLI. PostgreSQL reckons expiry with the database's clock, so replicas whose
//! clocks disagree still agree on when a lease ends; SQLite is one file on one machine, whose
//! local clock is the database's (timestamps are RFC 3339 text, so text order is time order).

use super::SqlStore;
use crate::store::backend::{Access, Backend, Bind, Dialect, binds};
use crate::store::roles::Lease;
use crate::store::{StoreError, now};
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
impl<B: Backend> Lease for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(%holder, seconds), level = "debug")]
    async fn acquire_sync_lease(&self, holder: Uuid, seconds: u32) -> Result<bool, StoreError> {
        let (sql, binds) = match B::DIALECT {
            Dialect::Postgres => (
                "INSERT INTO sync_lease (id, holder, expires_at) \
                 VALUES (1, $1, now() + make_interval(secs => $2)) \
                 ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
                 WHERE sync_lease.holder = EXCLUDED.holder OR sync_lease.expires_at < now()",
                vec![Bind::Id(holder), Bind::Float(f64::from(seconds))],
            ),
            Dialect::Sqlite => (
                "INSERT INTO sync_lease (id, holder, expires_at) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE sync_lease.holder = excluded.holder OR sync_lease.expires_at < $3",
                binds![holder, now() + chrono::TimeDelta::seconds(i64::from(seconds)), now()],
            ),
        };
        Ok(self.backend.execute(Access::Write, sql, binds).await? == 1)
    }

    #[tracing::instrument(skip_all, fields(%holder), level = "debug")]
    async fn release_sync_lease(&self, holder: Uuid) -> Result<(), StoreError> {
        let sql = "DELETE FROM sync_lease WHERE holder = $1";
        self.backend.execute(Access::Write, sql, binds![holder]).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn sync_running(&self) -> Result<bool, StoreError> {
        let (sql, binds) = match B::DIALECT {
            Dialect::Postgres => {
                ("SELECT 1 AS held FROM sync_lease WHERE id = 1 AND expires_at > now()", Vec::new())
            }
            Dialect::Sqlite => {
                ("SELECT 1 AS held FROM sync_lease WHERE id = 1 AND expires_at > $1", binds![now()])
            }
        };
        Ok(self.backend.fetch_optional(Access::Read, sql, binds).await?.is_some())
    }
}
