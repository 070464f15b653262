//! The email canonicaliser, `normalize_email` (trim, Unicode NFKC, lowercase, trim), and the
//! registration check `check_email`, on arbitrary UTF-8.
//!
//! Invariants: neither panics; the canonical form is idempotent (the canonical form of a
//! canonical form is itself: otherwise one account could have two keys); it has no
//! surrounding whitespace; it grows at most 18-fold (NFKC's widest expansion, U+FDFA, is 18
//! characters for one, and lowercasing adds at most half again); ASCII input only changes
//! case; an address `check_email` accepts is the trimmed input, and has the input's canonical
//! form, at most `MAX_EMAIL_LEN` bytes long.
#![no_main]

use keycard::{check_email, normalize_email, MAX_EMAIL_LEN};
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
        once.len() <= trimmed * 18,
        "{s:?} ({trimmed} bytes trimmed) normalized to {} bytes",
        once.len()
    );
    if s.is_ascii() {
        assert!(once.eq_ignore_ascii_case(s.trim()));
    }
    if let Ok(address) = check_email(s) {
        assert_eq!(address, s.trim(), "check_email keeps what was typed");
        assert_eq!(normalize_email(&address), once);
        assert!(once.len() <= MAX_EMAIL_LEN, "{s:?}");
    }
});
