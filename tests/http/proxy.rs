//! The `accounts_api` example behind a real forwarding reverse proxy, written here: a small
//! HTTP/1.1 proxy on 127.0.0.1 that forwards every header as the client sent it (a client's
//! own `Forwarded` and `X-Forwarded-For` included) and adds the client's address as nginx
//! does, either appending it to `X-Forwarded-For` (`$proxy_add_x_forwarded_for`) or setting
//! `X-Real-IP` (`$remote_addr`). Clients connect from distinct loopback addresses.
//!
//! The hole this guards: keycard once preferred `Forwarded` whenever a request had one, so
//! behind a proxy appending only `X-Forwarded-For` every client chose its own address (a fresh
//! `Forwarded: for=...` per guess escaped the per-address limits, and naming a victim's
//! address locked the victim out). Now only the configured header is read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::support::server::{client_from, send, Reply, Server};
use keycard::http::{ClientIpHeader, SessionCookie, TrustedProxies};
use keycard::{Argon2Hasher, MemoryThrottle, MemoryTokenStore, MemoryUserStore, UserRecord};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const ANN: &str = "ann@example.com";
const ANN_PASSWORD: &str = "correct horse battery staple";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "a different long passphrase";

/// The attacker's and the victim's connections to the proxy.
const ATTACKER: &str = "127.0.0.9";
const VICTIM: &str = "127.0.0.8";

/// Failed password checks allowed per account and address (the default throttle's).
const PER_ACCOUNT_IP: usize = 10;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// How the proxy tells the app who the client is.
#[derive(Debug, Clone, Copy)]
enum Forwarding {
    /// nginx's `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`: the client's
    /// `X-Forwarded-For` lines joined, with the peer's address appended (or the peer's address
    /// alone).
    AppendXForwardedFor,
    /// nginx's `proxy_set_header X-Real-IP $remote_addr;`: the client's `X-Real-IP` replaced
    /// by the peer's address.
    SetXRealIp,
}

/// A reverse proxy on 127.0.0.1 in front of `upstream`, stopped when dropped.
struct Proxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(upstream: SocketAddr, forwarding: Forwarding) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            loop {
                let (client, peer) = listener.accept().await.expect("accept a client");
                tokio::spawn(relay(client, peer.ip(), upstream, forwarding));
            }
        });
        Self { addr, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `POST path` with a JSON body from the client address `from`, with extra headers as a
    /// client sends them.
    async fn post(
        &self,
        from: &str,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = client_from(ip(from))
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(request).await
    }

    async fn login(
        &self,
        from: &str,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let body = json!({ "email": email, "password": password });
        self.post(from, "/login", &body, headers).await
    }

    /// `GET /me` with `token`, from `from`.
    async fn me(&self, from: &str, token: &str) -> Reply {
        send(
            client_from(ip(from))
                .get(self.url("/me"))
                .bearer_auth(token),
        )
        .await
    }
}

