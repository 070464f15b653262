//! The client's address behind trusted proxies: `TrustedProxies::client_ip` over an arbitrary
//! peer, trusted-proxy list and `Forwarded` / `X-Forwarded-For` header lines, read as each
//! kind of client-address header (`Forwarded` lines as `Forwarded`, the others as
//! `X-Forwarded-For`, `X-Real-IP` and a named header).
//!
//! Invariants: never panics; with no trusted proxies, or from a peer that is not trusted, the
//! result is the peer (IPv4-mapped IPv6 read as IPv4, as documented); otherwise it is the peer
//! or an address that literally appears in the lines of the header read; `client_info` agrees
//! with `client_ip`; a proxy list's `Debug` parses back to the same list.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use arbitrary::Arbitrary;
use keycard::http::{ClientIpHeader, TrustedProxies};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    peer: IpAddr,
    /// Also trust the peer itself, so that the headers are read.
    trust_peer: bool,
    nets: Vec<(IpAddr, u8)>,
    forwarded: Vec<Vec<Piece>>,
    x_forwarded_for: Vec<Vec<Piece>>,
}

/// A piece of a header line: an address in one of the spellings proxies use, or raw text
/// (separators, `for=`, quotes, garbage).
#[derive(Debug, Arbitrary)]
enum Piece {
    Addr {
        ip: IpAddr,
        port: Option<u16>,
        style: u8,
    },
    Text(String),
}

fn render(pieces: &[Piece]) -> String {
    let mut line = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => line.push_str(text),
            Piece::Addr { ip, port, style } => {
                let ip = match (ip, style & 1) {
                    (IpAddr::V4(v4), 1) => IpAddr::V6(v4.to_ipv6_mapped()),
                    _ => *ip,
                };
                let text = match (ip, port) {
                    (_, Some(port)) => SocketAddr::new(ip, *port).to_string(),
                    (IpAddr::V6(v6), None) if style & 2 != 0 => format!("[{v6}]"),
                    (ip, None) => ip.to_string(),
                };
                if style & 4 != 0 {
                    line.push_str("for=");
                }
                if style & 8 != 0 {
                    line.push('"');
                    line.push_str(&text);
                    line.push('"');
                } else {
                    line.push_str(&text);
                }
            }
        }
    }
    line
}

/// Every address written anywhere in `lines`: each maximal run of address characters, read as
/// an address or as an IPv4 address with a port (brackets, quotes, `%zone` and separators end
/// a run, so bracketed IPv6 is found by its inside).
fn addresses_in(lines: &[String]) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for line in lines {
        let runs = line.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'));
        for run in runs.filter(|run| !run.is_empty()) {
            if let Ok(ip) = run.parse::<IpAddr>() {
                found.push(ip.to_canonical());
            } else if let Ok(addr) = run.parse::<SocketAddr>() {
                found.push(addr.ip().to_canonical());
            }
        }
    }
    found
}

fuzz_target!(|input: Input| {
    let forwarded: Vec<String> = input.forwarded.iter().map(|p| render(p)).collect();
    let x_forwarded_for: Vec<String> = input.x_forwarded_for.iter().map(|p| render(p)).collect();
    let xff = || x_forwarded_for.iter().map(String::as_str);
    let peer = input.peer.to_canonical();

    // No trusted proxy: the headers never matter.
    let none = TrustedProxies::none();
    assert_eq!(none.client_ip(input.peer, xff()), peer);

    let mut list: Vec<String> = input
        .nets
        .iter()
        .map(|(ip, prefix)| {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            format!("{ip}/{}", prefix % (max + 1))
        })
        .collect();
    if input.trust_peer {
        list.push(input.peer.to_string());
    }
    let proxies: TrustedProxies = list.join(", ").parse().expect("a list of valid networks");
    let reparsed: TrustedProxies = format!("{proxies:?}")
        .trim_matches(['[', ']'])
        .parse()
        .expect("Debug parses back");
    assert_eq!(reparsed, proxies);

    let named: ClientIpHeader = "cf-connecting-ip".parse().expect("a header name");
    for (header, lines) in [
        (ClientIpHeader::XForwardedFor, &x_forwarded_for),
        (ClientIpHeader::Forwarded, &forwarded),
        (ClientIpHeader::XRealIp, &x_forwarded_for),
        (named, &x_forwarded_for),
    ] {
        let proxies = proxies.clone().with_header(header);
        let values = || lines.iter().map(String::as_str);
        let client = proxies.client_ip(input.peer, values());
        if !proxies.trusts(input.peer) {
            assert_eq!(client, peer, "headers believed from an untrusted peer");
        }
        assert_eq!(client, client.to_canonical());
        if client != peer {
            assert!(
                addresses_in(lines).contains(&client),
                "{client} is neither the peer {peer} nor in the header {lines:?}"
            );
        }
        let info = proxies.client_info(Some(input.peer), values(), None);
        assert_eq!(info.ip, Some(client));
    }
});
