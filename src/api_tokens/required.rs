//! [`RequiredScope`]: a scope named by a type, for the adapters' `RequireScope` extractors.

/// A scope a route needs, named by a type so that an extractor can carry it:
/// `RequireScope<User, NotesWrite>` (`keycard::axum::RequireScope`,
/// `keycard::actix_web::RequireScope`) validates the request's token, then refuses a session
/// without [`SCOPE`](Self::SCOPE) with 403 and, in
/// [`StandardApi`](crate::http::StandardApi), `WWW-Authenticate: Bearer
/// error="insufficient_scope", error_description="...", scope="notes:write"` (RFC 6750
/// §3.1). Scopes are checked by the library, not by each handler: a handler that takes the
/// extractor never runs for a token without the scope.
///
/// An [API token](crate::api_tokens) holds the scopes it was created with; an interactive
/// session (a login) holds every scope the service declared, unless it narrowed them with
/// [`ApiTokens::interactive_scopes`](crate::api_tokens::ApiTokens::interactive_scopes).
///
/// `SCOPE` should be one of the scopes given to
/// [`ApiTokens::new`](crate::api_tokens::ApiTokens::new): no token can hold another, so a
/// route needing one is refused to every token.
///
/// ```
/// use keycard::api_tokens::RequiredScope;
///
/// /// Writing notes.
/// struct NotesWrite;
///
/// impl RequiredScope for NotesWrite {
///     const SCOPE: &'static str = "notes:write";
/// }
/// # assert_eq!(NotesWrite::SCOPE, "notes:write");
/// ```
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope, in RFC 6749's syntax (`notes:write`).
    const SCOPE: &'static str;
}
