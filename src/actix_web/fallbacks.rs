//! Protocol-shaped answers for your own routes: 404 for an unknown path, 405 for a known path
//! called with another method, and [`configure`], keycard's whole set-up in one line.

use ::actix_web::web::{self, ServiceConfig};
use ::actix_web::{HttpRequest, Resource};

use super::config::request_rules;
use crate::http::{HttpAuth, Response};

/// Handler for unknown paths: 404 `Not found` in the protocol's shape. Install it as the app's
/// default service (`.default_service(web::to(keycard::actix_web::not_found))`);
/// [`configure`] does.
///
/// # Errors
/// 500 when no [`RequestRules`](crate::http::RequestRules) is registered (reported once in the
/// log).
pub async fn not_found(req: HttpRequest) -> Result<Response, ::actix_web::Error> {
    Ok(request_rules(&req)?.rejection(404, "Not found"))
}

/// Handler for a known path called with a method it has no route for: 405 `Method not
/// allowed` in the protocol's shape. Install it as a resource's default service, or build the
/// resource with [`resource`].
///
/// # Errors
/// 500 when no [`RequestRules`](crate::http::RequestRules) is registered (reported once in the
/// log).
pub async fn method_not_allowed(req: HttpRequest) -> Result<Response, ::actix_web::Error> {
    Ok(request_rules(&req)?.rejection(405, "Method not allowed"))
}

/// `web::resource(path)` whose methods without a route answer [`method_not_allowed`]: add
/// your routes to it as to any resource. actix-web's own answer would be an empty 405 (an
/// empty 404 for a path registered with `App::route`).
///
/// ```
/// use actix_web::web;
/// use keycard::actix_web::resource;
///
/// # fn routes(config: &mut web::ServiceConfig) {
/// // `GET /budgets` is served; `DELETE /budgets` is 405 in the protocol's shape.
/// config.service(resource("/budgets").route(web::get().to(|| async { "[]" })));
/// # }
/// ```
pub fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// keycard's set-up for an actix-web app, for `App::configure`: registers `http` (for the
/// authenticating extractors), its [`RequestRules`](crate::http::RequestRules) (for
/// [`ApiJson`](super::ApiJson), [`ApiForm`](super::ApiForm), [`ApiQuery`](super::ApiQuery) and the fallbacks)
/// and [`not_found`] as the default service. With [`resource`] for your routes, no answer is
/// actix-web's empty or plain-text default.
///
/// ```
/// use actix_web::{test, web, App};
/// use keycard::actix_web::{resource, ApiJson};
/// use keycard::http::{HttpAuth, StandardApi};
/// use keycard::{Authenticator, MemoryTokenStore, MemoryUserStore, UserRecord};
///
/// #[derive(serde::Deserialize)]
/// struct Note {
///     text: String,
/// }
///
/// async fn note(ApiJson(note): ApiJson<Note>) -> String {
///     note.text
/// }
///
/// actix_web::rt::System::new().block_on(async {
///     let auth = Authenticator::builder(MemoryUserStore::<UserRecord>::new(), MemoryTokenStore::new()).build();
///     let http = HttpAuth::new(auth, StandardApi);
///     // In a server: `HttpServer::new(move || App::new().configure(keycard::actix_web::configure(http.clone()))...)`.
///     let app = test::init_service(
///         App::new()
///             .configure(keycard::actix_web::configure(http.clone()))
///             .service(resource("/notes").route(web::post().to(note))),
///     )
///     .await;
///     let call = |req: test::TestRequest| test::call_service(&app, req.to_request());
///     let missing = call(test::TestRequest::get().uri("/nothing")).await;
///     assert_eq!(missing.status(), 404);
///     assert_eq!(missing.headers().get("content-type").unwrap(), "application/problem+json");
///     assert_eq!(call(test::TestRequest::get().uri("/notes")).await.status(), 405);
///     let text = call(test::TestRequest::post().uri("/notes").insert_header(("content-type", "text/plain"))).await;
///     assert_eq!(text.status(), 415);
///     let note = call(test::TestRequest::post().uri("/notes").set_json(serde_json::json!({"text": "hi"}))).await;
///     assert_eq!(test::read_body(note).await, "hi");
/// });
/// ```
pub fn configure<U: 'static>(
    http: HttpAuth<U>,
) -> impl Fn(&mut ServiceConfig) + Clone + Send + 'static {
    move |config: &mut ServiceConfig| {
        config
            .app_data(http.clone())
            .app_data(http.request_rules())
            .default_service(web::to(not_found));
    }
}
