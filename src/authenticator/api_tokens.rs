//! API tokens: creating, listing and revoking them, and the checks that keep them in their
//! place (scopes, and no account management). See [`crate::api_tokens`].

use std::time::Duration;

use super::{check_len, Authenticator, Subject};
use crate::api_tokens::{
    ApiTokenGrant, ApiTokenView, ApiTokens, CreatedApiToken, InvalidScope, Lifetime, NewApiToken,
    Scope, Scopes,
};
use crate::audit;
use crate::error::{Error, Field, Result, StoreError};
use crate::session::{ClientInfo, Session, SessionKind};
use crate::token::SessionId;
use crate::user::{UserId, UserStore};

impl<U: UserStore> Authenticator<U> {
    /// Creates an API token for the user signed in with `session`, which must be an
    /// interactive session (a token cannot mint tokens). Returns the token, to show its
    /// owner once, and its listing.
    ///
    /// The name is trimmed and must be 1 to [`ApiTokens::MAX_NAME_LEN`] bytes; every scope
    /// must be one the service declared in [`ApiTokens::new`]; the lifetime is the default
    /// unless asked, at most the configured maximum, "never" only where allowed. The user may
    /// hold at most [`ApiTokens::with_max_per_user`] live tokens: creations racing at the cap
    /// each count themselves in after their insert, so the cap holds under concurrency.
    ///
    /// # Errors
    /// - [`Error::InteractiveSessionRequired`] if `session` is an API token;
    /// - [`Error::ApiTokensNotEnabled`] without [`AuthenticatorBuilder::api_tokens`](crate::AuthenticatorBuilder::api_tokens);
    /// - [`Error::InvalidScope`] for a scope not in RFC 6749's syntax or not declared;
    /// - [`Error::InvalidApiTokenRequest`] for an empty name or a lifetime not allowed,
    ///   [`Error::InputTooLong`] for an over-long name;
    /// - [`Error::TooManyApiTokens`] at the cap;
    /// - [`Error::Store`] or [`Error::Randomness`] if the store or the OS RNG fails.
    pub async fn create_api_token(
        &self,
        session: &Session,
        request: NewApiToken,
    ) -> Result<CreatedApiToken> {
        self.require_interactive(session)?;
        let config = self.api_config()?;
        let name = request.name.trim();
        check_len(Field::Name, name, ApiTokens::MAX_NAME_LEN)?;
        if name.is_empty() {
            return Err(Error::InvalidApiTokenRequest(
                "the name is empty; name the token",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::InvalidApiTokenRequest(
                "the name has a control character; use printable text",
            ));
        }
        let scopes = Scopes::new(&request.scopes).map_err(Error::InvalidScope)?;
        if let Some(unknown) = scopes.first_missing_from(&config.known) {
            return Err(Error::InvalidScope(InvalidScope::new(
                unknown.as_str(),
                "this service does not know it",
            )));
        }
        let lifetime = match request.lifetime {
            Lifetime::Default => config.default_lifetime,
            Lifetime::For(asked) if asked > config.max_lifetime => {
                return Err(Error::InvalidApiTokenRequest(
                    "the lifetime is longer than this service allows; ask for a shorter one",
                ))
            }
            Lifetime::For(asked) => asked.max(Duration::from_secs(1)),
            Lifetime::Never if !config.allow_never => {
                return Err(Error::InvalidApiTokenRequest(
                    "this service does not allow tokens that never expire; give a lifetime",
                ))
            }
            Lifetime::Never => Duration::MAX,
        };
        let grant = ApiTokenGrant::new(name, scopes);
        let (token, mut created) = self
            .issue_api_token(session.user_id.clone(), grant, lifetime)
            .await?;
        if matches!(request.lifetime, Lifetime::Never) {
            created.expires_at = ApiTokens::NEVER;
        }
        self.enforce_api_token_cap(&created, config.max_per_user)
            .await?;
        let view = ApiTokenView::new(&created).ok_or(Error::InvalidToken)?;
        audit::api_token_created(&created.user_id, &created.id, &view.name, &view.scopes);
        Ok(CreatedApiToken {
            token,
            view,
            session: created,
        })
    }

    /// Stores a new API token session; retries the (negligible) id collision.
    async fn issue_api_token(
        &self,
        user: UserId,
        grant: ApiTokenGrant,
        lifetime: Duration,
    ) -> Result<(crate::token::Token, Session)> {
        let never = lifetime == Duration::MAX;
        let mut attempts = 0;
        loop {
            let token = self.inner.api_format.generate()?;
            let mut session = Session::new(
                &token,
                user.clone(),
                self.now(),
                lifetime,
                ClientInfo::none(),
            )
            .with_kind(SessionKind::ApiToken(grant.clone()));
            if never {
                session.expires_at = ApiTokens::NEVER;
            }
            match self.inner.tokens.create(&session).await {
                Ok(()) => return Ok((token, session)),
                Err(StoreError::Duplicate) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Counts the user's live API tokens after `new` was stored, and takes `new` back if
    /// that is over the cap.
    async fn enforce_api_token_cap(&self, new: &Session, max: usize) -> Result<()> {
        let live = self.live_api_tokens(&new.user_id).await?;
        if live.len() <= max {
            return Ok(());
        }
        self.inner.tokens.delete(&new.id).await?;
        Err(Error::TooManyApiTokens { max })
    }

    async fn live_api_tokens(&self, user: &UserId) -> Result<Vec<Session>> {
        let mut all = self.inner.tokens.list_for_user(user, self.now()).await?;
        all.retain(|s| s.kind.is_api_token());
        Ok(all)
    }

    /// The API tokens of `subject`'s user, oldest first, without secrets.
    ///
    /// # Errors
    /// [`Error::InteractiveSessionRequired`] if `subject` is an API token; [`Error::Store`]
    /// if the token store fails.
    pub async fn list_api_tokens<S: Subject + ?Sized>(
        &self,
        subject: &S,
    ) -> Result<Vec<ApiTokenView>> {
        self.require_interactive(subject)?;
        let live = self.live_api_tokens(subject.user_id()).await?;
        Ok(live.iter().filter_map(ApiTokenView::new).collect())
    }

    /// Revokes one API token of `subject`'s user by its id. Returns whether one was revoked:
    /// `false` for an unknown id, another user's token or a session's id, which are told
    /// apart by nothing (a client learns nothing of other users' tokens by guessing).
    ///
    /// Revocation is a delete in the token store: every instance refuses the token at once,
    /// or, behind a [`CachedTokenStore`](crate::store::CachedTokenStore), within its
    /// staleness bound (the revocation is pushed to the others).
    ///
    /// # Errors
    /// [`Error::InteractiveSessionRequired`] if `subject` is an API token; [`Error::Store`]
    /// if the token store fails.
    pub async fn revoke_api_token<S: Subject + ?Sized>(
        &self,
        subject: &S,
        id: &SessionId,
    ) -> Result<bool> {
        self.require_interactive(subject)?;
        let user = subject.user_id();
        let tokens = &self.inner.tokens;
        // A session's user and kind never change and ids are never reused, so what is read
        // here still holds at the delete.
        let owned = match tokens.get(id, self.now()).await? {
            Some(found) => found.user_id == *user && found.kind.is_api_token(),
            None => false,
        };
        if !owned || !tokens.delete(id).await? {
            return Ok(false);
        }
        audit::api_token_revoked(user, id, "owner");
        Ok(true)
    }

    /// Revokes every API token of `user` (all at once: "revoke all", or after a suspected
    /// leak). Returns how many were revoked. Tokens created while it runs may survive (they
    /// began after it did). Interactive sessions are left alone.
    ///
    /// Takes a bare [`UserId`]: a request-facing route should check
    /// [`require_interactive`](Self::require_interactive) first.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails.
    pub async fn revoke_all_api_tokens(&self, user: &UserId) -> Result<u64> {
        let mut revoked = 0;
        for token in self.live_api_tokens(user).await? {
            if self.inner.tokens.delete(&token.id).await? {
                revoked += 1;
                audit::api_token_revoked(user, &token.id, "all");
            }
        }
        Ok(revoked)
    }

    /// Checks that `session` holds `scope`: an API token must carry it; an interactive
    /// session holds every declared scope (or those of
    /// [`ApiTokens::interactive_scopes`]). Without an [`ApiTokens`] configuration,
    /// interactive sessions hold every scope.
    ///
    /// A refusal emits the audit event `api_token.scope_refused` (for tokens).
    ///
    /// # Errors
    /// [`Error::InsufficientScope`] naming `scope`, also when `scope` is not a valid scope
    /// at all.
    pub fn require_scope(&self, session: &Session, scope: &str) -> Result<()> {
        let held = match &session.kind {
            SessionKind::ApiToken(grant) => grant.scopes().contains(scope),
            SessionKind::Interactive => self
                .inner
                .api_tokens
                .as_ref()
                .is_none_or(|config| config.interactive_has(scope)),
        };
        if held {
            return Ok(());
        }
        // An invalid scope (a bug in the app) never matches; it is named with its invalid
        // characters replaced, so the challenge header stays well-formed.
        let scope = Scope::lossy(scope);
        if session.kind.is_api_token() {
            audit::api_token_scope_refused(&session.user_id, &session.id, scope.as_str());
        }
        Err(Error::InsufficientScope { scope })
    }

    /// Refuses an API token: `Ok` for a subject without a session (a bare [`UserId`]) or with
    /// an interactive one.
    ///
    /// # Errors
    /// [`Error::InteractiveSessionRequired`] if the subject's session is an API token.
    pub fn require_interactive<S: Subject + ?Sized>(&self, subject: &S) -> Result<()> {
        match subject.session() {
            Some(session) if session.kind.is_api_token() => Err(Error::InteractiveSessionRequired),
            _ => Ok(()),
        }
    }

    fn api_config(&self) -> Result<&ApiTokens> {
        self.inner
            .api_tokens
            .as_ref()
            .ok_or(Error::ApiTokensNotEnabled)
    }

    /// After a password change: revokes the user's API tokens if the service opted in.
    pub(super) async fn api_tokens_after_password_change(&self, user: &UserId) -> Result<()> {
        if self
            .inner
            .api_tokens
            .as_ref()
            .is_some_and(|c| c.revoke_on_password_change)
        {
            self.revoke_all_api_tokens(user).await?;
        }
        Ok(())
    }
}
