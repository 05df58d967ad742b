//! PostgreSQL (production; any number of replicas share one database): native `uuid`,
//! `timestamptz` and `jsonb` columns, array parameters, and a pool of connections per HTTP
//! worker. Writes lock the rows they read (`SELECT … FOR UPDATE`, see [`super::Dialect`]), so
//! concurrent PATCHes of one group serialise and never lose a member.

use super::{Access, Backend, Bind, Conn, Dialect, RowExt};
use crate::store::{PoolStats, StoreError, Timestamp};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use uuid::Uuid;

/// Migrations applied by a newer release are tolerated (`ignore_missing`): each release's
/// migrations keep the previous release's code working (expand, then contract), so an older
/// pod restarting during a rolling upgrade, or a rollback, still starts.
static MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate::Migrator { ignore_missing: true, ..sqlx::migrate!("../migrations/postgres") };

pub struct PgBackend {
    pool: PgPool,
    /// Every pool of this process: the one [`PgBackend::connect`] opened, then one per HTTP
    /// worker ([`Backend::for_http_worker`]).
    family: Arc<PoolFamily>,
}

/// What the pools of one process share: how to connect, and the pools themselves (for
/// `/metrics`).
struct PoolFamily {
    options: PgConnectOptions,
    first: PgPool,
    http_workers: Mutex<Vec<PgPool>>,
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        // No ping before every checkout (a round trip per request); a broken connection
        // fails its query, the pool drops it, and the error maps to a 503.
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
}

/// How every connection of the store connects: `statement_timeout` (seconds; 0: none) is set
/// at connection start, so a runaway statement cannot hold a connection forever.
/// `client_min_messages = warning`: sqlx logs every server NOTICE at info, and PostgreSQL sends
/// one on each start (`relation "_sqlx_migrations" already exists, skipping`) and for each
/// `IF [NOT] EXISTS` that had nothing to do; WARNINGs and errors still come through.
pub fn connect_options(
    url: &str,
    statement_timeout_seconds: u64,
) -> Result<PgConnectOptions, sqlx::Error> {
    let url = without_unknown_parameters(url);
    let options = PgConnectOptions::from_str(&url)?
        .application_name("scimbridge")
        .options([("client_min_messages", "warning")]);
    Ok(if statement_timeout_seconds > 0 {
        options.options([("statement_timeout", format!("{statement_timeout_seconds}s"))])
    } else {
        options
    })
}

/// The query parameters sqlx's PostgreSQL URL parser knows (sqlx-postgres 0.9,
/// `options/parse.rs`), besides `options[NAME]`.
const KNOWN_PARAMETERS: [&str; 18] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// The URL without the query parameters sqlx does not know: sqlx ignores them too, but logs
/// each with its value, which for `sslpassword` is a secret. Here only the name is logged.
fn without_unknown_parameters(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            let known = KNOWN_PARAMETERS.contains(&key)
                || (key.starts_with("options[") && key.ends_with(']'));
            if !known && !key.is_empty() {
                tracing::warn!(
                    parameter = key,
                    "database.url: ignoring an unknown connect parameter"
                );
            }
            known
        })
        .collect();
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

impl PgBackend {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        statement_timeout_seconds: u64,
    ) -> Result<PgBackend, StoreError> {
        let options = connect_options(url, statement_timeout_seconds)?;
        // One connection first, given up after CONNECT_TIMEOUT: the pool would retry a refused
        // connection until its acquire timeout and then say only "pool timed out".
        match tokio::time::timeout(CONNECT_TIMEOUT, sqlx::ConnectOptions::connect(&options)).await {
            Ok(Ok(conn)) => drop(sqlx::Connection::close(conn).await),
            Ok(Err(e)) => return Err(StoreError::Unavailable(connect_failure(&options, &e))),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {}: no answer within {} s",
                    address(&options),
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = pool_options(max_connections).connect_with(options.clone()).await?;
        let http_workers = Mutex::new(Vec::new());
        let family = Arc::new(PoolFamily { options, first: pool.clone(), http_workers });
        Ok(PgBackend { pool, family })
    }
}

/// How long a first connection may take before PostgreSQL counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl PoolFamily {
    /// A pool that timed out is either busy (every connection in use, the database up) or
    /// cut off from the database (sqlx retries refused connections until the timeout and then
    /// says only "pool timed out"): one direct connection attempt tells which, so that an
    /// outage reads "unavailable", not "busy".
    async fn classify(&self, e: sqlx::Error) -> StoreError {
        if !matches!(e, sqlx::Error::PoolTimedOut) {
            return StoreError::Database(e);
        }
        let probe = Duration::from_secs(2);
        match tokio::time::timeout(probe, sqlx::ConnectOptions::connect(&self.options)).await {
            Ok(Ok(conn)) => {
                drop(sqlx::Connection::close(conn).await);
                StoreError::Database(e)
            }
            Ok(Err(cause)) => StoreError::Unavailable(connect_failure(&self.options, &cause)),
            Err(_) => StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: no answer within {} s",
                address(&self.options),
                probe.as_secs()
            )),
        }
    }
}

/// `host:port` (or the socket directory and port) of the server.
fn address(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// Why connecting failed, once, naming the server: `cannot connect to PostgreSQL at
/// db:5432: connection refused` (or an unknown host, no such database, authentication
/// failed) — not sqlx's chain, which repeats itself and carries the server's source position.
pub fn connect_failure(options: &PgConnectOptions, e: &sqlx::Error) -> String {
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    let cause = match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused".to_owned()
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            "no answer (timed out)".to_owned()
        }
        // tokio's resolver error has no ErrorKind of its own, only this text.
        sqlx::Error::Io(io) if io.to_string().contains("failed to lookup address") => {
            format!("unknown host {:?} ({io})", options.get_host())
        }
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::Database(d) => match d.code().as_deref() {
            Some("3D000") => format!("no such database {database:?}"),
            Some("28P01") => format!("authentication failed for user {user:?} (wrong password?)"),
            Some("28000") => format!("authentication refused for user {user:?}: {}", d.message()),
            _ => d.message().to_owned(),
        },
        other => other.to_string(),
    };
    format!("cannot connect to PostgreSQL at {}: {cause}", address(options))
}

