//! Second factors on the authenticator: the pending login a first factor yields for a user
//! with one, its completion with a code, enrolment, disabling, recovery codes and step-up.

use std::sync::Arc;
use std::time::Duration;

use super::{Authenticator, Login, Subject};
use crate::amr::{AuthMethod, AuthMethods};
use crate::audit;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::mfa::{
    PendingLogin, RecoveryCode, RecoveryCodes, SealError, SecondFactorMethod, SecondFactorProof,
    SecondFactorStatus, SecondFactors, TotpEnrollment, TotpRecord, TotpSecret, TotpVerdict,
};
use crate::one_time::{Binding, OneTimeError, OneTimePurpose, OneTimeToken, OneTimeTokens};
use crate::session::{ClientInfo, Session};
use crate::throttle::{Admission, Limit, MemoryThrottle, RateKey, Throttle};
use crate::user::{User, UserId, UserStore};
use crate::LoginOptions;

/// The throttle bucket of wrong codes per account.
const ACCOUNT_BUCKET: &str = "second-factor";
/// The throttle bucket of codes per pending login.
const PENDING_BUCKET: &str = "second-factor-login";

/// The most pending logins one user may have; a new one beyond retires the oldest. Each is
/// a right password (or sign-in link), so this bounds storage, not guessing (which the code
/// limits bound).
const MAX_PENDING_PER_USER: u32 = 50;

/// [`SecondFactors`] as the authenticator runs them: the pending-login tokens on its clock,
/// and the throttle that counts codes.
#[derive(Debug)]
pub(crate) struct FactorsRuntime {
    config: SecondFactors,
    pending: OneTimeTokens,
    throttle: Arc<dyn Throttle>,
}

impl FactorsRuntime {
    pub(crate) fn new(
        config: SecondFactors,
        clock: &Arc<dyn Clock>,
        throttle: Option<&Arc<dyn Throttle>>,
    ) -> Self {
        let pending = OneTimeTokens::from_arc(config.pending.clone())
            .with_clock(clock.clone())
            .with_lifetime(OneTimePurpose::SecondFactorLogin, config.pending_lifetime)
            .with_max_outstanding(MAX_PENDING_PER_USER);
        let throttle = throttle.cloned().unwrap_or_else(|| {
            let memory: Arc<dyn Throttle> = Arc::new(MemoryThrottle::default());
            memory
        });
        Self {
            config,
            pending,
            throttle,
        }
    }
}

/// What a pending login remembers of its first step: the asked-for lifetime and the method.
fn encode_payload(options: &LoginOptions, method: AuthMethod) -> String {
    let lifetime = options
        .lifetime
        .map_or_else(|| "-".to_owned(), |d| d.as_secs().to_string());
    format!("{lifetime}:{}", AuthMethods::from(method).bits())
}

fn decode_payload(payload: Option<&str>) -> (Option<Duration>, AuthMethods) {
    let (lifetime, bits) = payload
        .and_then(|p| p.split_once(':'))
        .unwrap_or(("-", "1"));
    (
        lifetime.parse().ok().map(Duration::from_secs),
        AuthMethods::from_bits(bits.parse().unwrap_or(1)),
    )
}

/// Whether `user` has a confirmed authenticator app.
async fn totp_active(factors: &FactorsRuntime, user: &UserId) -> Result<bool> {
    Ok(factors
        .config
        .store
        .totp(user)
        .await?
        .is_some_and(|t| t.is_confirmed()))
}

fn pending_error(error: OneTimeError) -> Error {
    match error {
        OneTimeError::Invalid | OneTimeError::Stale => Error::InvalidPendingLogin,
        other => other.into(),
    }
}

fn sealing(error: SealError) -> Error {
    match error {
        SealError::Randomness(e) => Error::Randomness(e),
        other => Error::SecretBox(other),
    }
}

impl<U: UserStore> Authenticator<U> {
    fn factors(&self) -> Result<&FactorsRuntime> {
        self.inner
            .second_factors
            .as_ref()
            .ok_or(Error::SecondFactorConfig(
                "the authenticator was built without AuthenticatorBuilder::second_factors",
            ))
    }

