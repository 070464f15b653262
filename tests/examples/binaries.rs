//! The example binaries themselves, every one built with the features on (`minimal_axum`,
//! walked through login, `/me` and logout; `budgets_api`, `increase_api` and `accounts_api`
//! with `axum`, `budgets_api_actix` and
//! `increase_api_actix` with `actix-web`): `--addr` with port 0 prints the address actually bound, the server answers
//! there, `--session-ttl` is honoured, an unknown `--store` is a clear error, bad arguments
//! are refused, SIGINT (Ctrl-C) and SIGTERM shut the server down cleanly, and, with both
//! frameworks on, each actix-web twin answers exactly as its axum original.
//!
//! The binaries are those `cargo test` builds under `target/<profile>/examples/`; the test
//! asks the same cargo to build them first (a no-op after `cargo test` has), so a run of this
//! test alone (`--test examples binaries`) never uses a stale binary.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The smallest example, `minimal_axum` (axum only, no flags: its one argument is the address).
const MINIMAL: &[&str] = &[
    #[cfg(feature = "axum")]
    "minimal_axum",
];

/// The budgets API binaries built with this test's features.
const BUDGETS: &[&str] = &[
    #[cfg(feature = "axum")]
    "budgets_api",
    #[cfg(feature = "actix-web")]
    "budgets_api_actix",
];

/// The increase API binaries built with this test's features.
const INCREASE: &[&str] = &[
    #[cfg(feature = "axum")]
    "increase_api",
    #[cfg(feature = "actix-web")]
    "increase_api_actix",
];

/// The accounts API binary, when built (it is axum only).
const ACCOUNTS: &[&str] = &[
    #[cfg(feature = "axum")]
    "accounts_api",
];

/// Every example binary built with this test's features.
fn all_binaries() -> impl Iterator<Item = &'static str> {
    BUDGETS.iter().chain(INCREASE).chain(ACCOUNTS).copied()
}

/// The path of example `name` (`target/<profile>/examples/<name>`, next to this test's
/// `deps/`), built first by the same cargo with this test's features: a no-op when
/// `cargo test` has just built it, and never a stale binary when this test runs alone.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test binary>");
    BUILT.get_or_init(|| build_examples(profile_dir));
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "example binary {} not built", path.display());
    path
}

