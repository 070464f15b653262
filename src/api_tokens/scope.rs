//! Scopes: what an API token may do, as RFC 6749 scope tokens.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;

/// One scope: a string in RFC 6749's scope-token syntax (§3.3), 1 to [`Scope::MAX_LEN`]
/// printable ASCII characters other than space, `"` and `\`, such as `notes:read`.
///
/// ```
/// use keycard::api_tokens::Scope;
/// let read: Scope = "notes:read".parse()?;
/// assert_eq!(read.as_str(), "notes:read");
/// assert!("notes read".parse::<Scope>().is_err());
/// assert!("".parse::<Scope>().is_err());
/// # Ok::<(), keycard::api_tokens::InvalidScope>(())
/// ```
#[derive(Clone)]
pub struct Scope {
    text: SmolStr,
    /// What [`Scopes::contains`] compares: derived from `text`.
    key: Key,
}

impl Scope {
    /// The longest scope accepted, in bytes.
    pub const MAX_LEN: usize = 64;

    /// A scope, checked.
    ///
    /// # Errors
    /// [`InvalidScope`] unless `scope` is 1 to [`MAX_LEN`](Self::MAX_LEN) characters of
    /// `%x21 / %x23-5B / %x5D-7E`.
    pub fn new(scope: &str) -> Result<Self, InvalidScope> {
        if scope.is_empty() {
            return Err(InvalidScope::new(scope, "it is empty"));
        }
        if scope.len() > Self::MAX_LEN {
            return Err(InvalidScope::new(scope, "it is longer than 64 bytes"));
        }
        if !scope.bytes().all(is_scope_char) {
            return Err(InvalidScope::new(
                scope,
                "it has a character outside RFC 6749's scope syntax (printable ASCII, no space, `\"` or `\\`)",
            ));
        }
        Ok(Self::from_checked(SmolStr::new(scope)))
    }

    fn from_checked(text: SmolStr) -> Self {
        let key = Key::of(text.as_bytes());
        Self { text, key }
    }

    /// `scope` made valid: cut to [`MAX_LEN`](Self::MAX_LEN) bytes, each character outside
    /// the syntax replaced by `?`, `?` if empty.
    pub(crate) fn lossy(scope: &str) -> Self {
        let mut text: String = scope
            .chars()
            .map(|c| match u8::try_from(c) {
                Ok(b) if is_scope_char(b) => c,
                _ => '?',
            })
            .take(Self::MAX_LEN)
            .collect();
        if text.is_empty() {
            text.push('?');
        }
        Self::from_checked(SmolStr::new(text))
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.text == other.text
    }
}

impl Eq for Scope {}

impl PartialOrd for Scope {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scope {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl std::hash::Hash for Scope {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// A scope's bytes as the scope check compares them: the length and, for 8 to 16 bytes, the
/// first and the last eight bytes as two words, which then spell the scope exactly. Most
/// scopes (`notes:read`, `repo:write`) have such a length: the check every request to a
/// scoped route makes is then three word comparisons per scope held, without reading the
/// text or calling `memcmp`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    len: usize,
    head: u64,
    tail: u64,
}

impl Key {
    #[inline]
    fn of(bytes: &[u8]) -> Self {
        let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(head), Some(tail)) if bytes.len() <= 16 => {
                (u64::from_ne_bytes(*head), u64::from_ne_bytes(*tail))
            }
            _ => (0, 0),
        };
        Self {
            len: bytes.len(),
            head,
            tail,
        }
    }

    /// Whether equal keys mean equal text.
    #[inline]
    fn is_exact(&self) -> bool {
        (8..=16).contains(&self.len)
    }
}

/// RFC 6749 §3.3: `NQCHAR = %x21 / %x23-5B / %x5D-7E`.
fn is_scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

impl FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, InvalidScope> {
        Self::new(s)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of [`Scope`]s, at most [`Scopes::MAX`], kept sorted and without repeats. Cloning is
/// one reference count.
///
/// Its text form ([`Display`](fmt::Display), [`FromStr`]) is RFC 6749's: the scopes separated
/// by single spaces (`notes:read notes:write`), which is also how stores keep it; in JSON it
/// is an array of strings.
///
/// ```
/// use keycard::api_tokens::Scopes;
/// let scopes = Scopes::new(["notes:write", "notes:read", "notes:read"])?;
/// assert_eq!(scopes.to_string(), "notes:read notes:write");
/// assert!(scopes.contains("notes:read"));
/// assert!(!scopes.contains("notes"));
/// assert_eq!(serde_json::to_string(&scopes).unwrap(), r#"["notes:read","notes:write"]"#);
/// # Ok::<(), keycard::api_tokens::InvalidScope>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Scopes(Arc<[Scope]>);

impl Scopes {
    /// The most scopes one set holds.
    pub const MAX: usize = 64;

