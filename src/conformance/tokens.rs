//! The [`TokenStore`] contract, one caller at a time: each check, and [`run_all`], which also
//! runs the concurrent ones of [`races`](super::races).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::races::{concurrent_operations, delete_for_user_except_races_creates};
use super::{base_time, checks_amr, fresh_id, session, user, HOUR};
use time::OffsetDateTime;

use crate::api_tokens::{ApiTokenGrant, ApiTokens, Scopes};
use crate::{
    AuthMethod, AuthMethods, ClientInfo, Session, SessionId, SessionKind, StoreError, Token,
    TokenStore, UserId,
};

/// Runs every check below on `store`, one after another: [`create_get_delete`],
/// [`duplicate_create_is_refused`], [`delete_twice`], [`list_and_delete_for_user`],
/// [`touch_updates_but_never_resurrects`], [`expired_sessions_are_never_returned`],
/// [`purge_expired_counts`], [`client_info_and_hostile_ids_round_trip`],
/// [`delete_for_user_except_keeps_one`], [`amr_round_trips_and_survives_touch`],
/// [`api_tokens_round_trip`], [`touch_from_records_the_address`],
/// [`delete_for_user_except_keeps_api_tokens`], [`concurrent_operations`],
/// [`delete_for_user_except_races_creates`] and [`get_immediate_agrees_with_get`].
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn run_all(store: &dyn TokenStore) {
    create_get_delete(store).await;
    duplicate_create_is_refused(store).await;
    delete_twice(store).await;
    list_and_delete_for_user(store).await;
    touch_updates_but_never_resurrects(store).await;
    expired_sessions_are_never_returned(store).await;
    purge_expired_counts(store).await;
    client_info_and_hostile_ids_round_trip(store).await;
    delete_for_user_except_keeps_one(store).await;
    amr_round_trips_and_survives_touch(store).await;
    api_tokens_round_trip(store).await;
    touch_from_records_the_address(store).await;
    delete_for_user_except_keeps_api_tokens(store).await;
    concurrent_operations(store).await;
    delete_for_user_except_races_creates(store).await;
    get_immediate_agrees_with_get(store).await;
}

/// A created session is returned by `get` exactly as given (every field, including the
/// secret digest and client metadata); an unknown id is `None`; a deleted one is gone.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn create_get_delete(store: &dyn TokenStore) {
    let now = base_time();
    let client = ClientInfo::none()
        .with_ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
        .with_user_agent("conformance/1.0");
    let s = session(&user("create"), now, HOUR, client);
    store.create(&s).await.expect("create a new session");
    assert_eq!(
        store.get(&s.id, now).await.expect("get"),
        Some(s.clone()),
        "get must return the session exactly as created"
    );
    assert_eq!(
        store.get(&fresh_id(), now).await.expect("get unknown"),
        None,
        "an unknown id must be absent"
    );
    assert!(
        store.delete(&s.id).await.expect("delete"),
        "delete of a live session must report true"
    );
    assert_eq!(
        store.get(&s.id, now).await.expect("get after delete"),
        None,
        "a deleted session must be absent"
    );
}

/// Where `get_immediate` answers, it answers what `get` does: for a live session (asked
/// twice, as a cache answers the second time), an unknown id, a session at and after its
/// expiry, and a deleted one. A store that never answers immediately (the default) passes.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn get_immediate_agrees_with_get(store: &dyn TokenStore) {
    async fn agree(store: &dyn TokenStore, id: &SessionId, now: OffsetDateTime, case: &str) {
        let immediate = store.get_immediate(id, now);
        let read = store.get(id, now).await.expect("get");
        if let Some(answer) = immediate {
            assert_eq!(
                answer.expect("get_immediate"),
                read,
                "get_immediate, {case}"
            );
        }
        if let Some(answer) = store.get_immediate(id, now) {
            assert_eq!(
                answer.expect("get_immediate"),
                read,
                "get_immediate, {case}, asked again"
            );
        }
    }
    let now = base_time();
    let client = ClientInfo::none().with_user_agent("conformance/immediate");
    let s = session(&user("immediate"), now, HOUR, client);
    store.create(&s).await.expect("create");
    agree(store, &s.id, now, "live session").await;
    agree(store, &fresh_id(), now, "unknown id").await;
    agree(store, &s.id, s.expires_at, "at its expires_at").await;
    // A store may have dropped it on meeting it expired; either way both must agree.
    agree(store, &s.id, now, "asked again before its expiry").await;
    store.delete(&s.id).await.expect("delete");
    agree(store, &s.id, now, "deleted session").await;
}

