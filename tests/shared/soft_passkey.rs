//! A software passkey for tests and benches: an ECDSA P-256 key (RustCrypto's `p256`) that
//! answers WebAuthn ceremonies the way a platform authenticator does, with "none"
//! attestation, user presence and user verification, and a signature counter. It builds the
//! browser's JSON (`RegisterPublicKeyCredential`, `PublicKeyCredential`) byte by byte, so the
//! relying party's verification (webauthn-rs) runs on real signatures: no mock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Flags of authenticator data: user present, user verified, attested credential data.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub(crate) struct SoftPasskey {
    key: SigningKey,
    credential_id: Vec<u8>,
    counter: u32,
    origin: String,
    rp_id: String,
    /// The user handle the registration was for (base64url), sent back by discoverable logins.
    user_handle: Option<String>,
}

impl SoftPasskey {
    /// A passkey for `rp_id`, used from pages on `origin`; `seed` makes the key and the
    /// credential id (distinct seeds, distinct passkeys).
    pub(crate) fn new(rp_id: &str, origin: &str, seed: u8) -> Self {
        let mut scalar = [seed.max(1); 32];
        scalar[0] = 0x01;
        Self {
            key: SigningKey::from_slice(&scalar).expect("a valid scalar"),
            credential_id: Sha256::digest([b"keycard soft passkey", &[seed][..]].concat()).to_vec(),
            counter: 0,
            origin: origin.to_owned(),
            rp_id: rp_id.to_owned(),
            user_handle: None,
        }
    }

    fn rp_id_hash(&self) -> [u8; 32] {
        Sha256::digest(self.rp_id.as_bytes()).into()
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    /// The COSE_Key of the public key (EC2, ES256, P-256), CBOR by hand.
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_encoded_point(false);
        let (x, y) = (point.x().expect("x"), point.y().expect("y"));
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
        out.extend_from_slice(x);
        out.extend_from_slice(&[0x22, 0x58, 0x20]);
        out.extend_from_slice(y);
        out
    }

    /// The browser's answer to `navigator.credentials.create` for the server's options
    /// (`CreationChallengeResponse` as JSON).
    pub(crate) fn register(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        let challenge = public_key["challenge"].as_str().expect("a challenge");
        self.user_handle = public_key["user"]["id"].as_str().map(str::to_owned);
        let mut auth_data = self.rp_id_hash().to_vec();
        auth_data.push(UP | UV | AT);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0; 16]); // AAGUID
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        // {"fmt": "none", "attStmt": {}, "authData": bytes}
        let mut attestation = vec![0xa3, 0x63];
        attestation.extend_from_slice(b"fmt");
        attestation.push(0x64);
        attestation.extend_from_slice(b"none");
        attestation.push(0x67);
        attestation.extend_from_slice(b"attStmt");
        attestation.push(0xa0);
        attestation.push(0x68);
        attestation.extend_from_slice(b"authData");
        attestation.push(0x59);
        attestation.extend_from_slice(&(auth_data.len() as u16).to_be_bytes());
        attestation.extend_from_slice(&auth_data);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": URL_SAFE_NO_PAD.encode(&attestation),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(self.client_data("webauthn.create", challenge)),
                "transports": ["internal"],
            },
            "extensions": {},
        })
    }

    /// The browser's answer to `navigator.credentials.get` for the server's options
    /// (`RequestChallengeResponse` as JSON): a fresh signature over the authenticator data
    /// and the client data's hash, the counter one higher.
    pub(crate) fn assert(&mut self, options: &Value) -> Value {
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge");
        self.counter += 1;
        let mut auth_data = self.rp_id_hash().to_vec();
        auth_data.push(UP | UV);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        let id = URL_SAFE_NO_PAD.encode(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes()),
                "userHandle": self.user_handle,
            },
            "extensions": {},
        })
    }
}
