//! The in-memory token store: the embedded default.
//!
//! Layout, per shard (64 shards, picked by a keyed hash of the session id, each behind its
//! own `RwLock`):
//!
//! - the sessions are compact fixed-size records ([`Record`], 112 bytes: raw id, secret
//!   digest, times as Unix microseconds, the IP inline, and `u32` handles for the user id
//!   and the user agent) in a slab of 1024-record chunks that never moves once allocated, so
//!   growing the store never copies it; freed records are reused;
//! - the id index is a `hashbrown::HashTable` of `(slot, hash)` pairs, 8 bytes each: it
//!   rehashes without touching the records;
//! - user ids and user agents are interned, with reference counts: a user agent shared by
//!   many sessions is held once per shard;
//! - the per-user index is a doubly linked list threaded through the records (two `u32`s
//!   per session), headed from the user's interned entry.
//!
//! Expired sessions are reclaimed by `get` when it meets one, by `purge_expired` (in
//! batches of [`PURGE_BATCH`] records per lock hold, going round the shards so that no shard
//! is held batch after batch, and yielding to the async runtime after each batch so that
//! requests served by the same thread never wait for more than one), and by every
//! create, which examines the next [`SWEEP_STEP`] records of its shard: a bounded amount of
//! work per request, so memory follows the live sessions without any `expire` call and no
//! request ever waits for a whole sweep.
//!
//! One file per part: [`slab`] (the records), [`names`] (the interner), [`user_index`] (the
//! per-user lists), [`sweep`] (expiry), and [`shard`], which keeps them in step.

use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use hashbrown::DefaultHashBuilder;
use time::OffsetDateTime;

use super::TokenStore;
use crate::error::StoreError;
use crate::session::Session;
// A record keeps its times as whole Unix microseconds (rounded down).
use crate::time_codec::{from_micros_saturating as instant, to_micros as micros};
use crate::token::SessionId;
use crate::user::UserId;

mod names;
mod shard;
mod slab;
mod sweep;
mod user_index;

use shard::Shard;
use sweep::{SWEEP_MIN, SWEEP_STEP};

#[cfg(doc)]
use {slab::Record, sweep::PURGE_BATCH};

/// Number of shards; a power of two (the shard is the top bits of the id's hash).
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// No record / no name.
const NIL: u32 = u32::MAX;

/// Sessions in process memory: 64 shards of compact records (no global lock on any path;
/// validate takes one shard's read lock).
///
/// About 200 bytes of heap per session at a million sessions with client metadata (IPv4, a
/// user agent shared with other sessions, four sessions per user; BENCHMARKS.md); a user id of
/// at most 23 bytes is kept inline, and each distinct user agent once per shard that holds it.
/// A read allocates only the returned [`Session`]'s strings: the user agent, and a user id
/// longer than 23 bytes (shorter ones are copied inline). Expired sessions are dropped when
/// `get` meets them, by [`purge_expired`](TokenStore::purge_expired) (in short batches, never
/// one long lock, yielding to the async runtime between batches so that a purge running as a
/// task beside your handlers never holds their thread for long), and a few at a time by
/// every create, so memory stays proportional to live sessions even if nobody calls
/// `expire`, and no request waits for a sweep. Sessions do not survive a restart and are not
/// shared between processes.
///
/// ```
/// use std::sync::Arc;
/// use keycard::{MemoryTokenStore, TokenStore};
/// let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
/// let sized = MemoryTokenStore::with_capacity(100_000);
/// assert!(sized.is_empty());
/// ```
pub struct MemoryTokenStore {
    shards: Box<[RwLock<Shard>]>,
    hasher: DefaultHashBuilder,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty store with room for `sessions` sessions before its id index or its record
    /// slabs need to grow.
    pub fn with_capacity(sessions: usize) -> Self {
        let per_shard = sessions.div_ceil(SHARDS);
        let hasher = DefaultHashBuilder::default();
        Self {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(Shard::with_capacity(per_shard, hasher)))
                .collect(),
            hasher,
        }
    }

    /// Number of sessions held, live or expired-but-not-yet-swept.
    pub fn len(&self) -> usize {
        (0..SHARDS).map(|i| self.read(i).live).sum()
    }

    /// Whether the store holds no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard of an id and the 32-bit hash its index entry keeps.
    fn locate(&self, id: &SessionId) -> (usize, u32) {
        let h = self.hasher.hash_one(id.as_bytes());
        ((h >> (64 - SHARD_BITS)) as usize, h as u32)
    }

    fn read(&self, shard: usize) -> RwLockReadGuard<'_, Shard> {
        self.shards[shard]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, shard: usize) -> RwLockWriteGuard<'_, Shard> {
        self.shards[shard]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The session with this id unless absent or expired at `now`; an expired one met here
    /// is removed.
    fn read_session(&self, id: &SessionId, now: OffsetDateTime) -> Option<Session> {
        let (shard, hash) = self.locate(id);
        let now = micros(now);
        {
            let s = self.read(shard);
            let slot = s.find(hash, id.as_bytes())?;
            if s.rec(slot).expires > now {
                return Some(s.session(slot));
            }
        }
        // Expired: drop it (unless someone did already).
        let mut s = self.write(shard);
        if let Some(slot) = s.find(hash, id.as_bytes()) {
            if s.rec(slot).expires <= now {
                s.remove(slot);
            }
        }
        None
    }

    fn name_hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }
}

