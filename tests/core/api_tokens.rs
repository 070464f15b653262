//! API tokens as a library, on the in-memory stores: what they may do (their scopes, and no
//! account management), how long they live (their own lifetime, no idle timeout, a manual
//! clock), which operations end them (a reset, `logout_all`, an opted-in password change)
//! and which do not (logout, "log out my other devices", the session cap), the per-user cap
//! under concurrency, and what a listing shows.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use keycard::api_tokens::{ApiTokenView, ApiTokens, NewApiToken, Scopes};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, Login, ManualClock, MemoryTokenStore,
    MemoryUserStore, SessionCap, TokenFormat, UserRecord,
};

const ANN: &str = "ann@example.com";
const BOB: &str = "bob@example.com";
const PASSWORD: &str = "correct horse battery staple";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

type Users = Arc<MemoryUserStore<UserRecord>>;

fn config() -> ApiTokens {
    ApiTokens::new(["notes:read", "notes:write", "admin"]).expect("valid scopes")
}

async fn rig(config: ApiTokens, clock: &ManualClock) -> Authenticator<Users> {
    rig_with(config, clock, |b| b).await
}

async fn rig_with(
    config: ApiTokens,
    clock: &ManualClock,
    more: impl FnOnce(keycard::AuthenticatorBuilder<Users>) -> keycard::AuthenticatorBuilder<Users>,
) -> Authenticator<Users> {
    let users: Users = Arc::new(MemoryUserStore::new());
    let builder = Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .api_tokens(config);
    let auth = more(builder).build();
    for (id, email) in [(1_i64, ANN), (2, BOB)] {
        let hash = auth.hash_password(PASSWORD).await.expect("hash");
        auth.users()
            .insert(UserRecord::new(id, email, hash))
            .expect("new user");
    }
    auth
}

async fn login(auth: &Authenticator<Users>, email: &str) -> Login<UserRecord> {
    auth.login(email, PASSWORD, ClientInfo::none())
        .await
        .expect("login")
}

fn read_only() -> NewApiToken {
    NewApiToken::new("reader", ["notes:read"])
}

#[tokio::test]
async fn a_token_holds_its_scopes_and_nothing_else() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig(config(), &clock).await;
    let ann = login(&auth, ANN).await;
    let created = auth
        .create_api_token(
            &ann.session,
            NewApiToken::new("  ci job  ", ["notes:write", "notes:read"]),
        )
        .await
        .expect("create");
    assert_eq!(created.view.name, "ci job", "the name is trimmed");
    assert_eq!(created.view.scopes.to_string(), "notes:read notes:write");
    let pat = created.token.expose_secret();
    assert!(pat.starts_with("kcpat_"), "{pat}");
    assert_eq!(
        pat.len(),
        TokenFormat::prefixed("kcpat_").expect("prefix").token_len()
    );

    let session = auth.validate_session(pat).await.expect("validate");
    assert!(session.kind.is_api_token());
    auth.require_scope(&session, "notes:read").expect("read");
    auth.require_scope(&session, "notes:write").expect("write");
    match auth.require_scope(&session, "admin") {
        Err(Error::InsufficientScope { scope }) => assert_eq!(scope.as_str(), "admin"),
        other => panic!("expected InsufficientScope, got {other:?}"),
    }
    // An interactive session holds every declared scope.
    auth.require_scope(&ann.session, "admin")
        .expect("interactive");
    // `validate` gives the user too.
    let me = auth.validate(pat).await.expect("validate with user");
    assert_eq!(me.user.email, ANN);
}

#[tokio::test]
async fn interactive_scopes_can_be_narrowed() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let narrowed = config().interactive_scopes(Scopes::new(["notes:read"]).expect("valid"));
    let auth = rig(narrowed, &clock).await;
    let ann = login(&auth, ANN).await;
    auth.require_scope(&ann.session, "notes:read")
        .expect("read");
    assert!(matches!(
        auth.require_scope(&ann.session, "admin"),
        Err(Error::InsufficientScope { .. })
    ));
}

