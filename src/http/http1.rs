//! [`RequestHead`] over the `http` crate's types, shared by the axum and tower adapters.

use std::fmt;
use std::net::IpAddr;

use http::{Extensions, HeaderMap, Method, Uri};

use super::RequestHead;

/// A request's headers and URI as the `http` crate holds them, plus the peer's address when
/// the server knows it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpHead<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    uri: &'a Uri,
    peer: Peer<'a>,
}

/// Where [`HttpHead`] gets the peer's address.
#[derive(Clone, Copy)]
enum Peer<'a> {
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    Known(Option<IpAddr>),
    /// Looked up in the request's extensions when asked for: most requests never need it
    /// (a valid token with no touch due), and the lookup is a map search.
    InExtensions(&'a Extensions, fn(&Extensions) -> Option<IpAddr>),
}

impl fmt::Debug for Peer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Known(ip) => write!(f, "{ip:?}"),
            Self::InExtensions(..) => f.write_str("(in the request's extensions)"),
        }
    }
}

impl<'a> HttpHead<'a> {
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
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
            peer: Peer::Known(peer),
        }
    }

    /// As [`new`](Self::new), with the peer's address found by `lookup` in `extensions`
    /// if and when it is asked for.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn with_peer_in(
        method: &'a Method,
        headers: &'a HeaderMap,
        uri: &'a Uri,
        extensions: &'a Extensions,
        lookup: fn(&Extensions) -> Option<IpAddr>,
    ) -> Self {
        Self {
            method,
            headers,
            uri,
            peer: Peer::InExtensions(extensions, lookup),
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
        // The one header read on every request, by its constant name: no name parse.
        let values = match name {
            "authorization" => self.headers.get_all(http::header::AUTHORIZATION),
            _ => self.headers.get_all(name),
        };
        values.iter().find_map(|value| value.to_str().ok())
    }

    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        match self.peer {
            Peer::Known(ip) => ip,
            Peer::InExtensions(extensions, lookup) => lookup(extensions),
        }
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
