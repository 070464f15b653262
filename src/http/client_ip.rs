//! The client's address: the connection's peer, or what a trusted reverse proxy says it is.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::session::ClientInfo;

/// The reverse proxies allowed to tell keycard the client's address, and the one header they
/// write it in.
///
/// Login throttling keys attempts by the client's IP address, so that address must be one an
/// attacker cannot choose. By default ([`TrustedProxies::none`]) keycard uses the connection's
/// peer address and ignores every forwarding header: any client can send them. Behind a
/// reverse proxy every connection comes from the proxy, so list the proxy's addresses: then,
/// and only for connections from a listed address, keycard reads the forwarding header
/// ([`ClientIpHeader`]; `X-Forwarded-For` unless [`with_header`](Self::with_header) names
/// another).
///
/// # Why one header, and which
/// keycard reads exactly one header, the one your proxy writes, and never falls back to or
/// combines with another. A proxy vouches only for the header it sets: every other forwarding
/// header on the request is passed through as the client sent it. nginx with
/// `$proxy_add_x_forwarded_for`, HAProxy and most load balancers append to `X-Forwarded-For`
/// and forward a client's own `Forwarded` untouched, so a server that preferred `Forwarded`
/// when present would let every client pick its address, escaping the per-address login
/// limits and locking out whichever address it names. Pick the header your outermost trusted
/// proxy writes:
///
/// | set-up | proxy configuration | keycard |
/// |---|---|---|
/// | nginx | `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;` | the default ([`ClientIpHeader::XForwardedFor`]), trust nginx's address |
/// | nginx | `proxy_set_header X-Real-IP $remote_addr;` | [`ClientIpHeader::XRealIp`], trust nginx's address |
/// | HAProxy | `option forwardfor` (appends `X-Forwarded-For`) | the default, trust HAProxy's address |
/// | cloud load balancer (AWS ALB, Google Cloud) | appends `X-Forwarded-For` | the default, trust the load balancer's subnet (an ALB's addresses change: trust its VPC subnets, not one address) |
/// | Cloudflare, directly in front of the app | sets `CF-Connecting-IP` (and appends `X-Forwarded-For`) | `"cf-connecting-ip".parse()` ([`ClientIpHeader::Named`]) or the default, trusting Cloudflare's published ranges (<https://www.cloudflare.com/ips/>) |
/// | a proxy that writes RFC 7239 `Forwarded` (and strips the client's) | `Forwarded: for=...` | [`ClientIpHeader::Forwarded`] |
///
/// With several proxies in a row (Cloudflare, then nginx), trust all of them and read the
/// header every one of them appends (`X-Forwarded-For`); a header only the outermost one sets
/// (`CF-Connecting-IP`) is believed from whichever trusted peer forwards it, so the inner
/// proxy must overwrite or drop it on connections that did not come from the outer one.
///
/// # How the address is chosen
/// 1. If the peer is not a trusted proxy, the peer is the client and the header is ignored.
/// 2. Otherwise keycard reads the configured header, every line of it in order, as one chain
///    of addresses: `X-Forwarded-For` and a [named](ClientIpHeader::Named) header as
///    comma-separated lists, `X-Real-IP` as one address per line, `Forwarded` by its `for=`
///    parameters (RFC 7239). It walks the chain from the right (the hop nearest to this
///    server), skipping addresses that are themselves trusted proxies; the first untrusted
///    address is the client. Entries to the left of it were written by the client and are
///    never believed. Without the header, the peer is the client.
/// 3. If the chain ends in an entry that is not an address (`unknown`, an obfuscated name,
///    garbage), keycard stops there and uses the last address it did trust, so a proxy that
///    forwards garbage makes its clients share its address: stricter throttling, never a
///    spoofed one.
/// 4. If every address in the chain is trusted, the leftmost is the client.
///
/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`), as a peer, a trusted network or in a
/// header, are treated as the IPv4 address.
///
/// ```
/// use std::net::IpAddr;
/// use keycard::http::{ClientIpHeader, TrustedProxies};
///
/// // nginx on 127.0.0.1 and a private network, with `$proxy_add_x_forwarded_for`.
/// let proxies: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse()?;
/// let proxy: IpAddr = "10.1.2.3".parse()?;
/// let stranger: IpAddr = "203.0.113.9".parse()?;
///
/// // From the proxy, the header is believed...
/// assert_eq!(proxies.client_ip(proxy, ["198.51.100.7"]), "198.51.100.7".parse::<IpAddr>()?);
/// // ...and a client-supplied entry to the left of the real one is not.
/// assert_eq!(proxies.client_ip(proxy, ["1.1.1.1, 198.51.100.7"]), "198.51.100.7".parse::<IpAddr>()?);
/// // From anyone else, the header is ignored.
/// assert_eq!(proxies.client_ip(stranger, ["198.51.100.7"]), stranger);
///
/// // A proxy that writes RFC 7239 `Forwarded` instead.
/// let proxies = proxies.with_header(ClientIpHeader::Forwarded);
/// assert_eq!(
///     proxies.client_ip(proxy, [r#"for="[2001:db8::17]:4711";proto=https"#]),
///     "2001:db8::17".parse::<IpAddr>()?,
/// );
///
/// // Cloudflare in front of the app: `CF-Connecting-IP` from Cloudflare's ranges
/// // (two of them here; list them all).
/// let cloudflare = TrustedProxies::new(["173.245.48.0/20".parse()?, "2400:cb00::/32".parse()?])
///     .with_header("CF-Connecting-IP".parse()?);
/// assert_eq!(cloudflare.header().name(), "cf-connecting-ip");
/// let edge: IpAddr = "173.245.48.10".parse()?;
/// assert_eq!(cloudflare.client_ip(edge, ["198.51.100.7"]), "198.51.100.7".parse::<IpAddr>()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ClientIpHeader,
}

