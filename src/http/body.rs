//! Request bodies and query strings, read the same way by every adapter: the body limit
//! ([`DEFAULT_BODY_LIMIT`], [`HttpAuth::with_body_limit`](super::HttpAuth::with_body_limit)),
//! and [`RequestRules`], what the `ApiJson`, `ApiForm` and `ApiQuery` extractors need without knowing
//! the user type.

// The body readers below serve the axum and actix-web adapters only.
#![cfg_attr(not(any(feature = "axum", feature = "actix-web")), allow(dead_code))]

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{Protocol, Rejection, Response};

/// The largest request body keycard's extractors read (login and logout bodies, the
/// adapters' `ApiJson` and `ApiForm`) unless [`HttpAuth::with_body_limit`] says otherwise: 16 KiB.
/// A login body is tiny (the core caps emails at 320 bytes and passwords at 1024), so a
/// larger body is refused with 413, in the protocol's shape, before it is buffered.
///
/// The limit is keycard's own and the same in every adapter: axum's `DefaultBodyLimit` and
/// actix-web's `PayloadConfig` do not apply to keycard's extractors.
///
/// [`HttpAuth::with_body_limit`]: super::HttpAuth::with_body_limit
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;

/// What keycard's `ApiJson`, `ApiForm` and `ApiQuery` extractors and the fallback handlers need, without
/// the user type: the [`Protocol`] that shapes their rejections and the body limit. Get it
/// from [`HttpAuth::request_rules`](super::HttpAuth::request_rules); cloning is one
/// reference count.
///
/// - axum: `RequestRules: FromRef` both `HttpAuth<U>` and `keycard::axum::AuthState<S>`, so
///   with either as the router state there is nothing to do; with a state of your own,
///   implement `FromRef<YourState>` for it.
/// - actix-web: register it with `App::app_data` beside the `HttpAuth<U>`
///   (`keycard::actix_web::configure` registers both).
///
/// ```
/// use keycard::http::{HttpAuth, StandardApi, DEFAULT_BODY_LIMIT};
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
///
/// let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
/// let http = HttpAuth::new(auth, StandardApi);
/// assert_eq!(http.request_rules().body_limit(), DEFAULT_BODY_LIMIT);
/// let rules = http.with_body_limit(4096).request_rules();
/// assert_eq!(rules.body_limit(), 4096);
/// assert_eq!(rules.rejection(404, "Not found").status, 404);
/// ```
#[derive(Clone)]
pub struct RequestRules {
    protocol: Arc<dyn Protocol>,
    body_limit: usize,
}

impl RequestRules {
    pub(crate) fn new(protocol: Arc<dyn Protocol>, body_limit: usize) -> Self {
        Self {
            protocol,
            body_limit,
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> &dyn Protocol {
        &*self.protocol
    }

    /// The protocol, shared.
    pub fn protocol_arc(&self) -> Arc<dyn Protocol> {
        Arc::clone(&self.protocol)
    }

    /// The largest body the extractors read, in bytes.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// A plain message in the protocol's error shape ([`Protocol::rejection`]).
    pub fn rejection(&self, status: u16, message: &str) -> Response {
        self.protocol.rejection(status, message)
    }

    /// Renders a rejection with the protocol.
    pub fn render(&self, rejection: &Rejection) -> Response {
        rejection.render(self.protocol())
    }
}

impl fmt::Debug for RequestRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRules")
            .field("protocol", &self.protocol)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

/// 413 when the request announces a body over `limit` (`Content-Length`), before any of it is
/// read. A missing or unreadable length passes: the read itself stops at the limit.
pub(crate) fn check_length(content_length: Option<&str>, limit: usize) -> Result<(), Rejection> {
    match content_length.and_then(|length| length.trim().parse::<u64>().ok()) {
        Some(length) if length > limit as u64 => Err(too_large()),
        _ => Ok(()),
    }
}

/// The answer to a body over the limit: 413, one message whatever the framework.
pub(crate) fn too_large() -> Rejection {
    Rejection::unreadable_body(413, "")
}

/// A body the framework failed to read for another reason than its size (the connection
/// broke, ...): 400, as axum answers it.
pub(crate) fn unreadable(error: impl fmt::Display) -> Rejection {
    Rejection::bad_request(400, format!("Failed to buffer the request body: {error}"))
}

/// Whether a `Content-Type` value is JSON as axum reads it: `application/json` or
/// `application/<anything>+json`, with any parameters.
pub(crate) fn is_json_content_type(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

/// Whether a `Content-Type` value is a form as axum reads it: it starts with
/// `application/x-www-form-urlencoded`.
pub(crate) fn is_form_content_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"))
}

/// The 415 of a JSON extractor.
pub(crate) fn not_json() -> Rejection {
    Rejection::bad_request(
        415,
        "Expected request with `Content-Type: application/json`",
    )
}

/// The 415 of a form extractor.
pub(crate) fn not_a_form() -> Rejection {
    Rejection::bad_request(
        415,
        "Form requests must have `Content-Type: application/x-www-form-urlencoded`",
    )
}

/// A JSON body as axum's `Json` parses it: 400 for bad syntax, 422 for valid JSON of another
/// shape, with axum's messages (the path to the bad field included).
pub(crate) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Rejection> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|error| {
        match error.inner().classify() {
            serde_json::error::Category::Data => Rejection::bad_request(
                422,
                format!("Failed to deserialize the JSON body into the target type: {error}"),
            ),
            _ => syntax(error),
        }
    })?;
    de.end().map_err(syntax)?;
    Ok(value)
}

