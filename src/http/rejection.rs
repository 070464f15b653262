//! [`Rejection`]: why a request was refused before or by the core, rendered through a
//! [`Protocol`].

use super::{Protocol, Response};
use crate::error::{chain, Error};

/// Why a request was refused: the core's error (no token, a bad token, a store that is down,
/// throttling...) or a request keycard could not read (bad JSON, a missing field, a wrong
/// content type). Every adapter's rejection holds one, so a handler can match on it, and
/// renders it with [`render`](Self::render).
///
/// ```
/// use keycard::http::{Rejection, StandardApi};
/// use keycard::Error;
/// let rejection = Rejection::from(Error::MissingToken);
/// assert!(matches!(rejection.error(), Some(Error::MissingToken)));
/// assert_eq!(rejection.render(&StandardApi).status, 401);
/// assert_eq!(Rejection::bad_request(415, "JSON only").render(&StandardApi).status, 415);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The core refused, or the request carried no token ([`Error::MissingToken`]).
    #[error(transparent)]
    Auth(#[from] Error),
    /// A request authenticated by the session cookie came from another site (or gave no
    /// evidence of its origin) with an unsafe method, or a login came from another site: a
    /// cross-site request forgery, refused with 403 (see
    /// [`SessionCookie`](super::SessionCookie)).
    #[error("cross-site request refused; send the request from this site's own pages")]
    CrossSite,
    /// The request could not be read: rendered with [`Protocol::rejection`].
    #[error("{message}")]
    BadRequest {
        /// The status to answer: 400 (bad syntax), 413 (too large), 415 (wrong content
        /// type) or 422 (valid syntax, wrong shape).
        status: u16,
        /// What was wrong, for the client.
        message: String,
    },
}

impl Rejection {
    /// A request that could not be read.
    pub fn bad_request(status: u16, message: impl Into<String>) -> Self {
        Self::BadRequest {
            status,
            message: message.into(),
        }
    }

    /// A body the framework could not read, with the status it chose: 413 gets one message
    /// whatever the framework (`Request body is too large`), others keep the framework's.
    pub fn unreadable_body(status: u16, framework_message: impl Into<String>) -> Self {
        match status {
            413 => Self::bad_request(413, "Request body is too large"),
            _ => Self::bad_request(status, framework_message),
        }
    }

    /// A JSON body that did not parse: 400 for bad syntax, 422 for another shape.
    pub(crate) fn from_json(error: serde_json::Error) -> Self {
        match error.classify() {
            serde_json::error::Category::Data => Self::bad_request(
                422,
                format!("Failed to deserialize the JSON body into the target type: {error}"),
            ),
            _ => Self::bad_request(
                400,
                format!("Failed to parse the request body as JSON: {error}"),
            ),
        }
    }

    /// The core error, if this is one.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Auth(error) => Some(error),
            Self::CrossSite | Self::BadRequest { .. } => None,
        }
    }

    /// The response `protocol` gives this rejection (see [`render_error`]).
    pub fn render(&self, protocol: &dyn Protocol) -> Response {
        match self {
            Self::Auth(error) => render_error(protocol, error),
            Self::CrossSite => protocol.rejection(403, &self.to_string()),
            Self::BadRequest { status, message } => protocol.rejection(*status, message),
        }
    }
}

/// Renders a core error with [`Protocol::error`], logging server-side failures (5xx) with
/// their whole source chain first (`tracing`, level WARN). The client's body never carries
/// that chain.
pub fn render_error(protocol: &dyn Protocol, error: &Error) -> Response {
    let response = protocol.error(error);
    if response.status >= 500 {
        tracing::warn!(status = response.status, "keycard: {}", chain(error));
    }
    response
}
