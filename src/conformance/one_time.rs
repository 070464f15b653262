//! The [`OneTimeTokenStore`] contract as a reusable test suite.
//!
//! Each check is a public `async fn` that panics with a message naming the broken promise.
//! [`run_all`] runs them all over one store; [`two_instances`] races 50 consumes of one token
//! through two store instances over one backend (two pools, two connections).
//!
//! ```
//! use std::sync::Arc;
//! use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let store: Arc<dyn OneTimeTokenStore> = Arc::new(MemoryOneTimeStore::new());
//! keycard::conformance::one_time::run_all(store).await;
//! # }
//! ```
//!
//! Like the session checks, these create their own data only (fresh random ids and user ids
//! `conformance-ott-<check>-<random>`), so runs may share a database or key prefix; times are
//! the current time to the millisecond, and records live an hour unless a check is about
//! expiry, so stores with native expiry (Redis) behave as the caller's `now` says.
//! [`purge_expired_deletes`] purges records that expired an hour ago and assumes nobody else
//! purges the same namespace at that moment.
//!
//! What the checks cannot see from outside, that a store only ever receives digests, holds by
//! construction: no method of [`OneTimeTokenStore`] takes a token or a secret, only a
//! [`OneTimeRecord`] (whose `secret_hash` is a SHA-256 digest) and digests. keycard's own SQL
//! backends are also checked by scanning their rows for the token string.
//!
//! # Panics
//! Every check panics when the store breaks the contract or returns an error.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use time::OffsetDateTime;

use crate::one_time::{
    Binding, OneTimeError, OneTimeId, OneTimePurpose, OneTimeRecord, OneTimeToken,
    OneTimeTokenStore, OneTimeTokens,
};
use crate::{ManualClock, SecretHash, StoreError, UserId, UserRecord};

const HOUR: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

/// How many consumes race in [`concurrent_consumes`] and [`two_instances`].
pub const RACERS: usize = 50;

/// Runs every check on one store: [`issue_find_consume_once`], [`duplicate_issue_is_refused`],
/// [`wrong_secret_purpose_or_time_changes_nothing`], [`expired_tokens_are_never_returned`],
/// [`cap_retires_the_oldest`], [`retire_all_is_per_user_and_purpose`],
/// [`purge_expired_deletes`], [`hostile_input_round_trips`], [`racing_consumes`],
/// [`through_one_time_tokens`] and [`concurrent_consumes`] (spawns Tokio tasks: run it on a
/// multi-threaded runtime). [`two_instances`] is the one check it cannot run alone.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn run_all(store: Arc<dyn OneTimeTokenStore>) {
    let s = &*store;
    issue_find_consume_once(s).await;
    duplicate_issue_is_refused(s).await;
    wrong_secret_purpose_or_time_changes_nothing(s).await;
    expired_tokens_are_never_returned(s).await;
    cap_retires_the_oldest(s).await;
    retire_all_is_per_user_and_purpose(s).await;
    purge_expired_deletes(s).await;
    hostile_input_round_trips(s).await;
    racing_consumes(s).await;
    through_one_time_tokens(Arc::clone(&store)).await;
    concurrent_consumes(store).await;
}

/// An issued record is found exactly as given, consumed once (returned exactly as given),
/// and is then gone for `find` and for a second consume.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn issue_find_consume_once(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let (r, _) = record(&user("once"), OneTimePurpose::PasswordReset, now, HOUR);
    let r = OneTimeRecord {
        payload: Some("new@example.com".into()),
        ..r
    };
    assert_eq!(store.issue(&r, 3, now).await.expect("issue"), 0);
    assert_eq!(
        store.find(&r.id, now).await.expect("find"),
        Some(r.clone()),
        "find must return the record exactly as issued"
    );
    assert_eq!(
        store.find(&fresh_id(), now).await.expect("find unknown"),
        None,
        "an unknown id must be absent"
    );
    assert_eq!(
        store
            .consume(&r.id, &r.purpose, &r.secret_hash, now)
            .await
            .expect("consume"),
        Some(r.clone()),
        "consume must return the record exactly as issued"
    );
    assert_eq!(
        store
            .consume(&r.id, &r.purpose, &r.secret_hash, now)
            .await
            .expect("consume again"),
        None,
        "a consumed token must not be consumed twice"
    );
    assert_eq!(
        store.find(&r.id, now).await.expect("find after consume"),
        None,
        "a consumed token must be gone"
    );
}

