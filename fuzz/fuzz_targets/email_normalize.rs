//! `normalize_email` (trim surrounding whitespace, then Unicode lowercase) on arbitrary UTF-8.
//!
//! Invariants: never panics; idempotent; the result has no surrounding whitespace; it is at
//! most 3/2 the byte length of the trimmed input (lowercasing can grow a character: U+0130
//! `İ`, 2 bytes, becomes `i̇`, 3 bytes; U+023A `Ⱥ`, 2 bytes, becomes U+2C65 `ⱥ`, 3 bytes).
#![no_main]

use keycard::normalize_email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let once = normalize_email(s);
    let twice = normalize_email(&once);
    assert_eq!(once, twice, "not idempotent for {s:?}");
    assert_eq!(once.trim(), once, "surrounding whitespace left for {s:?}");
    let trimmed = s.trim().len();
    assert!(
        once.len() <= trimmed + trimmed / 2,
        "{s:?} ({trimmed} bytes trimmed) normalized to {} bytes",
        once.len()
    );
    // An ASCII-only input stays the same length and only changes case.
    if s.is_ascii() {
        assert!(once.eq_ignore_ascii_case(s.trim()));
    }
});
