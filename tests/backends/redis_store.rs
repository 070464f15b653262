//! Redis token store against a live server (`KEYCARD_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Each test uses its own key prefix and deletes its keys
//! afterwards. Fails, never skips, when the server is not running.

use std::sync::Arc;
use std::time::Duration;

use crate::support::stores::RedisPrefix;
use keycard::api_tokens::{ApiTokenGrant, ApiTokens, Scopes};
use keycard::redis::RedisTokenStore;
use keycard::{
    conformance, ClientInfo, Session, SessionKind, StoreError, Token, TokenStore, UserId,
};
use redis::AsyncCommands;
use time::OffsetDateTime;

fn session(user: &UserId, now: OffsetDateTime, ttl: Duration) -> Session {
    let token = Token::generate().expect("rng");
    Session::new(&token, user.clone(), now, ttl, ClientInfo::none())
}

/// An API token named `ci` with scopes `notes:read notes:write`, expiring at `expires_at`
/// (to the microsecond, as stores keep it).
pub(crate) fn api_token(user: &UserId, now: OffsetDateTime, expires_at: OffsetDateTime) -> Session {
    let scopes = Scopes::new(["notes:read", "notes:write"]).expect("scopes");
    let mut s = session(user, now, Duration::from_secs(600))
        .with_kind(SessionKind::ApiToken(ApiTokenGrant::new("ci", scopes)));
    s.expires_at = expires_at
        .replace_nanosecond(expires_at.nanosecond() / 1000 * 1000)
        .expect("in range");
    s
}

/// [`ApiTokens::NEVER`] in Unix milliseconds: the `PEXPIRETIME` of a token that never
/// expires.
pub(crate) fn never_ms() -> i64 {
    ApiTokens::NEVER.unix_timestamp() * 1000
}