    /// The pending login for `user`, whose first factor was right, if they have an active
    /// second factor; `None` if the session can start now.
    pub(super) async fn pending_login(
        &self,
        user: &U::User,
        client: &ClientInfo,
        options: &LoginOptions,
        method: AuthMethod,
    ) -> Result<Option<PendingLogin>> {
        let Some(factors) = &self.inner.second_factors else {
            return Ok(None);
        };
        let id = user.id();
        let methods = self.second_factor_methods(factors, &id).await?;
        if methods.is_empty() {
            return Ok(None);
        }
        let purpose = OneTimePurpose::SecondFactorLogin;
        let issued = factors
            .pending
            .issue(
                &id,
                &purpose,
                Binding::for_user(&purpose, user),
                Some(&encode_payload(options, method)),
            )
            .await?;
        audit::second_factor_required(&id, client.ip);
        Ok(Some(PendingLogin {
            token: issued.token,
            expires_at: issued.expires_at,
            methods,
        }))
    }

    /// The second step of a login: exchanges the pending login's token (from
    /// [`Error::SecondFactorRequired`]) and a code for a session.
    ///
    /// The code is counted before it is checked, on the authenticator's throttle: at most
    /// 10 wrong codes per account per 15 minutes across every pending login, address and
    /// instance (then [`Error::Throttled`]), and at most 5 codes per pending login (the next
    /// attempt ends it: [`Error::InvalidPendingLogin`]). A TOTP code is accepted once (its
    /// time step is recorded atomically in the store, so a replay fails on every instance);
    /// a recovery code is spent. The session's [`amr`](Session::amr) records both steps
    /// (`pwd` and `otp`, for instance). The pending login is single use and bound to the
    /// user's email and password hash: a password change ends it.
    ///
    /// ```
    /// # use keycard::{Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore, UserRecord, AuthMethod};
    /// # use keycard::mfa::{KeyId, MemorySecondFactorStore, SecondFactors, SecondFactorProof, SecretBox, SecretKey};
    /// # use keycard::one_time::MemoryOneTimeStore;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let factors = SecondFactors::new(
    ///     MemorySecondFactorStore::new(),
    ///     MemoryOneTimeStore::new(),
    ///     SecretBox::new(KeyId::new(1), SecretKey::generate()?),
    /// );
    /// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new())
    ///     .second_factors(factors)
    ///     .build();
    /// # let hash = auth.hash_password("correct horse").await?;
    /// # auth.users().insert(UserRecord::new(1_i64, "ann@example.com", hash)).unwrap();
    /// let login = auth.login("ann@example.com", "correct horse", ClientInfo::none()).await?;
    /// // Ann enrols an authenticator app and confirms it with a code.
    /// let enrolment = auth.begin_totp(&login.session).await?;
    /// let code = auth.current_totp_code(&enrolment)?;
    /// let recovery_codes = auth.confirm_totp(&login.session, &code, &ClientInfo::none()).await?;
    /// assert_eq!(recovery_codes.codes().len(), 10);
    ///
    /// // From now on her password alone starts no session.
    /// let pending = match auth.login("ann@example.com", "correct horse", ClientInfo::none()).await {
    ///     Err(Error::SecondFactorRequired(pending)) => pending,
    ///     other => panic!("expected a second step, got {other:?}"),
    /// };
    /// let code = recovery_codes.codes()[0].to_string();
    /// let login = auth
    ///     .complete_login(pending.token.expose_secret(), SecondFactorProof::RecoveryCode(&code), ClientInfo::none())
    ///     .await?;
    /// assert!(login.session.amr.contains(AuthMethod::RecoveryCode));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// - [`Error::InvalidPendingLogin`] for an unknown, expired, used or ended pending login
    ///   (or one whose user changed password or was deleted meanwhile): log in again;
    /// - [`Error::InvalidCode`] for a wrong, replayed or malformed code;
    ///   [`Error::PasskeyRejected`] for a passkey's answer that does not check out, and
    ///   [`Error::InvalidCeremony`] for an unknown, used or expired passkey ceremony (both
    ///   counted like wrong codes);
    /// - [`Error::Throttled`] when the account's wrong codes reached the limit;
    /// - [`Error::ThrottleUnavailable`], [`Error::Store`] if a backend fails;
    ///   [`Error::SecretBox`] if the stored secret does not open with the configured keys;
    ///   [`Error::SecondFactorConfig`] without [`second_factors`](crate::AuthenticatorBuilder::second_factors).
    pub async fn complete_login(
        &self,
        pending_token: &str,
        proof: SecondFactorProof<'_>,
        client: ClientInfo,
    ) -> Result<Login<U::User>> {
        let factors = self.factors()?;
        let purpose = OneTimePurpose::SecondFactorLogin;
        let pending = self.inspect_pending_login(pending_token).await?;
        let token_id = OneTimeToken::parse(pending_token)
            .map_err(|_| Error::InvalidPendingLogin)?
            .id();
        let attempts = RateKey::new(PENDING_BUCKET, &token_id.to_string());
        let limit = Limit::new(
            factors.config.pending_attempts,
            factors.config.pending_lifetime,
        );
        match factors.throttle.hit(&attempts, limit, self.now()).await? {
            Admission::Allowed(_) => {}
            Admission::Refused { retry_after, .. } => {
                audit::second_factor_throttled(
                    "pending_login",
                    retry_after,
                    &pending.user_id,
                    client.ip,
                );
                // Spend it: this pending login is over.
                let _ = factors
                    .pending
                    .consume(pending_token, &purpose, &Binding::none())
                    .await;
                return Err(Error::InvalidPendingLogin);
            }
        }
        let method = self
            .check_proof(factors, &pending.user_id, proof, &client)
            .await?;
        let Some(user) = self.inner.users.find_by_id(&pending.user_id).await? else {
            return Err(Error::InvalidPendingLogin);
        };
        let consumed = factors
            .pending
            .consume(pending_token, &purpose, &Binding::for_user(&purpose, &user))
            .await
            .map_err(pending_error)?;
        let (lifetime, first) = decode_payload(consumed.payload.as_deref());
        self.finish_login(user, client, lifetime, first.with(method))
            .await
    }

