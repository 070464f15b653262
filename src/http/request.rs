//! [`RequestHead`]: the few things keycard reads from a request, whatever the framework.

use std::net::IpAddr;

use crate::session::ClientInfo;

use super::TrustedProxies;

/// The parts of an HTTP request keycard reads: headers, the query string and the peer's
/// address. Each adapter implements it for its framework's request type; the rest of the HTTP
/// layer ([`TokenSource`](super::TokenSource), [`TrustedProxies`]) works on it alone, so a new
/// framework needs only this impl and a conversion of [`Response`](super::Response).
///
/// ```
/// use std::net::IpAddr;
/// use keycard::http::{RequestHead, TokenSource};
///
/// // A request as some framework hands it over.
/// struct MyRequest { method: String, query: String, headers: Vec<(String, String)>, peer: IpAddr }
///
/// impl RequestHead for MyRequest {
///     fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
///         let name = name.to_owned();
///         Box::new(self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| v.as_str()))
///     }
///     fn method(&self) -> &str { &self.method }
///     fn query(&self) -> Option<&str> { Some(&self.query) }
///     fn peer_ip(&self) -> Option<IpAddr> { Some(self.peer) }
/// }
///
/// let req = MyRequest { method: "GET".into(), query: "token=abc".into(), headers: vec![], peer: [127, 0, 0, 1].into() };
/// let token = TokenSource::query("token").find(&req).expect("in the query");
/// assert_eq!(token.expose_secret(), "abc");
/// ```
pub trait RequestHead {
    /// Every value of header `name` (ASCII case-insensitive) that is valid text, in order.
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a>;

    /// The request method, uppercase (`GET`, `POST`, ...).
    fn method(&self) -> &str;

    /// The raw query string, without the `?`, if any.
    fn query(&self) -> Option<&str>;

    /// The address of the connection's peer, if the server knows it.
    fn peer_ip(&self) -> Option<IpAddr>;

    /// The first value of header `name`.
    fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).next()
    }

    /// The `Content-Type` without parameters, lowercase (`application/json`).
    fn media_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        let essence = value.split(';').next().unwrap_or_default().trim();
        Some(essence.to_ascii_lowercase())
    }
}

impl TrustedProxies {
    /// The client's address and user agent for this request: the peer, or the address the
    /// configured [`header`](Self::header) names (every line of it, and no other header)
    /// when the peer is a trusted proxy (see [`client_info`](Self::client_info)).
    pub fn client_of(&self, request: &(impl RequestHead + ?Sized)) -> ClientInfo {
        self.client_info(
            request.peer_ip(),
            request.header_values(self.header().name()),
            request.header("user-agent"),
        )
    }
}