/// The header a trusted proxy writes the client's address in: the only one
/// [`TrustedProxies`] reads (see [why one](TrustedProxies#why-one-header-and-which)).
///
/// Parse it from a header name, case-insensitively: `x-forwarded-for`, `forwarded` and
/// `x-real-ip` give their variants, any other valid header name (`cf-connecting-ip`,
/// `true-client-ip`) gives [`Named`](Self::Named).
///
/// ```
/// use keycard::http::ClientIpHeader;
///
/// assert_eq!("X-Forwarded-For".parse::<ClientIpHeader>()?, ClientIpHeader::XForwardedFor);
/// assert_eq!("True-Client-IP".parse::<ClientIpHeader>()?.name(), "true-client-ip");
/// assert!("not a header".parse::<ClientIpHeader>().is_err());
/// # Ok::<(), keycard::http::InvalidClientIpHeader>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`: a comma-separated list each proxy appends its peer to (nginx's
    /// `$proxy_add_x_forwarded_for`, HAProxy's `option forwardfor`, cloud load balancers).
    /// The default.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239): the `for=` parameter of each element. Only for proxies that
    /// write it and drop or overwrite the client's own.
    Forwarded,
    /// `X-Real-IP`: one address per line, as nginx's `proxy_set_header X-Real-IP
    /// $remote_addr;` writes it. A line that is not a single address (a list) is garbage.
    XRealIp,
    /// Another header, such as `CF-Connecting-IP` or `True-Client-IP`: a single address, or
    /// a comma-separated list walked like `X-Forwarded-For`. The name is compared
    /// case-insensitively; build it with [`str::parse`], which checks the name and
    /// lowercases it. A name that is no valid header matches no header, so every
    /// client then shares the proxy's address.
    Named(String),
}

/// A client-address header name that is not a valid HTTP header name (RFC 9110 `token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` is not an HTTP header name (examples: `x-forwarded-for`, `forwarded`, `x-real-ip`, `cf-connecting-ip`)")]
pub struct InvalidClientIpHeader {
    name: String,
}

impl ClientIpHeader {
    /// The header's name, lowercase as parsed (`x-forwarded-for`, `forwarded`, `x-real-ip`,
    /// or the named one): what [`TrustedProxies::client_of`] looks up.
    pub fn name(&self) -> &str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
            Self::XRealIp => "x-real-ip",
            Self::Named(name) => name,
        }
    }
}

