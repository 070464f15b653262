//! Which new passwords are accepted: length, a blocklist of common passwords, and words of the
//! user's context (email, name, the service's name).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::authenticator::MAX_PASSWORD_LEN;
use crate::user::normalize_email;

/// Rules a new password must meet, applied by
/// [`Authenticator::change_password`](crate::Authenticator::change_password) and
/// [`Authenticator::hash_password_with_policy`](crate::Authenticator::hash_password_with_policy) (never at
/// login: a user whose password predates the policy can still log in).
///
/// The defaults follow NIST SP 800-63B (section 5.1.1.2) and OWASP ASVS 5.0 (6.2.4):
///
/// - at least [`DEFAULT_MIN_CHARS`](Self::DEFAULT_MIN_CHARS) (8) characters, counted as
///   Unicode scalar values (so `"pässwörd"` is 8 characters), configurable;
/// - at most [`MAX_PASSWORD_LEN`] bytes (at least 256 characters), as at login;
/// - not a commonly used password ([`CommonPasswords`]: the 30,000 most common passwords of
///   public breach lists, compared case-insensitively and with common character substitutions
///   undone; replace it with your own [`PasswordBlocklist`], such as a breached-password
///   service);
/// - not the user's email, not its local part (before the `@`), and not containing either
///   ([`PasswordRule::ContainsEmail`]);
/// - not the user's name nor containing it, when given to [`check_with`](Self::check_with)
///   ([`PasswordRule::ContainsName`]);
/// - not the service's name nor containing it, when set with
///   [`service_name`](Self::service_name) ([`PasswordRule::ContainsServiceName`]).
///
/// Context words (the email, its local part, the words of a name) are compared
/// case-insensitively; one shorter than
/// [`MIN_CONTEXT_WORD_CHARS`](Self::MIN_CONTEXT_WORD_CHARS) characters only has to differ
/// from the password, so that `a@example.com` or "Al" may still use passwords with an `a`.
///
/// No composition rules (a digit, a symbol...), which NIST advises against. A password is
/// never truncated, trimmed or otherwise altered: it is checked and hashed exactly as given.
///
/// ```
/// use keycard::{PasswordContext, PasswordPolicy, PasswordRule};
/// let policy = PasswordPolicy::default().service_name("Acme Budgets");
/// assert!(policy.check("correct horse battery staple", Some("ann@example.com")).is_ok());
/// let rejection = policy.check("Ann1", Some("ann1@example.com")).unwrap_err();
/// assert_eq!(
///     rejection.failed(),
///     &[PasswordRule::TooShort { min_chars: 8, chars: 4 }, PasswordRule::ContainsEmail]
/// );
/// assert!(policy.check("PASSWORD", None).is_err()); // blocklisted, whatever the case
/// assert!(policy.check("P@55w0rd", None).is_err()); // substitutions undone: "password"
///
/// let ann = PasswordContext::new().email("ann@example.com").name("Annabel Lee");
/// let rejection = policy.check_with("annabel-1990", &ann).unwrap_err();
/// assert_eq!(rejection.failed(), &[PasswordRule::ContainsName]);
/// let rejection = policy.check_with("my acme budgets!", &ann).unwrap_err();
/// assert_eq!(rejection.failed(), &[PasswordRule::ContainsServiceName]);
/// ```
#[derive(Clone)]
#[must_use]
pub struct PasswordPolicy {
    min_chars: usize,
    blocklist: Option<Arc<dyn PasswordBlocklist>>,
    context_words: bool,
    /// As given to [`service_name`](Self::service_name), for `Debug`.
    service_name: Option<Arc<str>>,
    /// The words of the service name, lowercase (see [`context_words`]).
    service_words: Arc<[String]>,
}

impl PasswordPolicy {
    /// The default minimum length, in characters: 8, NIST SP 800-63B's minimum for
    /// user-chosen passwords.
    pub const DEFAULT_MIN_CHARS: usize = 8;
    /// A context word (the email's local part, a word of the user's or the service's name)
    /// shorter than this (in characters) is only compared for equality with the password, not
    /// looked for inside it.
    pub const MIN_CONTEXT_WORD_CHARS: usize = 4;

