//! The bounded tables of [`MemoryThrottle`](super::MemoryThrottle): maps split into
//! [`BUCKETS`] buckets (so pruning holds the lock for one bucket at a time), keyed by hashes
//! used as they are, and the capacities a byte budget buys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Buckets each table is split into. Every bucket is under the one lock (a reserve stays
/// atomic); pruning holds the lock for one bucket at a time, so no attempt waits for a scan of
/// the whole table.
pub(super) const BUCKETS: usize = 64;
/// Bytes a table slot takes: the key, the value and a control byte.
pub(super) const COUNTER_SLOT: usize = 8 + 16 + 1;
pub(super) const TRUSTED_SLOT: usize = 8 + 8 + 1;
/// Of the slots a table allocates, the share a capacity fills (70%, below the hash table's
/// 87.5% growth threshold with room for uneven buckets, so a full table never grows).
pub(super) const FILL_PERCENT: usize = 70;

/// The counter and trusted-address capacities a byte budget holds: 80% of it for counters,
/// the rest for trusted addresses. Each table holds [`BUCKETS`] hash tables whose slot counts
/// are powers of two; a capacity fills at most [`FILL_PERCENT`] of them, counting the trusted
/// addresses' reserve of counters (capacity / 16).
pub(super) const fn capacities(bytes: usize) -> (usize, usize) {
    let counter_slots = prev_power_of_two(bytes / 5 * 4 / COUNTER_SLOT / BUCKETS);
    let counter_bytes = counter_slots * BUCKETS * COUNTER_SLOT;
    // One bucket's table is rebuilt at a time (to clear deleted slots): keep room for a copy.
    let rest = bytes.saturating_sub(counter_bytes + counter_bytes / BUCKETS);
    let trusted_slots = prev_power_of_two(rest / TRUSTED_SLOT / BUCKETS);
    let counters = counter_slots * BUCKETS * FILL_PERCENT / 100 / 17 * 16;
    let trusted = trusted_slots * BUCKETS * FILL_PERCENT / 100;
    (counters, trusted)
}

const fn prev_power_of_two(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// Keys are already keyed hashes: the tables use them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Table<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// A map split into [`BUCKETS`] maps by key, so that it can be pruned a bucket at a time.
pub(super) struct Buckets<V> {
    maps: Vec<Table<V>>,
}

impl<V> Default for Buckets<V> {
    fn default() -> Self {
        Self {
            maps: (0..BUCKETS).map(|_| Table::default()).collect(),
        }
    }
}

impl<V> Buckets<V> {
    /// The bucket `key` belongs in: bits the hash table does not use to place or tag it.
    pub(super) fn bucket(key: u64) -> usize {
        ((key >> 32) % BUCKETS as u64) as usize
    }

    pub(super) fn get(&self, key: u64) -> Option<&V> {
        self.maps[Self::bucket(key)].get(&key)
    }

    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        self.maps[Self::bucket(key)].get_mut(&key)
    }

    pub(super) fn contains(&self, key: u64) -> bool {
        self.maps[Self::bucket(key)].contains_key(&key)
    }

    pub(super) fn remove(&mut self, key: u64) -> Option<V> {
        self.maps[Self::bucket(key)].remove(&key)
    }

    /// Inserts or replaces. When the bucket's table has no free slot left (deleted slots use
    /// them up), it is rebuilt for its live entries first, so it grows only with its entries,
    /// never because of deletions.
    pub(super) fn insert(&mut self, key: u64, value: V) {
        let map = &mut self.maps[Self::bucket(key)];
        if map.len() == map.capacity() && !map.contains_key(&key) {
            map.shrink_to(map.len());
        }
        map.insert(key, value);
    }

    /// Entries in all buckets (64 reads).
    pub(super) fn len(&self) -> usize {
        self.maps.iter().map(HashMap::len).sum()
    }

    /// The entries of bucket `b`, as (key, value).
    pub(super) fn bucket_entries(&self, b: usize) -> impl Iterator<Item = (&u64, &V)> {
        self.maps[b].iter()
    }

    /// Keeps the entries of bucket `b` that `keep` accepts; returns how many it dropped.
    pub(super) fn retain_bucket(&mut self, b: usize, mut keep: impl FnMut(&V) -> bool) -> usize {
        let map = &mut self.maps[b];
        let before = map.len();
        map.retain(|_, v| keep(v));
        before - map.len()
    }
}
