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

use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use hashbrown::{DefaultHashBuilder, HashTable};
use time::OffsetDateTime;

use super::TokenStore;
use crate::error::StoreError;
use crate::session::{ClientInfo, Session};
use crate::token::{SecretHash, SessionId};
use crate::user::UserId;

/// Number of shards; a power of two (the shard is the top bits of the id's hash).
const SHARDS: usize = 64;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// Records per slab chunk (about 112 KiB). Chunks are allocated whole and never move; the
/// first chunk of a shard starts small and doubles up to this size.
const CHUNK: usize = 1024;
/// No record / no name.
const NIL: u32 = u32::MAX;
/// Records a create examines for expiry (its own shard, from the shard's sweep cursor).
const SWEEP_STEP: usize = 2;
/// A shard holding fewer live sessions than this is not swept by creates (small stores
/// keep expired sessions until `purge_expired` or `get` meets them, as callers may expect).
const SWEEP_MIN: usize = 32;
/// Records `purge_expired` examines per shard lock hold (a few tens of microseconds).
const PURGE_BATCH: usize = 256;

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
            let r = s.rec(s.find(hash, id.as_bytes())?);
            if r.expires > now {
                return Some(s.session(r));
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

/// A client IP, inline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ip {
    None,
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Ip {
    fn new(ip: Option<IpAddr>) -> Self {
        match ip {
            None => Self::None,
            Some(IpAddr::V4(v4)) => Self::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => Self::V6(v6.octets()),
        }
    }

    fn get(self) -> Option<IpAddr> {
        match self {
            Self::None => None,
            Self::V4(b) => Some(IpAddr::V4(Ipv4Addr::from(b))),
            Self::V6(b) => Some(IpAddr::V6(Ipv6Addr::from(b))),
        }
    }
}

/// One session, compact. `user == NIL` marks a free record (then `next` links the free list).
#[derive(Clone, Copy)]
struct Record {
    id: [u8; 16],
    secret_hash: [u8; 32],
    /// Times in Unix microseconds (sessions keep microsecond precision).
    created: i64,
    expires: i64,
    seen: i64,
    /// The id's 32-bit hash, as in the index (to find the index entry when removing).
    hash: u32,
    user: u32,
    agent: u32,
    /// The user's list of sessions (or, for a free record, the free list in `next`).
    prev: u32,
    next: u32,
    ip: Ip,
}

impl Record {
    const FREE: Self = Self {
        id: [0; 16],
        secret_hash: [0; 32],
        created: 0,
        expires: 0,
        seen: 0,
        hash: 0,
        user: NIL,
        agent: NIL,
        prev: NIL,
        next: NIL,
        ip: Ip::None,
    };

    fn is_live(&self) -> bool {
        self.user != NIL
    }
}

/// `t` in whole Unix microseconds (rounded down).
fn micros(t: OffsetDateTime) -> i64 {
    t.unix_timestamp() * 1_000_000 + i64::from(t.microsecond())
}

fn instant(micros: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(micros)
}

/// The 64-bit hash the index table works with, rebuilt from the 32 bits an entry keeps
/// (hashbrown takes the bucket from the low bits and the tag from the top 7).
fn widen(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

/// An interned string with a reference count and a payload (`X`): a [`UserId`] (inline up to
/// 23 bytes, so most user ids need no allocation of their own) or a user agent. `None` once
/// released.
struct Name<T, X> {
    text: Option<T>,
    /// Reference count while live; once released, the next released entry (`NIL`: none).
    refs: u32,
    extra: X,
}

impl<T: AsRef<str>, X> Name<T, X> {
    fn as_str(&self) -> &str {
        self.text.as_ref().map_or("", AsRef::as_ref)
    }
}

/// Interned strings of one shard: user ids (payload: head of the user's session list) or
/// user agents (no payload).
struct Names<T, X> {
    slots: Vec<Name<T, X>>,
    /// Head of the list of released entries, threaded through their `refs` (`NIL`: none).
    /// Releasing never allocates: a free list in a `Vec` grew by doubling under the shard's
    /// write lock, and that reallocation once stalled a purge batch for 2 ms.
    free: u32,
    /// `(slot, 32-bit hash)`: growing the index never hashes the names again.
    index: HashTable<(u32, u32)>,
}

impl<T: AsRef<str>, X: Copy> Names<T, X> {
    fn new() -> Self {
        Self {
            slots: Vec::new(),
            free: NIL,
            index: HashTable::new(),
        }
    }

    fn find(&self, hash: u64, text: &str) -> Option<u32> {
        let hash = hash as u32;
        let slots = &self.slots;
        self.index
            .find(widen(hash), |&(i, h)| {
                h == hash && slots[i as usize].as_str() == text
            })
            .map(|&(i, _)| i)
    }

    /// The handle of `text`, interned (as `make` builds it) if new; one more reference to it.
    fn acquire(&mut self, hash: u64, text: &str, make: impl FnOnce() -> T, extra: X) -> u32 {
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
    fn release(&mut self, i: u32, hasher: &DefaultHashBuilder) {
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
    fn text(&self, i: u32) -> &str {
        self.slots[i as usize].as_str()
    }

    /// The interned value of `i` (`None` once released: a live record never names one).
    fn value(&self, i: u32) -> Option<&T> {
        self.slots[i as usize].text.as_ref()
    }
}

/// One shard: its records, id index, interned names and sweep cursor.
struct Shard {
    chunks: Vec<Vec<Record>>,
    /// Head of the free-record list.
    free: u32,
    /// Records in use.
    live: usize,
    /// Records allocated (in use or free): the slab's length.
    used: usize,
    /// `(slot, hash)` of every record in use.
    ids: HashTable<(u32, u32)>,
    /// Payload: the first record of the user's list.
    users: Names<UserId, u32>,
    agents: Names<Box<str>, ()>,
    /// Next record a create examines for expiry.
    cursor: usize,
    /// No record in use expires after this (Unix microseconds; never lowered by removals).
    max_expires: i64,
    /// The store's hasher (names are rehashed when their index grows).
    hasher: DefaultHashBuilder,
}

impl Shard {
    fn with_capacity(sessions: usize, hasher: DefaultHashBuilder) -> Self {
        let mut chunks = Vec::new();
        if sessions > 0 {
            // The first chunk may stay small; the others are allocated whole, once.
            for c in 0..sessions.div_ceil(CHUNK) {
                let cap = if c == 0 { sessions.min(CHUNK) } else { CHUNK };
                chunks.push(Vec::with_capacity(cap));
            }
        }
        Self {
            chunks,
            free: NIL,
            live: 0,
            used: 0,
            ids: HashTable::with_capacity(sessions),
            users: Names::new(),
            agents: Names::new(),
            cursor: 0,
            max_expires: i64::MIN,
            hasher,
        }
    }

    /// Records allocated (in use or free).
    fn slots(&self) -> usize {
        self.used
    }

    fn rec(&self, slot: u32) -> &Record {
        &self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    fn rec_mut(&mut self, slot: u32) -> &mut Record {
        &mut self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    fn find(&self, hash: u32, id: &[u8; 16]) -> Option<u32> {
        let chunks = &self.chunks;
        self.ids
            .find(widen(hash), |&(slot, h)| {
                h == hash && chunks[slot as usize / CHUNK][slot as usize % CHUNK].id == *id
            })
            .map(|&(slot, _)| slot)
    }

    /// A record to fill: a freed one, or a new one at the end of the slab.
    fn alloc(&mut self, rec: Record) -> u32 {
        if self.free != NIL {
            let slot = self.free;
            self.free = self.rec(slot).next;
            *self.rec_mut(slot) = rec;
            return slot;
        }
        // Append to the slab: chunks fill in order and never move once full-sized (the first
        // one of a shard doubles from 16 records up to CHUNK; the others are allocated whole).
        let slot = self.used;
        let c = slot / CHUNK;
        if c == self.chunks.len() {
            self.chunks
                .push(Vec::with_capacity(if c == 0 { 16 } else { CHUNK }));
        }
        let chunk = &mut self.chunks[c];
        if chunk.len() == chunk.capacity() {
            chunk.reserve_exact(chunk.len().clamp(16, CHUNK - chunk.len()));
        }
        chunk.push(rec);
        self.used += 1;
        slot as u32
    }

    /// Inserts a session whose id is absent. `user` and `agent` are the names' hashes.
    fn insert(&mut self, s: &Session, hash: u32, user: u64, agent: Option<u64>) {
        let user = self
            .users
            .acquire(user, s.user_id.as_str(), || s.user_id.clone(), NIL);
        let agent = match (agent, &s.client.user_agent) {
            (Some(h), Some(text)) => self
                .agents
                .acquire(h, text, || Box::from(text.as_str()), ()),
            _ => NIL,
        };
        let head = self.users.slots[user as usize].extra;
        let slot = self.alloc(Record {
            id: *s.id.as_bytes(),
            secret_hash: *s.secret_hash.as_bytes(),
            created: micros(s.created_at),
            expires: micros(s.expires_at),
            seen: micros(s.last_seen_at),
            hash,
            user,
            agent,
            prev: NIL,
            next: head,
            ip: Ip::new(s.client.ip),
        });
        if head != NIL {
            self.rec_mut(head).prev = slot;
        }
        self.users.slots[user as usize].extra = slot;
        self.max_expires = self.max_expires.max(micros(s.expires_at));
        self.ids
            .insert_unique(widen(hash), (slot, hash), |&(_, h)| widen(h));
        self.live += 1;
    }

    /// Removes the record in use at `slot`.
    fn remove(&mut self, slot: u32) {
        let r = *self.rec(slot);
        if let Ok(entry) = self.ids.find_entry(widen(r.hash), |&(s, _)| s == slot) {
            entry.remove();
        }
        if r.prev == NIL {
            self.users.slots[r.user as usize].extra = r.next;
        } else {
            self.rec_mut(r.prev).next = r.next;
        }
        if r.next != NIL {
            self.rec_mut(r.next).prev = r.prev;
        }
        self.users.release(r.user, &self.hasher);
        if r.agent != NIL {
            self.agents.release(r.agent, &self.hasher);
        }
        let free = self.free;
        *self.rec_mut(slot) = Record {
            next: free,
            ..Record::FREE
        };
        self.free = slot;
        self.live -= 1;
        if self.live == 0 {
            // Give the memory back: an empty shard starts afresh.
            *self = Self::with_capacity(0, self.hasher);
        }
    }

    /// Examines up to `budget` records from `from`, removing those expired at `now`.
    /// Returns how many it removed and where it stopped (`None` at the end of the slab).
    fn sweep(&mut self, from: usize, budget: usize, now: i64) -> (u64, Option<usize>) {
        let mut removed = 0;
        let mut pos = from;
        for _ in 0..budget {
            if pos >= self.slots() {
                return (removed, None);
            }
            let r = self.rec(pos as u32);
            if r.is_live() && r.expires <= now {
                self.remove(pos as u32);
                removed += 1;
            }
            pos += 1;
        }
        (removed, Some(pos))
    }

    fn session(&self, r: &Record) -> Session {
        let mut client = ClientInfo::none();
        client.ip = r.ip.get();
        if r.agent != NIL {
            client.user_agent = Some(self.agents.text(r.agent).to_owned());
        }
        // Copies, never shared counts: validates of one session (or of sessions with one
        // user agent) on many cores would otherwise all write one cache line.
        Session {
            id: SessionId::from_bytes(r.id),
            user_id: self
                .users
                .value(r.user)
                .map_or_else(|| UserId::from(""), UserId::unshared_copy),
            secret_hash: SecretHash::from_bytes(r.secret_hash),
            created_at: instant(r.created),
            expires_at: instant(r.expires),
            last_seen_at: instant(r.seen),
            client,
        }
    }

    /// The records of a user in this shard.
    fn user_slots(&self, user: Option<u32>) -> impl Iterator<Item = u32> + '_ {
        let mut next = user.map_or(NIL, |u| self.users.slots[u as usize].extra);
        std::iter::from_fn(move || {
            (next != NIL).then(|| {
                let slot = next;
                next = self.rec(slot).next;
                slot
            })
        })
    }
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
                if s.rec(slot).id != *keep.as_bytes() {
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
                    .map(|slot| s.rec(slot))
                    .filter(|r| r.expires > now)
                    .map(|r| s.session(r)),
            );
        }
        live.sort_by_key(|s| (s.created_at, s.id));
        Ok(live)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = micros(now);
        let mut removed = 0;
        // Where each shard's scan is (`None`: done).
        let mut scan: Vec<Option<usize>> = vec![Some(0); SHARDS];
        for (shard, pos) in scan.iter_mut().enumerate() {
            let emptied = {
                let mut s = self.write(shard);
                // Every session of the shard is expired: swap in an empty shard, and free the
                // old one's memory after releasing the lock.
                (s.live > 0 && s.max_expires <= now).then(|| {
                    let fresh = Shard::with_capacity(0, s.hasher);
                    std::mem::replace(&mut *s, fresh)
                })
            };
            if let Some(old) = emptied {
                removed += old.live as u64;
                drop(old);
                *pos = None;
                tokio::task::yield_now().await;
            }
        }
        // Round robin over the shards, one short batch per lock hold: a request waiting for
        // a shard waits for one batch, not for the whole shard's scan (std's lock lets the
        // releasing thread take it again before a woken waiter runs).
        while scan.iter().any(Option::is_some) {
            for (shard, pos) in scan.iter_mut().enumerate() {
                if let Some(from) = *pos {
                    let (n, stop) = self.write(shard).sweep(from, PURGE_BATCH, now);
                    removed += n;
                    *pos = stop;
                    // Hand the thread back between batches: the purge usually runs as a
                    // task on the runtime that serves requests (`spawn_expiry_task`), and
                    // would otherwise hold its worker for the whole purge (~0.1 s for a
                    // million records).
                    tokio::task::yield_now().await;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ClientInfo;
    use crate::token::Token;
    use std::time::Duration;

    fn session(user: i64, now: OffsetDateTime, ttl_secs: u64) -> Session {
        let t = Token::generate().expect("os rng");
        Session::new(
            &t,
            UserId::from(user),
            now,
            Duration::from_secs(ttl_secs),
            ClientInfo::none(),
        )
    }

    fn slots(store: &MemoryTokenStore) -> usize {
        (0..SHARDS).map(|i| store.read(i).slots()).sum()
    }

    fn names(store: &MemoryTokenStore) -> (usize, usize) {
        (0..SHARDS)
            .map(|i| {
                let s = store.read(i);
                (s.users.index.len(), s.agents.index.len())
            })
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    }

    #[test]
    fn records_stay_compact() {
        assert!(std::mem::size_of::<Record>() <= 112);
    }

    #[tokio::test]
    async fn expired_sessions_do_not_accumulate_without_explicit_purges() {
        let store = MemoryTokenStore::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for i in 0..50_000 {
            // Each session lives 1 s; logins happen 1 s apart, so at most one is live.
            store
                .create(&session(i % 7, t0 + Duration::from_secs(i as u64), 1))
                .await
                .expect("create");
        }
        // Creates sweep only shards holding at least SWEEP_MIN sessions.
        let bound = SHARDS * (SWEEP_MIN + SWEEP_STEP);
        assert!(store.len() <= bound, "held {} sessions", store.len());
        assert!(
            slots(&store) <= bound,
            "{} records allocated",
            slots(&store)
        );
        assert!(names(&store).0 <= bound);
    }

    #[tokio::test]
    async fn the_sweep_keeps_memory_bounded_while_live_sessions_stay() {
        // 20 000 sessions that live a day, then 200 000 that live 10 s, one per second.
        let store = MemoryTokenStore::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let mut long = Vec::new();
        for i in 0..20_000 {
            let s = session(i, t0, 1_000_000);
            store.create(&s).await.expect("create");
            long.push(s);
        }
        for i in 0..200_000 {
            let now = t0 + Duration::from_secs(i as u64);
            store
                .create(&session(i % 100, now, 10))
                .await
                .expect("create");
        }
        // Live: 20 000 long + 10 short; allocated records stay within a small factor of
        // that instead of the 220 000 created.
        assert!(store.len() < 2 * 20_000, "held {} sessions", store.len());
        assert!(slots(&store) < 2 * 20_000 + SHARDS * CHUNK);
        let now = t0 + Duration::from_secs(200_000);
        for s in long.iter().step_by(997) {
            assert_eq!(store.get(&s.id, now).await.expect("get").as_ref(), Some(s));
        }
        let held = store.len();
        let purged = store
            .purge_expired(t0 + Duration::from_secs(200_010))
            .await
            .expect("purge");
        assert_eq!(purged as usize, held - 20_000);
        assert_eq!(store.len(), 20_000);
    }

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

    #[tokio::test(flavor = "current_thread")]
    async fn a_purge_lets_the_tasks_on_its_thread_run_between_batches() {
        // The purge usually runs as a task on the runtime that serves requests
        // (`spawn_expiry_task`): it must hand the thread back after each batch instead of
        // holding it for the whole purge.
        let store = std::sync::Arc::new(MemoryTokenStore::new());
        let t0 = OffsetDateTime::UNIX_EPOCH;
        // Every other session expires after 10 s: no shard is all expired, and each holds
        // more records than one batch examines.
        for i in 0..40_000 {
            let ttl = if i % 2 == 0 { 10 } else { 1_000_000 };
            store.create(&session(i, t0, ttl)).await.expect("create");
        }
        let purge = tokio::spawn({
            let store = store.clone();
            async move { store.purge_expired(t0 + Duration::from_secs(20)).await }
        });
        let turns = crate::test_support::turns_while_running(&purge).await;
        let purged = purge.await.expect("purge task").expect("purge");
        assert_eq!(purged, 20_000);
        assert_eq!(store.len(), 20_000);
        // About 625 records per shard, 256 examined per batch: some 190 batches.
        assert!(turns >= SHARDS, "{turns} turns during the purge");
    }

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

    #[tokio::test]
    async fn freed_records_are_reused() {
        let store = MemoryTokenStore::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let keep = session(0, t0, 60);
        store.create(&keep).await.expect("create");
        for i in 0..5_000 {
            let s = session(i, t0, 60);
            store.create(&s).await.expect("create");
            assert!(store.delete(&s.id).await.expect("delete"));
        }
        assert!(slots(&store) <= SHARDS * 2, "{}", slots(&store));
        assert_eq!(store.get(&keep.id, t0).await.expect("get"), Some(keep));
    }
}

#[cfg(test)]
mod breakdown {
    use super::*;
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