impl Default for MemoryTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("sessions", &self.len())
            .field("shards", &SHARDS)
            .finish()
    }
}

/// The 64-bit hash the index table works with, rebuilt from the 32 bits an entry keeps
/// (hashbrown takes the bucket from the low bits and the tag from the top 7).
#[inline]
fn widen(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let (shard, hash) = self.locate(&session.id);
        let user = self.name_hash(session.user_id.as_str());
        let agent = session
            .client
            .user_agent
            .as_deref()
            .map(|a| self.name_hash(a));
        let mut s = self.write(shard);
        if s.find(hash, session.id.as_bytes()).is_some() {
            return Err(StoreError::Duplicate);
        }
        s.insert(session, hash, user, agent);
        // Pay for the memory of expired sessions a little at a time.
        if s.live >= SWEEP_MIN {
            let cursor = s.cursor;
            let (_, stop) = s.sweep(cursor, SWEEP_STEP, micros(session.created_at));
            s.cursor = stop.unwrap_or(0);
        }
        Ok(())
    }

    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        Ok(self.read_session(id, now))
    }

    fn get_immediate(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Option<Result<Option<Session>, StoreError>> {
        Some(Ok(self.read_session(id, now)))
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (shard, hash) = self.locate(id);
        let seen = micros(last_seen_at);
        let mut s = self.write(shard);
        // Only finds present sessions, so a touch can never resurrect a deleted one.
        Ok(match s.find(hash, id.as_bytes()) {
            Some(slot) if s.rec(slot).expires > seen => {
                let r = s.rec_mut(slot);
                r.seen = r.seen.max(seen);
                true
            }
            _ => false,
        })
    }

    async fn touch_from(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        ip: IpAddr,
    ) -> Result<bool, StoreError> {
        let (shard, hash) = self.locate(id);
        let seen = micros(last_seen_at);
        let mut s = self.write(shard);
        Ok(match s.find(hash, id.as_bytes()) {
            Some(slot) if s.rec(slot).expires > seen => {
                let r = s.rec_mut(slot);
                r.seen = r.seen.max(seen);
                r.ip = slab::Ip::new(Some(ip));
                true
            }
            _ => false,
        })
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let (shard, hash) = self.locate(id);
        let mut s = self.write(shard);
        Ok(match s.find(hash, id.as_bytes()) {
            Some(slot) => {
                s.remove(slot);
                true
            }
            None => false,
        })
    }

    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        let h = self.name_hash(user.as_str());
        let mut removed = 0;
        for shard in 0..SHARDS {
            let mut s = self.write(shard);
            while let Some(u) = s.users.find(h, user.as_str()) {
                let head = s.users.slots[u as usize].extra;
                s.remove(head);
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        let h = self.name_hash(user.as_str());
        let mut removed = 0;
        for shard in 0..SHARDS {
            let mut s = self.write(shard);
            let mut next = s
                .users
                .find(h, user.as_str())
                .map_or(NIL, |u| s.users.slots[u as usize].extra);
            while next != NIL {
                let slot = next;
                next = s.rec(slot).next;
                // API tokens survive "log out my other devices".
                if s.rec(slot).id != *keep.as_bytes() && !s.rec(slot).api {
                    // Safe to go on with `next`: `remove` resets the shard only when its last
                    // session goes, and then `next` is NIL.
                    s.remove(slot);
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let h = self.name_hash(user.as_str());
        let now = micros(now);
        let mut live = Vec::new();
        for shard in 0..SHARDS {
            let s = self.read(shard);
            let u = s.users.find(h, user.as_str());
            live.extend(
                s.user_slots(u)
                    .filter(|&slot| s.rec(slot).expires > now)
                    .map(|slot| s.session(slot)),
            );
        }
        live.sort_by_key(|s| (s.created_at, s.id));
        Ok(live)
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.purge(now).await)
    }
}

/// What the tests of every part share: sessions to store, and the store's record and name
/// counts.
#[cfg(test)]
mod testing {
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::{MemoryTokenStore, SHARDS};
    use crate::session::{ClientInfo, Session};
    use crate::token::Token;
    use crate::user::UserId;

    pub(super) fn session(user: i64, now: OffsetDateTime, ttl_secs: u64) -> Session {
        let t = Token::generate().expect("os rng");
        Session::new(
            &t,
            UserId::from(user),
            now,
            Duration::from_secs(ttl_secs),
            ClientInfo::none(),
        )
    }

    pub(super) fn slots(store: &MemoryTokenStore) -> usize {
        (0..SHARDS).map(|i| store.read(i).slots()).sum()
    }

    pub(super) fn names(store: &MemoryTokenStore) -> (usize, usize) {
        (0..SHARDS)
            .map(|i| {
                let s = store.read(i);
                (s.users.index.len(), s.agents.index.len())
            })
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::testing::{names, session, slots};
    use super::*;

    #[tokio::test]
    async fn get_drops_an_expired_session_and_its_index_entry() {
        let store = MemoryTokenStore::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let s = session(1, t0, 10);
        store.create(&s).await.expect("create");
        assert!(store
            .get(&s.id, t0 + Duration::from_secs(10))
            .await
            .expect("get")
            .is_none());
        assert!(store.is_empty());
        assert_eq!(names(&store), (0, 0));
        assert_eq!(slots(&store), 0, "an empty shard gives its memory back");
    }

    /// Grants are kept by slot, and slots are reused: a freed API token's slot, taken by a
    /// login's session, holds no grant; taken by another API token, it holds that token's.
    #[tokio::test]
    async fn a_reused_slot_holds_its_own_grant_or_none() {
        use crate::api_tokens::{ApiTokenGrant, Scopes};
        use crate::session::SessionKind;

        let store = MemoryTokenStore::new();
        let now = OffsetDateTime::now_utc();
        let grant = |name: &str| {
            SessionKind::ApiToken(ApiTokenGrant::new(
                name,
                Scopes::new([name]).expect("a valid scope"),
            ))
        };
        // Enough records that every shard keeps some while the tokens come and go.
        let mut keep = Vec::new();
        for _ in 0..16 * SHARDS {
            let s = session(1, now, 600);
            store.create(&s).await.expect("create");
            keep.push(s);
        }
        let mut tokens = Vec::new();
        for i in 0..2 * SHARDS {
            let mut t = session(1, now, 600);
            t.kind = grant(&format!("old{i}"));
            store.create(&t).await.expect("create");
            tokens.push(t);
        }
        let slots_before = slots(&store);
        let grants = |store: &MemoryTokenStore| -> usize {
            (0..SHARDS)
                .map(|i| store.read(i).grants.iter().flatten().count())
                .sum()
        };
        assert_eq!(grants(&store), tokens.len());
        for t in &tokens {
            assert!(store.delete(&t.id).await.expect("delete"));
        }
        assert_eq!(grants(&store), 0, "a deleted token's grant is dropped");
        assert_eq!(
            slots(&store),
            slots_before,
            "no shard emptied: the slots wait for reuse"
        );
        // New records, every other one an API token, until every freed slot is taken
        // again (a record goes to its id's shard, so some are appended instead).
        let mut reused = Vec::new();
        let mut taken = 0;
        while taken < tokens.len() {
            assert!(
                reused.len() < 100 * SHARDS,
                "the freed slots were never all taken"
            );
            let mut s = session(2, now, 600);
            if reused.len() % 2 == 1 {
                s.kind = grant(&format!("new{}", reused.len()));
            }
            store.create(&s).await.expect("create");
            reused.push(s);
            taken = slots_before + reused.len() - slots(&store);
        }
        for s in keep.iter().chain(&reused) {
            let read = store.get(&s.id, now).await.expect("get").expect("live");
            assert_eq!(read.kind, s.kind);
        }
        for t in &tokens {
            assert!(store.get(&t.id, now).await.expect("get").is_none());
        }
        let new_tokens = reused.iter().filter(|s| s.kind.is_api_token()).count();
        assert_eq!(grants(&store), new_tokens, "one grant per live token");
    }
}

#[cfg(test)]
mod breakdown {
    use std::net::{IpAddr, Ipv4Addr};

    use super::names::Name;
    use super::slab::Record;
    use super::*;
    use crate::session::ClientInfo;
    use crate::token::Token;
    use std::time::Duration;

    #[tokio::test]
    #[ignore = "a measurement: cargo test --release --lib breakdown -- --ignored --nocapture"]
    async fn heap_breakdown() {
        let n = 1_000_000;
        let store = MemoryTokenStore::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for i in 0..n {
            let t = Token::generate().expect("rng");
            let c = ClientInfo::none()
                .with_ip(IpAddr::V4(Ipv4Addr::from(i as u32)))
                .with_user_agent(&format!("{:0100}", i % 1000));
            let s = Session::new(
                &t,
                UserId::from((i % (n / 4)) as u64),
                t0,
                Duration::from_secs(9),
                c,
            );
            store.create(&s).await.expect("create");
        }
        let (mut recs, mut ids, mut users, mut uidx, mut utext, mut agents) = (0, 0, 0, 0, 0, 0);
        for i in 0..SHARDS {
            let s = store.read(i);
            recs += s
                .chunks
                .iter()
                .map(|c| c.capacity() * size_of::<Record>())
                .sum::<usize>();
            ids += s.ids.capacity() * 9;
            users += s.users.slots.capacity() * size_of::<Name<UserId, u32>>();
            uidx += s.users.index.capacity() * 9;
            utext += s
                .users
                .slots
                .iter()
                .map(|n| n.as_str().len())
                .sum::<usize>();
            agents += s.agents.slots.capacity() * (size_of::<Name<Box<str>, ()>>() + 100);
        }
        println!(
            "per session: recs {} ids {} users {} uidx {} utext {} agents {}",
            recs / n,
            ids / n,
            users / n,
            uidx / n,
            utext / n,
            agents / n
        );
        let start = std::time::Instant::now();
        let purged = store
            .purge_expired(t0 + Duration::from_secs(10))
            .await
            .expect("purge");
        println!("purged {purged} in {:?}", start.elapsed());
    }
}
