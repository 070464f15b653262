//! Passkeys on the authenticator: registration, listing, renaming and removal by a logged-in
//! user, passwordless login, and a passkey as a login's second step.

use std::sync::Arc;

use webauthn_rs::prelude::{
    CreationChallengeResponse, CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};
use webauthn_rs_proto::{AllowCredentials, AuthenticatorTransport, ResidentKeyRequirement};

use super::{Authenticator, Login, Subject};
use crate::amr::{AuthMethod, AuthMethods};
use crate::audit;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::mfa::{
    decode_credential_id, passkey_user_handle, PasskeyAdded, PasskeyRecord, PasskeyView, Passkeys,
    SharedPasskeyStore,
};
use crate::one_time::{Binding, OneTimeError, OneTimePurpose, OneTimeToken, OneTimeTokens};
use crate::session::ClientInfo;
use crate::throttle::{Admission, MemoryThrottle, RateKey, Throttle};
use crate::user::{User, UserId, UserStore};

/// The throttle bucket of passwordless logins begun per client address.
const BEGIN_BUCKET: &str = "passkey-login";

/// [`Passkeys`] as the authenticator runs them: ceremonies on its clock, and the throttle
/// that counts begun logins.
#[derive(Debug)]
pub(crate) struct PasskeysRuntime {
    config: Passkeys,
    store: SharedPasskeyStore,
    ceremonies: OneTimeTokens,
    throttle: Arc<dyn Throttle>,
}

impl PasskeysRuntime {
    pub(crate) fn new(
        config: Passkeys,
        store: SharedPasskeyStore,
        clock: &Arc<dyn Clock>,
        throttle: Option<&Arc<dyn Throttle>>,
    ) -> Self {
        // One outstanding ceremony per user (or address) and purpose would be enough for one
        // tab; a few allow several tabs. Anonymous ceremonies are counted per address too.
        let ceremonies = OneTimeTokens::from_arc(config.ceremonies.clone())
            .with_clock(clock.clone())
            .with_max_outstanding(config.begin_limit.max_failures().max(5));
        let throttle = throttle.cloned().unwrap_or_else(|| {
            let memory: Arc<dyn Throttle> = Arc::new(MemoryThrottle::default());
            memory
        });
        Self {
            config,
            store,
            ceremonies,
            throttle,
        }
    }
}

/// The one-time "user" an anonymous (passwordless) ceremony is issued to: its client's
/// address, so each address's outstanding ceremonies are capped apart from the others'.
fn anonymous_owner(client: &ClientInfo) -> UserId {
    let network = client.ip.map_or_else(
        || "-".to_owned(),
        |ip| RateKey::ip(BEGIN_BUCKET, ip).as_str().to_owned(),
    );
    UserId::new(format!("passkey-login:{network}"))
}

fn ceremony_error(error: OneTimeError) -> Error {
    match error {
        OneTimeError::Invalid | OneTimeError::Stale => Error::InvalidCeremony,
        other => other.into(),
    }
}

fn corrupt(what: &'static str) -> Error {
    Error::Store(crate::error::StoreError::corrupt(what))
}

/// Asks browsers for a discoverable credential (a passkey proper, which a passwordless login
/// can find without a user name). webauthn-rs leaves it to the authenticator; the state it
/// keeps does not depend on it.
fn require_resident_key(options: &mut CreationChallengeResponse) {
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
}

impl<U: UserStore> Authenticator<U> {
    fn passkey_runtime(&self) -> Result<&PasskeysRuntime> {
        self.inner
            .passkeys
            .as_ref()
            .ok_or(Error::SecondFactorConfig(
                "the authenticator was built without AuthenticatorBuilder::passkeys",
            ))
    }

    /// Whether `user` has a passkey (false without passkeys configured).
    pub(super) async fn has_passkey(&self, user: &UserId) -> Result<bool> {
        match &self.inner.passkeys {
            Some(runtime) => Ok(!runtime.store.list(user).await?.is_empty()),
            None => Ok(false),
        }
    }