impl fmt::Display for ClientIpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ClientIpHeader {
    type Err = InvalidClientIpHeader;

    /// A header name, case-insensitively, surrounding whitespace ignored: the well-known
    /// names give their variants, any other valid name (RFC 9110 `token` characters) gives
    /// [`Named`](Self::Named), lowercased.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            return Err(InvalidClientIpHeader {
                name: name.chars().take(64).collect(),
            });
        }
        let name = name.to_ascii_lowercase();
        Ok(match name.as_str() {
            "x-forwarded-for" => Self::XForwardedFor,
            "forwarded" => Self::Forwarded,
            "x-real-ip" => Self::XRealIp,
            _ => Self::Named(name),
        })
    }
}

/// A trusted-proxy entry that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not an IP address or CIDR network (examples: `10.0.0.1`, `10.0.0.0/8`, `fd00::/8`)")]
pub struct InvalidProxy {
    entry: String,
}

impl TrustedProxies {
    /// Trusts no proxy: the client is always the connection's peer. The default.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the given networks (a single address is a `/32` or `/128` network; an
    /// IPv4-mapped one, `::ffff:10.0.0.0/104`, is its IPv4 network), reading
    /// `X-Forwarded-For` from them (see [`with_header`](Self::with_header)).
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().map(canonical_net).collect(),
            header: ClientIpHeader::default(),
        }
    }

    /// Reads the client's address from `header` instead of `X-Forwarded-For`: the header
    /// the trusted proxies write it in (see
    /// [which](TrustedProxies#why-one-header-and-which)). No other header is ever read.
    #[must_use]
    pub fn with_header(self, header: ClientIpHeader) -> Self {
        Self { header, ..self }
    }

    /// The header the client's address is read from.
    pub fn header(&self) -> &ClientIpHeader {
        &self.header
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a connection from `peer` carrying these values of the
    /// configured [`header`](Self::header) (each a header line, in the order received).
    /// Pass the values of that header only: no other is ever believed.
    ///
    /// See the [type docs](TrustedProxies) for the rule. Never fails: anything unreadable
    /// makes the answer fall back toward `peer`.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        header_values: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let lines = header_values.into_iter();
        let hops: Vec<Hop> = match self.header {
            ClientIpHeader::Forwarded => lines.flat_map(forwarded_hops).collect(),
            ClientIpHeader::XRealIp => lines.map(|line| parse_node(line.trim())).collect(),
            ClientIpHeader::XForwardedFor | ClientIpHeader::Named(_) => lines
                .flat_map(|line| line.split(','))
                .map(|entry| parse_node(entry.trim()))
                .collect(),
        };
        self.walk(peer, hops)
    }

    /// The [`ClientInfo`] of a request: its address by [`client_ip`](Self::client_ip) from
    /// the values of the configured [`header`](Self::header) (none if the peer is unknown)
    /// and its `User-Agent`. What every adapter's login calls, through
    /// [`client_of`](Self::client_of).
    pub fn client_info<'a>(
        &self,
        peer: Option<IpAddr>,
        header_values: impl IntoIterator<Item = &'a str>,
        user_agent: Option<&str>,
    ) -> ClientInfo {
        let mut client = ClientInfo::none();
        if let Some(peer) = peer {
            client = client.with_ip(self.client_ip(peer, header_values));
        }
        if let Some(user_agent) = user_agent {
            client = client.with_user_agent(user_agent);
        }
        client
    }

    fn walk(&self, peer: IpAddr, hops: Vec<Hop>) -> IpAddr {
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

impl FromStr for TrustedProxies {
    type Err = InvalidProxy;

    /// Parses a comma- or whitespace-separated list of addresses and CIDR networks, for
    /// example `"10.0.0.0/8, 192.168.1.1, fd00::/8"`. An empty list trusts no proxy. The
    /// header is `X-Forwarded-For` (see [`with_header`](TrustedProxies::with_header)).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidProxy {
                        entry: entry.chars().take(64).collect(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }
}

/// The networks as a list (`[10.0.0.0/8, ::1/128]`, which parses back), followed by
/// ` via <header>` when the header is not the default `X-Forwarded-For`.
impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        f.write_str("]")?;
        if self.header != ClientIpHeader::XForwardedFor {
            write!(f, " via {}", self.header)?;
        }
        Ok(())
    }
}

