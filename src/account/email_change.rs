//! Changing a logged-in user's email address, confirmed from the new address.

use super::jobs;
use super::{AccountStore, Accounts, EmailChange, LinkKind};
use crate::audit;
use crate::email::check_email;
use crate::error::{Error, Result};
use crate::mail::AccountMail;
use crate::one_time::{Binding, OneTimePurpose};
use crate::session::ClientInfo;
use crate::throttle::RateKey;
use crate::user::{normalize_email, User};
use crate::Subject;

impl<U: AccountStore + 'static> Accounts<U> {
    /// Asks to change `user`'s address to `new_email`, proving the password again (counted
    /// under the request's address, as
    /// [`verify_password`](crate::Authenticator::verify_password) does).
    ///
    /// Nothing changes yet: a confirm link goes to the new address (the token carries it,
    /// bound to the account's current email and password) and a notice to the old one. The
    /// change happens at [`confirm_email_change`](Self::confirm_email_change). Whether the new
    /// address is free is checked then, not now, so this answers the same for a free and a
    /// taken address. At most [`MailLimits::per_recipient`](super::MailLimits::per_recipient)
    /// confirm mails go to one address per hour.
    ///
    /// # Errors
    /// [`Error::InvalidEmail`] for a new address [`check_email`] refuses;
    /// [`Error::IncorrectPassword`] for a wrong password; [`Error::Throttled`] when the
    /// re-verification limits are reached; [`Error::Store`] if a store fails.
    pub async fn request_email_change<S: Subject + ?Sized>(
        &self,
        subject: &S,
        new_email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let auth = &self.shared.auth;
        auth.require_interactive(subject)?;
        let new_email = check_email(new_email).map_err(Error::InvalidEmail)?;
        let user = auth.verify_password(subject, password, client).await?;
        let id = user.id();
        audit::email_change_requested(&id, client.ip);
        if normalize_email(&new_email) == normalize_email(user.email()) {
            return Ok(());
        }
        let key = RateKey::new("mail:email_change", &normalize_email(&new_email));
        if auth
            .count_rate(&key, self.shared.limits.per_recipient, client.ip)
            .await?
            .is_some()
        {
            audit::account_mail_limited("email_change", "recipient", client.ip);
            return Ok(());
        }
        let purpose = OneTimePurpose::EmailChange;
        let issued = self
            .shared
            .one_time
            .issue(
                &id,
                &purpose,
                Binding::for_user(&purpose, &user),
                Some(&new_email),
            )
            .await?;
        let link = self
            .shared
            .links
            .link(LinkKind::ConfirmEmail, issued.token.expose_secret());
        let expires_in = self.shared.one_time.lifetime(&purpose);
        let confirm = AccountMail::ConfirmEmailChange {
            link,
            new_email: new_email.clone(),
            expires_in,
        };
        if self.shared.mail.enqueue(&new_email, confirm).is_err() {
            tracing::warn!(user_id = %id, "keycard: the mail queue is full; an email change confirmation was dropped");
        }
        jobs::send(
            &self.shared,
            &user,
            AccountMail::EmailChangeRequested { new_email },
        );
        Ok(())
    }

    /// Confirms an email change with the link mailed to the new address: the address changes
    /// now (and counts as verified), if no other account took it meanwhile. The old address
    /// is told. Links issued for the old address (reset, sign-in, verification) die with it.
    ///
    /// # Errors
    /// [`Error::InvalidLink`] / [`Error::StaleLink`] for a token that is not (or no longer)
    /// valid (the password or email changed since); [`Error::EmailTaken`] when another
    /// account has the address now (the token is spent; ask again with another address);
    /// [`Error::Store`] if a store fails.
    pub async fn confirm_email_change(&self, token: &str, client: &ClientInfo) -> Result<U::User> {
        let auth = &self.shared.auth;
        let users = auth.users();
        let purpose = OneTimePurpose::EmailChange;
        let (consumed, user) = self.consume(token, &purpose, client).await?;
        let Some(new_email) = consumed.payload else {
            return Err(Error::InvalidLink);
        };
        let id = user.id();
        match users.change_email(&id, &new_email, auth.now()).await? {
            EmailChange::Changed => {}
            EmailChange::Taken => return Err(Error::EmailTaken),
            _ => return Err(Error::InvalidLink),
        }
        for purpose in [
            OneTimePurpose::EmailChange,
            OneTimePurpose::PasswordReset,
            OneTimePurpose::EmailSignIn,
            OneTimePurpose::EmailVerification,
        ] {
            self.shared.one_time.retire_all(&id, &purpose).await?;
        }
        audit::email_changed(&id, client.ip);
        // To the old address, as stored before the change.
        jobs::send(
            &self.shared,
            &user,
            AccountMail::EmailChanged {
                new_email: new_email.clone(),
            },
        );
        Ok(users.find_by_id(&id).await?.unwrap_or(user))
    }
}