#[tokio::test]
async fn an_api_token_cannot_manage_the_account() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig(config(), &clock).await;
    let ann = login(&auth, ANN).await;
    let created = auth
        .create_api_token(
            &ann.session,
            NewApiToken::new("all", ["admin", "notes:write"]),
        )
        .await
        .expect("create");
    let token = auth
        .validate_session(created.token.expose_secret())
        .await
        .expect("validate");
    let client = ClientInfo::none();
    let refused = |r: Result<(), Error>, what: &str| {
        assert!(
            matches!(r, Err(Error::InteractiveSessionRequired)),
            "{what}: {r:?}"
        );
    };
    refused(
        auth.create_api_token(&token, read_only()).await.map(drop),
        "create_api_token",
    );
    refused(auth.list_api_tokens(&token).await.map(drop), "api_tokens");
    refused(
        auth.revoke_api_token(&token, &created.view.id)
            .await
            .map(drop),
        "revoke_api_token",
    );
    refused(
        auth.change_password(&token, PASSWORD, "another fine passphrase", &client)
            .await
            .map(drop),
        "change_password",
    );
    refused(
        auth.verify_password(&token, PASSWORD, &client)
            .await
            .map(drop),
        "verify_password",
    );
    refused(
        auth.reauthenticate(&token, PASSWORD, &client)
            .await
            .map(drop),
        "reauthenticate",
    );
    refused(auth.list_sessions(&token).await.map(drop), "session_views");
    refused(auth.logout_others(&token).await.map(drop), "logout_others");
    refused(
        auth.revoke_session(&token, &ann.session.id).await.map(drop),
        "revoke",
    );
    refused(auth.require_interactive(&token), "require_interactive");
    // Nothing was changed: the password still logs in, the session still works.
    auth.validate_session(ann.token.expose_secret())
        .await
        .expect("the session is untouched");
    login(&auth, ANN).await;
}

#[tokio::test]
async fn requests_are_checked() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig(config(), &clock).await;
    let ann = login(&auth, ANN).await;
    let create = |request| auth.create_api_token(&ann.session, request);
    assert!(matches!(
        create(NewApiToken::new("x", ["notes:delete"])).await,
        Err(Error::InvalidScope(e)) if e.scope() == "notes:delete"
    ));
    assert!(matches!(
        create(NewApiToken::new("x", ["notes read"])).await,
        Err(Error::InvalidScope(_))
    ));
    assert!(matches!(
        create(NewApiToken::new("   ", ["notes:read"])).await,
        Err(Error::InvalidApiTokenRequest(_))
    ));
    assert!(matches!(
        create(NewApiToken::new("a\u{0}b", ["notes:read"])).await,
        Err(Error::InvalidApiTokenRequest(_))
    ));
    assert!(matches!(
        create(NewApiToken::new("n".repeat(101), ["notes:read"])).await,
        Err(Error::InputTooLong { max: 100, .. })
    ));
    assert!(matches!(
        create(read_only().expires_in(400 * DAY)).await,
        Err(Error::InvalidApiTokenRequest(_))
    ));
    assert!(matches!(
        create(read_only().never_expires()).await,
        Err(Error::InvalidApiTokenRequest(_))
    ));
    // No scope at all is allowed: a token that can only say who it is.
    create(NewApiToken::new("whoami", Vec::<String>::new()))
        .await
        .expect("no scopes");
    assert!(
        auth.list_api_tokens(&ann.session)
            .await
            .expect("list")
            .len()
            == 1
    );
}

#[tokio::test]
async fn without_a_configuration_tokens_are_refused_and_sessions_hold_every_scope() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let users: Users = Arc::new(MemoryUserStore::new());
    let auth = Authenticator::builder(users, MemoryTokenStore::new())
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .clock(clock.clone())
        .build();
    let hash = auth.hash_password(PASSWORD).await.expect("hash");
    auth.users()
        .insert(UserRecord::new(1_i64, ANN, hash))
        .expect("user");
    let ann = login(&auth, ANN).await;
    assert!(matches!(
        auth.create_api_token(&ann.session, read_only()).await,
        Err(Error::ApiTokensNotEnabled)
    ));
    auth.require_scope(&ann.session, "anything")
        .expect("every scope");
}

#[tokio::test]
async fn tokens_live_their_own_lifetime_without_an_idle_timeout() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let config = config().allow_never_expires(true);
    let auth = rig_with(config, &clock, |b| {
        b.idle_timeout(Duration::from_secs(3600))
    })
    .await;
    let ann = login(&auth, ANN).await;
    let default = auth
        .create_api_token(&ann.session, read_only())
        .await
        .expect("default lifetime");
    let week = auth
        .create_api_token(&ann.session, read_only().expires_in(7 * DAY))
        .await
        .expect("a week");
    let never = auth
        .create_api_token(&ann.session, read_only().never_expires())
        .await
        .expect("never");
    assert_eq!(
        default.view.expires_at,
        Some(default.view.created_at + 90 * DAY)
    );
    assert_eq!(never.view.expires_at, None);
    let json = serde_json::to_value(&never.view).expect("json");
    assert_eq!(json["expires_at"], serde_json::Value::Null);
    assert_eq!(json["last_used_at"], serde_json::Value::Null);

    // Two idle hours: the session is dead, the tokens are not.
    clock.advance(Duration::from_secs(2 * 3600));
    assert!(matches!(
        auth.validate_session(ann.token.expose_secret()).await,
        Err(Error::SessionExpired)
    ));
    for t in [&default, &week, &never] {
        auth.validate_session(t.token.expose_secret())
            .await
            .expect("an idle token lives on");
    }
    clock.advance(7 * DAY);
    assert!(auth
        .validate_session(week.token.expose_secret())
        .await
        .is_err());
    clock.advance(90 * DAY);
    assert!(auth
        .validate_session(default.token.expose_secret())
        .await
        .is_err());
    clock.advance(3650 * DAY);
    auth.validate_session(never.token.expose_secret())
        .await
        .expect("never expires");
}

