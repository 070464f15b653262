//! `serde_json::from_slice::<SecondFactorLoginBody>` (the body of a login's second step:
//! `{"mfa_token", "code" | "recovery_code"}`) and `CodeBody::proof` on arbitrary bytes, and on
//! bodies built from the fuzzer's strings so that well-formed ones are reached.
//!
//! Invariants: nothing panics; a body with exactly one of `code` and `recovery_code` gives that
//! proof, anything else `Error::InvalidCode`; `Debug` of a parsed body is the same whatever the
//! token and codes (it shows which fields are present, never their values).
#![no_main]

use arbitrary::Arbitrary;
use keycard::http::SecondFactorLoginBody;
use keycard::mfa::SecondFactorProof;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    raw: &'a [u8],
    token: &'a str,
    code: Option<&'a str>,
    recovery_code: Option<&'a str>,
}

fn check(bytes: &[u8]) {
    let Ok(body) = serde_json::from_slice::<SecondFactorLoginBody>(bytes) else {
        return;
    };
    // `Debug` shows which fields are there, never their values: it is the same for every
    // token and code.
    let shown = format!("{body:?}");
    let field = |present: bool| if present { "Some(\"<redacted>\")" } else { "None" };
    assert_eq!(
        shown,
        format!(
            "SecondFactorLoginBody {{ mfa_token: \"<redacted>\", proof: CodeBody {{ code: {}, recovery_code: {} }} }}",
            field(body.proof.code.is_some()),
            field(body.proof.recovery_code.is_some())
        )
    );
    match (&body.proof.code, &body.proof.recovery_code, body.proof.proof()) {
        (Some(code), None, Ok(SecondFactorProof::Totp(given))) => assert_eq!(given, code.as_str()),
        (None, Some(code), Ok(SecondFactorProof::RecoveryCode(given))) => {
            assert_eq!(given, code.as_str())
        }
        (Some(_), None, other) | (None, Some(_), other) => panic!("wrong proof: {other:?}"),
        (_, _, Err(keycard::Error::InvalidCode)) => {}
        (_, _, other) => panic!("neither or both must be refused: {other:?}"),
    }
}

fuzz_target!(|input: Input<'_>| {
    check(input.raw);
    let mut body = serde_json::json!({ "mfa_token": input.token });
    if let Some(code) = input.code {
        body["code"] = code.into();
    }
    if let Some(code) = input.recovery_code {
        body["recovery_code"] = code.into();
    }
    check(body.to_string().as_bytes());
});
