//! Sources and bearer tokens (the [`Tokens`] role). A token is found by the SHA-256 digest of
//! its secret; the secret itself is never stored, and the digest is never logged.

use super::SqlStore;
use crate::store::backend::{Access, Backend, Bind, RowExt, binds};
use crate::store::roles::Tokens;
use crate::store::{NewToken, Source, StoreError, Timestamp, TokenInfo, TokenRecord, now};
use async_trait::async_trait;
use uuid::Uuid;

fn source_of<R: RowExt>(row: &R) -> Result<Source, StoreError> {
    Ok(Source {
        id: row.int("id")?,
        name: row.text("name")?,
        compat: row.text("compat")?,
        detected_compat: row.opt_text("detected_compat")?,
    })
}

fn token_info_of<R: RowExt>(row: &R) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        id: row.uuid("id")?,
        source: row.opt_text("source")?,
        compat: row.opt_text("compat")?,
        detected_compat: row.opt_text("detected_compat")?,
        created_at: row.ts("created_at")?,
        expires_at: row.opt_ts("expires_at")?,
        last_used_at: row.opt_ts("last_used_at")?,
        revoked_at: row.opt_ts("revoked_at")?,
    })
}

fn token_record_of<R: RowExt>(row: &R) -> Result<TokenRecord, StoreError> {
    let source = match row.opt_int("source_id")? {
        Some(id) => Some(Source {
            id,
            name: row.text("name")?,
            compat: row.text("compat")?,
            detected_compat: row.opt_text("detected_compat")?,
        }),
        None => None,
    };
    Ok(TokenRecord {
        id: row.uuid("id")?,
        digest: row.bytes("digest")?,
        source,
        expires_at: row.opt_ts("expires_at")?,
        last_used_at: row.opt_ts("last_used_at")?,
        revoked: row.bool("revoked")?,
    })
}

#[async_trait]
impl<B: Backend> Tokens for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(source = name), level = "debug")]
    async fn upsert_source(&self, name: &str, compat: Option<&str>) -> Result<Source, StoreError> {
        let sql = "INSERT INTO sources (name, compat, created_at) VALUES ($1, COALESCE($2, 'auto'), $3) \
             ON CONFLICT (name) DO UPDATE SET compat = COALESCE($2, sources.compat) \
             RETURNING id, name, compat, detected_compat";
        let row = self.backend.fetch_one(Access::Write, sql, binds![name, compat, now()]).await?;
        source_of(&row)
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn list_sources(&self) -> Result<Vec<Source>, StoreError> {
        let sql = "SELECT id, name, compat, detected_compat FROM sources ORDER BY name";
        self.backend.fetch_all(Access::Read, sql, Vec::new()).await?.iter().map(source_of).collect()
    }

    #[tracing::instrument(skip_all, fields(token_id = %token.id, source_id = token.source_id), level = "debug")]
    async fn insert_token(&self, token: &NewToken) -> Result<(), StoreError> {
        let kind = if token.source_id.is_some() { "scim" } else { "admin" };
        let sql = "INSERT INTO tokens (id, source_id, kind, digest, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)";
        let binds = vec![
            Bind::Id(token.id),
            Bind::from(token.source_id),
            Bind::from(kind),
            Bind::Bytes(token.digest.clone()),
            Bind::Time(token.created_at),
            Bind::from(token.expires_at),
        ];
        self.backend.execute(Access::Write, sql, binds).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let sql = "SELECT t.id, s.name AS source, s.compat, s.detected_compat, t.created_at, t.expires_at, \
             t.last_used_at, t.revoked_at FROM tokens t LEFT JOIN sources s ON s.id = t.source_id \
             ORDER BY t.created_at, t.id";
        let rows = self.backend.fetch_all(Access::Read, sql, Vec::new()).await?;
        rows.iter().map(token_info_of).collect()
    }

    #[tracing::instrument(skip_all, fields(token_id = %id), level = "debug")]
    async fn revoke_token(&self, id: Uuid) -> Result<bool, StoreError> {
        let sql = "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
        Ok(self.backend.execute(Access::Write, sql, binds![id, now()]).await? == 1)
    }

    /// The first query of every request: an outage shows here first, so its error is
    /// classified (busy or unreachable).
    #[tracing::instrument(skip_all, level = "debug")]
    async fn find_token(&self, digest: &[u8]) -> Result<Option<TokenRecord>, StoreError> {
        let sql = "SELECT t.id, t.digest, t.expires_at, t.last_used_at, t.revoked_at IS NOT NULL AS revoked, \
                    s.id AS source_id, s.name, s.compat, s.detected_compat \
             FROM tokens t LEFT JOIN sources s ON s.id = t.source_id WHERE t.digest = $1";
        let binds = vec![Bind::Bytes(digest.to_vec())];
        match self.backend.fetch_optional(Access::Read, sql, binds).await {
            Ok(row) => row.as_ref().map(token_record_of).transpose(),
            Err(e) => Err(self.backend.classify(e).await),
        }
    }

    #[tracing::instrument(skip_all, fields(token_id = %id), level = "debug")]
    async fn touch_token(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        let sql = "UPDATE tokens SET last_used_at = $2 WHERE id = $1";
        self.backend.execute(Access::Write, sql, binds![id, at]).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(source_id, compat), level = "debug")]
    async fn set_detected_compat(&self, source_id: i64, compat: &str) -> Result<(), StoreError> {
        let sql =
            "UPDATE sources SET detected_compat = $2 WHERE id = $1 AND detected_compat IS NULL";
        self.backend.execute(Access::Write, sql, binds![source_id, compat]).await?;
        Ok(())
    }
}
