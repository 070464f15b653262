//! Both example apps attacked as an attacker would, over real HTTP on loopback, with
//! distinct loopback source addresses (127.0.0.2, 127.0.0.3, ...) as distinct clients:
//! concurrent guessing, the real user at another address, password spraying, forged
//! forwarding headers, and a login storm against the bounded hashing queue.
//!
//! Every test body takes a [`Framework`] and attacks both apps on it (axum, and actix-web
//! with two workers): the macro at the bottom runs each body on every framework enabled.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::server::{
    client_from, client_ip, for_each_framework, send, Framework, Reply, Server,
};
use futures_util::future::join_all;
use keycard::http::TrustedProxies;
use keycard::{
    Argon2Hasher, AuthenticatorBuilder, MemoryTokenStore, MemoryUserStore, UserRecord, UserStore,
};

type Users = Arc<dyn UserStore<User = UserRecord>>;

/// One of the two example servers, and how its protocol spells things.
#[derive(Debug, Clone, Copy)]
enum Target {
    Budgets,
    Increase,
}

const TARGETS: [Target; 2] = [Target::Budgets, Target::Increase];

impl Target {
    fn login_path(self) -> &'static str {
        match self {
            Self::Budgets => "/api/sessions",
            Self::Increase => "/login",
        }
    }

    /// The status of a wrong password (or unknown email).
    fn refused(self) -> u16 {
        match self {
            Self::Budgets => 422,
            Self::Increase => 401,
        }
    }

    fn demo(self) -> (&'static str, &'static str) {
        match self {
            Self::Budgets => (
                crate::budgets::app::DEMO_EMAIL,
                crate::budgets::app::DEMO_PASSWORD,
            ),
            Self::Increase => (
                crate::increase::app::DEMO_EMAIL,
                crate::increase::app::DEMO_PASSWORD,
            ),
        }
    }

    fn body(self, email: &str, password: &str) -> String {
        serde_json::json!({ "email": email, "password": password }).to_string()
    }

    fn token(self, reply: &Reply) -> String {
        let json = reply.json();
        let token = match self {
            Self::Budgets => &json["token"],
            Self::Increase => &json["client"]["auth_token"],
        };
        token
            .as_str()
            .expect("a token in the login reply")
            .to_owned()
    }

    fn protected(self, token: &str) -> String {
        match self {
            Self::Budgets => format!("/api/budgets?token={token}"),
            Self::Increase => format!("/client?auth_token={token}"),
        }
    }

    /// The example app on `framework` with the default throttle, over memory stores,
    /// configured further by `configure` (the fast test hasher unless it sets another).
    async fn start(
        self,
        framework: Framework,
        proxies: TrustedProxies,
        configure: impl FnOnce(AuthenticatorBuilder<Users>) -> AuthenticatorBuilder<Users>,
    ) -> Server {
        let users = Arc::new(MemoryUserStore::<UserRecord>::new());
        let tokens = Arc::new(MemoryTokenStore::new());
        let day = Duration::from_secs(86_400);
        let base = match self {
            Self::Budgets => crate::budgets::app::authenticator(users.clone(), tokens, day),
            Self::Increase => crate::increase::app::authenticator(users.clone(), tokens, day),
        };
        let auth = configure(base.password_hasher(Argon2Hasher::insecure_for_tests())).build();
        match self {
            Self::Budgets => {
                users
                    .insert(crate::budgets::app::demo_user(&auth).await.expect("hash"))
                    .expect("fresh store");
                let api = crate::budgets::app::Api::new(auth, proxies);
                match framework {
                    #[cfg(feature = "axum")]
                    Framework::Axum => {
                        Server::start(crate::budgets::axum_routes::router(api)).await
                    }
                    #[cfg(feature = "actix-web")]
                    Framework::Actix => {
                        Server::start_actix(crate::budgets::actix_routes::configure(api))
                    }
                }
            }
            Self::Increase => {
                users
                    .insert(crate::increase::app::demo_user(&auth).await.expect("hash"))
                    .expect("fresh store");
                let api = crate::increase::app::Api::new(auth, proxies);
                match framework {
                    #[cfg(feature = "axum")]
                    Framework::Axum => {
                        Server::start(crate::increase::axum_routes::router(api)).await
                    }
                    #[cfg(feature = "actix-web")]
                    Framework::Actix => {
                        Server::start_actix(crate::increase::actix_routes::configure(api))
                    }
                }
            }
        }
    }

    async fn login(self, server: &Server, from: IpAddr, email: &str, password: &str) -> Reply {
        server
            .json_from(from, "POST", self.login_path(), &self.body(email, password))
            .await
    }
}