/// Creating a session whose id exists fails with [`StoreError::Duplicate`] and leaves the
/// existing session, and the other user's index, untouched.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn duplicate_create_is_refused(store: &dyn TokenStore) {
    let now = base_time();
    let first = session(&user("dup-a"), now, HOUR, ClientInfo::none());
    store.create(&first).await.expect("create");
    let other_token = Token::generate().expect("os rng");
    let second = Session {
        id: first.id,
        user_id: user("dup-b"),
        secret_hash: other_token.secret_hash(),
        created_at: now + Duration::from_millis(5),
        expires_at: now + 2 * HOUR,
        last_seen_at: now + Duration::from_millis(5),
        client: ClientInfo::none().with_user_agent("intruder"),
        amr: crate::AuthMethods::none(),
        // An API token, so a store that let the duplicate through would change the kind too.
        kind: SessionKind::ApiToken(ApiTokenGrant::new("intruder", scopes(&["intrude"]))),
    };
    match store.create(&second).await {
        Err(StoreError::Duplicate) => {}
        other => panic!("a second create with the same id must fail with Duplicate, got {other:?}"),
    }
    assert_eq!(
        store.get(&first.id, now).await.expect("get"),
        Some(first.clone()),
        "a refused duplicate must leave the existing session untouched"
    );
    assert!(
        store
            .list_for_user(&second.user_id, now)
            .await
            .expect("list")
            .is_empty(),
        "a refused duplicate must not be indexed under its user"
    );
    assert_eq!(
        store
            .delete_for_user(&second.user_id)
            .await
            .expect("delete_for_user"),
        0,
        "a refused duplicate must not be deletable through its user"
    );
    assert_eq!(
        store.get(&first.id, now).await.expect("get"),
        Some(first.clone()),
        "deleting the refused duplicate's user must not touch the existing session"
    );
    store.delete(&first.id).await.expect("cleanup");
}

/// `delete` reports `true` once, then `false`; deleting an id that never existed is `false`.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn delete_twice(store: &dyn TokenStore) {
    let now = base_time();
    let s = session(&user("delete"), now, HOUR, ClientInfo::none());
    store.create(&s).await.expect("create");
    assert!(
        store.delete(&s.id).await.expect("delete"),
        "first delete must report true"
    );
    assert!(
        !store.delete(&s.id).await.expect("delete again"),
        "second delete must report false"
    );
    assert!(
        !store.delete(&fresh_id()).await.expect("delete unknown"),
        "deleting an unknown id must report false"
    );
    assert!(
        store
            .list_for_user(&s.user_id, now)
            .await
            .expect("list")
            .is_empty(),
        "a deleted session must leave the user's list"
    );
}

