//! Registration without enumeration, and email verification.

use super::jobs::Job;
use super::{AccountStore, Accounts};
use crate::audit;
use crate::error::{Error, Result};
use crate::one_time::OneTimePurpose;
use crate::session::ClientInfo;
use crate::throttle::RateKey;
use crate::user::{normalize_email, User};

impl<U: AccountStore + 'static> Accounts<U> {
    /// Registers `email` with `password`, answering the same for a new and a taken email.
    ///
    /// The checks of [`Authenticator::register`](crate::Authenticator::register) apply first
    /// (the email's shape, the password policy, the address's registration limit and hashing
    /// bound): their errors say nothing about other accounts. Then:
    /// - a new email: the user is created, unverified, and mailed a verification link;
    /// - a taken email: the password is hashed all the same (the same work, so the same time)
    ///   and nothing is stored; the account's owner is mailed a notice ("someone tried to
    ///   register with your address") that links to the login and forgot-password pages and
    ///   carries no token.
    ///
    /// Both mails go out from the background worker, to the address as stored.
    ///
    /// # Errors
    /// As [`Authenticator::register`](crate::Authenticator::register), except that a taken
    /// email is `Ok(())` unless [`reveal_taken_email`](super::AccountsBuilder::reveal_taken_email)
    /// is on; [`Error::Overloaded`] when the background queue is full.
    pub async fn register(&self, email: &str, password: &str, client: &ClientInfo) -> Result<()> {
        let auth = &self.shared.auth;
        match auth.register(email, password, client).await {
            Ok(user) => self.enqueue(Job::Verification {
                user: user.id(),
                ip: client.ip,
            }),
            Err(Error::EmailTaken) if !self.shared.reveal_taken_email => {
                // The work a new account costs, so that the answer takes as long.
                auth.hash_for_client(password, client.ip).await?;
                audit::account_link_requested("registration_notice", client.ip);
                self.enqueue(Job::RegistrationNotice {
                    email: normalize_email(email),
                    ip: client.ip,
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Verifies the address the user was mailed, with the link's token: marks it verified
    /// and returns the user. A token works once, and not after the address changed.
    ///
    /// # Errors
    /// [`Error::InvalidLink`] for a malformed, unknown, used or expired token;
    /// [`Error::StaleLink`] when the address changed since it was mailed; [`Error::Store`] if a
    /// store fails.
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<U::User> {
        let purpose = OneTimePurpose::EmailVerification;
        let users = self.shared.auth.users();
        let (_, user) = self.consume(token, &purpose, client).await?;
        let now = self.shared.auth.now();
        if !users
            .mark_email_verified(&user.id(), user.email(), now)
            .await?
        {
            // The account changed between the consume and the mark: the link was for the old
            // address.
            return Err(Error::StaleLink);
        }
        audit::email_verified(&user.id(), client.ip);
        let id = user.id();
        Ok(users.find_by_id(&id).await?.unwrap_or(user))
    }

    /// Mails a new verification link to `email`, if it is an account whose address is not
    /// verified yet. Answers the same in every case.
    ///
    /// # Errors
    /// [`Error::InputTooLong`] for an email over [`MAX_EMAIL_LEN`](crate::MAX_EMAIL_LEN) bytes;
    /// [`Error::Throttled`] when the request's address asked too often
    /// ([`MailLimits::per_client`](super::MailLimits::per_client));
    /// [`Error::Overloaded`] when the background queue is full;
    /// [`Error::ThrottleUnavailable`] if the throttle fails (and fails closed).
    pub async fn resend_verification(&self, email: &str, client: &ClientInfo) -> Result<()> {
        let email = self
            .admit_mail_request("email_verification", email, client)
            .await?;
        self.enqueue(Job::ResendVerification {
            email,
            ip: client.ip,
        })
    }

    /// The request-path part of every "mail me a link" operation: bound the email, count the
    /// request against its address's limit, log it. Returns the canonical email.
    pub(super) async fn admit_mail_request(
        &self,
        purpose: &'static str,
        email: &str,
        client: &ClientInfo,
    ) -> Result<String> {
        crate::authenticator::check_len(crate::Field::Email, email, crate::MAX_EMAIL_LEN)?;
        if let Some(ip) = client.ip {
            let key = RateKey::ip(purpose, ip);
            let limit = self.shared.limits.per_client;
            if let Some(retry_after) = self.shared.auth.count_rate(&key, limit, Some(ip)).await? {
                audit::account_mail_limited(purpose, "client", Some(ip));
                return Err(Error::Throttled { retry_after });
            }
        }
        audit::account_link_requested(purpose, client.ip);
        Ok(normalize_email(email))
    }

    /// Consumes a link's token of `purpose` against the user's current state; refusals are
    /// audited.
    pub(super) async fn consume(
        &self,
        token: &str,
        purpose: &OneTimePurpose,
        client: &ClientInfo,
    ) -> Result<(crate::one_time::Consumed, U::User)> {
        let users = self.shared.auth.users();
        match self
            .shared
            .one_time
            .consume_for_user(token, purpose, users)
            .await
        {
            Ok(done) => Ok(done),
            Err(error) => {
                let error = Error::from(error);
                let reason = match error {
                    Error::InvalidLink => Some("invalid"),
                    Error::StaleLink => Some("stale"),
                    _ => None,
                };
                if let Some(reason) = reason {
                    audit::account_link_refused(purpose.name(), reason, client.ip);
                }
                Err(error)
            }
        }
    }
}
