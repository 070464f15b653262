//! Reclaiming expired sessions: a few records at a time by every create (from the shard's
//! sweep cursor), and `purge_expired` in short batches per lock hold, round robin over the
//! shards, yielding to the async runtime between batches.

use time::OffsetDateTime;

use super::shard::Shard;
use super::{micros, MemoryTokenStore, SHARDS};

/// Records a create examines for expiry (its own shard, from the shard's sweep cursor).
pub(super) const SWEEP_STEP: usize = 2;
/// A shard holding fewer live sessions than this is not swept by creates (small stores
/// keep expired sessions until `purge_expired` or `get` meets them, as callers may expect).
pub(super) const SWEEP_MIN: usize = 32;
/// Records `purge_expired` examines per shard lock hold (a few tens of microseconds).
pub(super) const PURGE_BATCH: usize = 256;

impl Shard {
    /// Examines up to `budget` records from `from`, removing those expired at `now`.
    /// Returns how many it removed and where it stopped (`None` at the end of the slab).
    #[inline]
    pub(super) fn sweep(&mut self, from: usize, budget: usize, now: i64) -> (u64, Option<usize>) {
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
}

impl MemoryTokenStore {
    /// Deletes every session expired at `now` ([`TokenStore::purge_expired`]) and returns how
    /// many.
    ///
    /// [`TokenStore::purge_expired`]: crate::store::TokenStore::purge_expired
    pub(super) async fn purge(&self, now: OffsetDateTime) -> u64 {
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
        removed
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::*;
    use crate::store::memory::slab::CHUNK;
    use crate::store::memory::testing::{names, session, slots};
    use crate::store::TokenStore;

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
}
