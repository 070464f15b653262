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
//!
//! Then, with every default of the authenticator (admission by expected wait):
//!
//! - `burst`: 40 logins with the right password from 40 addresses at the same instant: how
//!   many get in at the first try, and the slowest;
//! - `storm`: 3,000 concurrent wrong-password logins from 3,000 addresses: how many are
//!   shed with `Overloaded` (HTTP 503), how fast a refusal comes, its `Retry-After`, and the
//!   peak RSS against `base + max_concurrent_hashes × m_cost`;
//! - `flood`: one address registering as fast as 80 tasks can for 4 s while 25 logins come
//!   from other addresses: what each side gets.

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
            for variant in ["pooled", "fresh", "burst", "storm", "flood"] {
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
    match variant {
        "burst" => return burst(),
        "storm" => return storm(),
        "flood" => return flood(),
        _ => {}
    }
    let hasher = Argon2Hasher::default();
    let m_cost_kib = u64::from(hasher.m_cost_kib());
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
        let p = &self.params;
        argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(p.m_cost_kib(), p.t_cost(), p.p_cost(), None).expect("params"),
        )
    }
}

impl PasswordHasher for FreshAllocHasher {
    fn hash(&self, password: &[u8]) -> Result<String, keycard::HashError> {
        let salt = argon2::password_hash::SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .expect("salt");
        Ok(self
            .argon2()
            .hash_password(password, &salt)
            .expect("hash")
            .to_string())
    }

    fn verify(&self, password: &[u8], phc: &str) -> Result<bool, keycard::HashError> {
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

/// The default authenticator over memory stores with Ann registered, the pool warmed by one
/// login (a running server has hashed before), and a multi-threaded runtime.
fn defaults() -> (
    tokio::runtime::Runtime,
    Authenticator<MemoryUserStore<UserRecord>>,
) {
    let auth = Authenticator::builder(MemoryUserStore::new(), MemoryTokenStore::new()).build();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let me = ClientInfo::none().with_ip(ip(0));
        auth.register(EMAIL, PASSWORD, &me).await.expect("register");
        auth.login(EMAIL, PASSWORD, me)
            .await
            .expect("warm-up login");
    });
    (rt, auth)
}

/// The `n`th distinct client address (10.0.0.0/8).
fn ip(n: u32) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n))
}

/// A latency in milliseconds, to one decimal.
fn ms(d: std::time::Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The `q`-quantile of sorted durations.
fn quantile(sorted: &[std::time::Duration], q: f64) -> std::time::Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn burst() {
    const CLIENTS: u32 = 40;
    let (rt, auth) = defaults();
    let results = rt.block_on(async {
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS as usize));
        let tasks: Vec<_> = (1..=CLIENTS)
            .map(|n| {
                let (auth, start) = (auth.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let began = Instant::now();
                    let outcome = auth
                        .login(EMAIL, PASSWORD, ClientInfo::none().with_ip(ip(n)))
                        .await
                        .map(|_| ());
                    (outcome, began.elapsed())
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("login task"));
        }
        results
    });
    let ok = results.iter().filter(|(r, _)| r.is_ok()).count();
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let mut refused = BTreeMap::<String, usize>::new();
    for (result, _) in &results {
        if let Err(e) = result {
            *refused.entry(error_kind(e)).or_default() += 1;
        }
    }
    println!(
        "[burst] {CLIENTS} simultaneous logins from {CLIENTS} addresses (hash estimate after warm-up: one login): {ok}/{CLIENTS} in at the first try, slowest {}, refused {refused:?}",
        ms(slowest)
    );
}

fn storm() {
    const CLIENTS: u32 = 3_000;
    let (rt, auth) = defaults();
    let m_cost_kib = u64::from(Argon2Hasher::default().m_cost_kib());
    let permits = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let base = status_kib("VmRSS");
    let began = Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (1..=CLIENTS)
            .map(|n| {
                let auth = auth.clone();
                tokio::spawn(async move {
                    let began = Instant::now();
                    let outcome = auth
                        .login(EMAIL, "a wrong guess", ClientInfo::none().with_ip(ip(n)))
                        .await
                        .map(|_| ());
                    (outcome, began.elapsed())
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("login task"));
        }
        results
    });
    let elapsed = began.elapsed();
    let peak = status_kib("VmHWM");
    let mut shed: Vec<_> = results
        .iter()
        .filter(|(r, _)| matches!(r, Err(Error::Overloaded { .. })))
        .map(|(_, d)| *d)
        .collect();
    shed.sort();
    let retry_after: std::collections::BTreeSet<u64> = results
        .iter()
        .filter_map(|(r, _)| r.as_ref().err().and_then(Error::retry_after_secs))
        .collect();
    let mut kinds = BTreeMap::<String, usize>::new();
    for (result, _) in &results {
        let kind = match result {
            Ok(()) => "Ok".to_owned(),
            Err(e) => error_kind(e),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let bound = base + permits as u64 * m_cost_kib;
    println!("[storm] {CLIENTS} concurrent wrong-password logins from {CLIENTS} addresses, every default ({permits} hashing permits): {:.2} s, outcomes {kinds:?}", elapsed.as_secs_f64());
    println!(
        "[storm] 503 (Overloaded) answered in: p50 {}, p99 {}, max {}; Retry-After values (s): {retry_after:?}",
        ms(quantile(&shed, 0.5)),
        ms(quantile(&shed, 0.99)),
        ms(shed.last().copied().unwrap_or_default())
    );
    println!(
        "[storm] RSS base {}, peak {}, bound base + {permits} × m_cost = {} -> {}",
        mib(base),
        mib(peak),
        mib(bound),
        if peak <= bound { "within" } else { "EXCEEDED" }
    );
}

fn flood() {
    const FLOODERS: usize = 80;
    let (rt, auth) = defaults();
    let (created, refused, other, victim_ok) = rt.block_on(async {
        let deadline = Instant::now() + std::time::Duration::from_secs(4);
        let attacker = ClientInfo::none().with_ip(ip(9));
        let tasks: Vec<_> = (0..FLOODERS)
            .map(|worker| {
                let (auth, attacker) = (auth.clone(), attacker.clone());
                tokio::spawn(async move {
                    let mut counts = [0usize; 3];
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let email = format!("flood-{worker}-{n}@example.com");
                        let slot = match auth
                            .register(&email, "a perfectly fine passphrase", &attacker)
                            .await
                        {
                            Ok(_) => 0,
                            Err(Error::Throttled { .. }) => 1,
                            Err(_) => 2,
                        };
                        counts[slot] += 1;
                        n += 1;
                        tokio::task::yield_now().await;
                    }
                    counts
                })
            })
            .collect();
        let mut victim_ok = 0;
        for n in 0..25 {
            let from = ClientInfo::none().with_ip(ip(100 + n));
            if auth.login(EMAIL, PASSWORD, from).await.is_ok() {
                victim_ok += 1;
            }
            tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        }
        let mut totals = [0usize; 3];
        for task in tasks {
            let counts = task.await.expect("flood task");
            for (total, count) in totals.iter_mut().zip(counts) {
                *total += count;
            }
        }
        (totals[0], totals[1], totals[2], victim_ok)
    });
    println!(
        "[flood] one address, {FLOODERS} tasks registering for 4 s: {created} created, {refused} throttled (429), {other} other; 25 logins from other addresses meanwhile: {victim_ok}/25 in at the first try"
    );
}
