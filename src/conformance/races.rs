//! The [`TokenStore`] contract under concurrency: racing creates, touches and deletes, on one
//! task ([`concurrent_operations`]) and on many ([`concurrent_tasks`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use time::OffsetDateTime;

use super::{base_time, joined, session, user, HOUR};
use crate::{ClientInfo, Session, SessionId, StoreError, TokenStore, UserId};

/// `delete_for_user_except` racing creates and touches of the user's sessions: every session
/// that existed before it began is gone, the kept one survives, sessions created during the
/// race either survive or were counted, and the count matches what went.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn delete_for_user_except_races_creates(store: &dyn TokenStore) {
    for round in 0..4 {
        let (who, keep, before) = except_race_setup(store, round).await;
        let now = keep.created_at;
        let racing: Vec<Session> = (0..16)
            .map(|i| {
                session(
                    &who,
                    now + Duration::from_millis(100 + i),
                    HOUR,
                    ClientInfo::none(),
                )
            })
            .collect();
        let later = now + Duration::from_secs(1);
        let (deleted, _, _) = tokio::join!(
            store.delete_for_user_except(&who, &keep.id),
            join_all(racing.iter().map(|s| async move {
                store.create(s).await.expect("racing create");
            })),
            join_all((0..4).map(|_| store.touch(&keep.id, later))),
        );
        let deleted = deleted.expect("delete_for_user_except");
        except_race_check(store, &who, &keep, &before, &racing, deleted).await;
    }
}

/// A user with a session to keep and 16 others, all created before the race.
async fn except_race_setup(store: &dyn TokenStore, round: u64) -> (UserId, Session, Vec<Session>) {
    let now = base_time();
    let who = user("except-race");
    let keep = session(
        &who,
        now + Duration::from_millis(round),
        HOUR,
        ClientInfo::none(),
    );
    store.create(&keep).await.expect("create keep");
    let mut before = Vec::new();
    for i in 0..16 {
        let s = session(
            &who,
            now + Duration::from_millis(i),
            HOUR,
            ClientInfo::none(),
        );
        store.create(&s).await.expect("create");
        before.push(s);
    }
    (who, keep, before)
}

async fn except_race_check(
    store: &dyn TokenStore,
    who: &UserId,
    keep: &Session,
    before: &[Session],
    racing: &[Session],
    deleted: u64,
) {
    let now = keep.created_at;
    assert!(
        store.get(&keep.id, now).await.expect("get keep").is_some(),
        "delete_for_user_except must never delete the kept session, even under concurrency"
    );
    for s in before {
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            None,
            "a session that existed before delete_for_user_except began must be gone"
        );
    }
    let mut survivors = vec![keep.id];
    for s in racing {
        if store.get(&s.id, now).await.expect("get").is_some() {
            survivors.push(s.id);
        }
    }
    let gone_racing = (racing.len() + 1 - survivors.len()) as u64;
    assert_eq!(
        deleted,
        before.len() as u64 + gone_racing,
        "delete_for_user_except must count exactly the sessions it deleted"
    );
    let mut listed: Vec<SessionId> = store
        .list_for_user(who, now)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    listed.sort();
    survivors.sort();
    assert_eq!(
        listed, survivors,
        "after delete_for_user_except, the user's list must hold the kept session and the \
         racing sessions that survived"
    );
    assert_eq!(
        store.delete_for_user(who).await.expect("cleanup"),
        survivors.len() as u64
    );
}

/// Many operations in flight at once (creates, gets, touches, deletes; racing touch and
/// delete on the same session; racing creates of the same id): nothing is lost, nothing
/// deleted comes back, exactly one racing create wins.
///
/// The operations are futures joined on the calling task, so they are concurrent at the
/// store (in flight together) but polled by one task; [`concurrent_tasks`] runs the same
/// work on separate Tokio tasks.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn concurrent_operations(store: &dyn TokenStore) {
    let users: Vec<UserId> = (0..4).map(|_| user("concurrent")).collect();
    let now = base_time();
    let outcomes = join_all((0..64).map(|i| lifecycle(store, &users[i % 4], now, i))).await;
    check_survivors(store, &users, now, outcomes).await;
    join_all((0..16).map(|_| touch_delete_race(store, now))).await;
    duplicate_race(store, now, 8).await;
}

/// [`concurrent_operations`]' work spread over many Tokio tasks (threads, on a multi-thread
/// runtime).
///
/// # Panics
/// When the store breaks the contract or fails, or outside a Tokio runtime.
pub async fn concurrent_tasks(store: Arc<dyn TokenStore>) {
    let users: Arc<Vec<UserId>> = Arc::new((0..4).map(|_| user("tasks")).collect());
    let now = base_time();
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            let users = Arc::clone(&users);
            tokio::spawn(async move { lifecycle(&*store, &users[i % 4], now, i).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(joined(task.await));
    }
    check_survivors(&*store, &users, now, outcomes).await;
    let races: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { touch_delete_race(&*store, now).await })
        })
        .collect();
    for race in races {
        joined(race.await);
    }
    let s = session(&user("tasks-dup"), now, HOUR, ClientInfo::none());
    let creates: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            let s = s.clone();
            tokio::spawn(async move { store.create(&s).await })
        })
        .collect();
    let mut wins = 0;
    for create in creates {
        match joined(create.await) {
            Ok(()) => wins += 1,
            Err(StoreError::Duplicate) => {}
            Err(e) => panic!("a racing create failed: {e:?}"),
        }
    }
    assert_eq!(
        wins, 1,
        "exactly one of 8 racing creates of one id must succeed"
    );
    assert_eq!(store.delete_for_user(&s.user_id).await.expect("cleanup"), 1);
    for round in 0..4 {
        except_race_on_tasks(&store, round).await;
    }
}