fn syntax(error: impl fmt::Display) -> Rejection {
    Rejection::bad_request(
        400,
        format!("Failed to parse the request body as JSON: {error}"),
    )
}

/// A form (a body, or a `GET`'s query) as axum's `Form` parses it: 400 for a query, 422 for a
/// body.
pub(crate) fn form<T: DeserializeOwned>(data: &[u8], from_query: bool) -> Result<T, Rejection> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(data));
    serde_path_to_error::deserialize(de).map_err(|error| {
        if from_query {
            Rejection::bad_request(400, format!("Failed to deserialize form: {error}"))
        } else {
            Rejection::bad_request(422, format!("Failed to deserialize form body: {error}"))
        }
    })
}

/// A query string as axum's `Query` parses it: 400 for anything that does not fit.
pub(crate) fn query<T: DeserializeOwned>(query: &str) -> Result<T, Rejection> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|error| {
        Rejection::bad_request(400, format!("Failed to deserialize query string: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status<T: fmt::Debug>(r: Result<T, Rejection>) -> u16 {
        match r {
            Err(Rejection::BadRequest { status, .. }) => status,
            other => panic!("{other:?}"),
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Page {
        page: u32,
    }

    #[test]
    fn content_types_as_axum_reads_them() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/json;charset=utf-8",
            "application/cloudevents+json",
            "Application/JSON",
        ] {
            assert!(is_json_content_type(Some(ok)), "{ok}");
        }
        for bad in ["text/json", "application/jsonx", "json", ""] {
            assert!(!is_json_content_type(Some(bad)), "{bad}");
        }
        assert!(!is_json_content_type(None));
        assert!(is_form_content_type(Some(
            "application/x-www-form-urlencoded; charset=utf-8"
        )));
        assert!(!is_form_content_type(Some("multipart/form-data")));
    }

    #[test]
    fn statuses_and_lengths() {
        assert_eq!(status(json::<Page>(b"{")), 400);
        assert_eq!(status(json::<Page>(br#"{"page":1} x"#)), 400);
        assert_eq!(status(json::<Page>(br#"{"page":"x"}"#)), 422);
        assert_eq!(json::<Page>(br#"{"page":3}"#).expect("a page").page, 3);
        assert_eq!(status(form::<Page>(b"page=x", true)), 400);
        assert_eq!(status(form::<Page>(b"page=x", false)), 422);
        assert_eq!(status(query::<Page>("page=-1")), 400);
        assert_eq!(status(check_length(Some("17"), 16)), 413);
        assert!(check_length(Some("16"), 16).is_ok());
        assert!(check_length(Some("lots"), 16).is_ok());
        assert!(check_length(None, 16).is_ok());
    }

    /// The messages are axum's own, byte for byte.
    #[cfg(feature = "axum")]
    #[test]
    fn messages_are_axums() {
        for body in [&b"{"[..], br#"{"page":"x"}"#, br#"{"page":1} x"#, b"[]"] {
            let ours = match json::<Page>(body) {
                Err(Rejection::BadRequest { status, message }) => (status, message),
                other => panic!("{other:?}"),
            };
            let Err(theirs) = axum::Json::<Page>::from_bytes(body) else {
                panic!("axum accepts {body:?}")
            };
            assert_eq!(ours, (theirs.status().as_u16(), theirs.body_text()));
        }
        let uri: axum::http::Uri = "/?page=x".parse().expect("a URI");
        let Err(theirs) = axum::extract::Query::<Page>::try_from_uri(&uri) else {
            panic!("axum accepts page=x")
        };
        let ours = match query::<Page>("page=x") {
            Err(Rejection::BadRequest { status, message }) => (status, message),
            other => panic!("{other:?}"),
        };
        assert_eq!(ours, (theirs.status().as_u16(), theirs.body_text()));
    }
}
