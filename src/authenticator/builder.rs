//! [`AuthenticatorBuilder`]: every setting of an [`Authenticator`], with secure defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::second_factor::FactorsRuntime;
use super::{Authenticator, Inner, SessionCap};
use crate::api_tokens::ApiTokens;
use crate::clock::{Clock, SystemClock};
use crate::hashing::HashPool;
use crate::mfa::SecondFactors;
use crate::password::{Argon2Hasher, PasswordHasher};
use crate::password_policy::PasswordPolicy;
use crate::session::SessionPolicy;
use crate::store::TokenStore;
use crate::throttle::in_flight::InFlight;
use crate::throttle::{Limit, MemoryThrottle, Throttle, ThrottleOutage};
use crate::token::TokenFormat;
use crate::user::UserStore;

#[cfg(doc)]
use {super::LoginOptions, crate::error::Error};

impl<U: UserStore> Authenticator<U> {
    /// Starts building an authenticator over your user store and a token store.
    pub fn builder(users: U, tokens: impl TokenStore + 'static) -> AuthenticatorBuilder<U> {
        AuthenticatorBuilder {
            users,
            tokens: Arc::new(tokens),
            hasher: None,
            policy: SessionPolicy::default(),
            clock: Arc::new(SystemClock),
            throttle: Some(Arc::new(MemoryThrottle::default())),
            throttle_outage: ThrottleOutage::default(),
            reveal_unknown_email: false,
            password_policy: PasswordPolicy::default(),
            max_concurrent_hashes: None,
            max_queued_hashes: None,
            max_logins_in_flight_per_ip: AuthenticatorBuilder::<U>::DEFAULT_LOGINS_IN_FLIGHT_PER_IP,
            max_hash_wait: AuthenticatorBuilder::<U>::DEFAULT_MAX_HASH_WAIT,
            token_format: TokenFormat::plain(),
            session_cap: Some(SessionCap::DEFAULT),
            registration_limit: AuthenticatorBuilder::<U>::default_registration_limit(),
            require_verified_email: false,
            second_factors: None,
            api_tokens: None,
            #[cfg(feature = "passkeys")]
            passkeys: None,
        }
    }
}

/// Configures an [`Authenticator`]. Every setting has a secure default.
///
/// ```
/// use std::time::Duration;
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
/// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
///     .session_ttl(Duration::from_secs(8 * 3600))
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .max_concurrent_hashes(4)
///     .build();
/// assert_eq!(auth.policy().ttl(), Duration::from_secs(8 * 3600));
/// ```
#[must_use]
pub struct AuthenticatorBuilder<U> {
    users: U,
    tokens: Arc<dyn TokenStore>,
    hasher: Option<Arc<dyn PasswordHasher>>,
    policy: SessionPolicy,
    clock: Arc<dyn Clock>,
    throttle: Option<Arc<dyn Throttle>>,
    throttle_outage: ThrottleOutage,
    reveal_unknown_email: bool,
    password_policy: PasswordPolicy,
    max_concurrent_hashes: Option<usize>,
    second_factors: Option<SecondFactors>,
    api_tokens: Option<ApiTokens>,
    #[cfg(feature = "passkeys")]
    passkeys: Option<(crate::mfa::Passkeys, crate::mfa::SharedPasskeyStore)>,
    max_queued_hashes: Option<usize>,
    max_logins_in_flight_per_ip: usize,
    max_hash_wait: Duration,
    token_format: TokenFormat,
    session_cap: Option<SessionCap>,
    registration_limit: Limit,
    require_verified_email: bool,
}