/// One request through the proxy: reads the client's request head and its `Content-Length`
/// body, rewrites the forwarding header as `forwarding` says (every other header passes
/// through unchanged), sends it upstream from 127.0.0.1 with `Connection: close`, and relays
/// the response until the upstream closes.
async fn relay(mut client: TcpStream, peer: IpAddr, upstream: SocketAddr, forwarding: Forwarding) {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await.expect("read the request");
        if n == 0 {
            return; // the client left without a request
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .expect("a text request head")
        .to_owned();
    let mut lines = head.split("\r\n").filter(|line| !line.is_empty());
    let request_line = lines.next().expect("a request line").to_owned();
    let mut headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.to_owned(), value.trim().to_owned())
        })
        .collect();
    let is = |name: &str, wanted: &str| name.eq_ignore_ascii_case(wanted);
    assert!(
        !headers.iter().any(|(n, _)| is(n, "transfer-encoding")),
        "this proxy forwards Content-Length bodies only"
    );
    let length: usize = headers
        .iter()
        .find(|(n, _)| is(n, "content-length"))
        .map_or(0, |(_, v)| v.parse().expect("a Content-Length"));
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await.expect("read the body");
        assert!(n > 0, "the client closed mid-body");
        body.extend_from_slice(&chunk[..n]);
    }

    // Hop-by-hop: this proxy opens one upstream connection per request.
    headers.retain(|(n, _)| !is(n, "connection") && !is(n, "keep-alive"));
    match forwarding {
        Forwarding::AppendXForwardedFor => {
            let prior: Vec<String> = headers
                .iter()
                .filter(|(n, _)| is(n, "x-forwarded-for"))
                .map(|(_, v)| v.clone())
                .collect();
            headers.retain(|(n, _)| !is(n, "x-forwarded-for"));
            let value = if prior.is_empty() {
                peer.to_string()
            } else {
                format!("{}, {peer}", prior.join(", "))
            };
            headers.push(("X-Forwarded-For".to_owned(), value));
        }
        Forwarding::SetXRealIp => {
            headers.retain(|(n, _)| !is(n, "x-real-ip"));
            headers.push(("X-Real-IP".to_owned(), peer.to_string()));
        }
    }
    headers.push(("Connection".to_owned(), "close".to_owned()));

    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(ip("127.0.0.1"), 0))
        .expect("bind the proxy's own address");
    let mut server = socket.connect(upstream).await.expect("reach the app");
    let mut request = format!("{request_line}\r\n");
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    server
        .write_all(request.as_bytes())
        .await
        .expect("forward the head");
    server.write_all(&body).await.expect("forward the body");
    tokio::io::copy(&mut server, &mut client)
        .await
        .expect("relay the response");
    client
        .shutdown()
        .await
        .expect("close the client connection");
}

/// The accounts app over memory stores with the default throttle (10 failures per account
/// and address) and a fast test hasher, trusting the proxy on 127.0.0.1 and reading `header`,
/// with the proxy in front; Ann and Bob registered.
async fn start(header: ClientIpHeader, forwarding: Forwarding) -> (Server, Proxy) {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let day = Duration::from_secs(24 * 60 * 60);
    let auth = crate::app::authenticator(users.clone(), Arc::new(MemoryTokenStore::new()), day)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .throttle(MemoryThrottle::default())
        .build();
    let proxies: TrustedProxies = "127.0.0.1".parse().expect("proxy list");
    let accounts =
        crate::support::accounts::app(auth, SessionCookie::default(), proxies.with_header(header));
    let server = Server::start(crate::app::router(accounts)).await;
    let upstream: SocketAddr = server
        .url("")
        .trim_start_matches("http://")
        .parse()
        .expect("the server's address");
    let proxy = Proxy::start(upstream, forwarding).await;
    for (email, password) in [(ANN, ANN_PASSWORD), (BOB, BOB_PASSWORD)] {
        let body = json!({ "email": email, "password": password });
        let reply = proxy.post("127.0.0.2", "/register", &body, &[]).await;
        assert_eq!(reply.status, 202, "{reply:?}");
    }
    (server, proxy)
}

#[track_caller]
fn assert_status(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
}

/// The victim logs in with the right password, through the proxy, whatever the attacker
/// claimed; its session records its own address, read from the proxy's header, although it
/// sends a spoofed `Forwarded` too.
async fn victim_logs_in(proxy: &Proxy, email: &str, password: &str) {
    let spoof = [("forwarded", "for=203.0.113.77")];
    let reply = proxy.login(VICTIM, email, password, &spoof).await;
    assert_status(&reply, 200);
    let token = reply.json()["token"].as_str().expect("a token").to_owned();
    let me = proxy.me(VICTIM, &token).await;
    assert_status(&me, 200);
    assert_eq!(me.json()["session"]["ip"], VICTIM, "{me:?}");
}