    /// The scopes in `scopes`, checked, sorted, without repeats.
    ///
    /// # Errors
    /// [`InvalidScope`] for the first scope that is not valid, or when there are more than
    /// [`MAX`](Self::MAX) distinct scopes.
    pub fn new<I, S>(scopes: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut all = Vec::new();
        for scope in scopes {
            all.push(Scope::new(scope.as_ref())?);
            if all.len() > 4 * Self::MAX {
                break;
            }
        }
        all.sort();
        all.dedup();
        if all.len() > Self::MAX {
            return Err(InvalidScope::new(
                "",
                "there are more than 64 distinct scopes in the set",
            ));
        }
        Ok(Self(all.into()))
    }

    /// No scope at all.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Whether `scope` is in the set.
    #[inline]
    pub fn contains(&self, scope: &str) -> bool {
        // Sorted, but a set is usually a handful of short strings: a scan of their keys beats
        // a binary search of string comparisons there. Inlined, a scope the caller spells
        // as a literal has its key worked out by the compiler.
        let key = Key::of(scope.as_bytes());
        match key.is_exact() {
            true => self.0.iter().any(|s| s.key == key),
            false => self.contains_text(scope),
        }
    }

    /// [`contains`](Self::contains) for a scope shorter than 8 or longer than 16 bytes: its
    /// text is compared. Apart, so the usual case needs no registers saved.
    #[inline(never)]
    fn contains_text(&self, scope: &str) -> bool {
        if self.0.len() <= 8 {
            self.0
                .iter()
                .any(|s| s.key.len == scope.len() && s.as_str() == scope)
        } else {
            self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
        }
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s.as_str()))
    }

    /// The first scope of `self` that is not in `other`, if any.
    pub fn first_missing_from(&self, other: &Scopes) -> Option<&Scope> {
        self.0.iter().find(|s| !other.contains(s.as_str()))
    }

    /// The scopes, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    /// How many scopes the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl FromStr for Scopes {
    type Err = InvalidScope;

    /// The space-separated form (`"notes:read notes:write"`); the empty string is the empty
    /// set.
    fn from_str(s: &str) -> Result<Self, InvalidScope> {
        Self::new(s.split(' ').filter(|s| !s.is_empty()))
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let all = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::new(all).map_err(serde::de::Error::custom)
    }
}

/// A scope that is not valid: not in RFC 6749's syntax, too long, too many, or (from
/// [`Authenticator::create_api_token`](crate::Authenticator::create_api_token)) not one the
/// service declared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the scope {scope:?} is not valid: {reason}")]
pub struct InvalidScope {
    scope: String,
    reason: &'static str,
}

impl InvalidScope {
    pub(crate) fn new(scope: &str, reason: &'static str) -> Self {
        // Keep what is echoed short and printable: it may come from a client.
        let mut end = scope.len().min(Scope::MAX_LEN);
        while !scope.is_char_boundary(end) {
            end -= 1;
        }
        let shown: String = scope[..end]
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        Self {
            scope: shown,
            reason,
        }
    }

