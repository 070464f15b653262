//! How the [`Authenticator`](crate::Authenticator) is given second factors
//! ([`SecondFactors`]), and what its second-factor operations take and return.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{RecoveryCodes, SecondFactorStore, SecretBox, TotpPolicy};
use crate::one_time::{OneTimeToken, OneTimeTokenStore};
use crate::throttle::Limit;

#[cfg(doc)]
use crate::{Authenticator, AuthenticatorBuilder, Error};

/// Second factors for an [`Authenticator`]: where they are stored, where pending logins
/// live, the key that encrypts TOTP secrets at rest, and the limits. Give it to
/// [`AuthenticatorBuilder::second_factors`].
///
/// Defaults: TOTP as authenticator apps expect it ([`TotpPolicy::default`]: SHA-1, 6 digits,
/// 30 s, ±1 step), issuer `keycard` in the app, 10 recovery codes, at most 10 wrong codes
/// per account per 15 minutes (then [`Error::Throttled`], on the authenticator's throttle, so
/// every instance on a shared throttle counts together), a pending login that lives 5
/// minutes and ends after 5 wrong codes.
///
/// ```
/// use keycard::mfa::{MemorySecondFactorStore, SecondFactors, SecretBox, SecretKey, KeyId};
/// use keycard::one_time::MemoryOneTimeStore;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The key comes from your secret store; keep it out of the database it protects.
/// let key = SecretKey::from_base64("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=")?;
/// let factors = SecondFactors::new(
///     MemorySecondFactorStore::new(),
///     MemoryOneTimeStore::new(),
///     SecretBox::new(KeyId::new(1), key),
/// )
/// .with_issuer("Example");
/// # let _ = factors; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SecondFactors {
    pub(crate) store: Arc<dyn SecondFactorStore>,
    pub(crate) pending: Arc<dyn OneTimeTokenStore>,
    pub(crate) secret_box: SecretBox,
    pub(crate) totp: TotpPolicy,
    pub(crate) issuer: String,
    pub(crate) recovery_codes: usize,
    pub(crate) code_limit: Limit,
    pub(crate) pending_attempts: u32,
    pub(crate) pending_lifetime: Duration,
    pub(crate) required: bool,
}

impl SecondFactors {
    /// The longest a pending login may live.
    pub const MAX_PENDING_LIFETIME: Duration = Duration::from_secs(5 * 60);

    /// Second factors stored in `store`, pending logins in `pending` (a one-time token store:
    /// the same one account links use is fine), TOTP secrets sealed by `secret_box`.
    pub fn new(
        store: impl SecondFactorStore + 'static,
        pending: impl OneTimeTokenStore + 'static,
        secret_box: SecretBox,
    ) -> Self {
        Self::from_arcs(Arc::new(store), Arc::new(pending), secret_box)
    }

    /// [`new`](Self::new) with stores already shared.
    pub fn from_arcs(
        store: Arc<dyn SecondFactorStore>,
        pending: Arc<dyn OneTimeTokenStore>,
        secret_box: SecretBox,
    ) -> Self {
        Self {
            store,
            pending,
            secret_box,
            totp: TotpPolicy::default(),
            issuer: "keycard".to_owned(),
            recovery_codes: RecoveryCodes::DEFAULT_COUNT,
            code_limit: Limit::new(10, Duration::from_secs(15 * 60)),
            pending_attempts: 5,
            pending_lifetime: Self::MAX_PENDING_LIFETIME,
            required: false,
        }
    }

