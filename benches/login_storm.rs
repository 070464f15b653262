//! Peak memory of a login storm: 500 concurrent failed logins with the default (OWASP)
//! argon2id parameters, against the documented bound `base + max_concurrent_hashes × m_cost`.
//!
//! `cargo bench --bench login_storm`. Linux only (reads `/proc/self/status`).
//!
//! Each variant runs in its own child process, so that one variant's peak (`VmHWM` only ever
//! grows) and the memory the allocator kept from it do not show up in the other's figures:
//!
//! - `pooled`: keycard's `Argon2Hasher`, which reuses a pool of argon2 memory buffers;
//! - `fresh`: the same authenticator with a hasher that allocates a fresh argon2 buffer for
//!   every hash and verification (argon2's own `hash_password` / `verify_password`, which is
//!   what `Argon2Hasher` did before the pool), for comparison.
//!
//! Logins that fail with anything other than `InvalidCredentials` (for example a full login
//! queue) are counted per error kind, not treated as a failure of the benchmark.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use keycard::{
    Argon2Hasher, Authenticator, ClientInfo, Error, MemoryTokenStore, MemoryUserStore,
    PasswordHasher, UserRecord,
};

/// Concurrent logins fired at once.
const LOGINS: usize = 500;
/// The authenticator's hashing bound (the default on the 2-CPU machine in BENCHMARKS.md).
const MAX_CONCURRENT_HASHES: usize = 2;
const EMAIL: &str = "ann@example.com";
const PASSWORD: &str = "correct horse battery staple";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--variant") {
        Some(i) => {
            let variant = args.get(i + 1).map(String::as_str).unwrap_or_default();
            run_variant(variant);
        }
        None => {
            let exe = std::env::current_exe().expect("path of the benchmark executable");
            for variant in ["pooled", "fresh"] {
                let status = Command::new(&exe)
                    .args(["--variant", variant])
                    .status()
                    .expect("run a variant in a child process");
                assert!(status.success(), "variant {variant} failed: {status}");
            }
        }
    }
}

fn run_variant(variant: &str) {
    let hasher = Argon2Hasher::default();
    let m_cost_kib = u64::from(hasher.params().m_cost());
    let users = MemoryUserStore::new();
    let builder = Authenticator::builder(users, MemoryTokenStore::new())
        .max_concurrent_hashes(MAX_CONCURRENT_HASHES)
        // Every one of the 500 logins really hashes: the worst case for memory (by default
        // the bounded queue would shed most of them at once).
        .max_queued_hashes(LOGINS)
        .without_throttle();
    let auth = match variant {
        "pooled" => builder.password_hasher(hasher).build(),
        "fresh" => builder
            .password_hasher(FreshAllocHasher::new(hasher))
            .build(),
        other => panic!("unknown variant {other:?}; expected pooled or fresh"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    rt.block_on(async {
        let phc = auth.hash_password(PASSWORD).await.expect("hash");
        auth.users()
            .insert(UserRecord::new(1_i64, EMAIL, phc))
            .expect("new user");
    });

    let base = status_kib("VmRSS");
    let started = Instant::now();
    let outcomes = rt.block_on(async {
        let tasks: Vec<_> = (0..LOGINS)
            .map(|i| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    // Half wrong passwords for the real user, half unknown emails.
                    let email = match i % 2 {
                        0 => EMAIL.to_owned(),
                        _ => format!("nobody{i}@example.com"),
                    };
                    auth.login(&email, &format!("guess {i}"), ClientInfo::none())
                        .await
                        .map(|_| ())
                })
            })
            .collect();
        let mut outcomes = BTreeMap::<String, usize>::new();
        for task in tasks {
            let kind = match task.await {
                Ok(Ok(())) => "Ok (unexpected)".to_owned(),
                Ok(Err(e)) => error_kind(&e),
                Err(join) => format!("task failed: {join}"),
            };
            *outcomes.entry(kind).or_default() += 1;
        }
        outcomes
    });
    let elapsed = started.elapsed();
    let peak = status_kib("VmHWM");
    let current = status_kib("VmRSS");
    let bound = base + MAX_CONCURRENT_HASHES as u64 * m_cost_kib;

    let label = match variant {
        "pooled" => "pooled buffers (Argon2Hasher)",
        _ => "fresh buffer per hash (argon2 hash_password/verify_password)",
    };
    println!("[{variant}] {label}");
    println!(
        "[{variant}] {LOGINS} concurrent logins, max_concurrent_hashes = {MAX_CONCURRENT_HASHES}, m_cost = {m_cost_kib} KiB: {:.2} s ({:.0} logins/s)",
        elapsed.as_secs_f64(),
        LOGINS as f64 / elapsed.as_secs_f64()
    );
    let outcomes: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k} = {n}")).collect();
    println!("[{variant}] outcomes: {}", outcomes.join(", "));
    println!(
        "[{variant}] base RSS before the storm (VmRSS): {}",
        mib(base)
    );
    println!(
        "[{variant}] peak RSS (VmHWM):                  {}",
        mib(peak)
    );
    println!(
        "[{variant}] current RSS after the storm (VmRSS): {}",
        mib(current)
    );
    println!(
        "[{variant}] bound base + {MAX_CONCURRENT_HASHES} × m_cost:          {} -> peak {}",
        mib(bound),
        match peak <= bound {
            true => "within the bound".to_owned(),
            false => format!("EXCEEDS the bound by {}", mib(peak - bound)),
        }
    );
}

/// The variant name of a keycard error (`InvalidCredentials`, `Throttled`, ...).
fn error_kind(e: &Error) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The code path `Argon2Hasher` used before the buffer pool: argon2's own `hash_password` and
/// `verify_password`, each allocating and freeing an `m_cost` buffer.
#[derive(Debug)]
struct FreshAllocHasher {
    params: Argon2Hasher,
    dummy: OnceLock<String>,
}

impl FreshAllocHasher {
    fn new(params: Argon2Hasher) -> Self {
        Self {
            params,
            dummy: OnceLock::new(),
        }
    }

    fn argon2(&self) -> argon2::Argon2<'static> {
        argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            self.params.params().clone(),
        )
    }
}

impl PasswordHasher for FreshAllocHasher {
    fn hash(&self, password: &[u8]) -> Result<String, Error> {
        let salt = argon2::password_hash::SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .expect("salt");
        Ok(self
            .argon2()
            .hash_password(password, &salt)
            .expect("hash")
            .to_string())
    }

    fn verify(&self, password: &[u8], phc: &str) -> Result<bool, Error> {
        let parsed = PasswordHash::new(phc).expect("valid stored hash");
        Ok(self.argon2().verify_password(password, &parsed).is_ok())
    }

    fn needs_rehash(&self, phc: &str) -> bool {
        self.params.needs_rehash(phc)
    }

    fn dummy_hash(&self) -> &str {
        self.dummy
            .get_or_init(|| self.hash(&rand::random::<[u8; 32]>()).expect("dummy hash"))
    }
}
