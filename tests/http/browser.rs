//! A real browser against the `accounts_api` example: headless Chromium, driven through
//! ChromeDriver's WebDriver protocol, opens the app's page, types the credentials, logs in,
//! and the page's `/me` is answered by the `HttpOnly` session cookie alone; logging out clears
//! it. This is what a browser app relies on: the cookie is set and sent by the browser, the
//! same-origin `fetch` passes the cross-site check, and no script can read the token.
//!
//! Ignored by default: it needs Debian's `chromium` and `chromium-driver`. CI installs them and
//! runs it with `cargo test --all-features --test http browser -- --ignored`; when they are missing
//! it fails saying so.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::server::Server;
use keycard::http::{SessionCookie, TrustedProxies};
use keycard::{Argon2Hasher, MemoryTokenStore, MemoryUserStore, UserRecord};
use serde_json::{json, Value};

const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// ChromeDriver on a loopback port, killed on drop.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Self {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: install Debian's chromium and chromium-driver \
                 (apt-get install chromium chromium-driver) to run the browser test"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: crate::support::server::client(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One WebDriver command; its `value`.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        if let Some(error) = reply["value"]["error"].as_str() {
            panic!("WebDriver {path}: {error}: {}", reply["value"]["message"]);
        }
        reply["value"].clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session.
struct Browser<'d> {
    driver: &'d Driver,
    session: String,
    _profile: tempfile::TempDir,
}

impl<'d> Browser<'d> {
    async fn open(driver: &'d Driver) -> Browser<'d> {
        let profile = tempfile::tempdir().expect("a profile directory");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let created = driver
            .command(reqwest::Method::POST, "/session", Some(capabilities))
            .await;
        let session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Browser {
            driver,
            session,
            _profile: profile,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.driver
            .command(reqwest::Method::POST, &path, Some(body))
            .await
    }

    async fn get(&self, path: &str) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.driver.command(reqwest::Method::GET, &path, None).await
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("an element reference")
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.post(&format!("/element/{element}/value"), json!({"text": text}))
            .await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Waits until `#status` reads `expected`; returns what it last read.
    async fn status_becomes(&self, expected: &str) -> String {
        self.text_becomes("#status", expected).await
    }

    /// Waits until the element `css` reads `expected`; returns what it last read.
    async fn text_becomes(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.element(css).await;
            let text = self.get(&format!("/element/{element}/text")).await;
            let text = text.as_str().unwrap_or_default().to_owned();
            if text == expected || Instant::now() > deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn close(self) {
        let path = format!("/session/{}", self.session);
        self.driver
            .command(reqwest::Method::DELETE, &path, None)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and ChromeDriver (apt-get install chromium chromium-driver); run with --ignored"]
async fn a_browser_logs_in_with_the_cookie_and_me_answers() {
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let day = Duration::from_secs(24 * 60 * 60);
    let auth = crate::app::authenticator(users.clone(), Arc::new(MemoryTokenStore::new()), day)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    let hash = auth
        .hash_password_with_policy(PASSWORD, EMAIL)
        .await
        .expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, hash))
        .expect("a fresh store");
    let accounts =
        crate::support::accounts::app(auth, SessionCookie::default(), TrustedProxies::none());
    let server = Server::start(crate::app::router(accounts)).await;

    let driver = Driver::start().await;
    let browser = Browser::open(&driver).await;
    browser.post("/url", json!({"url": server.url("/")})).await;
    assert_eq!(
        browser.status_becomes("Not logged in (401).").await,
        "Not logged in (401)."
    );

    browser.type_into("#email", EMAIL).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login").await;
    let expected = format!("Logged in as {EMAIL}");
    assert_eq!(browser.status_becomes(&expected).await, expected);

    // The browser holds the hardened cookie, out of the page's reach.
    let cookies = browser.get("/cookie").await;
    let cookie = cookies
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == "__Host-session"))
        .unwrap_or_else(|| panic!("no session cookie in {cookies}"));
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["path"], "/", "{cookie}");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
    let script = json!({"script": "return document.cookie", "args": []});
    let visible = browser.post("/execute/sync", script).await;
    assert_eq!(visible, "", "scripts must not see the session cookie");

