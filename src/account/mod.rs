//! Account recovery and verification: registration without enumeration, email verification,
//! forgot / reset password, email sign-in links and email change, by mail.
//!
//! [`Accounts`] puts three parts together over an [`Authenticator`]:
//! [one-time tokens](crate::one_time) (purpose-bound, single use, stored as digests, bound to
//! the account state they were issued for), a [`MailQueue`] (mail goes out off the request
//! path, rendered by a replaceable [`MailRenderer`](crate::mail::MailRenderer)) and the
//! [`Links`] of your pages. Your user store implements [`AccountStore`]; keycard's do.
//!
//! | operation | answer | what happens |
//! |---|---|---|
//! | [`register`](Accounts::register) | `Ok(())` for a new **and** a taken email | new: the user is created (unverified) and mailed a verification link; taken: the owner is mailed a notice with no token in it |
//! | [`verify_email`](Accounts::verify_email) | the user | the address is marked verified; the link works once |
//! | [`resend_verification`](Accounts::resend_verification) | `Ok(())` always | an unverified known address gets a new link |
//! | [`forgot_password`](Accounts::forgot_password) | `Ok(())` always | a known address gets a reset link |
//! | [`reset_password`](Accounts::reset_password) | the user | the policy is applied first (a refused password leaves the link usable); then the link is spent, the password replaced, every session ended, the other reset links retired, a notice mailed |
//! | [`request_sign_in_link`](Accounts::request_sign_in_link) | `Ok(())` always | a known address gets a sign-in link |
//! | [`sign_in_with_link`](Accounts::sign_in_with_link) | a [`Login`] | the link gives a session once |
//! | [`request_email_change`](Accounts::request_email_change) | `Ok(())` | needs the password; a confirm link to the new address, a notice to the old one |
//! | [`confirm_email_change`](Accounts::confirm_email_change) | the user | the change happens now, if the new address is still free |
//!
//! # No enumeration
//! Every operation a stranger can call with an email answers the same for a known and an
//! unknown one, in the same time: the work that differs (looking the user up, issuing a
//! token, rendering and sending mail) runs on a background task behind a bounded queue, and
//! the request path does the same rate-limit counting for both. Registration of a taken email
//! hashes the password as a new one does. An app that prefers to say "taken" at registration
//! can: [`AccountsBuilder::reveal_taken_email`].
//!
//! # Mail always goes to the stored address
//! Every mail goes to [`User::email`] as stored, never to the spelling in the request: a
//! look-alike typed at "forgot password" (a Kelvin sign `K` for `k`) finds the account by its
//! [canonical form](crate::normalize_email) and mails its owner, never the typist.
//!
//! # Limits
//! Requests that mail a stranger-chosen address count against two limits on the
//! authenticator's [throttle](crate::throttle) (so they hold across instances over a shared
//! throttle): per request address ([`MailLimits::per_client`], default 20 per hour; over it:
//! [`Error::Throttled`], 429) and per recipient ([`MailLimits::per_recipient`], default 5 mails
//! of one kind per hour; over it the mail is silently not sent, as telling would reveal
//! nothing useful and a 429 would tell the attacker they reached the victim). Nobody can
//! mail-bomb a user.
//!
//! # Links
//! The token goes in the URL fragment of a link to your page (see [`Links`]), which POSTs it
//! back; it never reaches a server log or a `Referer`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use keycard::account::{Accounts, Links};
//! use keycard::mail::{DefaultRenderer, LogMailer, MailQueue};
//! use keycard::one_time::{MemoryOneTimeStore, OneTimeTokens};
//! use keycard::{Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore};
//!
//! let auth = Authenticator::builder(MemoryUserStore::new(), MemoryTokenStore::new()).build();
//! let accounts = Accounts::builder(
//!     auth,
//!     OneTimeTokens::new(MemoryOneTimeStore::new()),
//!     MailQueue::spawn(LogMailer::new(), DefaultRenderer::new("Example")),
//!     Links::new("https://app.example.com")?,
//! )
//! .build();
//!
//! let client = ClientInfo::none().with_ip([192, 0, 2, 7].into());
//! // The same answer whether or not the address has an account.
//! accounts.register("ann@example.com", "correct horse battery staple", &client).await?;
//! accounts.register("ann@example.com", "another long passphrase", &client).await?;
//! accounts.forgot_password("nobody@example.com", &client).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::authenticator::Authenticator;
use crate::mail::MailQueue;
use crate::one_time::OneTimeTokens;
use crate::throttle::Limit;

#[cfg(doc)]
use crate::{error::Error, user::User, Login};

mod email_change;
mod jobs;
mod links;
mod password;
mod register;
mod sign_in;

pub use crate::{AccountStore, EmailChange};
pub use links::{InvalidLink, LinkKind, Links};
pub use password::PasswordReset;

use jobs::Job;

/// How many background jobs (mail lookups) may wait at once; beyond it, requests that would
/// add one answer 503 with `Retry-After` (`Error::Overloaded`).
pub const DEFAULT_JOB_QUEUE: usize = 1024;

/// The rate limits on requests that send mail (see the [module docs](self#limits)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailLimits {
    /// Requests per client address (IPv6: per `/64`) for each kind of link by mail.
    /// Default: 20 per hour.
    pub per_client: Limit,
    /// Mails of one kind per recipient address. Default: 5 per hour.
    pub per_recipient: Limit,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self {
            per_client: Limit::new(20, Duration::from_secs(3600)),
            per_recipient: Limit::new(5, Duration::from_secs(3600)),
        }
    }
}