fn assert_throttled(reply: &Reply) {
    assert_eq!(reply.status, 429, "{reply:?}");
    let secs: u64 = reply
        .header("retry-after")
        .expect("a 429 carries Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=900).contains(&secs), "{reply:?}");
}

async fn concurrent_guesses_from_one_address_are_capped_and_the_real_user_still_logs_in(
    framework: Framework,
) {
    for target in TARGETS {
        let server = target.start(framework, TrustedProxies::none(), |b| b).await;
        let (email, password) = target.demo();
        let attacker = client_ip(1);
        let wrong: Vec<String> = (0..60).map(|i| format!("guess-{i}")).collect();
        let guesses = join_all(
            wrong
                .iter()
                .map(|w| target.login(&server, attacker, email, w)),
        )
        .await;
        let checked = guesses
            .iter()
            .filter(|r| r.status == target.refused())
            .count();
        for reply in guesses.iter().filter(|r| r.status != target.refused()) {
            assert_throttled(reply);
        }
        assert!(
            (1..=10).contains(&checked),
            "{target:?}: {checked} of 60 concurrent guesses were checked; the limit is 10"
        );
        // How many of the burst get checked depends on how many arrive while others are in
        // flight (a server with several workers sees more at once). Sequential guesses use up
        // the rest of the window's 10, each checked; then every further guess is refused, even
        // the right password.
        for i in checked..10 {
            let reply = target
                .login(&server, attacker, email, &format!("more-{i}"))
                .await;
            assert_eq!(reply.status, target.refused(), "{target:?}: {reply:?}");
        }
        assert_throttled(&target.login(&server, attacker, email, "one-more").await);
        assert_throttled(&target.login(&server, attacker, email, password).await);

        // The real user, at another address, is not locked out.
        let real = target.login(&server, client_ip(2), email, password).await;
        assert_eq!(real.status, 200, "{target:?}: {real:?}");
        let token = target.token(&real);
        let me = server.call("GET", &target.protected(&token)).await;
        assert_eq!(me.status, 200, "{target:?}: {me:?}");
    }
}

async fn spraying_one_password_over_many_accounts_is_throttled(framework: Framework) {
    for target in TARGETS {
        let server = target.start(framework, TrustedProxies::none(), |b| b).await;
        let sprayer = client_ip(3);
        let mut statuses = Vec::new();
        for i in 0..120 {
            let reply = target
                .login(
                    &server,
                    sprayer,
                    &format!("victim{i}@example.com"),
                    "Summer2026!",
                )
                .await;
            if reply.status == 429 {
                assert_throttled(&reply);
            }
            statuses.push(reply.status);
        }
        let checked = statuses.iter().filter(|s| **s == target.refused()).count();
        assert_eq!(
            checked, 50,
            "{target:?}: one address gets 50 guesses across accounts per window"
        );
        assert!(
            statuses[50..].iter().all(|s| *s == 429),
            "{target:?}: {statuses:?}"
        );
        // Another address is unaffected.
        let (email, password) = target.demo();
        let other = target.login(&server, client_ip(4), email, password).await;
        assert_eq!(other.status, 200, "{target:?}: {other:?}");
    }
}

async fn forwarded_headers_count_only_from_trusted_proxies(framework: Framework) {
    for target in TARGETS {
        // 127.0.0.1 is the reverse proxy.
        let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
        let server = target
            .start(framework, "127.0.0.1".parse().expect("proxy list"), |b| b)
            .await;
        let (email, password) = target.demo();
        let via_proxy = |client: &'static str, password: &str| {
            send(
                client_from(proxy)
                    .post(server.url(target.login_path()))
                    .header("content-type", "application/json")
                    .header("x-forwarded-for", format!("6.6.6.6, {client}"))
                    .body(target.body(email, password)),
            )
        };
        // Ten guesses from 198.51.100.1, through the proxy, lock that client only.
        for i in 0..10 {
            let r = via_proxy("198.51.100.1", &format!("guess-{i}")).await;
            assert_eq!(r.status, target.refused(), "{target:?}: {r:?}");
        }
        assert_throttled(&via_proxy("198.51.100.1", "guess").await);
        // Another client behind the same proxy logs in; the spoofed 6.6.6.6 was never used.
        let ok = via_proxy("198.51.100.2", password).await;
        assert_eq!(ok.status, 200, "{target:?}: {ok:?}");

        // A client that is not a proxy cannot pick its address with the header.
        let direct = client_ip(5);
        for i in 0..10 {
            let r = send(
                client_from(direct)
                    .post(server.url(target.login_path()))
                    .header("content-type", "application/json")
                    .header("x-forwarded-for", format!("203.0.113.{i}"))
                    .header("forwarded", format!("for=203.0.114.{i}"))
                    .body(target.body(email, "guess")),
            )
            .await;
            assert_eq!(r.status, target.refused(), "{target:?}: {r:?}");
        }
        let r = send(
            client_from(direct)
                .post(server.url(target.login_path()))
                .header("content-type", "application/json")
                .header("x-forwarded-for", "203.0.113.200")
                .body(target.body(email, password)),
        )
        .await;
        assert_throttled(&r);
    }
}