/// One entry of a forwarding chain: an address, or `None` for anything else.
type Hop = Option<IpAddr>;

/// The `for=` hops of one `Forwarded` header line (RFC 7239 §4), in order. An element without
/// a `for=` parameter is an unreadable hop.
fn forwarded_hops(line: &str) -> Vec<Hop> {
    split_unquoted(line, ',')
        .into_iter()
        .map(|element| {
            split_unquoted(element, ';').into_iter().find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(unquote(value.trim())))
            })?
        })
        .collect()
}

/// Splits on `sep` outside double-quoted strings (a backslash escapes inside quotes).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`. Anything else (`unknown`, `_hidden`) is `None`.
fn parse_node(node: &str) -> Hop {
    let ip = node
        .parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .and_then(|n| n.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

/// `net` truncated to its prefix, an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as its
/// IPv4 network (`10.0.0.0/8`), since addresses are compared in their canonical form.
fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(prefix)) = (
            v6.network().to_ipv4_mapped(),
            v6.prefix_len().checked_sub(96),
        ) {
            if let Ok(v4net) = ipnet::Ipv4Net::new(v4, prefix) {
                return IpNet::V4(v4net);
            }
        }
    }
    net
}
#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn proxies(s: &str) -> TrustedProxies {
        s.parse().expect("test proxy list")
    }

    fn header(s: &str) -> ClientIpHeader {
        s.parse().expect("test header name")
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_the_headers_say() {
        let peer = ip("203.0.113.5");
        for h in [
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "cf-connecting-ip",
        ] {
            let none = TrustedProxies::none().with_header(header(h));
            assert_eq!(none.client_ip(peer, ["for=1.2.3.4", "1.2.3.4"]), peer);
            let some = proxies("10.0.0.0/8").with_header(header(h));
            assert_eq!(some.client_ip(peer, ["for=1.2.3.4", "1.2.3.4"]), peer);
        }
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right_past_trusted_hops() {
        let p = proxies("10.0.0.0/8");
        assert_eq!(p.header(), &ClientIpHeader::XForwardedFor);
        let peer = ip("10.0.0.1");
        assert_eq!(p.client_ip(peer, ["198.51.100.7"]), ip("198.51.100.7"));
        // A spoofed entry on the left is ignored; a second proxy hop is skipped.
        assert_eq!(
            p.client_ip(peer, ["6.6.6.6, 198.51.100.7, 10.9.9.9"]),
            ip("198.51.100.7")
        );
        // Several header lines form one list, in order.
        assert_eq!(
            p.client_ip(peer, ["6.6.6.6", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_ip(peer, ["6.6.6.6, 198.51.100.7", "10.1.1.1, 10.2.2.2"]),
            ip("198.51.100.7")
        );
        // Ports and brackets are accepted.
        assert_eq!(p.client_ip(peer, ["198.51.100.7:1234"]), ip("198.51.100.7"));
        assert_eq!(p.client_ip(peer, ["[2001:db8::5]:80"]), ip("2001:db8::5"));
    }

    #[test]
    fn no_header_or_all_trusted_or_garbage() {
        for h in [
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "true-client-ip",
        ] {
            let p = proxies("10.0.0.0/8").with_header(header(h));
            let peer = ip("10.0.0.1");
            assert_eq!(p.client_ip(peer, []), peer, "{h}");
        }
        let p = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        assert_eq!(p.client_ip(peer, ["10.1.1.1, 10.2.2.2"]), ip("10.1.1.1"));
        // Garbage at the nearest hop: the proxy's own address is used.
        assert_eq!(p.client_ip(peer, ["1.2.3.4, unknown"]), peer);
        // Garbage beyond a trusted hop: the last trusted address.
        assert_eq!(
            p.client_ip(peer, ["1.2.3.4, nonsense, 10.2.2.2"]),
            ip("10.2.2.2")
        );
    }

    #[test]
    fn forwarded_is_parsed_per_rfc_7239() {
        let p = proxies("10.0.0.0/8, fd00::/8").with_header(ClientIpHeader::Forwarded);
        let peer = ip("fd00::1");
        assert_eq!(
            p.client_ip(
                peer,
                [r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=http;by=10.0.0.2"#]
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            p.client_ip(peer, ["For=192.0.2.60;proto=https"]),
            ip("192.0.2.60")
        );
        // A quoted value may contain the separators.
        assert_eq!(
            p.client_ip(peer, [r#"for="_a,b;c", for=192.0.2.61"#]),
            ip("192.0.2.61")
        );
        // Several lines form one list; the nearest untrusted hop wins.
        assert_eq!(
            p.client_ip(peer, ["for=6.6.6.6", "for=192.0.2.62, for=10.0.0.9"]),
            ip("192.0.2.62")
        );
        assert_eq!(p.client_ip(peer, ["for=unknown"]), peer);
        assert_eq!(p.client_ip(peer, ["proto=https"]), peer);
    }

    /// The hole this type once had: with `Forwarded` present, `X-Forwarded-For` was ignored,
    /// so behind a proxy appending `X-Forwarded-For` a client picked its address with
    /// `Forwarded`. Only the configured header is read, whatever else the caller holds.
    #[test]
    fn only_the_configured_header_is_believed() {
        let peer = ip("127.0.0.1");
        // Configured `X-Forwarded-For`: a `Forwarded` line is not an XFF entry.
        let xff = proxies("127.0.0.1");
        assert_eq!(xff.client_ip(peer, ["198.51.100.9"]), ip("198.51.100.9"));
        assert_eq!(xff.client_ip(peer, ["for=6.6.6.6"]), peer);
        // Configured `Forwarded`: a client-sent XFF-style value is not a `for=` element.
        let fwd = proxies("127.0.0.1").with_header(ClientIpHeader::Forwarded);
        assert_eq!(fwd.client_ip(peer, ["6.6.6.6"]), peer);
        assert_eq!(
            fwd.client_ip(peer, ["for=198.51.100.9"]),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn x_real_ip_is_one_address_per_line() {
        let p = proxies("10.0.0.0/8").with_header(ClientIpHeader::XRealIp);
        let peer = ip("10.0.0.1");
        assert_eq!(p.client_ip(peer, [" 198.51.100.7 "]), ip("198.51.100.7"));
        assert_eq!(p.client_ip(peer, ["[2001:db8::5]"]), ip("2001:db8::5"));
        // A list is not one address: garbage, so the proxy's address.
        assert_eq!(p.client_ip(peer, ["6.6.6.6, 198.51.100.7"]), peer);
        // Several lines: walked from the right like any chain.
        assert_eq!(
            p.client_ip(peer, ["6.6.6.6", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_ip(peer, ["6.6.6.6", "198.51.100.7", "10.3.3.3"]),
            ip("198.51.100.7")
        );
        assert_eq!(p.client_ip(peer, ["unknown"]), peer);
    }

    #[test]
    fn named_headers_are_a_single_address_or_a_list() {
        let p = proxies("173.245.48.0/20").with_header(header("CF-Connecting-IP"));
        assert_eq!(
            p.header(),
            &ClientIpHeader::Named("cf-connecting-ip".into())
        );
        let edge = ip("173.245.48.10");
        assert_eq!(p.client_ip(edge, ["198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(
            p.client_ip(edge, ["6.6.6.6, 198.51.100.7, 173.245.48.11"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_ip(edge, ["6.6.6.6", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(p.client_ip(edge, ["198.51.100.7, garbage"]), edge);
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let mapped = ip("::ffff:127.0.0.1");
        for (h, value) in [
            ("x-forwarded-for", "::ffff:198.51.100.7"),
            ("forwarded", r#"for="[::ffff:198.51.100.7]""#),
            ("x-real-ip", "::ffff:198.51.100.7"),
            ("true-client-ip", "::ffff:198.51.100.7"),
        ] {
            let p = proxies("127.0.0.1").with_header(header(h));
            assert!(p.trusts(mapped));
            assert_eq!(p.client_ip(mapped, [value]), ip("198.51.100.7"), "{h}");
            // An untrusted mapped peer is the client, as IPv4, whatever the header says.
            assert_eq!(
                p.client_ip(ip("::ffff:203.0.113.5"), [value]),
                ip("203.0.113.5")
            );
        }
        // A mapped hop in the header is the IPv4 address, hence trusted.
        let p = proxies("127.0.0.1");
        assert_eq!(
            p.client_ip(mapped, ["198.51.100.7, ::ffff:127.0.0.1"]),
            ip("198.51.100.7")
        );
        // A trusted network written mapped is the IPv4 network.
        let p = proxies("::ffff:10.0.0.0/104, ::ffff:127.0.0.1");
        assert_eq!(format!("{p:?}"), "[10.0.0.0/8, 127.0.0.1/32]");
        assert!(p.trusts(ip("10.1.2.3")) && p.trusts(mapped));
        assert_eq!(
            p.client_ip(ip("127.0.0.1"), ["198.51.100.7"]),
            ip("198.51.100.7")
        );
        // A network wider than the mapped range stays IPv6.
        assert!(!proxies("::/64").trusts(ip("127.0.0.1")));
    }

    #[test]
    fn client_info_reads_the_configured_header() {
        let p = proxies("127.0.0.1").with_header(ClientIpHeader::XRealIp);
        let info = p.client_info(Some(ip("127.0.0.1")), ["198.51.100.7"], Some("curl/8"));
        assert_eq!(info.ip, Some(ip("198.51.100.7")));
        assert_eq!(info.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(p.client_info(None, ["198.51.100.7"], None).ip, None);
    }

    #[test]
    fn parsing_the_header() {
        assert_eq!(ClientIpHeader::default(), ClientIpHeader::XForwardedFor);
        assert_eq!(header("X-Forwarded-For"), ClientIpHeader::XForwardedFor);
        assert_eq!(header(" FORWARDED "), ClientIpHeader::Forwarded);
        assert_eq!(header("x-real-ip"), ClientIpHeader::XRealIp);
        assert_eq!(
            header("True-Client-IP"),
            ClientIpHeader::Named("true-client-ip".into())
        );
        for h in [
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "cf-connecting-ip",
        ] {
            assert_eq!(header(h).name(), h);
            assert_eq!(header(h).to_string(), h);
        }
        for bad in ["", "  ", "x forwarded", "x-real-ip:", "cf\u{e9}", "a,b"] {
            let err = bad
                .parse::<ClientIpHeader>()
                .expect_err("not a header name");
            assert!(
                err.to_string().contains("is not an HTTP header name"),
                "{err}"
            );
        }
    }

    #[test]
    fn parsing_the_list() {
        assert_eq!(TrustedProxies::none(), proxies(""));
        let p = proxies("10.0.0.0/8 192.168.1.1,::1");
        assert_eq!(p.networks().len(), 3);
        assert!(p.trusts(ip("192.168.1.1")));
        assert!(!p.trusts(ip("192.168.1.2")));
        let err = "10.0.0.0/8, example.com"
            .parse::<TrustedProxies>()
            .expect_err("a host name is refused");
        assert!(err
            .to_string()
            .starts_with("`example.com` is not an IP address"));
        assert_eq!(format!("{p:?}"), "[10.0.0.0/8, 192.168.1.1/32, ::1/128]");
        let p = p.with_header(ClientIpHeader::Forwarded);
        assert_eq!(
            format!("{p:?}"),
            "[10.0.0.0/8, 192.168.1.1/32, ::1/128] via forwarded"
        );
        assert_ne!(p, proxies("10.0.0.0/8 192.168.1.1,::1"));
    }
}
