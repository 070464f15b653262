//! The client's address: the connection's peer, or what a trusted reverse proxy says it is.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::session::ClientInfo;

/// The reverse proxies allowed to tell keycard the client's address.
///
/// Login throttling keys attempts by the client's IP address, so that address must be one an
/// attacker cannot choose. By default ([`TrustedProxies::none`]) keycard uses the connection's
/// peer address and ignores `Forwarded` and `X-Forwarded-For` entirely: any client can send
/// those headers. Behind a reverse proxy every connection comes from the proxy, so list the
/// proxy's addresses: then, and only for connections from a listed address, keycard reads the
/// forwarding headers.
///
/// # How the address is chosen
/// 1. If the peer is not a trusted proxy, the peer is the client.
/// 2. Otherwise keycard reads the chain of addresses the proxies appended: `Forwarded`
///    (RFC 7239, its `for=` parameters) if the request has one, else `X-Forwarded-For`. It
///    walks the chain from the right (the hop nearest to this server), skipping addresses
///    that are themselves trusted proxies; the first untrusted address is the client. Entries
///    to the left of it were written by the client and are never believed.
/// 3. If the chain ends in an entry that is not an address (`unknown`, an obfuscated name,
///    garbage), keycard stops there and uses the last address it did trust, so a proxy that
///    forwards garbage makes its clients share its address: stricter throttling, never a
///    spoofed one.
/// 4. If every address in the chain is trusted, the leftmost is the client.
///
/// IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are treated as the IPv4 address.
///
/// ```
/// use std::net::IpAddr;
/// use keycard::http::TrustedProxies;
///
/// let proxies: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse()?;
/// let proxy: IpAddr = "10.1.2.3".parse()?;
/// let stranger: IpAddr = "203.0.113.9".parse()?;
///
/// // From the proxy, the header is believed...
/// assert_eq!(proxies.client_ip(proxy, [], ["198.51.100.7"]), "198.51.100.7".parse::<IpAddr>()?);
/// // ...and a client-supplied entry to the left of the real one is not.
/// assert_eq!(proxies.client_ip(proxy, [], ["1.1.1.1, 198.51.100.7"]), "198.51.100.7".parse::<IpAddr>()?);
/// // From anyone else, the header is ignored.
/// assert_eq!(proxies.client_ip(stranger, [], ["198.51.100.7"]), stranger);
/// // `Forwarded` is read when present.
/// assert_eq!(
///     proxies.client_ip(proxy, [r#"for="[2001:db8::17]:4711";proto=https"#], []),
///     "2001:db8::17".parse::<IpAddr>()?,
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
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

    /// Trusts the given networks (a single address is a `/32` or `/128` network).
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().map(|net| net.trunc()).collect(),
        }
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

    /// The client's address for a connection from `peer` carrying these `Forwarded` and
    /// `X-Forwarded-For` header values (each a header line, in the order received).
    ///
    /// See the [type docs](TrustedProxies) for the rule. Never fails: anything unreadable
    /// makes the answer fall back toward `peer`.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl IntoIterator<Item = &'a str>,
        x_forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut forwarded = forwarded.into_iter().peekable();
        if forwarded.peek().is_some() {
            let hops: Vec<Hop> = forwarded.flat_map(forwarded_hops).collect();
            return self.walk(peer, hops);
        }
        let hops: Vec<Hop> = x_forwarded_for
            .into_iter()
            .flat_map(|line| line.split(','))
            .map(|entry| parse_node(entry.trim()))
            .collect();
        self.walk(peer, hops)
    }

    /// The [`ClientInfo`] of a request: its address by [`client_ip`](Self::client_ip) (none
    /// if the peer is unknown) and its `User-Agent`. What every adapter's login calls.
    pub fn client_info<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded: impl IntoIterator<Item = &'a str>,
        x_forwarded_for: impl IntoIterator<Item = &'a str>,
        user_agent: Option<&str>,
    ) -> ClientInfo {
        let mut client = ClientInfo::none();
        if let Some(peer) = peer {
            client = client.with_ip(self.client_ip(peer, forwarded, x_forwarded_for));
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
    /// example `"10.0.0.0/8, 192.168.1.1, fd00::/8"`. An empty list trusts no proxy.
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

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{net}")?;
        }
        f.write_str("]")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn proxies(s: &str) -> TrustedProxies {
        s.parse().expect("test proxy list")
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_the_headers_say() {
        let none = TrustedProxies::none();
        let peer = ip("203.0.113.5");
        assert_eq!(none.client_ip(peer, ["for=1.2.3.4"], ["1.2.3.4"]), peer);
        let some = proxies("10.0.0.0/8");
        assert_eq!(some.client_ip(peer, ["for=1.2.3.4"], ["1.2.3.4"]), peer);
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right_past_trusted_hops() {
        let p = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        assert_eq!(p.client_ip(peer, [], ["198.51.100.7"]), ip("198.51.100.7"));
        // A spoofed entry on the left is ignored; a second proxy hop is skipped.
        assert_eq!(
            p.client_ip(peer, [], ["6.6.6.6, 198.51.100.7, 10.9.9.9"]),
            ip("198.51.100.7")
        );
        // Several header lines form one list, in order.
        assert_eq!(
            p.client_ip(peer, [], ["6.6.6.6", "198.51.100.7"]),
            ip("198.51.100.7")
        );
        // Ports and brackets are accepted.
        assert_eq!(
            p.client_ip(peer, [], ["198.51.100.7:1234"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_ip(peer, [], ["[2001:db8::5]:80"]),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn no_header_or_all_trusted_or_garbage() {
        let p = proxies("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        assert_eq!(p.client_ip(peer, [], []), peer);
        assert_eq!(
            p.client_ip(peer, [], ["10.1.1.1, 10.2.2.2"]),
            ip("10.1.1.1")
        );
        // Garbage at the nearest hop: the proxy's own address is used.
        assert_eq!(p.client_ip(peer, [], ["1.2.3.4, unknown"]), peer);
        // Garbage beyond a trusted hop: the last trusted address.
        assert_eq!(
            p.client_ip(peer, [], ["1.2.3.4, nonsense, 10.2.2.2"]),
            ip("10.2.2.2")
        );
    }

    #[test]
    fn forwarded_takes_precedence_and_is_parsed_per_rfc_7239() {
        let p = proxies("10.0.0.0/8, fd00::/8");
        let peer = ip("fd00::1");
        assert_eq!(
            p.client_ip(
                peer,
                [r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=http;by=10.0.0.2"#],
                ["9.9.9.9"]
            ),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            p.client_ip(peer, ["For=192.0.2.60;proto=https"], []),
            ip("192.0.2.60")
        );
        // A quoted value may contain the separators.
        assert_eq!(
            p.client_ip(peer, [r#"for="_a,b;c", for=192.0.2.61"#], []),
            ip("192.0.2.61")
        );
        assert_eq!(p.client_ip(peer, ["for=unknown"], []), peer);
        assert_eq!(p.client_ip(peer, ["proto=https"], []), peer);
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let p = proxies("127.0.0.1");
        let mapped = ip("::ffff:127.0.0.1");
        assert!(p.trusts(mapped));
        assert_eq!(
            p.client_ip(mapped, [], ["::ffff:198.51.100.7"]),
            ip("198.51.100.7")
        );
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
    }
}
