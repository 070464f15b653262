//! Authentication events for security monitoring, as `tracing` events under one target.
//!
//! Every event has the target [`TARGET`] (`keycard::audit`) and a stable `event` field; filter
//! on the target to send them to your security log (for example
//! `RUST_LOG=keycard::audit=info` with `tracing-subscriber`'s `EnvFilter`).
//!
//! | `event` | level | when | other fields |
//! |---|---|---|---|
//! | `login.succeeded` | INFO | a password matched and a session started | `user_id`, `session_id`, `client_ip` |
//! | `login.failed` | WARN | the password was checked and did not match (at login, or when re-verified by `verify_password` or `change_password`) | `reason` (`unknown_account`, `wrong_password`, `unusable_hash`), `user_id` (known accounts only), `account`, `client_ip` |
//! | `login.throttled` | WARN | refused by a limit before anything was checked | `limit` (`account_ip`, `ip`, `account`, `in_flight`), `retry_after_secs`, `account`, `client_ip` |
//! | `login.overloaded` | WARN | refused because the hashing queue or the throttle's table is full | `queue` (`hashing`, `throttle_capacity`), `retry_after_secs`, `client_ip` |
//! | `throttle.unavailable` | ERROR | the throttle's backend failed; the login was refused (fail closed) or let through uncounted (fail open) | `policy`, `error`, `client_ip` |
//! | `logout` | INFO | a session was ended by its token | `user_id`, `session_id` |
//! | `session.expired` | INFO | a token was presented after its idle timeout; the session was deleted | `user_id`, `session_id` |
//! | `sessions.revoked` | INFO | sessions were ended for a user (`logout_all`, `logout_others`, `change_password`) | `user_id`, `count` |
//! | `session.revoked` | INFO | one session was ended by its owner (`revoke`) | `user_id`, `session_id` |
//! | `password.changed` | INFO | a user changed their password (`change_password`) | `user_id`, `session_id` (the session replaced by a fresh one) |
//! | `registration.accepted` | INFO | `register` created a user | `user_id`, `client_ip` |
//! | `registration.refused` | WARN | `register` refused | `reason` (`invalid_email`, `input_too_long`, `weak_password`, `throttled`, `overloaded`, `email_taken`, `unavailable`, `internal`), `client_ip` |
//! | `csrf.refused` | WARN | a request was refused as cross-site: an unsafe method authenticated by the session cookie, or a login, without same-origin evidence (see [`SessionCookie`]) | `check` (`cookie_token`, `login`), `method`, `origin` (the `Origin` or `Referer`'s `scheme://host[:port]`, `-` without either, `invalid` when unparsable), `client_ip` |
//! | `tokens.invalid` | WARN | requests carried malformed, invalid or expired tokens; rate-limited (below) | `count` (failures since this address's last such event, this one included), `client_ip` |
//! | `mail.dropped` | WARN | [`MailQueue::enqueue`] dropped a mail: its queue was full (the mail server is slow or down, or the queue too small) or its task had stopped | `reason` (`full`, `stopped`), `domain` (the recipient's domain only) |
//! | `mail.failed` | WARN | [`MailQueue`] could not send a mail (after one retry if the server was unreachable or timed out) | `reason` (`invalid_address`, `rejected`, `unavailable`, `config`, `timeout`, `panicked`), `domain` |
//! | `sessions.purged` | DEBUG | `expire` deleted sessions past their lifetime | `count` |
//! | `login.unverified` | WARN | the password matched but the email is not verified and the authenticator requires it ([`require_verified_email`](crate::AuthenticatorBuilder::require_verified_email)) | `user_id`, `client_ip` |
//! | `account.link_requested` | INFO | a link by mail was asked for ([`Accounts`](crate::account::Accounts): forgot password, sign-in link, verification resend); logged the same for known and unknown emails | `purpose` (`password_reset`, `email_sign_in`, `email_verification`, `registration_notice`, `email_change`), `client_ip` |
//! | `account.mail_limited` | WARN | a mail was not sent because its recipient had too many of that kind this hour, or the request's address asked too often | `purpose`, `limit` (`recipient`, `client`), `client_ip` |
//! | `account.link_refused` | WARN | a link's token was refused | `purpose`, `reason` (`invalid`, `stale`), `client_ip` |
//! | `second_factor.required` | INFO | the first step of a login (password or sign-in link) was right for a user with a second factor: a pending login was issued, no session | `user_id`, `client_ip` |
//! | `second_factor.failed` | WARN | a second-factor code was wrong, replayed, or a recovery code unknown or used | `method` (`otp`, `recovery_code`), `user_id`, `client_ip` |
//! | `second_factor.throttled` | WARN | a code was refused unchecked: the account's wrong codes reached their limit, or the pending login's (which then ends) | `limit` (`account`, `pending_login`), `retry_after_secs`, `user_id`, `client_ip` |
//! | `second_factor.enrolled` | INFO | a user confirmed an authenticator app; it is active from now | `user_id`, `client_ip` |
//! | `second_factor.disabled` | INFO | a user removed their authenticator app | `user_id`, `client_ip` |
//! | `recovery_code.used` | WARN | a recovery code was spent (at login or to disable the app); tell the user | `user_id`, `codes_left`, `client_ip` |
//! | `recovery_codes.regenerated` | INFO | a new set of recovery codes replaced the old | `user_id`, `client_ip` |
//! | `passkey.registered` | INFO | a user registered a passkey | `user_id`, `client_ip` |
//! | `passkey.removed` | INFO | a user removed one of their passkeys | `user_id`, `client_ip` |
//! | `passkey.used` | INFO | a passkey's answer was accepted: a passwordless login (a `login.succeeded` follows) or a login's second step | `purpose` (`login`, `second_factor`), `user_id`, `client_ip` |
//! | `passkey.failed` | WARN | a passkey's answer was refused (bad signature, challenge, origin or user verification; unknown passkey, or another user's), or a registration's | `purpose` (`login`, `second_factor`, `registration`), `reason` (`unknown_passkey`, `wrong_user`, `assertion`, `registration`, `duplicate`), `user_id` (`-` when no account is known), `client_ip` |
//! | `email.verified` | INFO | an address was proved by a verification link | `user_id`, `client_ip` |
//! | `password.reset` | INFO | a password was reset by a reset link; every session of the user ended | `user_id`, `sessions_ended`, `client_ip` |
//! | `sign_in_link.used` | INFO | a sign-in link started a session (a `login.succeeded` follows) | `user_id`, `client_ip` |
//! | `email.change_requested` | INFO | a logged-in user asked to change their address (password proved) | `user_id`, `client_ip` |
//! | `email.changed` | INFO | an email change was confirmed from the new address | `user_id`, `client_ip` |
//! | `api_token.created` | INFO | a signed-in user created an [API token](crate::api_tokens) (never its secret) | `user_id`, `token_id`, `name`, `scopes` (space-separated) |
//! | `api_token.new_address` | WARN | an API token was used from an address other than the one it was last used from (its first use included); checked when its last use is written, at most once a minute | `user_id`, `token_id`, `client_ip` |
//! | `api_token.scope_refused` | WARN | an API token lacked the scope a route needs | `user_id`, `token_id`, `scope` |
//! | `api_token.revoked` | INFO | an API token was revoked by its owner, one by one or all at once | `user_id`, `token_id`, `by` (`owner`, `all`) |
//! | `api_token.expired` | INFO | an API token was presented past its expiry and deleted (stores drop expired tokens on their own too: a later use is then a `tokens.invalid`) | `user_id`, `token_id` |
//!
//! `account` is the throttle's digest of the normalized email ([`ThrottleKey::account`]): it
//! lets you correlate attempts on one account without logging the email, so an attempted
//! email that matched no account (or a password typed into the email field) never reaches a
//! log. No event ever carries a token, a password or a password hash. `client_ip` is `-` when
//! unknown.
//!
//! `tokens.invalid` is emitted by the HTTP layer's `validate` and `validate_session` (and so by
//! the extractors and the tower layer), at most once per client address per minute: the first
//! failure of an address is reported at once, the following ones are counted and reported,
//! with their count, by the first failure a minute or more after that address's last event.
//! Addresses are tracked in a table of at most 10,000 (a new one drops the longest tracked),
//! and at most 20 such events are emitted per second in all, so a flood of bad tokens, from
//! one address or many, cannot flood the log.
//!
//! Mail events name the recipient's domain, never the address, the subject or a body (links in
//! mail carry one-time tokens); the error of a failed send is logged apart, at WARN under the
//! target `keycard::mail`.
//!
//! [`MailQueue::enqueue`]: crate::mail::MailQueue::enqueue
//! [`MailQueue`]: crate::mail::MailQueue
//! [`ThrottleKey::account`]: crate::throttle::ThrottleKey::account
//! [`SessionCookie`]: crate::http::SessionCookie

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::throttle::ThrottleKey;
use crate::token::SessionId;
use crate::user::UserId;

