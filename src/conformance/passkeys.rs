//! The [`PasskeyStore`] contract as a reusable test suite.
//!
//! Each check is a public `async fn` that panics with a message naming the broken promise;
//! [`run_all`] runs them all over one store. Like the other suites, the checks create their
//! own data only (fresh random user ids `conformance-passkey-<check>-<random>` and random
//! credential ids), so runs may share a database, and delete what they created when they
//! pass.
//!
//! ```
//! use keycard::mfa::MemoryPasskeyStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! keycard::conformance::passkeys::run_all(&MemoryPasskeyStore::new()).await;
//! # }
//! ```
//!
//! # Panics
//! Every check panics when the store breaks the contract or returns an error.

use std::time::Duration;

use futures_util::future::join_all;

use super::base_time;
use crate::mfa::{PasskeyAdded, PasskeyRecord, PasskeyStore};
use crate::UserId;

/// The cap the checks pass to [`PasskeyStore::add`].
const CAP: u32 = 3;

fn owner(check: &str) -> UserId {
    UserId::new(format!(
        "conformance-passkey-{check}-{:016x}",
        rand::random::<u64>()
    ))
}

fn record(user: &UserId, name: &str, offset_ms: u64) -> PasskeyRecord {
    let mut credential_id = vec![0_u8; 32];
    credential_id.iter_mut().for_each(|b| *b = rand::random());
    PasskeyRecord::new(
        user.clone(),
        credential_id,
        name,
        format!(r#"{{"cred":"{name}","counter":0}}"#),
        base_time() + Duration::from_millis(offset_ms),
    )
}

async fn cleanup(store: &dyn PasskeyStore, user: &UserId) {
    for r in store.list(user).await.expect("list") {
        store.remove(user, &r.credential_id).await.expect("remove");
    }
}

/// Runs every check on one store: [`add_list_find`], [`cap_is_per_user_and_atomic`],
/// [`duplicate_credential_id_is_refused`], [`only_the_owner_renames_or_removes`],
/// [`update_after_use_records_it`] and [`hostile_input_round_trips`].
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn run_all(store: &dyn PasskeyStore) {
    add_list_find(store).await;
    cap_is_per_user_and_atomic(store).await;
    duplicate_credential_id_is_refused(store).await;
    only_the_owner_renames_or_removes(store).await;
    update_after_use_records_it(store).await;
    hostile_input_round_trips(store).await;
}

/// An added passkey is listed for its user (oldest first) and no other, and found by its
/// credential id exactly as given.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn add_list_find(store: &dyn PasskeyStore) {
    let ann = owner("add");
    let bob = owner("add");
    let second = record(&ann, "second", 5);
    let first = record(&ann, "first", 0);
    for r in [&second, &first] {
        assert_eq!(store.add(r, CAP).await.expect("add"), PasskeyAdded::Added);
    }
    let listed = store.list(&ann).await.expect("list");
    assert_eq!(
        listed,
        vec![first.clone(), second.clone()],
        "listed oldest first, as given"
    );
    assert!(
        store.list(&bob).await.expect("list").is_empty(),
        "users are isolated"
    );
    assert_eq!(
        store.find(&first.credential_id).await.expect("find"),
        Some(first.clone())
    );
    assert_eq!(
        store.find(&[7_u8; 40]).await.expect("find"),
        None,
        "unknown id"
    );
    cleanup(store, &ann).await;
    assert!(store.list(&ann).await.expect("list").is_empty(), "removed");
}

/// A user at the cap cannot add one more (others can), and concurrent adds never leave more
/// than the cap.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn cap_is_per_user_and_atomic(store: &dyn PasskeyStore) {
    let ann = owner("cap");
    let bob = owner("cap");
    let records: Vec<PasskeyRecord> = (0..10).map(|i| record(&ann, "k", i)).collect();
    let outcomes = join_all(records.iter().map(|r| store.add(r, CAP))).await;
    let added = outcomes
        .into_iter()
        .map(|o| o.expect("add"))
        .filter(|o| *o == PasskeyAdded::Added)
        .count();
    assert_eq!(added, CAP as usize, "exactly the cap is added");
    assert_eq!(store.list(&ann).await.expect("list").len(), CAP as usize);
    let extra = record(&ann, "extra", 50);
    assert_eq!(
        store.add(&extra, CAP).await.expect("add"),
        PasskeyAdded::TooMany
    );
    assert_eq!(
        store.find(&extra.credential_id).await.expect("find"),
        None,
        "refused adds change nothing"
    );
    let other = record(&bob, "bob", 0);
    assert_eq!(
        store.add(&other, CAP).await.expect("add"),
        PasskeyAdded::Added,
        "the cap is per user"
    );
    cleanup(store, &ann).await;
    cleanup(store, &bob).await;
}

