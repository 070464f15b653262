//! The messages keycard's account flows send, and their default rendering.

use std::fmt;
use std::time::Duration;

use html_escape::{encode_double_quoted_attribute, encode_text};

/// The messages keycard's account flows send. A link is the full URL the user follows,
/// one-time token included.
///
/// `Debug` shows `<redacted>` in place of every link that may hold a token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountMail {
    /// Confirm that this address is yours (after registration, or on request).
    VerifyEmail {
        /// The verification link.
        link: String,
        /// How long the link stays valid.
        expires_in: Duration,
    },
    /// Someone tried to register with an address that has an account. Carries NO token: only
    /// plain links to the login and forgot-password pages.
    RegistrationAttempt {
        /// The login page.
        login_url: String,
        /// The forgot-password page (no token: the user asks for a reset there).
        reset_url: String,
    },
    /// Reset your password.
    PasswordReset {
        /// The reset link.
        link: String,
        /// How long the link stays valid.
        expires_in: Duration,
    },
    /// Your password was changed (after a reset or a change).
    PasswordChanged,
    /// Sign in without a password.
    SignInLink {
        /// The sign-in link.
        link: String,
        /// How long the link stays valid.
        expires_in: Duration,
    },
    /// To the NEW address: confirm the change.
    ConfirmEmailChange {
        /// The confirmation link.
        link: String,
        /// The new address (the one this mail goes to).
        new_email: String,
        /// How long the link stays valid.
        expires_in: Duration,
    },
    /// To the OLD address: a change to `new_email` was requested.
    EmailChangeRequested {
        /// The address the change was requested to.
        new_email: String,
    },
    /// To the OLD address after the change went through.
    EmailChanged {
        /// The account's address from now on.
        new_email: String,
    },
    /// A recovery code was used to sign in: if it was not the user, the account is at risk.
    RecoveryCodeUsed {
        /// How many unused recovery codes are left.
        codes_left: u32,
    },
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for AccountMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VerifyEmail { expires_in, .. } => f
                .debug_struct("VerifyEmail")
                .field("link", &REDACTED)
                .field("expires_in", expires_in)
                .finish(),
            Self::RegistrationAttempt {
                login_url,
                reset_url,
            } => f
                .debug_struct("RegistrationAttempt")
                .field("login_url", login_url)
                .field("reset_url", reset_url)
                .finish(),
            Self::PasswordReset { expires_in, .. } => f
                .debug_struct("PasswordReset")
                .field("link", &REDACTED)
                .field("expires_in", expires_in)
                .finish(),
            Self::PasswordChanged => f.write_str("PasswordChanged"),
            Self::RecoveryCodeUsed { codes_left } => f
                .debug_struct("RecoveryCodeUsed")
                .field("codes_left", codes_left)
                .finish(),
            Self::SignInLink { expires_in, .. } => f
                .debug_struct("SignInLink")
                .field("link", &REDACTED)
                .field("expires_in", expires_in)
                .finish(),
            Self::ConfirmEmailChange {
                new_email,
                expires_in,
                ..
            } => f
                .debug_struct("ConfirmEmailChange")
                .field("link", &REDACTED)
                .field("new_email", new_email)
                .field("expires_in", expires_in)
                .finish(),
            Self::EmailChangeRequested { new_email } => f
                .debug_struct("EmailChangeRequested")
                .field("new_email", new_email)
                .finish(),
            Self::EmailChanged { new_email } => f
                .debug_struct("EmailChanged")
                .field("new_email", new_email)
                .finish(),
        }
    }
}

/// Renders an [`AccountMail`] into a subject, a text part and an optional HTML part.
///
/// [`DefaultRenderer`] writes plain English; implement this for localisation or branding.
/// A renderer must escape whatever it puts into HTML, and should keep each link verbatim on a
/// line of its own in the text part (mail clients then make it clickable, and nothing wraps
/// it).
pub trait MailRenderer: Send + Sync + fmt::Debug {
    /// The mail for `message`.
    fn render(&self, message: &AccountMail) -> RenderedMail;
}

impl<R: MailRenderer + ?Sized> MailRenderer for std::sync::Arc<R> {
    fn render(&self, message: &AccountMail) -> RenderedMail {
        (**self).render(message)
    }
}

impl<R: MailRenderer + ?Sized> MailRenderer for Box<R> {
    fn render(&self, message: &AccountMail) -> RenderedMail {
        (**self).render(message)
    }
}

/// A rendered message: subject, text part and optional HTML part, without a recipient.
///
/// `Debug` shows the subject and the bodies' lengths, never the bodies.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderedMail {
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part, if any.
    pub html: Option<String>,
}

impl RenderedMail {
    /// A rendering with a text part only.
    pub fn new(subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            text: text.into(),
            html: None,
        }
    }

    /// This rendering with an HTML part.
    #[must_use]
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }
}

impl fmt::Debug for RenderedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMail")
            .field("subject", &self.subject)
            .field("text_len", &self.text.len())
            .field("html_len", &self.html.as_ref().map(String::len))
            .finish()
    }
}

/// Plain English text and a simple HTML part, naming your application.
///
/// The text part carries each link verbatim on a line of its own. The HTML part escapes
/// everything it interpolates (the application's name, addresses, links), with the
/// `html-escape` crate.
#[derive(Debug, Clone)]
pub struct DefaultRenderer {
    app_name: String,
}

impl DefaultRenderer {
    /// A renderer whose mails name `app_name` ("Reset your Example password").
    pub fn new(app_name: impl Into<String>) -> Self {
        Self {
            app_name: app_name.into(),
        }
    }
}

/// One paragraph or link of a mail, rendered into both parts.
enum Block<'a> {
    Para(String),
    Link(&'a str),
}