#[tokio::test]
async fn api_tokens_are_hash_fields_outlive_delete_for_user_except_and_expire_in_9999() {
    let ns = RedisPrefix::new().await;
    let p = &ns.prefix;
    let store = ns.token_store().await;
    let mut conn = store.connection();
    let user = UserId::from("pat-owner");
    let now = OffsetDateTime::now_utc();
    let login = session(&user, now, Duration::from_secs(600));
    let pat = api_token(&user, now, ApiTokens::NEVER);
    store.create(&login).await.expect("create");
    store.create(&pat).await.expect("create");
    let key = format!("{p}session:{}", pat.id);
    let name: Option<String> = conn.hget(&key, "name").await.expect("hget");
    let scopes: Option<String> = conn.hget(&key, "scopes").await.expect("hget");
    assert_eq!(name.as_deref(), Some("ci"));
    assert_eq!(scopes.as_deref(), Some("notes:read notes:write"));
    let marked: bool = conn
        .hexists(format!("{p}session:{}", login.id), "name")
        .await
        .expect("hexists");
    assert!(!marked, "an interactive session has no API token fields");
    let expire_time = |key: String| {
        let mut conn = store.connection();
        async move {
            redis::cmd("PEXPIRETIME")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .expect("PEXPIRETIME")
        }
    };
    assert_eq!(
        expire_time(key.clone()).await,
        never_ms(),
        "the key expires in 9999"
    );
    assert_eq!(
        expire_time(format!("{p}user:pat-owner")).await,
        never_ms(),
        "the user's set lives as long as its latest session"
    );

    let from = "192.0.2.1".parse().expect("ip");
    let later = now + Duration::from_secs(90);
    assert!(store
        .touch_from(&pat.id, later, from)
        .await
        .expect("touch_from"));
    let ip: Option<String> = conn.hget(&key, "ip").await.expect("hget");
    assert_eq!(ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(
        expire_time(key.clone()).await,
        never_ms(),
        "touch_from keeps the key's expiry"
    );

    let other = Token::generate().expect("rng").id();
    assert_eq!(
        store
            .delete_for_user_except(&user, &other)
            .await
            .expect("delete_for_user_except"),
        1,
        "only the login goes"
    );
    let members: Vec<String> = conn
        .smembers(format!("{p}user:pat-owner"))
        .await
        .expect("smembers");
    assert_eq!(
        members,
        vec![pat.id.to_string()],
        "the token stays in the user's set"
    );
    let indexed: Vec<String> = conn
        .zrange(format!("{p}expiry"), 0, -1)
        .await
        .expect("zrange");
    assert_eq!(
        indexed,
        vec![format!("{}pat-owner", pat.id)],
        "the token stays in the expiry index"
    );
    let read = store.get(&pat.id, later).await.expect("get").expect("live");
    assert_eq!(read.kind, pat.kind);
    assert_eq!(read.client.ip, Some(from));
    assert_eq!(
        store.delete_for_user(&user).await.expect("delete_for_user"),
        1
    );
    assert!(ns.keys().is_empty(), "nothing left: {:?}", ns.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_keeps_the_contract() {
    let ns = RedisPrefix::new().await;
    let store: Arc<dyn TokenStore> = Arc::new(ns.token_store().await);
    conformance::run_all(&*store).await;
    conformance::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_keeps_the_contract_through_a_box() {
    let ns = RedisPrefix::new().await;
    let boxed: Box<dyn TokenStore> = Box::new(ns.token_store().await);
    conformance::run_all(&boxed).await;
}

#[tokio::test]
async fn keys_expire_natively_with_the_session() {
    let ns = RedisPrefix::new().await;
    let store = ns.token_store().await;
    let mut conn = store.connection();
    let user = UserId::from("ttl");
    let now = OffsetDateTime::now_utc();
    let s = session(&user, now, Duration::from_secs(100));
    store.create(&s).await.expect("create");
    let session_key = format!("{}session:{}", ns.prefix, s.id);
    let user_key = format!("{}user:ttl", ns.prefix);
    let session_ttl: i64 = conn.pttl(&session_key).await.expect("pttl");
    let user_ttl: i64 = conn.pttl(&user_key).await.expect("pttl");
    assert!(
        (90_000..=100_010).contains(&session_ttl),
        "session key PTTL {session_ttl}"
    );
    assert!(
        (90_000..=100_010).contains(&user_ttl),
        "user set PTTL {user_ttl}"
    );
    // A longer session extends the user set's expiry; a shorter one does not shorten it.
    let longer = session(&user, now, Duration::from_secs(1000));
    store.create(&longer).await.expect("create");
    let shorter = session(&user, now, Duration::from_secs(10));
    store.create(&shorter).await.expect("create");
    let user_ttl: i64 = conn.pttl(&user_key).await.expect("pttl");
    assert!(user_ttl > 990_000, "user set PTTL {user_ttl}");

    // A session that Redis expired on its own disappears from get and list, and purge still
    // clears its index entries and counts it.
    let brief = session(&user, OffsetDateTime::now_utc(), Duration::from_millis(300));
    store.create(&brief).await.expect("create");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let key_exists: bool = conn
        .exists(format!("{}session:{}", ns.prefix, brief.id))
        .await
        .expect("exists");
    assert!(!key_exists, "Redis expired the key");
    assert_eq!(store.get(&brief.id, now).await.expect("get"), None);
    assert_eq!(
        store.list_for_user(&user, now).await.expect("list").len(),
        3
    );
    assert_eq!(
        store
            .purge_expired(OffsetDateTime::now_utc())
            .await
            .expect("purge"),
        1
    );
    let indexed: Vec<String> = conn
        .zrange(format!("{}expiry", ns.prefix), 0, -1)
        .await
        .expect("zrange");
    assert_eq!(
        indexed.len(),
        3,
        "the expiry index holds the live sessions only"
    );
    assert_eq!(store.delete_for_user(&user).await.expect("delete"), 3);
    assert!(
        ns.keys().iter().all(|k| !k.contains("session:")),
        "{:?}",
        ns.keys()
    );
}

#[tokio::test]
async fn purge_works_in_batches_and_keeps_the_index_consistent() {
    let ns = RedisPrefix::new().await;
    let store = ns.token_store().await;
    let now = OffsetDateTime::now_utc();
    let users: Vec<UserId> = (0..7).map(|i| UserId::from(format!("u{i}"))).collect();
    let n = 2300;
    for i in 0..n {
        store
            .create(&session(&users[i % 7], now, Duration::from_secs(60)))
            .await
            .expect("create");
    }
    let live = session(&users[0], now, Duration::from_secs(3600));
    store.create(&live).await.expect("create");
    // By the caller's clock these expired; Redis still holds the keys (60 s TTL).
    let purged = store
        .purge_expired(now + Duration::from_secs(60))
        .await
        .expect("purge");
    assert_eq!(purged, n as u64);
    let keys = ns.keys();
    let mut expected = vec![
        format!("{}expiry", ns.prefix),
        format!("{}session:{}", ns.prefix, live.id),
        format!("{}user:u0", ns.prefix),
    ];
    expected.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, expected, "only the live session and its index remain");
}

#[tokio::test]
async fn a_wrong_port_is_a_typed_backend_error() {
    let err = RedisTokenStore::connect("redis://127.0.0.1:1")
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    let source = std::error::Error::source(&err).expect("the redis error is kept");
    assert!(
        source.downcast_ref::<redis::RedisError>().is_some(),
        "{source:?}"
    );
}

#[tokio::test]
async fn a_corrupt_hash_is_a_typed_error_not_a_panic() {
    let ns = RedisPrefix::new().await;
    let store = ns.token_store().await;
    let mut conn = store.connection();
    let id = Token::generate().expect("rng").id();
    let _: () = conn
        .hset_multiple(
            format!("{}session:{id}", ns.prefix),
            &[("user", "u"), ("hash", "short"), ("created", "x")],
        )
        .await
        .expect("hset");
    let err = store
        .get(&id, OffsetDateTime::now_utc())
        .await
        .expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    // A hash with none of a session's fields is no session: the token is refused, not an
    // error (a lookup reads the session's fields by name and finds none).
    let id = Token::generate().expect("rng").id();
    let _: () = conn
        .hset(format!("{}session:{id}", ns.prefix), "other", "x")
        .await
        .expect("hset");
    let found = store.get(&id, OffsetDateTime::now_utc()).await;
    assert!(matches!(found, Ok(None)), "{found:?}");
    // A valid session hash with API token fields that do not decode.
    let now = OffsetDateTime::now_utc();
    let micros = (now.unix_timestamp_nanos() / 1000).to_string();
    let expires = ((now.unix_timestamp_nanos() / 1000) + 600_000_000).to_string();
    for extra in [
        vec![("name", "ci")],
        vec![("scopes", "notes:read")],
        vec![("name", "ci"), ("scopes", "notes:read bad\"scope")],
    ] {
        let id = Token::generate().expect("rng").id();
        let mut hset = redis::cmd("HSET");
        hset.arg(format!("{}session:{id}", ns.prefix))
            .arg("user")
            .arg("u")
            .arg("hash")
            .arg(&[7_u8; 32][..])
            .arg("created")
            .arg(&micros)
            .arg("expires")
            .arg(&expires)
            .arg("seen")
            .arg(&micros);
        for (field, value) in &extra {
            hset.arg(*field).arg(*value);
        }
        let _: i64 = hset.query_async(&mut conn).await.expect("hset");
        let err = store.get(&id, now).await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt(_)), "{extra:?}: {err:?}");
    }
}

#[tokio::test]
async fn delete_for_user_except_leaves_only_the_kept_session_in_every_index() {
    let ns = RedisPrefix::new().await;
    let store = ns.token_store().await;
    let mut conn = store.connection();
    let user = UserId::from("keeper");
    let now = OffsetDateTime::now_utc();
    let keep = session(&user, now, Duration::from_secs(600));
    store.create(&keep).await.expect("create");
    for _ in 0..5 {
        store
            .create(&session(&user, now, Duration::from_secs(600)))
            .await
            .expect("create");
    }
    assert_eq!(
        store
            .delete_for_user_except(&user, &keep.id)
            .await
            .expect("delete_for_user_except"),
        5
    );
    let mut keys = ns.keys();
    keys.sort();
    let mut expected = vec![
        format!("{}expiry", ns.prefix),
        format!("{}session:{}", ns.prefix, keep.id),
        format!("{}user:keeper", ns.prefix),
    ];
    expected.sort();
    assert_eq!(
        keys, expected,
        "only the kept session and its indexes remain"
    );
    let members: Vec<String> = conn
        .smembers(format!("{}user:keeper", ns.prefix))
        .await
        .expect("smembers");
    assert_eq!(members, vec![keep.id.to_string()]);
    let indexed: Vec<String> = conn
        .zrange(format!("{}expiry", ns.prefix), 0, -1)
        .await
        .expect("zrange");
    assert_eq!(indexed, vec![format!("{}keeper", keep.id)]);
    assert_eq!(store.delete_for_user(&user).await.expect("cleanup"), 1);
}
