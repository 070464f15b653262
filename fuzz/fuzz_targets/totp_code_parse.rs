//! `TotpPolicy::parse_code` and `TotpPolicy::verify` on an arbitrary code, secret, time and
//! last step, with 6, 7 or 8 digits.
//!
//! Invariants: nothing panics; a parsed code is exactly `digits` ASCII digits, the input
//! with its spaces removed, and input over `MAX_INPUT_LEN` bytes never parses; a secret of
//! a refused length is refused (16 to 64 bytes accepted); a code that does not parse, or a
//! time before 1970, is `Rejected`; `Accepted { step }` names a step within one of now's,
//! later than `last_step`, whose code (`code_at`) is the typed one; `Replayed` only when
//! such a step is at or before `last_step`; `Rejected` only when no step around now has
//! the code. Half the inputs type the secret's real code for a nearby step (with the
//! fuzzer's spaces), so that the accepting and replay paths are reached, not only what
//! random digits hit.
#![no_main]

use arbitrary::Arbitrary;
use keycard::mfa::{TotpPolicy, TotpSecret, TotpVerdict};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    secret: &'a [u8],
    code: &'a str,
    now: i64,
    last_step: Option<u64>,
    digits: u8,
    /// Type the real code of step `now + offset % 3 - 1` instead of `code`.
    real_code: Option<i8>,
}

fuzz_target!(|input: Input<'_>| {
    let policy = TotpPolicy::default().with_digits(u32::from(input.digits));
    let digits = usize::try_from(policy.digits()).expect("a small number");
    assert!((6..=8).contains(&digits));

    let secret = match TotpSecret::try_from_bytes(input.secret.to_vec()) {
        Ok(secret) => {
            assert!((16..=64).contains(&input.secret.len()));
            assert_eq!(secret.as_bytes(), input.secret);
            secret
        }
        Err(e) => {
            assert!(!(16..=64).contains(&input.secret.len()));
            assert_eq!(e.len, input.secret.len());
            let mut padded = input.secret.to_vec();
            padded.resize(16, 0);
            padded.truncate(64);
            TotpSecret::try_from_bytes(padded).expect("16 to 64 bytes")
        }
    };
    let Ok(now) = OffsetDateTime::from_unix_timestamp(input.now) else {
        return;
    };
    // The steps around now must be times too, for `code_at` to compute their codes here.
    let margin = time::Duration::seconds(60);
    if now.checked_add(margin).is_none() || now.checked_sub(margin).is_none() {
        assert!(matches!(
            policy.verify(&secret, input.code, now, input.last_step),
            TotpVerdict::Accepted { .. } | TotpVerdict::Rejected | TotpVerdict::Replayed
        ));
        return;
    }

    let typed: String = match input.real_code {
        Some(offset) => {
            let then = now + time::Duration::seconds(30 * i64::from(offset.rem_euclid(3) - 1));
            let real = policy.code_at(&secret, then);
            // Interleave the real digits with the fuzzer's text, keeping only its spaces.
            let spaces = input.code.chars().filter(|&c| c == ' ').count();
            let mut typed = " ".repeat(spaces % 8);
            for (i, c) in real.chars().enumerate() {
                typed.push(c);
                if input.code.as_bytes().get(i) == Some(&b' ') {
                    typed.push(' ');
                }
            }
            typed
        }
        None => input.code.to_owned(),
    };

    let parsed = policy.parse_code(&typed);
    if let Some(code) = &parsed {
        let code = code.as_str();
        assert!(typed.len() <= TotpPolicy::MAX_INPUT_LEN);
        assert_eq!(code.len(), digits);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(code, typed.replace(' ', ""));
        assert!(!format!("{:?}", parsed).contains(code));
    }

    let verdict = policy.verify(&secret, &typed, now, input.last_step);
    let Some(code) = parsed else {
        assert_eq!(verdict, TotpVerdict::Rejected);
        return;
    };
    let Ok(secs) = u64::try_from(input.now) else {
        assert_eq!(verdict, TotpVerdict::Rejected);
        return;
    };
    let current = secs / 30;
    let matching: Vec<u64> = (current.saturating_sub(1)..=current + 1)
        .filter(|&step| {
            let at = OffsetDateTime::from_unix_timestamp(i64::try_from(step * 30).expect("fits"))
                .expect("a valid time");
            policy.code_at(&secret, at) == code.as_str()
        })
        .collect();
    match verdict {
        TotpVerdict::Accepted { step } => {
            assert_eq!(matching.last(), Some(&step));
            assert!(input.last_step.map_or(true, |last| last < step));
        }
        TotpVerdict::Replayed => {
            let latest = *matching.last().expect("a matching step");
            assert!(input.last_step.is_some_and(|last| last >= latest));
        }
        TotpVerdict::Rejected => assert!(matching.is_empty()),
        _ => unreachable!("no other verdict"),
    }
    if input.real_code.is_some() {
        assert_ne!(
            verdict,
            TotpVerdict::Rejected,
            "the real code of a nearby step"
        );
    }
});
