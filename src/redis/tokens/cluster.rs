//! The token store's operations on a Redis Cluster: one key per script, so each script runs
//! on the one master that holds its key (see [`RedisTokenStore`]'s docs for the key layout).
//! The standalone operations, one script over every key involved, are in the parent module.

use std::collections::HashMap;

use futures_util::future::try_join_all;
use time::OffsetDateTime;

use super::{error, push_fields, split_member, RedisTokenStore, PURGE_BATCH, SESSION_ID_LEN};
use crate::time_codec::{micros_to_millis_ceil, to_micros};
use crate::{Session, SessionId, StoreError, UserId};

/// What the owned-delete script answers for an API token it kept.
const KEPT_API_TOKEN: i64 = -1;

impl RedisTokenStore {
    pub(super) async fn cluster_create(&self, session: &Session) -> Result<(), StoreError> {
        let id = session.id.to_string();
        let user = session.user_id.as_str();
        let expires = to_micros(session.expires_at);
        let expires_ms = micros_to_millis_ceil(expires);
        let session_key = self.keys.session(&id);
        let mut call = self.scripts.cluster_create.prepare_invoke();
        call.key(&session_key).arg(expires_ms);
        push_fields(&mut call, session);
        let created: i64 = call
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        if created != 1 {
            return Err(StoreError::Duplicate);
        }
        let user_key = self.keys.user(user);
        let indexed = async {
            let _: i64 = self
                .scripts
                .cluster_user_add
                .key(&user_key)
                .arg(&id)
                .arg(expires_ms)
                .invoke_async(&mut self.conn.clone())
                .await?;
            redis::cmd("ZADD")
                .arg(self.keys.expiry_shard(&id))
                .arg(expires)
                .arg(format!("{id}{user}"))
                .query_async::<i64>(&mut self.conn.clone())
                .await
        }
        .await;
        if let Err(e) = indexed {
            // Undo, best effort: the token is never handed out, and Redis drops the key at
            // its expiry anyway.
            let mut conn = self.conn.clone();
            let _ = redis::cmd("DEL")
                .arg(&session_key)
                .query_async::<i64>(&mut conn)
                .await;
            let _ = redis::cmd("SREM")
                .arg(&user_key)
                .arg(&id)
                .query_async::<i64>(&mut conn)
                .await;
            return Err(error(e));
        }
        Ok(())
    }

    pub(super) async fn cluster_delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        let id = id.to_string();
        let owner: Option<String> = self
            .scripts
            .cluster_delete
            .key(self.keys.session(&id))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        let Some(user) = owner else {
            return Ok(false);
        };
        self.cluster_unindex(&user, std::slice::from_ref(&id))
            .await?;
        Ok(true)
    }

    /// Removes `ids` of `user` from the user's set and from the expiry shards.
    pub(super) async fn cluster_unindex(
        &self,
        user: &str,
        ids: &[String],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let srem = async {
            redis::cmd("SREM")
                .arg(self.keys.user(user))
                .arg(ids)
                .query_async::<i64>(&mut self.conn.clone())
                .await
        };
        let mut by_shard: HashMap<String, Vec<String>> = HashMap::new();
        for id in ids {
            by_shard
                .entry(self.keys.expiry_shard(id))
                .or_default()
                .push(format!("{id}{user}"));
        }
        let zrems = by_shard.into_iter().map(|(shard, members)| async move {
            redis::cmd("ZREM")
                .arg(shard)
                .arg(members)
                .query_async::<i64>(&mut self.conn.clone())
                .await
        });
        let (removed, zremoved) = futures_util::future::join(srem, try_join_all(zrems)).await;
        removed.map_err(error)?;
        zremoved.map_err(error)?;
        Ok(())
    }

    pub(super) async fn cluster_delete_for_user(
        &self,
        user: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<u64, StoreError> {
        let keep = keep.map(ToString::to_string);
        let mut ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.user(user.as_str()))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        ids.retain(|id| Some(id) != keep.as_ref());
        // `delete_for_user_except` ("log out my other devices") leaves API tokens alone.
        let which = if keep.is_some() { "interactive" } else { "all" };
        let deletes = ids.iter().map(|id| async move {
            self.scripts
                .cluster_delete_owned
                .key(self.keys.session(id))
                .arg(user.as_str())
                .arg(which)
                .invoke_async::<i64>(&mut self.conn.clone())
                .await
        });
        let outcomes = try_join_all(deletes).await.map_err(error)?;
        let deleted = outcomes.iter().filter(|&&n| n == 1).count() as u64;
        // Every listed id but a kept API token is now gone (deleted here, before, or by
        // Redis) or not this user's: none of those belongs in the set.
        let gone: Vec<String> = ids
            .into_iter()
            .zip(outcomes)
            .filter_map(|(id, n)| (n != KEPT_API_TOKEN).then_some(id))
            .collect();
        self.cluster_unindex(user.as_str(), &gone).await?;
        Ok(deleted)
    }

    pub(super) async fn cluster_list(
        &self,
        user: &UserId,
    ) -> Result<Vec<HashMap<String, Vec<u8>>>, StoreError> {
        let user_key = self.keys.user(user.as_str());
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&user_key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(error)?;
        let reads = ids.iter().map(|id| async move {
            redis::cmd("HGETALL")
                .arg(self.keys.session(id))
                .query_async::<HashMap<String, Vec<u8>>>(&mut self.conn.clone())
                .await
        });
        let found = try_join_all(reads).await.map_err(error)?;
        let mut gone = Vec::new();
        let mut out = Vec::with_capacity(found.len());
        for (id, mut fields) in ids.into_iter().zip(found) {
            if fields.is_empty() {
                gone.push(id);
            } else {
                fields.insert("id".to_owned(), id.into_bytes());
                out.push(fields);
            }
        }
        if !gone.is_empty() {
            // Expired by Redis or deleted: an id joins the set only after its key exists, so
            // a missing key never comes back.
            let _: i64 = redis::cmd("SREM")
                .arg(&user_key)
                .arg(&gone)
                .query_async(&mut self.conn.clone())
                .await
                .map_err(error)?;
        }
        Ok(out)
    }

    /// Purges one expiry shard in batches; returns how many sessions it removed.
    pub(super) async fn cluster_purge_shard(
        &self,
        shard: u32,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let key = self.keys.expiry_shard_key(shard);
        let mut total = 0;
        loop {
            let members: Vec<String> = self
                .scripts
                .cluster_purge_shard
                .key(&key)
                .arg(to_micros(now))
                .arg(PURGE_BATCH)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(error)?;
            let mut by_user: HashMap<&str, Vec<&str>> = HashMap::new();
            for m in &members {
                let (id, user) = split_member(m)?;
                by_user.entry(user).or_default().push(id);
            }
            let dels = members.iter().map(|m| async move {
                let id = m.get(..SESSION_ID_LEN).unwrap_or(m);
                redis::cmd("DEL")
                    .arg(self.keys.session(id))
                    .query_async::<i64>(&mut self.conn.clone())
                    .await
            });
            let srems = by_user.into_iter().map(|(user, ids)| async move {
                redis::cmd("SREM")
                    .arg(self.keys.user(user))
                    .arg(ids)
                    .query_async::<i64>(&mut self.conn.clone())
                    .await
            });
            let (deleted, removed) =
                futures_util::future::join(try_join_all(dels), try_join_all(srems)).await;
            deleted.map_err(error)?;
            removed.map_err(error)?;
            total += members.len() as u64;
            if members.len() < PURGE_BATCH {
                return Ok(total);
            }
        }
    }
}