/// `list_for_user` returns exactly the user's live sessions, oldest first, and nobody
/// else's; `delete_for_user` deletes them all, returns how many, and touches no other user.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn list_and_delete_for_user(store: &dyn TokenStore) {
    let now = base_time();
    let ann = user("list-a");
    let bob = user("list-b");
    let ms = Duration::from_millis;
    let a1 = session(&ann, now, HOUR, ClientInfo::none());
    let a2 = session(&ann, now + ms(1), HOUR, ClientInfo::none());
    let a3 = session(&ann, now + ms(2), HOUR, ClientInfo::none());
    let b1 = session(&bob, now, HOUR, ClientInfo::none());
    // Created out of order: the list must sort by creation time, not insertion.
    for s in [&a3, &a1, &b1, &a2] {
        store.create(s).await.expect("create");
    }
    let listed = store.list_for_user(&ann, now + ms(10)).await.expect("list");
    assert_eq!(
        listed,
        vec![a1.clone(), a2.clone(), a3.clone()],
        "list_for_user must return the user's sessions, oldest first"
    );
    assert_eq!(
        store.delete_for_user(&ann).await.expect("delete_for_user"),
        3,
        "delete_for_user must count the sessions it deleted"
    );
    assert!(
        store
            .list_for_user(&ann, now)
            .await
            .expect("list")
            .is_empty(),
        "no session may remain after delete_for_user"
    );
    for s in [&a1, &a2, &a3] {
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            None,
            "delete_for_user must delete every session of the user"
        );
    }
    assert_eq!(
        store.get(&b1.id, now).await.expect("get"),
        Some(b1.clone()),
        "delete_for_user must not touch another user's sessions"
    );
    assert_eq!(
        store.delete_for_user(&ann).await.expect("again"),
        0,
        "a second delete_for_user must delete nothing"
    );
    assert_eq!(
        store
            .delete_for_user(&user("list-nobody"))
            .await
            .expect("unknown"),
        0,
        "delete_for_user of an unknown user must delete nothing"
    );
    assert_eq!(store.delete_for_user(&bob).await.expect("cleanup"), 1);
}

/// `touch` updates `last_seen_at` of a live session and reports `true`; it reports `false`
/// for an unknown, deleted or expired session, and never brings a deleted session back.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn touch_updates_but_never_resurrects(store: &dyn TokenStore) {
    let now = base_time();
    let s = session(&user("touch"), now, HOUR, ClientInfo::none());
    store.create(&s).await.expect("create");
    let later = now + Duration::from_secs(10);
    assert!(
        store.touch(&s.id, later).await.expect("touch"),
        "touch of a live session must report true"
    );
    let seen = store
        .get(&s.id, later)
        .await
        .expect("get")
        .expect("still live");
    assert_eq!(seen.last_seen_at, later, "touch must set last_seen_at");
    assert_eq!(
        Session {
            last_seen_at: s.last_seen_at,
            ..seen
        },
        s,
        "touch must change nothing but last_seen_at"
    );
    assert!(
        !store
            .touch(&fresh_id(), later)
            .await
            .expect("touch unknown"),
        "touch of an unknown id must report false"
    );
    assert!(
        !store
            .touch(&s.id, s.expires_at)
            .await
            .expect("touch expired"),
        "touch at or after expires_at must report false"
    );
    assert!(store.delete(&s.id).await.expect("delete"));
    assert!(
        !store.touch(&s.id, later).await.expect("touch deleted"),
        "touch of a deleted session must report false"
    );
    assert_eq!(
        store.get(&s.id, later).await.expect("get"),
        None,
        "touch must never resurrect a deleted session"
    );
    assert!(
        store
            .list_for_user(&s.user_id, later)
            .await
            .expect("list")
            .is_empty(),
        "touch must never re-index a deleted session"
    );
}

/// A session is live strictly before `expires_at` and absent from `get` and
/// `list_for_user` from `expires_at` on, purged or not.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn expired_sessions_are_never_returned(store: &dyn TokenStore) {
    let now = base_time();
    let who = user("expiry");
    let ttl = Duration::from_secs(60);
    let short = session(&who, now, ttl, ClientInfo::none());
    let long = session(
        &who,
        now + Duration::from_millis(1),
        HOUR,
        ClientInfo::none(),
    );
    store.create(&short).await.expect("create");
    store.create(&long).await.expect("create");
    let just_before = short.expires_at - Duration::from_millis(1);
    assert_eq!(
        store.get(&short.id, just_before).await.expect("get"),
        Some(short.clone()),
        "a session must be live until its expires_at"
    );
    assert_eq!(
        store.list_for_user(&who, just_before).await.expect("list"),
        vec![short.clone(), long.clone()],
        "list_for_user must include sessions live at now"
    );
    assert_eq!(
        store
            .list_for_user(&who, short.expires_at)
            .await
            .expect("list"),
        vec![long.clone()],
        "list_for_user must leave out a session from its expires_at on"
    );
    assert_eq!(
        store.get(&short.id, short.expires_at).await.expect("get"),
        None,
        "get must not return a session at its expires_at"
    );
    assert_eq!(
        store.get(&short.id, now + HOUR).await.expect("get"),
        None,
        "get must not return a session after its expires_at"
    );
    store.delete_for_user(&who).await.expect("cleanup");
}

