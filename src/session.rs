//! The session record stores keep, and the expiry policy the authenticator applies.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::amr::AuthMethods;
use crate::api_tokens::ApiTokenGrant;
use crate::token::{SecretHash, SessionId, Token};
use crate::user::UserId;

/// One login: what a [`TokenStore`](crate::TokenStore) keeps. Never holds the token's secret,
/// only its SHA-256 digest, so a copy of the store yields no usable token.
///
/// Not `Serialize`, on purpose: it holds the secret's digest and the user id, which a
/// response should not carry. Send a [`SessionView`] to clients instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id: the first half of the token; safe to log and display.
    pub id: SessionId,
    /// Whose session this is.
    pub user_id: UserId,
    /// SHA-256 of the token's secret.
    pub secret_hash: SecretHash,
    /// When the session was created (login time).
    pub created_at: OffsetDateTime,
    /// Absolute expiry: the session is dead from this instant on, whatever its activity.
    pub expires_at: OffsetDateTime,
    /// Last time the session was seen by `validate` (updated at most once per touch interval).
    pub last_seen_at: OffsetDateTime,
    /// Client metadata recorded at login.
    pub client: ClientInfo,
    /// How the user proved who they are for this session (password, a second factor, ...):
    /// its `amr` list. Empty for a session made by [`Session::new`] without
    /// [`with_amr`](Self::with_amr), or kept by a store before methods were recorded.
    pub amr: AuthMethods,
    /// What kind of credential this is: a login's session, or an
    /// [API token](crate::api_tokens) with its name and scopes.
    pub kind: SessionKind,
}

/// What kind of credential a [`Session`] is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionKind {
    /// A login by a person: a password, a sign-in link, a passkey... (the default).
    #[default]
    Interactive,
    /// An [API token](crate::api_tokens): named, scoped, no idle timeout, and unable to
    /// manage the account.
    ApiToken(ApiTokenGrant),
}

impl SessionKind {
    /// The API token's name and scopes, if this is one.
    pub fn api_token(&self) -> Option<&ApiTokenGrant> {
        match self {
            Self::ApiToken(grant) => Some(grant),
            Self::Interactive => None,
        }
    }

    /// Whether this is an API token.
    pub fn is_api_token(&self) -> bool {
        matches!(self, Self::ApiToken(_))
    }

    /// Whether this is a login's session.
    pub fn is_interactive(&self) -> bool {
        matches!(self, Self::Interactive)
    }

    /// Decodes the kind a store kept as an API token's name and space-separated scopes
    /// (columns, hash fields): neither is a login's session, both an API token; one without
    /// the other, or scopes that do not parse, is corrupt.
    #[cfg_attr(
        not(any(
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql",
            feature = "redis"
        )),
        allow(dead_code)
    )]
    pub(crate) fn from_stored(
        name: Option<&str>,
        scopes: Option<&str>,
    ) -> Result<Self, crate::StoreError> {
        match (name, scopes) {
            (None, None) => Ok(Self::Interactive),
            (Some(name), Some(scopes)) => {
                Ok(Self::ApiToken(ApiTokenGrant::from_stored(name, scopes)?))
            }
            (Some(_), None) => Err(crate::StoreError::corrupt(
                "an API token is stored with its name but no scopes",
            )),
            (None, Some(_)) => Err(crate::StoreError::corrupt(
                "an API token is stored with its scopes but no name",
            )),
        }
    }
}

impl Session {
    /// A new session for `token`, created at `now` and expiring after `ttl`.
    ///
    /// Times are truncated to whole microseconds, the precision SQL backends keep, so a
    /// session reads back from any store exactly as it was created.
    pub fn new(
        token: &Token,
        user_id: UserId,
        now: OffsetDateTime,
        ttl: Duration,
        client: ClientInfo,
    ) -> Self {
        let now = truncate_to_micros(now);
        Self {
            id: token.id(),
            user_id,
            secret_hash: token.secret_hash(),
            created_at: now,
            expires_at: now.saturating_add(ttl.try_into().unwrap_or(time::Duration::MAX)),
            last_seen_at: now,
            client,
            amr: AuthMethods::none(),
            kind: SessionKind::Interactive,
        }
    }

    /// The session with `kind` as its kind.
    #[must_use]
    pub fn with_kind(mut self, kind: SessionKind) -> Self {
        self.kind = kind;
        self
    }

    /// The session with `amr` as its authentication methods.
    #[must_use]
    pub fn with_amr(mut self, amr: AuthMethods) -> Self {
        self.amr = amr;
        self
    }

