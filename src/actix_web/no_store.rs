//! [`NoStore`]: `Cache-Control: no-store` on the answers of the routes it wraps.

use std::future::{ready, Ready};

use ::actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use ::actix_web::http::header::{HeaderValue, CACHE_CONTROL};

use super::LocalFuture;

/// Middleware that adds `Cache-Control: no-store` to every answer of the app, scope or resource
/// it wraps, unless the handler set a `Cache-Control` of its own. Wrap your authenticated
/// routes in it, so that no browser or shared cache keeps a user's data after logout:
/// keycard's own answers (logins, rejections) already carry it.
///
/// ```
/// use actix_web::{test, web, App};
/// use keycard::actix_web::NoStore;
///
/// actix_web::rt::System::new().block_on(async {
///     let app = test::init_service(
///         App::new().service(
///             web::scope("/api")
///                 .wrap(NoStore)
///                 .route("/budgets", web::get().to(|| async { "[]" })),
///         ),
///     )
///     .await;
///     let reply = test::call_service(&app, test::TestRequest::get().uri("/api/budgets").to_request()).await;
///     assert_eq!(reply.headers().get("cache-control").unwrap(), "no-store");
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStore;

/// The service [`NoStore`] wraps around yours.
#[derive(Debug)]
pub struct NoStoreService<S> {
    inner: S,
}

impl<S, B> Transform<S, ServiceRequest> for NoStore
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = ::actix_web::Error>,
    S::Future: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = ::actix_web::Error;
    type Transform = NoStoreService<S>;
    type InitError = ();
    type Future = Ready<Result<NoStoreService<S>, ()>>;

    fn new_transform(&self, inner: S) -> Self::Future {
        ready(Ok(NoStoreService { inner }))
    }
}

impl<S, B> Service<ServiceRequest> for NoStoreService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = ::actix_web::Error>,
    S::Future: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = ::actix_web::Error;
    type Future = LocalFuture<ServiceResponse<B>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let headers = response.headers_mut();
            if !headers.contains_key(CACHE_CONTROL) {
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
            Ok(response)
        })
    }
}