    browser.click("#logout").await;
    assert_eq!(
        browser.status_becomes("Not logged in (401).").await,
        "Not logged in (401)."
    );
    browser.close().await;
}

/// The password reset walked in the browser: the page's forgot form, the link from the mail
/// (received by a real SMTP server on loopback), the page's reset form, and a login with the
/// new password. The token travels in the link's fragment and is POSTed by the page.
#[cfg(feature = "smtp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and ChromeDriver (apt-get install chromium chromium-driver); run with --ignored"]
async fn a_browser_walks_the_password_reset_from_the_page() {
    use crate::support::smtp_sink::SmtpSink;
    use keycard::one_time::{MemoryOneTimeStore, OneTimeTokens};

    const NEW_PASSWORD: &str = "a brand new long passphrase";
    let sink = SmtpSink::start().await;
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let day = Duration::from_secs(24 * 60 * 60);
    let auth = crate::app::authenticator(users.clone(), Arc::new(MemoryTokenStore::new()), day)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .build();
    let hash = auth
        .hash_password_with_policy(PASSWORD, EMAIL)
        .await
        .expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, hash))
        .expect("a fresh store");
    let mailer = keycard::mail::SmtpMailer::from_url(&sink.url(), "accounts@example.com")
        .expect("a loopback SMTP URL");
    let accounts = crate::support::accounts::app_with(
        auth,
        OneTimeTokens::new(MemoryOneTimeStore::new()),
        Arc::new(mailer),
        SessionCookie::default(),
        TrustedProxies::none(),
    );
    let server = Server::start(crate::app::router(accounts)).await;

    let driver = Driver::start().await;
    let browser = Browser::open(&driver).await;
    browser.post("/url", json!({"url": server.url("/")})).await;
    browser.type_into("#forgot-email", EMAIL).await;
    browser.click("#forgot").await;
    let asked = "If the address has an account, a reset link is on its way.";
    assert_eq!(browser.text_becomes("#account-status", asked).await, asked);

    // The link in the mail, opened on this server (the app's public URL is a placeholder).
    let mail = sink.wait_for(EMAIL, 1).await.remove(0);
    let text = mail.decoded();
    let start = text
        .find("/reset-password#token=")
        .expect("a reset link in the mail");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect();
    browser
        .post("/url", json!({"url": server.url(&link)}))
        .await;
    browser.type_into("#new-password", NEW_PASSWORD).await;
    browser.click("#reset").await;
    let changed = "Password changed. Log in with the new password.";
    assert_eq!(
        browser.text_becomes("#account-status", changed).await,
        changed
    );
    // The page dropped the token from the address bar.
    let url = browser.get("/url").await;
    assert!(!url.as_str().unwrap_or_default().contains("token"), "{url}");

    browser.type_into("#email", EMAIL).await;
    browser.type_into("#password", NEW_PASSWORD).await;
    browser.click("#login").await;
    let expected = format!("Logged in as {EMAIL}");
    assert_eq!(browser.status_becomes(&expected).await, expected);
    browser.close().await;
}