    /// The default policy: 8 characters, the built-in [`CommonPasswords`] list, the email
    /// (and the name, given to [`check_with`](Self::check_with)) checked, no service name.
    pub fn new() -> Self {
        Self {
            min_chars: Self::DEFAULT_MIN_CHARS,
            blocklist: Some(Arc::new(CommonPasswords)),
            context_words: true,
            service_name: None,
            service_words: Arc::from(Vec::new()),
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

    /// Whether context words (the user's email and its local part, the user's name, the
    /// service name) are refused as (part of) the password. Default: `true`.
    pub fn context_words(mut self, check: bool) -> Self {
        self.context_words = check;
        self
    }

    /// Refuses passwords that are, or contain, the name of your site or app
    /// ([`PasswordRule::ContainsServiceName`]).
    ///
    /// The name is split into words at every character that is not a letter or a digit;
    /// each word, and all of them run together, is a context word, compared
    /// case-insensitively (a word shorter than
    /// [`MIN_CONTEXT_WORD_CHARS`](Self::MIN_CONTEXT_WORD_CHARS) only has to differ from the
    /// whole password). So `"Acme Budgets"` refuses `"acmebudgets1"`, `"Budgets-2024"` and
    /// `"my acme password"`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        let name: String = name.into();
        self.service_words = Arc::from(context_words(&name));
        self.service_name = Some(Arc::from(name));
        self
    }

    /// The minimum length, in characters.
    pub fn min_len(&self) -> usize {
        self.min_chars
    }

    /// Checks `password` against every rule; `email` (the user's, if known) feeds the context
    /// word rule. The same as [`check_with`](Self::check_with) with only an email.
    ///
    /// # Errors
    /// A [`PasswordRejection`] listing every rule that failed, in the order of
    /// [`PasswordRule`]'s variants.
    pub fn check(&self, password: &str, email: Option<&str>) -> Result<(), PasswordRejection> {
        self.check_with(password, &PasswordContext { email, name: None })
    }

    /// Checks `password` against every rule, with what is known about the user (their email,
    /// their name) for the context word rules.
    ///
    /// ```
    /// use keycard::{PasswordContext, PasswordPolicy, PasswordRule};
    /// let policy = PasswordPolicy::default();
    /// let user = PasswordContext::new().email("jo@example.com").name("Jo Marchetti");
    /// assert!(policy.check_with("correct horse battery staple", &user).is_ok());
    /// let rejection = policy.check_with("Marchetti!!", &user).unwrap_err();
    /// assert_eq!(rejection.failed(), &[PasswordRule::ContainsName]);
    /// ```
    ///
    /// # Errors
    /// A [`PasswordRejection`] listing every rule that failed, in the order of
    /// [`PasswordRule`]'s variants.
    pub fn check_with(
        &self,
        password: &str,
        context: &PasswordContext<'_>,
    ) -> Result<(), PasswordRejection> {
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
        if self.context_words {
            if context.email.is_some_and(|e| contains_email(password, e)) {
                failed.push(PasswordRule::ContainsEmail);
            }
            let name_words = context.name.map(context_words).unwrap_or_default();
            if !name_words.is_empty() || !self.service_words.is_empty() {
                let password = ContextPassword::new(password);
                if password.contains_any(&name_words) {
                    failed.push(PasswordRule::ContainsName);
                }
                if password.contains_any(&self.service_words) {
                    failed.push(PasswordRule::ContainsServiceName);
                }
            }
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
            .field("service_name", &self.service_name)
            .finish()
    }
}

/// What is known about the user whose new password is checked, for
/// [`PasswordPolicy::check_with`]: a password may be neither their email nor their name.
///
/// ```
/// use keycard::PasswordContext;
/// let context = PasswordContext::new().email("ann@example.com").name("Ann Lee");
/// assert_eq!(context.name, Some("Ann Lee"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasswordContext<'a> {
    /// The user's email (their login), if known.
    pub email: Option<&'a str>,
    /// The user's name (a display name, a full name, a username), if known. Split into
    /// words as [`PasswordPolicy::service_name`] describes.
    pub name: Option<&'a str>,
}

impl<'a> PasswordContext<'a> {
    /// Nothing known about the user.
    pub const fn new() -> Self {
        Self {
            email: None,
            name: None,
        }
    }

