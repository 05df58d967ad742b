//! The cursor of a page of the access report: the position of the page's last row, and the
//! filter it was read with, as opaque URL-safe text. A cursor is only a position (what it could
//! name is what the caller may read anyway), so it needs no signature; it is checked to be one
//! this server wrote, for the same filter, so that a garbled or mixed-up one is a clear 400
//! rather than a page of something else.

use crate::store::{AccessFilter, AccessPosition};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Longer than any cursor this server writes for names of sane length; a longer one is refused
/// before it is decoded.
const MAX_LEN: usize = 8 * 1024;

/// The version of the cursor's shape: a cursor of another version is refused.
const VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    v: u8,
    /// The filter the page was read with.
    f: Option<AccessFilter>,
    p: AccessPosition,
}

/// The cursor of the page that ends at `last`, read with `filter`.
pub fn encode(filter: Option<&AccessFilter>, last: &AccessPosition) -> String {
    let cursor = Cursor { v: VERSION, f: filter.cloned(), p: last.clone() };
    // Serialising plain strings cannot fail.
    let json = serde_json::to_vec(&cursor).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The position a cursor names; Err with why it is not a cursor of this query.
pub fn decode(text: &str, filter: Option<&AccessFilter>) -> Result<AccessPosition, String> {
    let garbled = || "cursor is not one this server wrote (pass next_cursor as it was returned)";
    if text.len() > MAX_LEN {
        return Err(garbled().to_owned());
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| garbled().to_owned())?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| garbled().to_owned())?;
    if cursor.v != VERSION {
        return Err(garbled().to_owned());
    }
    if cursor.f.as_ref() != filter {
        return Err("cursor belongs to a query with other filters: repeat the query that \
                    returned it, with its filters, to read the next page"
            .to_owned());
    }
    Ok(cursor.p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position() -> AccessPosition {
        AccessPosition {
            user_name: "Åsa@example.com".into(),
            target: "111111111111".into(),
            permission_set: "ReadOnly".into(),
            via: "AWS - Admins".into(),
            user_id: "u-1".into(),
            holder_id: "g-1".into(),
        }
    }

    #[test]
    fn a_cursor_reads_back_as_the_position_it_was_made_from() {
        let filter = AccessFilter::Account("111111111111".into());
        let text = encode(Some(&filter), &position());
        assert!(
            text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
        assert_eq!(decode(&text, Some(&filter)), Ok(position()));
        let unfiltered = encode(None, &position());
        assert_eq!(decode(&unfiltered, None), Ok(position()));
    }

    #[test]
    fn a_garbled_forged_or_mixed_up_cursor_is_refused() {
        let filter = AccessFilter::User("alice".into());
        let text = encode(Some(&filter), &position());
        assert!(decode(&text, None).unwrap_err().contains("other filters"));
        assert!(decode(&text, Some(&AccessFilter::User("bob".into()))).is_err());
        for bad in ["", "not a cursor", "%%%", &text[..text.len() - 3], &"A".repeat(MAX_LEN + 1)] {
            assert!(
                decode(bad, Some(&filter)).unwrap_err().contains("not one this server wrote"),
                "{bad}"
            );
        }
        // Well-formed JSON of the wrong shape, or of another version.
        let forged = URL_SAFE_NO_PAD.encode(br#"{"v":1,"f":null,"p":{"user_name":"x"}}"#);
        assert!(decode(&forged, None).is_err());
        let json = serde_json::to_string(&Cursor { v: 2, f: None, p: position() }).unwrap();
        assert!(decode(&URL_SAFE_NO_PAD.encode(json), None).is_err());
    }
}
