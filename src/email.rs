//! Checking an email address before it becomes an account's login.

use std::fmt;

use email_address::{EmailAddress, Options};

use crate::limits::MAX_EMAIL_LEN;
use crate::user::normalize_email;

/// Why an email address was refused at registration ([`check_email`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EmailRejection {
    /// Nothing but whitespace.
    Empty,
    /// Longer than [`MAX_EMAIL_LEN`] bytes, as typed or in canonical form.
    TooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// It holds a control character (a newline, a NUL, ...).
    ControlCharacter,
    /// It has no `@`, or more than one.
    NotOneAt,
    /// The domain is not a plausible mail domain: no dot, an address literal
    /// (`[192.0.2.1]`), or an empty label.
    ImplausibleDomain,
    /// Not an address by RFC 5322 / RFC 6531 syntax (a bad character, an empty or too long
    /// local part, unbalanced quotes, a display name, ...).
    InvalidSyntax,
}

impl fmt::Display for EmailRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the email is empty; enter your email address"),
            Self::TooLong { max } => write!(
                f,
                "the email is longer than the {max} bytes allowed; use a shorter address"
            ),
            Self::ControlCharacter => {
                f.write_str("the email contains a control character; enter the address on one line")
            }
            Self::NotOneAt => f.write_str(
                "the email must contain exactly one @; enter an address such as ann@example.com",
            ),
            Self::ImplausibleDomain => f.write_str(
                "the email's domain is not a mail domain; enter an address such as ann@example.com",
            ),
            Self::InvalidSyntax => f.write_str(
                "the email is not a valid address; enter an address such as ann@example.com",
            ),
        }
    }
}

impl std::error::Error for EmailRejection {}

/// Checks that `email` can be an account's login and returns it trimmed, as typed: the
/// address to store and to mail. Accounts are compared by its canonical form
/// ([`normalize_email`]), which must pass the same checks.
///
/// The checks, on the trimmed address and on its canonical form: not empty, at most
/// [`MAX_EMAIL_LEN`] bytes, no control characters, exactly one `@`, a plausible mail domain
/// (at least two labels, no address literal), and valid address syntax (RFC 5322 / RFC 6531,
/// checked by the `email_address` crate).
///
/// It checks the shape only; whether mail reaches the address is for a verification mail to
/// show.
///
/// ```
/// use keycard::{check_email, normalize_email, EmailRejection};
/// // Kept as typed (trimmed): mail goes to what the user wrote.
/// assert_eq!(check_email("  Ann@Example.COM ").as_deref(), Ok("Ann@Example.COM"));
/// assert_eq!(normalize_email("Ann@Example.COM"), "ann@example.com");
/// assert_eq!(check_email("   "), Err(EmailRejection::Empty));
/// assert_eq!(check_email("not-an-email"), Err(EmailRejection::NotOneAt));
/// assert_eq!(check_email("ann@localhost"), Err(EmailRejection::ImplausibleDomain));
/// assert_eq!(check_email("ann\n@example.com"), Err(EmailRejection::ControlCharacter));
/// ```
///
/// # Errors
/// The first [`EmailRejection`] that applies, in the order above (the trimmed address
/// first, then its canonical form).
pub fn check_email(email: &str) -> Result<String, EmailRejection> {
    // Refuse absurd input before doing any work proportional to it.
    if email.len() > MAX_EMAIL_LEN * 4 {
        return Err(EmailRejection::TooLong { max: MAX_EMAIL_LEN });
    }
    let typed = email.trim();
    check_shape(typed)?;
    check_shape(&normalize_email(typed))?;
    Ok(typed.to_owned())
}