impl MailRenderer for DefaultRenderer {
    fn render(&self, message: &AccountMail) -> RenderedMail {
        let app = self.app_name.as_str();
        let ignore = "If you did not ask for this, ignore this mail: nothing changes.";
        let (subject, blocks) = match message {
            AccountMail::VerifyEmail { link, expires_in } => (
                format!("Verify your email address for {app}"),
                vec![
                    Block::Para(format!(
                        "Follow this link to verify your email address for {app}:"
                    )),
                    Block::Link(link),
                    Block::Para(format!("The link expires in {}.", human(*expires_in))),
                    Block::Para(ignore.to_owned()),
                ],
            ),
            AccountMail::RegistrationAttempt {
                login_url,
                reset_url,
            } => (
                format!("Someone tried to register at {app} with your address"),
                vec![
                    Block::Para(format!(
                        "Someone tried to create a {app} account with this email address, \
                         which already has one. If it was you, log in:"
                    )),
                    Block::Link(login_url),
                    Block::Para("or, if you forgot your password, reset it:".to_owned()),
                    Block::Link(reset_url),
                    Block::Para("If it was not you, ignore this mail: your account is unchanged.".to_owned()),
                ],
            ),
            AccountMail::PasswordReset { link, expires_in } => (
                format!("Reset your {app} password"),
                vec![
                    Block::Para(format!(
                        "Follow this link to choose a new password for your {app} account:"
                    )),
                    Block::Link(link),
                    Block::Para(format!(
                        "The link expires in {} and works once.",
                        human(*expires_in)
                    )),
                    Block::Para(
                        "If you did not ask for this, ignore this mail: your password stays as it is."
                            .to_owned(),
                    ),
                ],
            ),
            AccountMail::PasswordChanged => (
                format!("Your {app} password was changed"),
                vec![
                    Block::Para(format!(
                        "The password of your {app} account was just changed, and every \
                         session was signed out."
                    )),
                    Block::Para(
                        "If you did not do this, reset your password now and check your account."
                            .to_owned(),
                    ),
                ],
            ),
            AccountMail::RecoveryCodeUsed { codes_left } => (
                format!("A recovery code was used to sign in to {app}"),
                vec![
                    Block::Para(format!(
                        "One of the recovery codes of your {app} account was just used to sign \
                         in, in place of your authenticator app. {codes_left} unused codes are left."
                    )),
                    Block::Para(
                        "If this was you, consider making a new set of codes. If it was not, \
                         reset your password and make a new set of codes now."
                            .to_owned(),
                    ),
                ],
            ),
            AccountMail::SignInLink { link, expires_in } => (
                format!("Sign in to {app}"),
                vec![
                    Block::Para(format!("Follow this link to sign in to {app}:")),
                    Block::Link(link),
                    Block::Para(format!(
                        "The link expires in {} and works once.",
                        human(*expires_in)
                    )),
                    Block::Para(ignore.to_owned()),
                ],
            ),
            AccountMail::ConfirmEmailChange {
                link,
                new_email,
                expires_in,
            } => (
                format!("Confirm your new email address for {app}"),
                vec![
                    Block::Para(format!(
                        "Follow this link to make {new_email} the email address of your {app} account:"
                    )),
                    Block::Link(link),
                    Block::Para(format!(
                        "The link expires in {} and works once.",
                        human(*expires_in)
                    )),
                    Block::Para(ignore.to_owned()),
                ],
            ),
            AccountMail::EmailChangeRequested { new_email } => (
                format!("A change of your {app} email address was requested"),
                vec![
                    Block::Para(format!(
                        "Someone signed in to your {app} account asked to change its email \
                         address to {new_email}. The change happens only once that address \
                         confirms it."
                    )),
                    Block::Para(
                        "If this was not you, change your password now: it stops the change."
                            .to_owned(),
                    ),
                ],
            ),
            AccountMail::EmailChanged { new_email } => (
                format!("Your {app} email address was changed"),
                vec![
                    Block::Para(format!(
                        "The email address of your {app} account is now {new_email}. Mail \
                         about the account no longer comes to this address."
                    )),
                    Block::Para(
                        "If you did not do this, contact us at once.".to_owned(),
                    ),
                ],
            ),
        };
        let mut text = String::new();
        let mut html = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n",
            encode_text(&subject)
        );
        for block in &blocks {
            match block {
                Block::Para(para) => {
                    text.push_str(para);
                    text.push_str("\n\n");
                    html.push_str("<p>");
                    html.push_str(&encode_text(para));
                    html.push_str("</p>\n");
                }
                Block::Link(link) => {
                    text.push_str(link);
                    text.push_str("\n\n");
                    html.push_str("<p><a href=\"");
                    html.push_str(&encode_double_quoted_attribute(link));
                    html.push_str("\">");
                    html.push_str(&encode_text(link));
                    html.push_str("</a></p>\n");
                }
            }
        }
        text.push_str("-- \n");
        text.push_str(app);
        text.push('\n');
        html.push_str("</body></html>\n");
        RenderedMail::new(subject, text).with_html(html)
    }
}

/// A duration as English words: "30 minutes", "24 hours", "1 day", "90 seconds".
fn human(duration: Duration) -> String {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    let (n, unit) = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3_600 && secs.is_multiple_of(3_600) {
        (secs / 3_600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn durations_read_as_words() {
        assert_eq!(human(Duration::from_secs(30 * 60)), "30 minutes");
        assert_eq!(human(Duration::from_secs(24 * 3600)), "1 day");
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_secs(90)), "90 seconds");
        assert_eq!(human(Duration::from_millis(1)), "1 second");
    }
}