/// Issuing a record whose id exists fails with [`StoreError::Duplicate`] and leaves the
/// existing record as it was.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn duplicate_issue_is_refused(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let who = user("dup");
    let (r, _) = record(&who, OneTimePurpose::EmailVerification, now, HOUR);
    store.issue(&r, 3, now).await.expect("issue");
    // Another token of the same user (ids carry their user's shard), with the same id.
    let (other, _) = record(&who, OneTimePurpose::PasswordReset, now, HOUR);
    let copy = OneTimeRecord { id: r.id, ..other };
    assert!(
        matches!(store.issue(&copy, 3, now).await, Err(StoreError::Duplicate)),
        "issuing an existing id must fail with StoreError::Duplicate"
    );
    assert_eq!(
        store.find(&r.id, now).await.expect("find"),
        Some(r.clone()),
        "a refused duplicate must not overwrite"
    );
    store.retire_all(&who, &r.purpose).await.expect("cleanup");
}

/// A consume with the right id but a wrong secret digest, a wrong purpose, or at or after
/// the expiry is refused and changes nothing: the right consume still succeeds afterwards.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn wrong_secret_purpose_or_time_changes_nothing(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let (r, _) = record(&user("wrong"), OneTimePurpose::EmailSignIn, now, HOUR);
    store.issue(&r, 3, now).await.expect("issue");
    let mut flipped = *r.secret_hash.as_bytes();
    flipped[31] ^= 1;
    let wrong_secret = SecretHash::from_bytes(flipped);
    let another = OneTimeToken::generate(&r.user_id)
        .expect("os rng")
        .secret_hash();
    for (digest, what) in [(wrong_secret, "one bit off"), (another, "another token's")] {
        assert_eq!(
            store
                .consume(&r.id, &r.purpose, &digest, now)
                .await
                .expect("consume"),
            None,
            "a consume with the right id and a wrong secret ({what}) must be refused"
        );
    }
    for purpose in [
        OneTimePurpose::PasswordReset,
        OneTimePurpose::EmailVerification,
        OneTimePurpose::custom("email_sign_in_x").expect("valid"),
    ] {
        assert_eq!(
            store
                .consume(&r.id, &purpose, &r.secret_hash, now)
                .await
                .expect("consume"),
            None,
            "a consume for another purpose ({purpose}) must be refused"
        );
    }
    for at in [r.expires_at, r.expires_at + HOUR] {
        assert_eq!(
            store
                .consume(&r.id, &r.purpose, &r.secret_hash, at)
                .await
                .expect("consume"),
            None,
            "a consume at or after expires_at must be refused"
        );
    }
    assert_eq!(
        store
            .consume(&r.id, &r.purpose, &r.secret_hash, now)
            .await
            .expect("consume"),
        Some(r),
        "refused consumes must leave the token usable"
    );
}

/// A record is live strictly before `expires_at`: `find` and `consume` treat it as absent from
/// `expires_at` on, purged or not.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn expired_tokens_are_never_returned(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let (r, _) = record(
        &user("expiry"),
        OneTimePurpose::PasswordReset,
        now,
        Duration::from_secs(60),
    );
    store.issue(&r, 3, now).await.expect("issue");
    let just_before = r.expires_at - MS;
    assert_eq!(
        store.find(&r.id, just_before).await.expect("find"),
        Some(r.clone()),
        "a token must be live until its expires_at"
    );
    assert_eq!(
        store.find(&r.id, r.expires_at).await.expect("find"),
        None,
        "find must not return a token at its expires_at"
    );
    assert_eq!(
        store
            .consume(&r.id, &r.purpose, &r.secret_hash, r.expires_at)
            .await
            .expect("consume"),
        None,
        "consume must refuse a token at its expires_at"
    );
    assert_eq!(
        store
            .consume(&r.id, &r.purpose, &r.secret_hash, just_before)
            .await
            .expect("consume"),
        Some(r),
        "a token must be consumable until its expires_at"
    );
}

