//! `scim_lower(text)`: scimbridge's case folding ([`scim_schema::fold::lower`], the same as
//! PostgreSQL's `lower()` under a UTF-8 ctype) as an SQL function on SQLite connections.
//!
//! SQLite's built-in `lower()` folds ASCII only, so on SQLite `name.familyName eq "östergård"`
//! would not find `ÖSTERGÅRD` while PostgreSQL does. The store calls [`register`] on every
//! connection it opens (readers and writer, `after_connect`) and its filter translation uses
//! `scim_lower()` wherever it folds on SQLite (filters, member filters, sorting).
//!
//! sqlx 0.9 has no safe API for scalar functions (it has one for collations only), so this
//! crate calls `sqlite3_create_function_v2` itself, as sqlx-sqlite registers its own REGEXP
//! (`sqlx-sqlite/src/regexp.rs`). It is the workspace's only unsafe code, which is why it is a
//! crate of its own: everything else keeps `unsafe_code = "forbid"`.
//!
//! Behaviour: TEXT is folded character by character; NULL stays NULL; INTEGER, REAL and BLOB
//! values (and text that is not valid UTF-8) are returned unchanged. Nothing here can panic
//! across the FFI boundary: the folding runs inside `catch_unwind`, and a failure becomes an
//! SQL error.

use libsqlite3_sys as ffi;
use sqlx::sqlite::SqliteConnection;
use std::ffi::{c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The SQL name of the function.
pub const FUNCTION_NAME: &str = "scim_lower";

/// [`FUNCTION_NAME`], NUL-terminated for SQLite.
const FUNCTION_NAME_C: &[u8] = b"scim_lower\0";

/// Registers `scim_lower(text)` on this connection (SQLite keeps it for the connection's
/// lifetime). Use it in `SqlitePoolOptions::after_connect`.
pub async fn register(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    // While `locked` lives, sqlx's worker thread makes no calls on this handle.
    let mut locked = conn.lock_handle().await?;
    let db = locked.as_raw_handle();
    let flags = ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC | ffi::SQLITE_INNOCUOUS;
    // SAFETY: `db` is a live connection handle that only this thread uses while `locked` is held;
    // the name is a NUL-terminated static; `scim_lower` has the xFunc signature SQLite expects and
    // uses no user data (null pointer, no destructor); aggregate callbacks are None as required
    // for a scalar function.
    let rc = unsafe {
        ffi::sqlite3_create_function_v2(
            db.as_ptr(),
            FUNCTION_NAME_C.as_ptr().cast::<c_char>(),
            1,
            flags,
            std::ptr::null_mut(),
            Some(scim_lower),
            None,
            None,
            None,
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Protocol(format!(
            "registering the SQLite function {FUNCTION_NAME} failed (SQLite result code {rc})"
        )))
    }
}

/// The xFunc SQLite calls for `scim_lower(x)`.
unsafe extern "C" fn scim_lower(
    ctx: *mut ffi::sqlite3_context,
    n_arg: c_int,
    args: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with a valid context and `n_arg` valid argument pointers (one, as
    // registered); the text pointer and length come from the same `sqlite3_value` and stay valid
    // until the value is next converted, which happens only after this call returns; the result
    // is copied by SQLite (SQLITE_TRANSIENT) before `folded` is dropped.
    unsafe {
        if n_arg != 1 || args.is_null() {
            let msg = b"scim_lower takes one argument";
            ffi::sqlite3_result_error(ctx, msg.as_ptr().cast(), msg.len() as c_int);
            return;
        }
        let arg = *args;
        if ffi::sqlite3_value_type(arg) != ffi::SQLITE_TEXT {
            // NULL stays NULL; numbers and blobs have no case.
            ffi::sqlite3_result_value(ctx, arg);
            return;
        }
        let text = ffi::sqlite3_value_text(arg);
        let Ok(len) = usize::try_from(ffi::sqlite3_value_bytes(arg)) else {
            ffi::sqlite3_result_value(ctx, arg);
            return;
        };
        if text.is_null() {
            // A TEXT value whose text cannot be produced: SQLite ran out of memory.
            ffi::sqlite3_result_error_nomem(ctx);
            return;
        }
        let bytes = std::slice::from_raw_parts(text, len);
        let Ok(s) = std::str::from_utf8(bytes) else {
            // Not UTF-8 (SQLite does not check what it stores): leave it as it is.
            ffi::sqlite3_result_value(ctx, arg);
            return;
        };
        let folded = match catch_unwind(AssertUnwindSafe(|| scim_schema::fold::lower(s))) {
            Ok(f) => f,
            Err(_) => {
                let msg = b"scim_lower failed";
                ffi::sqlite3_result_error(ctx, msg.as_ptr().cast(), msg.len() as c_int);
                return;
            }
        };
        // Folding keeps the number of characters; a character may change its UTF-8 length
        // (e.g. U+023A -> U+2C65), so the length is checked rather than assumed.
        let Ok(folded_len) = c_int::try_from(folded.len()) else {
            ffi::sqlite3_result_error_toobig(ctx);
            return;
        };
        ffi::sqlite3_result_text(
            ctx,
            folded.as_ptr().cast::<c_char>(),
            folded_len,
            ffi::SQLITE_TRANSIENT(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{ConnectOptions, Row};
    use std::str::FromStr;

    /// An in-memory connection with `scim_lower()` registered.
    async fn connection() -> SqliteConnection {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite::memory:")
            .unwrap()
            .connect()
            .await
            .unwrap();
        register(&mut conn).await.unwrap();
        conn
    }

    #[tokio::test]
    async fn folds_text_and_leaves_other_values_alone() {
        let mut conn = connection().await;
        let row = sqlx::query(
            "SELECT scim_lower('ÖSTERGÅRD ΣΑΣ İ ẞ Ab%_\\'), scim_lower(NULL) IS NULL, \
             scim_lower(42), typeof(scim_lower(4.5)), scim_lower(''), \
             scim_lower(X'FF41'), lower('ÖSTERGÅRD')",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(row.get::<String, _>(0), "östergård σασ i ß ab%_\\");
        assert!(row.get::<bool, _>(1));
        assert_eq!(row.get::<i64, _>(2), 42);
        assert_eq!(row.get::<String, _>(3), "real");
        assert_eq!(row.get::<String, _>(4), "");
        assert_eq!(row.get::<Vec<u8>, _>(5), vec![0xff, 0x41]);
        // What this crate is for: SQLite's own lower() folds ASCII only.
        assert_eq!(row.get::<String, _>(6), "ÖstergÅrd");
    }

    #[tokio::test]
    async fn invalid_utf8_text_is_returned_unchanged() {
        let mut conn = connection().await;
        let row = sqlx::query("SELECT hex(scim_lower(CAST(X'C341FF' AS TEXT)))")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>(0), "C341FF");
    }
}
