//! The tower adapter: `AuthLayer` in front of an axum router and in front of a plain tower
//! service (as a hyper server would run it). Rejections never reach the inner service; a live
//! token reaches it with the session (and the user) in the request's extensions.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::support::adapter::{Fixture, EMAIL, PASSWORD};
use keycard::tower::AuthLayer;
use keycard::{Authenticated, ClientInfo, Session, UserRecord};
use tower::{Layer, ServiceExt};

/// A plain service: answers with who the layer let in, and counts its calls.
fn plain_service(
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    tower::service_fn(move |request: http::Request<String>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let session = request.extensions().get::<Session>().cloned();
        let user = request
            .extensions()
            .get::<Authenticated<UserRecord>>()
            .map(|me| me.user.email.clone());
        async move {
            let who = match (session, user) {
                (Some(s), Some(email)) => format!("{} {email}", s.user_id),
                (Some(s), None) => format!("{} (session only)", s.user_id),
                (None, _) => "nobody".to_owned(),
            };
            Ok::<_, Infallible>(http::Response::new(who))
        }
    })
}

fn request(token: Option<&str>) -> http::Request<String> {
    let mut builder = http::Request::builder().uri("/private");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(String::new()).expect("a request")
}

#[tokio::test]
async fn in_front_of_a_plain_service() {
    let fixture = Fixture::new().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let service = AuthLayer::new(fixture.http()).layer(plain_service(Arc::clone(&calls)));

    let missing = service
        .clone()
        .oneshot(request(None))
        .await
        .expect("infallible");
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_eq!(missing.headers()["cache-control"], "no-store");
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = serde_json::from_str(missing.body()).expect("JSON");
    assert_eq!(body["code"], "missing_token");

    let bad = service
        .clone()
        .oneshot(request(Some("garbage")))
        .await
        .expect("infallible");
    assert_eq!(bad.status(), 401);
    assert!(bad.headers()["www-authenticate"]
        .to_str()
        .expect("text")
        .contains(r#"error="invalid_token""#));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "rejections never reach the service"
    );

    let login = fixture
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let token = login.token.expose_secret();
    let ok = service
        .clone()
        .oneshot(request(Some(token)))
        .await
        .expect("infallible");
    assert_eq!(
        (ok.status().as_u16(), ok.body().as_str()),
        (200, "7 ann@example.com")
    );

    let session_only =
        AuthLayer::session_only(fixture.http()).layer(plain_service(Arc::clone(&calls)));
    let ok = session_only
        .oneshot(request(Some(token)))
        .await
        .expect("infallible");
    assert_eq!(ok.body(), "7 (session only)");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    fixture.auth.logout(token).await.expect("logout");
    let dead = service
        .oneshot(request(Some(token)))
        .await
        .expect("infallible");
    assert_eq!(dead.status(), 401);
}

#[tokio::test]
async fn a_store_outage_is_503_and_never_reaches_the_service() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = AuthLayer::new(crate::support::adapter::http_over_down_store())
        .layer(plain_service(Arc::clone(&calls)));
    let forged = keycard::Token::generate().expect("randomness");
    let res = service
        .oneshot(request(Some(forged.expose_secret())))
        .await
        .expect("infallible");
    assert_eq!(res.status(), 503);
    assert!(!res.body().contains("refused"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn in_front_of_an_axum_router() {
    use axum::routing::get;
    use axum::{Extension, Router};

    async fn me(Extension(me): Extension<Authenticated<UserRecord>>) -> String {
        me.user.email
    }

    let fixture = Fixture::new().await;
    let app: Router = Router::new()
        .route("/private", get(me))
        .layer(AuthLayer::new(fixture.http()));
    let send = |token: Option<String>| {
        let app = app.clone();
        async move {
            let mut builder = http::Request::builder().uri("/private");
            if let Some(token) = token {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            let request = builder.body(axum::body::Body::empty()).expect("a request");
            let response = app.oneshot(request).await.expect("infallible");
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().expect("text").to_owned());
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
            (
                status,
                challenge,
                String::from_utf8(body.to_vec()).expect("UTF-8"),
            )
        }
    };
    let (status, challenge, _) = send(None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));
    let login = fixture
        .auth
        .login(EMAIL, PASSWORD, ClientInfo::none())
        .await
        .expect("login");
    let (status, _, body) = send(Some(login.token.expose_secret().to_owned())).await;
    assert_eq!((status, body.as_str()), (200, EMAIL));
}
