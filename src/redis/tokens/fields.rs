//! A session's hash as the Redis token store reads it back: its fields, from either reply
//! shape, decoded into a [`Session`].

use std::collections::HashMap;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::time_codec;
use crate::{
    AuthMethods, ClientInfo, SecretHash, Session, SessionId, SessionKind, StoreError, UserId,
};

/// The fields a lookup asks for, in the order of its reply: one `HMGET` of these names
/// answers by position, so no field name comes back and no map is built.
pub(super) const NAMES: [&str; 10] = [
    "hash", "user", "created", "expires", "seen", "ip", "ua", "amr", "name", "scopes",
];

/// A session hash's fields: each absent or its bytes.
pub(super) struct Fields<'a> {
    hash: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
    created: Option<&'a [u8]>,
    expires: Option<&'a [u8]>,
    seen: Option<&'a [u8]>,
    ip: Option<&'a [u8]>,
    ua: Option<&'a [u8]>,
    amr: Option<&'a [u8]>,
    name: Option<&'a [u8]>,
    scopes: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// The fields of an `HGETALL` reply (the listing reads whole hashes).
    pub(super) fn from_map(map: &'a HashMap<String, Vec<u8>>) -> Self {
        Self::in_order(NAMES.map(|name| map.get(name).map(Vec::as_slice)))
    }

    /// The fields of an `HMGET` of [`NAMES`]; `None` when the hash does not exist (every
    /// field is absent: a stored session always has its digest).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the reply does not hold one value per name.
    pub(super) fn from_values(values: &'a [Option<Vec<u8>>]) -> Result<Option<Self>, StoreError> {
        let values: &[Option<Vec<u8>>; NAMES.len()] = values.try_into().map_err(|_| {
            StoreError::corrupt(format!(
                "HMGET of {} fields answered {} values",
                NAMES.len(),
                values.len()
            ))
        })?;
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        Ok(Some(Self::in_order(
            values.each_ref().map(Option::as_deref),
        )))
    }

    /// The fields given in the order of [`NAMES`].
    fn in_order(values: [Option<&'a [u8]>; NAMES.len()]) -> Self {
        let [hash, user, created, expires, seen, ip, ua, amr, name, scopes] = values;
        Self {
            hash,
            user,
            created,
            expires,
            seen,
            ip,
            ua,
            amr,
            name,
            scopes,
        }
    }

    /// The session these fields spell, with id `id`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a required field is missing or a field does not decode.
    pub(super) fn decode(&self, id: SessionId) -> Result<Session, StoreError> {
        let hash: [u8; 32] = required(self.hash, "hash")?
            .try_into()
            .map_err(|_| StoreError::corrupt("secret hash is not 32 bytes"))?;
        let mut client = ClientInfo::none();
        if let Some(ip) = self.ip {
            client = client.with_ip(text(ip)?.parse::<IpAddr>().map_err(StoreError::corrupt)?);
        }
        if let Some(ua) = self.ua {
            client = client.with_user_agent(text(ua)?);
        }
        let kind = SessionKind::from_stored(
            self.name.map(text).transpose()?,
            self.scopes.map(text).transpose()?,
        )?;
        let amr = match self.amr {
            Some(bits) => {
                AuthMethods::from_bits(text(bits)?.parse::<u8>().map_err(StoreError::corrupt)?)
            }
            None => AuthMethods::none(),
        };
        Ok(Session {
            id,
            user_id: UserId::new(text(required(self.user, "user")?)?),
            secret_hash: SecretHash::from_bytes(hash),
            created_at: instant(self.created, "created")?,
            expires_at: instant(self.expires, "expires")?,
            last_seen_at: instant(self.seen, "seen")?,
            client,
            amr,
            kind,
        })
    }
}

fn required<'a>(value: Option<&'a [u8]>, name: &str) -> Result<&'a [u8], StoreError> {
    value.ok_or_else(|| StoreError::corrupt(format!("session hash lacks the {name:?} field")))
}

fn text(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(StoreError::corrupt)
}

fn instant(value: Option<&[u8]>, name: &str) -> Result<OffsetDateTime, StoreError> {
    time_codec::from_micros_text(text(required(value, name)?)?)
}