/// The checks of [`check_email`] on one form of the address.
fn check_shape(email: &str) -> Result<(), EmailRejection> {
    if email.is_empty() {
        return Err(EmailRejection::Empty);
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(EmailRejection::TooLong { max: MAX_EMAIL_LEN });
    }
    if email.chars().any(char::is_control) {
        return Err(EmailRejection::ControlCharacter);
    }
    let Some((_, domain)) = email.split_once('@') else {
        return Err(EmailRejection::NotOneAt);
    };
    if domain.contains('@') {
        return Err(EmailRejection::NotOneAt);
    }
    if domain.starts_with('[') || !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(EmailRejection::ImplausibleDomain);
    }
    let options = Options {
        minimum_sub_domains: 2,
        allow_domain_literal: false,
        allow_display_text: false,
        allow_long_local_parts: false,
    };
    match EmailAddress::parse_with_options(email, options) {
        Ok(_) => Ok(()),
        Err(_) => Err(EmailRejection::InvalidSyntax),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_review_stored_is_refused() {
        assert_eq!(check_email(""), Err(EmailRejection::Empty));
        assert_eq!(check_email("   "), Err(EmailRejection::Empty));
        assert_eq!(check_email("not-an-email"), Err(EmailRejection::NotOneAt));
        let long = format!("{}@example.com", "a".repeat(15_000));
        assert_eq!(
            check_email(&long),
            Err(EmailRejection::TooLong { max: MAX_EMAIL_LEN })
        );
        let just_over = format!("{}@example.com", "a".repeat(MAX_EMAIL_LEN));
        assert_eq!(
            check_email(&just_over),
            Err(EmailRejection::TooLong { max: MAX_EMAIL_LEN })
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(
            check_email("a@b@example.com"),
            Err(EmailRejection::NotOneAt)
        );
        assert_eq!(
            check_email("ann@[192.0.2.1]"),
            Err(EmailRejection::ImplausibleDomain)
        );
        assert_eq!(
            check_email("ann@example..com"),
            Err(EmailRejection::ImplausibleDomain)
        );
        assert_eq!(
            check_email("ann\u{0}@example.com"),
            Err(EmailRejection::ControlCharacter)
        );
        assert_eq!(
            check_email("Ann <ann@example.com>"),
            Err(EmailRejection::InvalidSyntax)
        );
        assert_eq!(
            check_email("@example.com"),
            Err(EmailRejection::InvalidSyntax)
        );
        assert_eq!(check_email("ann@-example.com").ok(), None);
        assert_eq!(
            check_email("jöran.o'neil+tag@bücher.example").as_deref(),
            Ok("jöran.o'neil+tag@bücher.example")
        );
    }

    #[test]
    fn the_address_is_kept_as_typed_and_checked_in_both_forms() {
        assert_eq!(
            check_email(" \u{212A}im@Example.com\t").as_deref(),
            Ok("\u{212A}im@Example.com")
        );
        assert_eq!(
            check_email("K\u{131}m@example.com").as_deref(),
            Ok("K\u{131}m@example.com")
        );
        // A fullwidth @ is an @ once canonical: two of them.
        assert_eq!(
            check_email("a\u{FF20}b@example.com"),
            Err(EmailRejection::NotOneAt)
        );
        // U+FDF2, an Arabic ligature (3 bytes), is four letters (8 bytes) once canonical: the
        // limit applies to the canonical form as well.
        let label = "\u{FDF2}".repeat(20);
        let expanding = format!("a@{}com", format!("{label}.").repeat(4));
        assert!(expanding.len() <= MAX_EMAIL_LEN);
        assert_eq!(
            check_email(&expanding),
            Err(EmailRejection::TooLong { max: MAX_EMAIL_LEN })
        );
    }

    #[test]
    fn every_message_says_what_to_do() {
        for rejection in [
            EmailRejection::Empty,
            EmailRejection::TooLong { max: 320 },
            EmailRejection::ControlCharacter,
            EmailRejection::NotOneAt,
            EmailRejection::ImplausibleDomain,
            EmailRejection::InvalidSyntax,
        ] {
            let text = rejection.to_string();
            assert!(text.starts_with("the email"), "{text}");
            assert!(text.contains("; "), "{text}");
        }
    }
}
