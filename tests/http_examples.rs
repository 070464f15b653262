//! The example binaries themselves: `--addr` with port 0 prints the address actually bound,
//! the server answers there, `--session-ttl` is honoured, an unknown `--store` is a clear
//! error, and SIGINT (Ctrl-C) shuts the server down cleanly.
//!
//! The binaries are those `cargo test` builds under `target/<profile>/examples/`; the test
//! asks the same cargo to build them first (a no-op after `cargo test` has), so a run of this
//! test alone (`--test http_examples`) never uses a stale binary.
#![cfg(all(feature = "axum", unix))]

#[allow(dead_code)]
mod http_support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

fn build_examples(profile_dir: &Path) {
    let target_dir = profile_dir.parent().expect("target directory");
    let features: Vec<&str> = [
        ("axum", cfg!(feature = "axum")),
        ("conformance", cfg!(feature = "conformance")),
        ("sqlite", cfg!(feature = "sqlite")),
        ("postgres", cfg!(feature = "postgres")),
        ("redis", cfg!(feature = "redis")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--example",
            "budgets_api",
            "--example",
            "increase_api",
        ])
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
    fn interrupt(mut self) -> (bool, String) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
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
async fn budgets_api_prints_its_address_honours_session_ttl_and_stops_on_ctrl_c() {
    let server = Running::start(
        "budgets_api",
        &["--addr", "127.0.0.1:0", "--session-ttl", "1"],
    );
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    assert!(!server.base.ends_with(":0"), "the bound port is printed");
    let client = http_support::client();

    let reply = http_support::send(
        client
            .post(format!("{}/api/sessions", server.base))
            .header("content-type", "application/json")
            .body(r#"{"email":"bondhansarker100@gmail.com","password":"111111"}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json()["token"].as_str().expect("token").to_owned();
    let budgets = format!("{}/api/budgets?token={token}", server.base);

    // One-second sessions: alive now, dead a little over a second later.
    let started = Instant::now();
    let alive = http_support::send(client.get(&budgets)).await;
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(alive.status, 200, "{alive:?}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let dead = http_support::send(client.get(&budgets)).await;
    assert_eq!(
        dead.pair(),
        (422, r#"{"message":"You are not checked in"}"#)
    );

    let (clean, rest) = server.interrupt();
    assert!(clean, "exit status after SIGINT is success");
    assert!(rest.contains("shut down"), "{rest:?}");
}

#[tokio::test]
async fn increase_api_serves_the_document_and_stops_on_ctrl_c() {
    let server = Running::start("increase_api", &["--addr", "127.0.0.1:0"]);
    let client = http_support::client();
    let reply = http_support::send(
        client
            .post(format!("{}/login", server.base))
            .header("content-type", "application/json")
            .body(r#"{"email":"test@increasecard.com","password":"password"}"#),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let token = reply.json()["client"]["auth_token"]
        .as_str()
        .expect("auth_token")
        .to_owned();
    let me = http_support::send(
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
        )
    );
    let (clean, _) = server.interrupt();
    assert!(clean, "exit status after SIGINT is success");
}

#[test]
fn unknown_store_is_a_clear_error() {
    let output = run_to_exit(Command::new(example("increase_api")).args([
        "--addr",
        "127.0.0.1:0",
        "--store",
        "mongodb://localhost",
    ]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unsupported --store `mongodb://localhost`"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    for (args, named) in [
        (&["--addr", "not-an-address"][..], "--addr"),
        (&["--session-ttl", "0"][..], "--session-ttl"),
        (&["--session-ttl", "soon"][..], "--session-ttl"),
        (&["--port", "3000"][..], "--port"),
    ] {
        let output = run_to_exit(Command::new(example("budgets_api")).args(args));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{stderr}");
    }
}

#[test]
fn help_lists_the_options_and_their_defaults() {
    let output = run_to_exit(Command::new(example("increase_api")).arg("--help"));
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in ["127.0.0.1:3000", "86400", "memory", "--store"] {
        assert!(help.contains(expected), "{expected} in {help}");
    }
}