/// `purge_expired(now)` deletes every session with `expires_at <= now` (the boundary is
/// expired), counts them, and keeps live ones.
///
/// The check's expired sessions expired an hour ago (the live one expires in an hour), so it
/// does not disturb concurrent checks; but it assumes that no one else purges the same
/// namespace at the same moment, or the count may come up short.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn purge_expired_counts(store: &dyn TokenStore) {
    let base = base_time();
    let who = user("purge");
    let ms = Duration::from_millis;
    let long_ago = base - 2 * HOUR;
    // Expire at base - 1h + 0..=4 ms; the purge's `now` is the last of these instants.
    let expired: Vec<Session> = (0..5)
        .map(|i| session(&who, long_ago + ms(i), HOUR, ClientInfo::none()))
        .collect();
    let purge_at = long_ago + ms(4) + HOUR;
    let live = session(&who, base, HOUR, ClientInfo::none());
    for s in expired.iter().chain([&live]) {
        store.create(s).await.expect("create");
    }
    let purged = store.purge_expired(purge_at).await.expect("purge");
    assert!(
        purged >= expired.len() as u64,
        "purge_expired must count every session it deleted: expected at least {}, got {purged}",
        expired.len()
    );
    for s in &expired {
        assert_eq!(
            store.get(&s.id, long_ago).await.expect("get"),
            None,
            "purge_expired must delete sessions with expires_at <= now (not only hide them)"
        );
    }
    assert_eq!(
        store.list_for_user(&who, long_ago).await.expect("list"),
        vec![live.clone()],
        "purge_expired must delete expired sessions from the user's index and keep live ones"
    );
    assert_eq!(
        store.get(&live.id, base).await.expect("get"),
        Some(live.clone()),
        "purge_expired must keep live sessions"
    );
    assert_eq!(store.delete_for_user(&who).await.expect("cleanup"), 1);
}

/// Client metadata (IPv4, IPv6, none; a user agent with quotes and non-ASCII) and user ids
/// that look like SQL, glob or key syntax are stored and matched as plain data: ids come
/// from clients, so no query may be built from them.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn client_info_and_hostile_ids_round_trip(store: &dyn TokenStore) {
    let now = base_time();
    let tag = user("hostile");
    let clients = [
        ClientInfo::none(),
        ClientInfo::none().with_ip(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
        ClientInfo::none()
            .with_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .with_user_agent("Mozilla/5.0 'single' \"double\" \\ ünïcødé 🦀 %s {x}"),
        ClientInfo::none().with_user_agent(""),
    ];
    let suffixes = [
        "",
        "'; DROP TABLE sessions; --",
        "\" OR \"1\"=\"1",
        "%",
        "_",
        "*",
        "?[ab]",
        ":s:x",
        "{tag}",
        "\\",
        "Zoë 🦀",
        "\n\t",
    ];
    for (i, suffix) in suffixes.iter().enumerate() {
        let who = UserId::new(format!("{tag}{suffix}"));
        let client = clients[i % clients.len()].clone();
        let s = session(&who, now, HOUR, client);
        store.create(&s).await.expect("create");
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            Some(s.clone()),
            "session of user {who:?} must round-trip exactly"
        );
        assert_eq!(
            store.list_for_user(&who, now).await.expect("list"),
            vec![s.clone()],
            "user id {who:?} must match itself only"
        );
        assert_eq!(
            store.delete_for_user(&who).await.expect("delete_for_user"),
            1,
            "user id {who:?} must match itself only"
        );
    }
    // Wildcards in a user id must not match other users.
    let plain = UserId::new(format!("{tag}x"));
    let s = session(&plain, now, HOUR, ClientInfo::none());
    store.create(&s).await.expect("create");
    for pattern in ["%", "_", "*", "?", "[x]"] {
        let other = UserId::new(format!("{tag}{pattern}"));
        assert!(
            store
                .list_for_user(&other, now)
                .await
                .expect("list")
                .is_empty(),
            "user id {other:?} must not match {plain:?}"
        );
        assert_eq!(
            store
                .delete_for_user(&other)
                .await
                .expect("delete_for_user"),
            0,
            "user id {other:?} must not match {plain:?}"
        );
    }
    assert_eq!(store.delete_for_user(&plain).await.expect("cleanup"), 1);
}

