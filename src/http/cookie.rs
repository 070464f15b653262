//! The browser cookie transport: [`SessionCookie`], and the cross-site request check that
//! cookie-authenticated requests need.

use std::borrow::Cow;

use crate::session::Session;

use super::RequestHead;

/// The session cookie for browser apps: login sets it, logout clears it, and the token
/// sources read it (see [`HttpAuth::with_session_cookie`](super::HttpAuth::with_session_cookie)).
///
/// The default is `__Host-session=<token>; HttpOnly; Secure; SameSite=Lax; Path=/;
/// Max-Age=<the session's lifetime>`: the `__Host-` prefix makes browsers refuse the cookie
/// unless it is `Secure`, has `Path=/` and no `Domain`, so no other subdomain can plant or
/// read it; `HttpOnly` keeps it from scripts; `SameSite=Lax` keeps it off cross-site
/// subresource and `POST` requests.
///
/// A request authenticated by this cookie with an unsafe method (anything but `GET`, `HEAD`,
/// `OPTIONS`, `TRACE`) must also come from the same origin, as the browser reports it
/// (Fetch Metadata `Sec-Fetch-Site: same-origin`, or, from browsers that do not send it, an
/// `Origin`, or without one a `Referer`, of the request's own origin); otherwise it is refused
/// with [`Rejection::CrossSite`](super::Rejection::CrossSite) (403), as OWASP's CSRF cheat
/// sheet recommends, and an audit event `csrf.refused` is logged (see [`crate::audit`]).
///
/// The request's own origin is its `Host` header with the scheme `https` (`http` after
/// [`insecure_for_local_development`](Self::insecure_for_local_development)): a `Secure`
/// cookie only travels over HTTPS, so a browser that sent it was on an `https://` URL of that
/// host. Origins are compared by scheme, host (ASCII case-insensitive) and port, a default
/// port (443, 80) equal to its explicit form: `http://app.example` or
/// `https://app.example:8443` is not `https://app.example`. Put the public host in `Host`
/// (reverse proxies usually keep it) for the `Origin` check to pass. Requests carrying their token in `Authorization: Bearer` need no such check:
/// a browser never adds that header on its own.
///
/// ```
/// use keycard::http::SessionCookie;
/// let cookie = SessionCookie::default();
/// assert_eq!(cookie.name(), "__Host-session");
/// let set = cookie.set_cookie("abc", 3600);
/// assert_eq!(set, "__Host-session=abc; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=3600");
/// assert_eq!(cookie.clear_cookie(), "__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCookie {
    name: Cow<'static, str>,
    secure: bool,
    same_site: SameSite,
}

/// The cookie's `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent on top-level navigations from other sites, never on their subresources or
    /// `POST`s: the default, so a link to your app arrives logged in.
    Lax,
    /// Never sent on a request another site started.
    Strict,
}

impl Default for SessionCookie {
    fn default() -> Self {
        Self {
            name: Cow::Borrowed("__Host-session"),
            secure: true,
            same_site: SameSite::Lax,
        }
    }
}

impl SessionCookie {
    /// The default cookie under another name. Keep the `__Host-` prefix unless you have a
    /// reason not to.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Sets `SameSite`.
    #[must_use]
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Drops `Secure`, for plain-HTTP development on `localhost` only: browsers then also
    /// send the cookie over unencrypted connections, where anyone on the path can read it.
    /// A `__Host-` name loses its prefix (browsers refuse `__Host-` cookies without
    /// `Secure`). Logs a warning every time it is called.
    #[must_use]
    pub fn insecure_for_local_development(mut self) -> Self {
        tracing::warn!(
            cookie = %self.name,
            "keycard: the session cookie is not Secure; use this only for plain-HTTP local development"
        );
        if let Some(rest) = self.name.strip_prefix("__Host-") {
            self.name = Cow::Owned(rest.to_owned());
        }
        self.secure = false;
        self
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the cookie is `Secure` (the app is served over HTTPS).
    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }

