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
/// `Origin` naming the request's own host); otherwise it is refused with
/// [`Rejection::CrossSite`](super::Rejection::CrossSite) (403), as OWASP's CSRF cheat sheet
/// recommends. Requests carrying their token in `Authorization: Bearer` need no such check:
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
/// without Fetch Metadata, its `Origin` names the request's own `Host`. No evidence at all is
/// a refusal.
pub(crate) fn same_origin_or_safe(request: &(impl RequestHead + ?Sized)) -> bool {
    if matches!(request.method(), "GET" | "HEAD" | "OPTIONS" | "TRACE") {
        return true;
    }
    if let Some(site) = request.header("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none");
    }
    origin_is_host(request).unwrap_or(false)
}

/// Whether a login request is not a cross-site one (login CSRF: a page on another site
/// logging the victim's browser into the attacker's account). Only an explicit cross-site
/// signal refuses it, so API clients without browser headers still log in.
pub(crate) fn not_cross_site(request: &(impl RequestHead + ?Sized)) -> bool {
    match request.header("sec-fetch-site") {
        Some(site) => {
            !site.eq_ignore_ascii_case("cross-site") && !site.eq_ignore_ascii_case("same-site")
        }
        None => origin_is_host(request).unwrap_or(true),
    }
}

/// Whether the `Origin` header names the request's own `Host`; `None` without both headers.
fn origin_is_host(request: &(impl RequestHead + ?Sized)) -> Option<bool> {
    let origin = request.header("origin")?;
    let host = request.header("host")?;
    Some(
        origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host)),
    )
}