/// [`delete_for_user_except_races_creates`] with every racing operation on its own task.
async fn except_race_on_tasks(store: &Arc<dyn TokenStore>, round: u64) {
    let (who, keep, before) = except_race_setup(&**store, round).await;
    let now = keep.created_at;
    let racing: Vec<Session> = (0..16)
        .map(|i| {
            session(
                &who,
                now + Duration::from_millis(100 + i),
                HOUR,
                ClientInfo::none(),
            )
        })
        .collect();
    let creates: Vec<_> = racing
        .iter()
        .cloned()
        .map(|s| {
            let store = Arc::clone(store);
            tokio::spawn(async move { store.create(&s).await })
        })
        .collect();
    let touches: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(store);
            let id = keep.id;
            tokio::spawn(async move { store.touch(&id, now + Duration::from_secs(1)).await })
        })
        .collect();
    let revoke = {
        let store = Arc::clone(store);
        let (who, keep) = (who.clone(), keep.id);
        tokio::spawn(async move { store.delete_for_user_except(&who, &keep).await })
    };
    for create in creates {
        joined(create.await).expect("racing create");
    }
    for touch in touches {
        joined(touch.await).expect("racing touch");
    }
    let deleted = joined(revoke.await).expect("delete_for_user_except");
    except_race_check(&**store, &who, &keep, &before, &racing, deleted).await;
}

/// One session's life: create, read back, then either delete it (and check it stays gone)
/// or touch it. Returns the survivor, if any.
async fn lifecycle(
    store: &dyn TokenStore,
    who: &UserId,
    now: OffsetDateTime,
    i: usize,
) -> Option<Session> {
    let s = session(
        who,
        now + Duration::from_millis(i as u64),
        HOUR,
        ClientInfo::none(),
    );
    store.create(&s).await.expect("concurrent create");
    assert_eq!(
        store.get(&s.id, now).await.expect("concurrent get"),
        Some(s.clone()),
        "a session created under concurrency must be readable"
    );
    if i.is_multiple_of(2) {
        assert!(
            store.delete(&s.id).await.expect("concurrent delete"),
            "concurrent delete must report true"
        );
        assert!(
            !store.touch(&s.id, now).await.expect("concurrent touch"),
            "touch after delete must report false"
        );
        assert_eq!(
            store.get(&s.id, now).await.expect("get"),
            None,
            "a deleted session must stay deleted under concurrency"
        );
        None
    } else {
        let seen = now + Duration::from_secs(1);
        assert!(
            store.touch(&s.id, seen).await.expect("concurrent touch"),
            "touch of a live session must report true under concurrency"
        );
        Some(Session {
            last_seen_at: seen,
            ..s
        })
    }
}

/// Every survivor is listed under its user, nothing else is, and `delete_for_user` counts
/// them.
async fn check_survivors(
    store: &dyn TokenStore,
    users: &[UserId],
    now: OffsetDateTime,
    outcomes: Vec<Option<Session>>,
) {
    let survivors: Vec<Session> = outcomes.into_iter().flatten().collect();
    for who in users {
        let mut expected: Vec<Session> = survivors
            .iter()
            .filter(|s| &s.user_id == who)
            .cloned()
            .collect();
        expected.sort_by_key(|s| (s.created_at, s.id));
        assert_eq!(
            store.list_for_user(who, now).await.expect("list"),
            expected,
            "after concurrent work, a user's list must hold exactly the surviving sessions"
        );
        assert_eq!(
            store.delete_for_user(who).await.expect("delete_for_user"),
            expected.len() as u64,
            "delete_for_user must count every surviving session"
        );
    }
}

/// Touch and delete race on one session: whatever the order, it ends deleted.
async fn touch_delete_race(store: &dyn TokenStore, now: OffsetDateTime) {
    let s = session(&user("race"), now, HOUR, ClientInfo::none());
    store.create(&s).await.expect("create");
    let later = now + Duration::from_secs(1);
    let (deleted, _touched) = tokio::join!(store.delete(&s.id), store.touch(&s.id, later));
    assert!(
        deleted.expect("delete"),
        "the racing delete must report true"
    );
    assert_eq!(
        store.get(&s.id, later).await.expect("get"),
        None,
        "a touch racing a delete must not resurrect the session"
    );
    assert!(
        store
            .list_for_user(&s.user_id, later)
            .await
            .expect("list")
            .is_empty(),
        "a touch racing a delete must not re-index the session"
    );
}

/// `n` creates of one session at once: exactly one succeeds, the rest are duplicates.
async fn duplicate_race(store: &dyn TokenStore, now: OffsetDateTime, n: usize) {
    let s = session(&user("dup-race"), now, HOUR, ClientInfo::none());
    let results = join_all((0..n).map(|_| store.create(&s))).await;
    let mut wins = 0;
    for result in results {
        match result {
            Ok(()) => wins += 1,
            Err(StoreError::Duplicate) => {}
            Err(e) => panic!("a racing create failed: {e:?}"),
        }
    }
    assert_eq!(
        wins, 1,
        "exactly one of {n} racing creates of one id must succeed"
    );
    assert_eq!(
        store.get(&s.id, now).await.expect("get"),
        Some(s.clone()),
        "the winning create must be stored"
    );
    assert_eq!(store.delete_for_user(&s.user_id).await.expect("cleanup"), 1);
}
