//! Where a request carries its session token: [`TokenSource`], and the token found there,
//! [`SessionToken`].

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;
use zeroize::Zeroizing;

use super::credentials::is_json;
use super::{Rejection, RequestHead};
use crate::error::Error;

/// Where requests carry their session token, looked for in this order: the query parameter,
/// the JSON body field (only where the body is read: logout), `Authorization: Bearer`, then
/// the cookie. An empty value counts as absent.
///
/// ```
/// use keycard::http::TokenSource;
/// // `Authorization: Bearer` only (the default, for new APIs)
/// let api = TokenSource::bearer();
/// // the sessions API: `?token=` on every request, or Bearer
/// let sessions = TokenSource::sessions_api();
/// // the login API: `?auth_token=`, `{"auth_token": ...}` in a JSON body, or Bearer
/// let login = TokenSource::login_api();
/// assert_eq!(login, TokenSource::query("auth_token").with_json_field("auth_token"));
/// // a browser app: a cookie, or Bearer for API clients
/// let browser = TokenSource::bearer().with_cookie("__Host-session");
/// # let _ = (api, sessions, browser);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSource {
    query: Option<Cow<'static, str>>,
    json_field: Option<Cow<'static, str>>,
    cookie: Option<Cow<'static, str>>,
}

/// Where a [`SessionToken`] was found. A token from a cookie is sent by the browser on its
/// own, so a cookie-authenticated unsafe request needs a cross-site request check; a token
/// the client placed itself (header, query, body) does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenOrigin {
    /// The query string.
    Query,
    /// A field of the JSON body.
    JsonBody,
    /// `Authorization: Bearer`.
    BearerHeader,
    /// A cookie.
    Cookie,
}

/// A session token as the client sent it, unchecked: what logout takes, and what the
/// validating extractors check. Zeroized on drop; `Debug` redacts it.
pub struct SessionToken {
    token: Zeroizing<String>,
    origin: TokenOrigin,
}

impl SessionToken {
    /// A token found at `origin`.
    pub fn new(token: impl Into<String>, origin: TokenOrigin) -> Self {
        Self {
            token: Zeroizing::new(token.into()),
            origin,
        }
    }

    /// The token as the client sent it.
    pub fn expose_secret(&self) -> &str {
        &self.token
    }

    /// Where it was found.
    pub fn origin(&self) -> TokenOrigin {
        self.origin
    }
}

/// A token as found in a request, borrowed from it where it can be (a header, a cookie, a
/// query parameter with nothing to decode), owned where it had to be decoded; an owned copy
/// is zeroized on drop.
pub(crate) struct FoundToken<'r> {
    text: Cow<'r, str>,
    pub(crate) origin: TokenOrigin,
}

impl<'r> FoundToken<'r> {
    fn new(text: Cow<'r, str>, origin: TokenOrigin) -> Self {
        Self { text, origin }
    }
}

impl std::ops::Deref for FoundToken<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

impl Drop for FoundToken<'_> {
    fn drop(&mut self) {
        if let Cow::Owned(text) = &mut self.text {
            zeroize::Zeroize::zeroize(text);
        }
    }
}

impl fmt::Debug for FoundToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FoundToken([redacted], {:?})", self.origin)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionToken([redacted], {:?})", self.origin)
    }
}

impl Default for TokenSource {
    /// [`TokenSource::bearer`].
    fn default() -> Self {
        Self::bearer()
    }
}

impl TokenSource {
    /// The token is only in `Authorization: Bearer` (RFC 6750).
    pub fn bearer() -> Self {
        Self {
            query: None,
            json_field: None,
            cookie: None,
        }
    }

