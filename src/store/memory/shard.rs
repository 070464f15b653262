//! One shard of the store: the slab of records ([`slab`](super::slab)), the id index (a
//! `hashbrown::HashTable` of `(slot, hash)` pairs, 8 bytes each, which rehashes without
//! touching the records), the interned user ids and user agents ([`names`](super::names)),
//! the per-user lists ([`user_index`](super::user_index)) and the sweep cursor
//! ([`sweep`](super::sweep)); inserting and removing a session keeps them all in step.

use hashbrown::{DefaultHashBuilder, HashTable};

use super::names::Names;
use super::slab::{Ip, Record, CHUNK};
use super::{instant, micros, widen, NIL};
use crate::amr::AuthMethods;
use crate::api_tokens::ApiTokenGrant;
use crate::session::{ClientInfo, Session, SessionKind};
use crate::token::{SecretHash, SessionId};
use crate::user::UserId;

/// One shard: its records, id index, interned names and sweep cursor.
pub(super) struct Shard {
    pub(super) chunks: Vec<Vec<Record>>,
    /// Head of the free-record list.
    pub(super) free: u32,
    /// Records in use.
    pub(super) live: usize,
    /// Records allocated (in use or free): the slab's length.
    pub(super) used: usize,
    /// `(slot, hash)` of every record in use.
    pub(super) ids: HashTable<(u32, u32)>,
    /// Payload: the first record of the user's list.
    pub(super) users: Names<UserId, u32>,
    pub(super) agents: Names<Box<str>, ()>,
    /// The name and scopes of the API tokens among the records, indexed by slot (records
    /// with `api`). Empty until the shard holds an API token, then as long as the highest
    /// slot one has held: reading a grant is an index, not a hash lookup, on every validate
    /// of an API token, and a store of sessions alone pays nothing for it.
    pub(super) grants: Vec<Option<ApiTokenGrant>>,
    /// Next record a create examines for expiry.
    pub(super) cursor: usize,
    /// No record in use expires after this (Unix microseconds; never lowered by removals).
    pub(super) max_expires: i64,
    /// The store's hasher (names are rehashed when their index grows).
    pub(super) hasher: DefaultHashBuilder,
}

impl Shard {
    #[inline]
    pub(super) fn with_capacity(sessions: usize, hasher: DefaultHashBuilder) -> Self {
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
            grants: Vec::new(),
            cursor: 0,
            max_expires: i64::MIN,
            hasher,
        }
    }

    #[inline]
    pub(super) fn find(&self, hash: u32, id: &[u8; 16]) -> Option<u32> {
        let chunks = &self.chunks;
        self.ids
            .find(widen(hash), |&(slot, h)| {
                h == hash && chunks[slot as usize / CHUNK][slot as usize % CHUNK].id == *id
            })
            .map(|&(slot, _)| slot)
    }

    /// Inserts a session whose id is absent. `user` and `agent` are the names' hashes.
    #[inline]
    pub(super) fn insert(&mut self, s: &Session, hash: u32, user: u64, agent: Option<u64>) {
        let user = self
            .users
            .acquire(user, s.user_id.as_str(), || s.user_id.clone(), NIL);
        let agent = match (agent, &s.client.user_agent) {
            (Some(h), Some(text)) => self
                .agents
                .acquire(h, text, || Box::from(text.as_str()), ()),
            _ => NIL,
        };
        let head = self.first_of(user);
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
            amr: s.amr.bits(),
            api: s.kind.is_api_token(),
        });
        if let SessionKind::ApiToken(grant) = &s.kind {
            let at = slot as usize;
            if self.grants.len() <= at {
                self.grants.resize(at + 1, None);
            }
            if let Some(entry) = self.grants.get_mut(at) {
                *entry = Some(grant.clone());
            }
        }
        self.link_first(user, head, slot);
        self.max_expires = self.max_expires.max(micros(s.expires_at));
        self.ids
            .insert_unique(widen(hash), (slot, hash), |&(_, h)| widen(h));
        self.live += 1;
    }

    /// Removes the record in use at `slot`.
    #[inline]
    pub(super) fn remove(&mut self, slot: u32) {
        let r = *self.rec(slot);
        if let Ok(entry) = self.ids.find_entry(widen(r.hash), |&(s, _)| s == slot) {
            entry.remove();
        }
        self.unlink(&r);
        self.users.release(r.user, &self.hasher);
        if r.agent != NIL {
            self.agents.release(r.agent, &self.hasher);
        }
        if r.api {
            if let Some(grant) = self.grants.get_mut(slot as usize) {
                *grant = None;
            }
        }
        self.free_record(slot);
        self.live -= 1;
        if self.live == 0 {
            // Give the memory back: an empty shard starts afresh.
            *self = Self::with_capacity(0, self.hasher);
        }
    }

    /// The session in the record at `slot`.
    #[inline]
    pub(super) fn session(&self, slot: u32) -> Session {
        let r = self.rec(slot);
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
            amr: AuthMethods::from_bits(r.amr),
            kind: match r.api {
                false => SessionKind::Interactive,
                true => match self.grants.get(slot as usize) {
                    Some(Some(grant)) => SessionKind::ApiToken(grant.clone()),
                    _ => SessionKind::Interactive,
                },
            },
        }
    }
}
