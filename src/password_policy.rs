//! Which new passwords are accepted: length, a blocklist of common passwords, and the user's
//! own email.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::authenticator::MAX_PASSWORD_LEN;
use crate::user::normalize_email;

/// Rules a new password must meet, applied by
/// [`Authenticator::change_password`](crate::Authenticator::change_password) and
/// [`Authenticator::hash_new_password`](crate::Authenticator::hash_new_password) (never at
/// login: a user whose password predates the policy can still log in).
///
/// The defaults follow NIST SP 800-63B (section 5.1.1.2):
///
/// - at least [`DEFAULT_MIN_CHARS`](Self::DEFAULT_MIN_CHARS) (8) characters, counted as
///   Unicode scalar values (so `"pässwörd"` is 8 characters), configurable;
/// - at most [`MAX_PASSWORD_LEN`] bytes (at least 256 characters), as at login;
/// - not a commonly used password ([`CommonPasswords`], compared case-insensitively;
///   replace it with your own [`PasswordBlocklist`], such as a breached-password service);
/// - not the user's email, not its local part (before the `@`), and not containing either
///   (compared case-insensitively; a local part shorter than
///   [`MIN_CONTEXT_WORD_CHARS`](Self::MIN_CONTEXT_WORD_CHARS) characters only has to differ
///   from the password, so that `a@example.com` may still use passwords with an `a`).
///
/// No composition rules (a digit, a symbol...), which NIST advises against. A password is
/// never truncated, trimmed or otherwise altered: it is checked and hashed exactly as given.
///
/// ```
/// use keycard::{PasswordPolicy, PasswordRule};
/// let policy = PasswordPolicy::default();
/// assert!(policy.check("correct horse battery staple", Some("ann@example.com")).is_ok());
/// let rejection = policy.check("Ann1", Some("ann1@example.com")).unwrap_err();
/// assert_eq!(
///     rejection.failed(),
///     &[PasswordRule::TooShort { min_chars: 8, chars: 4 }, PasswordRule::ContainsEmail]
/// );
/// assert!(policy.check("PASSWORD", None).is_err()); // blocklisted, whatever the case
/// ```
#[derive(Clone)]
#[must_use]
pub struct PasswordPolicy {
    min_chars: usize,
    blocklist: Option<Arc<dyn PasswordBlocklist>>,
    context_words: bool,
}

impl PasswordPolicy {
    /// The default minimum length, in characters: 8, NIST SP 800-63B's minimum for
    /// user-chosen passwords.
    pub const DEFAULT_MIN_CHARS: usize = 8;
    /// A local part of the email shorter than this (in characters) is only compared for
    /// equality with the password, not looked for inside it.
    pub const MIN_CONTEXT_WORD_CHARS: usize = 4;

    /// The default policy: 8 characters, the built-in [`CommonPasswords`] list, the email
    /// checked.
    pub fn new() -> Self {
        Self {
            min_chars: Self::DEFAULT_MIN_CHARS,
            blocklist: Some(Arc::new(CommonPasswords)),
            context_words: true,
        }
    }

    /// Sets the minimum length in characters (at least 1: the empty password is never
    /// accepted). Lowering it below 8 goes against NIST SP 800-63B.
    pub fn min_chars(mut self, min: usize) -> Self {
        self.min_chars = min.max(1);
        self
    }

    /// Uses `blocklist` instead of [`CommonPasswords`].
    pub fn blocklist(mut self, blocklist: impl PasswordBlocklist + 'static) -> Self {
        self.blocklist = Some(Arc::new(blocklist));
        self
    }

    /// Checks no blocklist.
    pub fn without_blocklist(mut self) -> Self {
        self.blocklist = None;
        self
    }

    /// Whether the user's email and its local part are refused as (part of) the password.
    /// Default: `true`.
    pub fn context_words(mut self, check: bool) -> Self {
        self.context_words = check;
        self
    }

    /// The minimum length, in characters.
    pub fn min_len(&self) -> usize {
        self.min_chars
    }