#[tokio::test]
async fn last_use_is_written_at_first_use_then_once_a_minute_with_the_address() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig(config(), &clock).await;
    let ann = login(&auth, ANN).await;
    let created = auth
        .create_api_token(&ann.session, read_only())
        .await
        .expect("create");
    let pat = created.token.expose_secret();
    let view = |auth: &Authenticator<Users>| {
        let auth = auth.clone();
        let session = ann.session.clone();
        async move {
            auth.list_api_tokens(&session)
                .await
                .expect("list")
                .remove(0)
        }
    };
    assert_eq!(view(&auth).await.last_used_at, None, "never used");
    let ip: IpAddr = "198.51.100.7".parse().expect("ip");
    clock.advance(Duration::from_secs(1));
    let used = auth
        .validate_session_from(pat, Some(ip))
        .await
        .expect("first use");
    assert_eq!(used.client.ip, Some(ip));
    let first: ApiTokenView = view(&auth).await;
    let at = first.last_used_at.expect("the first use shows at once");
    // Within the minute, nothing is written.
    clock.advance(Duration::from_secs(30));
    auth.validate_session_from(pat, Some(ip))
        .await
        .expect("use");
    assert_eq!(view(&auth).await.last_used_at, Some(at));
    clock.advance(Duration::from_secs(31));
    auth.validate_session_from(pat, Some(ip))
        .await
        .expect("use");
    assert!(view(&auth).await.last_used_at > Some(at));
    // A new address is recorded with the next write.
    let other: IpAddr = "203.0.113.9".parse().expect("ip");
    clock.advance(Duration::from_secs(61));
    let moved = auth
        .validate_session_from(pat, Some(other))
        .await
        .expect("use");
    assert_eq!(moved.client.ip, Some(other));
    let stored = auth
        .list_for_user(&ann.session.user_id)
        .await
        .expect("sessions_of")
        .into_iter()
        .find(|s| s.kind.is_api_token())
        .expect("the token");
    assert_eq!(stored.client.ip, Some(other));
}

#[tokio::test]
async fn logouts_and_password_changes_keep_tokens_a_reset_ends_them() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig(config(), &clock).await;
    let ann = login(&auth, ANN).await;
    let other = login(&auth, ANN).await;
    let pat = auth
        .create_api_token(&ann.session, read_only())
        .await
        .expect("create")
        .token;
    let pat = pat.expose_secret();

    // Logging a session out, and "log out my other devices", leave the token working.
    assert_eq!(auth.logout_others(&ann.session).await.expect("others"), 1);
    assert!(auth
        .validate_session(other.token.expose_secret())
        .await
        .is_err());
    assert!(auth
        .logout(ann.token.expose_secret())
        .await
        .expect("logout")
        .destroyed());
    auth.validate_session(pat).await.expect("still works");

    // A password change keeps it (by default).
    let ann = login(&auth, ANN).await;
    let changed = auth
        .change_password(
            &ann.session,
            PASSWORD,
            "a brand new passphrase",
            &ClientInfo::none(),
        )
        .await
        .expect("change");
    assert_eq!(
        changed.ended, 1,
        "only the replaced session: API tokens are not ended"
    );
    auth.validate_session(pat).await.expect("kept");

    // `logout_all` (what a password reset runs) ends it.
    auth.logout_all(&ann.session.user_id).await.expect("all");
    assert!(matches!(
        auth.validate_session(pat).await,
        Err(Error::InvalidToken)
    ));
}