    /// Begins registering a passkey for the user of `subject` (a [`Session`](crate::Session),
    /// say). Returns the ceremony token, which the client sends back to
    /// [`finish_passkey_registration`](Self::finish_passkey_registration), and the options to
    /// pass to `navigator.credentials.create` (as JSON; binary fields in base64url). The
    /// user's passkeys are excluded, so an authenticator is not registered twice.
    ///
    /// # Errors
    /// [`Error::TooManyPasskeys`] at the per-user cap; [`Error::InvalidToken`] if the user no
    /// longer exists; [`Error::Store`], [`Error::Randomness`];
    /// [`Error::SecondFactorConfig`] without [`passkeys`](crate::AuthenticatorBuilder::passkeys).
    pub async fn begin_passkey_registration<S: Subject + ?Sized>(
        &self,
        subject: &S,
    ) -> Result<(OneTimeToken, CreationChallengeResponse)> {
        self.require_interactive(subject)?;
        let runtime = self.passkey_runtime()?;
        let id = subject.user_id();
        let Some(user) = self.inner.users.find_by_id(id).await? else {
            return Err(Error::InvalidToken);
        };
        let existing = runtime.store.list(id).await?;
        let max = runtime.config.max_per_user;
        if existing.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Err(Error::TooManyPasskeys { max: max as usize });
        }
        let exclude: Vec<CredentialID> = existing
            .iter()
            .map(|r| CredentialID::from(r.credential_id.clone()))
            .collect();
        let (mut options, state) = runtime
            .config
            .webauthn
            .start_passkey_registration(
                passkey_user_handle(id),
                user.email(),
                user.email(),
                Some(exclude),
            )
            .map_err(|_| {
                Error::SecondFactorConfig("webauthn-rs refused to begin a registration")
            })?;
        require_resident_key(&mut options);
        let state = serde_json::to_string(&state)
            .map_err(|_| corrupt("a passkey registration state does not serialize"))?;
        let purpose = OneTimePurpose::PasskeyRegistration;
        let issued = runtime
            .ceremonies
            .issue(
                id,
                &purpose,
                Binding::for_user(&purpose, &user),
                Some(&state),
            )
            .await?;
        Ok((issued.token, options))
    }

    /// Finishes a registration begun by
    /// [`begin_passkey_registration`](Self::begin_passkey_registration): checks the
    /// authenticator's answer (`credential`, what `navigator.credentials.create` returned)
    /// against the ceremony's challenge, the origin and user verification, and stores the
    /// passkey under `name` (trimmed, 1 to 64 characters; empty names become "Passkey").
    /// The ceremony is spent, whatever the outcome.
    ///
    /// # Errors
    /// [`Error::InvalidCeremony`] for an unknown, used, expired or another user's ceremony
    /// (or one begun before a password change); [`Error::PasskeyRejected`] for an answer
    /// that does not check out or a passkey registered already; [`Error::TooManyPasskeys`];
    /// [`Error::InputTooLong`] for a name over 64 characters; [`Error::Store`],
    /// [`Error::SecondFactorConfig`].
    pub async fn finish_passkey_registration<S: Subject + ?Sized>(
        &self,
        subject: &S,
        ceremony: &str,
        credential: &RegisterPublicKeyCredential,
        name: &str,
        client: &ClientInfo,
    ) -> Result<PasskeyView> {
        self.require_interactive(subject)?;
        let runtime = self.passkey_runtime()?;
        let id = subject.user_id();
        let name = checked_name(name)?;
        let Some(user) = self.inner.users.find_by_id(id).await? else {
            return Err(Error::InvalidToken);
        };
        let purpose = OneTimePurpose::PasskeyRegistration;
        let pending = runtime
            .ceremonies
            .inspect(ceremony, &purpose)
            .await
            .map_err(ceremony_error)?;
        if &pending.user_id != id {
            return Err(Error::InvalidCeremony);
        }
        let consumed = runtime
            .ceremonies
            .consume(ceremony, &purpose, &Binding::for_user(&purpose, &user))
            .await
            .map_err(ceremony_error)?;
        let state: PasskeyRegistration = consumed
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or(Error::InvalidCeremony)?;
        let rejected = |reason| {
            audit::passkey_failed("registration", reason, Some(id), client.ip);
            Error::PasskeyRejected
        };
        let passkey = runtime
            .config
            .webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(|_| rejected("registration"))?;
        let credential_id = passkey.cred_id().to_vec();
        if credential_id.is_empty() || credential_id.len() > PasskeyRecord::MAX_CREDENTIAL_ID_LEN {
            return Err(rejected("registration"));
        }
        let json =
            serde_json::to_string(&passkey).map_err(|_| corrupt("a passkey does not serialize"))?;
        let record = PasskeyRecord::new(id.clone(), credential_id, name, json, self.now());
        match runtime
            .store
            .add(&record, runtime.config.max_per_user)
            .await?
        {
            PasskeyAdded::Added => {}
            PasskeyAdded::Duplicate => return Err(rejected("duplicate")),
            _ => {
                return Err(Error::TooManyPasskeys {
                    max: runtime.config.max_per_user as usize,
                })
            }
        }
        audit::passkey_registered(id, client.ip);
        Ok(PasskeyView::from(&record))
    }

    /// The user's passkeys, oldest first, as an account page shows them (no key material).
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::SecondFactorConfig`] without passkeys.
    pub async fn passkeys<S: Subject + ?Sized>(&self, subject: &S) -> Result<Vec<PasskeyView>> {
        self.require_interactive(subject)?;
        let runtime = self.passkey_runtime()?;
        let records = runtime.store.list(subject.user_id()).await?;
        Ok(records.iter().map(PasskeyView::from).collect())
    }

    /// Renames the user's passkey `id` (a [`PasskeyView::id`]); `false` if the user has no
    /// such passkey (another user's included).
    ///
    /// # Errors
    /// [`Error::InputTooLong`] for a name over 64 characters; [`Error::Store`];
    /// [`Error::SecondFactorConfig`] without passkeys.
    pub async fn rename_passkey<S: Subject + ?Sized>(
        &self,
        subject: &S,
        id: &str,
        name: &str,
    ) -> Result<bool> {
        self.require_interactive(subject)?;
        let runtime = self.passkey_runtime()?;
        let name = checked_name(name)?;
        let Some(credential_id) = decode_credential_id(id) else {
            return Ok(false);
        };
        Ok(runtime
            .store
            .rename(subject.user_id(), &credential_id, &name)
            .await?)
    }

    /// Removes the user's passkey `id` (a [`PasskeyView::id`]); `false` if the user has no
    /// such passkey (another user's included). It no longer logs in, nor answers a second
    /// step.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::SecondFactorConfig`] without passkeys.
    pub async fn remove_passkey<S: Subject + ?Sized>(
        &self,
        subject: &S,
        id: &str,
        client: &ClientInfo,
    ) -> Result<bool> {
        self.require_interactive(subject)?;
        let runtime = self.passkey_runtime()?;
        let Some(credential_id) = decode_credential_id(id) else {
            return Ok(false);
        };
        let user = subject.user_id();
        let removed = runtime.store.remove(user, &credential_id).await?;
        if removed {
            audit::passkey_removed(user, client.ip);
        }
        Ok(removed)
    }

    /// Begins a passwordless login: the ceremony token, which the client sends back to
    /// [`finish_passkey_login`](Self::finish_passkey_login), and the options to pass to
    /// `navigator.credentials.get` (no credential listed: the browser offers the passkeys it
    /// has for this site). It needs no account, so it is counted per client address (30 per
    /// minute by default, [`Passkeys::with_begin_limit`]).
    ///
    /// webauthn-rs marks the options for conditional mediation (`"mediation":
    /// "conditional"`, the autofill prompt); a page that asks on a button click passes only
    /// their `publicKey` member.
    ///
    /// # Errors
    /// [`Error::Throttled`] past the limit; [`Error::ThrottleUnavailable`], [`Error::Store`],
    /// [`Error::Randomness`]; [`Error::SecondFactorConfig`] without passkeys.
    pub async fn begin_passkey_login(
        &self,
        client: &ClientInfo,
    ) -> Result<(OneTimeToken, RequestChallengeResponse)> {
        let runtime = self.passkey_runtime()?;
        if let Some(ip) = client.ip {
            let key = RateKey::ip(BEGIN_BUCKET, ip);
            if let Admission::Refused { retry_after, .. } = runtime
                .throttle
                .hit(&key, runtime.config.begin_limit, self.now())
                .await?
            {
                return Err(Error::Throttled { retry_after });
            }
        }
        let (options, state) = self.start_discoverable(runtime)?;
        let purpose = OneTimePurpose::PasskeyLogin;
        let issued = runtime
            .ceremonies
            .issue(
                &anonymous_owner(client),
                &purpose,
                Binding::none(),
                Some(&state),
            )
            .await?;
        Ok((issued.token, options))
    }

    /// Finishes a passwordless login begun by
    /// [`begin_passkey_login`](Self::begin_passkey_login): finds the passkey `credential`
    /// names, checks its signature over the ceremony's challenge, the origin and user
    /// verification, records its new counter and backup state, and starts a session whose
    /// [`amr`](crate::Session::amr) is `hwk`. A passkey with user verification is two factors
    /// in one (the device, and the PIN or biometric that unlocks it), so no second step
    /// follows. The ceremony is spent, whatever the outcome.
    ///
    /// # Errors
    /// [`Error::InvalidCeremony`] for an unknown, used, expired or malformed ceremony;
    /// [`Error::PasskeyRejected`] for an unknown passkey or an answer that does not check
    /// out; [`Error::Store`]; [`Error::SecondFactorConfig`] without passkeys.
    pub async fn finish_passkey_login(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        client: ClientInfo,
    ) -> Result<Login<U::User>> {
        let runtime = self.passkey_runtime()?;
        let purpose = OneTimePurpose::PasskeyLogin;
        let consumed = runtime
            .ceremonies
            .consume(ceremony, &purpose, &Binding::none())
            .await
            .map_err(ceremony_error)?;
        if !consumed.user_id.as_str().starts_with("passkey-login:") {
            return Err(Error::InvalidCeremony);
        }
        let record = self
            .check_assertion(
                runtime,
                consumed.payload.as_deref(),
                credential,
                None,
                "login",
                &client,
            )
            .await?;
        let Some(user) = self.inner.users.find_by_id(&record.user_id).await? else {
            audit::passkey_failed("login", "unknown_passkey", None, client.ip);
            return Err(Error::PasskeyRejected);
        };
        audit::passkey_used("login", &record.user_id, client.ip);
        self.finish_login(user, client, None, AuthMethods::from(AuthMethod::Passkey))
            .await
    }

    /// Begins answering a pending login's second step (from
    /// [`Error::SecondFactorRequired`]) with a passkey: the ceremony token and the options
    /// for `navigator.credentials.get`, listing the user's passkeys. Send the answer with
    /// [`SecondFactorProof::Passkey`](crate::mfa::SecondFactorProof::Passkey) to
    /// [`complete_login`](Self::complete_login).
    ///
    /// # Errors
    /// [`Error::InvalidPendingLogin`] for an unknown, used or expired pending login;
    /// [`Error::PasskeyRejected`] if the user has no passkey; [`Error::Store`];
    /// [`Error::SecondFactorConfig`] without passkeys or second factors.
    pub async fn begin_passkey_second_factor(
        &self,
        pending_token: &str,
    ) -> Result<(OneTimeToken, RequestChallengeResponse)> {
        let runtime = self.passkey_runtime()?;
        let pending = self.inspect_pending_login(pending_token).await?;
        let records = runtime.store.list(&pending.user_id).await?;
        if records.is_empty() {
            return Err(Error::PasskeyRejected);
        }
        let (mut options, state) = self.start_discoverable(runtime)?;
        // The user is known: list their passkeys, so security keys that keep no
        // discoverable credential answer too, and ask on the spot rather than by autofill.
        options.mediation = None;
        options.public_key.allow_credentials = records
            .iter()
            .map(|r| AllowCredentials {
                type_: "public-key".to_owned(),
                id: r.credential_id.clone().into(),
                transports: None::<Vec<AuthenticatorTransport>>,
            })
            .collect();
        let purpose = OneTimePurpose::PasskeyLogin;
        let issued = runtime
            .ceremonies
            .issue(&pending.user_id, &purpose, Binding::none(), Some(&state))
            .await?;
        Ok((issued.token, options))
    }

    /// Checks a passkey proof of a pending login's second step, for `user`: whether it was
    /// accepted. The ceremony is spent.
    pub(super) async fn check_passkey_proof(
        &self,
        user: &UserId,
        ceremony: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<bool> {
        let runtime = self.passkey_runtime()?;
        let purpose = OneTimePurpose::PasskeyLogin;
        let consumed = match runtime
            .ceremonies
            .consume(ceremony, &purpose, &Binding::none())
            .await
        {
            Ok(consumed) if &consumed.user_id == user => consumed,
            Ok(_) | Err(OneTimeError::Invalid | OneTimeError::Stale) => {
                return Err(Error::InvalidCeremony)
            }
            Err(other) => return Err(other.into()),
        };
        match self
            .check_assertion(
                runtime,
                consumed.payload.as_deref(),
                credential,
                Some(user),
                "second_factor",
                client,
            )
            .await
        {
            Ok(_) => {
                audit::passkey_used("second_factor", user, client.ip);
                Ok(true)
            }
            Err(Error::PasskeyRejected) => Ok(false),
            Err(other) => Err(other),
        }
    }

    fn start_discoverable(
        &self,
        runtime: &PasskeysRuntime,
    ) -> Result<(RequestChallengeResponse, String)> {
        let (options, state) = runtime
            .config
            .webauthn
            .start_discoverable_authentication()
            .map_err(|_| {
                Error::SecondFactorConfig("webauthn-rs refused to begin an authentication")
            })?;
        let state = serde_json::to_string(&state)
            .map_err(|_| corrupt("a passkey authentication state does not serialize"))?;
        Ok((options, state))
    }

    /// Verifies an assertion against a ceremony's state and the stored passkey it names
    /// (which must be `owner`'s, if given), then records the passkey's new counter and
    /// backup state and its use. [`Error::PasskeyRejected`] for any refusal.
    async fn check_assertion(
        &self,
        runtime: &PasskeysRuntime,
        state: Option<&str>,
        credential: &PublicKeyCredential,
        owner: Option<&UserId>,
        purpose: &'static str,
        client: &ClientInfo,
    ) -> Result<PasskeyRecord> {
        let state: DiscoverableAuthentication = state
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or(Error::InvalidCeremony)?;
        let failed = |reason, user: Option<&UserId>| {
            audit::passkey_failed(purpose, reason, user, client.ip);
            Error::PasskeyRejected
        };
        let credential_id = credential.get_credential_id();
        if credential_id.is_empty() || credential_id.len() > PasskeyRecord::MAX_CREDENTIAL_ID_LEN {
            return Err(failed("unknown_passkey", owner));
        }
        let Some(record) = runtime.store.find(credential_id).await? else {
            return Err(failed("unknown_passkey", owner));
        };
        if owner.is_some_and(|o| o != &record.user_id) {
            return Err(failed("wrong_user", owner));
        }
        // A discoverable credential returns the user handle it was registered with.
        if let Some(handle) = credential.get_user_unique_id() {
            if handle != passkey_user_handle(&record.user_id).as_bytes() {
                return Err(failed("wrong_user", Some(&record.user_id)));
            }
        }
        let mut passkey: Passkey = serde_json::from_str(&record.passkey)
            .map_err(|_| corrupt("a stored passkey is not a webauthn-rs Passkey"))?;
        let result = runtime
            .config
            .webauthn
            .finish_discoverable_authentication(
                credential,
                state,
                &[DiscoverableKey::from(&passkey)],
            )
            .map_err(|_| failed("assertion", Some(&record.user_id)))?;
        // As webauthn-rs advises: keep the counter and backup state current.
        passkey.update_credential(&result);
        let json =
            serde_json::to_string(&passkey).map_err(|_| corrupt("a passkey does not serialize"))?;
        runtime
            .store
            .update_after_use(credential_id, &json, self.now())
            .await?;
        Ok(record)
    }
}

/// A passkey's name: trimmed, "Passkey" if empty, at most 64 characters.
fn checked_name(name: &str) -> Result<String> {
    // A label for a list: control characters (NUL among them, which PostgreSQL cannot store)
    // are dropped.
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    if name.chars().count() > PasskeyRecord::MAX_NAME_LEN {
        return Err(Error::InputTooLong {
            field: crate::error::Field::Name,
            max: PasskeyRecord::MAX_NAME_LEN,
        });
    }
    Ok(match name.is_empty() {
        true => "Passkey".to_owned(),
        false => name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::checked_name;

    #[test]
    fn names_are_trimmed_defaulted_bounded_and_lose_control_characters() {
        assert_eq!(checked_name("  Laptop \u{0}\n").expect("a name"), "Laptop");
        assert_eq!(checked_name("\u{7}").expect("a name"), "Passkey");
        assert!(checked_name(&"x".repeat(65)).is_err());
        assert_eq!(
            checked_name(&"é".repeat(64))
                .expect("64 characters")
                .chars()
                .count(),
            64
        );
    }
}
