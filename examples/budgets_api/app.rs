//! The budgets API (the sessions document: `POST /api/sessions`,
//! `PATCH /api/sessions/sign_out?token=`, token-protected budgets and expenses), without any
//! web framework: the authenticator's configuration, the demo user and data, and the answers
//! of the protected resources. `axum_routes.rs` and `actix_routes.rs` only route requests
//! here; the binaries and the tests in `tests/http_budgets.rs` share all of it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keycard::http::{HttpAuth, Response, SessionsApi, TokenSource, TrustedProxies};
use keycard::{Authenticator, AuthenticatorBuilder, TokenStore, UserRecord, UserStore};
use serde::Deserialize;
use serde_json::{json, Value};

/// The user store the app runs on, whatever the backend.
pub(crate) type Users = Arc<dyn UserStore<User = UserRecord>>;
/// The authenticator the app runs on.
pub(crate) type Auth = Authenticator<Users>;

/// The document's user.
pub(crate) const DEMO_EMAIL: &str = "bondhansarker100@gmail.com";
/// The document's password.
pub(crate) const DEMO_PASSWORD: &str = "111111";
/// Largest request body keycard's extractors read ([`HttpAuth::with_body_limit`], the same on
/// axum and actix-web); larger ones get a 413 in the protocol's shape. keycard's default, made
/// explicit: far above any login (the core caps emails at 320 and passwords at 1024 bytes),
/// far below anything that could hurt.
pub(crate) const BODY_LIMIT: usize = keycard::http::DEFAULT_BODY_LIMIT;

/// An authenticator builder configured for this protocol: sessions last `session_ttl`, and an
/// unknown email is reported as such.
pub(crate) fn authenticator(
    users: Users,
    tokens: Arc<dyn TokenStore>,
    session_ttl: Duration,
) -> AuthenticatorBuilder<Users> {
    Authenticator::builder(users, tokens)
        .session_ttl(session_ttl)
        // The document answers an unknown email with "User not found", so this server has to
        // tell unknown emails from wrong passwords. The library default is off because that
        // answer lets anyone probe which emails have accounts; turn it on only when a
        // protocol you must reproduce requires it.
        .reveal_unknown_email(true)
}

/// The document's user, with its password hashed by `auth`.
///
/// # Errors
/// If hashing fails.
pub(crate) async fn demo_user(auth: &Auth) -> keycard::Result<UserRecord> {
    let hash = auth.hash_password(DEMO_PASSWORD).await?;
    Ok(UserRecord::new(1_i64, DEMO_EMAIL, hash).with_name("Bondhan", "Sarker"))
}

/// The app: its HTTP edge (the sessions protocol, `?token=` or `Authorization: Bearer`) and
/// the demo data. Cloning is cheap; every framework's routes hold one.
#[derive(Clone, Debug)]
pub(crate) struct Api {
    http: HttpAuth<UserRecord>,
    demo: Arc<HashMap<String, Demo>>,
}

impl Api {
    /// The app over `auth`; forwarding headers are believed from `proxies` only.
    pub(crate) fn new(auth: Auth, proxies: TrustedProxies) -> Self {
        Self {
            http: HttpAuth::new(auth, SessionsApi)
                .with_token_source(TokenSource::sessions_api())
                .with_trusted_proxies(proxies)
                .with_body_limit(BODY_LIMIT),
            demo: Arc::new(demo_data()),
        }
    }

    /// The HTTP edge the keycard extractors read.
    pub(crate) fn http(&self) -> &HttpAuth<UserRecord> {
        &self.http
    }

    /// `GET /api/budgets`: the user's budgets.
    pub(crate) fn budgets(&self, user: &UserRecord) -> Response {
        Response::json(200, &json!({ "budgets": self.demo_of(user).0 }))
    }

    /// `GET /api/expenses`: the user's expenses.
    pub(crate) fn expenses(&self, user: &UserRecord) -> Response {
        Response::json(200, &json!({ "expenses": self.demo_of(user).1 }))
    }

    /// `GET /api/budgets/show_all_expenses.json?month=&year=`: one month's expenses and their
    /// total. `query` is the raw query string; a missing or unreadable `month` or `year` is a
    /// 400, a month outside 1..=12 a 422.
    pub(crate) fn show_all_expenses(&self, user: &UserRecord, query: &str) -> Response {
        let period: Period = match serde_urlencoded::from_str(query) {
            Ok(period) => period,
            Err(error) => {
                return self.rejection(400, &format!("Failed to deserialize query string: {error}"))
            }
        };
        if !(1..=12).contains(&period.month) {
            return self.rejection(422, "Month must be between 1 and 12");
        }
        let expenses: Vec<&Value> = self
            .demo_of(user)
            .1
            .iter()
            .filter(|e| e["month"] == period.month && e["year"] == period.year)
            .collect();
        let total: f64 = expenses.iter().filter_map(|e| e["amount"].as_f64()).sum();
        Response::json(
            200,
            &json!({
                "expenses": expenses,
                "month": period.month,
                "total": total,
                "year": period.year,
            }),
        )
    }

    /// An error in the protocol's shape (`{"message": ...}`), for unknown routes, wrong
    /// methods and unreadable requests.
    pub(crate) fn rejection(&self, status: u16, message: &str) -> Response {
        self.http.protocol().rejection(status, message)
    }

    /// The user's budgets and expenses; none for users without demo data.
    fn demo_of(&self, user: &UserRecord) -> (&[Value], &[Value]) {
        self.demo
            .get(&user.email)
            .map_or((&[][..], &[][..]), |d| (&d.budgets, &d.expenses))
    }
}

#[derive(Deserialize)]
struct Period {
    month: u8,
    year: i32,
}

/// One user's demo budgets and expenses.
#[derive(Debug)]
struct Demo {
    budgets: Vec<Value>,
    expenses: Vec<Value>,
}

/// Demo data by user email: only the document's user has any.
fn demo_data() -> HashMap<String, Demo> {
    let budgets = vec![
        json!({"amount": 300.0, "category": "Groceries", "id": 1, "month": 3, "year": 2020}),
        json!({"amount": 120.0, "category": "Transport", "id": 2, "month": 3, "year": 2020}),
    ];
    let expenses = vec![
        json!({"amount": 42.5, "budget_id": 1, "day": 2, "description": "Market", "id": 1, "month": 3, "year": 2020}),
        json!({"amount": 15.0, "budget_id": 2, "day": 9, "description": "Bus pass", "id": 2, "month": 3, "year": 2020}),
        json!({"amount": 60.0, "budget_id": 1, "day": 4, "description": "Market", "id": 3, "month": 4, "year": 2020}),
    ];
    HashMap::from([(DEMO_EMAIL.to_owned(), Demo { budgets, expenses })])
}
