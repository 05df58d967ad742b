//! The HTTP error type. Request code returns typed errors; this is the only place that writes
//! error bodies (RFC 7644 §3.12 shape, `application/scim+json`). Internal errors reach the
//! client only as a generic detail; the request's log line carries their cause chain.

use crate::auth::AuthError;
use crate::store::StoreError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use scim_schema::ScimError;
use std::fmt;

pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

#[derive(Debug)]
pub enum ApiError {
    Scim(ScimError),
    Unauthorized(String),
    /// The database is overloaded or briefly unreachable: 503, try again.
    Unavailable(String),
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::Scim(ScimError::not_found(format!("{what} \"{id}\" not found")))
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        ApiError::Scim(ScimError::new(405, None, detail))
    }

    /// The error as the client sees it (internal causes reduced to a generic detail).
    pub fn scim_error(&self) -> ScimError {
        match self {
            ApiError::Scim(e) => e.clone(),
            ApiError::Unauthorized(detail) => ScimError::new(401, None, detail.clone()),
            ApiError::Unavailable(detail) => ScimError::new(503, None, detail.clone()),
            ApiError::Internal(_) => {
                ScimError::new(500, None, "internal error; the server log has the details")
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Scim(e) => write!(f, "{e}"),
            ApiError::Unauthorized(d) => write!(f, "401: {d}"),
            ApiError::Unavailable(d) => write!(f, "503: {d}"),
            ApiError::Internal(e) => write!(f, "internal error: {e:#}"),
        }
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError::Scim(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Scim(s) => ApiError::Scim(s),
            StoreError::NotFound => ApiError::Scim(ScimError::not_found("resource not found")),
            StoreError::PreconditionFailed => ApiError::Scim(ScimError::new(
                412,
                None,
                "the resource changed: If-Match names another version",
            )),
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                ApiError::Unavailable(DATABASE_UNAVAILABLE.into())
            }
            StoreError::Database(e) if is_lost(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                ApiError::Unavailable(DATABASE_UNAVAILABLE.into())
            }
            StoreError::Database(e) if is_busy(&e) => {
                tracing::warn!(error = %e, "database busy");
                ApiError::Unavailable("the database is busy; retry shortly".into())
            }
            other => ApiError::Internal(anyhow::Error::new(other)),
        }
    }
}

/// The 503 detail while the database cannot be reached (the cause, with its host, goes to
/// the log only: the client may not even have authenticated yet).
pub const DATABASE_UNAVAILABLE: &str = "database unavailable; retry shortly";

/// The database went away: a connection lost or reset, the pool closed, the server shutting
/// down or not accepting connections (57P01-57P03), a connection exception (class 08).
/// Distinct from busy (issue 14): an outage needs an operator, a busy database only time.
fn is_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            matches!(c.as_ref(), "57P01" | "57P02" | "57P03") || c.starts_with("08")
        }),
        _ => false,
    }
}

/// Every connection in use while the database is up (the store tells a pool timeout during
/// an outage apart as [`StoreError::Unavailable`]), SQLite's lock timeout, PostgreSQL's
/// deadlock and serialisation aborts (after the store's retries), and a statement cut off by
/// `database.statement_timeout_seconds` (57014): worth retrying, not a server fault.
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("40P01" | "40001" | "5" | "6" | "517" | "57014"))
        }
        _ => false,
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => ApiError::from(s),
            AuthError::Missing => ApiError::Unauthorized(
                "authentication required: send Authorization: Bearer <token>".into(),
            ),
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.scim_error().status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        // Not logged here: the request's one log line carries the error, and an internal
        // error's cause chain (http/access_log.rs).
        let err = self.scim_error();
        let mut resp = HttpResponse::build(self.status_code());
        resp.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE)));
        if err.status == 401 {
            resp.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimbridge\""),
            ));
        }
        if err.status == 503 {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        resp.body(err.to_json().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(e: StoreError) -> (u16, String) {
        let err = ApiError::from(e).scim_error();
        (err.status, err.detail)
    }

    #[test]
    fn an_outage_is_told_from_a_busy_database() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for outage in [
            StoreError::Unavailable("cannot connect to PostgreSQL at db:5432: refused".into()),
            StoreError::Database(sqlx::Error::Io(refused)),
            StoreError::Database(sqlx::Error::PoolClosed),
        ] {
            assert_eq!(detail(outage), (503, DATABASE_UNAVAILABLE.to_owned()));
        }
        // The store turns a pool timeout during an outage into Unavailable; one that reaches
        // here happened while the database answered.
        let (status, busy) = detail(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(status, 503);
        assert!(busy.contains("busy"), "{busy}");
    }
}
