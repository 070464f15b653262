//! API tokens: named, scoped, revocable personal access tokens for scripts, CI jobs and
//! integrations, beside the sessions people get by logging in.
//!
//! An API token is a [`Session`] of kind [`SessionKind::ApiToken`]: it lives in the same
//! [`TokenStore`](crate::TokenStore), so the [validation cache](crate::store::cache), pushed
//! revocation and expiry cover it exactly as they cover sessions, and a validate costs the
//! same one lookup. What sets it apart:
//!
//! - **its own spelling**: `kcpat_<id>.<secret>_<checksum>` (the prefix is configurable), so
//!   a leaked token is recognisable by secret scanners and a mistyped one fails its checksum
//!   before any store round trip. Like a session's, only the secret's SHA-256 digest is stored;
//! - **a name and [`Scopes`]**: what it may do, checked by the library
//!   ([`Authenticator::require_scope`](crate::Authenticator::require_scope), the adapters'
//!   `RequireScope` extractors and the tower layer) and refused with 403 and
//!   `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750 §3.1);
//! - **a long lifetime and no idle timeout**: 90 days by default, up to a configurable
//!   maximum (a year by default), "never" only if the service allows it
//!   ([`ApiTokens::allow_never_expires`]). Its last use is written at most once a minute (and
//!   at the first use), never once per request;
//! - **no escalation**: an API token cannot create API tokens, change the password or the
//!   email, manage second factors or passkeys, or list or end sessions. Those operations take
//!   a [`Subject`](crate::Subject) and refuse an API token with
//!   [`Error::InteractiveSessionRequired`](crate::Error::InteractiveSessionRequired) (403);
//! - **its own life cycle**: logging a session out, "log out my other devices" and the
//!   [session cap](crate::SessionCap) leave API tokens alone; a **password reset** (account
//!   recovery: the account may have been taken over) revokes them all, as does
//!   [`Authenticator::logout_all`](crate::Authenticator::logout_all); a **password change**
//!   by the signed-in user keeps them, unless the service opts in with
//!   [`ApiTokens::revoke_on_password_change`]. At most [`ApiTokens::DEFAULT_MAX_PER_USER`]
//!   (50) per user by default.
//!
//! Interactive sessions (a login) have every declared scope, unless the service narrows them
//! with [`ApiTokens::interactive_scopes`].
//!
//! ```
//! # tokio_test_block_on(async {
//! use keycard::api_tokens::{ApiTokens, NewApiToken};
//! use keycard::{Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore, UserRecord};
//!
//! let auth = Authenticator::builder(MemoryUserStore::new(), MemoryTokenStore::new())
//!     .api_tokens(ApiTokens::new(["notes:read", "notes:write"])?)
//!     .build();
//! let hash = auth.hash_password("s3cret-passw0rd").await?;
//! auth.users().insert(UserRecord::new(1_i64, "ann@example.com", hash)).expect("new user");
//! let login = auth.login("ann@example.com", "s3cret-passw0rd", ClientInfo::none()).await?;
//!
//! // Ann, signed in, makes a read-only token for a script.
//! let created = auth
//!     .create_api_token(&login.session, NewApiToken::new("backup script", ["notes:read"]))
//!     .await?;
//! let pat = created.token.expose_secret();
//! assert!(pat.starts_with("kcpat_"));
//!
//! // The script uses it: reading is allowed, writing is not.
//! let session = auth.validate_session(pat).await?;
//! auth.require_scope(&session, "notes:read")?;
//! assert!(matches!(
//!     auth.require_scope(&session, "notes:write"),
//!     Err(Error::InsufficientScope { .. })
//! ));
//! // And it cannot make itself a new token.
//! let escalation = auth
//!     .create_api_token(&session, NewApiToken::new("more", ["notes:write"]))
//!     .await;
//! assert!(matches!(escalation, Err(Error::InteractiveSessionRequired)));
//!
//! // Ann lists her tokens (no secrets) and revokes it.
//! let tokens = auth.list_api_tokens(&login.session).await?;
//! assert_eq!(tokens[0].name, "backup script");
//! assert!(auth.revoke_api_token(&login.session, &tokens[0].id).await?);
//! assert!(auth.validate_session(pat).await.is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use smol_str::SmolStr;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::session::Session;
use crate::token::{InvalidTokenPrefix, SessionId, Token, TokenFormat};

mod required;
mod scope;

pub use required::RequiredScope;
pub use scope::{InvalidScope, Scope, Scopes};

#[cfg(doc)]
use crate::session::SessionKind;

