//! Bearer tokens: generated here, shown once, stored only as their SHA-256 digest, verified in
//! constant time. A verified token is cached briefly so that reads do not cost a database
//! round trip each; revocation therefore takes effect within `scim.token_cache_seconds`.

use crate::names::{ADMIN_NAME, SourceName};
use crate::store::{CompatMode, NewToken, Source, StoreError, Timestamp, TokenRecord, Tokens, now};
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Every token starts with this, so secret scanners can recognise a leaked one.
pub const TOKEN_PREFIX: &str = "scimbridge_";
/// 43 alphanumerics carry 256 bits of entropy.
const TOKEN_RANDOM_CHARS: usize = 43;
/// `last_used_at` is written at most this often per token.
const TOUCH_INTERVAL: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

pub fn generate_token() -> String {
    format!("{TOKEN_PREFIX}{}", Alphanumeric.sample_string(&mut rand::rng(), TOKEN_RANDOM_CHARS))
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Creates a token for `source` (created if new) or, with None, an admin token. Returns the
/// token's id and its secret.
pub async fn create_token(
    store: &dyn Tokens,
    source: Option<(&SourceName, Option<CompatMode>)>,
    expires_in_days: Option<u32>,
) -> Result<(uuid::Uuid, String, Option<Source>), StoreError> {
    let source = match source {
        Some((name, compat)) => Some(store.upsert_source(name, compat).await?),
        None => None,
    };
    let secret = generate_token();
    let created_at = now();
    let token = NewToken {
        id: uuid::Uuid::now_v7(),
        source_id: source.as_ref().map(|s| s.id),
        digest: digest(&secret).to_vec(),
        created_at,
        expires_at: expires_in_days.map(|d| created_at + chrono::TimeDelta::days(i64::from(d))),
    };
    store.insert_token(&token).await?;
    Ok((token.id, secret, source))
}

/// Whose token a file of `[auth] tokens_dir` holds: its file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    /// A file named `admin`: an admin-API token.
    Admin,
    Source(SourceName),
}

impl TokenOwner {
    /// The owner a file name names: `admin`, or a source name.
    pub fn of_file(name: &str) -> Result<TokenOwner, crate::names::SourceNameError> {
        if name == ADMIN_NAME {
            return Ok(TokenOwner::Admin);
        }
        SourceName::parse(name).map(TokenOwner::Source)
    }

    fn source(&self) -> Option<&SourceName> {
        match self {
            TokenOwner::Admin => None,
            TokenOwner::Source(name) => Some(name),
        }
    }
}

/// Tokens shorter than this are refused in `[auth] tokens_dir`: a mounted token is as strong
/// as its length (generated ones have 54 characters).
pub const MIN_TOKEN_CHARS: usize = 32;

/// The `(owner, token)` pairs of `[auth] tokens_dir`, checked without touching the
/// database: every file name must be a source name (or `admin`) and every token at least
/// [`MIN_TOKEN_CHARS`] long without whitespace inside. Errors name the file.
pub fn read_tokens_dir(dir: &std::path::Path) -> anyhow::Result<Vec<(TokenOwner, String)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("config: auth.tokens_dir {}: {e}", dir.display()))?;
    let mut tokens = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A mounted Secret also holds `..data` and `..<timestamp>`; its keys are symlinks.
        let path = entry.path();
        if name.starts_with('.') || !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let owner = TokenOwner::of_file(&name).map_err(|problem| {
            anyhow::anyhow!(
                "config: auth.tokens_dir: file {name:?}: the file name is the source name: {problem}"
            )
        })?;
        let secret = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("config: auth.tokens_dir: {}: {e}", path.display()))?;
        let secret = secret.trim();
        if secret.is_empty() || secret.chars().any(char::is_whitespace) {
            anyhow::bail!(
                "config: auth.tokens_dir: file {name:?} holds no token (or one with whitespace inside)"
            );
        }
        let length = secret.chars().count();
        if length < MIN_TOKEN_CHARS {
            anyhow::bail!(
                "config: auth.tokens_dir: the token in {} has {length} characters; at least {MIN_TOKEN_CHARS} are required (`scimbridge token create` makes them)",
                path.display()
            );
        }
        tokens.push((owner, secret.to_owned()));
    }
    Ok(tokens)
}