    /// The pending login `pending_token` names, unspent.
    pub(super) async fn inspect_pending_login(
        &self,
        pending_token: &str,
    ) -> Result<crate::one_time::Pending> {
        self.factors()?
            .pending
            .inspect(pending_token, &OneTimePurpose::SecondFactorLogin)
            .await
            .map_err(pending_error)
    }

    /// Starts enrolling an authenticator app for the user of `subject` (a [`Session`], say):
    /// a fresh secret, sealed with the configured key and stored as pending (not used for
    /// logins until [`confirm_totp`](Self::confirm_totp)). Starting again replaces a pending
    /// enrolment.
    ///
    /// # Errors
    /// [`Error::SecondFactorAlreadyEnabled`] if an app is active (disable it first);
    /// [`Error::InvalidToken`] if the user no longer exists; [`Error::Store`],
    /// [`Error::Randomness`], [`Error::SecondFactorConfig`].
    pub async fn begin_totp<S: Subject + ?Sized>(&self, subject: &S) -> Result<TotpEnrollment> {
        self.require_interactive(subject)?;
        let factors = self.factors()?;
        let id = subject.user_id();
        let Some(user) = self.inner.users.find_by_id(id).await? else {
            return Err(Error::InvalidToken);
        };
        let store = &factors.config.store;
        if totp_active(factors, id).await? {
            return Err(Error::SecondFactorAlreadyEnabled);
        }
        let secret = TotpSecret::generate()?;
        let sealed = factors
            .config
            .secret_box
            .seal(secret.as_bytes(), id.as_str().as_bytes())
            .map_err(sealing)?;
        if !store
            .begin_totp(&TotpRecord::pending(id.clone(), sealed, self.now()))
            .await?
        {
            return Err(Error::SecondFactorAlreadyEnabled);
        }
        let policy = &factors.config.totp;
        Ok(TotpEnrollment {
            secret: secret.to_base32(),
            otpauth_uri: policy.otpauth_uri(&secret, &factors.config.issuer, user.email()),
        })
    }

    /// The code an authenticator app shows now for `enrolment`'s secret: for tests and demos
    /// (a real user reads it off their app).
    ///
    /// # Errors
    /// [`Error::SecondFactorConfig`] without second factors, or if the enrolment's secret is
    /// not valid base32.
    pub fn current_totp_code(&self, enrolment: &TotpEnrollment) -> Result<String> {
        let factors = self.factors()?;
        let secret = TotpSecret::from_base32(&enrolment.secret)
            .map_err(|_| Error::SecondFactorConfig("the enrolment's secret is not base32"))?;
        Ok(factors.config.totp.code_at(&secret, self.now()))
    }

