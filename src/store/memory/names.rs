//! The interner of one shard's user ids and user agents: reference-counted strings behind
//! `u32` handles, with a free list of released entries threaded through their counts, so a
//! user agent shared by many sessions is held once per shard and a user id of at most 23
//! bytes needs no allocation of its own.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::{widen, NIL};
#[cfg(doc)]
use crate::user::UserId;

/// An interned string with a reference count and a payload (`X`): a [`UserId`] (inline up to
/// 23 bytes, so most user ids need no allocation of their own) or a user agent. `None` once
/// released.
pub(super) struct Name<T, X> {
    pub(super) text: Option<T>,
    /// Reference count while live; once released, the next released entry (`NIL`: none).
    pub(super) refs: u32,
    pub(super) extra: X,
}

impl<T: AsRef<str>, X> Name<T, X> {
    #[inline]
    pub(super) fn as_str(&self) -> &str {
        self.text.as_ref().map_or("", AsRef::as_ref)
    }
}

/// Interned strings of one shard: user ids (payload: head of the user's session list) or
/// user agents (no payload).
pub(super) struct Names<T, X> {
    pub(super) slots: Vec<Name<T, X>>,
    /// Head of the list of released entries, threaded through their `refs` (`NIL`: none).
    /// Releasing never allocates: a free list in a `Vec` grew by doubling under the shard's
    /// write lock, and that reallocation once stalled a purge batch for 2 ms.
    pub(super) free: u32,
    /// `(slot, 32-bit hash)`: growing the index never hashes the names again.
    pub(super) index: HashTable<(u32, u32)>,
}

impl<T: AsRef<str>, X: Copy> Names<T, X> {
    pub(super) fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: NIL,
            index: HashTable::new(),
        }
    }

    pub(super) fn find(&self, hash: u64, text: &str) -> Option<u32> {
        let hash = hash as u32;
        let slots = &self.slots;
        self.index
            .find(widen(hash), |&(i, h)| {
                h == hash && slots[i as usize].as_str() == text
            })
            .map(|&(i, _)| i)
    }

    /// The handle of `text`, interned (as `make` builds it) if new; one more reference to it.
    pub(super) fn acquire(
        &mut self,
        hash: u64,
        text: &str,
        make: impl FnOnce() -> T,
        extra: X,
    ) -> u32 {
        if let Some(i) = self.find(hash, text) {
            self.slots[i as usize].refs += 1;
            return i;
        }
        let name = Name {
            text: Some(make()),
            refs: 1,
            extra,
        };
        let i = if self.free == NIL {
            self.slots.push(name);
            (self.slots.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = self.slots[i as usize].refs;
            self.slots[i as usize] = name;
            i
        };
        let hash = hash as u32;
        self.index
            .insert_unique(widen(hash), (i, hash), |&(_, h)| widen(h));
        i
    }

    /// One reference less; the string is dropped with its last reference.
    pub(super) fn release(&mut self, i: u32, hasher: &DefaultHashBuilder) {
        let name = &mut self.slots[i as usize];
        name.refs -= 1;
        if name.refs > 0 {
            return;
        }
        let hash = hasher.hash_one(name.as_str()) as u32;
        name.text = None;
        name.refs = self.free;
        self.free = i;
        if let Ok(entry) = self.index.find_entry(widen(hash), |&(j, _)| j == i) {
            entry.remove();
        }
    }

    /// The interned string.
    pub(super) fn text(&self, i: u32) -> &str {
        self.slots[i as usize].as_str()
    }

    /// The interned value of `i` (`None` once released: a live record never names one).
    pub(super) fn value(&self, i: u32) -> Option<&T> {
        self.slots[i as usize].text.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};
    use std::time::Duration;

    use time::OffsetDateTime;

    use crate::session::{ClientInfo, Session};
    use crate::store::memory::testing::{names, session};
    use crate::store::memory::{MemoryTokenStore, SHARDS};
    use crate::store::TokenStore;
    use crate::token::Token;
    use crate::user::UserId;

    #[tokio::test]
    async fn released_names_are_reused() {
        let store = MemoryTokenStore::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        // Sessions that stay, so no shard is emptied (an empty shard starts afresh).
        for i in 0..5_000 {
            store.create(&session(i, t0, 1_000)).await.expect("create");
        }
        let name_slots = |store: &MemoryTokenStore| {
            (0..SHARDS)
                .map(|i| store.read(i).users.slots.len())
                .sum::<usize>()
        };
        // Three rounds of 20 000 users who log in and out: their entries are reused.
        for round in 1..=3 {
            let batch: Vec<Session> = (0..20_000)
                .map(|i| session(round * 100_000 + i, t0, 1_000))
                .collect();
            for s in &batch {
                store.create(s).await.expect("create");
            }
            for s in &batch {
                assert!(store.delete(&s.id).await.expect("delete"));
            }
        }
        assert_eq!(store.len(), 5_000);
        assert_eq!(names(&store).0, 5_000);
        // 65 000 without reuse; a shard may need a few more entries in one round than it
        // freed in the last (the users fall on the shards at random).
        let slots = name_slots(&store);
        assert!(slots <= 30_000, "{slots} user entries for 5 000 users");
    }

    #[tokio::test]
    async fn agents_and_users_are_interned_and_released() {
        let store = MemoryTokenStore::with_capacity(10_000);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let ua = "Mozilla/5.0 ".repeat(8);
        let mut all = Vec::new();
        for i in 0..10_000 {
            let client = ClientInfo::none()
                .with_ip(IpAddr::V6(Ipv6Addr::from(i as u128)))
                .with_user_agent(&ua);
            let t = Token::generate().expect("os rng");
            let s = Session::new(
                &t,
                UserId::from(i64::from(i % 3)),
                t0,
                Duration::from_secs(60),
                client,
            );
            store.create(&s).await.expect("create");
            all.push(s);
        }
        let (users, agents) = names(&store);
        assert!(users <= 3 * SHARDS && agents <= SHARDS, "{users} {agents}");
        for s in all.iter().step_by(101) {
            assert_eq!(store.get(&s.id, t0).await.expect("get").as_ref(), Some(s));
        }
        assert_eq!(
            store
                .list_for_user(&UserId::from(1_i64), t0)
                .await
                .expect("list")
                .len(),
            3333
        );
        assert_eq!(
            store
                .delete_for_user(&UserId::from(1_i64))
                .await
                .expect("delete"),
            3333
        );
        for s in &all[..100] {
            store.delete(&s.id).await.expect("delete");
        }
        assert_eq!(store.len(), 10_000 - 3333 - 67);
        assert_eq!(
            store
                .purge_expired(t0 + Duration::from_secs(60))
                .await
                .expect("purge"),
            10_000 - 3333 - 67
        );
        assert!(store.is_empty());
        assert_eq!(names(&store), (0, 0));
    }
}