    /// Whether the absolute lifetime is over at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}

/// What a client may see of a session, for a "where you're logged in" page: its public id,
/// times, address and user agent, and whether it is the session making the request. Never
/// the secret's digest or the user id. Made by
/// [`Authenticator::list_sessions`](crate::Authenticator::list_sessions).
///
/// Serializes as JSON like
/// `{"id":"...","created_at":"2026-01-02T03:04:05Z","expires_at":"...","last_seen_at":"...","ip":"203.0.113.7","user_agent":"curl/8","current":true,"amr":["pwd","otp"]}`
/// (times in RFC 3339; `ip` and `user_agent` may be `null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionView {
    /// The public session id: pass it to
    /// [`Authenticator::revoke_session`](crate::Authenticator::revoke_session) to end this session.
    pub id: SessionId,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Absolute expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Last time the session was used (to within the touch interval).
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// The address the session logged in from, if known.
    pub ip: Option<IpAddr>,
    /// The user agent the session logged in with, if known.
    pub user_agent: Option<String>,
    /// Whether this is the session the listing was asked with.
    pub current: bool,
    /// How the session was authenticated, as `amr` values (`["pwd","otp"]`).
    pub amr: AuthMethods,
}

impl SessionView {
    /// The view of `session`; `current` marks the session making the request.
    pub fn new(session: &Session, current: bool) -> Self {
        Self {
            id: session.id,
            created_at: session.created_at,
            expires_at: session.expires_at,
            last_seen_at: session.last_seen_at,
            ip: session.client.ip,
            user_agent: session.client.user_agent.clone(),
            current,
            amr: session.amr,
        }
    }
}

/// `t` without its sub-microsecond part.
pub(crate) fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_microsecond(t.microsecond()).unwrap_or(t)
}

/// Optional metadata about the client that logged in, shown in session lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: Option<IpAddr>,
    /// The client's `User-Agent`, at most [`ClientInfo::MAX_USER_AGENT`] bytes.
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The longest user agent kept, in bytes; longer ones are cut at a character boundary.
    pub const MAX_USER_AGENT: usize = 512;

    /// No metadata.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets the IP address.
    #[must_use]
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the user agent, truncated to [`ClientInfo::MAX_USER_AGENT`] bytes.
    #[must_use]
    pub fn with_user_agent(mut self, ua: &str) -> Self {
        let mut end = ua.len().min(Self::MAX_USER_AGENT);
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        self.user_agent = Some(ua[..end].to_owned());
        self
    }
}

/// How long sessions live.
///
/// - `ttl`: absolute lifetime from login (default 24 hours);
/// - `max_ttl`: the longest lifetime one login may ask for ("remember me", see
///   [`LoginOptions`](crate::LoginOptions)); default: the `ttl`, so no login outlives it
///   unless you raise it;
/// - `idle_timeout`: optional; a session unused for this long dies early;
/// - `touch_interval`: `last_seen_at` is written at most this often per session (default
///   60 s, and never more than a tenth of the idle timeout), so a validate is one store read
///   and only occasionally a write. An idle timeout is therefore exact to within this
///   interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    ttl: Duration,
    max_ttl: Option<Duration>,
    idle_timeout: Option<Duration>,
    touch_interval: Duration,
}

impl SessionPolicy {
    /// The default absolute lifetime: 24 hours.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
    /// The default touch interval: 60 seconds.
    pub const DEFAULT_TOUCH_INTERVAL: Duration = Duration::from_secs(60);

    /// NIST SP 800-63B's AAL2 session bounds: a 24-hour absolute lifetime and a 1-hour idle
    /// timeout (section 7.2). The library default has no idle timeout, because keycard
    /// cannot know what assurance level your service needs and an idle timeout is a write
    /// every touch interval on every active session; services that handle personal or
    /// financial data should start from this preset.
    ///
    /// AAL2 also needs a second factor on every session: give the authenticator
    /// [`SecondFactors`](crate::mfa::SecondFactors) with
    /// [`required_for_every_session(true)`](crate::mfa::SecondFactors::required_for_every_session)
    /// and check [`Authenticator::require_second_factor`](crate::Authenticator::require_second_factor)
    /// on every route but the enrolment's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keycard::SessionPolicy;
    /// let aal2 = SessionPolicy::nist_aal2();
    /// assert_eq!(aal2.ttl(), Duration::from_secs(24 * 3600));
    /// assert_eq!(aal2.idle_timeout(), Some(Duration::from_secs(3600)));
    /// ```
    pub fn nist_aal2() -> Self {
        Self::default()
            .with_ttl(Duration::from_secs(24 * 60 * 60))
            .with_idle_timeout(Some(Duration::from_secs(60 * 60)))
    }

    /// Absolute lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The longest lifetime a login may ask for: the configured maximum, never below the
    /// `ttl`.
    pub fn max_ttl(&self) -> Duration {
        self.max_ttl.map_or(self.ttl, |max| max.max(self.ttl))
    }

    /// The lifetime of a session whose login asked for `requested`: the request within
    /// 1 second and [`max_ttl`](Self::max_ttl); the `ttl` when it asked for nothing.
    pub fn lifetime_for(&self, requested: Option<Duration>) -> Duration {
        requested.map_or(self.ttl, |asked| {
            asked.clamp(Duration::from_secs(1), self.max_ttl())
        })
    }

    /// Idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The effective touch interval: the configured one, capped at a tenth of the idle timeout.
    pub fn touch_interval(&self) -> Duration {
        match self.idle_timeout {
            Some(idle) => self.touch_interval.min(idle / 10),
            None => self.touch_interval,
        }
    }