/// A credential id that exists is refused, whoever owns it, and the stored passkey stays.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn duplicate_credential_id_is_refused(store: &dyn PasskeyStore) {
    let ann = owner("dup");
    let eve = owner("dup");
    let original = record(&ann, "ann's", 0);
    assert_eq!(
        store.add(&original, CAP).await.expect("add"),
        PasskeyAdded::Added
    );
    let mut copy = record(&eve, "eve's", 1);
    copy.credential_id = original.credential_id.clone();
    assert_eq!(
        store.add(&copy, CAP).await.expect("add"),
        PasskeyAdded::Duplicate
    );
    let mut again = record(&ann, "again", 2);
    again.credential_id = original.credential_id.clone();
    assert_eq!(
        store.add(&again, CAP).await.expect("add"),
        PasskeyAdded::Duplicate
    );
    assert_eq!(
        store.find(&original.credential_id).await.expect("find"),
        Some(original.clone())
    );
    assert!(store.list(&eve).await.expect("list").is_empty());
    cleanup(store, &ann).await;
}

/// Rename and remove act on the owner's passkey only; another user's call changes nothing
/// and returns `false`.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn only_the_owner_renames_or_removes(store: &dyn PasskeyStore) {
    let ann = owner("owner");
    let eve = owner("owner");
    let key = record(&ann, "laptop", 0);
    store.add(&key, CAP).await.expect("add");
    let id = &key.credential_id;
    assert!(
        !store.rename(&eve, id, "mine").await.expect("rename"),
        "not eve's"
    );
    assert!(!store.remove(&eve, id).await.expect("remove"), "not eve's");
    assert_eq!(
        store.find(id).await.expect("find"),
        Some(key.clone()),
        "unchanged"
    );
    assert!(store.rename(&ann, id, "phone").await.expect("rename"));
    assert_eq!(
        store.find(id).await.expect("find").expect("kept").name,
        "phone"
    );
    assert!(
        !store.rename(&ann, &[1_u8; 16], "x").await.expect("rename"),
        "unknown id"
    );
    assert!(store.remove(&ann, id).await.expect("remove"));
    assert!(
        !store.remove(&ann, id).await.expect("remove"),
        "removed once"
    );
    assert_eq!(store.find(id).await.expect("find"), None);
}

/// `update_after_use` replaces the passkey JSON and sets `last_used_at`, to the microsecond.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn update_after_use_records_it(store: &dyn PasskeyStore) {
    let ann = owner("use");
    let key = record(&ann, "key", 0);
    store.add(&key, CAP).await.expect("add");
    let used_at = base_time() + Duration::from_micros(1_234_567);
    assert!(store
        .update_after_use(&key.credential_id, r#"{"counter":7}"#, used_at)
        .await
        .expect("update"));
    let found = store
        .find(&key.credential_id)
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(found.passkey, r#"{"counter":7}"#);
    assert_eq!(found.last_used_at, Some(used_at));
    assert_eq!(found.created_at, key.created_at, "created_at unchanged");
    assert!(
        !store
            .update_after_use(&[2_u8; 16], "{}", used_at)
            .await
            .expect("update"),
        "unknown id"
    );
    cleanup(store, &ann).await;
}

/// Hostile names, user ids, passkey JSON and binary credential ids round-trip unchanged. The
/// credential id is the longest allowed
/// ([`MAX_CREDENTIAL_ID_LEN`](PasskeyRecord::MAX_CREDENTIAL_ID_LEN) bytes, `0x00` and `0xff`
/// among them); the passkey is JSON as a serializer writes it, whose strings escape control
/// characters (`\u0000`: JSON text never holds a raw NUL).
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn hostile_input_round_trips(store: &dyn PasskeyStore) {
    let who = UserId::new(format!("{}'; DROP TABLE passkeys; --", owner("hostile")));
    let mut key = record(&who, "hostile", 0);
    key.credential_id = (0..=255_u8).filter(|b| *b != b'a').collect();
    assert_eq!(
        key.credential_id.len(),
        PasskeyRecord::MAX_CREDENTIAL_ID_LEN
    );
    key.name = "名前 ' \" \\ % _"
        .chars()
        .take(PasskeyRecord::MAX_NAME_LEN)
        .collect();
    key.passkey = r#"{"cred":"é'\"\\%_\u0000x","counter":0}"#.to_owned();
    store.add(&key, CAP).await.expect("add");
    assert_eq!(
        store.find(&key.credential_id).await.expect("find"),
        Some(key.clone())
    );
    assert_eq!(store.list(&who).await.expect("list"), vec![key.clone()]);
    cleanup(store, &who).await;
}
