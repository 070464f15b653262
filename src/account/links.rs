//! The links keycard's mails carry: where each page lives, and the token in its fragment.

use std::fmt;

/// Which page a link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkKind {
    /// The page that verifies an address (it POSTs the token to the verify route).
    VerifyEmail,
    /// The page that sets a new password with a reset token.
    ResetPassword,
    /// The page that exchanges a sign-in token for a session.
    SignIn,
    /// The page that confirms an email change.
    ConfirmEmail,
    /// The login page (no token: the registration notice links to it).
    Login,
    /// The forgot-password page (no token: the registration notice links to it).
    ForgotPassword,
}

impl LinkKind {
    const ALL: [LinkKind; 6] = [
        LinkKind::VerifyEmail,
        LinkKind::ResetPassword,
        LinkKind::SignIn,
        LinkKind::ConfirmEmail,
        LinkKind::Login,
        LinkKind::ForgotPassword,
    ];

    /// The default path of the page: `/verify-email`, `/reset-password`, `/sign-in`,
    /// `/confirm-email`, `/login`, `/forgot-password`.
    pub fn default_path(self) -> &'static str {
        match self {
            LinkKind::VerifyEmail => "/verify-email",
            LinkKind::ResetPassword => "/reset-password",
            LinkKind::SignIn => "/sign-in",
            LinkKind::ConfirmEmail => "/confirm-email",
            LinkKind::Login => "/login",
            LinkKind::ForgotPassword => "/forgot-password",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Why [`Links::new`] or [`Links::with_path`] refused a URL or a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidLink {
    reason: &'static str,
}

/// Builds the links of keycard's mails from the application's public URL.
///
/// A link is `{public_url}{path}#token={token}`: the token travels in the URL **fragment**,
/// which browsers never send to a server, so it does not reach access logs, proxies, or the
/// `Referer` of requests the page makes. The page reads it from `location.hash` and POSTs it
/// to the matching route (`/password/reset`, `/email/verify`, ...). A query parameter
/// (`?token=`) would be logged by every server and proxy on the way and leak through
/// `Referer` to any third-party resource the page loads.
///
/// ```
/// use keycard::account::{LinkKind, Links};
/// let links = Links::new("https://app.example.com/").unwrap();
/// assert_eq!(
///     links.link(LinkKind::ResetPassword, "kcot_abc"),
///     "https://app.example.com/reset-password#token=kcot_abc"
/// );
/// let links = links.with_path(LinkKind::SignIn, "/auth/magic").unwrap();
/// assert_eq!(links.page(LinkKind::SignIn), "https://app.example.com/auth/magic");
/// assert!(Links::new("ftp://app.example.com").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Links {
    base: String,
    paths: [String; 6],
}

impl Links {
    /// Links under `public_url`: `http://` or `https://`, a host, no query or fragment (a
    /// trailing `/` is dropped).
    ///
    /// # Errors
    /// [`InvalidLink`] for another scheme, no host, a query, a fragment, whitespace or a
    /// control character.
    pub fn new(public_url: &str) -> Result<Self, InvalidLink> {
        let base = public_url.trim_end_matches('/');
        let rest = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .ok_or(InvalidLink {
                reason:
                    "the public URL must start with https:// (or http:// for local development)",
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(InvalidLink {
                reason: "the public URL has no host; give one such as https://app.example.com",
            });
        }
        check_text(base)?;
        Ok(Self {
            base: base.to_owned(),
            paths: LinkKind::ALL.map(|k| k.default_path().to_owned()),
        })
    }

    /// The page of `kind` lives at `path` (starting with `/`) under the public URL.
    ///
    /// # Errors
    /// [`InvalidLink`] when `path` does not start with `/`, or has a query, a fragment,
    /// whitespace or a control character.
    pub fn with_path(mut self, kind: LinkKind, path: &str) -> Result<Self, InvalidLink> {
        if !path.starts_with('/') {
            return Err(InvalidLink {
                reason: "a link path must start with /",
            });
        }
        check_text(path)?;
        self.paths[kind.index()] = path.to_owned();
        Ok(self)
    }

    /// The page of `kind`, without a token.
    pub fn page(&self, kind: LinkKind) -> String {
        format!("{}{}", self.base, self.paths[kind.index()])
    }

    /// The page of `kind` with `token` in the fragment.
    pub fn link(&self, kind: LinkKind, token: &str) -> String {
        format!("{}{}#token={token}", self.base, self.paths[kind.index()])
    }

    /// The public URL the links start with.
    pub fn base(&self) -> &str {
        &self.base
    }
}

fn check_text(text: &str) -> Result<(), InvalidLink> {
    if text.contains(['?', '#']) {
        return Err(InvalidLink {
            reason: "the public URL and link paths take no query or fragment: keycard adds #token=",
        });
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidLink {
            reason:
                "the public URL and link paths must not contain whitespace or control characters",
        });
    }
    Ok(())
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Links")
            .field("base", &self.base)
            .field("paths", &self.paths)
            .finish()
    }
}