/// Passkeys in a real browser, with Chromium's virtual authenticator (the WebDriver WebAuthn
/// extension: a CTAP2 platform authenticator that keeps discoverable credentials and verifies
/// its user): log in with the password, "Add a passkey", log out, "Sign in with a passkey",
/// and the page shows the user logged in; then, logged out again, the password alone asks for
/// a second step, which "Use a passkey instead" answers. The page runs at
/// `http://localhost:PORT`, the relying party id is `localhost`. A screenshot of the page
/// signed in by the passkey is saved to `target/test-artifacts/passkey-sign-in.png`.
#[cfg(feature = "passkeys")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and ChromeDriver (apt-get install chromium chromium-driver); run with --ignored"]
async fn a_browser_adds_a_passkey_and_signs_in_with_it() {
    use base64::Engine as _;
    use keycard::mfa::{MemoryPasskeyStore, MemorySecondFactorStore, SecretKey};
    use keycard::one_time::MemoryOneTimeStore;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let port = listener.local_addr().expect("bound").port();
    let origin = format!("http://localhost:{port}");
    let passkeys = crate::app::passkeys("localhost", &origin, Arc::new(MemoryOneTimeStore::new()))
        .expect("a valid relying party");
    let users = Arc::new(MemoryUserStore::<UserRecord>::new());
    let day = Duration::from_secs(24 * 60 * 60);
    let store = Arc::new(MemoryPasskeyStore::new());
    let auth = crate::app::authenticator(users.clone(), Arc::new(MemoryTokenStore::new()), day)
        .password_hasher(Argon2Hasher::insecure_for_tests())
        .passkeys(passkeys, store.clone())
        .second_factors(crate::app::second_factors(
            Arc::new(MemorySecondFactorStore::new()),
            Arc::new(MemoryOneTimeStore::new()),
            SecretKey::generate().expect("os rng"),
        ))
        .build();
    let hash = auth
        .hash_password_with_policy(PASSWORD, EMAIL)
        .await
        .expect("hash");
    users
        .insert(UserRecord::new(1_i64, EMAIL, hash))
        .expect("a fresh store");
    let accounts =
        crate::support::accounts::app(auth, SessionCookie::default(), TrustedProxies::none());
    let _server = Server::start_on(listener, crate::app::router(accounts));

    let driver = Driver::start().await;
    let browser = Browser::open(&driver).await;
    browser
        .post("/url", json!({"url": format!("{origin}/")}))
        .await;
    let authenticator = browser
        .post(
            "/webauthn/authenticator",
            json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            }),
        )
        .await;
    let authenticator = authenticator
        .as_str()
        .expect("an authenticator id")
        .to_owned();

    browser.type_into("#email", EMAIL).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login").await;
    let expected = format!("Logged in as {EMAIL}");
    assert_eq!(browser.status_becomes(&expected).await, expected);

    browser.click("#passkey-add").await;
    assert_eq!(
        browser
            .text_becomes("#passkey-status", "Passkey added.")
            .await,
        "Passkey added."
    );
    let credentials = browser
        .get(&format!(
            "/webauthn/authenticator/{authenticator}/credentials"
        ))
        .await;
    let credentials = credentials.as_array().expect("a list of credentials");
    assert_eq!(credentials.len(), 1, "{credentials:?}");
    assert_eq!(
        credentials[0]["isResidentCredential"], true,
        "{credentials:?}"
    );
    assert_eq!(credentials[0]["rpId"], "localhost");

    browser.click("#logout").await;
    assert_eq!(
        browser.status_becomes("Not logged in (401).").await,
        "Not logged in (401)."
    );

    browser.click("#passkey-login").await;
    assert_eq!(browser.status_becomes(&expected).await, expected);
    // The server recorded the passkey's use.
    let kept = keycard::mfa::PasskeyStore::list(&*store, &keycard::UserId::new("1"))
        .await
        .expect("list");
    assert_eq!(kept.len(), 1);
    assert!(kept[0].last_used_at.is_some(), "{kept:?}");

    let screenshot = browser.get("/screenshot").await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(screenshot.as_str().expect("a base64 PNG"))
        .expect("base64");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    std::fs::write(dir.join("passkey-sign-in.png"), png).expect("the screenshot");

    // The passkey is now a second factor too: the password alone starts no session.
    browser.click("#logout").await;
    assert_eq!(
        browser.status_becomes("Not logged in (401).").await,
        "Not logged in (401)."
    );
    browser.click("#login").await;
    let asked = "Enter the code from your authenticator app.";
    assert_eq!(browser.status_becomes(asked).await, asked);
    browser.click("#mfa-passkey").await;
    assert_eq!(browser.status_becomes(&expected).await, expected);
    browser.close().await;
}
