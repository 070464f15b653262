//! Token formats through the authenticator: prefixed tokens are issued, validated and logged
//! out; plain tokens survive turning the prefix on (and prefixed ones turning it off); a bad
//! checksum or a foreign prefix is `MalformedToken` without a single token store call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore,
    PasswordHasher, Session, SessionId, StoreError, TokenFormat, TokenStore, UserId, UserRecord,
    TOKEN_LEN,
};
use time::OffsetDateTime;

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// A memory token store that counts every call.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryTokenStore,
    calls: AtomicUsize,
}

impl CountingStore {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl TokenStore for CountingStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        self.count();
        self.inner.create(session).await
    }
    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        self.count();
        self.inner.get(id, now).await
    }
    async fn touch(&self, id: &SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.count();
        self.inner.touch(id, at).await
    }
    async fn touch_from(
        &self,
        id: &SessionId,
        at: OffsetDateTime,
        ip: std::net::IpAddr,
    ) -> Result<bool, StoreError> {
        self.count();
        self.inner.touch_from(id, at, ip).await
    }
    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.count();
        self.inner.delete(id).await
    }
    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        self.count();
        self.inner.delete_for_user(user).await
    }
    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        self.count();
        self.inner.delete_for_user_except(user, keep).await
    }
    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        self.count();
        self.inner.list_for_user(user, now).await
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.count();
        self.inner.purge_expired(now).await
    }
}

type Users = Arc<MemoryUserStore>;

struct Stores {
    users: Users,
    tokens: Arc<CountingStore>,
}

fn stores() -> Stores {
    let users: Users = Arc::new(MemoryUserStore::new());
    let phc = Argon2Hasher::insecure_for_tests()
        .hash(PASSWORD.as_bytes())
        .expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, phc))
        .expect("insert");
    Stores {
        users,
        tokens: Arc::new(CountingStore::default()),
    }
}

/// An authenticator over shared stores, so that two formats can see the same sessions.
fn auth(stores: &Stores, format: TokenFormat) -> Authenticator<Users> {
    Authenticator::builder(Arc::clone(&stores.users), Arc::clone(&stores.tokens))
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .token_format(format)
        .build()
}

fn myapp() -> TokenFormat {
    TokenFormat::prefixed("myapp_").expect("valid prefix")
}

async fn login(auth: &Authenticator<Users>) -> String {
    auth.login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login")
        .token
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn the_default_format_is_plain() {
    let stores = stores();
    let auth = auth(&stores, TokenFormat::default());
    let token = login(&auth).await;
    assert_eq!(token.len(), TOKEN_LEN);
    assert_eq!(token.as_bytes()[22], b'.');
    assert!(auth.validate(&token).await.is_ok());
}

#[tokio::test]
async fn a_prefixed_format_issues_validates_and_logs_out_prefixed_tokens() {
    let stores = stores();
    let auth = auth(&stores, myapp());
    let token = login(&auth).await;
    assert!(token.starts_with("myapp_"), "{token}");
    assert_eq!(token.len(), myapp().token_len());
    let found = auth.validate(&token).await.expect("validates");
    assert_eq!(found.user.id, UserId::from(1_i64));
    assert_eq!(
        found.session.id.to_string(),
        token["myapp_".len().."myapp_".len() + 22]
    );
    assert!(auth.logout(&token).await.expect("logout").destroyed());
    assert!(matches!(
        auth.validate(&token).await,
        Err(Error::InvalidToken)
    ));
}

#[tokio::test]
async fn turning_the_prefix_on_or_off_logs_no_one_out() {
    let stores = stores();
    let plain = auth(&stores, TokenFormat::plain());
    let prefixed = auth(&stores, myapp());
    let old = login(&plain).await;
    let new = login(&prefixed).await;
    for (name, a) in [("prefixed", &prefixed), ("plain", &plain)] {
        for token in [&old, &new] {
            a.validate(token)
                .await
                .unwrap_or_else(|e| panic!("{name} format refused {token}: {e}"));
        }
    }
}

#[tokio::test]
async fn a_bad_checksum_or_another_prefix_never_reaches_the_store() {
    let stores = stores();
    let auth = auth(&stores, myapp());
    let token = login(&auth).await;
    let other = TokenFormat::prefixed("other_")
        .expect("valid")
        .generate()
        .expect("rng");
    let mut typo = token.clone().into_bytes();
    typo[10] = if typo[10] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).expect("ascii");
    let mut bad_sum = token.clone();
    let last = bad_sum.pop().expect("non-empty");
    bad_sum.push(if last == '0' { '1' } else { '0' });
    let calls = stores.tokens.calls();
    for bad in [typo.as_str(), bad_sum.as_str(), other.expose_secret()] {
        assert!(
            matches!(auth.validate(bad).await, Err(Error::MalformedToken)),
            "{bad}"
        );
        assert!(
            matches!(auth.validate_session(bad).await, Err(Error::MalformedToken)),
            "{bad}"
        );
        assert!(
            !auth.logout(bad).await.expect("logout").destroyed(),
            "{bad}"
        );
    }
    assert_eq!(
        stores.tokens.calls(),
        calls,
        "a malformed token must not reach the token store"
    );
    // The real token still works (and does reach the store).
    assert!(auth.validate(&token).await.is_ok());
    assert!(stores.tokens.calls() > calls);
}