    /// The scope refused (cut to [`Scope::MAX_LEN`] bytes, control characters replaced).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Why it was refused.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_follows_rfc_6749() {
        for good in [
            "a",
            "notes:read",
            "repo/write",
            "x!#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~",
        ] {
            assert!(Scope::new(good).is_ok(), "{good}");
        }
        for bad in ["", " ", "a b", "a\"b", "a\\b", "é", "a\tb", "a\u{7f}"] {
            assert!(Scope::new(bad).is_err(), "{bad:?}");
        }
        assert!(Scope::new(&"a".repeat(64)).is_ok());
        assert!(Scope::new(&"a".repeat(65)).is_err());
    }

    #[test]
    fn sets_are_sorted_deduplicated_and_bounded() {
        let s: Scopes = "b a  b".parse().expect("valid");
        assert_eq!(s.to_string(), "a b");
        assert_eq!(s.len(), 2);
        assert!(Scopes::new((0..64).map(|i| format!("s{i}"))).is_ok());
        assert!(Scopes::new((0..65).map(|i| format!("s{i}"))).is_err());
        let round: Scopes = s.to_string().parse().expect("round trip");
        assert_eq!(round, s);
        assert_eq!("".parse::<Scopes>().expect("empty"), Scopes::empty());
    }

    #[test]
    fn contains_answers_as_text_equality() {
        // Every length around the two-word keys (8 to 16 bytes), with one byte changed at
        // every position, one byte more, and the same byte repeated one time more or less
        // (equal first and last words, another length).
        for len in 1..=24 {
            let a: String = (0..len).map(|i| char::from(b'a' + i as u8)).collect();
            let set = Scopes::new([a.as_str()]).expect("valid");
            assert!(set.contains(&a), "{len}");
            for at in 0..len {
                let mut b = a.clone().into_bytes();
                b[at] = b'#';
                let b = String::from_utf8(b).expect("ASCII");
                assert!(!set.contains(&b), "{len} {at}");
            }
            assert!(!set.contains(&format!("{a}z")), "{len}");
            let same = "a".repeat(len);
            let set = Scopes::new([same.as_str()]).expect("valid");
            assert!(set.contains(&same), "{len}");
            assert!(!set.contains(&"a".repeat(len + 1)), "{len}");
            assert!(!set.contains(&"a".repeat(len - 1)), "{len}");
        }
        // More than eight scopes, for every kind of key.
        let many = Scopes::new((0..20).map(|i| format!("{}{i}", "s".repeat(i)))).expect("valid");
        for i in 0..20 {
            let held = format!("{}{i}", "s".repeat(i));
            assert!(many.contains(&held), "{held}");
            assert!(!many.contains(&format!("{held}s")), "{held}");
            assert!(
                !many.contains(&held.replacen('s', "t", 1)) || i == 0,
                "{held}"
            );
        }
        let scopes = Scopes::new(["notes:read", "notes:write", "a", "x".repeat(40).as_str()])
            .expect("valid");
        for held in ["notes:read", "notes:write", "a", &"x".repeat(40)] {
            assert!(scopes.contains(held), "{held}");
        }
        for not in ["notes:reae", "notes:writ", "b", "", &"x".repeat(39)] {
            assert!(!scopes.contains(not), "{not}");
        }
    }

    #[test]
    fn any_spelling_parses_to_the_set_it_names() {
        for (text, set) in [
            ("notes:read notes:write", vec!["notes:read", "notes:write"]),
            ("notes:write notes:read", vec!["notes:read", "notes:write"]),
            ("b a b", vec!["a", "b"]),
            ("a  b", vec!["a", "b"]),
            (" a", vec!["a"]),
            ("a ", vec!["a"]),
            ("", vec![]),
            ("a", vec!["a"]),
        ] {
            let parsed: Scopes = text.parse().expect(text);
            assert_eq!(parsed, Scopes::new(&set).expect("valid"), "{text:?}");
            assert!(set.iter().all(|s| parsed.contains(s)), "{text:?}");
        }
        for bad in ["a \\", "a\tb", "a é", &"x".repeat(65)] {
            assert!(bad.parse::<Scopes>().is_err(), "{bad:?}");
        }
        let most: Vec<String> = (10..10 + Scopes::MAX).map(|i| format!("s{i}")).collect();
        assert_eq!(
            most.join(" ").parse::<Scopes>().expect("64").len(),
            Scopes::MAX
        );
        let more = format!("{} s{}", most.join(" "), 10 + Scopes::MAX);
        assert!(more.parse::<Scopes>().is_err(), "65 scopes");
    }

    #[test]
    fn subsets() {
        let known: Scopes = "a b c".parse().expect("valid");
        let asked: Scopes = "a c".parse().expect("valid");
        assert!(asked.is_subset_of(&known));
        let other: Scopes = "a d".parse().expect("valid");
        assert_eq!(
            other.first_missing_from(&known).map(Scope::as_str),
            Some("d")
        );
    }

    #[test]
    fn errors_echo_a_short_printable_scope() {
        let e = Scope::new(&format!("{}\n", "x".repeat(100))).expect_err("too long");
        assert_eq!(e.scope().len(), 64);
        let e = Scope::new("a\nb").expect_err("control");
        assert_eq!(e.scope(), "a?b");
    }
}
