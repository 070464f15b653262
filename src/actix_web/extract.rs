//! The authenticating extractors: `CurrentUser`, `CurrentSession`, `SecondFactorSession`,
//! `RequireScope`, `InteractiveSession`, `Client`, `LoginRequest` and `LogoutRequest`, all
//! reading the registered `HttpAuth<U>`.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::actix_web::dev::Payload;
use ::actix_web::http::header::HeaderMap;
use ::actix_web::http::Method;
use ::actix_web::web::Bytes;
use ::actix_web::{FromRequest, HttpRequest};

use super::body::body_bytes;
use super::config::{http_auth, registered_http_auth};
use super::{AuthRejection, LocalFuture};
use crate::api_tokens::RequiredScope;
use crate::http::{
    CurrentSession, CurrentUser, HttpAuth, InteractiveSession, LoginRequest, LogoutRequest,
    Rejection, RequestHead, RequireScope, SecondFactorSession,
};
use crate::session::ClientInfo;
use crate::user::User;

/// An actix-web request as the neutral layer reads it: the parts keycard reads, borrowed
/// one by one so that it is `Sync` (an `HttpRequest` is not), as the lazy client address of
/// a validation needs.
pub(super) struct Head<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    query: &'a str,
    peer: Option<IpAddr>,
}

impl<'a> Head<'a> {
    /// The head of `req`.
    pub(super) fn new(req: &'a HttpRequest) -> Self {
        Self {
            method: req.method(),
            headers: req.headers(),
            query: req.query_string(),
            peer: req.peer_addr().map(|addr| addr.ip()),
        }
    }
}

/// A header value's bytes as text when they are ASCII: what `HeaderValue::to_str` accepts
/// for every value a server parses (a parsed value never holds a byte below 0x20 other than
/// tab, nor 0x7f), checked a word at a time: actix-web's `to_str` checks a byte at a time,
/// 800 instructions for a bearer token read on every request.
#[inline]
fn header_text(value: &[u8]) -> Option<&str> {
    match value.is_ascii() {
        true => std::str::from_utf8(value).ok(),
        false => None,
    }
}

impl RequestHead for Head<'_> {
    fn header_values<'a>(&'a self, name: &str) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        Box::new(
            self.headers
                .get_all(name)
                .filter_map(|value| header_text(value.as_bytes())),
        )
    }

    /// Without boxing an iterator: the extractors read `Authorization` on every request.
    fn header(&self, name: &str) -> Option<&str> {
        // The one header read on every request, by its constant name: no name parse.
        let mut values = match name {
            "authorization" => self
                .headers
                .get_all(::actix_web::http::header::AUTHORIZATION),
            _ => self.headers.get_all(name),
        };
        values.find_map(|value| header_text(value.as_bytes()))
    }

    fn method(&self) -> &str {
        self.method.as_str()
    }

    fn query(&self) -> Option<&str> {
        Some(self.query).filter(|q| !q.is_empty())
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.peer
    }
}

/// The boxed future of an extractor whose `step` may need I/O: `step` runs on the
/// registered [`HttpAuth`] and the request's head, and a rejection is rendered in the
/// protocol's shape.
fn boxed_extract<U: 'static, T: 'static>(
    req: &HttpRequest,
    step: impl AsyncFnOnce(&HttpAuth<U>, &Head<'_>) -> Result<T, Rejection> + 'static,
) -> LocalFuture<T> {
    let req = req.clone();
    Box::pin(async move {
        let http = http_auth::<U>(&req)?;
        let outcome = step(&http, &Head::new(&req)).await;
        outcome.map_err(|rejection| AuthRejection::new(&http, rejection).into())
    })
}

impl<U: User + Clone + 'static> FromRequest for CurrentUser<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        boxed_extract(req, async |http: &HttpAuth<U>, head: &Head<'_>| {
            http.current_user(head).await
        })
    }
}

impl<U: User + Clone + 'static> FromRequest for CurrentSession<U> {
    type Error = ::actix_web::Error;
    type Future = CurrentSessionFuture<U>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        CurrentSessionFuture {
            state: Extraction::Start(req.clone()),
        }
    }
}

/// The future of a [`CurrentSession`]'s extraction, as actix-web's
/// [`FromRequest::Future`]: you only meet it in that role.
///
/// It validates when first polled. Most validates need no I/O (a memory store, a cached
/// session not due for a touch) and are answered by that first poll, without boxing a
/// future; the others continue in a boxed one. Until then it holds only a handle to the
/// request, so actix-web's extraction machinery, which moves the future several times
/// before polling it, moves a pointer rather than a session.
#[must_use = "a future does nothing unless polled"]
pub struct CurrentSessionFuture<U> {
    state: Extraction<U>,
}

/// Where a [`CurrentSessionFuture`] is.
enum Extraction<U> {
    /// Not polled yet.
    Start(HttpRequest),
    /// The validate needs I/O: waiting for it.
    Waiting(LocalFuture<CurrentSession<U>>),
    /// Answered.
    Done,
}

