//! The background worker: the part of each flow whose work would tell a known email from an
//! unknown one (the lookup, the token, the mail) runs here, off the request path.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{AccountStore, LinkKind, Shared};
use crate::audit;
use crate::mail::AccountMail;
use crate::one_time::{Binding, OneTimePurpose};
use crate::throttle::RateKey;
use crate::user::{normalize_email, User, UserId};

/// One piece of deferred work.
pub(crate) enum Job {
    /// Mail a verification link to a user just registered.
    Verification { user: UserId, ip: Option<IpAddr> },
    /// Someone registered with `email` (canonical), which has an account: tell its owner.
    RegistrationNotice { email: String, ip: Option<IpAddr> },
    /// Mail a new verification link to `email` (canonical), if it is an unverified account.
    ResendVerification { email: String, ip: Option<IpAddr> },
    /// Mail a reset link to `email` (canonical), if it has an account.
    PasswordReset { email: String, ip: Option<IpAddr> },
    /// Mail a sign-in link to `email` (canonical), if it has an account.
    SignIn { email: String, ip: Option<IpAddr> },
    /// Answer once every job before this one is done.
    Flush(oneshot::Sender<()>),
}

/// Runs jobs one at a time until every sender is gone.
pub(super) async fn run<U: AccountStore>(shared: Arc<Shared<U>>, mut queue: mpsc::Receiver<Job>) {
    while let Some(job) = queue.recv().await {
        if let Job::Flush(done) = job {
            let _ = done.send(());
            continue;
        }
        if let Err(error) = handle(&shared, job).await {
            tracing::warn!(error = %crate::error::chain(&error), "keycard: an account mail could not be prepared");
        }
    }
}

async fn handle<U: AccountStore>(shared: &Shared<U>, job: Job) -> crate::Result<()> {
    let users = shared.auth.users();
    match job {
        Job::Verification { user, ip } => {
            if let Some(user) = users.find_by_id(&user).await? {
                send_verification(shared, &user, ip).await?;
            }
        }
        Job::ResendVerification { email, ip } => {
            if let Some(user) = users.find_by_email(&email).await? {
                send_verification(shared, &user, ip).await?;
            }
        }
        Job::RegistrationNotice { email, ip } => {
            let Some(user) = users.find_by_email(&email).await? else {
                return Ok(());
            };
            if recipient_allows(shared, "mail:registration_notice", &user, ip).await? {
                let message = AccountMail::RegistrationAttempt {
                    login_url: shared.links.page(LinkKind::Login),
                    reset_url: shared.links.page(LinkKind::ForgotPassword),
                };
                send(shared, &user, message);
            }
        }
        Job::PasswordReset { email, ip } => {
            let Some(user) = users.find_by_email(&email).await? else {
                return Ok(());
            };
            if recipient_allows(shared, "mail:password_reset", &user, ip).await? {
                let purpose = OneTimePurpose::PasswordReset;
                let (link, expires_in) =
                    issue_link(shared, &user, &purpose, LinkKind::ResetPassword).await?;
                send(
                    shared,
                    &user,
                    AccountMail::PasswordReset { link, expires_in },
                );
            }
        }
        Job::SignIn { email, ip } => {
            let Some(user) = users.find_by_email(&email).await? else {
                return Ok(());
            };
            if recipient_allows(shared, "mail:email_sign_in", &user, ip).await? {
                let purpose = OneTimePurpose::EmailSignIn;
                let (link, expires_in) =
                    issue_link(shared, &user, &purpose, LinkKind::SignIn).await?;
                send(shared, &user, AccountMail::SignInLink { link, expires_in });
            }
        }
        Job::Flush(_) => {}
    }
    Ok(())
}

/// Mails `user` a verification link, unless the address is verified already.
async fn send_verification<U: AccountStore>(
    shared: &Shared<U>,
    user: &U::User,
    ip: Option<IpAddr>,
) -> crate::Result<()> {
    if user.email_verified() {
        return Ok(());
    }
    if recipient_allows(shared, "mail:email_verification", user, ip).await? {
        let purpose = OneTimePurpose::EmailVerification;
        let (link, expires_in) = issue_link(shared, user, &purpose, LinkKind::VerifyEmail).await?;
        send(shared, user, AccountMail::VerifyEmail { link, expires_in });
    }
    Ok(())
}

/// Issues a token of `purpose` bound to the user as stored, and its link.
pub(super) async fn issue_link<U: AccountStore>(
    shared: &Shared<U>,
    user: &U::User,
    purpose: &OneTimePurpose,
    kind: LinkKind,
) -> crate::Result<(String, std::time::Duration)> {
    let issued = shared
        .one_time
        .issue(&user.id(), purpose, Binding::for_user(purpose, user), None)
        .await?;
    let link = shared.links.link(kind, issued.token.expose_secret());
    Ok((link, shared.one_time.lifetime(purpose)))
}

/// Counts one mail of `bucket` to the user's address; `false` (and an audit event) when the
/// address had its share this hour.
pub(super) async fn recipient_allows<U: AccountStore>(
    shared: &Shared<U>,
    bucket: &'static str,
    user: &U::User,
    ip: Option<IpAddr>,
) -> crate::Result<bool> {
    let key = RateKey::new(bucket, &normalize_email(user.email()));
    let refused = shared
        .auth
        .count_rate(&key, shared.limits.per_recipient, ip)
        .await?;
    if refused.is_some() {
        audit::account_mail_limited(bucket.trim_start_matches("mail:"), "recipient", ip);
    }
    Ok(refused.is_none())
}

/// Queues `message` to the user's stored address (never a spelling from a request).
pub(super) fn send<S: AccountStore>(shared: &Shared<S>, user: &S::User, message: AccountMail) {
    if shared.mail.enqueue(user.email(), message).is_err() {
        tracing::warn!(user_id = %user.id(), "keycard: the mail queue is full; an account mail was dropped");
    }
}
