//! A user's sessions: listing them, ending one, the others, or all.

use super::Authenticator;
use crate::audit;
use crate::error::Result;
use crate::session::{Session, SessionView};
use crate::token::SessionId;
use crate::user::{UserId, UserStore};

#[cfg(doc)]
use crate::error::Error;

impl<U: UserStore> Authenticator<U> {
    /// Ends every session of `user`, including the one making the request (log out
    /// everywhere, or after an administrator reset a password). Returns how many were ended.
    /// To keep the caller's own session, use [`logout_others`](Self::logout_others); after a
    /// password change by the user, [`change_password`](Self::change_password) does that
    /// itself.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn logout_all(&self, user: &UserId) -> Result<u64> {
        let count = self.inner.tokens.delete_for_user(user).await?;
        audit::sessions_revoked(user, count);
        Ok(count)
    }

    /// The live sessions of `user`, oldest first (for a "where you're logged in" page).
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>> {
        Ok(self.inner.tokens.list_for_user(user, self.now()).await?)
    }

    /// Ends every session of `session`'s user except `session` itself ("log out my other
    /// devices"), in one atomic store operation. Returns how many were ended. Unlike
    /// [`logout_all`](Self::logout_all), the caller stays logged in.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn logout_others(&self, session: &Session) -> Result<u64> {
        let count = self
            .inner
            .tokens
            .delete_for_user_except(&session.user_id, &session.id)
            .await?;
        audit::sessions_revoked(&session.user_id, count);
        Ok(count)
    }

    /// Ends one session of `user` by its public id (the "log out" button next to a device in
    /// a sessions list; ids come from [`session_views`](Self::session_views)). Returns whether
    /// a live session was ended.
    ///
    /// Only `user`'s own sessions can be ended: the id of another user's session is treated
    /// exactly as an unknown id (`false`, and nothing is deleted), so a client cannot end, or
    /// learn of, other users' sessions by guessing ids. Pass the id of the user the request's
    /// token belongs to, never one the client sent.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn revoke(&self, user: &UserId, session: &SessionId) -> Result<bool> {
        let tokens = &self.inner.tokens;
        // A session's user never changes and ids are never reused (create never overwrites),
        // so the owner read here is still the owner at the delete.
        let owned = match tokens.get(session, self.now()).await? {
            Some(found) => found.user_id == *user,
            None => false,
        };
        if !owned || !tokens.delete(session).await? {
            return Ok(false);
        }
        audit::session_revoked(user, session);
        Ok(true)
    }

    /// The live sessions of `current`'s user as [`SessionView`]s (safe to serialize to the
    /// client: no secret digest, no user id), oldest first, with `current` marked. Sessions
    /// past their idle timeout are left out.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn session_views(&self, current: &Session) -> Result<Vec<SessionView>> {
        let now = self.now();
        let sessions = self
            .inner
            .tokens
            .list_for_user(&current.user_id, now)
            .await?;
        Ok(sessions
            .iter()
            .filter(|s| !self.inner.policy.is_dead(s, now))
            .map(|s| SessionView::new(s, s.id == current.id))
            .collect())
    }
}
