//! The Redis one-time token store, on a standalone Redis or a Redis Cluster.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use redis::Script;
use time::OffsetDateTime;

use super::connection::RedisConnection;
use super::tokens::error;
use crate::one_time::{
    shard_of, Binding, OneTimeId, OneTimePurpose, OneTimeRecord, OneTimeTokenStore,
};
use crate::time_codec::{self, micros_to_millis_ceil, to_micros};
use crate::{SecretHash, StoreError, UserId};

/// One-time tokens (password reset, email verification, sign-in links) in Redis, expired by
/// Redis itself. Get one from [`Redis::one_time_store`](super::Redis::one_time_store); the
/// same code runs on a standalone Redis and on a Redis Cluster.
///
/// # Keys
/// With the default prefix `keycard:`, where `<tag>` is the token's shard (four hex digits,
/// [`shard_of`] the user id, also the first two bytes of every [`OneTimeId`] of that user):
///
/// | key | type | holds | expires |
/// |---|---|---|---|
/// | `keycard:ott:{<tag>}:t:<id>` | hash | `user`, `purpose`, `hash` (32 raw bytes), `binding` (32 raw bytes), `payload`, `created`, `expires` (Unix µs) | at the token's `expires_at` (`PEXPIREAT`) |
/// | `keycard:ott:{<tag>}:u:<purpose>:<user id>` | sorted set | the user's token ids for the purpose, scored by `created` | at its latest token's expiry |
///
/// `{<tag>}` is a hash tag: every key of one user lives in one hash slot, so on a Redis
/// Cluster too each operation is **one Lua script, atomic**, and a token is still found from
/// its id alone (the id carries the tag). Users spread over the 65 536 tags, so over every
/// slot and master.
///
/// - **issue**: one script refuses an existing id, drops the user's expired tokens of the
///   purpose, retires the oldest live ones beyond the cap, stores the token and indexes it.
/// - **consume**: one script checks purpose, digest and expiry, then deletes and returns the
///   token: of concurrent consumes, from any instance, exactly one gets it.
/// - **find**: one `HGETALL`. **retire_all**: one script over the user's index.
/// - **purge_expired** does nothing and returns 0: Redis deletes each token at its
///   `expires_at` by the server's clock ([`expires_natively`](OneTimeTokenStore::expires_natively)
///   is `true`); before that, `find` and `consume` refuse tokens expired at the caller's `now`.
///
/// Keep `{` and `}` out of the prefix: the first `{...}` of a key is its hash tag.
#[derive(Clone)]
pub struct RedisOneTimeStore {
    conn: RedisConnection,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisOneTimeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOneTimeStore")
            .field("prefix", &self.prefix)
            .field("cluster", &self.conn.is_cluster())
            .finish_non_exhaustive()
    }
}

struct Scripts {
    issue: Script,
    consume: Script,
    retire_all: Script,
}

/// KEYS: token, user index. ARGV: id, expiry (ms, rounded up), created (µs), now (µs),
/// how many others to keep, token key prefix of the tag, then the hash's field/value pairs.
/// Returns how many live tokens it retired, or -1 if the id exists.
const ISSUE: &str = include_str!("scripts/one_time_issue.lua");

/// KEYS: token. ARGV: purpose, digest, now (µs), index key prefix of the tag, id. Returns
/// the token's fields and deletes it if they match and it is live; nil otherwise.
const CONSUME: &str = include_str!("scripts/one_time_consume.lua");

/// KEYS: user index. ARGV: token key prefix of the tag. Deletes every indexed token and the
/// index; returns how many tokens it deleted.
const RETIRE_ALL: &str = include_str!("scripts/one_time_retire_all.lua");

impl RedisOneTimeStore {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "keycard:";

    /// Uses your connection (also [`Redis::one_time_store`](super::Redis::one_time_store)).
    pub fn new(conn: impl Into<RedisConnection>) -> Self {
        Self {
            conn: conn.into(),
            prefix: Arc::from(Self::DEFAULT_PREFIX),
            scripts: Arc::new(Scripts {
                issue: Script::new(ISSUE),
                consume: Script::new(CONSUME),
                retire_all: Script::new(RETIRE_ALL),
            }),
        }
    }

