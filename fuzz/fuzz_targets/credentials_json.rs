//! Deserializing a login body (`Credentials`) from arbitrary JSON bytes.
//!
//! Invariants: never panics; on success `Debug` does not depend on the password at all, and
//! in particular never contains it (unless the password of 4+ characters happens to be part of
//! what `Debug` shows anyway: the email or the fixed words around it).
#![no_main]

use keycard::http::Credentials;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(creds) = serde_json::from_slice::<Credentials>(data) else {
        return;
    };
    let debug = format!("{creds:?}");

    // Debug is a function of the email only: another password gives the same text.
    let mut other = creds.clone();
    other.password.clear();
    other.password.push_str("\u{1}another password\u{1}");
    assert_eq!(debug, format!("{other:?}"), "Debug depends on the password");

    // And so it never shows a password that is not already in its password-free skeleton.
    let password: &str = &creds.password;
    if password.chars().count() >= 4 {
        let skeleton = format!(
            "Credentials {{ login: {:?}, password: \"[redacted]\" }} {}",
            creds.login, creds.login
        );
        if !skeleton.contains(password) {
            assert!(
                !debug.contains(password),
                "Debug shows the password: {debug}"
            );
        }
    }
});
