//! Feeds arbitrary text to the filter, PATCH-path and attribute-path parsers. Checks:
//! - no panic, no stack overflow, whatever the input;
//! - strict acceptance implies lenient acceptance of the same tree (tolerances only add);
//! - Display round-trip: the canonical text of an accepted input parses, in strict mode, to
//!   the same tree (when that text still fits the length limit: Display may lengthen unquoted
//!   values, numbers and control characters).

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_schema::Tolerances;
use scim_schema::filter::parser::MAX_FILTER_LEN;
use scim_schema::filter::{parse_attr_path, parse_filter, parse_patch_path};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let strict = Tolerances::strict();
    let lenient = Tolerances::lenient();

    let strict_filter = parse_filter(&input, &strict);
    let lenient_filter = parse_filter(&input, &lenient);
    if let Ok(filter) = &strict_filter {
        assert_eq!(lenient_filter.as_ref(), Ok(filter), "strict accepts, lenient differs");
    }
    if let Ok(filter) = &lenient_filter {
        let text = filter.to_string();
        if text.len() <= MAX_FILTER_LEN {
            let again = parse_filter(&text, &strict)
                .unwrap_or_else(|e| panic!("{input:?} displayed as {text:?}, rejected: {e}"));
            assert_eq!(&again, filter, "{input:?} displayed as {text:?}");
        }
    }

    let strict_path = parse_patch_path(&input, &strict);
    let lenient_path = parse_patch_path(&input, &lenient);
    if let Ok(path) = &strict_path {
        assert_eq!(lenient_path.as_ref(), Ok(path), "strict accepts, lenient differs");
    }
    if let Ok(path) = &lenient_path {
        let text = path.to_string();
        if text.len() <= MAX_FILTER_LEN {
            let again = parse_patch_path(&text, &strict)
                .unwrap_or_else(|e| panic!("{input:?} displayed as {text:?}, rejected: {e}"));
            assert_eq!(&again, path, "{input:?} displayed as {text:?}");
        }
    }

    if let Ok(attr) = parse_attr_path(&input) {
        assert_eq!(parse_attr_path(&attr.to_string()), Ok(attr));
    }
});
