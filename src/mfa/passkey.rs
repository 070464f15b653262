//! Passkeys (WebAuthn) on the [`Authenticator`](crate::Authenticator): the relying party's
//! configuration ([`Passkeys`]), the user handle derived from a [`UserId`], and what the
//! operations return.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use webauthn_rs::prelude::{Url, Uuid, Webauthn, WebauthnBuilder};

use super::{PasskeyRecord, PasskeyStore};
use crate::one_time::OneTimeTokenStore;
use crate::throttle::Limit;
use crate::user::UserId;

#[cfg(doc)]
use crate::{AuthenticatorBuilder, Error};

/// Passkeys for an [`Authenticator`](crate::Authenticator): who the relying party is (its id,
/// the origin pages run on, the name authenticators show) and where ceremonies under way
/// live. Give it to [`AuthenticatorBuilder::passkeys`] with a [`PasskeyStore`].
///
/// A **ceremony** is one registration or one login with a passkey: the server sends options
/// with a fresh challenge, the browser asks the authenticator, the server checks its answer.
/// Its state stays on the server, in the one-time token store given here (the same one
/// account links and pending logins use is fine) as the payload of a single-use token that
/// lives 5 minutes; the client only holds that token (the `ceremony`) and sends it back.
/// Finishing consumes it atomically, so each challenge is answered once.
///
/// Passwordless login needs only this. A passkey as a **second factor** (after a password)
/// also needs [`AuthenticatorBuilder::second_factors`], where pending logins live.
///
/// Defaults: at most 10 passkeys per user; at most 30 passwordless logins begun per client
/// address per minute (then [`Error::Throttled`]).
///
/// ```
/// use keycard::mfa::Passkeys;
/// use keycard::one_time::MemoryOneTimeStore;
/// let passkeys = Passkeys::new("example.com", "https://login.example.com", "Example", MemoryOneTimeStore::new())?;
/// assert_eq!(passkeys.rp_id(), "example.com");
/// // The relying party id must be the origin's host or a parent domain of it.
/// assert!(Passkeys::new("example.org", "https://example.com", "Example", MemoryOneTimeStore::new()).is_err());
/// # Ok::<(), keycard::mfa::PasskeyConfigError>(())
/// ```
#[derive(Clone)]
pub struct Passkeys {
    pub(crate) webauthn: Arc<Webauthn>,
    pub(crate) ceremonies: Arc<dyn OneTimeTokenStore>,
    pub(crate) rp_id: String,
    pub(crate) rp_origin: String,
    pub(crate) max_per_user: u32,
    pub(crate) begin_limit: Limit,
}

/// Why [`Passkeys::new`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyConfigError {
    /// The origin is not an absolute `http://` or `https://` URL with a domain name.
    #[error("the passkey origin {0:?} is not an http(s) URL with a domain name (an IP address is not allowed)")]
    InvalidOrigin(String),
    /// The relying party id is not a domain, or not the origin's host or a parent domain of
    /// it.
    #[error("the passkey relying party id {rp_id:?} is not the host of {origin:?} or a parent domain of it")]
    InvalidRpId {
        /// The relying party id given.
        rp_id: String,
        /// The origin given.
        origin: String,
    },
    /// The relying party name is empty or longer than 64 characters.
    #[error("the passkey relying party name must be 1 to 64 characters")]
    InvalidRpName,
}

impl Passkeys {
    /// Passkeys for relying party `rp_id` (a domain, such as `example.com` or `localhost`;
    /// never an IP address), used from pages on `rp_origin` (`https://login.example.com`; plain
    /// `http` only for `localhost`, as browsers require), shown to users as `rp_name`, with
    /// ceremonies kept in `ceremonies`.
    ///
    /// # Errors
    /// [`PasskeyConfigError`] if the origin is not an http(s) URL with a domain, the id not
    /// its host or a parent of it, or the name empty or over 64 characters.
    pub fn new(
        rp_id: &str,
        rp_origin: &str,
        rp_name: &str,
        ceremonies: impl OneTimeTokenStore + 'static,
    ) -> Result<Self, PasskeyConfigError> {
        Self::from_arc(rp_id, rp_origin, rp_name, Arc::new(ceremonies))
    }