/// With a cap of 3, issuing five tokens of one user and purpose retires the two oldest (the
/// issue reports each), keeps the three newest, and touches neither the same user's tokens
/// of another purpose nor another user's.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn cap_retires_the_oldest(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let who = user("cap");
    let purpose = OneTimePurpose::PasswordReset;
    let (other_purpose, _) = record(&who, OneTimePurpose::EmailVerification, now, HOUR);
    let (other_user, _) = record(&user("cap-other"), purpose.clone(), now, HOUR);
    store.issue(&other_purpose, 3, now).await.expect("issue");
    store.issue(&other_user, 3, now).await.expect("issue");
    let mut issued = Vec::new();
    for i in 0..5u32 {
        let at = now + MS * i;
        let (r, _) = record(&who, purpose.clone(), at, HOUR);
        let retired = store.issue(&r, 3, at).await.expect("issue");
        let expected = u64::from(i >= 3);
        assert_eq!(
            retired,
            expected,
            "issue #{} with a cap of 3 must retire {expected} token(s)",
            i + 1
        );
        issued.push(r);
    }
    let later = now + MS * 10;
    for (i, r) in issued.iter().enumerate() {
        let found = store.find(&r.id, later).await.expect("find");
        if i < 2 {
            assert_eq!(
                found, None,
                "the oldest tokens beyond the cap must be retired"
            );
            assert_eq!(
                store
                    .consume(&r.id, &r.purpose, &r.secret_hash, later)
                    .await
                    .expect("consume"),
                None,
                "a retired token must not be consumable"
            );
        } else {
            assert_eq!(found.as_ref(), Some(r), "the newest tokens must stay");
        }
    }
    for r in [&other_purpose, &other_user] {
        assert_eq!(
            store.find(&r.id, later).await.expect("find"),
            Some(r.clone()),
            "the cap is per user and purpose"
        );
    }
    // A cap of 1 keeps the new one only.
    let (last, _) = record(&who, purpose.clone(), now + MS * 6, HOUR);
    assert_eq!(store.issue(&last, 1, later).await.expect("issue"), 3);
    assert_eq!(store.retire_all(&who, &purpose).await.expect("retire"), 1);
    store
        .retire_all(&who, &other_purpose.purpose)
        .await
        .expect("cleanup");
    store
        .retire_all(&other_user.user_id, &purpose)
        .await
        .expect("cleanup");
}

/// `retire_all` deletes every token of one user and purpose, counts them, and leaves the
/// rest.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn retire_all_is_per_user_and_purpose(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let who = user("retire");
    let purpose = OneTimePurpose::PasswordReset;
    let mine: Vec<OneTimeRecord> = (0..3u32)
        .map(|i| record(&who, purpose.clone(), now + MS * i, HOUR).0)
        .collect();
    for r in &mine {
        store.issue(r, 5, now).await.expect("issue");
    }
    let (kept, _) = record(&who, OneTimePurpose::EmailChange, now, HOUR);
    store.issue(&kept, 5, now).await.expect("issue");
    assert_eq!(
        store.retire_all(&who, &purpose).await.expect("retire_all"),
        3,
        "retire_all must count what it deleted"
    );
    for r in &mine {
        assert_eq!(store.find(&r.id, now).await.expect("find"), None);
    }
    assert_eq!(
        store.find(&kept.id, now).await.expect("find"),
        Some(kept.clone()),
        "retire_all must keep the user's tokens of other purposes"
    );
    assert_eq!(store.retire_all(&who, &purpose).await.expect("again"), 0);
    assert_eq!(
        store
            .retire_all(&who, &OneTimePurpose::EmailChange)
            .await
            .expect("cleanup"),
        1
    );
}

/// `purge_expired(now)` deletes (not only hides) every record with `expires_at <= now` and
/// counts them, unless the store [expires natively](OneTimeTokenStore::expires_natively), and
/// keeps live ones.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn purge_expired_deletes(store: &dyn OneTimeTokenStore) {
    let base = base_time();
    let who = user("purge");
    let long_ago = base - 2 * HOUR;
    let expired: Vec<OneTimeRecord> = (0..4u32)
        .map(|i| {
            record(
                &who,
                OneTimePurpose::EmailVerification,
                long_ago + MS * i,
                HOUR,
            )
            .0
        })
        .collect();
    // The live one first: issuing may delete the user's expired tokens of the purpose.
    let (live, _) = record(&who, OneTimePurpose::EmailVerification, base, HOUR);
    store.issue(&live, 10, base).await.expect("issue");
    for r in &expired {
        store.issue(r, 10, r.created_at).await.expect("issue");
    }
    let purge_at = long_ago + MS * 3 + HOUR;
    let purged = store.purge_expired(purge_at).await.expect("purge");
    if !store.expires_natively() {
        assert!(
            purged >= expired.len() as u64,
            "purge_expired must count every token it deleted: expected at least {}, got {purged}",
            expired.len()
        );
    }
    for r in &expired {
        assert_eq!(
            store.find(&r.id, r.created_at).await.expect("find"),
            None,
            "purge_expired must delete tokens with expires_at <= now (not only hide them)"
        );
    }
    assert_eq!(
        store.find(&live.id, base).await.expect("find"),
        Some(live.clone()),
        "purge_expired must keep live tokens"
    );
    store
        .retire_all(&who, &live.purpose)
        .await
        .expect("cleanup");
}

