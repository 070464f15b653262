//! The slab: compact fixed-size session records ([`Record`], 112 bytes) in chunks of
//! [`CHUNK`] records that never move once allocated, so growing the store never copies it;
//! freed records are kept on a free list threaded through their `next` and reused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::shard::Shard;
use super::NIL;

/// Records per slab chunk (about 112 KiB). Chunks are allocated whole and never move; the
/// first chunk of a shard starts small and doubles up to this size.
pub(super) const CHUNK: usize = 1024;

/// A client IP, inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ip {
    None,
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Ip {
    #[inline]
    pub(super) fn new(ip: Option<IpAddr>) -> Self {
        match ip {
            None => Self::None,
            Some(IpAddr::V4(v4)) => Self::V4(v4.octets()),
            Some(IpAddr::V6(v6)) => Self::V6(v6.octets()),
        }
    }

    #[inline]
    pub(super) fn get(self) -> Option<IpAddr> {
        match self {
            Self::None => None,
            Self::V4(b) => Some(IpAddr::V4(Ipv4Addr::from(b))),
            Self::V6(b) => Some(IpAddr::V6(Ipv6Addr::from(b))),
        }
    }
}

/// One session, compact. `user == NIL` marks a free record (then `next` links the free list).
#[derive(Clone, Copy)]
pub(super) struct Record {
    pub(super) id: [u8; 16],
    pub(super) secret_hash: [u8; 32],
    /// Times in Unix microseconds (sessions keep microsecond precision).
    pub(super) created: i64,
    pub(super) expires: i64,
    pub(super) seen: i64,
    /// The id's 32-bit hash, as in the index (to find the index entry when removing).
    pub(super) hash: u32,
    pub(super) user: u32,
    pub(super) agent: u32,
    /// The user's list of sessions (or, for a free record, the free list in `next`).
    pub(super) prev: u32,
    pub(super) next: u32,
    pub(super) ip: Ip,
    /// The session's [`AuthMethods`](crate::AuthMethods), as bits.
    pub(super) amr: u8,
    /// Whether this is an API token (its grant is in the shard's `grants`).
    pub(super) api: bool,
}

impl Record {
    pub(super) const FREE: Self = Self {
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
        amr: 0,
        api: false,
    };

    #[inline]
    pub(super) fn is_live(&self) -> bool {
        self.user != NIL
    }
}

impl Shard {
    /// Records allocated (in use or free).
    #[inline]
    pub(super) fn slots(&self) -> usize {
        self.used
    }

    #[inline]
    pub(super) fn rec(&self, slot: u32) -> &Record {
        &self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    #[inline]
    pub(super) fn rec_mut(&mut self, slot: u32) -> &mut Record {
        &mut self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    /// A record to fill: a freed one, or a new one at the end of the slab.
    #[inline]
    pub(super) fn alloc(&mut self, rec: Record) -> u32 {
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

    /// Puts the record at `slot` (no longer in use) on the free list.
    #[inline]
    pub(super) fn free_record(&mut self, slot: u32) {
        let free = self.free;
        *self.rec_mut(slot) = Record {
            next: free,
            ..Record::FREE
        };
        self.free = slot;
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;
    use crate::store::memory::testing::{session, slots};
    use crate::store::memory::{MemoryTokenStore, SHARDS};
    use crate::store::TokenStore;

    #[test]
    fn records_stay_compact() {
        assert!(std::mem::size_of::<Record>() <= 112);
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