    /// [`new`](Self::new) with the ceremony store already shared.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn from_arc(
        rp_id: &str,
        rp_origin: &str,
        rp_name: &str,
        ceremonies: Arc<dyn OneTimeTokenStore>,
    ) -> Result<Self, PasskeyConfigError> {
        let invalid_origin =
            || PasskeyConfigError::InvalidOrigin(rp_origin.chars().take(256).collect());
        let origin = Url::parse(rp_origin).map_err(|_| invalid_origin())?;
        if !matches!(origin.scheme(), "http" | "https") || origin.domain().is_none() {
            return Err(invalid_origin());
        }
        if rp_name.is_empty() || rp_name.chars().count() > 64 {
            return Err(PasskeyConfigError::InvalidRpName);
        }
        let invalid_id = || PasskeyConfigError::InvalidRpId {
            rp_id: rp_id.chars().take(256).collect(),
            origin: rp_origin.chars().take(256).collect(),
        };
        if rp_id.is_empty() || rp_id.parse::<std::net::IpAddr>().is_ok() {
            return Err(invalid_id());
        }
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .map(|b| b.rp_name(rp_name))
            .and_then(WebauthnBuilder::build)
            .map_err(|_| invalid_id())?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
            ceremonies,
            rp_id: rp_id.to_owned(),
            rp_origin: origin.origin().ascii_serialization(),
            max_per_user: PasskeyRecord::DEFAULT_MAX_PER_USER,
            begin_limit: Limit::new(30, std::time::Duration::from_secs(60)),
        })
    }

    /// How many passkeys one user may register (1 to 100; default 10).
    #[must_use]
    pub fn with_max_per_user(mut self, max: u32) -> Self {
        self.max_per_user = max.clamp(1, 100);
        self
    }

    /// How many passwordless logins one client address may begin per window (they need no
    /// account, so this bounds the ceremonies anyone can make the server store). Default:
    /// 30 per minute.
    #[must_use]
    pub fn with_begin_limit(mut self, limit: Limit) -> Self {
        self.begin_limit = limit;
        self
    }

    /// The relying party id.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The origin pages run on (`scheme://host[:port]`).
    pub fn rp_origin(&self) -> &str {
        &self.rp_origin
    }

    /// How many passkeys one user may register.
    pub fn max_per_user(&self) -> u32 {
        self.max_per_user
    }
}

impl fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passkeys")
            .field("rp_id", &self.rp_id)
            .field("rp_origin", &self.rp_origin)
            .field("ceremonies", &self.ceremonies)
            .field("max_per_user", &self.max_per_user)
            .field("begin_limit", &self.begin_limit)
            .finish()
    }
}

/// The WebAuthn user handle of `user`: SHA-256 of a domain string and the user id, its first
/// 16 bytes as a UUID (version 8). Deterministic, so nothing more is stored; it reveals
/// nothing of the id to the authenticator.
///
/// ```
/// use keycard::mfa::passkey_user_handle;
/// use keycard::UserId;
/// let ann = passkey_user_handle(&UserId::new("1"));
/// assert_eq!(ann, passkey_user_handle(&UserId::new("1")));
/// assert_ne!(ann, passkey_user_handle(&UserId::new("2")));
/// assert_eq!(ann.get_version_num(), 8);
/// ```
pub fn passkey_user_handle(user: &UserId) -> Uuid {
    let mut d = Sha256::new();
    d.update(b"keycard passkey user handle\0");
    d.update(user.as_str().as_bytes());
    let digest = d.finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
    Uuid::from_bytes(bytes)
}

/// A registered passkey as an account page shows it: no key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PasskeyView {
    /// The credential id in base64url (no padding): what rename and remove take.
    pub id: String,
    /// The name the user gave it.
    pub name: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed a login in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<&PasskeyRecord> for PasskeyView {
    fn from(record: &PasskeyRecord) -> Self {
        Self {
            id: URL_SAFE_NO_PAD.encode(&record.credential_id),
            name: record.name.clone(),
            created_at: record.created_at,
            last_used_at: record.last_used_at,
        }
    }
}

/// Decodes a [`PasskeyView::id`]; `None` unless it is base64url of 1 to 1023 bytes.
pub(crate) fn decode_credential_id(id: &str) -> Option<Vec<u8>> {
    if id.len() > 1400 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).ok()?;
    (!bytes.is_empty() && bytes.len() <= PasskeyRecord::MAX_CREDENTIAL_ID_LEN).then_some(bytes)
}

/// What [`PasskeyStore`]s hold, shared: the runtime keeps an `Arc<dyn PasskeyStore>`.
pub(crate) type SharedPasskeyStore = Arc<dyn PasskeyStore>;