/// User ids that look like SQL, key or glob syntax, non-ASCII payloads and a custom purpose
/// are stored and matched as plain data; a payload of
/// [`MAX_PAYLOAD_LEN`](crate::one_time::MAX_PAYLOAD_LEN) bytes is kept whole.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn hostile_input_round_trips(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let tag = user("hostile");
    let purpose = OneTimePurpose::custom("team_invite").expect("valid");
    for (i, name) in [
        "'; DROP TABLE users; --",
        "a:b:{c}*?[x]",
        "ユーザー ✓",
        "\\x00%_",
    ]
    .into_iter()
    .enumerate()
    {
        let who = UserId::new(format!("{tag}-{name}"));
        let (r, _) = record(&who, purpose.clone(), now, HOUR);
        let r = OneTimeRecord {
            payload: Some(format!("ünïcödé \"{i}\" '{name}'")),
            ..r
        };
        store.issue(&r, 3, now).await.expect("issue");
        assert_eq!(
            store.find(&r.id, now).await.expect("find"),
            Some(r.clone()),
            "hostile user ids and payloads must round-trip"
        );
        assert_eq!(
            store.retire_all(&who, &purpose).await.expect("retire_all"),
            1,
            "retire_all must match a hostile user id exactly"
        );
    }
    // The longest payload (a passkey ceremony's state), in 2-byte characters.
    let who = UserId::new(format!("{tag}-long"));
    let (r, _) = record(&who, OneTimePurpose::PasskeyLogin, now, HOUR);
    let r = OneTimeRecord {
        payload: Some("é".repeat(crate::one_time::MAX_PAYLOAD_LEN / 2)),
        ..r
    };
    store.issue(&r, 3, now).await.expect("issue");
    assert_eq!(
        store.find(&r.id, now).await.expect("find"),
        Some(r.clone()),
        "a payload of MAX_PAYLOAD_LEN bytes must round-trip"
    );
    store
        .retire_all(&who, &r.purpose)
        .await
        .expect("retire_all");
}

/// [`RACERS`] consumes of one token at once on one task (`join_all`): exactly one gets it.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn racing_consumes(store: &dyn OneTimeTokenStore) {
    let now = base_time();
    let (r, _) = record(&user("race"), OneTimePurpose::PasswordReset, now, HOUR);
    store.issue(&r, 3, now).await.expect("issue");
    let results =
        join_all((0..RACERS).map(|_| store.consume(&r.id, &r.purpose, &r.secret_hash, now))).await;
    let wins = results
        .into_iter()
        .map(|result| result.expect("a racing consume failed"))
        .filter(Option::is_some)
        .count();
    assert_eq!(
        wins, 1,
        "exactly one of {RACERS} racing consumes of one token must win"
    );
}

/// [`RACERS`] consumes of one token on as many Tokio tasks: exactly one gets it. Run it on a
/// multi-threaded runtime.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn concurrent_consumes(store: Arc<dyn OneTimeTokenStore>) {
    two_instances(Arc::clone(&store), store).await;
}