/// `delete_for_user_except(user, keep)` deletes every session of `user` but `keep`, counts
/// them, and touches no other user's sessions; a `keep` that is not the user's (unknown, or
/// another user's session) is never deleted, and then every session of `user` goes.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn delete_for_user_except_keeps_one(store: &dyn TokenStore) {
    let now = base_time();
    let ann = user("except-a");
    let bob = user("except-b");
    let ms = Duration::from_millis;
    let a1 = session(&ann, now, HOUR, ClientInfo::none());
    let a2 = session(&ann, now + ms(1), HOUR, ClientInfo::none());
    let a3 = session(&ann, now + ms(2), HOUR, ClientInfo::none());
    let b1 = session(&bob, now, HOUR, ClientInfo::none());
    for s in [&a1, &a2, &a3, &b1] {
        store.create(s).await.expect("create");
    }
    assert_eq!(
        store
            .delete_for_user_except(&ann, &a2.id)
            .await
            .expect("delete_for_user_except"),
        2,
        "delete_for_user_except must count the sessions it deleted, not the kept one"
    );
    assert_eq!(
        store.list_for_user(&ann, now).await.expect("list"),
        vec![a2.clone()],
        "delete_for_user_except must leave exactly the kept session"
    );
    for s in [&a1, &a3] {
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            None,
            "delete_for_user_except must delete every other session of the user"
        );
    }
    assert_eq!(
        store.get(&a2.id, now).await.expect("get"),
        Some(a2.clone()),
        "delete_for_user_except must keep the kept session unchanged"
    );
    assert_eq!(
        store.get(&b1.id, now).await.expect("get"),
        Some(b1.clone()),
        "delete_for_user_except must not touch another user's sessions"
    );
    assert_eq!(
        store
            .delete_for_user_except(&ann, &a2.id)
            .await
            .expect("again"),
        0,
        "a second delete_for_user_except must delete nothing"
    );
    // Keeping another user's session: it survives, and all of ann's go.
    let a4 = session(&ann, now + ms(3), HOUR, ClientInfo::none());
    store.create(&a4).await.expect("create");
    assert_eq!(
        store
            .delete_for_user_except(&ann, &b1.id)
            .await
            .expect("delete_for_user_except with a foreign keep"),
        2,
        "with a keep that is not the user's, every session of the user must go"
    );
    assert!(
        store
            .list_for_user(&ann, now)
            .await
            .expect("list")
            .is_empty(),
        "with a keep that is not the user's, no session of the user may remain"
    );
    assert_eq!(
        store.get(&b1.id, now).await.expect("get"),
        Some(b1.clone()),
        "the kept session must never be deleted, whoever it belongs to"
    );
    assert_eq!(
        store
            .delete_for_user_except(&user("except-nobody"), &fresh_id())
            .await
            .expect("unknown user"),
        0,
        "delete_for_user_except of an unknown user must delete nothing"
    );
    assert_eq!(store.delete_for_user(&bob).await.expect("cleanup"), 1);
}

