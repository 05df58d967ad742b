//! The one case folding behind every case-insensitive comparison (`caseExact: false`
//! attributes, userName/displayName keys): each character mapped by its Unicode *simple*
//! lower case, with no context rules.
//!
//! This is what PostgreSQL's `lower()` does under a UTF-8 ctype (C.UTF-8, en_US.UTF-8: one
//! `towlower()` per character), and what scimbridge registers on every SQLite connection as
//! `scim_lower()` (SQLite's own `lower()` folds ASCII only). So the in-memory evaluator, the
//! keys Rust stores and both databases agree: `"ÖSTERGÅRD"` folds to `"östergård"` everywhere.
//!
//! It differs from [`str::to_lowercase`] in exactly two ways, both PostgreSQL's: `'Σ'` is always
//! `'σ'` (no final-sigma rule), and `'İ'` (U+0130) is `'i'`, not `"i\u{307}"`.

/// `s` with every character lower-cased by [`lower_char`]; the length in characters is kept.
pub fn lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars().map(lower_char).collect()
}

/// One character's simple lower case (UnicodeData.txt field 13).
pub fn lower_char(c: char) -> char {
    // The only character whose full lower case (SpecialCasing.txt, unconditional) is longer
    // than one character; its simple lower case is plain 'i'.
    if c == '\u{130}' {
        return 'i';
    }
    let mut lowered = c.to_lowercase();
    match (lowered.next(), lowered.next()) {
        (Some(l), None) => l,
        // No other character maps to several; should Unicode add one, leave it unchanged.
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_postgresql_lower() {
        assert_eq!(lower("ÖSTERGÅRD"), "östergård");
        assert_eq!(lower("ÄÖÅÉẞŁÆ"), "äöåéßłæ");
        // No final-sigma rule: PostgreSQL maps every Σ to σ.
        assert_eq!(lower("ΣΑΣ"), "σασ");
        assert_eq!(lower("ς"), "ς");
        assert_eq!(lower("İı"), "iı");
        assert_eq!(lower("ǅ\u{212a}\u{212b}\u{3f4}"), "ǆkåθ");
        assert_eq!(lower("%_\\'\" Ab"), "%_\\'\" ab");
    }

    #[test]
    fn keeps_the_length_in_characters() {
        for c in ['\u{0}', 'A', 'İ', 'ẞ', 'Σ', '\u{10ffff}', '\u{1e900}'] {
            assert_eq!(lower(&c.to_string()).chars().count(), 1, "{c:?}");
        }
        // Every char folds to one char: LIKE patterns and substrings stay aligned.
        for c in (0..=0x10ffff_u32).filter_map(char::from_u32) {
            let l = lower_char(c);
            assert_eq!(lower_char(l), l, "folding {c:?} twice");
        }
    }
}