impl MailLimits {
    /// Limits with these two values.
    pub fn new(per_client: Limit, per_recipient: Limit) -> Self {
        Self {
            per_client,
            per_recipient,
        }
    }
}

/// The account flows: registration without enumeration, verification, forgot / reset
/// password, sign-in links and email change (see the [module docs](self)). Cheap to clone.
pub struct Accounts<U: AccountStore> {
    shared: Arc<Shared<U>>,
    jobs: mpsc::Sender<Job>,
}

impl<U: AccountStore> Clone for Accounts<U> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            jobs: self.jobs.clone(),
        }
    }
}

/// What both the request path and the background worker use.
pub(crate) struct Shared<U: AccountStore> {
    pub(crate) auth: Authenticator<U>,
    pub(crate) one_time: OneTimeTokens,
    pub(crate) mail: MailQueue,
    pub(crate) links: Links,
    pub(crate) limits: MailLimits,
    pub(crate) reveal_taken_email: bool,
}

/// Configures [`Accounts`]; start with [`Accounts::builder`].
#[must_use]
pub struct AccountsBuilder<U: AccountStore> {
    shared: Shared<U>,
    job_queue: usize,
}

impl<U: AccountStore + 'static> Accounts<U> {
    /// The flows over `auth` (its user store must be an [`AccountStore`]; its throttle
    /// counts the mail limits, and its clock should be the one `one_time` was given), with
    /// one-time tokens from `one_time`, mail through `mail`, and links under `links`.
    pub fn builder(
        auth: Authenticator<U>,
        one_time: OneTimeTokens,
        mail: MailQueue,
        links: Links,
    ) -> AccountsBuilder<U> {
        AccountsBuilder {
            shared: Shared {
                auth,
                one_time,
                mail,
                links,
                limits: MailLimits::default(),
                reveal_taken_email: false,
            },
            job_queue: DEFAULT_JOB_QUEUE,
        }
    }

    /// The authenticator underneath.
    pub fn authenticator(&self) -> &Authenticator<U> {
        &self.shared.auth
    }

    /// The one-time tokens.
    pub fn one_time_tokens(&self) -> &OneTimeTokens {
        &self.shared.one_time
    }

    /// The links mails carry.
    pub fn links(&self) -> &Links {
        &self.shared.links
    }

    /// The mail queue.
    pub fn mail_queue(&self) -> &MailQueue {
        &self.shared.mail
    }

    /// Waits until every request made so far has had its mail handed to the mailer (for
    /// tests and graceful shutdown).
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        if self.jobs.send(Job::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
        self.shared.mail.flush().await;
    }

    /// Purges expired sessions ([`Authenticator::expire`]) and expired one-time tokens, and
    /// returns how many of each went.
    ///
    /// # Errors
    /// [`Error::Store`] if a store fails.
    pub async fn expire(&self) -> crate::Result<(u64, u64)> {
        let sessions = self.shared.auth.expire().await?;
        let links = self.shared.one_time.purge_expired().await?;
        Ok((sessions, links))
    }

    /// Runs [`expire`](Self::expire) every `every` on a background task (instead of
    /// [`Authenticator::spawn_expiry_task`], which purges sessions only).
    pub fn spawn_expiry_task(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(error) = this.expire().await {
                    tracing::warn!(error = %crate::error::chain(&error), "keycard: purging expired sessions and links failed");
                }
            }
        })
    }

    /// Queues a background job, or answers 503 when the queue is full.
    fn enqueue(&self, job: Job) -> crate::Result<()> {
        self.jobs
            .try_send(job)
            .map_err(|_| crate::Error::Overloaded {
                retry_after: Duration::from_secs(1),
            })
    }
}

impl<U: AccountStore + 'static> AccountsBuilder<U> {
    /// Registration of a taken email fails with [`Error::EmailTaken`] (409) instead of
    /// answering as for a new one. Default: `false`, because telling "taken" apart lets anyone
    /// test which emails have accounts.
    pub fn reveal_taken_email(mut self, reveal: bool) -> Self {
        self.shared.reveal_taken_email = reveal;
        self
    }

    /// The limits on requests that send mail. Default: [`MailLimits::default`].
    pub fn mail_limits(mut self, limits: MailLimits) -> Self {
        self.shared.limits = limits;
        self
    }

    /// How many background jobs may wait at once. Default: [`DEFAULT_JOB_QUEUE`].
    pub fn job_queue(mut self, capacity: usize) -> Self {
        self.job_queue = capacity.max(1);
        self
    }

    /// Builds the flows and starts their background worker (on the current Tokio runtime).
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn build(self) -> Accounts<U> {
        let shared = Arc::new(self.shared);
        let (jobs, queue) = mpsc::channel(self.job_queue);
        tokio::spawn(jobs::run(Arc::clone(&shared), queue));
        Accounts { shared, jobs }
    }
}

impl<U: AccountStore> fmt::Debug for Accounts<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("links", &self.shared.links)
            .field("limits", &self.shared.limits)
            .field("reveal_taken_email", &self.shared.reveal_taken_email)
            .finish_non_exhaustive()
    }
}

impl<U: AccountStore> fmt::Debug for AccountsBuilder<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountsBuilder")
            .field("links", &self.shared.links)
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}