    /// Confirms a pending enrolment with a code from the app: from now on the app is active
    /// and logins take two steps. Returns the recovery codes, **shown to the user once**
    /// (only their digests are stored). The code is throttled like a login's second step.
    ///
    /// # Errors
    /// [`Error::InvalidCode`] for a wrong code; [`Error::SecondFactorNotEnabled`] if no
    /// enrolment is pending; [`Error::SecondFactorAlreadyEnabled`] if the app is active
    /// already; [`Error::Throttled`]; [`Error::Store`], [`Error::SecretBox`],
    /// [`Error::SecondFactorConfig`].
    pub async fn confirm_totp<S: Subject + ?Sized>(
        &self,
        subject: &S,
        code: &str,
        client: &ClientInfo,
    ) -> Result<RecoveryCodes> {
        self.require_interactive(subject)?;
        let factors = self.factors()?;
        let id = subject.user_id();
        let store = &factors.config.store;
        let record = match store.totp(id).await? {
            Some(record) if record.is_confirmed() => return Err(Error::SecondFactorAlreadyEnabled),
            Some(record) => record,
            None => return Err(Error::SecondFactorNotEnabled),
        };
        let key = self.count_code(factors, id, client).await?;
        let secret = self.open_secret(factors, &record)?;
        let verdict = factors.config.totp.verify(&secret, code, self.now(), None);
        let TotpVerdict::Accepted { step } = verdict else {
            audit::second_factor_failed(AuthMethod::Totp.as_str(), id, client.ip);
            return Err(Error::InvalidCode);
        };
        if !store
            .confirm_totp(id, &record.sealed_secret, step, self.now())
            .await?
        {
            return Err(Error::SecondFactorNotEnabled);
        }
        self.forgive_code(factors, &key).await;
        let codes = self.new_recovery_codes(factors, id).await?;
        audit::second_factor_enrolled(id, client.ip);
        Ok(codes)
    }

    /// Removes the user's authenticator app and recovery codes, after a fresh proof: a
    /// current code or an unused recovery code (counted like a login's second step). Logins
    /// take one step again.
    ///
    /// To let a user disable it with their password instead, check
    /// [`require_recent_auth`](Self::require_recent_auth) (after
    /// [`reauthenticate`](Self::reauthenticate)) and call
    /// [`remove_second_factors`](Self::remove_second_factors).
    ///
    /// # Errors
    /// [`Error::SecondFactorNotEnabled`] if no app is active; [`Error::InvalidCode`];
    /// [`Error::Throttled`]; [`Error::Store`], [`Error::SecretBox`],
    /// [`Error::SecondFactorConfig`].
    pub async fn disable_totp<S: Subject + ?Sized>(
        &self,
        subject: &S,
        proof: SecondFactorProof<'_>,
        client: &ClientInfo,
    ) -> Result<()> {
        self.require_interactive(subject)?;
        let factors = self.factors()?;
        let id = subject.user_id();
        if !totp_active(factors, id).await? {
            return Err(Error::SecondFactorNotEnabled);
        }
        self.check_proof(factors, id, proof, client).await?;
        self.remove_second_factors(id).await?;
        audit::second_factor_disabled(id, client.ip);
        Ok(())
    }

    /// Removes every second factor of `user` (app, pending enrolment, recovery codes)
    /// without asking for a proof: for an administrator's account recovery, or after your
    /// own check (a recent password, see [`disable_totp`](Self::disable_totp)). Returns
    /// whether an app was removed.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::SecondFactorConfig`].
    pub async fn remove_second_factors(&self, user: &UserId) -> Result<bool> {
        let store = &self.factors()?.config.store;
        let removed = store.remove_totp(user).await?;
        store.replace_recovery_codes(user, &[], self.now()).await?;
        Ok(removed)
    }

    /// Replaces the user's recovery codes with a new set (the old ones stop working), after a
    /// fresh proof (a current code or an unused recovery code). Show the new codes once.
    ///
    /// # Errors
    /// As [`disable_totp`](Self::disable_totp).
    pub async fn regenerate_recovery_codes<S: Subject + ?Sized>(
        &self,
        subject: &S,
        proof: SecondFactorProof<'_>,
        client: &ClientInfo,
    ) -> Result<RecoveryCodes> {
        self.require_interactive(subject)?;
        let factors = self.factors()?;
        let id = subject.user_id();
        if !totp_active(factors, id).await? {
            return Err(Error::SecondFactorNotEnabled);
        }
        self.check_proof(factors, id, proof, client).await?;
        let codes = self.new_recovery_codes(factors, id).await?;
        audit::recovery_codes_regenerated(id, client.ip);
        Ok(codes)
    }