pub(crate) mod limiter;

/// The `tracing` target of every audit event.
pub const TARGET: &str = "keycard::audit";

/// Why a checked login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureReason {
    UnknownAccount,
    WrongPassword,
    UnusableHash,
}

impl FailureReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::WrongPassword => "wrong_password",
            Self::UnusableHash => "unusable_hash",
        }
    }
}

/// An optional address, shown as `-` when absent.
struct Ip(Option<IpAddr>);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

pub(crate) fn login_succeeded(user: &UserId, session: &SessionId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "login.succeeded", user_id = %user, session_id = %session, client_ip = %Ip(ip));
}

pub(crate) fn login_failed(
    reason: FailureReason,
    user: Option<&UserId>,
    key: &ThrottleKey,
    ip: Option<IpAddr>,
) {
    let user = user.map_or("-", UserId::as_str);
    tracing::warn!(target: TARGET, event = "login.failed", reason = reason.as_str(), user_id = %user, account = key.account(), client_ip = %Ip(ip));
}

pub(crate) fn login_throttled(
    limit: &str,
    retry_after: Duration,
    key: &ThrottleKey,
    ip: Option<IpAddr>,
) {
    tracing::warn!(target: TARGET, event = "login.throttled", limit, retry_after_secs = secs(retry_after), account = key.account(), client_ip = %Ip(ip));
}

