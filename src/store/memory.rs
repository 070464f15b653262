//! The in-memory token store: the embedded default.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use time::OffsetDateTime;

use super::TokenStore;
use crate::error::StoreError;
use crate::session::Session;
use crate::token::SessionId;
use crate::user::UserId;

/// Sessions in process memory: a sharded concurrent map (no global lock on the validate
/// path) plus a per-user index.
///
/// Expired sessions are dropped when `get` meets them, by [`purge_expired`](TokenStore::purge_expired),
/// and by an automatic sweep once the number of creates since the last sweep reaches a quarter
/// of the map (at least 1024), so memory stays proportional to live sessions even if nobody
/// calls `expire`. Sessions do not survive a restart and are not shared between processes.
///
/// ```
/// use std::sync::Arc;
/// use keycard::{MemoryTokenStore, TokenStore};
/// let store: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::new());
/// ```
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    sessions: DashMap<SessionId, Session>,
    by_user: DashMap<UserId, HashSet<SessionId>>,
    creates_since_sweep: AtomicUsize,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of sessions held, live or expired-but-not-yet-swept.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether the store holds no sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    fn unindex(&self, user: &UserId, id: &SessionId) {
        if let Entry::Occupied(mut ids) = self.by_user.entry(user.clone()) {
            ids.get_mut().remove(id);
            if ids.get().is_empty() {
                ids.remove();
            }
        }
    }

    fn sweep_if_due(&self, now: OffsetDateTime) {
        let creates = self.creates_since_sweep.fetch_add(1, Ordering::Relaxed) + 1;
        if creates >= (self.sessions.len() / 4).max(1024) {
            self.creates_since_sweep.store(0, Ordering::Relaxed);
            self.sweep(now);
        }
    }

    fn sweep(&self, now: OffsetDateTime) -> u64 {
        let mut removed = 0;
        self.sessions.retain(|_, s| {
            let keep = !s.is_expired(now);
            if !keep {
                removed += 1;
            }
            keep
        });
        // Drop index entries whose sessions are gone. Separate pass: holding a `sessions`
        // shard lock while taking a `by_user` one would invite lock-order deadlocks.
        self.by_user.retain(|_, ids| {
            ids.retain(|id| self.sessions.contains_key(id));
            !ids.is_empty()
        });
        removed
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        match self.sessions.entry(session.id) {
            Entry::Occupied(_) => return Err(StoreError::Duplicate),
            Entry::Vacant(slot) => {
                slot.insert(session.clone());
            }
        }
        self.by_user
            .entry(session.user_id.clone())
            .or_default()
            .insert(session.id);
        self.sweep_if_due(session.created_at);
        Ok(())
    }

    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let found = self.sessions.get(id).map(|s| s.clone());
        match found {
            Some(s) if s.is_expired(now) => {
                if self
                    .sessions
                    .remove_if(id, |_, s| s.is_expired(now))
                    .is_some()
                {
                    self.unindex(&s.user_id, id);
                }
                Ok(None)
            }
            other => Ok(other),
        }
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // `get_mut` only finds present sessions, so a touch can never resurrect a deleted one.
        Ok(match self.sessions.get_mut(id) {
            Some(mut s) if !s.is_expired(last_seen_at) => {
                s.last_seen_at = s.last_seen_at.max(last_seen_at);
                true
            }
            _ => false,
        })
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        match self.sessions.remove(id) {
            Some((_, s)) => {
                self.unindex(&s.user_id, id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        let ids = self
            .by_user
            .remove(user)
            .map(|(_, ids)| ids)
            .unwrap_or_default();
        let mut removed = 0;
        for id in ids {
            if self.sessions.remove(&id).is_some() {
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
        // Take the user's ids out of the index under its entry lock (as `delete_for_user`
        // does), leaving only `keep`; a create that indexes later began after this call.
        let ids: Vec<SessionId> = match self.by_user.entry(user.clone()) {
            Entry::Occupied(mut entry) => {
                let ids: Vec<SessionId> = entry
                    .get()
                    .iter()
                    .filter(|id| *id != keep)
                    .copied()
                    .collect();
                entry.get_mut().retain(|id| id == keep);
                if entry.get().is_empty() {
                    entry.remove();
                }
                ids
            }
            Entry::Vacant(_) => Vec::new(),
        };
        let mut removed = 0;
        for id in ids {
            if self.sessions.remove(&id).is_some() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let ids: Vec<SessionId> = match self.by_user.get(user) {
            Some(ids) => ids.iter().copied().collect(),
            None => return Ok(Vec::new()),
        };
        let mut live: Vec<Session> = ids
            .iter()
            .filter_map(|id| self.sessions.get(id).map(|s| s.clone()))
            .filter(|s| !s.is_expired(now))
            .collect();
        live.sort_by_key(|s| (s.created_at, s.id));
        Ok(live)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        self.creates_since_sweep.store(0, Ordering::Relaxed);
        Ok(self.sweep(now))
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

    #[tokio::test]
    async fn expired_sessions_do_not_accumulate_without_explicit_purges() {
        let store = MemoryTokenStore::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for i in 0..5000 {
            // Each session lives 1 s; logins happen 1 s apart, so at most one is live.
            store
                .create(&session(i % 7, t0 + Duration::from_secs(i as u64), 1))
                .await
                .expect("create");
        }
        assert!(store.len() <= 1025, "held {} sessions", store.len());
        assert!(store.by_user.len() <= 1025);
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
        assert!(store.by_user.is_empty());
    }
}
