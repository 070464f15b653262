//! [`RequestHead`] over the `http` crate's types, shared by the axum and tower adapters.

use std::net::IpAddr;

use http::{HeaderMap, Method, Uri};

use super::RequestHead;

/// A request's headers and URI as the `http` crate holds them, plus the peer's address when
/// the server knows it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpHead<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    uri: &'a Uri,
    peer: Option<IpAddr>,
}

impl<'a> HttpHead<'a> {
    pub(crate) fn new(
        method: &'a Method,
        headers: &'a HeaderMap,
        uri: &'a Uri,
        peer: Option<IpAddr>,
    ) -> Self {
        Self {
            method,
            headers,
            uri,
            peer,
        }
    }
}

impl RequestHead for HttpHead<'_> {
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        Box::new(
            self.headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        )
    }

    /// One map lookup, without boxing an iterator: the extractors read `Authorization` on
    /// every request.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(name)
            .iter()
            .find_map(|value| value.to_str().ok())
    }

    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer
    }
}

/// Converts a keycard [`Response`](super::Response) into an `http` response with body `B`.
/// A header keycard cannot encode (never one keycard itself adds) is dropped.
pub(crate) fn to_http<B: From<String>>(response: super::Response) -> http::Response<B> {
    let status = http::StatusCode::from_u16(response.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = http::Response::new(B::from(response.body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    out
}