    /// The token is in the query parameter `name`, or in `Authorization: Bearer`.
    pub fn query(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            query: Some(name.into()),
            ..Self::bearer()
        }
    }

    /// Logout also looks in the JSON body's field `name` (a string). Validation never reads
    /// the body.
    #[must_use]
    pub fn with_json_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.json_field = Some(name.into());
        self
    }

    /// Also looks in the cookie `name`.
    #[must_use]
    pub fn with_cookie(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.cookie = Some(name.into());
        self
    }

    /// The sessions API ([`SessionsApi`](super::SessionsApi)): `?token=`.
    pub fn sessions_api() -> Self {
        Self::query("token")
    }

    /// The login API ([`LoginApi`](super::LoginApi)): `?auth_token=`, or `auth_token` in a
    /// JSON body.
    pub fn login_api() -> Self {
        Self::query("auth_token").with_json_field("auth_token")
    }

    /// The JSON body field logout looks in, if any.
    pub fn json_field(&self) -> Option<&str> {
        self.json_field.as_deref()
    }

    /// The token in the request's query, `Authorization: Bearer` header or cookie, in that
    /// order; `None` if there is none. Never reads the body.
    pub fn find(&self, request: &(impl RequestHead + ?Sized)) -> Option<SessionToken> {
        self.find_borrowed(request)
            .map(|found| SessionToken::new(&*found, found.origin))
    }

    /// As [`find`](Self::find), borrowing the token from the request where it can: what the
    /// validating extractors use, so that a validate copies no token.
    pub(crate) fn find_borrowed<'r>(
        &self,
        request: &'r (impl RequestHead + ?Sized),
    ) -> Option<FoundToken<'r>> {
        self.query_token(request)
            .or_else(|| self.in_header_or_cookie(request))
    }

    /// Like [`find`](Self::find), but no token is [`Error::MissingToken`].
    ///
    /// # Errors
    /// [`Rejection::Auth`] with [`Error::MissingToken`] when the request carries no token.
    pub fn require(
        &self,
        request: &(impl RequestHead + ?Sized),
    ) -> Result<SessionToken, Rejection> {
        self.find(request)
            .ok_or(Rejection::Auth(Error::MissingToken))
    }

    /// The token for logout: the query, then the JSON body field (when this source names one
    /// and `body` is not empty), then `Authorization: Bearer`, then the cookie.
    ///
    /// # Errors
    /// [`Rejection::Auth`] with [`Error::MissingToken`] when there is no token;
    /// [`Rejection::BadRequest`] when a body is sent with a media type other than JSON (415),
    /// is not a JSON object (400 for bad syntax, 422 for another shape) or the field is not a
    /// string (422).
    pub fn require_with_body(
        &self,
        request: &(impl RequestHead + ?Sized),
        body: &[u8],
    ) -> Result<SessionToken, Rejection> {
        if let Some(token) = self.find_in_query(request) {
            return Ok(token);
        }
        if let (Some(field), false) = (&self.json_field, body.is_empty()) {
            if !request.media_type().is_some_and(|m| is_json(&m)) {
                return Err(Rejection::bad_request(
                    415,
                    "Expected request with `Content-Type: application/json`",
                ));
            }
            let object: serde_json::Map<String, Value> =
                serde_json::from_slice(body).map_err(Rejection::from_json)?;
            match object.get(field.as_ref()) {
                Some(Value::String(token)) if !token.is_empty() => {
                    return Ok(SessionToken::new(token.clone(), TokenOrigin::JsonBody))
                }
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(_) => {
                    return Err(Rejection::bad_request(
                        422,
                        format!("`{field}` must be a string"),
                    ))
                }
            }
        }
        self.in_header_or_cookie(request)
            .map(|found| SessionToken::new(&*found, found.origin))
            .ok_or(Rejection::Auth(Error::MissingToken))
    }

    /// The token in the query parameter this source names, if any (logout looks there
    /// before it reads the body).
    pub fn find_in_query(&self, request: &(impl RequestHead + ?Sized)) -> Option<SessionToken> {
        self.query_token(request)
            .map(|found| SessionToken::new(&*found, found.origin))
    }

    fn query_token<'r>(&self, request: &'r (impl RequestHead + ?Sized)) -> Option<FoundToken<'r>> {
        let name = self.query.as_deref()?;
        let query = request.query()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, value)| key == name && !value.is_empty())
            .map(|(_, value)| FoundToken::new(value, TokenOrigin::Query))
    }

    fn in_header_or_cookie<'r>(
        &self,
        request: &'r (impl RequestHead + ?Sized),
    ) -> Option<FoundToken<'r>> {
        if let Some(token) = request.header("authorization").and_then(bearer_token) {
            return Some(FoundToken::new(
                Cow::Borrowed(token),
                TokenOrigin::BearerHeader,
            ));
        }
        let name = self.cookie.as_deref()?;
        request
            .header_values("cookie")
            .flat_map(cookie::Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == name && !c.value().is_empty())
            .map(|c| {
                // Parsed from the header's text, so the value borrows it (no copy).
                let text = match c.value_raw() {
                    Some(raw) => Cow::Borrowed(raw),
                    None => Cow::Owned(c.value().to_owned()),
                };
                FoundToken::new(text, TokenOrigin::Cookie)
            })
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    // The spelling clients send, `Bearer <token>` with no space around the token, read
    // without scanning the token: on every request this was a few hundred instructions of
    // trimming and searching. Anything else takes the general path; both give the same answer.
    if let (Some(head), Some(token)) = (value.as_bytes().get(..7), value.get(7..)) {
        let spaced = |c: Option<char>| c.is_none_or(char::is_whitespace);
        if head[..6].eq_ignore_ascii_case(b"bearer")
            && head[6] == b' '
            && !spaced(token.chars().next())
            && !spaced(token.chars().next_back())
        {
            return Some(token);
        }
    }
    bearer_token_spaced(value)
}