/// Accepts the tokens in `dir` (`[auth] tokens_dir`, a mounted Kubernetes Secret): each file
/// is named after its source (`admin`: an admin-API token) and holds the token. A token already
/// known — also one revoked, which stays revoked — is left as it is; a new one is stored as its
/// digest, creating the source if it is new. Idempotent, and safe when replicas start at once.
/// Removing a file does not revoke its token: `scimbridge token revoke` does. Returns how many
/// tokens were added.
pub async fn provision_from_dir(
    store: &dyn Tokens,
    dir: &std::path::Path,
) -> anyhow::Result<usize> {
    let mut added = 0;
    for (owner, secret) in read_tokens_dir(dir)? {
        let digest = digest(&secret);
        let name = owner.source().map_or(ADMIN_NAME, SourceName::as_str);
        if let Some(known) = store.find_token(&digest).await? {
            let known = known.token;
            let known_owner = known.source.as_ref().map(|s| &s.name);
            if known_owner != owner.source() {
                anyhow::bail!(
                    "config: auth.tokens_dir: the token in {name:?} is already the token of {}",
                    known_owner.map_or("the admin API", SourceName::as_str)
                );
            }
            if known.revoked() {
                tracing::warn!(source = %name, "the token in auth.tokens_dir was revoked; it stays revoked");
            }
            continue;
        }
        let source = match owner.source() {
            Some(name) => Some(store.upsert_source(name, None).await?),
            None => None,
        };
        let token = NewToken {
            id: uuid::Uuid::now_v7(),
            source_id: source.as_ref().map(|s| s.id),
            digest: digest.to_vec(),
            created_at: now(),
            expires_at: None,
        };
        match store.insert_token(&token).await {
            Ok(()) => {
                added += 1;
                tracing::info!(source = %name, token_id = %token.id, "token from auth.tokens_dir accepted");
            }
            // Another replica stored it first.
            Err(_) if store.find_token(&digest).await?.is_some() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(added)
}

/// Who a request acts as.
#[derive(Debug, Clone)]
pub enum Principal {
    Scim { token_id: uuid::Uuid, source: Source },
    Admin { token_id: uuid::Uuid },
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Cached {
    record: TokenRecord,
    fetched: Instant,
}

pub struct Authenticator {
    store: Arc<dyn Tokens>,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Tokens>, ttl: Duration) -> Self {
        Authenticator { store, ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// Verifies the value of an `Authorization` header.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = header.and_then(bearer).ok_or(AuthError::Missing)?;
        let presented = digest(token);
        let record = match self.cached(&presented) {
            Some(r) => r,
            None => {
                let r = self.store.find_token(&presented).await?.ok_or(AuthError::Invalid)?;
                self.remember(presented, r.clone());
                r
            }
        };
        // The lookup was by digest; compare again in constant time so that no timing signal
        // depends on how much of a guessed digest matched.
        if !bool::from(presented.as_slice().ct_eq(record.digest.as_slice())) {
            return Err(AuthError::Invalid);
        }
        let token = record.token;
        if token.revoked() {
            return Err(AuthError::Revoked);
        }
        let at = now();
        if token.expires_at.is_some_and(|e| e <= at) {
            return Err(AuthError::Expired);
        }
        self.touch(&presented, token.id, token.last_used_at, at);
        Ok(match token.source {
            Some(source) => Principal::Scim { token_id: token.id, source },
            None => Principal::Admin { token_id: token.id },
        })
    }

    fn cached(&self, key: &[u8; 32]) -> Option<TokenRecord> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|c| c.fetched.elapsed() < self.ttl).map(|c| c.record.clone())
    }

    fn remember(&self, key: [u8; 32], record: TokenRecord) {
        if let Ok(mut cache) = self.cache.lock() {
            // Bounded: expired entries go first; the cache only ever holds live tokens' digests.
            if cache.len() > 10_000 {
                let ttl = self.ttl;
                cache.retain(|_, c| c.fetched.elapsed() < ttl);
            }
            cache.insert(key, Cached { record, fetched: Instant::now() });
        }
    }

    /// Records the last use, at most once a minute per token; a failure only logs.
    fn touch(&self, key: &[u8; 32], id: uuid::Uuid, last_used: Option<Timestamp>, at: Timestamp) {
        if last_used.is_some_and(|t| at - t < TOUCH_INTERVAL) {
            return;
        }
        if let Ok(mut cache) = self.cache.lock()
            && let Some(c) = cache.get_mut(key)
        {
            c.record.token.last_used_at = Some(at);
        }
        // In the background: the request need not wait for this write (on SQLite it would
        // queue behind other writers).
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(id, at).await {
                tracing::warn!(error = %e, token_id = %id, "could not record the token's last use");
            }
        });
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_and_distinct() {
        let a = generate_token();
        let b = generate_token();
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + TOKEN_RANDOM_CHARS);
        assert_ne!(a, b);
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