impl<U: User + Clone + 'static> Future for CurrentSessionFuture<U> {
    type Output = Result<CurrentSession<U>, ::actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Extraction::Start(req) = &this.state {
            if let Some(http) = registered_http_auth::<U>(req) {
                let reject =
                    |http: &HttpAuth<U>, rejection| AuthRejection::new(http, rejection).into();
                let answer = http.current_session_now(&Head::new(req), reject);
                if answer.is_ready() {
                    this.state = Extraction::Done;
                    return answer;
                }
            }
            let waiting = boxed_extract(req, async |http: &HttpAuth<U>, head: &Head<'_>| {
                http.current_session_async(head).await
            });
            this.state = Extraction::Waiting(waiting);
        }
        let Extraction::Waiting(waiting) = &mut this.state else {
            panic!("a CurrentSessionFuture was polled after it completed");
        };
        let outcome = std::task::ready!(waiting.as_mut().poll(cx));
        this.state = Extraction::Done;
        Poll::Ready(outcome)
    }
}

impl<U> fmt::Debug for CurrentSessionFuture<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            Extraction::Start(_) => "start",
            Extraction::Waiting(_) => "waiting",
            Extraction::Done => "done",
        };
        f.debug_struct("CurrentSessionFuture")
            .field("state", &state)
            .finish()
    }
}

impl<U: User + Clone + 'static> FromRequest for SecondFactorSession<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        boxed_extract(req, async |http: &HttpAuth<U>, head: &Head<'_>| {
            http.second_factor_session(head).await
        })
    }
}

impl<U: User + Clone + 'static, S: RequiredScope> FromRequest for RequireScope<U, S> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        boxed_extract(req, async |http: &HttpAuth<U>, head: &Head<'_>| {
            http.require_scope_of::<S>(head).await
        })
    }
}

impl<U: User + Clone + 'static> FromRequest for InteractiveSession<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        boxed_extract(req, async |http: &HttpAuth<U>, head: &Head<'_>| {
            http.interactive_session(head).await
        })
    }
}

/// The client of the request being handled: its address and user agent, computed exactly as
/// [`LoginRequest`] does ([`HttpAuth::client_of`](crate::http::HttpAuth::client_of): the connection's peer, or the address your
/// [trusted proxies](crate::http::TrustedProxies) forwarded). Fails (500) only when no
/// [`HttpAuth<U>`](crate::http::HttpAuth) is registered.
///
/// Handlers that re-verify a password (`verify_password`, `reauthenticate`,
/// `change_password`) pass this, the *request's* client, to the core, not the address the
/// session logged in from, so throttling and audit events name whoever is asking now.
///
/// ```
/// use keycard::actix_web::{Client, CurrentSession};
/// use keycard::UserRecord;
///
/// async fn whoami(me: CurrentSession<UserRecord>, client: Client<UserRecord>) -> String {
///     let ip = client.info.ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
///     format!("user {} from {ip}", me.session.user_id)
/// }
/// ```
pub struct Client<U> {
    /// The client's address and user agent.
    pub info: ClientInfo,
    user: PhantomData<fn() -> U>,
}

impl<U> Client<U> {
    /// The client's address and user agent.
    pub fn into_inner(self) -> ClientInfo {
        self.info
    }
}

impl<U> Deref for Client<U> {
    type Target = ClientInfo;

    fn deref(&self) -> &ClientInfo {
        &self.info
    }
}

impl<U> Clone for Client<U> {
    fn clone(&self) -> Self {
        Self {
            info: self.info.clone(),
            user: PhantomData,
        }
    }
}

impl<U> fmt::Debug for Client<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Client").field(&self.info).finish()
    }
}

impl<U: 'static> FromRequest for Client<U> {
    type Error = ::actix_web::Error;
    type Future = Ready<Result<Self, ::actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(http_auth::<U>(req).map(|http| Self {
            info: http.client_of(&Head::new(req)),
            user: PhantomData,
        }))
    }
}

impl<U: User + Clone + 'static> FromRequest for LoginRequest<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let http = http_auth::<U>(&req)?;
            let outcome = async {
                http.check_login_origin(&Head::new(&req))?;
                let bytes = body_bytes(&req, payload, http.body_limit()).await?;
                http.login_request(&Head::new(&req), &bytes)
            };
            outcome
                .await
                .map_err(|rejection| AuthRejection::new(&http, rejection).into())
        })
    }
}

impl<U: User + Clone + 'static> FromRequest for LogoutRequest<U> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let http = http_auth::<U>(&req)?;
            let outcome = async {
                let bytes = if http.logout_needs_body(&Head::new(&req)) {
                    body_bytes(&req, payload, http.body_limit()).await?
                } else {
                    Bytes::new()
                };
                http.logout_request(&Head::new(&req), &bytes)
            };
            outcome
                .await
                .map_err(|rejection| AuthRejection::new(&http, rejection).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use ::actix_web::http::header::HeaderValue;

    use super::header_text;

    /// The word-at-a-time check accepts exactly what `HeaderValue::to_str` does.
    #[test]
    fn header_text_agrees_with_to_str() {
        let values = [
            &b"Bearer abc.def"[..],
            b"",
            b"tab\there",
            b"caf\xc3\xa9",
            b"obs\xff text",
            b"~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./",
        ];
        for bytes in values {
            let value = HeaderValue::from_bytes(bytes).expect("a parsable value");
            assert_eq!(
                header_text(value.as_bytes()),
                value.to_str().ok(),
                "{bytes:?}"
            );
        }
    }
}