/// [`bearer_token`] for any spacing: the value and the token trimmed, one space or more
/// after the scheme.
fn bearer_token_spaced(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    struct Req(Vec<(&'static str, &'static str)>, Option<&'static str>);

    impl RequestHead for Req {
        fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
            let name = name.to_owned();
            Box::new(
                self.0
                    .iter()
                    .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| *v),
            )
        }
        fn method(&self) -> &str {
            "GET"
        }
        fn query(&self) -> Option<&str> {
            self.1
        }
        fn peer_ip(&self) -> Option<IpAddr> {
            None
        }
    }

    proptest::proptest! {
        #[test]
        fn the_quick_bearer_read_agrees_with_the_general_one(
            value in "(([Bb][Ee][Aa][Rr][Ee][Rr])|Basic|Bearer\u{3000}|bear)[ \t\u{a0}]{0,2}[a-z. \u{3000}\t]{0,6}",
        ) {
            proptest::prop_assert_eq!(bearer_token(&value), bearer_token_spaced(&value));
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_ignored() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn sources_are_searched_in_order_and_empty_values_are_absent() {
        let source = TokenSource::query("t").with_cookie("sid");
        let found = |req: &Req| {
            source
                .find(req)
                .map(|t| (t.expose_secret().to_owned(), t.origin()))
        };
        let all = Req(
            vec![("authorization", "Bearer h"), ("cookie", "a=1; sid=c")],
            Some("x=1&t=q%2Bq"),
        );
        assert_eq!(found(&all), Some(("q+q".into(), TokenOrigin::Query)));
        let no_query = Req(all.0.clone(), Some("t="));
        assert_eq!(
            found(&no_query),
            Some(("h".into(), TokenOrigin::BearerHeader))
        );
        let cookie_only = Req(vec![("Cookie", "sid=c")], None);
        assert_eq!(found(&cookie_only), Some(("c".into(), TokenOrigin::Cookie)));
        assert_eq!(found(&Req(vec![("cookie", "sid=")], None)), None);
        // A source without a cookie name never reads cookies.
        assert!(TokenSource::bearer().find(&cookie_only).is_none());
        assert!(matches!(
            TokenSource::bearer().require(&cookie_only),
            Err(Rejection::Auth(Error::MissingToken))
        ));
    }

    #[test]
    fn logout_reads_the_json_field_after_the_query() {
        let source = TokenSource::login_api();
        let req = Req(
            vec![
                ("authorization", "Bearer h"),
                ("content-type", "application/json"),
            ],
            None,
        );
        let t = source
            .require_with_body(&req, br#"{"auth_token":"b"}"#)
            .expect("in body");
        assert_eq!(
            (t.expose_secret(), t.origin()),
            ("b", TokenOrigin::JsonBody)
        );
        let t = source.require_with_body(&req, b"").expect("bearer");
        assert_eq!(t.origin(), TokenOrigin::BearerHeader);
        for (body, status) in [
            (&b"{"[..], 400),
            (b"[1]", 422),
            (br#"{"auth_token":1}"#, 422),
        ] {
            match source.require_with_body(&req, body) {
                Err(Rejection::BadRequest { status: s, .. }) => assert_eq!(s, status),
                other => panic!("{other:?}"),
            }
        }
        assert!(format!("{t:?}").contains("redacted"));
        let plain = Req(vec![("content-type", "text/plain")], None);
        match source.require_with_body(&plain, b"token") {
            Err(Rejection::BadRequest { status: 415, .. }) => {}
            other => panic!("{other:?}"),
        }
    }
}