/// One token issued through `a` and consumed [`RACERS`] times at once, on as many Tokio
/// tasks, half through `a` and half through `b`, two store instances over one backend:
/// exactly one consume wins, on either.
///
/// # Panics
/// When the stores break the contract or fail.
pub async fn two_instances(a: Arc<dyn OneTimeTokenStore>, b: Arc<dyn OneTimeTokenStore>) {
    let now = base_time();
    let (r, _) = record(&user("instances"), OneTimePurpose::EmailSignIn, now, HOUR);
    a.issue(&r, 3, now).await.expect("issue");
    assert_eq!(
        b.find(&r.id, now).await.expect("find"),
        Some(r.clone()),
        "a token issued through one instance must be found through the other"
    );
    let r = Arc::new(r);
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let r = Arc::clone(&r);
            tokio::spawn(async move { store.consume(&r.id, &r.purpose, &r.secret_hash, now).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await {
            Ok(result) => wins += usize::from(result.expect("a racing consume failed").is_some()),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a consume task was cancelled: {e}"),
        }
    }
    assert_eq!(
        wins, 1,
        "exactly one of {RACERS} consumes racing through two instances must win"
    );
}

/// [`OneTimeTokens`] over the store, with a manual clock: a token string works once, with
/// its purpose and binding only; a changed binding makes it stale (and spends it); a wrong
/// secret with the right id is refused and leaves it usable; expiry is by the clock; a
/// successful consume leaves the other tokens until `retire_all`.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn through_one_time_tokens(store: Arc<dyn OneTimeTokenStore>) {
    let clock = ManualClock::new(base_time());
    let tokens = OneTimeTokens::from_arc(store).with_clock(clock.clone());
    let reset = OneTimePurpose::PasswordReset;
    let mut ann = UserRecord::new(user("tokens").as_str(), "ann@example.com", "$hash-1");
    let bind = |u: &UserRecord| Binding::for_user(&reset, u);

    let first = tokens
        .issue(&ann.id, &reset, bind(&ann), Some("payload ✓"))
        .await
        .expect("issue");
    let second = tokens
        .issue(&ann.id, &reset, bind(&ann), None)
        .await
        .expect("issue");
    let s1 = first.token.expose_secret().to_owned();
    let pending = tokens.inspect(&s1, &reset).await.expect("inspect");
    assert_eq!(pending.user_id, ann.id);
    assert_eq!(pending.payload.as_deref(), Some("payload ✓"));
    assert!(
        matches!(
            tokens.inspect(&s1, &OneTimePurpose::EmailSignIn).await,
            Err(OneTimeError::Invalid)
        ),
        "inspect must refuse another purpose"
    );
    // A wrong secret with the right id: refused, and the token stays usable.
    let forged = forge_secret(&s1);
    assert!(matches!(
        tokens.consume(&forged, &reset, &bind(&ann)).await,
        Err(OneTimeError::Invalid)
    ));
    assert!(matches!(
        tokens
            .consume(&s1, &OneTimePurpose::EmailSignIn, &bind(&ann))
            .await,
        Err(OneTimeError::Invalid)
    ));
    let used = tokens
        .consume(&s1, &reset, &bind(&ann))
        .await
        .expect("consume");
    assert_eq!(used.user_id, ann.id);
    assert_eq!(used.payload.as_deref(), Some("payload ✓"));
    assert!(
        matches!(
            tokens.consume(&s1, &reset, &bind(&ann)).await,
            Err(OneTimeError::Invalid)
        ),
        "a used token must be refused"
    );
    // The password changed: the other token is stale, and spent.
    ann.password_hash = "$hash-2".into();
    let s2 = second.token.expose_secret().to_owned();
    assert!(matches!(
        tokens.consume(&s2, &reset, &bind(&ann)).await,
        Err(OneTimeError::Stale)
    ));
    assert!(matches!(
        tokens.consume(&s2, &reset, &bind(&ann)).await,
        Err(OneTimeError::Invalid)
    ));
    // Expiry by the clock.
    let third = tokens
        .issue(&ann.id, &reset, bind(&ann), None)
        .await
        .expect("issue");
    clock.advance(tokens.lifetime(&reset));
    assert!(
        matches!(
            tokens
                .consume(third.token.expose_secret(), &reset, &bind(&ann))
                .await,
            Err(OneTimeError::Invalid)
        ),
        "a token must be refused from its expiry on"
    );
    tokens.retire_all(&ann.id, &reset).await.expect("cleanup");
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The current time, rounded down to a whole millisecond.
fn base_time() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}

fn user(check: &str) -> UserId {
    UserId::new(format!(
        "conformance-ott-{check}-{:016x}",
        rand::random::<u64>()
    ))
}

fn fresh_id() -> OneTimeId {
    OneTimeToken::generate(&user("none")).expect("os rng").id()
}

/// A record for a fresh token of `who`, and that token.
fn record(
    who: &UserId,
    purpose: OneTimePurpose,
    created: OffsetDateTime,
    ttl: Duration,
) -> (OneTimeRecord, OneTimeToken) {
    let token = OneTimeToken::generate(who).expect("os rng");
    let r = OneTimeRecord {
        id: token.id(),
        user_id: who.clone(),
        binding: Binding::of(&[b"conformance", purpose.name().as_bytes()]),
        purpose,
        secret_hash: token.secret_hash(),
        payload: None,
        created_at: created,
        expires_at: created + ttl,
    };
    (r, token)
}

/// A well-formed token with the id of `s` and another secret.
fn forge_secret(s: &str) -> String {
    let id = OneTimeToken::parse(s).expect("a token").id();
    let forged = OneTimeToken::with_random_secret(id).expect("os rng");
    forged.expose_secret().to_owned()
}