impl<U: UserStore> AuthenticatorBuilder<U> {
    /// The default number of password checks and hashes (logins, registrations,
    /// re-verifications, password changes) one client address may have in flight at once.
    pub const DEFAULT_LOGINS_IN_FLIGHT_PER_IP: usize = 4;
    /// The default hard bound on the hashing queue, per concurrent hash: the memory bound on
    /// waiting callers. The queue is normally shorter: see
    /// [`max_hash_wait`](Self::max_hash_wait).
    pub const DEFAULT_QUEUED_HASHES_PER_PERMIT: usize = 256;
    /// The default longest wait for a hashing slot: 2 seconds.
    pub const DEFAULT_MAX_HASH_WAIT: Duration = Duration::from_secs(2);
    /// The default registration limit per client address (IPv6: per `/64`): 20 per hour.
    pub fn default_registration_limit() -> Limit {
        Limit::new(20, Duration::from_secs(3600))
    }

    /// Absolute session lifetime. Default: 24 hours.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.policy = self.policy.with_ttl(ttl);
        self
    }

    /// The longest session lifetime a login may ask for with
    /// [`LoginOptions::with_lifetime`] ("remember me"). Default: the session TTL (no login
    /// outlives it).
    pub fn max_session_ttl(mut self, max: Duration) -> Self {
        self.policy = self.policy.with_max_ttl(max);
        self
    }

    /// The per-user limit on live sessions and what a login over it does. Default:
    /// [`SessionCap::DEFAULT`] (100, the oldest evicted), so no account can fill the store
    /// with sessions.
    pub fn session_cap(mut self, cap: SessionCap) -> Self {
        self.session_cap = Some(cap);
        self
    }

    /// No limit on sessions per user. Only for stores you trust to hold whatever an account
    /// can create.
    pub fn without_session_cap(mut self) -> Self {
        self.session_cap = None;
        self
    }

    /// Ends sessions unused for `idle`. Default: no idle timeout.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.policy = self.policy.with_idle_timeout(Some(idle));
        self
    }

    /// How often at most `validate` writes `last_seen_at` per session. Default: 60 s (capped
    /// at a tenth of the idle timeout).
    pub fn touch_interval(mut self, every: Duration) -> Self {
        self.policy = self.policy.with_touch_interval(every);
        self
    }

    /// Replaces the whole session policy.
    pub fn policy(mut self, policy: SessionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The clock. Default: [`SystemClock`].
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The password hasher. Default: [`Argon2Hasher::default`] (argon2id, m = 19456 KiB,
    /// t = 2, p = 1).
    pub fn password_hasher(mut self, hasher: impl PasswordHasher) -> Self {
        self.hasher = Some(Arc::new(hasher));
        self
    }

    /// How many password hashes may run at once. Each holds the hasher's memory cost (19 MiB
    /// by default), so this bounds hashing memory. Default: the number of CPUs. At least 1.
    pub fn max_concurrent_hashes(mut self, n: usize) -> Self {
        self.max_concurrent_hashes = Some(n.max(1));
        self
    }

    /// The hard bound on callers waiting for a hashing slot (logins, registrations,
    /// re-verifications, password changes, [`hash_password`](Authenticator::hash_password)).
    /// Beyond it, they fail at once with [`Error::Overloaded`] (HTTP 503 with `Retry-After`)
    /// instead of queueing without bound. Default:
    /// [`DEFAULT_QUEUED_HASHES_PER_PERMIT`](Self::DEFAULT_QUEUED_HASHES_PER_PERMIT) ×
    /// [`max_concurrent_hashes`](Self::max_concurrent_hashes). Usually
    /// [`max_hash_wait`](Self::max_hash_wait) is the bound that applies first. `0` refuses any
    /// caller that finds every slot busy.
    pub fn max_queued_hashes(mut self, n: usize) -> Self {
        self.max_queued_hashes = Some(n);
        self
    }

    /// The longest a caller may expect to wait for a hashing slot. Admission is by expected
    /// wait, not by a fixed count: a caller that finds every slot busy joins the queue only if
    /// the queue ahead of it, times the time one hash takes (learned from the hashes run so
    /// far), divided by [`max_concurrent_hashes`](Self::max_concurrent_hashes), is within
    /// this; otherwise it gets [`Error::Overloaded`] at once, with the expected excess as
    /// `retry_after`. So a burst of ordinary size (40 logins at once on 2 cores) waits its
    /// turn, and a storm is refused fast. Hashing memory stays bounded by the concurrent
    /// hashes alone: waiting callers hold none. Default:
    /// [`DEFAULT_MAX_HASH_WAIT`](Self::DEFAULT_MAX_HASH_WAIT).
    pub fn max_hash_wait(mut self, wait: Duration) -> Self {
        self.max_hash_wait = wait;
        self
    }

    /// How many [registrations](Authenticator::register) one client address (IPv6: one
    /// `/64`) may make per window, counted by the [throttle](crate::throttle) (shared by every
    /// instance when the throttle is). Registration needs no password an attacker must
    /// guess, so without it one address could hash as fast as it can send. Default:
    /// [`default_registration_limit`](Self::default_registration_limit).
    pub fn registration_limit(mut self, limit: Limit) -> Self {
        self.registration_limit = limit;
        self
    }

    /// How many password checks and hashes (logins, registrations, re-verifications,
    /// password changes) one client address (IPv6: one `/64`) may have in flight at once in
    /// this process; more get [`Error::Throttled`] at once. Keeps one client from filling the
    /// hashing queue. Default:
    /// [`DEFAULT_LOGINS_IN_FLIGHT_PER_IP`](Self::DEFAULT_LOGINS_IN_FLIGHT_PER_IP). At least 1.
    pub fn max_logins_in_flight_per_ip(mut self, n: usize) -> Self {
        self.max_logins_in_flight_per_ip = n.max(1);
        self
    }

    /// The login throttle. Default with [`Authenticator::builder`]: [`MemoryThrottle::default`],
    /// with the limits of [`ThrottleLimits::default`](crate::throttle::ThrottleLimits::default),
    /// which counts in this process (right for in-memory or single-file set-ups). A builder
    /// from a backend handle's `authenticator()` (`keycard::postgres::Postgres`,
    /// `keycard::sqlite::Sqlite`, `keycard::redis::Redis`) starts with that backend's shared
    /// throttle instead, so every instance on the database counts attempts together. With
    /// several instances, give them one shared backend (see [`crate::throttle`]).
    pub fn throttle(mut self, throttle: impl Throttle + 'static) -> Self {
        self.throttle = Some(Arc::new(throttle));
        self
    }

    /// What login does when the throttle's backend fails. Default:
    /// [`ThrottleOutage::FailClosed`] (refuse with [`Error::ThrottleUnavailable`], HTTP 503).
    pub fn throttle_outage(mut self, policy: ThrottleOutage) -> Self {
        self.throttle_outage = policy;
        self
    }

    /// Turns login throttling off (for example when a gateway already limits attempts per
    /// account and per address). The hashing queue and the per-address in-flight bound stay.
    pub fn without_throttle(mut self) -> Self {
        self.throttle = None;
        self
    }

    /// Whether login reports an unknown email as [`Error::UnknownEmail`] instead of
    /// [`Error::InvalidCredentials`]. Default: `false`, because telling "no such user" apart
    /// from "wrong password" lets anyone test which emails have accounts. Turn it on only for
    /// protocols that require it (the sessions API answers "User not found").
    pub fn reveal_unknown_email(mut self, reveal: bool) -> Self {
        self.reveal_unknown_email = reveal;
        self
    }

    /// Whether login refuses users whose email address is not verified
    /// ([`User::email_verified`](crate::User::email_verified)) with [`Error::EmailNotVerified`]
    /// (after the password matched, so the answer tells nothing to someone without it).
    /// Default: `false`.
    ///
    /// Turn it on when users verify their address by the link
    /// [`Accounts::register`](crate::account::Accounts::register) mails them; a sign-in link
    /// and a password reset verify the address too, as following them proves the mailbox.
    /// Your user type must report the flag: [`UserRecord`](crate::UserRecord) does, and a user
    /// type that keeps the default `email_verified` (`false`) could never log in.
    pub fn require_verified_email(mut self, require: bool) -> Self {
        self.require_verified_email = require;
        self
    }

    /// The rules new passwords must meet in
    /// [`change_password`](Authenticator::change_password) and
    /// [`hash_password_with_policy`](Authenticator::hash_password_with_policy). Default:
    /// [`PasswordPolicy::default`] (8 characters, common passwords and the user's email
    /// refused).
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.password_policy = policy;
        self
    }

    /// How login spells new tokens. Default: [`TokenFormat::plain`] (`<id>.<secret>`).
    ///
    /// [`TokenFormat::prefixed`] issues `myapp_<id>.<secret>_<checksum>` tokens, which secret
    /// scanners find and which fail fast (before any store round trip) on a typo or a wrong prefix.
    /// Either way, tokens already issued stay valid: plain ones parse under every format, and
    /// the plain format parses prefixed ones; only a change from one prefix to another ends
    /// the sessions issued under the old prefix.
    ///
    /// ```
    /// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, TokenFormat, UserRecord};
    /// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
    ///     .token_format(TokenFormat::prefixed("myapp_").expect("a valid prefix"))
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn token_format(mut self, format: TokenFormat) -> Self {
        self.token_format = format;
        self
    }

    /// API tokens: named, scoped personal access tokens that signed-in users create for
    /// their scripts (see [`api_tokens`](crate::api_tokens)). Without this,
    /// [`create_api_token`](Authenticator::create_api_token) fails with
    /// [`Error::ApiTokensNotEnabled`] and no request carries a scope check but the one
    /// interactive sessions pass.
    ///
    /// ```
    /// use keycard::api_tokens::ApiTokens;
    /// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
    /// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
    ///     .api_tokens(ApiTokens::new(["notes:read", "notes:write"]).expect("valid scopes"))
    ///     .build();
    /// # let _ = auth;
    /// ```
    pub fn api_tokens(mut self, tokens: ApiTokens) -> Self {
        self.api_tokens = Some(tokens);
        self
    }

    /// Second factors: TOTP with recovery codes, enrolled by users, asked for at login.
    /// Without this, users have no second factor and logins are one step.
    ///
    /// With it, [`login`](Authenticator::login) of a user with an active authenticator app
    /// (and a sign-in link's login) starts no session: it fails with
    /// [`Error::SecondFactorRequired`], carrying a pending login that
    /// [`complete_login`](Authenticator::complete_login) exchanges with a code for a session.
    /// Wrong codes count on the [throttle](Self::throttle) (an in-memory one if the
    /// authenticator has none: codes are never unlimited).
    pub fn second_factors(mut self, factors: SecondFactors) -> Self {
        self.second_factors = Some(factors);
        self
    }

    /// Passkeys (feature `passkeys`): users register passkeys while logged in, then log in
    /// with one alone ([`begin_passkey_login`](Authenticator::begin_passkey_login)), or, with
    /// [`second_factors`](Self::second_factors) configured, answer a login's second step with
    /// one. Passkeys are kept in `store`; ceremonies under way in the one-time store the
    /// [`Passkeys`](crate::mfa::Passkeys) configuration was given.
    #[cfg(feature = "passkeys")]
    pub fn passkeys(
        mut self,
        passkeys: crate::mfa::Passkeys,
        store: impl crate::mfa::PasskeyStore + 'static,
    ) -> Self {
        self.passkeys = Some((passkeys, Arc::new(store)));
        self
    }

    /// Builds the authenticator.
    ///
    /// This computes the password hasher's [dummy hash](PasswordHasher::dummy_hash) now, once
    /// (one hash: about 20 ms with the default argon2id parameters in an optimised build), so
    /// the first login with an unknown email costs one verification like every later one,
    /// instead of also paying for the dummy hash and telling itself apart by its time.
    pub fn build(self) -> Authenticator<U> {
        let max = self.max_concurrent_hashes.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let queued = self
            .max_queued_hashes
            .unwrap_or(max * Self::DEFAULT_QUEUED_HASHES_PER_PERMIT);
        let hasher = self
            .hasher
            .unwrap_or_else(|| Arc::new(Argon2Hasher::default()));
        let _ = hasher.dummy_hash();
        let second_factors = self
            .second_factors
            .map(|config| FactorsRuntime::new(config, &self.clock, self.throttle.as_ref()));
        #[cfg(feature = "passkeys")]
        let passkeys = self.passkeys.map(|(config, store)| {
            super::passkey::PasskeysRuntime::new(config, store, &self.clock, self.throttle.as_ref())
        });
        Authenticator {
            inner: Arc::new(Inner {
                #[cfg(feature = "passkeys")]
                passkeys,
                users: self.users,
                tokens: self.tokens,
                hashing: HashPool::new(hasher, max, queued, self.max_hash_wait),
                policy: self.policy,
                clock: self.clock,
                throttle_outage: self.throttle_outage,
                in_flight: InFlight::new(self.max_logins_in_flight_per_ip),
                reveal_unknown_email: self.reveal_unknown_email,
                password_policy: self.password_policy,
                token_format: self.token_format,
                session_cap: self.session_cap,
                registration_limit: self.registration_limit,
                require_verified_email: self.require_verified_email,
                second_factors,
                api_format: self.api_tokens.as_ref().map_or_else(
                    crate::api_tokens::default_token_format,
                    ApiTokens::token_format,
                ),
                api_tokens: self.api_tokens,
                throttle: self.throttle,
            }),
        }
    }
}

