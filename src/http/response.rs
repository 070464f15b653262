//! [`Response`]: what keycard renders, independent of any web framework.

use std::borrow::Cow;

use serde_json::Value;

/// An HTTP response, independent of any web framework: a status, headers and a body.
///
/// Every response keycard renders carries `Cache-Control: no-store` (a login answer holds a
/// token; no answer about a session should sit in a shared cache). Adapters copy the status,
/// every header and the body onto their framework's response and add nothing.
///
/// ```
/// use keycard::http::Response;
/// let r = Response::json(429, &serde_json::json!({"error": "slow down"})).with_retry_after(Some(7));
/// assert_eq!(r.status, 429);
/// assert_eq!(r.header("content-type"), Some("application/json"));
/// assert_eq!(r.header("cache-control"), Some("no-store"));
/// assert_eq!(r.header("retry-after"), Some("7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values, in order; a name may repeat.
    pub headers: Vec<(Cow<'static, str>, String)>,
    /// The body: compact JSON, or empty (for example a 204).
    pub body: String,
}

impl Response {
    /// A response with a JSON body (`Content-Type: application/json`).
    pub fn json(status: u16, body: &Value) -> Self {
        Self::with_body(status, "application/json", body.to_string())
    }

    /// A response with an RFC 9457 problem details body
    /// (`Content-Type: application/problem+json`).
    pub fn problem_json(status: u16, body: &Value) -> Self {
        Self::with_body(status, "application/problem+json", body.to_string())
    }

    /// A response without a body (for example `204 No Content`).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: vec![(Cow::Borrowed("cache-control"), "no-store".to_owned())],
            body: String::new(),
        }
    }

    fn with_body(status: u16, content_type: &'static str, body: String) -> Self {
        let mut response = Self::empty(status);
        response
            .headers
            .insert(0, (Cow::Borrowed("content-type"), content_type.to_owned()));
        response.body = body;
        response
    }

    /// Adds a header. `name` should be lowercase; values must be valid header values (no
    /// control characters), which every value keycard itself adds is.
    #[must_use]
    pub fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Retry-After: secs` when `secs` is given.
    #[must_use]
    pub fn with_retry_after(self, secs: Option<u64>) -> Self {
        match secs {
            Some(secs) => self.with_header("retry-after", secs.to_string()),
            None => self,
        }
    }

    /// The first value of header `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Seconds of the `Retry-After` header, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.header("retry-after")?.parse().ok()
    }
}
