//! Email sign-in links (passwordless).

use super::jobs::{self, Job};
use super::{AccountStore, Accounts};
use crate::amr::AuthMethod;
use crate::audit;
use crate::authenticator::{Login, LoginOptions};
use crate::error::Result;
use crate::mail::AccountMail;
use crate::mfa::SecondFactorProof;
use crate::one_time::OneTimePurpose;
use crate::session::ClientInfo;
use crate::user::User;

impl<U: AccountStore + 'static> Accounts<U> {
    /// Mails a sign-in link to `email` if it has an account. Answers the same, in the same
    /// time, for known and unknown emails (the lookup and the mail happen on the background
    /// worker). The link lives 15 minutes by default and dies when the password or the email
    /// changes.
    ///
    /// # Errors
    /// As [`forgot_password`](Self::forgot_password).
    pub async fn request_sign_in_link(&self, email: &str, client: &ClientInfo) -> Result<()> {
        let email = self
            .admit_mail_request("email_sign_in", email, client)
            .await?;
        self.enqueue(Job::SignIn {
            email,
            ip: client.ip,
        })
    }

    /// Exchanges a sign-in link's token for a session, once. Following the link proves the
    /// mailbox, so the address is marked verified (a
    /// [`require_verified_email`](crate::AuthenticatorBuilder::require_verified_email) login
    /// works from then on).
    ///
    /// # Errors
    /// [`Error::InvalidLink`](crate::Error::InvalidLink) /
    /// [`Error::StaleLink`](crate::Error::StaleLink) for a token that is not (or no longer)
    /// valid; as [`Authenticator::login`](crate::Authenticator::login) for starting the
    /// session (the session cap, a store failure).
    pub async fn sign_in_with_link(
        &self,
        token: &str,
        client: ClientInfo,
    ) -> Result<Login<U::User>> {
        let auth = &self.shared.auth;
        let users = auth.users();
        let (_, mut user) = self
            .consume(token, &OneTimePurpose::EmailSignIn, &client)
            .await?;
        let id = user.id();
        if !user.email_verified() {
            users
                .mark_email_verified(&id, user.email(), auth.now())
                .await?;
            if let Some(fresh) = users.find_by_id(&id).await? {
                user = fresh;
            }
        }
        audit::sign_in_link_used(&id, client.ip);
        auth.open_session(
            user,
            client,
            LoginOptions::default(),
            crate::AuthMethod::EmailLink,
        )
        .await
    }

    /// The second step of a login ([`Authenticator::complete_login`](crate::Authenticator::complete_login)),
    /// and, when a recovery code was spent, a "a recovery code was used" mail to the user
    /// (off the request path), so that a stolen code is noticed.
    ///
    /// # Errors
    /// As [`Authenticator::complete_login`](crate::Authenticator::complete_login).
    pub async fn complete_login(
        &self,
        pending_token: &str,
        proof: SecondFactorProof<'_>,
        client: ClientInfo,
    ) -> Result<Login<U::User>> {
        let auth = &self.shared.auth;
        let login = auth.complete_login(pending_token, proof, client).await?;
        if login.session.amr.contains(AuthMethod::RecoveryCode) {
            let codes_left = auth
                .second_factor_status(&login.session)
                .await
                .map_or(0, |status| status.recovery_codes_left);
            jobs::send(
                &self.shared,
                &login.user,
                AccountMail::RecoveryCodeUsed { codes_left },
            );
        }
        Ok(login)
    }
}