/// Builds every example of [`all_binaries`] with this test's features (`actix-web` among
/// them when on).
fn build_examples(profile_dir: &Path) {
    let target_dir = profile_dir.parent().expect("target directory");
    let features: Vec<&str> = [
        ("axum", cfg!(feature = "axum")),
        ("actix-web", cfg!(feature = "actix-web")),
        ("conformance", cfg!(feature = "conformance")),
        ("sqlite", cfg!(feature = "sqlite")),
        ("postgres", cfg!(feature = "postgres")),
        ("redis", cfg!(feature = "redis")),
        ("tower", cfg!(feature = "tower")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.arg("build");
    for name in all_binaries().chain(MINIMAL.iter().copied()) {
        command.args(["--example", name]);
    }
    command
        .args(["--features", &features.join(",")])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build");
    assert!(status.success(), "cargo build of the examples failed");
}

/// Runs `command` to completion, killing it (and failing) if it takes over 30 seconds.
fn run_to_exit(command: &mut Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the example");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait for the example").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not exit: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

/// A running example server, killed if the test fails before it stops it.
struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    base: String,
}

impl Running {
    /// Starts example `name` with `args` and reads the address it prints.
    fn start(name: &str, args: &[&str]) -> Self {
        let mut child = Command::new(example(name))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the first line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line names the address: {line:?}"))
            .to_owned();
        Self {
            child,
            stdout,
            base,
        }
    }

    /// Sends SIGINT, as Ctrl-C does, and waits for the process to exit; returns whether it
    /// exited successfully and the rest of its stdout.
    fn interrupt(self) -> (bool, String) {
        self.signal("-INT")
    }

    /// Sends `signal` (`-INT`, `-TERM`) and waits for the process to exit; returns whether it
    /// exited successfully and the rest of its stdout.
    fn signal(mut self, signal: &str) -> (bool, String) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().expect("wait for the server") {
                break exit;
            }
            assert!(Instant::now() < deadline, "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        self.stdout
            .read_to_string(&mut rest)
            .expect("read the rest of stdout");
        (exit.success(), rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn minimal_axum_logs_in_serves_me_and_logs_out_over_http() {
    for name in MINIMAL {
        let mut server = Running::start(name, &["127.0.0.1:0"]);
        let base = server.base.clone();
        assert!(
            base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
            "{base}"
        );
        // It prints how to curl it, at the address it bound.
        let mut how = String::new();
        for _ in 0..4 {
            server
                .stdout
                .read_line(&mut how)
                .expect("read the curl lines");
        }
        assert!(how.contains(&format!("curl -s {base}/login")), "{how}");
        assert!(
            how.contains(&format!("{base}/me -H 'authorization: Bearer TOKEN'")),
            "{how}"
        );
        let client = crate::support::client();

        let anonymous = crate::support::send(client.get(format!("{base}/me"))).await;
        assert_eq!(anonymous.status, 401, "{name}: /me without a token");
        assert_eq!(anonymous.json()["code"], "missing_token");

        let wrong = crate::support::send(
            client
                .post(format!("{base}/login"))
                .json(&serde_json::json!({"email": "ann@example.com", "password": "nope"})),
        )
        .await;
        assert_eq!(wrong.status, 401, "{name}: a wrong password");
        assert_eq!(wrong.json()["code"], "invalid_credentials");

        let login = crate::support::send(client.post(format!("{base}/login")).json(
            &serde_json::json!({
                "email": "ann@example.com",
                "password": "correct horse battery staple",
            }),
        ))
        .await;
        assert_eq!(login.status, 200, "{name}: login: {}", login.body);
        let token = login.json()["token"].as_str().expect("a token").to_owned();
        assert!(login.json()["expires_at"].is_string());

        let me = crate::support::send(client.get(format!("{base}/me")).bearer_auth(&token)).await;
        assert_eq!(me.pair(), (200, "hello ann@example.com\n"), "{name}: /me");

        let logout =
            crate::support::send(client.post(format!("{base}/logout")).bearer_auth(&token)).await;
        assert_eq!(logout.pair(), (204, ""), "{name}: logout");

        let after =
            crate::support::send(client.get(format!("{base}/me")).bearer_auth(&token)).await;
        assert_eq!(after.status, 401, "{name}: /me after logout");
        assert_eq!(after.json()["code"], "invalid_token");

        let unknown = crate::support::send(client.get(format!("{base}/nowhere"))).await;
        assert_eq!(unknown.status, 404, "{name}: json_fallbacks");
        assert_eq!(unknown.json()["code"], "not_found");
    }
}

#[tokio::test]
async fn budgets_api_prints_its_address_honours_session_ttl_and_stops_on_ctrl_c() {
    for name in BUDGETS {
        let server = Running::start(name, &["--addr", "127.0.0.1:0", "--session-ttl", "1"]);
        assert!(
            server.base.starts_with("http://127.0.0.1:"),
            "{name}: {}",
            server.base
        );
        assert!(
            !server.base.ends_with(":0"),
            "{name}: the bound port is printed"
        );
        let client = crate::support::client();

        let reply = crate::support::send(
            client
                .post(format!("{}/api/sessions", server.base))
                .header("content-type", "application/json")
                .body(r#"{"email":"bondhansarker100@gmail.com","password":"111111"}"#),
        )
        .await;
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        let token = reply.json()["token"].as_str().expect("token").to_owned();
        let budgets = format!("{}/api/budgets?token={token}", server.base);

        // One-second sessions: alive now, dead a little over a second later.
        let started = Instant::now();
        let alive = crate::support::send(client.get(&budgets)).await;
        if started.elapsed() < Duration::from_millis(900) {
            assert_eq!(alive.status, 200, "{name}: {alive:?}");
        }
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let dead = crate::support::send(client.get(&budgets)).await;
        assert_eq!(
            dead.pair(),
            (422, r#"{"message":"You are not checked in"}"#),
            "{name}"
        );

        let (clean, rest) = server.interrupt();
        assert!(clean, "{name}: exit status after SIGINT is success");
        assert!(rest.contains("shut down"), "{name}: {rest:?}");
    }
}

#[tokio::test]
async fn increase_api_serves_the_document_and_stops_on_sigterm() {
    for name in INCREASE {
        let server = Running::start(name, &["--addr", "127.0.0.1:0"]);
        let client = crate::support::client();
        let reply = crate::support::send(
            client
                .post(format!("{}/login", server.base))
                .header("content-type", "application/json")
                .body(r#"{"email":"test@increasecard.com","password":"password"}"#),
        )
        .await;
        assert_eq!(reply.status, 200, "{name}: {reply:?}");
        let token = reply.json()["client"]["auth_token"]
            .as_str()
            .expect("auth_token")
            .to_owned();
        let me = crate::support::send(
            client
                .get(format!("{}/client", server.base))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(
            me.pair(),
            (
                200,
                r#"{"client":{"email":"test@increasecard.com","first_name":"Test","last_name":"Increase"}}"#
            ),
            "{name}"
        );
        let (clean, rest) = server.signal("-TERM");
        assert!(clean, "{name}: exit status after SIGTERM is success");
        assert!(rest.contains("shut down"), "{name}: {rest:?}");
    }
}

#[tokio::test]
async fn accounts_api_registers_logs_in_with_session_ttl_and_stops_on_ctrl_c() {
    for name in ACCOUNTS {
        let server = Running::start(name, &["--addr", "127.0.0.1:0", "--session-ttl", "120"]);
        assert!(!server.base.ends_with(":0"), "{name}: {}", server.base);
        let client = crate::support::client();
        let credentials = r#"{"email":"zed@example.com","password":"a long enough passphrase"}"#;
        let registered = crate::support::send(
            client
                .post(format!("{}/register", server.base))
                .header("content-type", "application/json")
                .body(credentials),
        )
        .await;
        // 202 for a new and a taken address alike; without --smtp the verification mail is
        // printed to stderr and login does not wait for it.
        assert_eq!(registered.status, 202, "{name}: {registered:?}");
        let login = crate::support::send(
            client
                .post(format!("{}/login", server.base))
                .header("content-type", "application/json")
                .body(credentials),
        )
        .await;
        assert_eq!(login.status, 200, "{name}: {login:?}");
        let body = login.json();
        let expires_at = time::OffsetDateTime::parse(
            body["expires_at"].as_str().expect("expires_at"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("an RFC 3339 time");
        let lifetime = expires_at - time::OffsetDateTime::now_utc();
        assert!(
            lifetime <= time::Duration::seconds(120) && lifetime > time::Duration::seconds(100),
            "{name}: --session-ttl 120 gave a session of {lifetime}"
        );
        let token = body["token"].as_str().expect("token").to_owned();
        let me = crate::support::send(
            client
                .get(format!("{}/me", server.base))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(me.status, 200, "{name}: {me:?}");
        assert_eq!(me.json()["user"]["email"], "zed@example.com", "{name}");
        let anonymous = crate::support::send(client.get(format!("{}/me", server.base))).await;
        assert_eq!(anonymous.status, 401, "{name}: {anonymous:?}");
        let (clean, rest) = server.interrupt();
        assert!(clean, "{name}: exit status after SIGINT is success");
        assert_eq!(rest, "shut down\n", "{name}");
    }
}

#[test]
fn every_binary_stops_cleanly_on_ctrl_c_and_on_sigterm() {
    for name in all_binaries() {
        for signal in ["-INT", "-TERM"] {
            let server = Running::start(name, &["--addr", "127.0.0.1:0"]);
            let (clean, rest) = server.signal(signal);
            assert!(clean, "{name}: exit status after {signal} is success");
            assert_eq!(rest, "shut down\n", "{name} after {signal}");
        }
    }
}

#[test]
fn unknown_store_is_a_clear_error() {
    for name in all_binaries() {
        let output = run_to_exit(Command::new(example(name)).args([
            "--addr",
            "127.0.0.1:0",
            "--store",
            "mongodb://localhost",
        ]));
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "{name}: unsupported --store `mongodb://localhost`"
            )),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    for name in all_binaries() {
        for (args, named) in [
            (&["--addr", "not-an-address"][..], "--addr"),
            (&["--session-ttl", "0"][..], "--session-ttl"),
            (&["--session-ttl", "soon"][..], "--session-ttl"),
            (&["--trusted-proxy", "not-a-network"][..], "--trusted-proxy"),
            (&["--port", "3000"][..], "--port"),
        ] {
            let output = run_to_exit(Command::new(example(name)).args(args));
            assert_eq!(output.status.code(), Some(2), "{name} {args:?}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(named), "{name}: {stderr}");
        }
    }
}

#[test]
fn help_lists_the_options_and_their_defaults() {
    for name in all_binaries() {
        let output = run_to_exit(Command::new(example(name)).arg("--help"));
        assert!(output.status.success(), "{name}");
        let help = String::from_utf8_lossy(&output.stdout);
        for expected in [
            "127.0.0.1:3000",
            "86400",
            "memory",
            "--store",
            "--addr",
            "--session-ttl",
            "--trusted-proxy",
        ] {
            assert!(help.contains(expected), "{name}: {expected} in {help}");
        }
    }
}

/// What a twin comparison looks at: status, the headers keycard sets, and the body, with the
/// server's own token replaced by `<token>`.
#[cfg(all(feature = "axum", feature = "actix-web"))]
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    request: String,
    status: u16,
    headers: Vec<(&'static str, Option<String>)>,
    body: String,
}

/// Sends each `(method, path, content type, body)` to the server at `base`, after a login
/// whose token replaces `<token>` in paths and bodies; returns what came back, with the token
/// masked again. Bodies over the size limit are compared by status and shape only, as each
/// framework words its own 413.
#[cfg(all(feature = "axum", feature = "actix-web"))]
async fn replay(
    base: &str,
    login: (&str, &str),
    token_of: fn(&serde_json::Value) -> Option<&str>,
    requests: &[(&str, &str, Option<&str>, String)],
) -> Vec<Seen> {
    let client = crate::support::client();
    let reply = crate::support::send(
        client
            .post(format!("{base}{}", login.0))
            .header("content-type", "application/json")
            .body(login.1.to_owned()),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = token_of(&reply.json()).expect("a token").to_owned();
    let mut seen = vec![Seen {
        request: format!("POST {}", login.0),
        status: reply.status,
        headers: vec![],
        body: reply.body.replace(&token, "<token>"),
    }];
    for (method, path, content_type, body) in requests {
        let label = format!("{method} {path} {content_type:?} {} bytes", body.len());
        let path = path.replace("<token>", &token);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request = client
            .request(method.clone(), format!("{base}{path}"))
            .body(body.replace("<token>", &token));
        if let Some(content_type) = content_type {
            request = request.header("content-type", *content_type);
        }
        let reply = crate::support::send(request).await;
        let body = if reply.status == 413 {
            let json = reply.json();
            let object = json.as_object().expect("a JSON object");
            assert_eq!(object.len(), 1, "{json}");
            format!("413 with {:?}", object.keys().collect::<Vec<_>>())
        } else {
            mask_tokens(&reply.body.replace(&token, "<token>"))
        };
        seen.push(Seen {
            request: label,
            status: reply.status,
            headers: [
                "content-type",
                "cache-control",
                "retry-after",
                "www-authenticate",
            ]
            .into_iter()
            .map(|name| (name, reply.header(name).map(str::to_owned)))
            .collect(),
            body,
        });
    }
    seen
}

/// `body` with the value of every `token` or `auth_token` field (a new login's token, which
/// each server draws at random) replaced by `<a token>`; any other body byte for byte.
#[cfg(all(feature = "axum", feature = "actix-web"))]
fn mask_tokens(body: &str) -> String {
    fn mask(value: &mut serde_json::Value) -> bool {
        let Some(object) = value.as_object_mut() else {
            return false;
        };
        let mut masked = false;
        for (key, value) in object.iter_mut() {
            if (key == "token" || key == "auth_token") && value.is_string() {
                *value = "<a token>".into();
                masked = true;
            } else {
                masked |= mask(value);
            }
        }
        masked
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut json) => {
            if mask(&mut json) {
                json.to_string()
            } else {
                body.to_owned()
            }
        }
        Err(_) => body.to_owned(),
    }
}

/// Asserts that the axum binary `original` and its actix-web twin answer `requests` alike.
#[cfg(all(feature = "axum", feature = "actix-web"))]
async fn assert_twins(
    original: &str,
    twin: &str,
    login: (&str, &str),
    token_of: fn(&serde_json::Value) -> Option<&str>,
    requests: &[(&str, &str, Option<&str>, String)],
) {
    let axum = Running::start(original, &["--addr", "127.0.0.1:0"]);
    let actix = Running::start(twin, &["--addr", "127.0.0.1:0"]);
    let expected = replay(&axum.base, login, token_of, requests).await;
    let actual = replay(&actix.base, login, token_of, requests).await;
    assert_eq!(expected.len(), requests.len() + 1);
    for (expected, actual) in expected.iter().zip(&actual) {
        assert_eq!(actual, expected, "{twin} vs {original}");
    }
    assert!(axum.interrupt().0 && actix.interrupt().0);
}

#[cfg(all(feature = "axum", feature = "actix-web"))]
const JSON: Option<&str> = Some("application/json");

#[cfg(all(feature = "axum", feature = "actix-web"))]
#[tokio::test]
async fn budgets_api_actix_answers_as_budgets_api() {
    let form = Some("application/x-www-form-urlencoded");
    let huge = format!(
        r#"{{"email":"a@b.c","password":"{}"}}"#,
        "x".repeat(17 * 1024)
    );
    let long = format!(
        r#"{{"email":"bondhansarker100@gmail.com","password":"{}"}}"#,
        "x".repeat(1025)
    );
    let requests = [
        (
            "POST",
            "/api/sessions",
            JSON,
            r#"{"email":"bondhansarker100@gmail.com","password":"2"}"#.to_owned(),
        ),
        (
            "POST",
            "/api/sessions",
            JSON,
            r#"{"email":"nobody@example.com","password":"111111"}"#.to_owned(),
        ),
        (
            "POST",
            "/api/sessions",
            form,
            "email=bondhansarker100%40gmail.com&password=111111".to_owned(),
        ),
        ("POST", "/api/sessions", form, "email=x".to_owned()),
        ("POST", "/api/sessions", JSON, "{".to_owned()),
        ("POST", "/api/sessions", JSON, r#"{"email":"e"}"#.to_owned()),
        ("POST", "/api/sessions", JSON, "null".to_owned()),
        ("POST", "/api/sessions", Some("text/plain"), "{}".to_owned()),
        ("POST", "/api/sessions", None, "{}".to_owned()),
        ("POST", "/api/sessions", JSON, huge),
        ("POST", "/api/sessions", JSON, long),
        ("GET", "/api/budgets?token=<token>", None, String::new()),
        ("GET", "/api/expenses?token=<token>", None, String::new()),
        ("HEAD", "/api/budgets?token=<token>", None, String::new()),
        ("HEAD", "/api/budgets", None, String::new()),
        (
            "GET",
            "/api/budgets/show_all_expenses.json?token=<token>&month=3&year=2020",
            None,
            String::new(),
        ),
        (
            "GET",
            "/api/budgets/show_all_expenses.json?token=<token>&month=13&year=2020",
            None,
            String::new(),
        ),
        (
            "GET",
            "/api/budgets/show_all_expenses.json?token=<token>&month=abc&year=2020",
            None,
            String::new(),
        ),
        (
            "GET",
            "/api/budgets/show_all_expenses.json?month=3&year=2020",
            None,
            String::new(),
        ),
        (
            "GET",
            "/api/budgets?token=U4fXGfN2vNz1rvUzY6Nn",
            None,
            String::new(),
        ),
        ("GET", "/api/budgets", None, String::new()),
        ("GET", "/api/nothing", None, String::new()),
        ("GET", "/api/sessions", None, String::new()),
        ("DELETE", "/api/budgets", None, String::new()),
        ("PATCH", "/api/sessions/sign_out", None, String::new()),
        (
            "PATCH",
            "/api/sessions/sign_out?token=<token>",
            None,
            String::new(),
        ),
        (
            "PATCH",
            "/api/sessions/sign_out?token=<token>",
            None,
            String::new(),
        ),
        ("GET", "/api/budgets?token=<token>", None, String::new()),
    ];
    assert_twins(
        "budgets_api",
        "budgets_api_actix",
        (
            "/api/sessions",
            r#"{"email":"bondhansarker100@gmail.com","password":"111111"}"#,
        ),
        |json| json["token"].as_str(),
        &requests,
    )
    .await;
}

#[cfg(all(feature = "axum", feature = "actix-web"))]
#[tokio::test]
async fn increase_api_actix_answers_as_increase_api() {
    let huge = format!(r#"{{"auth_token":"{}"}}"#, "x".repeat(17 * 1024));
    let long = format!(
        r#"{{"email":"{}@x.y","password":"password"}}"#,
        "e".repeat(320)
    );
    let requests = [
        (
            "POST",
            "/login",
            JSON,
            r#"{"email":"test@increasecard.com","password":"notpassword"}"#.to_owned(),
        ),
        (
            "POST",
            "/login",
            JSON,
            r#"{"email":"nobody@increasecard.com","password":"password"}"#.to_owned(),
        ),
        (
            "POST",
            "/login",
            Some("application/x-www-form-urlencoded"),
            "email=test%40increasecard.com&password=password".to_owned(),
        ),
        ("POST", "/login", None, "{}".to_owned()),
        ("POST", "/login", JSON, "{".to_owned()),
        ("POST", "/login", JSON, "42".to_owned()),
        ("POST", "/login", JSON, long),
        ("GET", "/client?auth_token=<token>", None, String::new()),
        ("GET", "/client", None, String::new()),
        ("HEAD", "/client?auth_token=<token>", None, String::new()),
        ("HEAD", "/client", None, String::new()),
        ("GET", "/client?auth_token=", None, String::new()),
        (
            "GET",
            "/client?auth_token=2731c82cb6ac8ebe7ab4f1aec46436c19d589440",
            None,
            String::new(),
        ),
        ("DELETE", "/logout", None, String::new()),
        ("DELETE", "/logout", JSON, "{}".to_owned()),
        ("DELETE", "/logout", JSON, "[1]".to_owned()),
        ("DELETE", "/logout", JSON, r#"{"auth_token":5}"#.to_owned()),
        ("DELETE", "/logout", Some("text/plain"), "token".to_owned()),
        ("DELETE", "/logout", JSON, huge),
        ("GET", "/", None, String::new()),
        ("GET", "/login", None, String::new()),
        ("POST", "/logout", None, String::new()),
        (
            "DELETE",
            "/logout",
            JSON,
            "{\n    \"auth_token\": \"<token>\"\n}".to_owned(),
        ),
        (
            "DELETE",
            "/logout",
            JSON,
            "{\n    \"auth_token\": \"<token>\"\n}".to_owned(),
        ),
        ("GET", "/client?auth_token=<token>", None, String::new()),
    ];
    assert_twins(
        "increase_api",
        "increase_api_actix",
        (
            "/login",
            r#"{"email":"test@increasecard.com","password":"password"}"#,
        ),
        |json| json["client"]["auth_token"].as_str(),
        &requests,
    )
    .await;
}
