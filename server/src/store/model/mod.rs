//! Plain data passed across the store's role traits, one file per role; this file holds what
//! every role shares: timestamps, the error type, and pool figures.

use chrono::{DateTime, SecondsFormat, Utc};
use scim_schema::ScimError;

/// `ALL`, `as_str()`, `parse()`, `Display` and `FromStr` for an enum stored as text: the stored text
/// is the one spelling (`parse` fails as [`StoreError::Corrupt`]).
macro_rules! text_enum {
    ($ty:ident, $what:literal, $($variant:ident = $text:literal),+) => {
        impl $ty {
            /// Every value, in the order declared.
            pub const ALL: &[$ty] = &[$($ty::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<$ty, $crate::store::StoreError> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err($crate::store::StoreError::Corrupt(format!(concat!("unknown ", $what, " {:?}"), other))),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Compares with the stored text, so `value == "text"` reads as it did with strings.
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::store::StoreError;

            fn from_str(s: &str) -> Result<$ty, Self::Err> {
                $ty::parse(s)
            }
        }
    };
}

mod access;
mod access_report;
mod control;
mod journal;
mod pending;
mod resources;
mod runs;
mod scope;
mod sync_record;
mod tokens;

pub use access::*;
pub use access_report::*;
pub use control::*;
pub use journal::*;
pub use pending::*;
pub use resources::*;
pub use runs::*;
pub use scope::*;
pub use sync_record::*;
pub use tokens::*;

pub type Timestamp = DateTime<Utc>;

/// RFC 3339 with microseconds in UTC: the one textual form of every timestamp (SQLite stores it,
/// so text order is time order; `meta` shows it).
pub fn format_timestamp(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// Now, truncated to microseconds (what both databases keep), so that a value read back equals
/// the value written.
pub fn now() -> Timestamp {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Scim(ScimError),
    #[error("version precondition failed")]
    PreconditionFailed,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database cannot be reached: what was tried and why it failed, e.g. `cannot connect
    /// to PostgreSQL at db:5432: connection refused` (told apart from a busy database, whose
    /// errors stay [`StoreError::Database`]).
    #[error("{0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<ScimError> for StoreError {
    fn from(e: ScimError) -> Self {
        StoreError::Scim(e)
    }
}

/// One connection pool's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    pub pool: &'static str,
    /// Open connections (idle or in use).
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

impl PoolStats {
    pub fn of<DB: sqlx::Database>(pool: &'static str, p: &sqlx::Pool<DB>) -> PoolStats {
        PoolStats {
            pool,
            open: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        }
    }

    /// Two pools' figures as one (the HTTP workers' pools are reported together).
    pub fn combined(self, other: PoolStats) -> PoolStats {
        PoolStats {
            pool: self.pool,
            open: self.open + other.open,
            idle: self.idle + other.idle,
            max: self.max + other.max,
        }
    }
}

/// Serialises a timestamp in its one textual form ([`format_timestamp`]).
pub(crate) fn serialize_timestamp<S: serde::Serializer>(
    t: &Timestamp,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(t))
}
