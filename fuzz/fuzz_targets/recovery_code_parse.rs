//! `RecoveryCode::parse` on arbitrary text, and on the text of a real code with the fuzzer's
//! edits (case, spaces, hyphens, replaced characters), so that near misses are reached.
//!
//! Invariants: nothing panics; input over `MAX_INPUT_LEN` bytes never parses; a parsed code
//! shows as 4 groups of 4 lowercase base32 characters joined by hyphens, parses back to
//! itself, and has the same digest as the input it came from; a code's `Debug` never shows
//! it.
#![no_main]

use arbitrary::Arbitrary;
use keycard::mfa::{RecoveryCode, RecoveryCodes};
use keycard::UserId;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    text: &'a str,
    /// (position, byte) edits applied to a real code's text.
    edits: Vec<(u8, u8)>,
}

fn check(text: &str) {
    let Some(code) = RecoveryCode::parse(text) else {
        return;
    };
    assert!(text.len() <= RecoveryCode::MAX_INPUT_LEN);
    let shown = code.as_str();
    assert_eq!(shown.len(), 19, "{shown}");
    for (i, c) in shown.char_indices() {
        if i % 5 == 4 {
            assert_eq!(c, '-', "{shown}");
        } else {
            assert!(c.is_ascii_lowercase() || ('2'..='7').contains(&c), "{shown}");
        }
    }
    let again = RecoveryCode::parse(shown).expect("a shown code parses");
    assert_eq!(again.as_str(), shown);
    let user = UserId::new("fuzz");
    assert_eq!(again.digest(&user), code.digest(&user));
    assert!(!format!("{code:?}").contains(shown));
}

fuzz_target!(|input: Input<'_>| {
    check(input.text);
    let codes = RecoveryCodes::generate(RecoveryCodes::DEFAULT_COUNT).expect("os rng");
    let real = codes.codes()[0].as_str().to_owned();
    let mut bytes = real.clone().into_bytes();
    for (at, byte) in input.edits.iter().take(8) {
        let at = usize::from(*at);
        if at < bytes.len() {
            bytes[at] = *byte;
        } else {
            bytes.push(*byte);
        }
    }
    if let Ok(text) = std::str::from_utf8(&bytes) {
        check(text);
        if text == real {
            assert!(RecoveryCode::parse(text).is_some());
        }
    }
});
