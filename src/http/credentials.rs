//! Login bodies: [`Credentials`] and the field names they are read from, [`CredentialFields`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use super::Rejection;

/// A login body: the login name (an email) and the password. `Debug` redacts both (users
/// type passwords into the email field by mistake); the password is zeroized on drop.
///
/// It deserializes (with serde, from JSON or a form) from an object with string fields `email`
/// and `password`; other fields are ignored, and anything else, an array included, is an
/// error. For other field names, parse with [`CredentialFields`].
///
/// ```
/// use keycard::http::{CredentialFields, Credentials};
/// let c: Credentials = serde_json::from_str(r#"{"email":"a@b.c","password":"pw"}"#).unwrap();
/// assert_eq!(c.login, "a@b.c");
/// let fields = CredentialFields::new("username", "passphrase");
/// let c = fields.from_json(br#"{"username":"ann","passphrase":"pw"}"#).unwrap();
/// assert_eq!((c.login.as_str(), c.password.as_str()), ("ann", "pw"));
/// let shown = format!("{c:?}");
/// assert!(!shown.contains("pw") && !shown.contains("ann"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Credentials {
    /// The login name (the email), as sent.
    pub login: String,
    /// The password, as sent; zeroized on drop.
    pub password: Zeroizing<String>,
    /// Whether the client asked for a long session: the optional field `remember_me`, a
    /// boolean in JSON, `true`/`on`/`1` in a form (what an HTML checkbox sends).
    /// [`HttpAuth::login`](super::HttpAuth::login) then asks for the policy's
    /// [`max_ttl`](crate::SessionPolicy::max_ttl) and sets a persistent cookie.
    pub remember_me: bool,
}

/// The names of the login body's two fields. The default is `email` and `password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFields {
    login: Cow<'static, str>,
    password: Cow<'static, str>,
    forms: bool,
}

impl Default for CredentialFields {
    fn default() -> Self {
        Self::new("email", "password")
    }
}

impl CredentialFields {
    /// Credentials in fields `login` and `password`.
    pub fn new(
        login: impl Into<Cow<'static, str>>,
        password: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            login: login.into(),
            password: password.into(),
            forms: true,
        }
    }

    /// Accepts JSON bodies only: [`from_body`](Self::from_body) answers a form with 415.
    #[must_use]
    pub fn json_only(mut self) -> Self {
        self.forms = false;
        self
    }

    /// The login field's name.
    pub fn login(&self) -> &str {
        &self.login
    }

    /// Parses a JSON object.
    ///
    /// # Errors
    /// [`Rejection::BadRequest`]: 400 for bad JSON syntax or text that is not UTF-8, 422 for
    /// valid JSON of another shape (a missing, duplicate or non-string field, a non-object).
    pub fn from_json(&self, body: &[u8]) -> Result<Credentials, Rejection> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let credentials = self.deserialize(&mut de).map_err(Rejection::from_json)?;
        de.end().map_err(Rejection::from_json)?;
        Ok(credentials)
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    ///
    /// # Errors
    /// [`Rejection::BadRequest`] 422 for a missing or duplicate field.
    pub fn from_form(&self, body: &[u8]) -> Result<Credentials, Rejection> {
        self.deserialize(serde_urlencoded::Deserializer::new(form_urlencoded::parse(
            body,
        )))
        .map_err(|e| Rejection::bad_request(422, format!("Failed to deserialize form body: {e}")))
    }

    /// Parses a JSON or form body, chosen by its media type (see
    /// [`RequestHead::media_type`](super::RequestHead::media_type)), as Rails apps accept;
    /// JSON only after [`json_only`](Self::json_only).
    ///
    /// # Errors
    /// As [`from_json`](Self::from_json) and [`from_form`](Self::from_form); 415 for any
    /// other media type or none.
    pub fn from_body(
        &self,
        media_type: Option<&str>,
        body: &[u8],
    ) -> Result<Credentials, Rejection> {
        match media_type {
            Some("application/x-www-form-urlencoded") if self.forms => self.from_form(body),
            Some(json) if is_json(json) => self.from_json(body),
            _ if self.forms => Err(Rejection::bad_request(
                415,
                "Expected `Content-Type: application/json` or `application/x-www-form-urlencoded`",
            )),
            _ => Err(Rejection::bad_request(
                415,
                "Expected request with `Content-Type: application/json`",
            )),
        }
    }
}

/// Whether a media type (lowercase, without parameters) is JSON: `application/json` or any
/// `+json` type.
pub(crate) fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type.ends_with("+json")
}