#[tokio::test]
async fn a_password_change_revokes_tokens_when_the_service_opts_in() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig(config().revoke_on_password_change(true), &clock).await;
    let ann = login(&auth, ANN).await;
    let pat = auth
        .create_api_token(&ann.session, read_only())
        .await
        .expect("create")
        .token;
    auth.change_password(
        &ann.session,
        PASSWORD,
        "a brand new passphrase",
        &ClientInfo::none(),
    )
    .await
    .expect("change");
    assert!(auth.validate_session(pat.expose_secret()).await.is_err());
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoked_only_by_their_owner() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig(config(), &clock).await;
    let ann = login(&auth, ANN).await;
    let bob = login(&auth, BOB).await;
    let created = auth
        .create_api_token(&ann.session, read_only())
        .await
        .expect("create");
    let pat = created.token.expose_secret();
    let listed = auth.list_api_tokens(&ann.session).await.expect("list");
    assert_eq!(listed, vec![created.view.clone()]);
    let json = serde_json::to_string(&listed).expect("json");
    let secret = pat.split_once('.').expect("dot").1;
    assert!(!json.contains(&secret[..43]), "{json}");
    for key in [
        "id",
        "name",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
    ] {
        assert!(json.contains(&format!("\"{key}\"")), "{key} in {json}");
    }
    // Sessions lists and token lists do not mix.
    let views = auth.list_sessions(&ann.session).await.expect("views");
    assert!(views.iter().all(|v| v.id != created.view.id));
    assert!(auth
        .list_api_tokens(&bob.session)
        .await
        .expect("bob")
        .is_empty());

    // Bob cannot revoke Ann's token, nor can the session route, nor can a session id.
    assert!(!auth
        .revoke_api_token(&bob.session, &created.view.id)
        .await
        .expect("bob"));
    assert!(!auth
        .revoke_session(&ann.session, &created.view.id)
        .await
        .expect("session revoke"));
    assert!(!auth
        .revoke_api_token(&ann.session, &ann.session.id)
        .await
        .expect("a session id"));
    auth.validate_session(pat).await.expect("still works");
    assert!(auth
        .revoke_api_token(&ann.session, &created.view.id)
        .await
        .expect("own"));
    assert!(auth.validate_session(pat).await.is_err());
    assert!(!auth
        .revoke_api_token(&ann.session, &created.view.id)
        .await
        .expect("twice"));
}

#[tokio::test]
async fn the_cap_holds_under_concurrent_creation_and_apart_from_the_session_cap() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let auth = rig_with(config().with_max_per_user(5), &clock, |b| {
        b.session_cap(SessionCap::refuse(2))
    })
    .await;
    let ann = login(&auth, ANN).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let auth = auth.clone();
            let session = ann.session.clone();
            tokio::spawn(async move {
                auth.create_api_token(&session, NewApiToken::new(format!("t{i}"), ["notes:read"]))
                    .await
            })
        })
        .collect();
    let mut made = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => made += 1,
            Err(Error::TooManyApiTokens { max: 5 }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let live = auth
        .list_api_tokens(&ann.session)
        .await
        .expect("list")
        .len();
    assert!(live <= 5 && made == live, "made {made}, live {live}");
    assert!(live >= 1);
    // Five tokens do not count against the session cap of 2.
    login(&auth, ANN).await;
    assert!(matches!(
        auth.login(ANN, PASSWORD, ClientInfo::none()).await,
        Err(Error::TooManySessions { max: 2 })
    ));
    // Revoke all at once, then there is room again.
    let revoked = auth
        .revoke_all_api_tokens(&ann.session.user_id)
        .await
        .expect("revoke all");
    assert_eq!(revoked as usize, live);
    auth.create_api_token(&ann.session, read_only())
        .await
        .expect("room again");
}

#[tokio::test]
async fn token_prefixes_stay_apart() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let config = config().with_prefix("acme_pat_").expect("prefix");
    let auth = rig_with(config, &clock, |b| {
        b.token_format(TokenFormat::prefixed("acme_").expect("prefix"))
    })
    .await;
    let ann = login(&auth, ANN).await;
    assert!(ann.token.expose_secret().starts_with("acme_"));
    let pat = auth
        .create_api_token(&ann.session, read_only())
        .await
        .expect("create")
        .token;
    let pat = pat.expose_secret();
    assert!(pat.starts_with("acme_pat_"), "{pat}");
    auth.validate_session(pat).await.expect("valid");
    auth.validate_session(ann.token.expose_secret())
        .await
        .expect("the session too");
    // The prefix is part of the credential: respelling the token under the session prefix
    // names the same id but does not verify.
    let body = &pat["acme_pat_".len()..pat.len() - 7];
    let respelled = TokenFormat::prefixed("acme_")
        .expect("prefix")
        .parse(&format!("acme_{body}_000000"));
    assert!(respelled.is_err(), "the checksum no longer matches");
    assert!(auth.validate_session(body).await.is_err());
    // A typo fails the checksum before any lookup.
    let typo = pat.replacen("acme_pat_", "acme_pqt_", 1);
    assert!(auth.validate_session(&typo).await.is_err());
}
