//! The in-memory one-time token store: bounded, for tests and single-process services.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::purpose::OneTimePurpose;
use super::store::{OneTimeRecord, OneTimeTokenStore};
use super::token::OneTimeId;
use crate::error::StoreError;
use crate::token::SecretHash;
use crate::user::UserId;

/// A bounded [`MemoryOneTimeStore`] was full: it holds
/// [`capacity`](MemoryOneTimeStore::capacity) live tokens and refuses more rather than grow
/// without bound. Returned inside [`StoreError::Backend`];
/// [`OneTimeTokens::issue`](super::OneTimeTokens::issue) turns it into
/// [`OneTimeError::CapacityExceeded`](super::OneTimeError::CapacityExceeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the in-memory one-time token store is full ({capacity} live tokens, or payloads of {} bytes in all); retry once some expire, or raise its capacity", MemoryOneTimeStore::PAYLOAD_BUDGET)]
#[non_exhaustive]
pub struct CapacityExceeded {
    /// The store's capacity.
    pub capacity: usize,
}

/// One-time tokens in process memory: lost on restart, not shared between processes. For
/// tests, demos and single-process services; use a database-backed store otherwise.
///
/// Bounded: at most [`capacity`](Self::capacity) tokens (default 100 000), and payloads of at
/// most [`PAYLOAD_BUDGET`](Self::PAYLOAD_BUDGET) bytes in all (passkey ceremonies carry up to
/// 8 KiB each; without the budget a full store could hold 800 MB). When full, issuing
/// first drops every expired token; if it is still full, it fails with
/// [`CapacityExceeded`] and stores nothing. Every operation holds one mutex for a few map
/// operations, which makes issue (with its retirement) and consume atomic.
#[derive(Debug)]
pub struct MemoryOneTimeStore {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    records: HashMap<OneTimeId, OneTimeRecord>,
    /// The bytes of every stored payload.
    payload_bytes: usize,
    /// The ids of each (user, purpose name), in no particular order.
    owners: HashMap<(UserId, String), Vec<OneTimeId>>,
}

impl State {
    fn remove(&mut self, id: &OneTimeId) -> Option<OneTimeRecord> {
        let record = self.records.remove(id)?;
        self.payload_bytes = self.payload_bytes.saturating_sub(payload_len(&record));
        let key = (record.user_id.clone(), record.purpose.name().to_owned());
        if let Some(ids) = self.owners.get_mut(&key) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.owners.remove(&key);
            }
        }
        Some(record)
    }

    fn purge(&mut self, now: OffsetDateTime) -> u64 {
        let expired: Vec<OneTimeId> = self
            .records
            .values()
            .filter(|r| r.is_expired(now))
            .map(|r| r.id)
            .collect();
        expired
            .iter()
            .filter(|id| self.remove(id).is_some())
            .count() as u64
    }
}

impl Default for MemoryOneTimeStore {
    fn default() -> Self {
        Self::new()
    }
}

fn payload_len(record: &OneTimeRecord) -> usize {
    record.payload.as_ref().map_or(0, String::len)
}

impl MemoryOneTimeStore {
    /// The most payload bytes the store holds in all: 64 MiB.
    pub const PAYLOAD_BUDGET: usize = 64 * 1024 * 1024;

