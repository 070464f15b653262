//! Bodies and query strings: keycard's body limit for every extractor that reads a body, and
//! [`ApiJson`], [`ApiForm`] and [`ApiQuery`], which reject in the protocol's shape with axum's statuses
//! and messages.

use ::actix_web::body::{to_bytes_limited, BodyStream};
use ::actix_web::dev::Payload;
use ::actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use ::actix_web::http::Method;
use ::actix_web::web::Bytes;
use ::actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::config::request_rules;
use super::{AuthRejection, LocalFuture};
use crate::http::{body, Rejection};

/// The body's bytes, at most `limit` of them (see
/// [`HttpAuth::with_body_limit`](crate::http::HttpAuth::with_body_limit)): 413 over it,
/// whatever actix-web's `PayloadConfig` says.
pub(super) async fn body_bytes(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<Bytes, Rejection> {
    let length = req.headers().get(CONTENT_LENGTH);
    body::check_length(length.and_then(|value| value.to_str().ok()), limit)?;
    match to_bytes_limited(BodyStream::new(payload), limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(body::unreadable(error)),
        Err(_) => Err(body::too_large()),
    }
}

/// The request's `Content-Type`, as text.
fn content_type(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
}

/// Like [`actix_web::web::Json`](::actix_web::web::Json), but read like axum's `Json` and
/// rejected in the protocol's shape: 415 without a JSON `Content-Type` (`application/json` or
/// `application/*+json`), 413 over the body limit, 400 for malformed JSON, 422 for JSON that
/// does not fit `T`. Needs [`RequestRules`](crate::http::RequestRules) in the app data (see
/// [`configure`](super::configure)).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// Like [`actix_web::web::Form`](::actix_web::web::Form), but read like axum's `Form` and
/// rejected in the protocol's shape: a `GET` reads the query (400 if it does not fit `T`);
/// other methods read an `application/x-www-form-urlencoded` body (415 for another
/// `Content-Type`, 413 over the body limit, 422 if it does not fit `T`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiForm<T>(pub T);

/// Like [`actix_web::web::Query`](::actix_web::web::Query), but rejected in the protocol's
/// shape: 400 for a query string that does not fit `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let rules = request_rules(&req)?;
            let outcome = async {
                if !body::is_json_content_type(content_type(&req)) {
                    return Err(body::not_json());
                }
                let bytes = body_bytes(&req, payload, rules.body_limit()).await?;
                body::json(&bytes)
            };
            outcome
                .await
                .map(Self)
                .map_err(|rejection| AuthRejection::with_rules(&rules, rejection).into())
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiForm<T> {
    type Error = ::actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let rules = request_rules(&req)?;
            let outcome = async {
                if req.method() == Method::GET {
                    return body::form(req.query_string().as_bytes(), true);
                }
                if !body::is_form_content_type(content_type(&req)) {
                    return Err(body::not_a_form());
                }
                let bytes = body_bytes(&req, payload, rules.body_limit()).await?;
                body::form(&bytes, req.method() == Method::HEAD)
            };
            outcome
                .await
                .map(Self)
                .map_err(|rejection| AuthRejection::with_rules(&rules, rejection).into())
        })
    }
}

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ::actix_web::Error;
    type Future = std::future::Ready<Result<Self, ::actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(request_rules(req).and_then(|rules| {
            body::query(req.query_string())
                .map(Self)
                .map_err(|rejection| AuthRejection::with_rules(&rules, rejection).into())
        }))
    }
}
