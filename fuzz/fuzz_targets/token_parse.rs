//! `Token` and `SessionId` parsing on arbitrary input.
//!
//! Invariants: parsing never panics; a parsed token re-serializes to exactly the input (one
//! spelling per token); its `id()` is the parse of the part before the dot; its `Debug` never
//! shows the secret part. The same for a parsed `SessionId` and its `Display`.
#![no_main]

use keycard::{SessionId, Token, TOKEN_LEN};
use libfuzzer_sys::fuzz_target;

/// base64url, the separator, and near misses (standard base64, padding, space, percent).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/= %";

fn check(s: &str) {
    if let Ok(id) = s.parse::<SessionId>() {
        assert_eq!(id.to_string(), s, "session id is not canonical");
        assert_eq!(SessionId::from_bytes(*id.as_bytes()), id);
    }
    if let Ok(token) = s.parse::<Token>() {
        assert_eq!(token.expose_secret(), s, "token is not canonical");
        assert_eq!(s.len(), TOKEN_LEN);
        let (id_part, secret_part) = s.split_once('.').expect("a parsed token has a dot");
        assert_eq!(id_part.parse::<SessionId>().ok(), Some(token.id()));
        assert_eq!(token.id().to_string(), id_part);
        let debug = format!("{token:?}");
        assert!(
            !debug.contains(secret_part),
            "Debug shows the secret: {debug}"
        );
        assert!(!debug.contains(s), "Debug shows the token: {debug}");
        assert!(token.secret_hash().verify(&token.clone()));
    }
}

fuzz_target!(|data: &[u8]| {
    // The input as it comes: non-UTF-8 input cannot reach `FromStr` and is dropped.
    if let Ok(s) = std::str::from_utf8(data) {
        check(s);
    }
    // Structure-aware passes over the same bytes, mapped onto the token alphabet, so that
    // well-formed tokens and near misses are reached far more often than random UTF-8 hits
    // 65 base64url characters; the second puts the separator where a token has it.
    let mut mapped: Vec<u8> = data
        .iter()
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()])
        .collect();
    check(std::str::from_utf8(&mapped).expect("ASCII"));
    if let Some(c) = mapped.get_mut(22) {
        *c = b'.';
        check(std::str::from_utf8(&mapped).expect("ASCII"));
    }
});