    /// Sets the user's email.
    #[must_use]
    pub const fn email(mut self, email: &'a str) -> Self {
        self.email = Some(email);
        self
    }

    /// Sets the user's name.
    #[must_use]
    pub const fn name(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
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

/// The context words of a name, lowercase: each run of letters and digits, and (when there
/// are several) all of them run together, so that `"Ann-Marie Lee"` gives `ann`, `marie`,
/// `lee` and `annmarielee`.
fn context_words(name: &str) -> Vec<String> {
    let lower = name.to_lowercase();
    let mut words: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    if words.len() > 1 {
        words.push(words.concat());
    }
    words.sort_unstable();
    words.dedup();
    words
}

/// A password prepared for context word checks: lowercase, and lowercase with everything
/// but letters and digits removed (so `"Ann-Lee 1990"` contains the word `annlee`).
struct ContextPassword {
    lower: String,
    squashed: String,
}

impl ContextPassword {
    fn new(password: &str) -> Self {
        let lower = password.to_lowercase();
        let squashed = lower.chars().filter(|c| c.is_alphanumeric()).collect();
        Self { lower, squashed }
    }

    /// Whether the password is one of `words`, or contains one of them that is long enough.
    fn contains_any(&self, words: &[String]) -> bool {
        words.iter().any(|word| {
            self.lower == *word
                || (word.chars().count() >= PasswordPolicy::MIN_CONTEXT_WORD_CHARS
                    && (self.lower.contains(word.as_str())
                        || self.squashed.contains(word.as_str())))
        })
    }
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

/// The built-in blocklist: the 30,000 most common passwords of public breach lists, plus a
/// few more, compared case-insensitively.
///
/// # The list
///
/// [`LIST`](Self::LIST) holds [`len()`](Self::len) entries (30,050, over 11,600 of them 8
/// characters or longer), lowercase:
///
/// - the `passwords` frequency list of zxcvbn, whole and in its order (most common first):
///   the 30,000 most frequent passwords of the Xato corpus of 10 million passwords from
///   public breaches, without those zxcvbn matches by other means (names, repeats,
///   sequences). Taken from the `zxcvbn` 4.5.0 package (MIT licence, see
///   `THIRD_PARTY_NOTICES.md`); shipped as `src/password_policy/common_passwords.txt`;
/// - 50 passwords of keycard's earlier list that zxcvbn leaves out (first names, repeated
///   digits...).
///
/// # Matching
///
/// A password is on the list when, lowercased, it is:
///
/// - one of the entries;
/// - one character repeated, 16 times at most (`aaaaaaaa`, `00000000`);
/// - or, if it has an ASCII letter, an entry once common substitutions are undone: `@`
///   and `$` alone (`p@$$word1` is `password1`), or all of `@`/`4` → `a`, `3` → `e`,
///   `0` → `o`, `$`/`5` → `s`, `7` → `t` with `1` read as `i`, as `l` and as `1`
///   (`P@55w0rd` is `password`, `L1nk1np4rk` is `linkinpark`, `1iverp00l` is
///   `liverpool`).
///
/// A check lowercases the password (one allocation, plus one per substitution tried) and
/// makes at most five hash lookups (about 30 ns each); the list and its set are built on the
/// first check (a few milliseconds, about 1 MB) and kept for the life of the process.
///
/// This is a floor, not a ceiling: for stronger protection against credential stuffing,
/// plug in a larger list or a breached-password service (a [`PasswordBlocklist`]).
///
/// ```
/// use keycard::{CommonPasswords, PasswordBlocklist};
/// assert!(CommonPasswords::len() >= 10_000);
/// assert!(CommonPasswords.contains("Zaq12wsx"));
/// assert!(CommonPasswords.contains("P@ssw0rd"));
/// assert!(!CommonPasswords.contains("correct horse battery staple"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CommonPasswords;

impl CommonPasswords {
    /// The list, lowercase, without duplicates: zxcvbn's passwords in frequency order, then
    /// keycard's additions. A [`PasswordList`]: use it as a `&[&str]`.
    pub const LIST: PasswordList = PasswordList { _private: () };

    /// How many entries [`LIST`](Self::LIST) holds (30,050).
    pub fn len() -> usize {
        entries().len()
    }

    /// The set of [`LIST`](Self::LIST), built on first use.
    fn set() -> &'static HashSet<&'static str> {
        static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
        SET.get_or_init(|| entries().iter().copied().collect())
    }
}

/// The entries of [`CommonPasswords::LIST`]: dereferences to a `&'static [&'static str]`
/// (split from the compiled-in text on first use), so `LIST.len()`, `LIST.iter()` and
/// `LIST[0]` work as on a slice.
///
/// ```
/// use keycard::CommonPasswords;
/// assert_eq!(CommonPasswords::LIST[0], "123456");
/// assert!(CommonPasswords::LIST.iter().any(|p| *p == "zaq12wsx"));
/// let all: &[&str] = &CommonPasswords::LIST;
/// assert_eq!(all.len(), CommonPasswords::len());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PasswordList {
    _private: (),
}

impl std::ops::Deref for PasswordList {
    type Target = [&'static str];

    fn deref(&self) -> &Self::Target {
        entries()
    }
}

impl IntoIterator for PasswordList {
    type Item = &'static &'static str;
    type IntoIter = std::slice::Iter<'static, &'static str>;

    fn into_iter(self) -> Self::IntoIter {
        entries().iter()
    }
}

impl PasswordBlocklist for CommonPasswords {
    fn contains(&self, password: &str) -> bool {
        let set = Self::set();
        let lower = password.to_lowercase();
        if set.contains(lower.as_str()) || is_one_char_repeated(&lower) {
            return true;
        }
        if !lower.bytes().any(|b| b.is_ascii_alphabetic()) {
            return false;
        }
        let symbols_undone: String = lower
            .chars()
            .map(|c| match c {
                '@' => 'a',
                '$' => 's',
                c => c,
            })
            .collect();
        if symbols_undone != lower && set.contains(symbols_undone.as_str()) {
            return true;
        }
        ['i', 'l', '1'].into_iter().any(|one| {
            let undone: String = lower.chars().map(|c| undo_leet(c, one)).collect();
            undone != lower && undone != symbols_undone && set.contains(undone.as_str())
        })
    }
}

/// Whether `password` is one character repeated, 16 times at most.
fn is_one_char_repeated(password: &str) -> bool {
    let mut chars = password.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    password.chars().count() <= 16 && chars.all(|c| c == first)
}

/// `c` with a common "leet" substitution undone, `1` becoming `one`.
fn undo_leet(c: char, one: char) -> char {
    match c {
        '@' | '4' => 'a',
        '3' => 'e',
        '0' => 'o',
        '$' | '5' => 's',
        '7' => 't',
        '1' => one,
        c => c,
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
    /// The user's name or one of its words, or contains one of them
    /// ([`PasswordContext::name`]).
    ContainsName,
    /// The service's name or one of its words, or contains one of them
    /// ([`PasswordPolicy::service_name`]).
    ContainsServiceName,
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
            Self::ContainsEmail => f.write_str("it must not contain your email address"),
            Self::ContainsName => f.write_str("it must not contain your name"),
            Self::ContainsServiceName => {
                f.write_str("it must not contain the name of this site or app")
            }
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

/// zxcvbn's `passwords` frequency list (MIT, see `THIRD_PARTY_NOTICES.md`), one per line,
/// lowercase, most common first.
const ZXCVBN_TEXT: &str = include_str!("common_passwords.txt");

/// Passwords of keycard's earlier list that zxcvbn leaves out (it matches names, repeats and
/// sequences by other means), lowercase.
const KEYCARD_ADDITIONS: &[&str] = &[
    "michael",
    "121212",
    "jennifer",
    "andrew",
    "2000",
    "robert",
    "thomas",
    "daniel",
    "george",
    "michelle",
    "jessica",
    "1111",
    "555555",
    "777777",
    "aaaaaa",
    "joshua",
    "amanda",
    "ashley",
    "nicole",
    "matthew",
    "987654321",
    "taylor",
    "william",
    "martin",
    "heather",
    "222222",
    "88888888",
    "anthony",
    "justin",
    "bailey",
    "patrick",
    "11111",
    "richard",
    "jackson",
    "morgan",
    "andrea",
    "joseph",
    "melissa",
    "xxxxxx",
    "123123123",
    "987654",
    "999999",
    "0000",
    "miller",
    "brandon",
    "johnny",
    "edward",
    "333333",
    "knight",
    "please",
];

/// [`ZXCVBN_TEXT`]'s non-empty lines, then [`KEYCARD_ADDITIONS`]; split on first use (a
/// split at compile time costs seconds of const evaluation on every build).
fn entries() -> &'static [&'static str] {
    static ENTRIES: OnceLock<Box<[&'static str]>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        ZXCVBN_TEXT
            .lines()
            .filter(|line| !line.is_empty())
            .chain(KEYCARD_ADDITIONS.iter().copied())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_list_is_lowercase_and_has_no_duplicates() {
        let set: HashSet<&str> = CommonPasswords::LIST.iter().copied().collect();
        assert_eq!(set.len(), CommonPasswords::LIST.len());
        assert!(CommonPasswords::LIST
            .iter()
            .all(|p| !p.is_empty() && p.to_lowercase() == *p && p.trim() == *p));
        assert_eq!(CommonPasswords::len(), 30_050);
        assert_eq!(
            CommonPasswords::LIST[..3],
            ["123456", "password", "12345678"]
        );
        assert_eq!(CommonPasswords::LIST[30_000], "michael");
        assert!(
            CommonPasswords::LIST
                .iter()
                .filter(|p| p.chars().count() >= 8)
                .count()
                >= 3_000
        );
    }

    #[test]
    fn repeats_and_substitutions_are_caught() {
        for common in [
            "aaaaaaaa",
            "00000000",
            "ÄÄÄÄÄÄ",
            "P@ssw0rd",
            "p@55w0rd",
            "Pa$$word1",
            "p@$$w0rd",
            "L1nk1np4rk",
            "1iverp00l",
            "michael",
            "Michael",
        ] {
            assert!(CommonPasswords.contains(common), "{common}");
        }
        for fine in [
            "",
            &"a".repeat(17),
            "correct horse battery staple",
            "31415926535",
            "tr0ub4dor&3 staple",
        ] {
            assert!(!CommonPasswords.contains(fine), "{fine}");
        }
    }

    #[test]
    fn context_words_split_at_non_alphanumerics() {
        assert_eq!(
            context_words("Ann-Marie  Lee"),
            ["ann", "annmarielee", "lee", "marie"]
        );
        assert_eq!(context_words("Zoë"), ["zoë"]);
        assert!(context_words(" - ").is_empty());
        let password = ContextPassword::new("Ann-Marie-Lee 1990");
        assert!(password.contains_any(&context_words("annmarie lee")));
        assert!(!ContextPassword::new("a lee b").contains_any(&context_words("Al Lee")));
        assert!(ContextPassword::new("LEE").contains_any(&context_words("Al Lee")));
    }

    #[test]
    fn names_and_the_service_name_are_refused_as_context_words() {
        let policy = PasswordPolicy::default().service_name("Keycard Demo");
        let user = PasswordContext::new()
            .email("al@example.com")
            .name("Alberto Ruiz");
        for (password, rule) in [
            ("alberto-rocks-42", PasswordRule::ContainsName),
            ("RUIZRUIZRUIZ", PasswordRule::ContainsName),
            ("my keycard passphrase", PasswordRule::ContainsServiceName),
            ("Demo-Demo-Demo", PasswordRule::ContainsServiceName),
        ] {
            let rejection = policy.check_with(password, &user).expect_err(password);
            assert_eq!(rejection.failed(), &[rule], "{password}");
        }
        assert!(policy
            .check_with("correct horse battery staple", &user)
            .is_ok());
        assert!(policy
            .clone()
            .context_words(false)
            .check_with("alberto keycard 42", &user)
            .is_ok());
        assert!(PasswordPolicy::default()
            .check_with("my keycard passphrase", &user)
            .is_ok());
        assert!(format!("{policy:?}").contains("Keycard Demo"));
    }
}