impl<U: fmt::Debug> fmt::Debug for AuthenticatorBuilder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorBuilder")
            .field("users", &self.users)
            .field("tokens", &self.tokens)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, OnceLock};

    use crate::{
        Argon2Hasher, Authenticator, ClientInfo, Error, HashError, MemoryTokenStore,
        MemoryUserStore, PasswordHasher, UserRecord,
    };

    /// Counts how often its dummy hash is made, and hashes made in all.
    #[derive(Debug)]
    struct CountingDummy {
        inner: Argon2Hasher,
        dummy: OnceLock<String>,
        dummies_made: Arc<AtomicUsize>,
    }

    impl PasswordHasher for CountingDummy {
        fn hash(&self, password: &[u8]) -> Result<String, HashError> {
            self.inner.hash(password)
        }
        fn verify(&self, password: &[u8], phc: &str) -> Result<bool, HashError> {
            self.inner.verify(password, phc)
        }
        fn needs_rehash(&self, phc: &str) -> bool {
            self.inner.needs_rehash(phc)
        }
        fn dummy_hash(&self) -> &str {
            self.dummy.get_or_init(|| {
                self.dummies_made.fetch_add(1, Ordering::SeqCst);
                self.inner.hash(b"dummy").expect("hash")
            })
        }
    }

    #[tokio::test]
    async fn the_dummy_hash_is_made_at_build_not_by_the_first_unknown_email() {
        let dummies_made = Arc::new(AtomicUsize::new(0));
        let hasher = CountingDummy {
            inner: Argon2Hasher::insecure_for_tests(),
            dummy: OnceLock::new(),
            dummies_made: Arc::clone(&dummies_made),
        };
        let auth = Authenticator::builder(
            MemoryUserStore::<UserRecord>::new(),
            MemoryTokenStore::new(),
        )
        .password_hasher(hasher)
        .build();
        assert_eq!(dummies_made.load(Ordering::SeqCst), 1, "made by build()");
        let err = auth
            .login("nobody@example.com", "some password", ClientInfo::none())
            .await
            .expect_err("unknown email");
        assert!(matches!(err, Error::InvalidCredentials), "{err:?}");
        assert_eq!(dummies_made.load(Ordering::SeqCst), 1, "not again");
    }
}
