//! `Token`, `TokenFormat` and `SessionId` parsing on arbitrary input, in both token formats.
//!
//! Invariants: parsing never panics; a parsed token re-serializes to exactly the input (one
//! spelling per token); its `id()` is the parse of the session id part; its `Debug` never
//! shows the secret part. The same for a parsed `SessionId` and its `Display`. Across formats:
//! `str::parse` is `TokenFormat::plain().parse`; a prefixed format accepts plain tokens and its
//! own prefix only, and everything it accepts the plain format accepts too; a prefixed token
//! ends in `_` and the base62 CRC-32 of everything before its checksum (computed here
//! independently of keycard).
#![no_main]

use keycard::{SessionId, Token, TokenFormat, TOKEN_LEN};
use libfuzzer_sys::fuzz_target;

/// base64url, the separator, and near misses (standard base64, padding, space, percent).
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/= %";
/// The checksum alphabet.
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The prefix of the prefixed format under test.
const PREFIX: &str = "kc_";

fn base62_crc(signed: &[u8]) -> [u8; 6] {
    let mut n = crc32fast::hash(signed);
    let mut out = [b'0'; 6];
    for c in out.iter_mut().rev() {
        *c = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Checks one parse result's invariants; returns whether it parsed.
fn check_token(s: &str, parsed: Result<Token, keycard::TokenError>, format: &str) -> Option<Token> {
    let token = parsed.ok()?;
    assert_eq!(token.expose_secret(), s, "{format}: token is not canonical");
    let prefix_len = token.prefix().map_or(0, str::len);
    let body = &s[prefix_len..prefix_len + TOKEN_LEN];
    let (id_part, secret_part) = body.split_once('.').expect("a parsed token has a dot");
    assert_eq!(id_part.parse::<SessionId>().ok(), Some(token.id()));
    assert_eq!(token.id().to_string(), id_part);
    match token.prefix() {
        None => assert_eq!(s.len(), TOKEN_LEN),
        Some(prefix) => {
            assert!(
                TokenFormat::prefixed(prefix).is_ok(),
                "{format}: bad prefix {prefix:?}"
            );
            assert_eq!(s.len(), prefix_len + TOKEN_LEN + 7);
            let (signed, sum) = s.split_at(s.len() - 6);
            assert!(signed.ends_with('_'));
            assert_eq!(
                sum.as_bytes(),
                base62_crc(signed.as_bytes()),
                "{format}: checksum"
            );
        }
    }
    let debug = format!("{token:?}");
    assert!(
        !debug.contains(secret_part),
        "Debug shows the secret: {debug}"
    );
    assert!(!debug.contains(s), "Debug shows the token: {debug}");
    assert!(token.secret_hash().verify(&token.clone()));
    Some(token)
}

fn check(s: &str) {
    if let Ok(id) = s.parse::<SessionId>() {
        assert_eq!(id.to_string(), s, "session id is not canonical");
        assert_eq!(SessionId::from_bytes(*id.as_bytes()), id);
    }
    let from_str = check_token(s, s.parse::<Token>(), "FromStr");
    let plain = check_token(s, TokenFormat::plain().parse(s), "plain");
    let prefixed_format = TokenFormat::prefixed(PREFIX).expect("valid prefix");
    let prefixed = check_token(s, prefixed_format.parse(s), "prefixed");
    assert_eq!(
        from_str.is_some(),
        plain.is_some(),
        "FromStr is the plain format"
    );
    if let Some(t) = &prefixed {
        assert!(
            plain.is_some(),
            "the plain format accepts whatever a prefixed one does"
        );
        assert!(
            matches!(t.prefix(), None | Some(PREFIX)),
            "foreign prefix accepted"
        );
    }
    if let Some(t) = &plain {
        // The prefixed format refuses exactly the other prefixes.
        let own = matches!(t.prefix(), None | Some(PREFIX));
        assert_eq!(prefixed.is_some(), own, "prefixed format on {s:?}");
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
    // Prefixed shapes: the first 66 mapped bytes wrapped as `kc_<body>_<checksum>` with a
    // correct checksum, then with one byte of it (chosen by the input) changed, which must
    // never verify as the same token.
    if let Some(body) = mapped.get(..TOKEN_LEN) {
        let mut wrapped = format!("{PREFIX}{}_", std::str::from_utf8(body).expect("ASCII"));
        let sum = base62_crc(wrapped.as_bytes());
        wrapped.push_str(std::str::from_utf8(&sum).expect("ASCII"));
        check(&wrapped);
        let original = wrapped.parse::<Token>().ok();
        if let (Some(&pick), Some(&with)) = (data.first(), data.get(1)) {
            let mut changed = wrapped.clone().into_bytes();
            let at = usize::from(pick) % changed.len();
            changed[at] = ALPHABET[usize::from(with) % ALPHABET.len()];
            let changed = String::from_utf8(changed).expect("ASCII");
            check(&changed);
            if changed != wrapped {
                assert!(
                    changed.parse::<Token>().is_err(),
                    "a one-byte change kept a valid checksum: {changed:?} (was {original:?})"
                );
            }
        }
    }
});