    /// Prefixes every key with `prefix` instead of `keycard:`.
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>ott:{<tag>}:`.
    fn tagged(&self, shard: u16) -> String {
        format!("{}ott:{{{shard:04x}}}:", self.prefix)
    }

    fn token_key(&self, id: &OneTimeId) -> String {
        format!("{}t:{id}", self.tagged(id.shard()))
    }

    fn index_key(&self, user: &UserId, purpose: &OneTimePurpose) -> String {
        format!(
            "{}u:{}:{}",
            self.tagged(shard_of(user)),
            purpose.name(),
            user.as_str()
        )
    }
}

#[async_trait]
impl OneTimeTokenStore for RedisOneTimeStore {
    async fn issue(
        &self,
        record: &OneTimeRecord,
        max_outstanding: u32,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        if record.id.shard() != shard_of(&record.user_id) {
            // The index lives in the user's slot, the token in its id's: they must agree.
            return Err(StoreError::backend(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a one-time token id must start with the shard of its user (OneTimeTokens makes such ids)",
            )));
        }
        let expires = to_micros(record.expires_at);
        let mut call = self.scripts.issue.prepare_invoke();
        call.key(self.token_key(&record.id))
            .key(self.index_key(&record.user_id, &record.purpose))
            .arg(record.id.to_string())
            .arg(micros_to_millis_ceil(expires))
            .arg(to_micros(record.created_at))
            .arg(to_micros(now))
            .arg(max_outstanding.max(1) - 1)
            .arg(format!("{}t:", self.tagged(record.id.shard())))
            .arg("user")
            .arg(record.user_id.as_str())
            .arg("purpose")
            .arg(record.purpose.name())
            .arg("hash")
            .arg(record.secret_hash.as_bytes().as_slice())
            .arg("binding")
            .arg(record.binding.as_bytes().as_slice())
            .arg("created")
            .arg(to_micros(record.created_at))
            .arg("expires")
            .arg(expires);
        if let Some(payload) = &record.payload {
            call.arg("payload").arg(payload);
        }
        let retired: i64 = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        u64::try_from(retired).map_err(|_| StoreError::Duplicate)
    }

    async fn find(
        &self,
        id: &OneTimeId,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        let fields: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(self.token_key(id))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let record = decode(*id, &fields)?;
        Ok((!record.is_expired(now)).then_some(record))
    }

    async fn consume(
        &self,
        id: &OneTimeId,
        purpose: &OneTimePurpose,
        secret_hash: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<Option<OneTimeRecord>, StoreError> {
        let fields: Option<HashMap<String, Vec<u8>>> = self
            .scripts
            .consume
            .key(self.token_key(id))
            .arg(purpose.name())
            .arg(secret_hash.as_bytes().as_slice())
            .arg(to_micros(now))
            .arg(format!("{}u:", self.tagged(id.shard())))
            .arg(id.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        fields
            .filter(|f| !f.is_empty())
            .map(|f| decode(*id, &f))
            .transpose()
    }

    async fn retire_all(&self, user: &UserId, purpose: &OneTimePurpose) -> Result<u64, StoreError> {
        self.scripts
            .retire_all
            .key(self.index_key(user, purpose))
            .arg(format!("{}t:", self.tagged(shard_of(user))))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)
    }

    async fn purge_expired(&self, _now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn expires_natively(&self) -> bool {
        true
    }
}

fn field<'a>(fields: &'a HashMap<String, Vec<u8>>, name: &str) -> Result<&'a [u8], StoreError> {
    fields
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| StoreError::corrupt(format!("one-time token hash lacks the {name:?} field")))
}

fn text(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(StoreError::corrupt)
}

fn digest(fields: &HashMap<String, Vec<u8>>, name: &str) -> Result<[u8; 32], StoreError> {
    field(fields, name)?
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("{name} is not 32 bytes")))
}

fn instant(fields: &HashMap<String, Vec<u8>>, name: &str) -> Result<OffsetDateTime, StoreError> {
    time_codec::from_micros_text(text(field(fields, name)?)?)
}

fn decode(id: OneTimeId, fields: &HashMap<String, Vec<u8>>) -> Result<OneTimeRecord, StoreError> {
    Ok(OneTimeRecord {
        id,
        user_id: UserId::new(text(field(fields, "user")?)?),
        purpose: OneTimePurpose::from_name(text(field(fields, "purpose")?)?)
            .map_err(StoreError::corrupt)?,
        secret_hash: SecretHash::from_bytes(digest(fields, "hash")?),
        binding: Binding::from_bytes(digest(fields, "binding")?),
        payload: fields
            .get("payload")
            .map(|p| text(p).map(str::to_owned))
            .transpose()?,
        created_at: instant(fields, "created")?,
        expires_at: instant(fields, "expires")?,
    })
}