    /// The user's second factors, for an account page. All `false` and 0 without
    /// [`second_factors`](crate::AuthenticatorBuilder::second_factors).
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn second_factor_status<S: Subject + ?Sized>(
        &self,
        subject: &S,
    ) -> Result<SecondFactorStatus> {
        self.require_interactive(subject)?;
        let Some(factors) = &self.inner.second_factors else {
            return Ok(SecondFactorStatus {
                totp: false,
                totp_pending: false,
                recovery_codes_left: 0,
            });
        };
        let id = subject.user_id();
        let store = &factors.config.store;
        let totp = store.totp(id).await?;
        Ok(SecondFactorStatus {
            totp: totp.as_ref().is_some_and(TotpRecord::is_confirmed),
            totp_pending: totp.as_ref().is_some_and(|t| !t.is_confirmed()),
            recovery_codes_left: store.recovery_codes_left(id).await?,
        })
    }

    /// Step-up: checks that `session` was authenticated with a second factor if its user has
    /// one (or, with
    /// [`SecondFactors::required_for_every_session`](crate::mfa::SecondFactors::required_for_every_session),
    /// in any case), before a sensitive action. Combine with
    /// [`require_recent_auth`](Self::require_recent_auth) for recency.
    ///
    /// # Errors
    /// [`Error::InsufficientAuthentication`] (`second_factor: true`) when the session's
    /// [`amr`](Session::amr) holds no second factor and the user has an active app or a
    /// passkey (a session from before the enrolment, say: log in again with both steps) or the
    /// policy
    /// requires one for every session (enrol an app, then log in again).
    /// [`Error::Store`].
    pub async fn require_second_factor(&self, session: &Session) -> Result<()> {
        if session.amr.has_second_factor() {
            return Ok(());
        }
        let Some(factors) = &self.inner.second_factors else {
            return Ok(());
        };
        if factors.config.required
            || !self
                .second_factor_methods(factors, &session.user_id)
                .await?
                .is_empty()
        {
            return Err(Error::InsufficientAuthentication {
                second_factor: true,
                max_age: None,
            });
        }
        Ok(())
    }

    /// Step-up for a sensitive action, in one call: the password proved within `within`
    /// ([`require_recent_auth`](Self::require_recent_auth)) and, if the user has a second
    /// factor (or the policy requires one), a session authenticated with it
    /// ([`require_second_factor`](Self::require_second_factor)).
    ///
    /// # Errors
    /// [`Error::InsufficientAuthentication`] with what is missing: `second_factor` when the
    /// session lacks the factor it needs, `max_age: Some(within)` when the proof is too old
    /// (RFC 9470: `StandardApi` answers 401 `insufficient_user_authentication` with
    /// `acr_values="mfa"` and `max_age` in its challenge); [`Error::Store`].
    pub async fn require_step_up(&self, session: &Session, within: Duration) -> Result<()> {
        let stale = self.require_recent_auth(session, within).is_err();
        let needs_factor = match self.require_second_factor(session).await {
            Ok(()) => false,
            Err(Error::InsufficientAuthentication { .. }) => true,
            Err(other) => return Err(other),
        };
        if stale || needs_factor {
            return Err(Error::InsufficientAuthentication {
                second_factor: needs_factor,
                max_age: stale.then_some(within),
            });
        }
        Ok(())
    }

    /// The second factors `user` can answer a login's second step with: an active app (and
    /// its recovery codes), passkeys. Empty: the user has none.
    async fn second_factor_methods(
        &self,
        factors: &FactorsRuntime,
        user: &UserId,
    ) -> Result<Vec<SecondFactorMethod>> {
        let mut methods = Vec::with_capacity(3);
        if totp_active(factors, user).await? {
            methods.extend([SecondFactorMethod::Totp, SecondFactorMethod::RecoveryCode]);
        }
        #[cfg(feature = "passkeys")]
        if self.has_passkey(user).await? {
            methods.push(SecondFactorMethod::Passkey);
        }
        Ok(methods)
    }

