//! What a one-time token is for ([`OneTimePurpose`]) and the account state it is bound to
//! ([`Binding`]).

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};
use smol_str::SmolStr;

use crate::user::User;

/// What a one-time token is for. A token issued for one purpose is refused for every other.
///
/// Each purpose has a stored name (`email_verification`, `password_reset`, `email_sign_in`,
/// `email_change`, `second_factor_login`, `passkey_registration`, `passkey_login`, or an application's own, checked by [`OneTimePurpose::custom`]) and a
/// default lifetime, which [`OneTimeTokens::with_lifetime`](super::OneTimeTokens::with_lifetime)
/// changes.
///
/// ```
/// use keycard::one_time::OneTimePurpose;
/// use std::time::Duration;
/// assert_eq!(OneTimePurpose::PasswordReset.name(), "password_reset");
/// assert_eq!(OneTimePurpose::PasswordReset.default_lifetime(), Duration::from_secs(30 * 60));
/// let invite = OneTimePurpose::custom("team_invite")?;
/// assert_eq!(OneTimePurpose::from_name("team_invite")?, invite);
/// assert!(OneTimePurpose::custom("password_reset").is_err()); // a built-in name
/// assert!(OneTimePurpose::custom("Bad Name").is_err());
/// # Ok::<(), keycard::one_time::InvalidPurpose>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OneTimePurpose {
    /// Proving that the user reads mail at their address. Default lifetime 24 hours.
    EmailVerification,
    /// Setting a new password without the old one. Default lifetime 30 minutes.
    PasswordReset,
    /// Logging in from a link in a mail (passwordless). Default lifetime 15 minutes.
    EmailSignIn,
    /// Confirming a new email address (the token's payload carries it). Default lifetime 1
    /// hour.
    EmailChange,
    /// The second step of a login whose password (or sign-in link) was right, for a user
    /// with a second factor: the pending-login token, exchanged with a code for a session.
    /// Default lifetime 5 minutes.
    SecondFactorLogin,
    /// A passkey registration under way: the token is the ceremony the client sends back,
    /// its payload the server-side WebAuthn state. Default lifetime 5 minutes.
    PasskeyRegistration,
    /// A passkey authentication under way (a passwordless login or a login's second step):
    /// the token is the ceremony, its payload the server-side WebAuthn state. Default
    /// lifetime 5 minutes.
    PasskeyLogin,
    /// An application's own purpose, made by [`OneTimePurpose::custom`]. Default lifetime 1
    /// hour.
    Custom(CustomPurpose),
}

/// The name of an application-defined [`OneTimePurpose`]: 1 to 32 characters of
/// `[a-z0-9_]`, starting with a letter, and not a built-in purpose's name.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CustomPurpose(SmolStr);

