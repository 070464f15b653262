//! Mail: the messages keycard's account flows send, how they are rendered, and how they are
//! sent off the request path.
//!
//! - [`AccountMail`] is each message as a typed value (verify your email, reset your password,
//!   a sign-in link, an email change, ...); [`MailRenderer`] turns one into a subject, a text
//!   part and an optional HTML part ([`RenderedMail`]). [`DefaultRenderer`] writes plain
//!   English; replace it for localisation or branding.
//! - [`Mailer`] sends one rendered [`OutgoingMail`]: [`SmtpMailer`] (feature `smtp`) over SMTP
//!   with TLS or STARTTLS, [`LogMailer`] to the terminal for a demo, or your own (an HTTP mail
//!   API, a queue of your own).
//! - [`MailQueue`] sends mail **off the request path**: `enqueue` renders the message and hands
//!   it to a bounded queue drained by one background task, and never waits for the mail
//!   server, so a response's time does not depend on whether, or how fast, a mail went out.
//!
//! Links in mail carry one-time tokens: they are secrets. No `Debug` output of this module
//! shows a link or a body ([`AccountMail`], [`OutgoingMail`] and [`RenderedMail`] redact
//! them), and the queue's audit events (`mail.dropped`, `mail.failed`, see
//! [`audit`](crate::audit)) name only the recipient's domain.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use keycard::mail::{AccountMail, DefaultRenderer, LogMailer, MailQueue};
//!
//! // In production: `SmtpMailer::from_url("smtps://user:pass@smtp.example.com", "Example <no-reply@example.com>")?`.
//! let queue = MailQueue::spawn(LogMailer::new(), DefaultRenderer::new("Example"));
//! queue.enqueue(
//!     "ann@example.com",
//!     AccountMail::PasswordReset {
//!         link: "https://example.com/reset#token=kcot_...".into(),
//!         expires_in: Duration::from_secs(30 * 60),
//!     },
//! )?;
//! queue.flush().await; // tests and graceful shutdown only: requests never wait for mail
//! # Ok::<(), keycard::mail::MailQueueFull>(())
//! # }).unwrap();
//! ```
//!
//! [`SmtpMailer`]: https://docs.rs/keycard/latest/keycard/mail/struct.SmtpMailer.html

use std::fmt;
use std::sync::Arc;

use crate::async_trait;

mod messages;
mod queue;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
mod smtp;

pub use messages::{AccountMail, DefaultRenderer, MailRenderer, RenderedMail};
pub use queue::{MailQueue, MailQueueBuilder, MailQueueFull};
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub use smtp::SmtpMailer;

/// One rendered mail, ready to send: the recipient, the subject, a plain-text part and an
/// optional HTML part.
///
/// `Debug` shows the recipient, the subject and the bodies' lengths, never the bodies: they
/// carry one-time tokens.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutgoingMail {
    /// The recipient's address: the address stored for the user, never the one typed.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text part (always sent).
    pub text: String,
    /// The HTML part, sent as an alternative to the text part when present.
    pub html: Option<String>,
}

impl OutgoingMail {
    /// A mail with a text part only.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            text: text.into(),
            html: None,
        }
    }

    /// This mail with an HTML part beside its text part.
    #[must_use]
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// The mail of `rendered` to `to`.
    pub fn from_rendered(to: impl Into<String>, rendered: RenderedMail) -> Self {
        Self {
            to: to.into(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        }
    }
}

impl fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text_len", &self.text.len())
            .field("html_len", &self.html.as_ref().map(String::len))
            .finish()
    }
}

/// Why a mail was not sent.
///
/// Each variant carries a description, never a body. A [`Mailer`] of your own returns these
/// too: build them with the variant's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The recipient or the sender is not a valid email address.
    #[error("invalid email address {address:?}: {reason}; check the recipient stored for the user and the configured From address")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The mail server answered and refused the mail (an SMTP 4xx or 5xx reply).
    #[error("the mail server refused the mail: {reason}; check the From address, the recipient and the server's relay and authentication settings")]
    Rejected {
        /// The server's reply.
        reason: String,
    },
    /// The mail server could not be reached or stopped answering: connection refused, TLS
    /// handshake failed, I/O error, time-out.
    #[error("the mail server is unavailable: {reason}; check that it is running and that the mail URL's host and port are right")]
    Unavailable {
        /// What failed.
        reason: String,
    },
    /// The mailer's configuration is wrong: an unparsable URL, an unknown scheme or option,
    /// plain SMTP to a host that is not on loopback.
    #[error("invalid mail configuration: {reason}")]
    Config {
        /// What is wrong and how to fix it.
        reason: String,
    },
}

/// Sends one rendered mail.
///
/// Implement it for a mail service of your own (put `#[keycard::async_trait]` on the impl).
/// Return [`MailError::Unavailable`] for failures worth one retry (the server could not be
/// reached): [`MailQueue`] retries those once.
#[async_trait]
pub trait Mailer: Send + Sync + fmt::Debug {
    /// Sends `mail`.
    ///
    /// # Errors
    /// A [`MailError`] saying why the mail was not sent.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}

#[async_trait]
impl<M: Mailer + ?Sized> Mailer for Arc<M> {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        (**self).send(mail).await
    }
}

#[async_trait]
impl<M: Mailer + ?Sized> Mailer for Box<M> {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        (**self).send(mail).await
    }
}

/// Prints every mail's recipient, subject and text part to stderr: the in-terminal demo.
///
/// **Not for production**: the text part holds the link with its one-time token, so whoever
/// reads the process's stderr (a log collector) can reset passwords and sign in. Use
/// [`SmtpMailer`] (feature `smtp`) or a [`Mailer`] of your own.
///
/// [`SmtpMailer`]: https://docs.rs/keycard/latest/keycard/mail/struct.SmtpMailer.html
#[derive(Debug, Default, Clone)]
pub struct LogMailer;

impl LogMailer {
    /// A mailer that prints to stderr.
    pub fn new() -> Self {
        Self
    }
}

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        eprintln!(
            "--- mail to {}\nSubject: {}\n\n{}\n--- end of mail",
            mail.to, mail.subject, mail.text
        );
        Ok(())
    }
}

/// The domain of `address` for logs and audit events: lower-cased, `-` when there is none,
/// `invalid` when it holds anything but letters, digits, `.` and `-` (so it cannot forge a
/// log line).
pub(crate) fn recipient_domain(address: &str) -> String {
    match address.rsplit_once('@') {
        None => "-".to_owned(),
        Some((_, domain))
            if !domain.is_empty()
                && domain.len() <= 255
                && domain
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '.' || c == '-') =>
        {
            domain.to_lowercase()
        }
        Some(_) => "invalid".to_owned(),
    }
}