pub(crate) fn login_overloaded(queue: &str, retry_after: Duration, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "login.overloaded", queue, retry_after_secs = secs(retry_after), client_ip = %Ip(ip));
}

pub(crate) fn throttle_unavailable(
    policy: &str,
    error: &dyn std::error::Error,
    ip: Option<IpAddr>,
) {
    tracing::error!(target: TARGET, event = "throttle.unavailable", policy, error = %crate::error::chain(error), client_ip = %Ip(ip));
}

pub(crate) fn logout(user: &UserId, session: &SessionId) {
    tracing::info!(target: TARGET, event = "logout", user_id = %user, session_id = %session);
}

pub(crate) fn session_expired(user: &UserId, session: &SessionId) {
    tracing::info!(target: TARGET, event = "session.expired", user_id = %user, session_id = %session);
}

pub(crate) fn sessions_revoked(user: &UserId, count: u64) {
    tracing::info!(target: TARGET, event = "sessions.revoked", user_id = %user, count);
}

pub(crate) fn session_revoked(user: &UserId, session: &SessionId) {
    tracing::info!(target: TARGET, event = "session.revoked", user_id = %user, session_id = %session);
}

pub(crate) fn password_changed(user: &UserId, session: &SessionId) {
    tracing::info!(target: TARGET, event = "password.changed", user_id = %user, session_id = %session);
}

pub(crate) fn registration_accepted(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "registration.accepted", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn registration_refused(reason: &str, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "registration.refused", reason, client_ip = %Ip(ip));
}

pub(crate) fn sessions_purged(count: u64) {
    tracing::debug!(target: TARGET, event = "sessions.purged", count);
}

pub(crate) fn csrf_refused(check: &str, method: &str, origin: &str, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "csrf.refused", check, method, origin, client_ip = %Ip(ip));
}

pub(crate) fn tokens_invalid(count: u64, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "tokens.invalid", count, client_ip = %Ip(ip));
}

pub(crate) fn mail_dropped(reason: &str, domain: &str) {
    tracing::warn!(target: TARGET, event = "mail.dropped", reason, domain);
}