/// A session's `amr` (how it was authenticated) is kept exactly: no method, one, the checks'
/// usual password and TOTP, every method keycard knows. `create`, `get` and `list_for_user`
/// return it as given, and `touch` leaves it unchanged.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn amr_round_trips_and_survives_touch(store: &dyn TokenStore) {
    let now = base_time();
    let who = user("amr");
    let every = [
        AuthMethod::Password,
        AuthMethod::Totp,
        AuthMethod::RecoveryCode,
        AuthMethod::Passkey,
        AuthMethod::EmailLink,
    ]
    .into_iter()
    .fold(AuthMethods::none(), AuthMethods::with);
    let sets = [
        AuthMethods::none(),
        AuthMethods::from(AuthMethod::EmailLink),
        checks_amr(),
        AuthMethods::from(AuthMethod::Password).with(AuthMethod::RecoveryCode),
        every,
    ];
    let ms = Duration::from_millis;
    let mut created = Vec::new();
    for (i, amr) in (0u64..).zip(sets) {
        let s = session(&who, now + ms(i), HOUR, ClientInfo::none()).with_amr(amr);
        store.create(&s).await.expect("create");
        let got = store.get(&s.id, now).await.expect("get").expect("live");
        assert_eq!(
            got.amr, amr,
            "get must return the session's amr as created ({amr:?})"
        );
        assert_eq!(got, s, "get must return the session exactly as created");
        created.push(s);
    }
    assert_eq!(
        store.list_for_user(&who, now).await.expect("list"),
        created,
        "list_for_user must return every session's amr as created"
    );
    let later = now + Duration::from_secs(5);
    for s in &created {
        assert!(store.touch(&s.id, later).await.expect("touch"));
        let seen = store.get(&s.id, later).await.expect("get").expect("live");
        assert_eq!(seen.amr, s.amr, "touch must leave amr unchanged");
        assert_eq!(seen.last_seen_at, later, "touch must set last_seen_at");
    }
    let listed = store.list_for_user(&who, later).await.expect("list");
    assert_eq!(
        listed.iter().map(|s| s.amr).collect::<Vec<_>>(),
        created.iter().map(|s| s.amr).collect::<Vec<_>>(),
        "list_for_user after touch must return every session's amr unchanged"
    );
    assert_eq!(
        store.delete_for_user(&who).await.expect("cleanup"),
        created.len() as u64
    );
}

/// Scopes for the checks; they are valid.
fn scopes(list: &[&str]) -> Scopes {
    Scopes::new(list).expect("valid scopes")
}

/// A new API token of `who`, created at `created`, expiring at `expires_at`.
fn api_token(
    who: &UserId,
    created: OffsetDateTime,
    expires_at: OffsetDateTime,
    name: &str,
    scopes: Scopes,
) -> Session {
    let mut s = session(who, created, HOUR, ClientInfo::none());
    s.expires_at = expires_at;
    s.kind = SessionKind::ApiToken(ApiTokenGrant::new(name, scopes));
    s
}

