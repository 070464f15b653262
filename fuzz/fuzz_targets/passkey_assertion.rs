//! A passkey login's finish (`Authenticator::finish_passkey_login`) on arbitrary assertions:
//! the bytes parsed as the browser's `PublicKeyCredential` JSON, and as the base64url fields
//! (client data, authenticator data, signature, user handle) of an otherwise well-formed one,
//! each answered to a fresh real ceremony. Needs the fuzz crate's `passkeys` feature.
//!
//! Invariants: nothing panics, in keycard or in webauthn-rs's parsing of the client data,
//! the authenticator data and the signature; with no passkey registered, no assertion logs
//! in.
#![no_main]

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use keycard::mfa::{MemoryPasskeyStore, Passkeys, PublicKeyCredential};
use keycard::one_time::MemoryOneTimeStore;
use keycard::{Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, UserRecord};
use libfuzzer_sys::fuzz_target;

type Auth = Authenticator<Arc<MemoryUserStore<UserRecord>>>;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    raw: &'a [u8],
    client_data: &'a [u8],
    authenticator_data: &'a [u8],
    signature: &'a [u8],
    user_handle: Option<&'a [u8]>,
    id: &'a [u8],
}

fn world() -> &'static (tokio::runtime::Runtime, Auth) {
    static WORLD: OnceLock<(tokio::runtime::Runtime, Auth)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let passkeys = Passkeys::new(
            "localhost",
            "http://localhost:3000",
            "Fuzz",
            MemoryOneTimeStore::with_capacity(1_000_000),
        )
        .expect("a valid RP");
        let auth = Authenticator::builder(Arc::new(MemoryUserStore::new()), MemoryTokenStore::new())
            .without_throttle()
            .passkeys(passkeys, MemoryPasskeyStore::new())
            .build();
        (rt, auth)
    })
}

fn finish(credential: PublicKeyCredential) {
    let (rt, auth) = world();
    rt.block_on(async {
        let (ceremony, _) = auth
            .begin_passkey_login(&ClientInfo::none())
            .await
            .expect("begin");
        let outcome = auth
            .finish_passkey_login(ceremony.expose_secret(), &credential, ClientInfo::none())
            .await;
        assert!(outcome.is_err(), "no passkey is registered, yet {outcome:?}");
    });
}

fuzz_target!(|input: Input<'_>| {
    if let Ok(credential) = serde_json::from_slice::<PublicKeyCredential>(input.raw) {
        finish(credential);
    }
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let shaped = serde_json::json!({
        "id": b64(input.id),
        "rawId": b64(input.id),
        "type": "public-key",
        "response": {
            "authenticatorData": b64(input.authenticator_data),
            "clientDataJSON": b64(input.client_data),
            "signature": b64(input.signature),
            "userHandle": input.user_handle.map(b64),
        },
        "extensions": {},
    });
    if let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(shaped) {
        finish(credential);
    }
});