impl CustomPurpose {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A purpose name that [`OneTimePurpose::custom`] or [`OneTimePurpose::from_name`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid one-time token purpose {name:?}: {reason} (a purpose name is 1 to 32 characters of [a-z0-9_], starting with a letter)")]
#[non_exhaustive]
pub struct InvalidPurpose {
    /// The name given (at most its first 64 bytes).
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const BUILT_IN: [(&str, OneTimePurpose); 7] = [
    ("email_verification", OneTimePurpose::EmailVerification),
    ("password_reset", OneTimePurpose::PasswordReset),
    ("email_sign_in", OneTimePurpose::EmailSignIn),
    ("email_change", OneTimePurpose::EmailChange),
    ("second_factor_login", OneTimePurpose::SecondFactorLogin),
    ("passkey_registration", OneTimePurpose::PasskeyRegistration),
    ("passkey_login", OneTimePurpose::PasskeyLogin),
];

impl OneTimePurpose {
    /// The longest purpose name.
    pub const MAX_NAME_LEN: usize = 32;

    /// An application-defined purpose named `name`.
    ///
    /// # Errors
    /// [`InvalidPurpose`] unless `name` is 1 to 32 characters of `[a-z0-9_]` starting with a
    /// letter, and not the name of a built-in purpose (use the variant instead).
    pub fn custom(name: &str) -> Result<Self, InvalidPurpose> {
        let invalid = |reason| InvalidPurpose {
            name: name.chars().take(64).collect(),
            reason,
        };
        if BUILT_IN.iter().any(|(n, _)| *n == name) {
            return Err(invalid("it is the name of a built-in purpose"));
        }
        if name.is_empty() || name.len() > Self::MAX_NAME_LEN {
            return Err(invalid("it is empty or longer than 32 characters"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("it does not start with a lowercase letter"));
        }
        if !name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        {
            return Err(invalid("it has a character outside [a-z0-9_]"));
        }
        Ok(Self::Custom(CustomPurpose(SmolStr::new(name))))
    }

    /// The purpose stored under `name`: a built-in one or a custom one. Stores use it to
    /// decode what they kept.
    ///
    /// # Errors
    /// [`InvalidPurpose`] if `name` is neither.
    pub fn from_name(name: &str) -> Result<Self, InvalidPurpose> {
        match BUILT_IN.iter().find(|(n, _)| *n == name) {
            Some((_, purpose)) => Ok(purpose.clone()),
            None => Self::custom(name),
        }
    }

    /// The stored name.
    pub fn name(&self) -> &str {
        match self {
            Self::EmailVerification => "email_verification",
            Self::PasswordReset => "password_reset",
            Self::EmailSignIn => "email_sign_in",
            Self::EmailChange => "email_change",
            Self::SecondFactorLogin => "second_factor_login",
            Self::PasskeyRegistration => "passkey_registration",
            Self::PasskeyLogin => "passkey_login",
            Self::Custom(c) => c.as_str(),
        }
    }

    /// How long a token of this purpose lives unless configured otherwise: reset 30 minutes,
    /// sign-in 15 minutes, verification 24 hours, the second step of a login and passkey
    /// ceremonies 5 minutes, email change and custom purposes 1 hour.
    pub fn default_lifetime(&self) -> Duration {
        const MINUTE: u64 = 60;
        Duration::from_secs(match self {
            Self::EmailVerification => 24 * 60 * MINUTE,
            Self::PasswordReset => 30 * MINUTE,
            Self::EmailSignIn => 15 * MINUTE,
            Self::SecondFactorLogin | Self::PasskeyRegistration | Self::PasskeyLogin => 5 * MINUTE,
            Self::EmailChange | Self::Custom(_) => 60 * MINUTE,
        })
    }
}

impl fmt::Display for OneTimePurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for OneTimePurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OneTimePurpose({})", self.name())
    }
}

/// A digest of the account state a token was issued for. A token is consumed only with the
/// same binding, so it dies when that state changes: a reset link mailed before a password
/// change, or before the email changed, is refused after it.
///
/// [`Binding::for_user`] computes the binding each built-in purpose uses from a user record;
/// [`Binding::of`] digests any parts you choose. Bindings are 32-byte SHA-256 digests
/// (domain-separated, length-prefixed parts), compared in constant time; a store keeps the
/// digest only, never the password hash or email it was computed from.
///
/// ```
/// use keycard::one_time::{Binding, OneTimePurpose};
/// use keycard::UserRecord;
/// let mut ann = UserRecord::new(1_i64, "ann@example.com", "$argon2id$v=19$old");
/// let before = Binding::for_user(&OneTimePurpose::PasswordReset, &ann);
/// let verify_before = Binding::for_user(&OneTimePurpose::EmailVerification, &ann);
/// ann.password_hash = "$argon2id$v=19$new".into();
/// assert_ne!(Binding::for_user(&OneTimePurpose::PasswordReset, &ann), before);
/// // Verification is bound to the email only: a password change does not end it.
/// assert_eq!(Binding::for_user(&OneTimePurpose::EmailVerification, &ann), verify_before);
/// ```
#[derive(Clone, Copy)]
pub struct Binding([u8; 32]);

impl Binding {
    /// The binding of a token that depends on nothing (a constant).
    pub fn none() -> Self {
        Self::of(&[])
    }

    /// The digest of `parts`, in order: SHA-256 of a domain string and each part preceded by
    /// its length, so `["ab", "c"]` and `["a", "bc"]` differ.
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut d = Sha256::new();
        d.update(b"keycard one-time binding\0");
        for part in parts {
            d.update((part.len() as u64).to_be_bytes());
            d.update(part);
        }
        Self(d.finalize().into())
    }

    /// The binding keycard's flows use for `purpose` and `user`: the user's email (as
    /// stored) for [`EmailVerification`](OneTimePurpose::EmailVerification); the email and
    /// the password hash for every other purpose (reset, sign-in, email change, custom), so
    /// those tokens die when either changes.
    pub fn for_user<U: User + ?Sized>(purpose: &OneTimePurpose, user: &U) -> Self {
        let id = user.id();
        match purpose {
            OneTimePurpose::EmailVerification => {
                Self::of(&[b"email", id.as_str().as_bytes(), user.email().as_bytes()])
            }
            _ => Self::of(&[
                b"email+password",
                id.as_str().as_bytes(),
                user.email().as_bytes(),
                user.password_hash().as_bytes(),
            ]),
        }
    }

    /// The 32 raw bytes (what a store keeps).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a binding from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl PartialEq for Binding {
    /// Constant time.
    fn eq(&self, other: &Self) -> bool {
        crate::token::digests_equal(&self.0, &other.0)
    }
}

impl Eq for Binding {}

impl fmt::Debug for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Binding(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserRecord;

    #[test]
    fn names_round_trip_and_custom_names_are_checked() {
        for (name, purpose) in BUILT_IN {
            assert_eq!(purpose.name(), name);
            assert_eq!(OneTimePurpose::from_name(name), Ok(purpose));
        }
        for ok in ["a", "team_invite", "x1", &"a".repeat(32)] {
            let p = OneTimePurpose::custom(ok).expect(ok);
            assert_eq!(p.name(), ok);
            assert_eq!(OneTimePurpose::from_name(ok), Ok(p.clone()));
            assert_eq!(p.default_lifetime(), Duration::from_secs(3600));
        }
        for bad in [
            "",
            "1a",
            "_a",
            "A",
            "a-b",
            "a b",
            "a:b",
            "é",
            "email_change",
            &"a".repeat(33),
        ] {
            let e = OneTimePurpose::custom(bad).expect_err(bad);
            assert!(
                e.to_string().contains("invalid one-time token purpose"),
                "{e}"
            );
        }
        assert_eq!(
            OneTimePurpose::custom(&"é".repeat(1000))
                .expect_err("too long")
                .name
                .len(),
            128
        );
    }

    #[test]
    fn bindings_follow_the_state_they_cover() {
        let ann = UserRecord::new(1_i64, "ann@example.com", "h1");
        let reset = |u: &UserRecord| Binding::for_user(&OneTimePurpose::PasswordReset, u);
        let verify = |u: &UserRecord| Binding::for_user(&OneTimePurpose::EmailVerification, u);
        let mut moved = ann.clone();
        moved.email = "ann@example.org".into();
        let mut rehashed = ann.clone();
        rehashed.password_hash = "h2".into();
        assert_ne!(reset(&ann), reset(&moved));
        assert_ne!(reset(&ann), reset(&rehashed));
        assert_ne!(verify(&ann), verify(&moved));
        assert_eq!(verify(&ann), verify(&rehashed));
        assert_eq!(reset(&ann), reset(&ann.clone()));
        assert_ne!(Binding::of(&[b"ab", b"c"]), Binding::of(&[b"a", b"bc"]));
        assert_eq!(Binding::none(), Binding::of(&[]));
        assert_eq!(format!("{:?}", Binding::none()), "Binding(..)");
        let b = reset(&ann);
        assert_eq!(Binding::from_bytes(*b.as_bytes()), b);
    }
}