/// An API token session ([`SessionKind::ApiToken`]) keeps its kind, name and scopes through
/// `create`, `get`, `list_for_user`, `touch` and `touch_from`: one that never expires (its
/// expiry [`ApiTokens::NEVER`], the end of year 9999, is live until that instant), one with
/// no scope and an empty name, beside an interactive session of the same user.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn api_tokens_round_trip(store: &dyn TokenStore) {
    let now = base_time();
    let who = user("api-token");
    let ms = Duration::from_millis;
    let login = session(
        &who,
        now,
        HOUR,
        ClientInfo::none().with_user_agent("browser"),
    );
    let mut forever = api_token(
        &who,
        now + ms(1),
        ApiTokens::NEVER,
        "deploy bot 'prod' \"eu\" ünïcødé 🦀",
        scopes(&["notes:read", "notes:write", "https://example.com/admin"]),
    );
    forever.client = ClientInfo::none()
        .with_ip(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4)))
        .with_user_agent("curl/8.5");
    let bare = api_token(&who, now + ms(2), now + HOUR, "", Scopes::empty());
    for s in [&login, &forever, &bare] {
        store.create(s).await.expect("create");
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            Some(s.clone()),
            "get must return an API token exactly as created: kind, name, scopes, expiry"
        );
    }
    assert_eq!(
        store.list_for_user(&who, now).await.expect("list"),
        vec![login.clone(), forever.clone(), bare.clone()],
        "list_for_user must list API tokens beside sessions, oldest first, as created"
    );
    // Its expiry read right, at the far end: live a second before, absent at the instant (a
    // store may drop it on meeting it expired, so a token of its own, of another user).
    let ends = api_token(
        &user("api-token-ends"),
        now,
        ApiTokens::NEVER,
        "ends",
        Scopes::empty(),
    );
    store.create(&ends).await.expect("create");
    let last_second = ApiTokens::NEVER - Duration::from_secs(1);
    assert_eq!(
        store.get(&ends.id, last_second).await.expect("get"),
        Some(ends.clone()),
        "a token expiring at ApiTokens::NEVER must be live until then"
    );
    assert_eq!(
        store.get(&ends.id, ApiTokens::NEVER).await.expect("get"),
        None,
        "a token expiring at ApiTokens::NEVER must be absent from that instant on"
    );
    let later = now + Duration::from_secs(5);
    for s in [&forever, &bare] {
        assert!(
            store.touch(&s.id, later).await.expect("touch"),
            "touch of a live API token must report true"
        );
        assert_eq!(
            store.get(&s.id, later).await.expect("get"),
            Some(Session {
                last_seen_at: later,
                ..s.clone()
            }),
            "touch must change nothing of an API token but last_seen_at"
        );
    }
    let last = now + Duration::from_secs(70);
    let from = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x70));
    assert!(
        store
            .touch_from(&forever.id, last, from)
            .await
            .expect("touch_from"),
        "touch_from of a live API token must report true"
    );
    let mut used = forever.clone();
    used.last_seen_at = last;
    used.client = forever.client.clone().with_ip(from);
    assert_eq!(
        store.get(&forever.id, last).await.expect("get"),
        Some(used.clone()),
        "touch_from must change nothing of an API token but last_seen_at and client.ip"
    );
    let touched_bare = Session {
        last_seen_at: later,
        ..bare.clone()
    };
    assert_eq!(
        store.list_for_user(&who, last).await.expect("list"),
        vec![login.clone(), used, touched_bare],
        "list_for_user must return API tokens with their kind after touch and touch_from"
    );
    assert_eq!(
        store.delete_for_user(&who).await.expect("cleanup"),
        3,
        "delete_for_user must delete API tokens too"
    );
    store.delete(&ends.id).await.expect("cleanup");
}

/// `touch_from` sets `last_seen_at` (never moving it back, as `touch`) and `client.ip` of a
/// live session, keeps every other field, and reports `true`; it reports `false` for an
/// unknown, expired or deleted session, changes nothing then, and never brings a deleted
/// session back.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn touch_from_records_the_address(store: &dyn TokenStore) {
    let now = base_time();
    let who = user("touch-from");
    let first = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let client = ClientInfo::none()
        .with_ip(first)
        .with_user_agent("conformance/touch_from");
    let s = session(&who, now, HOUR, client);
    let plain = session(
        &who,
        now + Duration::from_millis(1),
        HOUR,
        ClientInfo::none(),
    );
    store.create(&s).await.expect("create");
    store.create(&plain).await.expect("create");
    let later = now + Duration::from_secs(60);
    let second = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    assert!(
        store
            .touch_from(&s.id, later, second)
            .await
            .expect("touch_from"),
        "touch_from of a live session must report true"
    );
    let mut expected = s.clone();
    expected.last_seen_at = later;
    expected.client = s.client.clone().with_ip(second);
    assert_eq!(
        store.get(&s.id, later).await.expect("get"),
        Some(expected.clone()),
        "touch_from must set last_seen_at and client.ip and change nothing else"
    );
    // An older last use (a slower instance) records the address but never moves
    // last_seen_at back.
    let third = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 33));
    let earlier = now + Duration::from_secs(30);
    assert!(
        store
            .touch_from(&s.id, earlier, third)
            .await
            .expect("touch_from"),
        "touch_from of a live session must report true, whatever its time"
    );
    expected.client = s.client.clone().with_ip(third);
    assert_eq!(
        store.get(&s.id, later).await.expect("get"),
        Some(expected.clone()),
        "touch_from must never move last_seen_at back"
    );
    // A session stored without an address gets one.
    assert!(store
        .touch_from(&plain.id, later, first)
        .await
        .expect("touch_from"));
    let with_ip = store
        .get(&plain.id, later)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(
        with_ip.client.ip,
        Some(first),
        "touch_from must set the address of a session stored without one"
    );
    assert_eq!(with_ip.client.user_agent, None);
    assert!(
        !store
            .touch_from(&fresh_id(), later, second)
            .await
            .expect("touch_from unknown"),
        "touch_from of an unknown id must report false"
    );
    assert!(
        !store
            .touch_from(&s.id, s.expires_at, second)
            .await
            .expect("touch_from expired"),
        "touch_from at or after expires_at must report false"
    );
    assert_eq!(
        store.get(&s.id, later).await.expect("get"),
        Some(expected.clone()),
        "touch_from of an expired session must change nothing"
    );
    assert!(store.delete(&s.id).await.expect("delete"));
    assert!(
        !store
            .touch_from(&s.id, later, second)
            .await
            .expect("touch_from deleted"),
        "touch_from of a deleted session must report false"
    );
    assert_eq!(
        store.get(&s.id, later).await.expect("get"),
        None,
        "touch_from must never resurrect a deleted session"
    );
    assert_eq!(
        store
            .list_for_user(&who, later)
            .await
            .expect("list")
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        vec![plain.id],
        "touch_from must never re-index a deleted session"
    );
    assert_eq!(store.delete_for_user(&who).await.expect("cleanup"), 1);
}