impl<'de> Deserialize<'de> for Credentials {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CredentialFields::default().deserialize(deserializer)
    }
}

impl<'de> DeserializeSeed<'de> for &CredentialFields {
    type Value = Credentials;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Credentials, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &CredentialFields {
    type Value = Credentials;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an object with string fields `{}` and `{}`",
            self.login, self.password
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Credentials, A::Error> {
        let duplicate = |name: &str| de::Error::custom(format_args!("duplicate field `{name}`"));
        let missing = |name: &str| de::Error::custom(format_args!("missing field `{name}`"));
        let (mut login, mut password) = (None::<String>, None::<Zeroizing<String>>);
        let mut remember_me = None::<Flag>;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.login {
                if login.is_some() {
                    return Err(duplicate(&key));
                }
                login = Some(map.next_value()?);
            } else if key == self.password {
                if password.is_some() {
                    return Err(duplicate(&key));
                }
                password = Some(Zeroizing::new(map.next_value()?));
            } else if key == "remember_me" {
                if remember_me.is_some() {
                    return Err(duplicate(&key));
                }
                remember_me = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Credentials {
            login: login.ok_or_else(|| missing(&self.login))?,
            password: password.ok_or_else(|| missing(&self.password))?,
            remember_me: remember_me.is_some_and(|Flag(on)| on),
        })
    }
}

/// A checkbox-like flag: a JSON boolean, or `true`/`on`/`1` (`false`/`off`/`0`/empty) as text.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl Visitor<'_> for FlagVisitor {
            type Value = Flag;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean, or one of true, on, 1, false, off, 0")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<Flag, E> {
                Ok(Flag(on))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Flag, E> {
                match text {
                    "true" | "on" | "1" => Ok(Flag(true)),
                    "false" | "off" | "0" | "" => Ok(Flag(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
                }
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &"[redacted]")
            .field("password", &"[redacted]")
            .field("remember_me", &self.remember_me)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(r: Result<Credentials, Rejection>) -> u16 {
        match r {
            Err(Rejection::BadRequest { status, .. }) => status,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn credentials_are_an_object_with_two_strings() {
        let fields = CredentialFields::default();
        let ok = fields
            .from_json(br#"{"password":"p","email":"e","remember":true}"#)
            .expect("an object");
        assert_eq!((ok.login.as_str(), ok.password.as_str()), ("e", "p"));
        assert!(!ok.remember_me);
        let long = fields
            .from_json(br#"{"email":"e","password":"p","remember_me":true}"#)
            .expect("an object");
        assert!(long.remember_me);
        for (bad, code) in [
            (&br#"["e","p"]"#[..], 422),
            (br#"{"email":"e"}"#, 422),
            (br#"{"email":"e","password":1}"#, 422),
            (br#"{"email":"e","email":"f","password":"p"}"#, 422),
            (
                br#"{"email":"e","password":"p","remember_me":"maybe"}"#,
                422,
            ),
            (b"null", 422),
            (b"{", 400),
            (b"", 400),
            (br#"{"email":"e","password":"p"} x"#, 400),
            (b"{\"\xff\":1}", 400),
        ] {
            assert_eq!(status(fields.from_json(bad)), code, "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_neither_the_login_nor_the_password() {
        let c = CredentialFields::default()
            .from_json(br#"{"email":"typed-my-secret","password":"hunter2"}"#)
            .expect("an object");
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!shown.contains("typed-my-secret"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("[redacted]"), "{shown}");
        }
    }

    #[test]
    fn forms_and_media_types() {
        let fields = CredentialFields::new("user", "pass");
        let ok = fields.from_form(b"user=a%40b&pass=p+q").expect("a form");
        assert_eq!((ok.login.as_str(), ok.password.as_str()), ("a@b", "p q"));
        assert_eq!(status(fields.from_form(b"user=a")), 422);
        let checked = fields
            .from_form(b"user=a&pass=p&remember_me=on")
            .expect("a form");
        assert!(checked.remember_me);
        assert_eq!(status(fields.from_body(Some("text/plain"), b"")), 415);
        assert_eq!(status(fields.from_body(None, b"")), 415);
        assert!(fields
            .from_body(
                Some("application/vnd.api+json"),
                br#"{"user":"a","pass":"p"}"#
            )
            .is_ok());
        let json_only = fields.json_only();
        let form = json_only.from_body(Some("application/x-www-form-urlencoded"), b"user=a&pass=p");
        assert_eq!(status(form), 415);
        assert!(json_only
            .from_body(Some("application/json"), br#"{"user":"a","pass":"p"}"#)
            .is_ok());
    }
}