/// How a service's API tokens behave: the scopes it knows, the token prefix, lifetimes, the
/// per-user cap. Give it to
/// [`AuthenticatorBuilder::api_tokens`](crate::AuthenticatorBuilder::api_tokens); without
/// it, creating API tokens fails with
/// [`Error::ApiTokensNotEnabled`](crate::Error::ApiTokensNotEnabled).
///
/// ```
/// use std::time::Duration;
/// use keycard::api_tokens::ApiTokens;
/// let tokens = ApiTokens::new(["notes:read", "notes:write"])?
///     .with_prefix("acme_pat_")?
///     .with_default_lifetime(Duration::from_secs(30 * 86_400))
///     .with_max_per_user(20);
/// assert!(tokens.known_scopes().contains("notes:read"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ApiTokens {
    pub(crate) known: Scopes,
    pub(crate) format: TokenFormat,
    pub(crate) default_lifetime: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) allow_never: bool,
    pub(crate) max_per_user: usize,
    pub(crate) interactive: Option<Scopes>,
    pub(crate) revoke_on_password_change: bool,
}

impl ApiTokens {
    /// The default prefix of API tokens: `kcpat_` ("keycard personal access token").
    pub const DEFAULT_PREFIX: &'static str = "kcpat_";
    /// The default lifetime of a new token: 90 days.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);
    /// The default longest lifetime a token may be given: 366 days.
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);
    /// The default cap of live API tokens per user: 50.
    pub const DEFAULT_MAX_PER_USER: usize = 50;
    /// The expiry a token that never expires is stored with: the last second of year 9999,
    /// which every backend keeps.
    pub const NEVER: OffsetDateTime = match OffsetDateTime::from_unix_timestamp(253_402_300_799) {
        Ok(never) => never,
        Err(_) => OffsetDateTime::UNIX_EPOCH,
    };
    /// How often a token's last use is written, at most: once a minute.
    pub const LAST_USED_PRECISION: Duration = Duration::from_secs(60);
    /// The longest token name, in bytes.
    pub const MAX_NAME_LEN: usize = 100;

    /// API tokens that may carry the scopes in `known_scopes` (creating a token with any
    /// other scope is refused), with the defaults: prefix `kcpat_`, 90 days, at most 366,
    /// never "never", at most 50 per user, interactive sessions hold every known scope,
    /// a password change keeps them.
    ///
    /// # Errors
    /// [`InvalidScope`] if a scope is not in RFC 6749's syntax.
    pub fn new<I, S>(known_scopes: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self {
            known: Scopes::new(known_scopes)?,
            format: default_format(),
            default_lifetime: Self::DEFAULT_LIFETIME,
            max_lifetime: Self::DEFAULT_MAX_LIFETIME,
            allow_never: false,
            max_per_user: Self::DEFAULT_MAX_PER_USER,
            interactive: None,
            revoke_on_password_change: false,
        })
    }

    /// Sets the token prefix (see [`TokenFormat::prefixed`]): pick one that names your
    /// service (`acme_pat_`) and register its pattern with your secret scanners. Keep it
    /// different from the session tokens' prefix, if they have one.
    ///
    /// # Errors
    /// [`InvalidTokenPrefix`] as [`TokenFormat::prefixed`].
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, InvalidTokenPrefix> {
        self.format = TokenFormat::prefixed(prefix)?;
        Ok(self)
    }

    /// Sets the lifetime of a token created without one (default 90 days; at least 1
    /// second).
    #[must_use]
    pub fn with_default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime.max(Duration::from_secs(1));
        self
    }

    /// Sets the longest lifetime a token may ask for (default 366 days).
    #[must_use]
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max.max(Duration::from_secs(1));
        self
    }

    /// Whether tokens may be created that never expire ([`NewApiToken::never_expires`]).
    /// Off by default: a forgotten token then dies on its own.
    #[must_use]
    pub fn allow_never_expires(mut self, allow: bool) -> Self {
        self.allow_never = allow;
        self
    }

    /// Sets the most live API tokens one user may hold (default 50, at least 1). Creating one
    /// more fails with [`Error::TooManyApiTokens`](crate::Error::TooManyApiTokens).
    #[must_use]
    pub fn with_max_per_user(mut self, max: usize) -> Self {
        self.max_per_user = max.max(1);
        self
    }

    /// Narrows the scopes interactive sessions (logins) hold to `scopes` (by default they
    /// hold every known scope). A scope outside it is then refused to a signed-in browser
    /// too, while a token holding it may use it.
    #[must_use]
    pub fn interactive_scopes(mut self, scopes: Scopes) -> Self {
        self.interactive = Some(scopes);
        self
    }

    /// Whether a password change by the signed-in user
    /// ([`Authenticator::change_password`](crate::Authenticator::change_password)) also
    /// revokes every API token of the user. Off by default: scripts keep working when a
    /// person rotates their password. A password *reset* always revokes them.
    #[must_use]
    pub fn revoke_on_password_change(mut self, revoke: bool) -> Self {
        self.revoke_on_password_change = revoke;
        self
    }

    /// The scopes tokens may carry.
    pub fn known_scopes(&self) -> &Scopes {
        &self.known
    }

    /// The format API tokens are spelled in.
    pub fn token_format(&self) -> TokenFormat {
        self.format
    }

    /// Whether an interactive session holds `scope`.
    pub(crate) fn interactive_has(&self, scope: &str) -> bool {
        match &self.interactive {
            Some(scopes) => scopes.contains(scope),
            None => self.known.contains(scope),
        }
    }
}