    /// Sets the absolute lifetime.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the longest lifetime a login may ask for ("remember me").
    #[must_use]
    pub fn with_max_ttl(mut self, max: Duration) -> Self {
        self.max_ttl = Some(max);
        self
    }

    /// Sets (or clears) the idle timeout.
    #[must_use]
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Sets the touch interval.
    #[must_use]
    pub fn with_touch_interval(mut self, every: Duration) -> Self {
        self.touch_interval = every;
        self
    }

    /// Whether `session` is dead at `now` (past its absolute expiry or its idle timeout).
    /// API tokens have no idle timeout: only their absolute expiry ends them.
    pub(crate) fn is_dead(&self, session: &Session, now: OffsetDateTime) -> bool {
        session.is_expired(now)
            || (session.kind.is_interactive()
                && self
                    .idle_timeout
                    .is_some_and(|idle| now - session.last_seen_at >= idle))
    }

    /// Whether `validate` should write a new `last_seen_at`. An API token's is written at its
    /// first use, then at most once a minute
    /// ([`ApiTokens::LAST_USED_PRECISION`](crate::api_tokens::ApiTokens::LAST_USED_PRECISION)).
    #[inline]
    pub(crate) fn should_touch(&self, session: &Session, now: OffsetDateTime) -> bool {
        match session.kind {
            SessionKind::Interactive => now - session.last_seen_at >= self.touch_interval(),
            SessionKind::ApiToken(_) => {
                session.last_seen_at <= session.created_at
                    || now - session.last_seen_at
                        >= crate::api_tokens::ApiTokens::LAST_USED_PRECISION
            }
        }
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            ttl: Self::DEFAULT_TTL,
            max_ttl: None,
            idle_timeout: None,
            touch_interval: Self::DEFAULT_TOUCH_INTERVAL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: OffsetDateTime, ttl: Duration) -> Session {
        let t = Token::generate().expect("os rng");
        Session::new(&t, UserId::from(1_i64), now, ttl, ClientInfo::none())
    }

    #[test]
    fn absolute_expiry_is_inclusive_of_the_deadline() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let s = session(now, Duration::from_secs(10));
        assert!(!s.is_expired(now + Duration::from_secs(9)));
        assert!(s.is_expired(now + Duration::from_secs(10)));
    }

    #[test]
    fn idle_timeout_and_touch_interval() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let policy = SessionPolicy::default().with_idle_timeout(Some(Duration::from_secs(100)));
        assert_eq!(policy.touch_interval(), Duration::from_secs(10));
        let s = session(now, Duration::from_secs(1000));
        assert!(!policy.is_dead(&s, now + Duration::from_secs(99)));
        assert!(policy.is_dead(&s, now + Duration::from_secs(100)));
        assert!(!policy.should_touch(&s, now + Duration::from_secs(9)));
        assert!(policy.should_touch(&s, now + Duration::from_secs(10)));
    }

    #[test]
    fn times_are_kept_to_the_microsecond() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::from_nanos(1_234_567_891);
        let s = session(now, Duration::from_secs(1));
        assert_eq!(s.created_at.nanosecond(), 234_567_000);
        assert_eq!(s.last_seen_at, s.created_at);
        assert_eq!(s.expires_at.nanosecond(), 234_567_000);
    }

    #[test]
    fn huge_ttl_saturates_instead_of_panicking() {
        let s = session(OffsetDateTime::UNIX_EPOCH, Duration::MAX);
        assert!(!s.is_expired(OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1 << 34)));
    }

    #[test]
    fn user_agent_is_truncated_on_a_char_boundary() {
        let ua = "é".repeat(400);
        let c = ClientInfo::none().with_user_agent(&ua);
        let kept = c.user_agent.expect("set");
        assert!(kept.len() <= ClientInfo::MAX_USER_AGENT);
        assert!(kept.chars().all(|ch| ch == 'é'));
    }

    #[test]
    fn session_view_json_has_no_secret_digest_and_no_user_id() {
        let t = Token::generate().expect("os rng");
        let s = Session::new(
            &t,
            UserId::from("user-42"),
            OffsetDateTime::UNIX_EPOCH,
            Duration::from_secs(1),
            ClientInfo::none()
                .with_ip(IpAddr::from([203, 0, 113, 7]))
                .with_user_agent("curl/8"),
        )
        .with_amr(crate::AuthMethods::from(crate::AuthMethod::Password));
        let json = serde_json::to_value(SessionView::new(&s, true)).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "id": s.id.to_string(),
                "created_at": "1970-01-01T00:00:00Z",
                "expires_at": "1970-01-01T00:00:01Z",
                "last_seen_at": "1970-01-01T00:00:00Z",
                "ip": "203.0.113.7",
                "user_agent": "curl/8",
                "current": true,
                "amr": ["pwd"],
            })
        );
        let text = json.to_string();
        let secret = t.expose_secret().split_once('.').expect("dot").1;
        assert!(!text.contains(secret));
        assert!(!text.contains("user-42"));
        let digest: String = s
            .secret_hash
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!text.contains(&digest));
    }
}
