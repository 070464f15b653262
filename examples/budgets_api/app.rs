//! The budgets API app (seed 000): routes, state and demo data, shared by the `budgets_api`
//! binary and the tests in `tests/http_budgets.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::routing::{get, patch, post};
use axum::Router;
use keycard::axum::{
    ClientMeta, Credentials, CurrentUser, JsonOrForm, Query, SessionToken, TokenSource,
};
use keycard::http::{Protocol, Response, SessionsApi, TrustedProxies};
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
/// Largest request body accepted; larger ones get a 413. Far above any login (the core caps
/// emails at 320 and passwords at 1024 bytes), far below anything that could hurt.
pub(crate) const BODY_LIMIT: usize = 16 * 1024;

/// An authenticator builder configured for this protocol: sessions last `session_ttl`, and an
/// unknown email is reported as such.
pub(crate) fn authenticator(
    users: Users,
    tokens: Arc<dyn TokenStore>,
    session_ttl: Duration,
) -> AuthenticatorBuilder<Users> {
    Authenticator::builder(users, tokens)
        .session_ttl(session_ttl)
        // Seed 000 answers an unknown email with "User not found", so this server has to tell
        // unknown emails from wrong passwords. The library default is off because that answer
        // lets anyone probe which emails have accounts; turn it on only when a protocol you
        // must reproduce requires it.
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

/// The routes of seed 000, with JSON answers for unknown routes and wrong methods.
pub(crate) fn router(auth: Auth, proxies: TrustedProxies) -> Router {
    let state = AppState {
        auth,
        proxies,
        protocol: Arc::new(SessionsApi),
        tokens: TokenSource::sessions_api(),
        demo: Arc::new(demo_data()),
    };
    let routes = Router::new()
        .route("/api/sessions", post(login))
        .route("/api/sessions/sign_out", patch(logout))
        .route("/api/budgets", get(budgets))
        .route("/api/expenses", get(expenses))
        .route(
            "/api/budgets/show_all_expenses.json",
            get(show_all_expenses),
        );
    keycard::axum::json_fallbacks(routes)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

#[derive(Clone)]
struct AppState {
    auth: Auth,
    protocol: Arc<dyn Protocol>,
    tokens: TokenSource,
    proxies: TrustedProxies,
    demo: Arc<HashMap<String, Demo>>,
}

impl FromRef<AppState> for Auth {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Protocol> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.protocol)
    }
}

impl FromRef<AppState> for TokenSource {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(state: &AppState) -> Self {
        state.proxies.clone()
    }
}

#[derive(Deserialize)]
struct Period {
    month: u8,
    year: i32,
}

/// `POST /api/sessions`, JSON or form-encoded.
async fn login(
    State(state): State<AppState>,
    ClientMeta(client): ClientMeta,
    JsonOrForm(credentials): JsonOrForm<Credentials>,
) -> Response {
    keycard::axum::login(
        &state.auth,
        &*state.protocol,
        &credentials.email,
        &credentials.password,
        client,
    )
    .await
}

/// `PATCH /api/sessions/sign_out?token=`.
async fn logout(State(state): State<AppState>, token: SessionToken) -> Response {
    keycard::axum::logout(&state.auth, &*state.protocol, &token).await
}

/// `GET /api/budgets?token=`.
async fn budgets(State(state): State<AppState>, me: CurrentUser<Users>) -> axum::Json<Value> {
    let demo = state.demo.get(&me.user.email);
    axum::Json(json!({ "budgets": demo.map_or(&[][..], |d| &d.budgets) }))
}

/// `GET /api/expenses?token=`.
async fn expenses(State(state): State<AppState>, me: CurrentUser<Users>) -> axum::Json<Value> {
    let demo = state.demo.get(&me.user.email);
    axum::Json(json!({ "expenses": demo.map_or(&[][..], |d| &d.expenses) }))
}

/// `GET /api/budgets/show_all_expenses.json?token=&month=&year=`.
async fn show_all_expenses(
    State(state): State<AppState>,
    me: CurrentUser<Users>,
    Query(period): Query<Period>,
) -> Result<axum::Json<Value>, Response> {
    if !(1..=12).contains(&period.month) {
        return Err(state
            .protocol
            .rejection(422, "Month must be between 1 and 12"));
    }
    let expenses: Vec<&Value> = state
        .demo
        .get(&me.user.email)
        .map_or(&[][..], |d| &d.expenses)
        .iter()
        .filter(|e| e["month"] == period.month && e["year"] == period.year)
        .collect();
    let total: f64 = expenses.iter().filter_map(|e| e["amount"].as_f64()).sum();
    Ok(axum::Json(json!({
        "expenses": expenses,
        "month": period.month,
        "total": total,
        "year": period.year,
    })))
}

/// One user's demo budgets and expenses.
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