    /// The `Set-Cookie` value that stores `token` for `max_age_secs` seconds.
    pub fn set_cookie(&self, token: &str, max_age_secs: i64) -> String {
        let same_site = match self.same_site {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
        };
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={token}; HttpOnly; SameSite={same_site}{secure}; Path=/; Max-Age={}",
            self.name,
            max_age_secs.max(0)
        )
    }

    /// The `Set-Cookie` value that deletes the cookie.
    pub fn clear_cookie(&self) -> String {
        self.set_cookie("", 0)
    }

    /// The `Set-Cookie` value for a new session: persistent until the session expires when
    /// the login asked to be remembered (`persistent` is that session), otherwise a browser
    /// session cookie (no `Max-Age`: gone when the browser closes; the session itself still
    /// ends at its expiry).
    pub(crate) fn for_session(&self, token: &str, persistent: Option<&Session>) -> String {
        match persistent {
            Some(session) => self.set_cookie(
                token,
                (session.expires_at - session.created_at).whole_seconds(),
            ),
            None => self.session_cookie(token),
        }
    }

    /// A `Set-Cookie` value without `Max-Age`.
    fn session_cookie(&self, token: &str) -> String {
        let full = self.set_cookie(token, 0);
        full.strip_suffix("; Max-Age=0").unwrap_or(&full).to_owned()
    }
}

/// Whether `request` may act with a cookie: a safe method, or the browser says it comes from
/// this origin (`Sec-Fetch-Site: same-origin` or `none`, a user-initiated navigation), or,
/// without Fetch Metadata, its `Origin` (or, without one, its `Referer`) is the request's own
/// origin (see [`own_origin_is`]). No evidence at all is a refusal.
pub(crate) fn same_origin_or_safe(request: &(impl RequestHead + ?Sized), secure: bool) -> bool {
    if matches!(request.method(), "GET" | "HEAD" | "OPTIONS" | "TRACE") {
        return true;
    }
    if let Some(site) = request.header("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none");
    }
    own_origin_is(request, secure).unwrap_or(false)
}

/// Whether a login request is not a cross-site one (login CSRF: a page on another site
/// logging the victim's browser into the attacker's account). Only an explicit cross-site
/// signal refuses it (Fetch Metadata, or an `Origin` or `Referer` naming another origin), so
/// API clients without browser headers still log in.
pub(crate) fn not_cross_site(request: &(impl RequestHead + ?Sized), secure: bool) -> bool {
    match request.header("sec-fetch-site") {
        Some(site) => {
            !site.eq_ignore_ascii_case("cross-site") && !site.eq_ignore_ascii_case("same-site")
        }
        None => own_origin_is(request, secure).unwrap_or(true),
    }
}

/// Whether the origin the browser reports (`Origin`, or the origin of `Referer` when there
/// is no `Origin`) is the request's own origin, compared by scheme, host (ASCII
/// case-insensitive) and port (a default port, 80 for `http` and 443 for `https`, equals its
/// explicit form); `None` without a `Host` or without either header.
///
/// The request's own origin is its `Host` header with the scheme `https`, or `http` when the
/// session cookie is not `Secure` (`secure` false, after
/// [`SessionCookie::insecure_for_local_development`]): a `Secure` cookie only travels over
/// HTTPS, so a browser sending it was talking to an `https://` URL of that host. An `Origin`
/// of `null`, or one that is not a plain `http`/`https` origin, is never this origin.
pub(crate) fn own_origin_is(request: &(impl RequestHead + ?Sized), secure: bool) -> Option<bool> {
    let reported = reported_origin(request)?;
    let host = request.header("host")?;
    let own_scheme = if secure { "https" } else { "http" };
    let Some(own) = split_host_port(host.trim()) else {
        return Some(false);
    };
    Some(reported.is_some_and(|origin| origin.is_same(own_scheme, own)))
}

/// The origin the browser reports: `Origin`, or the origin of `Referer` without one. `None`
/// without either header; `Some(None)` when it is present but not an `http(s)` origin
/// (`null`, another scheme, garbage).
fn reported_origin(request: &(impl RequestHead + ?Sized)) -> Option<Option<WebOrigin<'_>>> {
    let value = request
        .header("origin")
        .or_else(|| request.header("referer"))?;
    Some(WebOrigin::parse(value.trim()))
}