    /// Counts one code for the account before it is checked; refuses when the account's
    /// wrong codes reached the limit.
    async fn count_code(
        &self,
        factors: &FactorsRuntime,
        user: &UserId,
        client: &ClientInfo,
    ) -> Result<RateKey> {
        let key = RateKey::new(ACCOUNT_BUCKET, user.as_str());
        match factors
            .throttle
            .hit(&key, factors.config.code_limit, self.now())
            .await?
        {
            Admission::Allowed(_) => Ok(key),
            Admission::Refused { retry_after, .. } => {
                audit::second_factor_throttled("account", retry_after, user, client.ip);
                Err(Error::Throttled { retry_after })
            }
        }
    }

    /// Takes back the count of a code that was right: only wrong codes stay counted.
    async fn forgive_code(&self, factors: &FactorsRuntime, key: &RateKey) {
        if let Err(error) = factors.throttle.give_back(key, self.now()).await {
            // The right code stays counted: stricter than it should be, never looser.
            tracing::warn!(error = %crate::error::chain(&error), "keycard: giving back a right second-factor code to the throttle failed");
        }
    }

    fn open_secret(&self, factors: &FactorsRuntime, record: &TotpRecord) -> Result<TotpSecret> {
        let plain = factors
            .config
            .secret_box
            .open(&record.sealed_secret, record.user_id.as_str().as_bytes())
            .map_err(sealing)?;
        TotpSecret::try_from_bytes(plain)
            .map_err(|_| Error::SecondFactorConfig("a stored TOTP secret has an invalid length"))
    }

    /// Checks a proof for `user` (counted first), spends it, and says which method it was.
    async fn check_proof(
        &self,
        factors: &FactorsRuntime,
        user: &UserId,
        proof: SecondFactorProof<'_>,
        client: &ClientInfo,
    ) -> Result<AuthMethod> {
        let key = self.count_code(factors, user, client).await?;
        let store = &factors.config.store;
        let (method, accepted) = match proof {
            SecondFactorProof::Totp(code) => {
                let accepted = match store.totp(user).await? {
                    Some(record) if record.is_confirmed() => {
                        let secret = self.open_secret(factors, &record)?;
                        match factors.config.totp.verify(
                            &secret,
                            code,
                            self.now(),
                            record.last_step,
                        ) {
                            TotpVerdict::Accepted { step } => {
                                self.reseal_if_old(factors, &record).await;
                                store.use_totp_step(user, step).await?
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                };
                (AuthMethod::Totp, accepted)
            }
            SecondFactorProof::RecoveryCode(code) => {
                let accepted = match RecoveryCode::parse(code) {
                    Some(code) => store.use_recovery_code(user, &code.digest(user)).await?,
                    None => false,
                };
                if accepted {
                    let left = store.recovery_codes_left(user).await?;
                    audit::recovery_code_used(user, left, client.ip);
                }
                (AuthMethod::RecoveryCode, accepted)
            }
            #[cfg(feature = "passkeys")]
            SecondFactorProof::Passkey {
                ceremony,
                credential,
            } => (
                AuthMethod::Passkey,
                self.check_passkey_proof(user, ceremony, credential, client)
                    .await?,
            ),
        };
        if !accepted {
            audit::second_factor_failed(method.as_str(), user, client.ip);
            return Err(match method {
                AuthMethod::Passkey => Error::PasskeyRejected,
                _ => Error::InvalidCode,
            });
        }
        self.forgive_code(factors, &key).await;
        Ok(method)
    }

    /// Re-seals a secret sealed under an old key with the current one (best effort).
    async fn reseal_if_old(&self, factors: &FactorsRuntime, record: &TotpRecord) {
        let secret_box = &factors.config.secret_box;
        if !secret_box.needs_reseal(&record.sealed_secret) {
            return;
        }
        let aad = record.user_id.as_str().as_bytes();
        let resealed = secret_box
            .open(&record.sealed_secret, aad)
            .and_then(|plain| secret_box.seal(&plain, aad));
        if let Ok(new) = resealed {
            if let Err(error) = factors
                .config
                .store
                .reseal_totp(&record.user_id, &record.sealed_secret, &new)
                .await
            {
                tracing::warn!(error = %crate::error::chain(&error), "keycard: re-sealing a TOTP secret under the current key failed");
            }
        }
    }

    async fn new_recovery_codes(
        &self,
        factors: &FactorsRuntime,
        user: &UserId,
    ) -> Result<RecoveryCodes> {
        let codes = RecoveryCodes::generate(factors.config.recovery_codes)?;
        factors
            .config
            .store
            .replace_recovery_codes(user, &codes.digests(user), self.now())
            .await?;
        Ok(codes)
    }
}