fn default_format() -> TokenFormat {
    TokenFormat::prefixed(ApiTokens::DEFAULT_PREFIX).unwrap_or_else(|_| TokenFormat::plain())
}

/// The format API tokens are recognised by when no [`ApiTokens`] is configured.
pub(crate) fn default_token_format() -> TokenFormat {
    default_format()
}

/// What an API token session carries beside a session's fields: its name and scopes. Kept by
/// every [`TokenStore`](crate::TokenStore) (as two text columns, or two hash fields: the
/// name and the scopes [space-separated](Scopes)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenGrant(Arc<Grant>);

/// Shared, so a [`Session`] grows by one pointer and a clone is one count. A name of up to
/// 23 bytes is kept inline: a grant read back from a server store then costs no allocation
/// for it.
#[derive(Debug, PartialEq, Eq)]
struct Grant {
    name: SmolStr,
    scopes: Scopes,
}

impl ApiTokenGrant {
    /// A grant named `name` holding `scopes`. The name is taken as given (stores read back
    /// what they were given);
    /// [`Authenticator::create_api_token`](crate::Authenticator::create_api_token) checks
    /// names from clients.
    pub fn new(name: &str, scopes: Scopes) -> Self {
        Self(Arc::new(Grant {
            name: SmolStr::new(name),
            scopes,
        }))
    }

    /// A grant read back from a store: the name and the space-separated scopes.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the scopes do not parse.
    pub fn from_stored(name: &str, scopes: &str) -> Result<Self, StoreError> {
        let scopes = scopes
            .parse::<Scopes>()
            .map_err(|e| StoreError::Corrupt(Box::new(e)))?;
        Ok(Self::new(name, scopes))
    }

    /// The token's name, as its owner gave it.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The token's scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.0.scopes
    }
}

/// A request for a new API token: a name, scopes and a lifetime. Checked by
/// [`Authenticator::create_api_token`](crate::Authenticator::create_api_token).
///
/// ```
/// use std::time::Duration;
/// use keycard::api_tokens::NewApiToken;
/// let monthly = NewApiToken::new("deploy bot", ["deploys:write"])
///     .expires_in(Duration::from_secs(30 * 86_400));
/// # let _ = monthly;
/// ```
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) lifetime: Lifetime,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Lifetime {
    Default,
    For(Duration),
    Never,
}

impl NewApiToken {
    /// A token named `name` with `scopes`, for the default lifetime.
    pub fn new<I, S>(name: impl Into<String>, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            scopes: scopes
                .into_iter()
                .take(4 * Scopes::MAX + 1)
                .map(Into::into)
                .collect(),
            lifetime: Lifetime::Default,
        }
    }

    /// Lives for `lifetime` (at most the configured maximum, at least 1 second).
    #[must_use]
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.lifetime = Lifetime::For(lifetime);
        self
    }

    /// Never expires: refused unless [`ApiTokens::allow_never_expires`] is set.
    #[must_use]
    pub fn never_expires(mut self) -> Self {
        self.lifetime = Lifetime::Never;
        self
    }
}

/// A token just created: its secret string (shown to its owner once: it cannot be read
/// again) and what the owner may see of it.
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedApiToken {
    /// The token. Send [`Token::expose_secret`] to its owner, once.
    pub token: Token,
    /// The token as listed.
    pub view: ApiTokenView,
    /// The stored record.
    pub session: Session,
}

/// What a user may see of one of their API tokens: never its secret (or its digest).
///
/// Serializes as
/// `{"id","name","scopes":[...],"created_at","last_used_at","expires_at"}`, times in RFC
/// 3339; `last_used_at` is `null` until the first use, `expires_at` `null` for a token that
/// never expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ApiTokenView {
    /// The token's public id: pass it to
    /// [`Authenticator::revoke_api_token`](crate::Authenticator::revoke_api_token).
    pub id: SessionId,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Scopes,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last used (to within a minute), if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When it expires; `None` if never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl ApiTokenView {
    /// The view of `session`, or `None` if it is not an API token.
    pub fn new(session: &Session) -> Option<Self> {
        let grant = session.kind.api_token()?;
        Some(Self {
            id: session.id,
            name: grant.name().to_owned(),
            scopes: grant.scopes().clone(),
            created_at: session.created_at,
            last_used_at: (session.last_seen_at > session.created_at)
                .then_some(session.last_seen_at),
            expires_at: (session.expires_at < ApiTokens::NEVER).then_some(session.expires_at),
        })
    }
}
