//! A validate on the memory store, or on a validation cache hit, allocates nothing: the token
//! is parsed into fixed arrays, the store answers without a boxed future, and the returned
//! `Session` shares its user id and user agent with the store. Counted by a global allocator,
//! so this binary holds one test: nothing else may allocate while it counts.

use std::alloc::System;
use std::sync::Arc;

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

fn allocations() -> usize {
    let stats = GLOBAL.stats();
    stats.allocations + stats.reallocations
}

/// Allocations per validate of one live token over the store `make_tokens` builds, after one
/// warm-up validate.
fn allocations_per_validate<T: TokenStore + 'static>(
    make_tokens: impl FnOnce() -> T,
    user_id: &str,
) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // The cache spawns its listener: build the store inside the runtime.
    let tokens = {
        let _inside = runtime.enter();
        make_tokens()
    };
    let hasher = Argon2Hasher::insecure_for_tests();
    let users = Arc::new(MemoryUserStore::new());
    let phc = hasher.hash(PASSWORD.as_bytes()).expect("hash");
    users
        .insert(UserRecord::new(user_id, EMAIL, phc))
        .expect("new user");
    let auth = Authenticator::builder(users, tokens)
        .password_hasher(hasher)
        .without_throttle()
        .build();
    runtime.block_on(async {
        // A long user agent and, for the second call, a user id too long to be kept inline:
        // both must be shared, not copied.
        let client = ClientInfo::none()
            .with_ip("203.0.113.9".parse().expect("ip"))
            .with_user_agent(&"Mozilla/5.0 (X11; Linux x86_64) keycard-test ".repeat(3));
        let login = auth.login(EMAIL, PASSWORD, client).await.expect("login");
        let token = login.token.expose_secret().to_owned();
        let first = auth.validate_session(&token).await.expect("valid");
        assert_eq!(first.user_id.as_str(), user_id);
        let before = allocations();
        for _ in 0..100 {
            let session = auth.validate_session(&token).await.expect("valid");
            assert_eq!(session.id, first.id);
        }
        (allocations() - before).div_ceil(100)
    })
}

#[test]
fn validating_on_the_memory_store_or_a_cache_hit_allocates_nothing() {
    let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    for user_id in ["42", uuid] {
        assert_eq!(
            allocations_per_validate(MemoryTokenStore::new, user_id),
            0,
            "memory store, user id {user_id:?}"
        );
        let cached = || {
            CachedTokenStore::new(
                MemoryTokenStore::new(),
                LocalChannel::new(),
                CacheOptions::default(),
            )
        };
        assert_eq!(
            allocations_per_validate(cached, user_id),
            0,
            "validation cache hit, user id {user_id:?}"
        );
    }
}