    /// Checks `password` against every rule; `email` (the user's, if known) feeds the context
    /// word rule.
    ///
    /// # Errors
    /// A [`PasswordRejection`] listing every rule that failed, in the order of
    /// [`PasswordRule`]'s variants.
    pub fn check(&self, password: &str, email: Option<&str>) -> Result<(), PasswordRejection> {
        let mut failed = Vec::new();
        let chars = password.chars().count();
        if chars < self.min_chars {
            failed.push(PasswordRule::TooShort {
                min_chars: self.min_chars,
                chars,
            });
        }
        if password.len() > MAX_PASSWORD_LEN {
            failed.push(PasswordRule::TooLong {
                max_bytes: MAX_PASSWORD_LEN,
            });
        }
        if self
            .blocklist
            .as_ref()
            .is_some_and(|b| b.contains(password))
        {
            failed.push(PasswordRule::Common);
        }
        if self.context_words && email.is_some_and(|e| contains_email(password, e)) {
            failed.push(PasswordRule::ContainsEmail);
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(PasswordRejection { failed }),
        }
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("min_chars", &self.min_chars)
            .field("max_bytes", &MAX_PASSWORD_LEN)
            .field("blocklist", &self.blocklist)
            .field("context_words", &self.context_words)
            .finish()
    }
}

/// Whether `password` is, or contains, the email or its local part (case-insensitively).
fn contains_email(password: &str, email: &str) -> bool {
    let email = normalize_email(email);
    if email.is_empty() {
        return false;
    }
    let password = password.to_lowercase();
    if password.contains(&email) {
        return true;
    }
    let local = email.split('@').next().unwrap_or_default();
    !local.is_empty()
        && (password == local
            || (local.chars().count() >= PasswordPolicy::MIN_CONTEXT_WORD_CHARS
                && password.contains(local)))
}

/// A list of passwords nobody may choose. Implement it over a larger list or a
/// breached-password service; [`CommonPasswords`] is the built-in one.
///
/// `contains` runs on the async executor during a password change or registration: keep it
/// fast (an in-memory lookup), or check asynchronously before calling keycard.
pub trait PasswordBlocklist: Send + Sync + fmt::Debug {
    /// Whether `password` (exactly as the user typed it) is on the list. Compare
    /// case-insensitively unless your list says otherwise.
    fn contains(&self, password: &str) -> bool;
}

/// The built-in blocklist: the most common passwords of public breach compilations (about
/// 200), compared case-insensitively. Small on purpose; for real protection against
/// credential stuffing, plug in a larger list or a breached-password service.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommonPasswords;

impl CommonPasswords {
    /// The list, lowercase.
    pub const LIST: &'static [&'static str] = COMMON_PASSWORDS;
}

impl PasswordBlocklist for CommonPasswords {
    fn contains(&self, password: &str) -> bool {
        static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
        let set = SET.get_or_init(|| COMMON_PASSWORDS.iter().copied().collect());
        set.contains(password.to_lowercase().as_str())
    }
}

/// One rule a password failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordRule {
    /// Fewer characters than the policy's minimum.
    TooShort {
        /// The minimum, in characters.
        min_chars: usize,
        /// How many characters the password has.
        chars: usize,
    },
    /// Longer than [`MAX_PASSWORD_LEN`] bytes.
    TooLong {
        /// The maximum, in bytes.
        max_bytes: usize,
    },
    /// On the blocklist of common passwords.
    Common,
    /// The user's email or its local part, or contains one of them.
    ContainsEmail,
}

impl fmt::Display for PasswordRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min_chars, chars } => write!(
                f,
                "it must be at least {min_chars} characters long (it has {chars})"
            ),
            Self::TooLong { max_bytes } => {
                write!(f, "it must be at most {max_bytes} bytes long")
            }
            Self::Common => f.write_str("it is one of the most commonly used passwords"),
            Self::ContainsEmail => f.write_str("it must not contain your email address or name"),
        }
    }
}

/// Why a new password was refused: every rule it failed (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordRejection {
    failed: Vec<PasswordRule>,
}

impl PasswordRejection {
    /// The rules that failed, in the order of [`PasswordRule`]'s variants.
    pub fn failed(&self) -> &[PasswordRule] {
        &self.failed
    }
}

impl fmt::Display for PasswordRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("choose another password: ")?;
        for (i, rule) in self.failed.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PasswordRejection {}