    /// Requires a second factor on every session (NIST SP 800-63B AAL2):
    /// [`Authenticator::require_second_factor`] then refuses a session without one whether or
    /// not its user has enrolled, so a user without an authenticator app can log in, enrol
    /// one, and nothing else. Default: off (only users who enrolled need one).
    #[must_use]
    pub fn required_for_every_session(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// The name authenticator apps show above the code (your service's name).
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The TOTP parameters. Keep the default unless every app your users have supports
    /// yours (many ignore anything but SHA-1, 6 digits, 30 s).
    #[must_use]
    pub fn with_totp_policy(mut self, policy: TotpPolicy) -> Self {
        self.totp = policy;
        self
    }

    /// How many recovery codes enrolment and regeneration issue (8 to 32).
    #[must_use]
    pub fn with_recovery_codes(mut self, count: usize) -> Self {
        self.recovery_codes = count.clamp(8, 32);
        self
    }

    /// How many wrong codes an account may send per window, across all its pending logins,
    /// addresses and instances. Default: 10 per 15 minutes.
    #[must_use]
    pub fn with_code_limit(mut self, limit: Limit) -> Self {
        self.code_limit = limit;
        self
    }

    /// How many codes one pending login may try before it ends (1 to 10; default 5).
    #[must_use]
    pub fn with_pending_attempts(mut self, attempts: u32) -> Self {
        self.pending_attempts = attempts.clamp(1, 10);
        self
    }

    /// How long a pending login lives (1 second to 5 minutes; default 5 minutes).
    #[must_use]
    pub fn with_pending_lifetime(mut self, lifetime: Duration) -> Self {
        self.pending_lifetime = lifetime.clamp(Duration::from_secs(1), Self::MAX_PENDING_LIFETIME);
        self
    }

    /// The store of second factors.
    pub fn store(&self) -> &Arc<dyn SecondFactorStore> {
        &self.store
    }

    /// The TOTP parameters.
    pub fn totp_policy(&self) -> &TotpPolicy {
        &self.totp
    }
}

impl fmt::Debug for SecondFactors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactors")
            .field("store", &self.store)
            .field("pending", &self.pending)
            .field("secret_box", &self.secret_box)
            .field("totp", &self.totp)
            .field("issuer", &self.issuer)
            .field("recovery_codes", &self.recovery_codes)
            .field("code_limit", &self.code_limit)
            .field("pending_attempts", &self.pending_attempts)
            .field("pending_lifetime", &self.pending_lifetime)
            .field("required", &self.required)
            .finish()
    }
}

/// A login waiting for its second factor: what [`Error::SecondFactorRequired`] carries. Send
/// [`token`](Self::token) to the client (it is a secret, good for this one login step only,
/// and not a session: it authenticates nothing else), and pass it back with a code to
/// [`Authenticator::complete_login`].
#[non_exhaustive]
pub struct PendingLogin {
    /// The pending-login token.
    pub token: OneTimeToken,
    /// When it dies.
    pub expires_at: OffsetDateTime,
    /// Which second factors the user can answer with.
    pub methods: Vec<SecondFactorMethod>,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("methods", &self.methods)
            .finish()
    }
}

/// A kind of second factor a pending login can be completed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecondFactorMethod {
    /// A code from an authenticator app.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// A passkey (feature `passkeys`).
    Passkey,
}

impl SecondFactorMethod {
    /// The name used on the wire (`totp`, `recovery_code`, `passkey`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }
}

/// What proves the second factor: a code from the authenticator app, a recovery code, or
/// (feature `passkeys`) a passkey's answer to a ceremony.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum SecondFactorProof<'a> {
    /// A code from the authenticator app (`123456`, spaces allowed).
    Totp(&'a str),
    /// A recovery code (`abcd-efgh-ijkl-mnop`, any case, hyphens and spaces optional).
    RecoveryCode(&'a str),
    /// A passkey's assertion, answering the ceremony that
    /// [`Authenticator::begin_passkey_second_factor`] began for this pending login.
    #[cfg(feature = "passkeys")]
    Passkey {
        /// The ceremony token `begin_passkey_second_factor` returned.
        ceremony: &'a str,
        /// What `navigator.credentials.get` returned.
        credential: &'a super::PublicKeyCredential,
    },
}

impl fmt::Debug for SecondFactorProof<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Totp(_) => "SecondFactorProof::Totp(..)",
            Self::RecoveryCode(_) => "SecondFactorProof::RecoveryCode(..)",
            #[cfg(feature = "passkeys")]
            Self::Passkey { .. } => "SecondFactorProof::Passkey { .. }",
        })
    }
}

/// The start of a TOTP enrolment: show the user [`otpauth_uri`](Self::otpauth_uri) as a QR
/// code (and [`secret`](Self::secret) for typing in), then confirm with a code from the app.
/// Not active until confirmed. Both fields are secrets: show them once, log neither.
#[non_exhaustive]
pub struct TotpEnrollment {
    /// The secret in base32, as apps accept it typed in.
    pub secret: Zeroizing<String>,
    /// The `otpauth://totp/...` URI for the QR code.
    pub otpauth_uri: Zeroizing<String>,
}

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrollment(..)")
    }
}

/// A user's second factors, for an account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SecondFactorStatus {
    /// Whether an authenticator app is active.
    pub totp: bool,
    /// Whether an enrolment waits for its confirming code.
    pub totp_pending: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}