/// The scheme, host and port of an `http(s)` origin or URL, for comparison and logging. The
/// host holds only the characters of a DNS name or an IP literal, so it is safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WebOrigin<'a> {
    /// `http` or `https`, as sent (any case).
    pub(crate) scheme: &'a str,
    /// The host, as sent: a name, an IPv4 address, or a bracketed IPv6 address.
    pub(crate) host: &'a str,
    /// The explicit port, if any.
    pub(crate) port: Option<u16>,
}

impl<'a> WebOrigin<'a> {
    /// Parses an origin (`https://example.com:8443`) or the origin part of a URL (a
    /// `Referer`); `None` for `null`, a scheme other than `http`/`https`, user info, or a host
    /// with characters no host has.
    pub(crate) fn parse(value: &'a str) -> Option<Self> {
        let (scheme, rest) = value.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (host, port) = split_host_port(&rest[..end])?;
        Some(Self { scheme, host, port })
    }

    /// The port, or the scheme's default.
    fn effective_port(&self, scheme: &str) -> u16 {
        self.port.unwrap_or(default_port(scheme))
    }

    /// Whether this is the origin `scheme://host[:port]` (`own` is the `Host` header split).
    fn is_same(&self, scheme: &str, own: (&str, Option<u16>)) -> bool {
        let (host, port) = own;
        self.scheme.eq_ignore_ascii_case(scheme)
            && self.host.eq_ignore_ascii_case(host)
            && self.effective_port(self.scheme) == port.unwrap_or(default_port(scheme))
    }
}

/// `scheme://host[:port]`, as sent.
impl std::fmt::Display for WebOrigin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// 443 for `https`, 80 otherwise (only `http` reaches here).
fn default_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    }
}