#[async_trait]
impl Backend for PgBackend {
    super::session_types!(Postgres, PgRow);

    const NAME: &'static str = "postgres";
    const DIALECT: Dialect = Dialect::Postgres;

    fn pool_stats(&self) -> Vec<PoolStats> {
        let mut stats = vec![PoolStats::of("postgres", &self.family.first)];
        let workers = self.family.http_workers.lock().unwrap_or_else(PoisonError::into_inner);
        let each = workers.iter().map(|p| PoolStats::of("postgres_http", p));
        stats.extend(each.reduce(PoolStats::combined));
        stats
    }

    /// A pool of the calling HTTP worker's own: a connection's socket wakes the thread that
    /// opened it, so a connection opened on one worker and used on another costs two
    /// cross-thread wake-ups per query (measured: 1.5x the throughput of reads with a pool of
    /// the worker's own). Opened lazily, on this worker's first request.
    fn for_http_worker(&self, max_connections: u32) -> Option<PgBackend> {
        let pool = pool_options(max_connections).connect_lazy_with(self.family.options.clone());
        let mut workers = self.family.http_workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.push(pool.clone());
        Some(PgBackend { pool, family: self.family.clone() })
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // sqlx takes a PostgreSQL advisory lock around the migrations, so replicas starting
        // together migrate once. Neither the wait for that lock nor a long migration is cut
        // off by database.statement_timeout_seconds: this connection runs without it and is
        // closed afterwards rather than returned to the pool.
        let mut conn = self.pool.acquire().await?;
        conn.close_on_drop();
        sqlx::query("SET statement_timeout = 0").execute(&mut *conn).await?;
        MIGRATOR.run_direct(None, &mut *conn, false).await?;
        Ok(())
    }

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn read(&self) -> Result<Self::Conn, StoreError> {
        match self.pool.acquire().await {
            Ok(conn) => Ok(Session(conn)),
            Err(e) => Err(self.family.classify(e).await),
        }
    }

    async fn write(&self) -> Result<Self::Tx, StoreError> {
        match self.pool.begin().await {
            Ok(tx) => Ok(Session(tx)),
            Err(e) => Err(self.family.classify(e).await),
        }
    }

    /// One snapshot: a membership never names a user the same read did not see.
    async fn snapshot(&self) -> Result<Self::Tx, StoreError> {
        let mut tx = Session(self.pool.begin().await?);
        tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", Vec::new())
            .await?;
        Ok(tx)
    }

    async fn classify(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Database(e) => self.family.classify(e).await,
            other => other,
        }
    }

    async fn pooled(&self, _on: Access) -> Result<Self::Conn, StoreError> {
        Ok(Session(self.pool.acquire().await?))
    }
}

super::session!(Postgres, PgConnection, PgRow);

/// Binds one value: every type natively.
fn bind(q: Query<'_, Postgres, PgArguments>, b: Bind) -> Query<'_, Postgres, PgArguments> {
    use super::Ty;
    super::bind_match!(q, b, {
        Bind::Time(t) => q.bind(t),
        Bind::Id(id) => q.bind(id),
        Bind::Json(v) => q.bind(v),
        Bind::Ids(v) => q.bind(v),
        Bind::Texts(v) => q.bind(v),
        Bind::Null(Ty::Text) => q.bind(None::<String>),
        Bind::Null(Ty::Int) => q.bind(None::<i64>),
        Bind::Null(Ty::Time) => q.bind(None::<Timestamp>),
        Bind::Null(Ty::Id) => q.bind(None::<Uuid>),
        Bind::Null(Ty::Json) => q.bind(None::<Value>),
    })
}

/// Every column decodes natively.
impl RowExt for PgRow {
    super::native_columns!();
    super::native_columns!(
        uuid: Uuid,
        opt_uuid: Option<Uuid>,
        ts: Timestamp,
        opt_ts: Option<Timestamp>,
        json: Value,
        opt_json: Option<Value>,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_are_dropped_before_sqlx_logs_their_values() {
        assert_eq!(
            without_unknown_parameters("postgres://u@h/db?sslmode=require&sslpassword=s&x"),
            "postgres://u@h/db?sslmode=require"
        );
        assert_eq!(
            without_unknown_parameters("postgres://u@h/db?password=p&options[search_path]=a"),
            "postgres://u@h/db?password=p&options[search_path]=a"
        );
        assert_eq!(
            without_unknown_parameters("postgres://u@h/db?sslpassword=s"),
            "postgres://u@h/db"
        );
        assert_eq!(without_unknown_parameters("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn statement_timeout_and_no_notices_in_the_connect_options() {
        const QUIET: &str = "-c client_min_messages=warning";
        let o = connect_options("postgres://u@h/db", 30).unwrap();
        assert_eq!(o.get_options(), Some(&*format!("{QUIET} -c statement_timeout=30s")));
        let o = connect_options("postgres://u@h/db?options=-c%20work_mem%3D4MB", 5).unwrap();
        assert_eq!(
            o.get_options(),
            Some(&*format!("-c work_mem=4MB {QUIET} -c statement_timeout=5s"))
        );
        assert_eq!(connect_options("postgres://u@h/db", 0).unwrap().get_options(), Some(QUIET));
    }
}
