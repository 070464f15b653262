//! Redis token store (feature `redis`): sessions shared by several application instances,
//! expired by Redis itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use time::OffsetDateTime;

use crate::{ClientInfo, SecretHash, Session, SessionId, StoreError, TokenStore, UserId};

/// How many expired sessions one purge script removes; each batch is atomic and short.
const PURGE_BATCH: usize = 1000;

/// The connection [`RedisTokenStore::connect`] and
/// [`RedisThrottle::connect`](crate::throttle::RedisThrottle::connect) build: 2 s connection
/// and response timeouts, one quick reconnection retry per failing request, and automatic
/// reconnection.
///
/// # Errors
/// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
pub(crate) async fn connect_manager(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = redis::Client::open(url).map_err(StoreError::backend)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(1)
        .set_max_delay(200);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(StoreError::backend)
}

/// Sessions in Redis, shared by several application instances, expired by Redis itself.
///
/// Built on the [`redis`] crate's [`ConnectionManager`]: one multiplexed connection (requests
/// from all tasks are pipelined on it, so there is no pool to tune and no checkout cost) that
/// reconnects by itself after the server restarts. While the server is unreachable, each
/// operation fails with [`StoreError::Backend`] within a few seconds: about 1.5 s when
/// connections are refused (one quick reconnection attempt), otherwise bounded by the 2 s
/// connection and response timeouts of [`RedisTokenStore::connect`] (build your own
/// `ConnectionManager` and use [`RedisTokenStore::new`] for other settings).
///
/// # Keys
/// With the default prefix `keycard:`:
///
/// | key | type | holds | expires |
/// |---|---|---|---|
/// | `keycard:session:<id>` | hash | `user`, `hash` (32 raw bytes), `created`, `expires`, `seen` (Unix µs), `ip`, `ua` | at the session's `expires_at` (`PEXPIREAT`) |
/// | `keycard:user:<user id>` | set | the user's session ids | at its latest session's expiry |
/// | `keycard:expiry` | sorted set | `<id><user id>` scored by `expires_at` (µs) | never; trimmed by `purge_expired` |
///
/// Every write is one Lua script, so it is atomic: create (fails if the session key exists,
/// the `SET NX` rule), touch (only an existing key: never resurrects), delete, delete for a
/// user, delete for a user but one session, and each purge batch of at most 1000 sessions. A validate is one `HGETALL`.
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
/// The scripts touch keys they derive from the prefix, so this store needs a standalone Redis
/// (or Sentinel / a replica set), not Redis Cluster. Redis 5 or newer. Users are not stored
/// in Redis: keep them in memory, SQLite or PostgreSQL.
///
/// ```no_run
/// # async fn run() -> Result<(), keycard::StoreError> {
/// use keycard::store::RedisTokenStore;
/// let tokens = RedisTokenStore::connect("redis://127.0.0.1:6379")
///     .await?
///     .with_key_prefix("myapp:sessions:");
/// // No schema to create: keys appear on first use.
/// tokens.ping().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTokenStore {
    conn: ConnectionManager,
    keys: Arc<Keys>,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("prefix", &self.keys.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "keycard:";

    /// Connects to `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` with the
    /// redis crate's TLS feature) with 2 s connection and response timeouts, one quick
    /// reconnection retry per failing request, and automatic reconnection.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the URL is invalid or the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(connect_manager(url).await?))
    }

    /// Uses your own connection manager (for other timeouts or retry settings).
    pub fn new(conn: ConnectionManager) -> Self {
        Self {
            conn,
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

    /// The connection (a cheap clone of it), for your own commands.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
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
        let id = session.id.to_string();
        let user = session.user_id.as_str();
        let expires = micros(session.expires_at);
        let mut call = self.scripts.create.prepare_invoke();
        call.key(self.keys.session(&id))
            .key(self.keys.user(user))
            .key(&self.keys.expiry)
            .arg(&id)
            .arg(format!("{id}{user}"))
            .arg(expires.div_euclid(1000) + i64::from(expires.rem_euclid(1000) > 0))
            .arg(expires)
            .arg("user")
            .arg(user)
            .arg("hash")
            .arg(session.secret_hash.as_bytes().as_slice())
            .arg("created")
            .arg(micros(session.created_at))
            .arg("expires")
            .arg(expires)
            .arg("seen")
            .arg(micros(session.last_seen_at));
        if let Some(ip) = session.client.ip {
            call.arg("ip").arg(ip.to_string());
        }
        if let Some(ua) = &session.client.user_agent {
            call.arg("ua").arg(ua);
        }
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
        let fields: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
            .arg(self.keys.session(&id.to_string()))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let session = decode(*id, &fields)?;
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
            .arg(micros(last_seen_at))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        Ok(touched == 1)
    }

    async fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
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
        let found: Vec<HashMap<String, Vec<u8>>> = self
            .scripts
            .list_for_user
            .key(self.keys.user(user.as_str()))
            .arg(&self.keys.session_prefix)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        let mut sessions = Vec::with_capacity(found.len());
        for fields in &found {
            let id = std::str::from_utf8(field(fields, "id")?)
                .map_err(StoreError::corrupt)?
                .parse::<SessionId>()
                .map_err(StoreError::corrupt)?;
            let session = decode(id, fields)?;
            if !session.is_expired(now) && &session.user_id == user {
                sessions.push(session);
            }
        }
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let purged: u64 = self
                .scripts
                .purge_batch
                .key(&self.keys.expiry)
                .arg(micros(now))
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
}

