//! `OneTimeToken::parse` (the `kcot_` tokens of account links) on arbitrary input, and on
//! edits of a real token.
//!
//! Invariants: parsing never panics; a parsed token's `expose_secret()` is exactly the input
//! (one spelling per token); its `Debug` shows neither the token nor its secret part; its id
//! displays as the part between the prefix and the dot. The fuzzer's bytes are used twice: as
//! a string on their own, and as (position, byte) edits of a token issued by
//! `OneTimeTokens::issue`, so that inputs one character away from a valid token (where a
//! checksum or length bug would show) are reached, not only what random text hits.
#![no_main]

use std::sync::OnceLock;

use keycard::one_time::{
    Binding, MemoryOneTimeStore, OneTimePurpose, OneTimeToken, OneTimeTokens, ONE_TIME_PREFIX,
    ONE_TIME_TOKEN_LEN,
};
use keycard::UserId;
use libfuzzer_sys::fuzz_target;

/// One real token, issued once.
fn real_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let tokens = OneTimeTokens::new(MemoryOneTimeStore::new());
            let purpose = OneTimePurpose::PasswordReset;
            let issued = tokens
                .issue(&UserId::from(7_i64), &purpose, Binding::none(), None)
                .await
                .expect("issue");
            issued.token.expose_secret().to_owned()
        })
    })
}

fn check(s: &str) {
    let Ok(token) = OneTimeToken::parse(s) else {
        return;
    };
    assert_eq!(token.expose_secret(), s, "not canonical");
    assert_eq!(s.len(), ONE_TIME_TOKEN_LEN);
    let body = s.strip_prefix(ONE_TIME_PREFIX).expect("the prefix");
    let (id_part, rest) = body.split_once('.').expect("a dot");
    assert_eq!(token.id().to_string(), id_part, "the id");
    let secret_part = rest.split('_').next().unwrap_or(rest);
    let debug = format!("{token:?}");
    assert!(!debug.contains(s), "Debug shows the token");
    assert!(!debug.contains(secret_part), "Debug shows the secret");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
    }
    let real = real_token();
    assert!(OneTimeToken::parse(real).is_ok(), "a real token parses");
    let mut edited = real.as_bytes().to_vec();
    for edit in data.chunks_exact(2) {
        let at = usize::from(edit[0]) % edited.len();
        edited[at] = edit[1];
    }
    if let Ok(s) = std::str::from_utf8(&edited) {
        check(s);
        if s != real {
            // Another spelling of a real token would be a second valid token for one secret.
            if let (Ok(a), Ok(b)) = (OneTimeToken::parse(s), OneTimeToken::parse(real)) {
                assert!(
                    a.id() != b.id() || a.secret_hash() != b.secret_hash(),
                    "{s:?} parses as the same token as the real one"
                );
            }
        }
    }
});
