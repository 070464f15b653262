//! A user's sessions: listing them, ending one, the others, or all.

use super::Authenticator;
use crate::audit;
use crate::error::Result;
use crate::session::{Session, SessionView};
use crate::token::SessionId;
use crate::user::{UserId, UserStore};

use super::Subject;

#[cfg(doc)]
use crate::error::Error;

impl<U: UserStore> Authenticator<U> {
    /// Ends every session of `user`, including the one making the request, and every
    /// [API token](crate::api_tokens) of the user (after an administrator reset a password,
    /// or a suspected takeover). Returns how many were ended. For a "log out everywhere"
    /// button that should leave the user's scripts working, use
    /// [`logout_others`](Self::logout_others) and then [`logout`](Self::logout).
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

    /// The live sessions of `user`, oldest first, API tokens included (their
    /// [`kind`](Session::kind) tells them apart): the token store's
    /// [`list_for_user`](crate::TokenStore::list_for_user). For a "where you're logged in"
    /// page, use [`list_sessions`](Self::list_sessions), which shows interactive sessions
    /// only, safe to send to the client.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn list_for_user(&self, user: &UserId) -> Result<Vec<Session>> {
        Ok(self.inner.tokens.list_for_user(user, self.now()).await?)
    }

    /// The old name of [`list_for_user`](Self::list_for_user).
    ///
    /// # Errors
    /// As [`list_for_user`](Self::list_for_user).
    #[deprecated(since = "0.2.0", note = "renamed to `list_for_user`")]
    pub async fn sessions_of(&self, user: &UserId) -> Result<Vec<Session>> {
        self.list_for_user(user).await
    }

    /// Ends every session of `session`'s user except `session` itself ("log out my other
    /// devices"), in one atomic store operation. Returns how many were ended. Unlike
    /// [`logout_all`](Self::logout_all), the caller stays logged in, and the user's
    /// [API tokens](crate::api_tokens) keep working.
    ///
    /// # Errors
    /// [`Error::InteractiveSessionRequired`] if `session` is an API token; [`Error::Store`]
    /// if the token store fails.
    pub async fn logout_others(&self, session: &Session) -> Result<u64> {
        self.require_interactive(session)?;
        let count = self
            .inner
            .tokens
            .delete_for_user_except(&session.user_id, &session.id)
            .await?;
        audit::sessions_revoked(&session.user_id, count);
        Ok(count)
    }

    /// Ends one session of `user` by its public id (the "log out" button next to a device in
    /// a sessions list; ids come from [`list_sessions`](Self::list_sessions)). Returns whether
    /// a live session was ended.
    ///
    /// Only `subject`'s own interactive sessions can be ended: the id of another user's
    /// session (or of an API token: see [`revoke_api_token`](Self::revoke_api_token)) is
    /// treated exactly as an unknown id (`false`, and nothing is deleted), so a client cannot
    /// end, or learn of, other users' sessions by guessing ids. Pass the request's session
    /// (or the id of the user its token belongs to), never a user id the client sent.
    ///
    /// # Errors
    /// [`Error::InteractiveSessionRequired`] if `subject` is an API token; [`Error::Store`]
    /// if the token store fails.
    pub async fn revoke_session<S: Subject + ?Sized>(
        &self,
        subject: &S,
        session: &SessionId,
    ) -> Result<bool> {
        self.require_interactive(subject)?;
        let user = subject.user_id();
        let tokens = &self.inner.tokens;
        // A session's user and kind never change and ids are never reused (create never
        // overwrites), so what is read here still holds at the delete.
        let owned = match tokens.get(session, self.now()).await? {
            Some(found) => found.user_id == *user && found.kind.is_interactive(),
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
    /// past their idle timeout and API tokens ([`list_api_tokens`](Self::list_api_tokens) lists them)
    /// are left out.
    ///
    /// # Errors
    /// [`Error::InteractiveSessionRequired`] if `current` is an API token; [`Error::Store`]
    /// if the token store fails.
    pub async fn list_sessions(&self, current: &Session) -> Result<Vec<SessionView>> {
        self.require_interactive(current)?;
        let now = self.now();
        let sessions = self
            .inner
            .tokens
            .list_for_user(&current.user_id, now)
            .await?;
        Ok(sessions
            .iter()
            .filter(|s| s.kind.is_interactive() && !self.inner.policy.is_dead(s, now))
            .map(|s| SessionView::new(s, s.id == current.id))
            .collect())
    }

    /// The old name of [`revoke_session`](Self::revoke_session).
    ///
    /// # Errors
    /// As [`revoke_session`](Self::revoke_session).
    #[deprecated(since = "0.2.0", note = "renamed to `revoke_session`")]
    pub async fn revoke<S: Subject + ?Sized>(
        &self,
        subject: &S,
        session: &SessionId,
    ) -> Result<bool> {
        self.revoke_session(subject, session).await
    }

    /// The old name of [`list_sessions`](Self::list_sessions).
    ///
    /// # Errors
    /// As [`list_sessions`](Self::list_sessions).
    #[deprecated(since = "0.2.0", note = "renamed to `list_sessions`")]
    pub async fn session_views(&self, current: &Session) -> Result<Vec<SessionView>> {
        self.list_sessions(current).await
    }
}