pub(crate) fn mail_failed(reason: &str, domain: &str) {
    tracing::warn!(target: TARGET, event = "mail.failed", reason, domain);
}

pub(crate) fn login_unverified(user: &UserId, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "login.unverified", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn account_link_requested(purpose: &str, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "account.link_requested", purpose, client_ip = %Ip(ip));
}

pub(crate) fn account_mail_limited(purpose: &str, limit: &str, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "account.mail_limited", purpose, limit, client_ip = %Ip(ip));
}

pub(crate) fn account_link_refused(purpose: &str, reason: &str, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "account.link_refused", purpose, reason, client_ip = %Ip(ip));
}

pub(crate) fn email_verified(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "email.verified", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn password_reset(user: &UserId, sessions_ended: u64, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "password.reset", user_id = %user, sessions_ended, client_ip = %Ip(ip));
}

pub(crate) fn sign_in_link_used(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "sign_in_link.used", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn email_change_requested(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "email.change_requested", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn email_changed(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "email.changed", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn second_factor_required(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "second_factor.required", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn second_factor_failed(method: &str, user: &UserId, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "second_factor.failed", method, user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn second_factor_throttled(
    limit: &str,
    retry_after: Duration,
    user: &UserId,
    ip: Option<IpAddr>,
) {
    tracing::warn!(target: TARGET, event = "second_factor.throttled", limit, retry_after_secs = secs(retry_after), user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn second_factor_enrolled(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "second_factor.enrolled", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn second_factor_disabled(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "second_factor.disabled", user_id = %user, client_ip = %Ip(ip));
}

pub(crate) fn recovery_code_used(user: &UserId, codes_left: u32, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "recovery_code.used", user_id = %user, codes_left, client_ip = %Ip(ip));
}

pub(crate) fn recovery_codes_regenerated(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "recovery_codes.regenerated", user_id = %user, client_ip = %Ip(ip));
}

#[cfg(feature = "passkeys")]
pub(crate) fn passkey_registered(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "passkey.registered", user_id = %user, client_ip = %Ip(ip));
}

#[cfg(feature = "passkeys")]
pub(crate) fn passkey_removed(user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "passkey.removed", user_id = %user, client_ip = %Ip(ip));
}

#[cfg(feature = "passkeys")]
pub(crate) fn passkey_used(purpose: &str, user: &UserId, ip: Option<IpAddr>) {
    tracing::info!(target: TARGET, event = "passkey.used", purpose, user_id = %user, client_ip = %Ip(ip));
}

#[cfg(feature = "passkeys")]
pub(crate) fn passkey_failed(
    purpose: &str,
    reason: &str,
    user: Option<&UserId>,
    ip: Option<IpAddr>,
) {
    let user = user.map_or("-", UserId::as_str);
    tracing::warn!(target: TARGET, event = "passkey.failed", purpose, reason, user_id = user, client_ip = %Ip(ip));
}

pub(crate) fn api_token_created(
    user: &UserId,
    token: &SessionId,
    name: &str,
    scopes: &crate::api_tokens::Scopes,
) {
    tracing::info!(target: TARGET, event = "api_token.created", user_id = %user, token_id = %token, name, scopes = %scopes);
}

pub(crate) fn api_token_revoked(user: &UserId, token: &SessionId, by: &str) {
    tracing::info!(target: TARGET, event = "api_token.revoked", user_id = %user, token_id = %token, by);
}

pub(crate) fn api_token_scope_refused(user: &UserId, token: &SessionId, scope: &str) {
    tracing::warn!(target: TARGET, event = "api_token.scope_refused", user_id = %user, token_id = %token, scope);
}

pub(crate) fn api_token_new_address(user: &UserId, token: &SessionId, ip: Option<IpAddr>) {
    tracing::warn!(target: TARGET, event = "api_token.new_address", user_id = %user, token_id = %token, client_ip = %Ip(ip));
}

pub(crate) fn api_token_expired(user: &UserId, token: &SessionId) {
    tracing::info!(target: TARGET, event = "api_token.expired", user_id = %user, token_id = %token);
}