/// The Lua scripts. `Script` sends `EVALSHA` and falls back to `EVAL` once per connection
/// if the server has not cached the script yet.
struct Scripts {
    create: Script,
    touch: Script,
    delete: Script,
    delete_for_user: Script,
    delete_for_user_except: Script,
    list_for_user: Script,
    purge_batch: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            create: Script::new(CREATE),
            touch: Script::new(TOUCH),
            delete: Script::new(DELETE),
            delete_for_user: Script::new(DELETE_FOR_USER),
            delete_for_user_except: Script::new(DELETE_FOR_USER_EXCEPT),
            list_for_user: Script::new(LIST_FOR_USER),
            purge_batch: Script::new(PURGE_BATCH_SCRIPT),
        }
    }
}

/// KEYS: session, user set, expiry index. ARGV: id, index member, expiry (ms, rounded up),
/// expiry (µs), then the hash's field/value pairs. Returns 1, or 0 if the id exists.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 or now_ms + ttl < tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
return 1
";

/// KEYS: session. ARGV: last seen (µs). Updates only a live session; returns 1 if it did.
const TOUCH: &str = r"
local expires = redis.call('HGET', KEYS[1], 'expires')
if not expires or tonumber(expires) <= tonumber(ARGV[1]) then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen') or '0')
if tonumber(ARGV[1]) > seen then redis.call('HSET', KEYS[1], 'seen', ARGV[1]) end
return 1
";

/// KEYS: session, expiry index. ARGV: id, user key prefix. Returns 1 if the session existed.
const DELETE: &str = r"
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. user, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1] .. user)
return 1
";

/// KEYS: user set, expiry index. ARGV: session key prefix, user id. Returns how many session
/// keys it deleted.
const DELETE_FOR_USER: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, id in ipairs(ids) do
  n = n + redis.call('DEL', ARGV[1] .. id)
  redis.call('ZREM', KEYS[2], id .. ARGV[2])
end
redis.call('DEL', KEYS[1])
return n
";

/// KEYS: user set, expiry index. ARGV: session key prefix, user id, id to keep. Deletes every
/// session in the user's set but the kept one; returns how many session keys it deleted.
const DELETE_FOR_USER_EXCEPT: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
local n = 0
for _, id in ipairs(ids) do
  if id ~= ARGV[3] then
    n = n + redis.call('DEL', ARGV[1] .. id)
    redis.call('ZREM', KEYS[2], id .. ARGV[2])
    redis.call('SREM', KEYS[1], id)
  end
end
return n
";

/// KEYS: user set. ARGV: session key prefix. Returns each session's fields plus its `id`;
/// drops ids whose key Redis has expired from the set.
const LIST_FOR_USER: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
local out = {}
for _, id in ipairs(ids) do
  local fields = redis.call('HGETALL', ARGV[1] .. id)
  if #fields == 0 then
    redis.call('SREM', KEYS[1], id)
  else
    fields[#fields + 1] = 'id'
    fields[#fields + 1] = id
    out[#out + 1] = fields
  end
end
return out
";

/// KEYS: expiry index. ARGV: now (µs), batch size, session key prefix, user key prefix.
/// Removes up to a batch of sessions with expiry <= now; returns how many.
const PURGE_BATCH_SCRIPT: &str = r"
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(members) do
  local id = string.sub(m, 1, 22)
  redis.call('DEL', ARGV[3] .. id)
  redis.call('SREM', ARGV[4] .. string.sub(m, 23), id)
end
if #members > 0 then redis.call('ZREM', KEYS[1], unpack(members)) end
return #members
";

/// Microseconds since the Unix epoch (every `OffsetDateTime` fits in an `i64`).
fn micros(t: OffsetDateTime) -> i64 {
    let micros = t.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

fn field<'a>(fields: &'a HashMap<String, Vec<u8>>, name: &str) -> Result<&'a [u8], StoreError> {
    fields
        .get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| StoreError::corrupt(format!("session hash lacks the {name:?} field")))
}

fn text(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(StoreError::corrupt)
}

fn instant(fields: &HashMap<String, Vec<u8>>, name: &str) -> Result<OffsetDateTime, StoreError> {
    let micros: i64 = text(field(fields, name)?)?
        .parse()
        .map_err(StoreError::corrupt)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map_err(StoreError::corrupt)
}

fn decode(id: SessionId, fields: &HashMap<String, Vec<u8>>) -> Result<Session, StoreError> {
    let hash: [u8; 32] = field(fields, "hash")?
        .try_into()
        .map_err(|_| StoreError::corrupt("secret hash is not 32 bytes"))?;
    let mut client = ClientInfo::none();
    if let Some(ip) = fields.get("ip") {
        client = client.with_ip(text(ip)?.parse::<IpAddr>().map_err(StoreError::corrupt)?);
    }
    if let Some(ua) = fields.get("ua") {
        client = client.with_user_agent(text(ua)?);
    }
    Ok(Session {
        id,
        user_id: UserId::new(text(field(fields, "user")?)?),
        secret_hash: SecretHash::from_bytes(hash),
        created_at: instant(fields, "created")?,
        expires_at: instant(fields, "expires")?,
        last_seen_at: instant(fields, "seen")?,
        client,
    })
}

/// Maps a redis error: a reply of the wrong shape is [`StoreError::Corrupt`], the rest is a
/// backend failure.
pub(crate) fn error(e: redis::RedisError) -> StoreError {
    match e.kind() {
        redis::ErrorKind::TypeError => StoreError::corrupt(e),
        _ => StoreError::backend(e),
    }
}