    /// The default capacity.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// An empty store holding at most [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) tokens.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An empty store holding at most `capacity` tokens (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
        }
    }

    /// The most tokens it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many tokens it holds now, expired ones not yet purged included.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether it holds no token.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl OneTimeTokenStore for MemoryOneTimeStore {
    async fn issue(
        &self,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock();
        if state.records.contains_key(&record.id) {
            return Err(StoreError::Duplicate);
        }
        let key = (record.user_id.clone(), record.purpose.name().to_owned());
        let mut others: Vec<(OffsetDateTime, OneTimeId, bool)> = state
            .owners
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| state.records.get(id))
            .map(|r| (r.created_at, r.id, r.is_expired(now)))
            .collect();
        others.sort();
        let live = others.iter().filter(|(_, _, expired)| !expired).count();
        let keep = usize::try_from(max_outstanding.max(1) - 1).unwrap_or(usize::MAX);
        let mut excess = live.saturating_sub(keep);
        let mut doomed = Vec::new();
        let mut retired = 0;
        for (_, id, expired) in others {
            if expired {
                doomed.push(id);
            } else if excess > 0 {
                excess -= 1;
                retired += 1;
                doomed.push(id);
            }
        }
        // Capacity counts what remains after this issue's own retirement.
        let freed: usize = doomed
            .iter()
            .filter_map(|id| state.records.get(id))
            .map(payload_len)
            .sum();
        let over_budget = |state: &State, freed: usize| {
            state.payload_bytes - freed.min(state.payload_bytes) + payload_len(record)
                > Self::PAYLOAD_BUDGET
        };
        if state.records.len() - doomed.len() >= self.capacity || over_budget(&state, freed) {
            // Purging also removes the expired ones of `doomed`; its live ones remain.
            state.purge(now);
            let freed: usize = doomed
                .iter()
                .filter_map(|id| state.records.get(id))
                .map(payload_len)
                .sum();
            if state.records.len() - retired >= self.capacity || over_budget(&state, freed) {
                return Err(StoreError::backend(CapacityExceeded {
                    capacity: self.capacity,
                }));
            }
        }
        for id in &doomed {
            state.remove(id);
        }
        state.payload_bytes += payload_len(record);
        state.records.insert(record.id, record.clone());
        state.owners.entry(key).or_default().push(record.id);
        Ok(retired as u64)
    }

    async fn find(
        &self,
        id: &OneTimeId,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        Ok(self
            .lock()
            .records
            .get(id)
            .filter(|r| !r.is_expired(now))
            .cloned())
    }

    async fn consume(
        &self,
        id: &OneTimeId,
        purpose: &OneTimePurpose,
        secret_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        let mut state = self.lock();
        let matches = state.records.get(id).is_some_and(|r| {
            let same_secret: bool = r
                .secret_hash
                .as_bytes()
                .ct_eq(secret_hash.as_bytes())
                .into();
            same_secret && &r.purpose == purpose && !r.is_expired(now)
        });
        Ok(if matches { state.remove(id) } else { None })
    }

    async fn retire_all(&self, user: &UserId, purpose: &OneTimePurpose) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let ids = state
            .owners
            .get(&(user.clone(), purpose.name().to_owned()))
            .cloned()
            .unwrap_or_default();
        Ok(ids.iter().filter(|id| state.remove(id).is_some()).count() as u64)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.lock().purge(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::one_time::{Binding, OneTimeToken, MAX_PAYLOAD_LEN};

    fn record(user: &UserId, payload: usize, now: OffsetDateTime) -> OneTimeRecord {
        let token = OneTimeToken::generate(user).expect("os rng");
        OneTimeRecord {
            id: token.id(),
            user_id: user.clone(),
            purpose: OneTimePurpose::EmailChange,
            secret_hash: token.secret_hash(),
            binding: Binding::none(),
            payload: Some("x".repeat(payload)),
            created_at: now,
            expires_at: now + time::Duration::hours(1),
        }
    }

    #[tokio::test]
    async fn payloads_are_bounded_in_bytes_not_only_in_tokens() {
        let store = MemoryOneTimeStore::new();
        let now = OffsetDateTime::now_utc();
        let fit = MemoryOneTimeStore::PAYLOAD_BUDGET / MAX_PAYLOAD_LEN;
        for n in 0..fit {
            let user = UserId::new(n.to_string());
            store
                .issue(&record(&user, MAX_PAYLOAD_LEN, now), 3, now)
                .await
                .expect("within the budget");
        }
        let refused = store
            .issue(
                &record(&UserId::new("one-more"), MAX_PAYLOAD_LEN, now),
                3,
                now,
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::Backend(_))),
            "{refused:?}"
        );
        // A token without a payload still fits (the token count is far from full), and one
        // consumed gives its bytes back.
        store
            .issue(&record(&UserId::new("no-payload"), 0, now), 3, now)
            .await
            .expect("no payload");
        assert_eq!(store.len(), fit + 1);
        let first = store
            .lock()
            .records
            .values()
            .next()
            .map(|r| (r.user_id.clone(), r.purpose.clone()));
        let (user, purpose) = first.expect("a record");
        store.retire_all(&user, &purpose).await.expect("retire");
        store
            .issue(&record(&UserId::new("after"), MAX_PAYLOAD_LEN, now), 3, now)
            .await
            .expect("room again");
    }
}