#[tokio::test]
async fn a_stripped_prefixed_token_does_not_validate() {
    let stores = stores();
    let auth = auth(&stores, myapp());
    let token = login(&auth).await;
    let stripped = &token["myapp_".len().."myapp_".len() + TOKEN_LEN];
    assert!(matches!(
        auth.validate(stripped).await,
        Err(Error::InvalidToken)
    ));
    assert!(!auth.logout(stripped).await.expect("logout").destroyed());
    assert!(
        auth.validate(&token).await.is_ok(),
        "the real token lives on"
    );
}

#[test]
fn invalid_prefixes_are_refused_with_a_clear_error() {
    let e = TokenFormat::prefixed("my-app").expect_err("invalid");
    let msg = e.to_string();
    assert!(
        msg.contains("my-app") && msg.contains("[A-Za-z0-9_]"),
        "{msg}"
    );
}

/// Every single-character change to an issued prefixed token (each position, each of a set
/// of replacements covering the token alphabets and near misses) is refused as malformed,
/// and none of them reaches the token store.
#[tokio::test]
async fn every_single_character_change_is_malformed_without_a_store_call() {
    let stores = stores();
    let auth = auth(&stores, myapp());
    let token = login(&auth).await;
    let calls = stores.tokens.calls();
    let changes = single_character_changes(&token);
    assert!(changes.len() > 79 * 12, "{}", changes.len());
    for changed in &changes {
        assert!(
            matches!(auth.validate(changed).await, Err(Error::MalformedToken)),
            "a single-character change was not refused as malformed: {changed}"
        );
    }
    assert_eq!(
        stores.tokens.calls(),
        calls,
        "no change may reach the store"
    );
}

/// On a store that answers from memory (the memory store itself, not behind a counting
/// wrapper), the validate looks the token up before it computes the checksum, since the
/// stored digest covers the checksum: every single-character change is still refused as
/// malformed, the change of a checksum character alone (the id and the secret right, so the
/// lookup finds the session) included.
#[tokio::test]
async fn on_a_store_that_answers_at_once_every_change_is_still_malformed() {
    let users = stores().users;
    let auth = Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .token_format(myapp())
        .build();
    let token = &login(&auth).await;
    let changes = single_character_changes(token);
    let in_checksum = changes
        .iter()
        .filter(|c| c.len() == token.len() && c[..token.len() - 6] == token[..token.len() - 6])
        .count();
    assert!(in_checksum >= 6 * 4, "{in_checksum}");
    for changed in &changes {
        assert!(
            matches!(
                auth.validate_session(changed).await,
                Err(Error::MalformedToken)
            ),
            "a single-character change was not refused as malformed: {changed}"
        );
        assert!(
            matches!(auth.validate(changed).await, Err(Error::MalformedToken)),
            "{changed}"
        );
    }
    auth.validate(token)
        .await
        .expect("the real token still validates");
}

/// Through the validation cache in front of a store that needs a round trip (the counting
/// store): once a session is cached, the cache answers without the CRC, and every
/// single-character change is still malformed without a single call to the store behind it,
/// whether the cache holds the changed token's id (a change in the checksum) or not (a change
/// elsewhere, refused by the CRC before the round trip).
#[tokio::test]
async fn through_the_validation_cache_every_change_is_malformed_without_a_round_trip() {
    use keycard::store::{CacheOptions, CachedTokenStore, LocalChannel};
    let stores = stores();
    let cached = CachedTokenStore::new(
        Arc::clone(&stores.tokens),
        LocalChannel::new(),
        CacheOptions::default(),
    );
    assert!(
        cached
            .wait_connected(std::time::Duration::from_secs(1))
            .await
    );
    let auth = Authenticator::builder(Arc::clone(&stores.users), cached)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .token_format(myapp())
        .build();
    let token = login(&auth).await;
    auth.validate_session(&token)
        .await
        .expect("valid, and now cached");
    auth.validate_session(&token)
        .await
        .expect("valid from the cache");
    let calls = stores.tokens.calls();
    for changed in &single_character_changes(&token) {
        assert!(
            matches!(
                auth.validate_session(changed).await,
                Err(Error::MalformedToken)
            ),
            "{changed}"
        );
    }
    auth.validate_session(&token).await.expect("still valid");
    assert_eq!(
        stores.tokens.calls(),
        calls,
        "neither a change nor the cached token went to the store"
    );
}

/// Every string that differs from `token` in one character, replaced by one of a set
/// covering the token alphabets and near misses.
fn single_character_changes(token: &str) -> Vec<String> {
    let mut changes = Vec::new();
    for (i, original) in token.char_indices() {
        for with in [
            'A', 'a', '0', '9', 'z', '_', '-', '.', '+', '/', '=', ' ', 'é', '\0',
        ] {
            if with != original {
                changes.push(format!("{}{with}{}", &token[..i], &token[i + 1..]));
            }
        }
    }
    changes
}
