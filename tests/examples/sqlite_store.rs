//! The example servers with `--store sqlite://PATH` (the axum ones with `axum`, their
//! actix-web twins with `actix-web`): users and sessions live in that file, so a token issued
//! before a restart still works after it, and seeding the demo user at every start does not
//! duplicate it.
//!
//! Builds the examples (with the features this test was built with, so that under
//! `cargo test --all-features` this is a no-op) before running them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// Builds example `name` with the features this test needs and returns its path.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The same features as this test binary, so cargo finds the build up to date.
    let features: Vec<&str> = [
        ("axum", cfg!(feature = "axum")),
        ("actix-web", cfg!(feature = "actix-web")),
        ("sqlite", true),
        ("postgres", cfg!(feature = "postgres")),
        ("redis", cfg!(feature = "redis")),
        ("conformance", cfg!(feature = "conformance")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--example",
            name,
            "--features",
            &features.join(","),
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    profile_dir.join("examples").join(name)
}

/// A running example server; killed if the test fails before stopping it.
struct Server {
    child: Child,
    /// Kept open: the server prints to it until it exits.
    stdout: BufReader<std::process::ChildStdout>,
    base: String,
}

impl Server {
    fn start(binary: &Path, db: &Path) -> Self {
        let mut child = Command::new(binary)
            .args(["--addr", "127.0.0.1:0", "--store"])
            .arg(format!("sqlite://{}", db.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the first line");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the server did not start: {line:?}"))
            .to_owned();
        Self {
            child,
            stdout,
            base,
        }
    }

    /// Ctrl-C, then wait for a clean exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill -INT");
        assert!(status.success());
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).expect("read stdout");
        let exit = self.child.wait().expect("wait for the server");
        assert!(exit.success(), "the server exited with {exit}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count(db: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open the server's file");
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count rows")
}

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

#[tokio::test]
async fn budgets_api_keeps_users_and_sessions_in_the_sqlite_file_across_restarts() {
    for name in BUDGETS {
        budgets_api_keeps_users_and_sessions(name).await;
    }
}

async fn budgets_api_keeps_users_and_sessions(name: &str) {
    let binary = example(name);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("budgets.db");
    let http = reqwest::Client::new();

    let server = Server::start(&binary, &db);
    let login: Value = http
        .post(format!("{}/api/sessions", server.base))
        .json(&json!({"email": "bondhansarker100@gmail.com", "password": "111111"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["token"].as_str().expect("a token").to_owned();
    server.stop();

    let server = Server::start(&binary, &db);
    let budgets = http
        .get(format!("{}/api/budgets?token={token}", server.base))
        .send()
        .await
        .expect("budgets");
    assert_eq!(
        budgets.status(),
        200,
        "{name}: the session survived the restart"
    );
    let logout = http
        .patch(format!(
            "{}/api/sessions/sign_out?token={token}",
            server.base
        ))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 200);
    let after = http
        .get(format!("{}/api/budgets?token={token}", server.base))
        .send()
        .await
        .expect("budgets");
    assert_ne!(after.status(), 200, "logged out");
    server.stop();

    assert_eq!(
        count(&db, "keycard_users"),
        1,
        "seeded once, whatever the restarts"
    );
    assert_eq!(
        count(&db, "keycard_sessions"),
        0,
        "the logout deleted the session"
    );
}

#[tokio::test]
async fn increase_api_keeps_users_and_sessions_in_the_sqlite_file_across_restarts() {
    for name in INCREASE {
        increase_api_keeps_users_and_sessions(name).await;
    }
}

async fn increase_api_keeps_users_and_sessions(name: &str) {
    let binary = example(name);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("increase.db");
    let http = reqwest::Client::new();

    let server = Server::start(&binary, &db);
    let login: Value = http
        .post(format!("{}/login", server.base))
        .json(&json!({"email": "test@increasecard.com", "password": "password"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["client"]["auth_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    server.stop();

    let server = Server::start(&binary, &db);
    let client = http
        .get(format!("{}/client", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("client");
    assert_eq!(
        client.status(),
        200,
        "{name}: the session survived the restart"
    );
    server.stop();

    assert_eq!(
        count(&db, "keycard_users"),
        1,
        "seeded once, whatever the restarts"
    );
    assert_eq!(count(&db, "keycard_sessions"), 1);
}