/// The most common passwords of public breach compilations (SecLists' top lists, NCSC's
/// 100k list), lowercase and without duplicates.
const COMMON_PASSWORDS: &[&str] = &[
    "123456",
    "password",
    "12345678",
    "qwerty",
    "123456789",
    "12345",
    "1234",
    "111111",
    "1234567",
    "dragon",
    "123123",
    "baseball",
    "abc123",
    "football",
    "monkey",
    "letmein",
    "696969",
    "shadow",
    "master",
    "666666",
    "qwertyuiop",
    "123321",
    "mustang",
    "1234567890",
    "michael",
    "654321",
    "superman",
    "1qaz2wsx",
    "7777777",
    "121212",
    "000000",
    "qazwsx",
    "123qwe",
    "killer",
    "trustno1",
    "jordan",
    "jennifer",
    "zxcvbnm",
    "asdfgh",
    "hunter",
    "buster",
    "soccer",
    "harley",
    "batman",
    "andrew",
    "tigger",
    "sunshine",
    "iloveyou",
    "2000",
    "charlie",
    "robert",
    "thomas",
    "hockey",
    "ranger",
    "daniel",
    "starwars",
    "klaster",
    "112233",
    "george",
    "computer",
    "michelle",
    "jessica",
    "pepper",
    "1111",
    "zxcvbn",
    "555555",
    "11111111",
    "131313",
    "freedom",
    "777777",
    "pass",
    "maggie",
    "159753",
    "aaaaaa",
    "ginger",
    "princess",
    "joshua",
    "cheese",
    "amanda",
    "summer",
    "love",
    "ashley",
    "nicole",
    "chelsea",
    "biteme",
    "matthew",
    "access",
    "yankees",
    "987654321",
    "dallas",
    "austin",
    "thunder",
    "taylor",
    "matrix",
    "william",
    "corvette",
    "hello",
    "martin",
    "heather",
    "secret",
    "merlin",
    "diamond",
    "1234qwer",
    "gfhjkm",
    "hammer",
    "silver",
    "222222",
    "88888888",
    "anthony",
    "justin",
    "test",
    "bailey",
    "q1w2e3r4t5",
    "patrick",
    "internet",
    "scooter",
    "orange",
    "11111",
    "golfer",
    "cookie",
    "richard",
    "samantha",
    "bigdog",
    "guitar",
    "jackson",
    "whatever",
    "mickey",
    "chicken",
    "sparky",
    "snoopy",
    "maverick",
    "phoenix",
    "camaro",
    "peanut",
    "morgan",
    "welcome",
    "falcon",
    "cowboy",
    "ferrari",
    "samsung",
    "andrea",
    "smokey",
    "steelers",
    "joseph",
    "mercedes",
    "dakota",
    "arsenal",
    "eagles",
    "melissa",
    "boomer",
    "booboo",
    "spider",
    "nascar",
    "monster",
    "tigers",
    "yellow",
    "xxxxxx",
    "123123123",
    "gateway",
    "marina",
    "diablo",
    "bulldog",
    "qwer1234",
    "compaq",
    "purple",
    "hardcore",
    "banana",
    "junior",
    "hannah",
    "123654",
    "porsche",
    "lakers",
    "iceman",
    "money",
    "cowboys",
    "987654",
    "london",
    "tennis",
    "999999",
    "ncc1701",
    "coffee",
    "scooby",
    "0000",
    "miller",
    "boston",
    "q1w2e3r4",
    "brandon",
    "yamaha",
    "chester",
    "mother",
    "forever",
    "johnny",
    "edward",
    "333333",
    "oliver",
    "redsox",
    "player",
    "nikita",
    "knight",
    "fender",
    "barney",
    "midnight",
    "please",
    "brandy",
    "chicago",
    "badboy",
    "password1",
    "passw0rd",
    "qwerty123",
    "admin",
    "welcome1",
    "abc12345",
    "password123",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_list_is_lowercase_and_has_no_duplicates() {
        let set: HashSet<&str> = COMMON_PASSWORDS.iter().copied().collect();
        assert_eq!(set.len(), COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.iter().all(|p| p.to_lowercase() == *p));
    }
}
