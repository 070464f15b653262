//! How a session was authenticated: [`AuthMethod`] and the set of them a session records,
//! [`AuthMethods`] (the `amr` claim of OpenID Connect, RFC 8176).

use std::fmt;

use serde::{Serialize, Serializer};

/// One way a user proved who they are.
///
/// [`as_str`](Self::as_str) gives the `amr` value (RFC 8176 where one is registered:
/// `pwd`, `otp`, `hwk`; keycard's own names otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A password (`pwd`).
    Password,
    /// A code from an authenticator app, TOTP (`otp`).
    Totp,
    /// A single-use recovery code (`recovery_code`).
    RecoveryCode,
    /// A passkey, a WebAuthn credential (`hwk`: proof of possession of a key).
    Passkey,
    /// A link mailed to the user's address (`email_link`).
    EmailLink,
}

impl AuthMethod {
    const ALL: [AuthMethod; 5] = [
        AuthMethod::Password,
        AuthMethod::Totp,
        AuthMethod::RecoveryCode,
        AuthMethod::Passkey,
        AuthMethod::EmailLink,
    ];

    /// The `amr` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::Totp => "otp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "hwk",
            Self::EmailLink => "email_link",
        }
    }

    /// Whether this method is a second factor (TOTP, a recovery code, a passkey).
    pub fn is_second_factor(self) -> bool {
        matches!(self, Self::Totp | Self::RecoveryCode | Self::Passkey)
    }

    fn bit(self) -> u8 {
        match self {
            Self::Password => 1,
            Self::Totp => 2,
            Self::RecoveryCode => 4,
            Self::Passkey => 8,
            Self::EmailLink => 16,
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The methods a session was authenticated with: its `amr` list. Stores keep it as a small
/// integer ([`bits`](Self::bits)); it serializes as the list of `amr` values.
///
/// ```
/// use keycard::{AuthMethod, AuthMethods};
/// let amr = AuthMethods::from(AuthMethod::Password).with(AuthMethod::Totp);
/// assert!(amr.contains(AuthMethod::Totp));
/// assert!(amr.has_second_factor());
/// assert_eq!(amr.names().collect::<Vec<_>>(), ["pwd", "otp"]);
/// assert_eq!(AuthMethods::from_bits(amr.bits()), amr);
/// assert_eq!(serde_json::to_string(&amr).unwrap(), r#"["pwd","otp"]"#);
/// // A session a store kept before methods were recorded has none.
/// assert!(AuthMethods::default().is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AuthMethods(u8);

impl AuthMethods {
    /// No method recorded.
    pub const fn none() -> Self {
        Self(0)
    }

    /// The set with `method` added.
    #[must_use]
    pub fn with(self, method: AuthMethod) -> Self {
        Self(self.0 | method.bit())
    }

    /// The union of both sets.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `method` is in the set.
    pub fn contains(self, method: AuthMethod) -> bool {
        self.0 & method.bit() != 0
    }

    /// Whether any second factor (TOTP, a recovery code, a passkey) is in the set.
    pub fn has_second_factor(self) -> bool {
        self.iter().any(AuthMethod::is_second_factor)
    }

    /// Whether no method is recorded.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The methods, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = AuthMethod> {
        AuthMethod::ALL
            .into_iter()
            .filter(move |m| self.contains(*m))
    }

    /// The `amr` values, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.iter().map(AuthMethod::as_str)
    }

    /// The set as stores keep it.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// The set stores kept; bits keycard does not know are dropped.
    pub fn from_bits(bits: u8) -> Self {
        Self(bits & AuthMethod::ALL.iter().fold(0, |all, m| all | m.bit()))
    }
}

impl From<AuthMethod> for AuthMethods {
    fn from(method: AuthMethod) -> Self {
        Self::none().with(method)
    }
}

impl fmt::Debug for AuthMethods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Serialize for AuthMethods {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}
