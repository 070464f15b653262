//! The actix-web adapter: the adapter contract (every rejection, `Option`, headers, outage)
//! through actix-web's real service pipeline, and configuration through `web::Data` as well as
//! plain `app_data`.

use crate::support::adapter::{Client, Fixture, Req, Res};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{test, web, App};
use async_trait::async_trait;
use keycard::actix_web::{CurrentSession, CurrentUser, LoginRequest, LogoutRequest};
use keycard::http::Response;
use keycard::UserRecord;

async fn login(request: LoginRequest<UserRecord>) -> Response {
    request.login().await
}

async fn logout(request: LogoutRequest<UserRecord>) -> Response {
    request.logout().await
}

async fn me(me: CurrentUser<UserRecord>) -> String {
    me.user.email
}

async fn session(s: CurrentSession<UserRecord>) -> String {
    s.session.user_id.to_string()
}

async fn maybe(me: Option<CurrentUser<UserRecord>>) -> String {
    me.map_or_else(|| "anonymous".to_owned(), |me| me.user.email)
}

async fn maybe_session(s: Option<CurrentSession<UserRecord>>) -> String {
    s.map_or_else(|| "anonymous".to_owned(), |s| s.session.user_id.to_string())
}

/// The contract app's routes, configured with `app_data`.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::post().to(login))
        .route("/logout", web::delete().to(logout))
        .route("/me", web::get().to(me))
        .route("/me", web::post().to(me))
        .route("/session", web::get().to(session))
        .route("/maybe", web::get().to(maybe))
        .route("/maybe_session", web::get().to(maybe_session));
}

/// Sends through an initialized actix-web service, in process.
struct Actix<S>(S);

#[async_trait(?Send)]
impl<S> Client for Actix<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
{
    async fn send(&self, req: Req) -> Res {
        let method = actix_web::http::Method::from_bytes(req.method.as_bytes()).expect("method");
        let mut request = test::TestRequest::default()
            .method(method)
            .uri(&req.path)
            .set_payload(req.body);
        for (name, value) in req.headers {
            request = request.insert_header((name, value));
        }
        let response = test::call_service(&self.0, request.to_request()).await;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().expect("text").to_owned()))
            .collect();
        let body = test::read_body(response).await;
        Res {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).expect("UTF-8"),
        }
    }
}

/// Runs `test` inside an actix system, as actix-web's own servers do.
fn in_actix<F: std::future::Future<Output = ()>>(test: F) {
    actix_web::rt::System::new().block_on(test);
}

#[test]
fn contract_validation() {
    in_actix(async {
        let fixture = Fixture::new().await;
        let app = test::init_service(App::new().app_data(fixture.http()).configure(routes)).await;
        crate::support::adapter::validation_contract(&fixture, &Actix(app)).await;
    });
}

#[test]
fn contract_optional() {
    in_actix(async {
        let fixture = Fixture::new().await;
        let app = test::init_service(App::new().app_data(fixture.http()).configure(routes)).await;
        // actix-web's `Option` extractor is `None` whenever the inner one fails.
        crate::support::adapter::optional_contract(&Actix(app), false).await;
    });
}

#[test]
fn contract_login_logout_with_web_data() {
    in_actix(async {
        let fixture = Fixture::new().await;
        let data = web::Data::new(fixture.http());
        let app = test::init_service(App::new().app_data(data).configure(routes)).await;
        crate::support::adapter::login_logout_contract(&Actix(app)).await;
    });
}

#[test]
fn contract_cookie() {
    in_actix(async {
        let fixture = Fixture::new().await;
        let http = crate::support::adapter::http_with_cookie(&fixture);
        let app = test::init_service(App::new().app_data(http).configure(routes)).await;
        crate::support::adapter::cookie_contract(&Actix(app)).await;
    });
}

#[test]
fn contract_outage() {
    in_actix(async {
        let http = crate::support::adapter::http_over_down_store();
        let app = test::init_service(App::new().app_data(http).configure(routes)).await;
        crate::support::adapter::outage_contract(&Actix(app)).await;
    });
}

#[test]
fn a_missing_configuration_is_a_500_not_a_pass() {
    in_actix(async {
        let app = test::init_service(App::new().configure(routes)).await;
        let res = Actix(app).send(Req::get("/me").bearer("anything")).await;
        assert_eq!(res.status, 500, "{res:?}");
    });
}