async fn a_login_storm_gets_fast_503s_and_validation_stays_prompt(framework: Framework) {
    // The storm loads a core with real hashes, and its time bounds are about this machine.
    let _alone = crate::support::real_hashing::alone().await;
    for target in TARGETS {
        // The real argon2id parameters, one hash at a time, two waiting at most.
        let server = target
            .start(framework, TrustedProxies::none(), |b| {
                b.password_hasher(Argon2Hasher::default())
                    .max_concurrent_hashes(1)
                    .max_queued_hashes(2)
            })
            .await;
        let server = Arc::new(server);
        let (email, password) = target.demo();
        let login = target.login(&server, client_ip(6), email, password).await;
        assert_eq!(login.status, 200, "{login:?}");
        let token = target.token(&login);

        // 80 logins at once from 80 addresses, while the user keeps using their token.
        let storm = join_all((0..80).map(|i| {
            let server = Arc::clone(&server);
            async move {
                let started = Instant::now();
                let reply = target
                    .login(&server, client_ip(100 + i), email, "wrong")
                    .await;
                (reply, started.elapsed())
            }
        }));
        let validations = async {
            let mut slowest = Duration::ZERO;
            for _ in 0..20 {
                let started = Instant::now();
                let me = server.call("GET", &target.protected(&token)).await;
                assert_eq!(me.status, 200, "{me:?}");
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            slowest
        };
        let (storm, slowest_validation) = tokio::join!(storm, validations);

        let overloaded: Vec<_> = storm.iter().filter(|(r, _)| r.status == 503).collect();
        let checked = storm
            .iter()
            .filter(|(r, _)| r.status == target.refused())
            .count();
        assert_eq!(
            overloaded.len() + checked,
            80,
            "{target:?}: only 503 or a checked refusal"
        );
        assert!(
            overloaded.len() >= 40,
            "{target:?}: a queue of 2 behind 1 hash must shed most of 80 logins, shed {}",
            overloaded.len()
        );
        for (reply, took) in &overloaded {
            assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
            assert!(
                *took < Duration::from_secs(2),
                "{target:?}: a 503 took {took:?}"
            );
        }
        assert!(
            slowest_validation < Duration::from_millis(500),
            "{target:?}: validation took {slowest_validation:?} during the storm"
        );
    }
}

for_each_framework!(
    flavor = "multi_thread";
    concurrent_guesses_from_one_address_are_capped_and_the_real_user_still_logs_in,
    spraying_one_password_over_many_accounts_is_throttled,
    forwarded_headers_count_only_from_trusted_proxies,
    a_login_storm_gets_fast_503s_and_validation_stays_prompt,
);
