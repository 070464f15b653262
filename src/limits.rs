//! Input limits, checked before any lookup or hashing. A leaf module: everything may use it.

/// The longest email accepted, in bytes (RFC 5321's path limit is 256; 320 leaves room for
/// any address a mail server takes). Longer ones fail with
/// [`Error::InputTooLong`](crate::Error::InputTooLong) at login, and with
/// [`EmailRejection::TooLong`](crate::EmailRejection::TooLong) at registration.
pub const MAX_EMAIL_LEN: usize = 320;
/// The longest password accepted, in bytes (at least 256 four-byte characters). Longer ones
/// fail with [`Error::InputTooLong`](crate::Error::InputTooLong) before any hashing.
pub const MAX_PASSWORD_LEN: usize = 1024;
