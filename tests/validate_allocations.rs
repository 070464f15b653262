//! A validate on the memory store, or on a validation cache hit, allocates only what the
//! caller receives: the token is parsed into fixed arrays, the store answers without a boxed
//! future, and the only allocations are the returned `Session`'s own strings (its user agent,
//! and a user id too long to be kept inline). Counted by a global allocator, so this binary
//! holds one test: nothing else may allocate while it counts.

use std::alloc::System;
use std::sync::Arc;
use std::time::Duration;

use keycard::api_tokens::{ApiTokens, NewApiToken};
use keycard::store::{CacheOptions, CachedTokenStore, LocalChannel};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, PasswordHasher,
    TokenStore, UserRecord,
};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// Validates counted per case.
const ROUNDS: usize = 1000;

fn allocations() -> usize {
    let stats = GLOBAL.stats();
    stats.allocations + stats.reallocations
}

/// Allocations per validate of one live token over the store `make_tokens` builds, after one
/// few warm-up validates; the session logged in with `agent`. Rounded down over 1000
/// validates, so a one-time allocation elsewhere (a lazily built runtime or tracing
/// structure) does not count as one per validate, while one more per validate does.
fn allocations_per_validate<T: TokenStore + 'static>(
    make_tokens: impl AsyncFnOnce() -> T,
    user_id: &str,
    agent: Option<&str>,
    api_token: bool,
) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Built inside the runtime: the cache spawns its listener there.
    let tokens = runtime.block_on(make_tokens());
    let hasher = Argon2Hasher::insecure_for_tests();
    let users = Arc::new(MemoryUserStore::new());
    let phc = hasher.hash(PASSWORD.as_bytes()).expect("hash");
    users
        .insert(UserRecord::new(user_id, EMAIL, phc))
        .expect("new user");
    let auth = Authenticator::builder(users, tokens)
        .password_hasher(hasher)
        .without_throttle()
        .api_tokens(ApiTokens::new(["notes:read"]).expect("scopes"))
        .build();
    runtime.block_on(async {
        let mut client = ClientInfo::none().with_ip("203.0.113.9".parse().expect("ip"));
        if let Some(agent) = agent {
            client = client.with_user_agent(agent);
        }
        let login = auth.login(EMAIL, PASSWORD, client).await.expect("login");
        let token = match api_token {
            false => login.token.expose_secret().to_owned(),
            true => auth
                .create_api_token(&login.session, NewApiToken::new("t", ["notes:read"]))
                .await
                .expect("api token")
                .token
                .expose_secret()
                .to_owned(),
        };
        let first = auth.validate_session(&token).await.expect("valid");
        for _ in 0..10 {
            drop(auth.validate_session(&token).await.expect("valid"));
        }
        assert_eq!(first.user_id.as_str(), user_id);
        let before = allocations();
        for _ in 0..ROUNDS {
            let session = auth.validate_session(&token).await.expect("valid");
            auth.require_scope(&session, "notes:read").expect("scope");
            assert_eq!(session.id, first.id);
        }
        (allocations() - before) / ROUNDS
    })
}

#[test]
fn a_validate_allocates_only_the_strings_it_returns() {
    let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    let agent = "Mozilla/5.0 (X11; Linux x86_64) keycard-test";
    let memory = async || MemoryTokenStore::new();
    // Until its channel is connected the cache trusts nothing and every validate reads the
    // store: wait for it, as a service does before it counts on the cache.
    let cached = async || {
        let tokens = CachedTokenStore::new(
            MemoryTokenStore::new(),
            LocalChannel::new(),
            CacheOptions::default(),
        );
        assert!(
            tokens.wait_connected(Duration::from_secs(10)).await,
            "the local channel connects"
        );
        tokens
    };
    // (user id, agent, strings the returned session holds on the heap)
    for (user_id, agent, strings) in [
        ("42", None, 0),
        ("42", Some(agent), 1),
        (uuid, None, 1),
        (uuid, Some(agent), 2),
    ] {
        let case = format!("user id {user_id:?}, agent {agent:?}");
        assert_eq!(
            allocations_per_validate(memory, user_id, agent, false),
            strings,
            "memory store, {case}: the returned strings and nothing else"
        );
        // A hit clones the cached session: its user agent is copied, a long user id's string
        // shared (a `UserId` clone never allocates).
        assert_eq!(
            allocations_per_validate(cached, user_id, agent, false),
            usize::from(agent.is_some()),
            "validation cache hit, {case}: the copied agent and nothing else"
        );
        if agent.is_none() {
            // An API token (no user agent) with its scope check: its name and scopes are
            // shared, never copied.
            assert_eq!(
                allocations_per_validate(memory, user_id, None, true),
                strings,
                "memory store, API token, {case}"
            );
            assert_eq!(
                allocations_per_validate(cached, user_id, None, true),
                0,
                "validation cache hit, API token, {case}"
            );
        }
    }
}
