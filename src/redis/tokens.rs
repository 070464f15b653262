//! The Redis token store: sessions shared by several application instances, expired by Redis
//! itself. The operations on a Redis Cluster are in `cluster`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use redis::Script;
use time::OffsetDateTime;

use super::connection::{connect_cluster, connect_manager, RedisConnection};
use crate::time_codec::{micros_to_millis_ceil, to_micros};
use crate::{Session, SessionId, StoreError, TokenStore, UserId};

mod cluster;
mod fields;

use fields::Fields;

/// How many expired sessions one purge script removes; each batch is atomic and short.
const PURGE_BATCH: usize = 1000;

/// How many sorted sets the expiry index is split into on a Redis Cluster (see the type's
/// docs): enough to spread the index over the masters of a typical cluster, few enough that
/// a purge (one script per shard, run concurrently) stays cheap.
const EXPIRY_SHARDS: u32 = 16;

/// Sessions in Redis, shared by several application instances, expired by Redis itself.
///
/// Built on the [`redis`] crate's [`ConnectionManager`](redis::aio::ConnectionManager): one
/// multiplexed connection (requests from all tasks are pipelined on it, so there is no pool to tune
/// and no checkout cost) that reconnects by itself after the server restarts. While the server is
/// unreachable, each operation fails with [`StoreError::Backend`] within a few seconds: about 1.5 s
/// when connections are refused (one quick reconnection attempt), otherwise bounded by the 2 s
/// connection and response timeouts of [`RedisTokenStore::connect`] (build your own
/// `ConnectionManager` and use [`RedisTokenStore::new`] for other settings).
///
/// # Keys
/// With the default prefix `keycard:`:
///
/// | key | type | holds | expires |
/// |---|---|---|---|
/// | `keycard:session:<id>` | hash | `user`, `hash` (32 raw bytes), `created`, `expires`, `seen` (Unix µs), `ip`, `ua`, `amr` (the [`AuthMethods`](crate::AuthMethods) bits), and for an [API token](crate::api_tokens) `name` and `scopes` (space-separated) | at the session's `expires_at` (`PEXPIREAT`; a token that never expires, [`ApiTokens::NEVER`](crate::api_tokens::ApiTokens::NEVER), at the end of year 9999) |
/// | `keycard:user:<user id>` | set | the user's session ids | at its latest session's expiry |
/// | `keycard:expiry` | sorted set | `<id><user id>` scored by `expires_at` (µs) | never; trimmed by `purge_expired` |
///
/// Every write is one Lua script, so it is atomic: create (fails if the session key exists,
/// the `SET NX` rule), touch and `touch_from` (only an existing key: never resurrects),
/// delete, delete for a user, delete for a user but one session (which skips API tokens), and
/// each purge batch of at most 1000 sessions. A validate is one `HMGET` of the session's
/// fields ([`LOOKUP_FIELDS`](Self::LOOKUP_FIELDS)): the reply is positional, so no field
/// name comes back and no map is built.
///
/// Expiry is native: Redis drops a session key at its `expires_at`, by the Redis server's
/// clock, whatever `now` the caller passes; before that, `get` and `list_for_user` also hide
/// sessions expired at the caller's `now`. [`purge_expired`](TokenStore::purge_expired)
/// removes the index entries of expired sessions (and their keys, if Redis has not dropped
/// them yet) and counts each expired session once, whether Redis had already dropped its key
/// or not (`delete` and `delete_for_user`, in contrast, count only keys they deleted). Run it
/// periodically ([`Authenticator::spawn_expiry_task`](crate::Authenticator::spawn_expiry_task))
/// to keep the expiry index small.
///
/// On a standalone Redis (or Sentinel / a replica set) the scripts above touch keys they
/// derive from the prefix. Redis 5 or newer. Users are not stored in Redis: keep them in
/// memory, SQLite or PostgreSQL.
///
/// # Redis Cluster
/// [`RedisTokenStore::connect_cluster`] (or [`RedisTokenStore::new`] with a
/// [`ClusterConnection`](redis::cluster_async::ClusterConnection)) runs the store on a Redis
/// Cluster, where a script may only touch keys of one slot. A validate looks a session up by its id
/// alone (the token carries no user id), so a session's key cannot live in its user's slot; and a
/// user's sessions must be found from the user id alone, so they cannot live in one slot either.
/// Each key therefore hashes on its own name and **every script on a cluster touches exactly one
/// key**; the steps that span keys run in an order that keeps the contract:
///
/// | key | type | holds | slot |
/// |---|---|---|---|
/// | `keycard:session:<id>` | hash | as above, expires at `expires_at` | its own |
/// | `keycard:user:<user id>` | set | the user's session ids, expires with the latest | its own |
/// | `keycard:expiry:<0..15>` | sorted set | `<id><user id>` scored by `expires_at` (µs); the shard is a hash of the id | its own: 16 shards spread over the masters |
///
/// - **validate** is still one `HMGET`, to the master that owns the session's slot.
/// - **create** (three round trips): a script creates the session key unless it exists
///   (`Duplicate` otherwise: never overwrites), then the id joins the user's set, then the
///   expiry shard. Because the session key comes first, every id in a user's set had its key
///   created before it was added: an id whose key is missing is gone for good. If a later
///   step fails, create deletes what it wrote and returns the error; if the application dies
///   in between, the half-created session's token was never handed out, and Redis drops the
///   key at its expiry.
/// - **delete** is a script on the session key (read the owner, delete), then the index
///   entries are removed.
/// - **`delete_for_user` / `delete_for_user_except`** read the user's set, then delete each
///   listed session with a one-key script that checks the owner (so a stray id never deletes
///   another user's session) and, for `delete_for_user_except`, skips API tokens,
///   concurrently, then remove those ids (but the kept API tokens) from the set. Every session
///   whose create completed before the call began is in the set, so it is gone when the call
///   returns; `keep` is never deleted. Unlike on a standalone Redis, this is not one atomic
///   step: a session created during the call may survive (the contract allows it), and
///   another client may briefly see some of the user's sessions gone and others not yet.
/// - **`list_for_user`**: `SMEMBERS`, then one `HGETALL` per session, concurrently.
/// - **`purge_expired`**: a script per expiry shard pops up to 1000 expired entries
///   atomically (so each expired session is counted once, even with several purgers); their
///   keys and set entries are then removed. A global expiry sorted set would put every login
///   and every purge on one slot (one master); 16 shards spread that load, and a purge costs
///   16 scripts (concurrent) plus two commands per expired session instead of one script
///   per 1000 sessions.
///
/// Keep `{` and `}` out of the prefix on a cluster: the first `{...}` of a key is its hash
/// tag, which would put every key in one slot (still correct, but all on one master).
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::redis::RedisTokenStore;
/// let tokens = RedisTokenStore::connect("redis://127.0.0.1:6379")
///     .await?
///     .with_key_prefix("myapp:sessions:");
/// // No schema to create: keys appear on first use.
/// tokens.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTokenStore {
    conn: RedisConnection,
    keys: Arc<Keys>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("prefix", &self.keys.prefix)
            .field("cluster", &self.conn.is_cluster())
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "keycard:";

    /// The fields of a session's hash that a lookup reads, in the order one `HMGET` asks for
    /// them (the layout is in the table above). A raw lookup meant to cost what the store's
    /// does asks for the same.
    pub const LOOKUP_FIELDS: [&'static str; 10] = fields::NAMES;

    /// Connects to `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` with the
    /// redis crate's TLS feature) with 2 s connection and response timeouts, one quick
    /// reconnection retry per failing request, and automatic reconnection.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(connect_manager(url).await?))
    }

    /// Connects to a Redis Cluster through `urls`, its seed nodes (one reachable node is
    /// enough to learn the others), with 2 s connection and response timeouts and at most
    /// two retries per request. See the type's docs for the key layout on a cluster.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), keycard::StoreError> {
    /// use keycard::redis::RedisTokenStore;
    /// let tokens = RedisTokenStore::connect_cluster(&[
    ///     "redis://10.0.0.1:6379",
    ///     "redis://10.0.0.2:6379",
    ///     "redis://10.0.0.3:6379",
    /// ])
    /// .await?;
    /// assert!(tokens.is_cluster());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Backend`] if no URL is given, a URL is invalid or no node can be
    /// reached.
    pub async fn connect_cluster<S: AsRef<str>>(urls: &[S]) -> Result<Self, StoreError> {
        Ok(Self::new(connect_cluster(urls).await?))
    }

    /// Uses your own connection: a [`ConnectionManager`](redis::aio::ConnectionManager)
    /// (standalone Redis, for other timeouts or retry settings), a
    /// [`ClusterConnection`](redis::cluster_async::ClusterConnection) (Redis Cluster) or a
    /// [`RedisConnection`].
    pub fn new(conn: impl Into<RedisConnection>) -> Self {
        Self {
            conn: conn.into(),
            keys: Arc::new(Keys::new(Self::DEFAULT_PREFIX.to_owned())),
            scripts: Arc::new(Scripts::new()),
        }
    }

    /// Prefixes every key with `prefix` instead of `keycard:` (to share one Redis between
    /// applications or test runs).
    #[must_use]
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.keys = Arc::new(Keys::new(prefix.into()));
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.keys.prefix
    }

    /// The connection (a cheap clone of it), for your own commands or to share with a
    /// [`RedisThrottle`](super::RedisThrottle).
    pub fn connection(&self) -> RedisConnection {
        self.conn.clone()
    }

    /// Whether the store runs on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.conn.is_cluster()
    }

    /// One `PING`: a health check, and the baseline that `get` is measured against.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the server cannot be reached.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(error)
    }
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        if self.conn.is_cluster() {
            return self.cluster_create(session).await;
        }
        let id = session.id.to_string();
        let user = session.user_id.as_str();
        let expires = to_micros(session.expires_at);
        let mut call = self.scripts.create.prepare_invoke();
        call.key(self.keys.session(&id))
            .key(self.keys.user(user))
            .key(&self.keys.expiry)
            .arg(&id)
            .arg(format!("{id}{user}"))
            .arg(micros_to_millis_ceil(expires))
            .arg(expires);
        push_fields(&mut call, session);
        let created: i64 = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        match created {
            1 => Ok(()),
            _ => Err(StoreError::Duplicate),
        }
    }

    async fn get(
        &self,
        id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let values: Vec<Option<Vec<u8>>> = redis::cmd("HMGET")
            .arg(self.keys.session(&id.to_string()))
            .arg(&fields::NAMES[..])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        let Some(fields) = Fields::from_values(&values)? else {
            return Ok(None);
        };
        let session = fields.decode(*id)?;
        Ok((!session.is_expired(now)).then_some(session))
    }

    async fn touch(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let touched: i64 = self
            .scripts
            .touch
            .key(self.keys.session(&id.to_string()))
            .arg(to_micros(last_seen_at))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        Ok(touched == 1)
    }

    async fn touch_from(
        &self,
        id: &SessionId,
        last_seen_at: OffsetDateTime,
        ip: IpAddr,
    ) -> Result<bool, StoreError> {
        // One key: the same script on a standalone Redis and on a cluster.
        let touched: i64 = self
            .scripts
            .touch_from
            .key(self.keys.session(&id.to_string()))
            .arg(to_micros(last_seen_at))
            .arg(ip.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        Ok(touched == 1)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        if self.conn.is_cluster() {
            return self.cluster_delete(id).await;
        }
        let id = id.to_string();
        let deleted: i64 = self
            .scripts
            .delete
            .key(self.keys.session(&id))
            .key(&self.keys.expiry)
            .arg(&id)
            .arg(&self.keys.user_prefix)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        Ok(deleted == 1)
    }

    async fn delete_for_user(&self, user: &UserId) -> Result<u64, StoreError> {
        if self.conn.is_cluster() {
            return self.cluster_delete_for_user(user, None).await;
        }
        let deleted: u64 = self
            .scripts
            .delete_for_user
            .key(self.keys.user(user.as_str()))
            .key(&self.keys.expiry)
            .arg(&self.keys.session_prefix)
            .arg(user.as_str())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        Ok(deleted)
    }

    async fn delete_for_user_except(
        &self,
        user: &UserId,
        keep: &SessionId,
    ) -> Result<u64, StoreError> {
        if self.conn.is_cluster() {
            return self.cluster_delete_for_user(user, Some(keep)).await;
        }
        let deleted: u64 = self
            .scripts
            .delete_for_user_except
            .key(self.keys.user(user.as_str()))
            .key(&self.keys.expiry)
            .arg(&self.keys.session_prefix)
            .arg(user.as_str())
            .arg(keep.to_string())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        Ok(deleted)
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, StoreError> {
        let found: Vec<HashMap<String, Vec<u8>>> = if self.conn.is_cluster() {
            self.cluster_list(user).await?
        } else {
            self.scripts
                .list_for_user
                .key(self.keys.user(user.as_str()))
                .arg(&self.keys.session_prefix)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(error)?
        };
        let mut sessions = Vec::with_capacity(found.len());
        for fields in &found {
            let id = fields
                .get("id")
                .ok_or_else(|| StoreError::corrupt("a listed session hash lacks its id"))?;
            let id = std::str::from_utf8(id)
                .map_err(StoreError::corrupt)?
                .parse::<SessionId>()
                .map_err(StoreError::corrupt)?;
            let session = Fields::from_map(fields).decode(id)?;
            if !session.is_expired(now) && &session.user_id == user {
                sessions.push(session);
            }
        }
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        if self.conn.is_cluster() {
            let shards = (0..EXPIRY_SHARDS).map(|shard| self.cluster_purge_shard(shard, now));
            return Ok(try_join_all(shards).await?.into_iter().sum());
        }
        let mut total = 0;
        loop {
            let purged: u64 = self
                .scripts
                .purge_batch
                .key(&self.keys.expiry)
                .arg(to_micros(now))
                .arg(PURGE_BATCH)
                .arg(&self.keys.session_prefix)
                .arg(&self.keys.user_prefix)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(error)?;
            total += purged;
            if purged < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}

/// The length of a session id's text form.
const SESSION_ID_LEN: usize = 22;

/// Splits an expiry index member into the session id and the user id.
fn split_member(member: &str) -> Result<(&str, &str), StoreError> {
    match (member.get(..SESSION_ID_LEN), member.get(SESSION_ID_LEN..)) {
        (Some(id), Some(user)) => Ok((id, user)),
        _ => Err(StoreError::corrupt(format!(
            "expiry index member {member:?} is too short"
        ))),
    }
}

/// Appends the session hash's field/value pairs to a script call.
fn push_fields(call: &mut redis::ScriptInvocation<'_>, session: &Session) {
    call.arg("user")
        .arg(session.user_id.as_str())
        .arg("hash")
        .arg(session.secret_hash.as_bytes().as_slice())
        .arg("created")
        .arg(to_micros(session.created_at))
        .arg("expires")
        .arg(to_micros(session.expires_at))
        .arg("seen")
        .arg(to_micros(session.last_seen_at));
    if let Some(ip) = session.client.ip {
        call.arg("ip").arg(ip.to_string());
    }
    if let Some(ua) = &session.client.user_agent {
        call.arg("ua").arg(ua);
    }
    if !session.amr.is_empty() {
        call.arg("amr").arg(session.amr.bits());
    }
    if let Some(grant) = session.kind.api_token() {
        call.arg("name")
            .arg(grant.name())
            .arg("scopes")
            .arg(grant.scopes().to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Keys, scripts, encoding

#[derive(Debug)]
struct Keys {
    prefix: String,
    session_prefix: String,
    user_prefix: String,
    expiry: String,
}

impl Keys {
    fn new(prefix: String) -> Self {
        Self {
            session_prefix: format!("{prefix}session:"),
            user_prefix: format!("{prefix}user:"),
            expiry: format!("{prefix}expiry"),
            prefix,
        }
    }

    fn session(&self, id: &str) -> String {
        format!("{}{id}", self.session_prefix)
    }

    fn user(&self, user: &str) -> String {
        format!("{}{user}", self.user_prefix)
    }

    /// The cluster expiry shard of session `id`: FNV-1a of the id, modulo the shard count.
    fn expiry_shard(&self, id: &str) -> String {
        let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        self.expiry_shard_key(hash % EXPIRY_SHARDS)
    }

    fn expiry_shard_key(&self, shard: u32) -> String {
        format!("{}:{shard}", self.expiry)
    }
}

/// The Lua scripts. `Script` sends `EVALSHA` and falls back to `EVAL` once per connection
/// if the server has not cached the script yet.
struct Scripts {
    create: Script,
    touch: Script,
    touch_from: Script,
    delete: Script,
    delete_for_user: Script,
    delete_for_user_except: Script,
    list_for_user: Script,
    purge_batch: Script,
    cluster_create: Script,
    cluster_user_add: Script,
    cluster_delete: Script,
    cluster_delete_owned: Script,
    cluster_purge_shard: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::new(CREATE),
            touch: Script::new(TOUCH),
            touch_from: Script::new(TOUCH_FROM),
            delete: Script::new(DELETE),
            delete_for_user: Script::new(DELETE_FOR_USER),
            delete_for_user_except: Script::new(DELETE_FOR_USER_EXCEPT),
            list_for_user: Script::new(LIST_FOR_USER),
            purge_batch: Script::new(PURGE_BATCH_SCRIPT),
            cluster_create: Script::new(CLUSTER_CREATE),
            cluster_user_add: Script::new(CLUSTER_USER_ADD),
            cluster_delete: Script::new(CLUSTER_DELETE),
            cluster_delete_owned: Script::new(CLUSTER_DELETE_OWNED),
            cluster_purge_shard: Script::new(CLUSTER_PURGE_SHARD),
        }
    }
}

/// KEYS: session, user set, expiry index. ARGV: id, index member, expiry (ms, rounded up),
/// expiry (µs), then the hash's field/value pairs. Returns 1, or 0 if the id exists.
const CREATE: &str = include_str!("scripts/create_session.lua");

/// KEYS: session. ARGV: last seen (µs). Updates only a live session; returns 1 if it did.
const TOUCH: &str = include_str!("scripts/touch_session.lua");

/// KEYS: session. ARGV: last seen (µs), ip. As [`TOUCH`], and sets the `ip` field; returns 1
/// if it updated a live session.
const TOUCH_FROM: &str = include_str!("scripts/touch_session_from.lua");

/// KEYS: session, expiry index. ARGV: id, user key prefix. Returns 1 if the session existed.
const DELETE: &str = include_str!("scripts/delete_session.lua");

/// KEYS: user set, expiry index. ARGV: session key prefix, user id. Returns how many session
/// keys it deleted.
const DELETE_FOR_USER: &str = include_str!("scripts/delete_user_sessions.lua");

/// KEYS: user set, expiry index. ARGV: session key prefix, user id, id to keep. Deletes every
/// session in the user's set but the kept one and API tokens (a hash with a `name` field);
/// returns how many session keys it deleted.
const DELETE_FOR_USER_EXCEPT: &str = include_str!("scripts/delete_user_sessions_except.lua");

/// KEYS: user set. ARGV: session key prefix. Returns each session's fields plus its `id`;
/// drops ids whose key Redis has expired from the set.
const LIST_FOR_USER: &str = include_str!("scripts/list_user_sessions.lua");

/// KEYS: expiry index. ARGV: now (µs), batch size, session key prefix, user key prefix.
/// Removes up to a batch of sessions with expiry <= now; returns how many.
const PURGE_BATCH_SCRIPT: &str = include_str!("scripts/purge_expired_batch.lua");

// The cluster scripts: each touches its one key, `KEYS[1]`, and nothing else.

/// KEYS: session. ARGV: expiry (ms, rounded up), then the hash's field/value pairs. Returns
/// 1, or 0 if the id exists.
const CLUSTER_CREATE: &str = include_str!("scripts/cluster_create_session.lua");

/// KEYS: user set. ARGV: id, expiry (ms). Adds the id; the set expires with its latest
/// session.
const CLUSTER_USER_ADD: &str = include_str!("scripts/cluster_index_user_session.lua");

/// KEYS: session. Deletes it; returns its user id, or nil if it did not exist.
const CLUSTER_DELETE: &str = include_str!("scripts/cluster_delete_session.lua");

/// KEYS: session. ARGV: user id, `interactive` or `all`. Deletes the session if it belongs to
/// the user, unless it is an API token and ARGV\[2\] is `interactive`; returns 1 if it deleted
/// it, -1 if it kept an API token of the user, 0 otherwise.
const CLUSTER_DELETE_OWNED: &str = include_str!("scripts/cluster_delete_owned_session.lua");

/// KEYS: one expiry shard. ARGV: now (µs), batch size. Removes up to a batch of entries with
/// expiry <= now and returns them.
const CLUSTER_PURGE_SHARD: &str = include_str!("scripts/cluster_purge_expiry_shard.lua");

/// Maps a redis error: a reply of the wrong shape is [`StoreError::Corrupt`], the rest is a
/// backend failure.
pub(crate) fn error(e: redis::RedisError) -> StoreError {
    match e.kind() {
        redis::ErrorKind::TypeError => StoreError::corrupt(e),
        _ => StoreError::backend(e),
    }
}
