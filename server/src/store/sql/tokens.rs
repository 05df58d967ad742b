//! Sources and bearer tokens (the [`Tokens`] role). A token is found by the SHA-256 digest of
//! its secret; the secret itself is never stored, and the digest is never logged.

use super::SqlStore;
use crate::names::SourceName;
use crate::store::backend::{Access, Backend, Bind, RowExt, binds};
use crate::store::roles::Tokens;
use crate::store::{
    CompatMode, NewToken, Source, StoreError, Timestamp, TokenInfo, TokenRecord, now,
};
use async_trait::async_trait;
use uuid::Uuid;

/// A source's columns, as every query here selects them ([`source_of`] decodes them).
const SOURCE_COLUMNS: &str =
    "s.id AS source_id, s.name AS source_name, s.compat, s.detected_compat";
/// A token's columns and its source's (NULL for an admin token): [`token_of`] decodes them.
const TOKEN_COLUMNS: &str = "t.id, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";
const TOKENS_WITH_SOURCES: &str = "tokens t LEFT JOIN sources s ON s.id = t.source_id";

/// The source of a row selecting [`SOURCE_COLUMNS`]; a stored name or mode this version does
/// not know is [`StoreError::Corrupt`].
fn source_of<R: RowExt>(row: &R) -> Result<Source, StoreError> {
    let name = row.text("source_name")?;
    Ok(Source {
        id: row.int("source_id")?,
        name: SourceName::parse(&name)
            .map_err(|e| StoreError::Corrupt(format!("source name {name:?}: {e}")))?,
        compat: CompatMode::parse(&row.text("compat")?)?,
        detected_compat: row
            .opt_text("detected_compat")?
            .as_deref()
            .map(CompatMode::parse)
            .transpose()?,
    })
}

/// The token of a row selecting [`TOKEN_COLUMNS`] and [`SOURCE_COLUMNS`].
fn token_of<R: RowExt>(row: &R) -> Result<TokenInfo, StoreError> {
    let source = match row.opt_int("source_id")? {
        Some(_) => Some(source_of(row)?),
        None => None,
    };
    Ok(TokenInfo {
        id: row.uuid("id")?,
        source,
        created_at: row.ts("created_at")?,
        expires_at: row.opt_ts("expires_at")?,
        last_used_at: row.opt_ts("last_used_at")?,
        revoked_at: row.opt_ts("revoked_at")?,
    })
}

#[async_trait]
impl<B: Backend> Tokens for SqlStore<B> {
    #[tracing::instrument(skip_all, fields(source = %name), level = "debug")]
    async fn upsert_source(
        &self,
        name: &SourceName,
        compat: Option<CompatMode>,
    ) -> Result<Source, StoreError> {
        let sql = "INSERT INTO sources (name, compat, created_at) VALUES ($1, COALESCE($2, 'auto'), $3) \
             ON CONFLICT (name) DO UPDATE SET compat = COALESCE($2, sources.compat) \
             RETURNING id AS source_id, name AS source_name, compat, detected_compat";
        let binds = binds![name.as_str(), compat.map(CompatMode::as_str), now()];
        source_of(&self.backend.fetch_one(Access::Write, sql, binds).await?)
    }

    #[tracing::instrument(skip_all, level = "debug")]
    async fn list_sources(&self) -> Result<Vec<Source>, StoreError> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources s ORDER BY s.name");
        self.backend
            .fetch_all(Access::Read, &sql, Vec::new())
            .await?
            .iter()
            .map(source_of)
            .collect()
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
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {SOURCE_COLUMNS} FROM {TOKENS_WITH_SOURCES} \
             ORDER BY t.created_at, t.id"
        );
        let rows = self.backend.fetch_all(Access::Read, &sql, Vec::new()).await?;
        rows.iter().map(token_of).collect()
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
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {SOURCE_COLUMNS}, t.digest FROM {TOKENS_WITH_SOURCES} \
             WHERE t.digest = $1"
        );
        let binds = vec![Bind::Bytes(digest.to_vec())];
        match self.backend.fetch_optional(Access::Read, &sql, binds).await {
            Ok(Some(row)) => {
                Ok(Some(TokenRecord { token: token_of(&row)?, digest: row.bytes("digest")? }))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.backend.classify(e).await),
        }
    }

    #[tracing::instrument(skip_all, fields(token_id = %id), level = "debug")]
    async fn touch_token(&self, id: Uuid, at: Timestamp) -> Result<(), StoreError> {
        let sql = "UPDATE tokens SET last_used_at = $2 WHERE id = $1";
        self.backend.execute(Access::Write, sql, binds![id, at]).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(source_id, compat = compat.as_str()), level = "debug")]
    async fn set_detected_compat(
        &self,
        source_id: i64,
        compat: CompatMode,
    ) -> Result<(), StoreError> {
        let sql =
            "UPDATE sources SET detected_compat = $2 WHERE id = $1 AND detected_compat IS NULL";
        self.backend.execute(Access::Write, sql, binds![source_id, compat.as_str()]).await?;
        Ok(())
    }
}
