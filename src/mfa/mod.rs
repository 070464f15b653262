//! Second factors: TOTP codes from an authenticator app, single-use recovery codes, and
//! where they are stored.
//!
//! The [`Authenticator`](crate::Authenticator) runs the flows (enrolment, the two-step login,
//! disabling, step-up) once
//! [`AuthenticatorBuilder::second_factors`](crate::AuthenticatorBuilder::second_factors) gives
//! it a [`SecondFactors`] configuration. They are built on the pieces of this module, which an
//! application can also use on its own:
//!
//! - [`TotpSecret`]: the 160-bit secret shared with the user's authenticator app, and
//!   [`TotpPolicy`], which turns it into codes (RFC 6238: HMAC-SHA-1, 6 digits, 30-second
//!   steps), builds the `otpauth://` URI of the enrolment QR code and
//!   [`verify`](TotpPolicy::verify)s a typed code in constant time, telling a replay
//!   ([`TotpVerdict::Replayed`]) from a wrong code;
//! - [`SecretBox`]: seals TOTP secrets for storage with the application's [`SecretKey`]
//!   (XChaCha20-Poly1305, bound to the owner's user id), with key ids for rotation;
//! - [`RecoveryCodes`]: single-use [`RecoveryCode`]s (80 bits each), shown once; the store
//!   keeps their per-user digests ([`RecoveryCodeDigest`]);
//! - [`SecondFactorStore`]: the storage contract, with [`MemorySecondFactorStore`];
//! - with the `passkeys` feature, `Passkeys` (the WebAuthn relying party, given to
//!   `AuthenticatorBuilder::passkeys`) and [`PasskeyStore`], with [`MemoryPasskeyStore`] and
//!   the SQL stores (`SqlitePasskeyStore`, `PostgresPasskeyStore`, `MysqlPasskeyStore`, each
//!   under its backend's feature alone): passwordless login with a passkey, or a passkey as
//!   the second step of a login.
//!
//! # Enrolment and login, by hand
//!
//! ```
//! use keycard::mfa::{
//!     KeyId, RecoveryCode, RecoveryCodes, SecretBox, SecretKey, TotpPolicy, TotpSecret,
//!     TotpVerdict,
//! };
//! use keycard::UserId;
//! use time::OffsetDateTime;
//!
//! // Once, in the configuration: the key that seals secrets at rest.
//! let secret_box = SecretBox::new(KeyId::new(1), SecretKey::generate()?);
//! let policy = TotpPolicy::default();
//! let user = UserId::new("42");
//!
//! // Enrolment: a secret, sealed for the user's row, shown once as a QR code.
//! let secret = TotpSecret::generate()?;
//! let sealed = secret_box.seal(secret.as_bytes(), user.as_str().as_bytes())?;
//! let uri = policy.otpauth_uri(&secret, "Acme", "ann@example.com");
//! assert!(uri.starts_with("otpauth://totp/Acme:ann%40example.com?secret="));
//!
//! // The app shows a code; the user types it (spaces allowed).
//! let now = OffsetDateTime::now_utc();
//! let code = policy.code_at(&secret, now);
//! let typed = format!("{} {}", &code[..3], &code[3..]);
//!
//! // Login: open the stored secret and check the code against the last step used.
//! let opened = TotpSecret::try_from_bytes(secret_box.open(&sealed, user.as_str().as_bytes())?)?;
//! let TotpVerdict::Accepted { step } = policy.verify(&opened, &typed, now, None) else {
//!     panic!("the current code is accepted");
//! };
//! // Record `step` (SecondFactorStore::use_totp_step); the same code is then a replay.
//! assert_eq!(policy.verify(&opened, &typed, now, Some(step)), TotpVerdict::Replayed);
//!
//! // Recovery codes: shown once, stored as digests.
//! let codes = RecoveryCodes::generate(RecoveryCodes::DEFAULT_COUNT)?;
//! let stored = codes.digests(&user);
//! let typed = RecoveryCode::parse(&codes.codes()[0].as_str().to_uppercase()).expect("a code");
//! assert!(stored.contains(&typed.digest(&user)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
#[cfg(feature = "passkeys")]
mod passkey;
mod passkey_store;
mod recovery;
mod secret_box;
pub(crate) mod store;
mod totp;

pub use config::{
    PendingLogin, SecondFactorMethod, SecondFactorProof, SecondFactorStatus, SecondFactors,
    TotpEnrollment,
};
#[cfg(feature = "passkeys")]
pub(crate) use passkey::{decode_credential_id, SharedPasskeyStore};
#[cfg(feature = "passkeys")]
pub use passkey::{passkey_user_handle, PasskeyConfigError, PasskeyView, Passkeys};
pub use passkey_store::{MemoryPasskeyStore, PasskeyAdded, PasskeyRecord, PasskeyStore};
pub use recovery::{RecoveryCode, RecoveryCodes};
pub use secret_box::{InvalidKey, KeyId, SealError, SecretBox, SecretKey};
pub use store::{MemorySecondFactorStore, RecoveryCodeDigest, SecondFactorStore, TotpRecord};
pub use totp::{InvalidTotpSecret, TotpCode, TotpPolicy, TotpSecret, TotpVerdict};
#[cfg(feature = "passkeys")]
pub use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