/// Splits `host[:port]` (a `Host` header or a URL's authority): the host and the explicit
/// port (an empty port is the default one). `None` for user info, an unbracketed IPv6
/// address, a bad port or a host with characters no host has.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (host, rest) = authority.split_at(close + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    let bracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|inner| {
            !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'))
        });
    if host.is_empty() || !(bracketed || host.chars().all(valid)) {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits.parse().ok()?),
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    /// A request with a method and some headers.
    struct Req(&'static str, Vec<(&'static str, &'static str)>);

    impl RequestHead for Req {
        fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
            let name = name.to_owned();
            Box::new(
                self.1
                    .iter()
                    .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
                    .map(|(_, v)| *v),
            )
        }
        fn method(&self) -> &str {
            self.0
        }
        fn query(&self) -> Option<&str> {
            None
        }
        fn peer_ip(&self) -> Option<IpAddr> {
            None
        }
    }

    fn post(host: &'static str, origin: &'static str) -> Req {
        Req("POST", vec![("host", host), ("origin", origin)])
    }

    #[test]
    fn same_origin_passes() {
        assert!(same_origin_or_safe(
            &post("app.example", "https://app.example"),
            true
        ));
        assert!(same_origin_or_safe(
            &post("App.Example:8443", "https://app.example:8443"),
            true
        ));
        assert!(same_origin_or_safe(
            &post("[::1]:3000", "https://[::1]:3000"),
            true
        ));
        assert!(same_origin_or_safe(
            &post("localhost:3000", "http://localhost:3000"),
            false
        ));
        assert!(not_cross_site(
            &post("app.example", "https://app.example"),
            true
        ));
    }

    #[test]
    fn another_scheme_is_refused() {
        assert!(!same_origin_or_safe(
            &post("app.example", "http://app.example"),
            true
        ));
        assert!(!same_origin_or_safe(
            &post("app.example:443", "http://app.example:443"),
            true
        ));
        assert!(!same_origin_or_safe(
            &post("localhost", "https://localhost"),
            false
        ));
        assert!(!not_cross_site(
            &post("app.example", "http://app.example"),
            true
        ));
        assert!(!same_origin_or_safe(
            &post("app.example", "ftp://app.example"),
            true
        ));
    }

    #[test]
    fn another_port_is_refused() {
        assert!(!same_origin_or_safe(
            &post("app.example", "https://app.example:8443"),
            true
        ));
        assert!(!same_origin_or_safe(
            &post("app.example:8443", "https://app.example"),
            true
        ));
        assert!(!same_origin_or_safe(
            &post("app.example:8443", "https://app.example:9443"),
            true
        ));
        assert!(!not_cross_site(
            &post("app.example:8443", "https://app.example:9443"),
            true
        ));
    }

    #[test]
    fn another_host_is_refused() {
        for origin in [
            "https://evil.example",
            "https://app.example.evil.example",
            "https://evil.example/app.example",
            "https://app.example@evil.example",
            "https://app.exampl",
            "null",
            "",
        ] {
            let req = Req("POST", vec![("host", "app.example"), ("origin", origin)]);
            assert!(!same_origin_or_safe(&req, true), "{origin}");
            assert!(!not_cross_site(&req, true), "{origin}");
        }
    }

    #[test]
    fn default_ports_equal_explicit_ones() {
        assert!(same_origin_or_safe(
            &post("app.example", "https://app.example:443"),
            true
        ));
        assert!(same_origin_or_safe(
            &post("app.example:443", "https://app.example"),
            true
        ));
        assert!(same_origin_or_safe(
            &post("app.example:", "https://app.example"),
            true
        ));
        assert!(same_origin_or_safe(
            &post("app.example", "http://app.example:80"),
            false
        ));
        assert!(same_origin_or_safe(
            &post("app.example:80", "http://app.example"),
            false
        ));
        assert!(!same_origin_or_safe(
            &post("app.example:80", "https://app.example"),
            true
        ));
    }

    #[test]
    fn referer_stands_in_for_a_missing_origin() {
        let from = |referer: &'static str| {
            Req("POST", vec![("host", "app.example"), ("referer", referer)])
        };
        assert!(same_origin_or_safe(
            &from("https://app.example/page?q=1"),
            true
        ));
        assert!(same_origin_or_safe(
            &from("https://app.example:443#top"),
            true
        ));
        assert!(!same_origin_or_safe(&from("http://app.example/page"), true));
        assert!(!same_origin_or_safe(
            &from("https://evil.example/app.example"),
            true
        ));
        assert!(!not_cross_site(&from("https://evil.example/"), true));
        // `Origin` wins over `Referer`.
        let both = Req(
            "POST",
            vec![
                ("host", "app.example"),
                ("origin", "https://evil.example"),
                ("referer", "https://app.example/"),
            ],
        );
        assert!(!same_origin_or_safe(&both, true));
    }

    #[test]
    fn without_evidence_only_logins_pass() {
        let bare = Req("POST", vec![("host", "app.example")]);
        assert!(!same_origin_or_safe(&bare, true));
        assert!(not_cross_site(&bare, true));
        let no_host = Req("POST", vec![("origin", "https://app.example")]);
        assert!(!same_origin_or_safe(&no_host, true));
        assert!(same_origin_or_safe(&Req("GET", vec![]), true));
    }

    #[test]
    fn fetch_metadata_comes_first() {
        let req = Req(
            "POST",
            vec![
                ("host", "app.example"),
                ("origin", "http://app.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        );
        assert!(same_origin_or_safe(&req, true));
        let cross = Req("POST", vec![("sec-fetch-site", "cross-site")]);
        assert!(!same_origin_or_safe(&cross, true));
        assert!(!not_cross_site(&cross, true));
    }

    #[test]
    fn origins_parse_to_loggable_parts() {
        assert_eq!(
            WebOrigin::parse("HTTPS://App.example:8443/x"),
            Some(WebOrigin {
                scheme: "HTTPS",
                host: "App.example",
                port: Some(8443)
            })
        );
        for bad in [
            "null",
            "https://",
            "https://a b",
            "https://a\nb",
            "https://a:99999",
            "https://a:x",
            "https://::1",
            "https://[]",
            "javascript://x",
        ] {
            assert_eq!(WebOrigin::parse(bad), None, "{bad}");
        }
    }
}
