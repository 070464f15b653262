//! Forgot / reset password.

use super::jobs::{self, Job};
use super::{AccountStore, Accounts};
use crate::audit;
use crate::error::{Error, Field, Result};
use crate::mail::AccountMail;
use crate::one_time::OneTimePurpose;
use crate::session::ClientInfo;
use crate::user::User;

/// What [`Accounts::reset_password`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct PasswordReset<T> {
    /// The user, with the new password hash.
    pub user: T,
    /// How many sessions of the user were ended.
    pub sessions_ended: u64,
}

impl<U: AccountStore + 'static> Accounts<U> {
    /// "Forgot password": mails a reset link to `email` if it has an account. Answers the
    /// same, in the same time, for known and unknown emails: the lookup and the mail happen
    /// on the background worker.
    ///
    /// The link's token is bound to the account's password hash and email: it dies when
    /// either changes, expires after 30 minutes by default
    /// ([`OneTimeTokens::with_lifetime`](crate::one_time::OneTimeTokens::with_lifetime)),
    /// and at most 3 are outstanding per user (a fourth retires the oldest). At most
    /// [`MailLimits::per_recipient`](super::MailLimits::per_recipient) reset mails go to one
    /// address per hour, whoever asks.
    ///
    /// # Errors
    /// [`Error::InputTooLong`] for an email over [`MAX_EMAIL_LEN`](crate::MAX_EMAIL_LEN) bytes;
    /// [`Error::Throttled`] when the request's address asked too often;
    /// [`Error::Overloaded`] when the background queue is full;
    /// [`Error::ThrottleUnavailable`] if the throttle fails (and fails closed).
    pub async fn forgot_password(&self, email: &str, client: &ClientInfo) -> Result<()> {
        let email = self
            .admit_mail_request("password_reset", email, client)
            .await?;
        self.enqueue(Job::PasswordReset {
            email,
            ip: client.ip,
        })
    }

    /// Sets a new password with a reset link's token.
    ///
    /// In order: the token is checked (not spent) and the new password held to the
    /// [`PasswordPolicy`](crate::PasswordPolicy), so a refused password leaves the link
    /// usable; the password is hashed under the request address's hashing bound; then the
    /// token is spent (of two concurrent resets with one token, exactly one wins), the hash
    /// replaced, every other reset link of the user retired, **every session of the user
    /// ended**, the address marked verified (the link proved the mailbox), a "your password
    /// was changed" notice mailed, and a `password.reset` audit event emitted.
    ///
    /// # Errors
    /// [`Error::InvalidLink`] / [`Error::StaleLink`] for a token that is not (or no longer)
    /// valid; [`Error::WeakPassword`] or [`Error::InputTooLong`] for a refused password;
    /// [`Error::Throttled`] / [`Error::Overloaded`] when hashing is bounded; [`Error::Store`]
    /// if a store fails.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<PasswordReset<U::User>> {
        let auth = &self.shared.auth;
        let users = auth.users();
        let purpose = OneTimePurpose::PasswordReset;
        crate::authenticator::check_len(Field::Password, new_password, crate::MAX_PASSWORD_LEN)?;
        let pending = match self.shared.one_time.inspect(token, &purpose).await {
            Ok(pending) => pending,
            Err(error) => {
                audit::account_link_refused(purpose.name(), "invalid", client.ip);
                return Err(error.into());
            }
        };
        let Some(user) = users.find_by_id(&pending.user_id).await? else {
            audit::account_link_refused(purpose.name(), "invalid", client.ip);
            return Err(Error::InvalidLink);
        };
        auth.password_policy()
            .check(new_password, Some(user.email()))
            .map_err(Error::WeakPassword)?;
        let phc = auth.hash_for_client(new_password, client.ip).await?;
        // Spent against the account as it is now: a password or email change since the
        // lookup above makes it stale.
        let (_, user) = self.consume(token, &purpose, client).await?;
        let id = user.id();
        users.set_password_hash(&id, &phc).await?;
        self.shared.one_time.retire_all(&id, &purpose).await?;
        let sessions_ended = auth.logout_all(&id).await?;
        let now = auth.now();
        let _ = users.mark_email_verified(&id, user.email(), now).await?;
        audit::password_reset(&id, sessions_ended, client.ip);
        jobs::send(&self.shared, &user, AccountMail::PasswordChanged);
        let user = users.find_by_id(&id).await?.unwrap_or(user);
        Ok(PasswordReset {
            user,
            sessions_ended,
        })
    }
}
