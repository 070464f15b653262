//! Security hardening of the actix-web adapter over real HTTP: the `NoStore` middleware adds
//! `Cache-Control: no-store` to the app's own answers and keeps one a handler set, and the
//! `Client` extractor is the request's peer, as login computes it.

use crate::support::adapter::{Fixture, EMAIL, PASSWORD};
use crate::support::server::Server;
use actix_web::{web, HttpResponse};
use keycard::actix_web::{Client, CurrentUser, NoStore};
use keycard::http::{HttpAuth, TrustedProxies};
use keycard::{ClientInfo, UserRecord};
use serde_json::json;

async fn data(me: CurrentUser<UserRecord>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "email": me.user.email }))
}

async fn cached(me: CurrentUser<UserRecord>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "private, max-age=60"))
        .json(json!({ "email": me.user.email }))
}

async fn client(client: Client<UserRecord>) -> String {
    client
        .into_inner()
        .ip
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string())
}

/// `/api/*` behind `NoStore`, `/public` and `/client` outside it.
fn serve(http: HttpAuth<UserRecord>) -> Server {
    Server::start_actix(move |config: &mut web::ServiceConfig| {
        config
            .app_data(http.clone())
            .service(
                web::scope("/api")
                    .wrap(NoStore)
                    .route("/data", web::get().to(data))
                    .route("/cached", web::get().to(cached)),
            )
            .route("/public", web::get().to(|| async { "hello" }))
            .route("/client", web::get().to(client));
    })
}

#[tokio::test]
async fn no_store_covers_the_scope_it_wraps_and_keeps_a_handlers_own_cache_control() {
    let fixture = Fixture::new().await;
    let server = serve(fixture.http());
    let token = fixture
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let token = token.token.expose_secret();

    let ok =
        crate::support::server::send(server.request("GET", "/api/data").bearer_auth(token)).await;
    assert_eq!(ok.pair(), (200, r#"{"email":"ann@example.com"}"#));
    assert_eq!(ok.header("cache-control"), Some("no-store"));

    let own =
        crate::support::server::send(server.request("GET", "/api/cached").bearer_auth(token)).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.header("cache-control"), Some("private, max-age=60"));
    assert_eq!(own.headers.get_all("cache-control").iter().count(), 1);

    let refused = server.call("GET", "/api/data").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    assert_eq!(refused.headers.get_all("cache-control").iter().count(), 1);

    let public = server.call("GET", "/public").await;
    assert_eq!(public.pair(), (200, "hello"));
    assert_eq!(
        public.header("cache-control"),
        None,
        "only the wrapped scope"
    );
}

#[tokio::test]
async fn client_is_the_request_peer_as_login_computes_it() {
    let fixture = Fixture::new().await;
    let direct = serve(fixture.http());
    assert_eq!(
        direct.call("GET", "/client").await.pair(),
        (200, "127.0.0.1")
    );
    let source = crate::support::server::client_ip(11);
    let reply = crate::support::server::send(
        crate::support::server::client_from(source)
            .get(direct.url("/client"))
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(reply.pair(), (200, source.to_string().as_str()));

    let behind = serve(fixture.http().with_trusted_proxies(TrustedProxies::new([
        "127.0.0.0/8".parse().expect("a network"),
    ])));
    let reply = crate::support::server::send(
        behind
            .request("GET", "/client")
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(reply.pair(), (200, "203.0.113.9"));
}
