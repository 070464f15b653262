//! What every example server shares, whatever its web framework: the command line, and the
//! user store type an app that registers users runs on. What a server does at run time
//! (opening the stores named by `--store`, logging, waiting for Ctrl-C or SIGTERM) is in
//! `server.rs`; serving is in `axum_serve.rs` and `actix_serve.rs`. The tests compile this file
//! (and not `server.rs`) to check the command line and run `accounts_api`'s app in process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keycard::{AccountStore, UserRecord};

/// The same user store, as one that also creates users and changes their addresses (for an
/// app that registers users and runs the account flows).
pub(crate) type Registry = Arc<dyn AccountStore<User = UserRecord>>;

/// Command-line options, the same for every server.
#[derive(Debug, clap::Parser)]
#[command(
    version,
    about = "A keycard example server (see examples/README.md)",
    long_about = None
)]
pub(crate) struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub(crate) addr: SocketAddr,
    /// Session lifetime in seconds (at least 1).
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) session_ttl: u64,
    /// Where sessions and users live: `memory`, `sqlite://PATH` (feature `sqlite`),
    /// `postgres://...` (feature `postgres`) or `redis://...` (feature `redis`; users then
    /// stay in memory).
    #[arg(long, default_value = "memory")]
    pub(crate) store: String,
    /// Reverse proxies whose `--client-ip-header` names the client's address, as addresses
    /// or CIDR networks (`--trusted-proxy 10.0.0.0/8,127.0.0.1`; repeatable). Default: none,
    /// so the client is the connection's peer and forwarding headers are ignored (anyone can
    /// send them).
    #[arg(long = "trusted-proxy", value_name = "ADDR_OR_CIDR")]
    pub(crate) trusted_proxies: Vec<keycard::http::TrustedProxies>,
    /// The one header the trusted proxies write the client's address in, read from them
    /// only: `x-forwarded-for` (nginx's `$proxy_add_x_forwarded_for`, HAProxy, cloud load
    /// balancers), `forwarded` (RFC 7239), `x-real-ip`, or another name such as
    /// `cf-connecting-ip`. No other header is read: a proxy passes the others through as
    /// the client sent them.
    #[arg(
        long = "client-ip-header",
        value_name = "NAME",
        default_value = "x-forwarded-for"
    )]
    pub(crate) client_ip_header: keycard::http::ClientIpHeader,
}

impl Args {
    /// `--session-ttl` as a duration.
    pub(crate) fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl)
    }

    /// Every `--trusted-proxy`, as one list, read through `--client-ip-header`.
    pub(crate) fn trusted_proxies(&self) -> keycard::http::TrustedProxies {
        keycard::http::TrustedProxies::new(
            self.trusted_proxies
                .iter()
                .flat_map(|list| list.networks().iter().copied()),
        )
        .with_header(self.client_ip_header.clone())
    }
}