/// The attack through a proxy that appends `X-Forwarded-For` and passes the client's
/// `Forwarded` through: a fresh `Forwarded: for=` per guess does not change the attacker's
/// address, and naming the victim's address (in `Forwarded` and as a client-written leftmost
/// `X-Forwarded-For` entry) does not lock the victim out.
#[tokio::test]
async fn a_client_forwarded_header_does_not_pick_its_address_behind_an_xff_proxy() {
    let (_server, proxy) = start(
        ClientIpHeader::XForwardedFor,
        Forwarding::AppendXForwardedFor,
    )
    .await;

    // Fresh spoofed addresses: still one client, throttled after the per-(account, IP) limit.
    for n in 1..=PER_ACCOUNT_IP {
        let forwarded = format!("for=198.51.100.{n}");
        let reply = proxy
            .login(ATTACKER, ANN, "wrong guess", &[("forwarded", &forwarded)])
            .await;
        assert_status(&reply, 401);
    }
    for n in 11..=13 {
        let forwarded = format!("for=198.51.100.{n}");
        let reply = proxy
            .login(ATTACKER, ANN, "wrong guess", &[("forwarded", &forwarded)])
            .await;
        assert_status(&reply, 429);
        assert!(reply.header("retry-after").is_some(), "{reply:?}");
    }

    // Guesses claiming to be the victim count against the attacker's own address.
    let as_victim = [("forwarded", "for=127.0.0.8"), ("x-forwarded-for", VICTIM)];
    for _ in 0..PER_ACCOUNT_IP {
        let reply = proxy.login(ATTACKER, BOB, "wrong guess", &as_victim).await;
        assert_status(&reply, 401);
    }
    let reply = proxy.login(ATTACKER, BOB, "wrong guess", &as_victim).await;
    assert_status(&reply, 429);

    // The victim is not locked out of either account.
    victim_logs_in(&proxy, BOB, BOB_PASSWORD).await;
    victim_logs_in(&proxy, ANN, ANN_PASSWORD).await;
}

/// The same attack through a proxy that sets `X-Real-IP` (and passes the client's
/// `Forwarded` and `X-Forwarded-For` through), with the app reading `X-Real-IP`.
#[tokio::test]
async fn client_forwarding_headers_do_not_pick_its_address_behind_an_x_real_ip_proxy() {
    let (_server, proxy) = start(ClientIpHeader::XRealIp, Forwarding::SetXRealIp).await;
    for n in 1..=PER_ACCOUNT_IP {
        let forwarded = format!("for=198.51.100.{n}");
        let xff = format!("198.51.101.{n}");
        let headers = [
            ("forwarded", forwarded.as_str()),
            ("x-forwarded-for", xff.as_str()),
            ("x-real-ip", VICTIM),
        ];
        let reply = proxy.login(ATTACKER, BOB, "wrong guess", &headers).await;
        assert_status(&reply, 401);
    }
    let reply = proxy
        .login(
            ATTACKER,
            BOB,
            "wrong guess",
            &[("x-real-ip", "198.51.100.99")],
        )
        .await;
    assert_status(&reply, 429);
    victim_logs_in(&proxy, BOB, BOB_PASSWORD).await;
}

/// The example servers' `--client-ip-header` reaches the `TrustedProxies` every example
/// binary gets from `Args::trusted_proxies` (and sessions last a day unless `--session-ttl`
/// says otherwise).
#[test]
fn the_client_ip_header_flag() {
    use clap::Parser as _;

    let parse = |extra: &[&str]| {
        let args = [
            "example",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "127.0.0.1",
        ];
        crate::common::Args::try_parse_from(args.iter().chain(extra))
    };
    let default = parse(&[]).expect("valid arguments");
    assert_eq!(default.session_ttl(), Duration::from_secs(86_400));
    let default = default.trusted_proxies();
    assert_eq!(default.header(), &ClientIpHeader::XForwardedFor);
    assert_eq!(default.networks().len(), 2);
    for (flag, header) in [
        ("forwarded", ClientIpHeader::Forwarded),
        ("X-Real-IP", ClientIpHeader::XRealIp),
        ("x-forwarded-for", ClientIpHeader::XForwardedFor),
    ] {
        let args = parse(&["--client-ip-header", flag]).expect("valid arguments");
        assert_eq!(args.trusted_proxies().header(), &header);
    }
    let cf = parse(&["--client-ip-header", "CF-Connecting-IP"]).expect("valid arguments");
    assert_eq!(cf.trusted_proxies().header().name(), "cf-connecting-ip");
    assert_eq!(cf.trusted_proxies().networks().len(), 2);
    let err = parse(&["--client-ip-header", "not a header"]).expect_err("refused");
    assert!(
        err.to_string().contains("is not an HTTP header name"),
        "{err}"
    );
}