/// `delete_for_user_except` deletes interactive sessions only: the user's API tokens survive
/// it (whether `keep` is one of the user's sessions, an unknown id or one of the tokens) and
/// are not counted; another user's sessions and tokens are untouched; `delete_for_user` then
/// deletes the tokens too.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn delete_for_user_except_keeps_api_tokens(store: &dyn TokenStore) {
    let now = base_time();
    let ann = user("except-tokens-a");
    let bob = user("except-tokens-b");
    let ms = Duration::from_millis;
    let read = || scopes(&["notes:read"]);
    let i1 = session(&ann, now, HOUR, ClientInfo::none());
    let t1 = api_token(&ann, now + ms(1), ApiTokens::NEVER, "ci", read());
    let i2 = session(&ann, now + ms(2), HOUR, ClientInfo::none());
    let t2 = api_token(&ann, now + ms(3), now + HOUR, "backup", Scopes::empty());
    let b1 = session(&bob, now, HOUR, ClientInfo::none());
    let bt = api_token(&bob, now + ms(1), now + HOUR, "bob's", read());
    for s in [&i1, &t1, &i2, &t2, &b1, &bt] {
        store.create(s).await.expect("create");
    }
    assert_eq!(
        store
            .delete_for_user_except(&ann, &i2.id)
            .await
            .expect("delete_for_user_except"),
        1,
        "delete_for_user_except must delete (and count) interactive sessions only"
    );
    assert_eq!(
        store.list_for_user(&ann, now).await.expect("list"),
        vec![t1.clone(), i2.clone(), t2.clone()],
        "delete_for_user_except must keep the kept session and every API token"
    );
    assert_eq!(
        store
            .delete_for_user_except(&ann, &fresh_id())
            .await
            .expect("delete_for_user_except with an unknown keep"),
        1,
        "with a keep that is not the user's, every interactive session goes, no API token"
    );
    assert_eq!(
        store
            .delete_for_user_except(&ann, &t1.id)
            .await
            .expect("delete_for_user_except keeping a token"),
        0,
        "API tokens must survive delete_for_user_except, whatever is kept"
    );
    assert_eq!(
        store.list_for_user(&ann, now).await.expect("list"),
        vec![t1.clone(), t2.clone()],
        "API tokens must survive delete_for_user_except unchanged"
    );
    for s in [&t1, &t2] {
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            Some(s.clone()),
            "an API token must still validate after delete_for_user_except"
        );
    }
    assert_eq!(
        store.list_for_user(&bob, now).await.expect("list"),
        vec![b1.clone(), bt.clone()],
        "delete_for_user_except must not touch another user's sessions or tokens"
    );
    assert_eq!(
        store.delete_for_user(&ann).await.expect("delete_for_user"),
        2,
        "delete_for_user must delete API tokens too, and count them"
    );
    for s in [&t1, &t2] {
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            None,
            "delete_for_user must delete every API token of the user"
        );
    }
    assert_eq!(store.delete_for_user(&bob).await.expect("cleanup"), 2);
}
