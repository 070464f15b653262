//! `MemoryTokenStore` at scale: validate against a floor, heap bytes per session, purge
//! against a plain `retain`, and tail latency while the store grows and while it is purged.
//!
//! ```sh
//! cargo bench --bench memory_store                          # everything, a few minutes
//! KEYCARD_MEM_BENCH=memory,purge cargo bench --bench memory_store   # some parts only
//! KEYCARD_MEM_SIZES=1000,100000 cargo bench --bench memory_store    # other sizes
//! ```
//!
//! Parts (`KEYCARD_MEM_BENCH`, comma-separated, default all): `validate` (criterion:
//! `Authenticator::validate_session` beside the floors, hot and rotating over every live
//! session), `memory` (heap bytes the store holds per session, counted by a global allocator),
//! `purge` (`purge_expired` of every session beside `HashMap::retain` on the same sessions),
//! `tail` (p50/p99/p99.99/max of create, validate and logout while growing to 1.5M sessions,
//! then while a purge of 1M expired sessions runs on another thread, then while
//! `Authenticator::expire` runs as a task on the runtime serving the requests).
//!
//! The floor is the least any store can do for a validate: base64-decode the token, SHA-256
//! the secret, one `HashMap` get, a constant-time compare and an expiry check against a `now`
//! it is handed. The floor returning a session adds what any store must do to hand back what
//! `validate_session` returns: read the clock, take a read lock, and build the `Session` (three
//! `OffsetDateTime`s, the user id and the copied user agent). Figures are in BENCHMARKS.md.

use std::alloc::System;
use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{BenchmarkId, Criterion};
use keycard::{
    AuthMethods, Authenticator, ClientInfo, Clock, ManualClock, MemoryTokenStore, MemoryUserStore,
    SecretHash, Session, SessionId, SessionKind, SystemClock, Token, TokenStore, UserId,
    UserRecord,
};
use sha2::{Digest, Sha256};
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

type Auth = Authenticator<MemoryUserStore>;

const DAY: Duration = Duration::from_secs(24 * 3600);
/// Distinct user agents in the data set (each 100 bytes); sessions cycle through them.
const AGENTS: usize = 1000;
/// Sessions per user in the data set.
const SESSIONS_PER_USER: usize = 4;

fn parts() -> Vec<String> {
    std::env::var("KEYCARD_MEM_BENCH")
        .unwrap_or_else(|_| "validate,memory,purge,tail".into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect()
}

fn sizes() -> Vec<usize> {
    std::env::var("KEYCARD_MEM_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000])
}

/// Heap bytes currently allocated through the global allocator.
fn heap() -> i128 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i128 - s.bytes_deallocated as i128
}

/// `f()`, and the heap bytes it left allocated.
fn measured<T>(f: impl FnOnce() -> T) -> (T, i128) {
    let before = heap();
    let value = f();
    (value, heap() - before)
}

/// A copy of `s` sharing no allocation with it (the store may hold on to `s`'s).
fn detached(s: &Session) -> Session {
    let mut copy = s.clone();
    copy.user_id = UserId::from(s.user_id.as_str());
    copy.client.user_agent = s.client.user_agent.clone();
    copy
}

fn allocations() -> usize {
    GLOBAL.stats().allocations + GLOBAL.stats().reallocations
}

fn agents() -> Vec<String> {
    (0..AGENTS)
        .map(|i| format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{i:05}.0 Safari/537.36"))
        .map(|mut s| {
            s.truncate(100);
            while s.len() < 100 {
                s.push('x');
            }
            s
        })
        .collect()
}

/// Session `i` of a data set of `n`: IPv4 client, a 100-byte agent, 4 sessions per user.
fn session(
    i: usize,
    n: usize,
    agents: &[String],
    now: OffsetDateTime,
    ttl: Duration,
) -> (Token, Session) {
    let token = Token::generate().expect("os rng");
    let users = (n / SESSIONS_PER_USER).max(1);
    let client = ClientInfo::none()
        .with_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32)))
        .with_user_agent(&agents[i % agents.len()]);
    let s = Session::new(&token, UserId::from((i % users) as u64), now, ttl, client);
    (token, s)
}

/// `session`, its strings handed to `black_box` as a caller would read them: without that the
/// compiler may drop the copy of a string nobody reads (it does, for the user agent), and the
/// bench would time and count less than a real validate does.
fn read(session: Session) -> Session {
    black_box(session.user_id.as_str());
    black_box(session.client.user_agent.as_deref());
    session
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn row(name: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    let us = |v: u64| v as f64 / 1000.0;
    println!(
        "| {name} | {} | {:.2} µs | {:.2} µs | {:.1} µs | {:.1} µs | {} |",
        ns.len(),
        us(percentile(&ns, 0.5)),
        us(percentile(&ns, 0.99)),
        us(percentile(&ns, 0.9999)),
        us(*ns.last().unwrap_or(&0)),
        ns.iter().filter(|&&v| v > 1_000_000).count(),
    );
}

/// What the floor keeps per session.
#[derive(Clone)]
struct FloorRecord {
    secret_hash: [u8; 32],
    expires: i64,
}

/// The floor's token work: the id and the secret's digest, and whether both decoded to
/// their exact lengths.
fn floor_parse(token: &str) -> ([u8; 16], [u8; 32], bool) {
    let (id, secret) = token.split_at(22);
    let mut idb = [0u8; 24];
    let mut sb = [0u8; 48];
    let n = URL_SAFE_NO_PAD.decode_slice(id, &mut idb).unwrap_or(0);
    let m = URL_SAFE_NO_PAD
        .decode_slice(&secret[1..], &mut sb)
        .unwrap_or(0);
    let key: [u8; 16] = idb[..16].try_into().expect("16 bytes");
    let digest: [u8; 32] = Sha256::digest(&sb[..32]).into();
    (key, digest, n == 16 && m == 32)
}

fn floor_validate(map: &HashMap<[u8; 16], FloorRecord>, token: &str, now: i64) -> bool {
    let (key, digest, well_formed) = floor_parse(token);
    match map.get(&key) {
        Some(r) => well_formed && bool::from(r.secret_hash.ct_eq(&digest)) && now < r.expires,
        None => false,
    }
}

/// What the floor returning a session keeps per session: the floor's record, and the data a
/// [`Session`] carries (user agents shared by the map, as the store interns them).
#[derive(Clone)]
struct SessionFloorRecord {
    secret_hash: [u8; 32],
    user_id: UserId,
    created: i64,
    expires: i64,
    seen: i64,
    ip: Option<IpAddr>,
    agent: Option<Arc<str>>,
    amr: u8,
}

/// The floor, plus what any store must add to hand back what `validate_session` returns: a
/// clock read (the floor is handed `now`), a read lock around the map, and the returned
/// `Session` (its three times built from stored microseconds, the inline user id copied and
/// the user agent copied).
fn floor_returning_session(
    map: &RwLock<HashMap<[u8; 16], SessionFloorRecord>>,
    token: &str,
) -> Option<Session> {
    let now = micros(SystemClock.now());
    let (key, digest, well_formed) = floor_parse(token);
    let map = map.read().unwrap_or_else(PoisonError::into_inner);
    let r = map.get(&key)?;
    if !(well_formed && bool::from(r.secret_hash.ct_eq(&digest)) && now < r.expires) {
        return None;
    }
    Some(Session {
        id: SessionId::from_bytes(key),
        user_id: r.user_id.clone(),
        secret_hash: SecretHash::from_bytes(r.secret_hash),
        created_at: instant(r.created),
        expires_at: instant(r.expires),
        last_seen_at: instant(r.seen),
        client: {
            let mut client = ClientInfo::none();
            client.ip = r.ip;
            client.user_agent = r.agent.as_deref().map(str::to_owned);
            client
        },
        amr: AuthMethods::from_bits(r.amr),
        kind: SessionKind::Interactive,
    })
}

fn instant(micros: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::microseconds(micros)
}

fn micros(t: OffsetDateTime) -> i64 {
    t.unix_timestamp() * 1_000_000 + i64::from(t.microsecond())
}

/// A data set of `n` live sessions in a store and in the floor's map.
struct DataSet {
    auth: Auth,
    tokens: Vec<String>,
    floor: HashMap<[u8; 16], FloorRecord>,
    session_floor: RwLock<HashMap<[u8; 16], SessionFloorRecord>>,
    sessions: Vec<Session>,
    /// Heap bytes the store's creates kept.
    store_bytes: i128,
}

fn build(
    rt: &tokio::runtime::Runtime,
    n: usize,
    keep_sessions: bool,
    ttl: impl Fn(usize) -> Duration,
) -> DataSet {
    let agents = agents();
    let shared_agents: Vec<Arc<str>> = agents.iter().map(|a| Arc::from(a.as_str())).collect();
    // The store itself, not an `Arc` of it: the authenticator wraps it (one boxed future per
    // store call, as in an application).
    let auth = Authenticator::builder(
        MemoryUserStore::<UserRecord>::new(),
        MemoryTokenStore::new(),
    )
    .without_throttle()
    .build();
    let store = auth.tokens().clone();
    let now = OffsetDateTime::now_utc();
    let mut tokens = Vec::with_capacity(n);
    let mut floor = HashMap::with_capacity(n);
    let mut session_floor = HashMap::with_capacity(n);
    let mut sessions = Vec::new();
    let mut store_bytes = 0;
    rt.block_on(async {
        for i in 0..n {
            // Counted: everything allocated from building the login's session (as a request
            // would) until it is dropped, less what the bench keeps. The store may keep the
            // session's own allocations (a clone of a long user id shares its string), and those
            // count.
            let before = heap();
            let (token, s) = session(i, n, &agents, now, ttl(i));
            store.create(&s).await.expect("create");
            let (secret, kept_by_bench) = measured(|| token.expose_secret().to_owned());
            let (detached, kept_too) = measured(|| keep_sessions.then(|| detached(&s)));
            let floor_entry = (*s.id.as_bytes(), *s.secret_hash.as_bytes(), s.expires_at);
            let session_floor_entry = SessionFloorRecord {
                secret_hash: *s.secret_hash.as_bytes(),
                user_id: s.user_id.clone(),
                created: micros(s.created_at),
                expires: micros(s.expires_at),
                seen: micros(s.last_seen_at),
                ip: s.client.ip,
                agent: Some(shared_agents[i % shared_agents.len()].clone()),
                amr: s.amr.bits(),
            };
            drop((token, s));
            store_bytes += heap() - before - kept_by_bench - kept_too;
            tokens.push(secret);
            session_floor.insert(floor_entry.0, session_floor_entry);
            let s = floor_entry;
            floor.insert(
                s.0,
                FloorRecord {
                    secret_hash: s.1,
                    expires: micros(s.2),
                },
            );
            sessions.extend(detached);
        }
    });
    DataSet {
        auth,
        tokens,
        floor,
        session_floor: RwLock::new(session_floor),
        sessions,
        store_bytes,
    }
}

fn validate_part(c: &mut Criterion, rt: &tokio::runtime::Runtime, data: &DataSet, n: usize) {
    let now = micros(OffsetDateTime::now_utc());
    let mut group = c.benchmark_group("memory_validate");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let hot = &data.tokens[0];
    if n == sizes()[0] {
        group.bench_function("hot/validate_session", |b| {
            b.to_async(rt)
                .iter(|| async { read(data.auth.validate_session(hot).await.expect("valid")) });
        });
        group.bench_function("hot/floor", |b| {
            b.iter(|| assert!(floor_validate(&data.floor, black_box(hot), now)));
        });
        // What every concurrent store adds to the floor, measured beside it: the clock read a
        // real expiry check needs (the floor is handed `now`), and a read lock around the map.
        group.bench_function("hot/clock_read", |b| b.iter(|| SystemClock.now()));
        let locked = RwLock::new(data.floor.clone());
        group.bench_function("hot/floor_with_clock_and_lock", |b| {
            b.iter(|| {
                let now = micros(SystemClock.now());
                let map = locked.read().unwrap_or_else(PoisonError::into_inner);
                assert!(floor_validate(&map, black_box(hot), now));
            });
        });
        group.bench_function("hot/floor_returning_session", |b| {
            b.iter(|| {
                read(floor_returning_session(&data.session_floor, black_box(hot)).expect("valid"))
            });
        });
    }
    let len = data.tokens.len();
    group.bench_function(BenchmarkId::new("rotating/validate_session", n), |b| {
        let mut i = 0;
        b.to_async(rt).iter(|| {
            i = (i + 1) % len;
            let t = &data.tokens[i];
            async move { read(data.auth.validate_session(t).await.expect("valid")) }
        });
    });
    group.bench_function(BenchmarkId::new("rotating/floor", n), |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % len;
            assert!(floor_validate(&data.floor, &data.tokens[i], now));
        });
    });
    group.bench_function(
        BenchmarkId::new("rotating/floor_returning_session", n),
        |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % len;
                read(floor_returning_session(&data.session_floor, &data.tokens[i]).expect("valid"))
            });
        },
    );
    group.finish();
    // Allocations per validate_session (the returned Session's strings included).
    let before = allocations();
    let rounds = 10_000.min(len);
    rt.block_on(async {
        for t in data.tokens.iter().take(rounds) {
            black_box(read(data.auth.validate_session(t).await.expect("valid")));
        }
    });
    println!(
        "allocations per validate_session at {n}: {:.2} (the returned Session's user agent; its integer user id is inline)",
        (allocations() - before) as f64 / rounds as f64
    );
}

/// Purges `data` at `later`, when `expired` of its sessions are expired, beside a `retain`.
fn purge_part(
    rt: &tokio::runtime::Runtime,
    data: DataSet,
    later: OffsetDateTime,
    expired: usize,
    what: &str,
) {
    let n = data.tokens.len();
    let mut map: HashMap<_, _> = data.sessions.into_iter().map(|s| (s.id, s)).collect();
    // The purge first: the retain frees two strings per session, and glibc makes the next
    // large free after that (the purge's, if it came second) consolidate them all.
    let start = Instant::now();
    let purged = rt
        .block_on(data.auth.tokens().purge_expired(later))
        .expect("purge");
    let purge = start.elapsed();
    assert_eq!(purged as usize, expired);
    let start = Instant::now();
    map.retain(|_, s| !s.is_expired(later));
    let retain = start.elapsed();
    assert_eq!(map.len(), n - expired);
    drop(map);
    println!(
        "| purge {n}, {what} | {:.1} ms | retain on HashMap<SessionId, Session> {:.1} ms | ratio {:.2} |",
        purge.as_secs_f64() * 1e3,
        retain.as_secs_f64() * 1e3,
        purge.as_secs_f64() / retain.as_secs_f64()
    );
}

fn tail_part(rt: &tokio::runtime::Runtime) {
    let total: usize = std::env::var("KEYCARD_MEM_TAIL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_500_000);
    let agents = agents();
    let store = Arc::new(MemoryTokenStore::new());
    let t0 = OffsetDateTime::now_utc();
    let clock = ManualClock::new(t0);
    let auth: Auth = Authenticator::builder(MemoryUserStore::new(), store.clone())
        .clock(clock.clone())
        .without_throttle()
        .build();
    let mut creates = Vec::with_capacity(total);
    let mut validates = Vec::with_capacity(total);
    let mut logouts = Vec::with_capacity(total / 10);
    // A timed section that cannot wait for the store (SHA-256 of 1 KiB, about a
    // microsecond, like the operations) in the same loop: what the machine alone adds to the
    // tails (preemption on these shared cores).
    let mut control = Vec::with_capacity(total);
    let mut tokens: Vec<String> = Vec::with_capacity(total);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    println!("tail: growing an unsized MemoryTokenStore to {total} sessions (1 ms of simulated time per login; 1 in 4 sessions lives 5 minutes, the rest a day)");
    let started = Instant::now();
    rt.block_on(async {
        for i in 0..total {
            let now = t0 + Duration::from_millis(i as u64);
            clock.set(now);
            let ttl = if i % 4 == 0 {
                Duration::from_secs(300)
            } else {
                DAY
            };
            let (token, s) = session(i, total, &agents, now, ttl);
            let start = Instant::now();
            store.create(&s).await.expect("create");
            creates.push(start.elapsed().as_nanos() as u64);
            tokens.push(token.expose_secret().to_owned());
            let t = &tokens[(next() % tokens.len() as u64) as usize];
            let start = Instant::now();
            let _ = black_box(auth.validate_session(t).await.map(read));
            validates.push(start.elapsed().as_nanos() as u64);
            let start = Instant::now();
            black_box(Sha256::digest(black_box([i as u8; 1024])));
            control.push(start.elapsed().as_nanos() as u64);
            if i % 10 == 9 {
                let t = &tokens[(next() % tokens.len() as u64) as usize];
                let start = Instant::now();
                let _ = black_box(auth.logout(t).await.expect("logout"));
                logouts.push(start.elapsed().as_nanos() as u64);
            }
        }
    });
    println!(
        "grew in {:.1} s; {} sessions held at the end (expired ones are swept by the store itself)",
        started.elapsed().as_secs_f64(),
        store.len()
    );
    println!("| operation | count | p50 | p99 | p99.99 | max | over 1 ms |");
    println!("|---|---|---|---|---|---|---|");
    row("create (growing to 1.5M)", std::mem::take(&mut creates));
    row("validate_session (growing)", std::mem::take(&mut validates));
    row("logout (growing)", std::mem::take(&mut logouts));
    row("control: SHA-256 of 1 KiB", std::mem::take(&mut control));
    drop(tokens);

    // Sweep: a store of 1M sessions, half of them expired; one thread purges while this one
    // works on the same store.
    let n = 1_000_000.min(total);
    let data = build(rt, n, false, |i| if i % 2 == 0 { DAY } else { 3 * DAY });
    let store = data.auth.tokens().clone();
    let later = OffsetDateTime::now_utc() + 2 * DAY;
    let clock = ManualClock::new(later);
    let auth: Auth = Authenticator::builder(MemoryUserStore::new(), store.clone())
        .clock(clock.clone())
        .without_throttle()
        .build();
    let purger = {
        let store = store.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let n = runtime()
                .block_on(store.purge_expired(later))
                .expect("purge");
            (n, start.elapsed())
        })
    };
    let mut fresh: Vec<String> = Vec::new();
    rt.block_on(async {
        let mut i = 0;
        while !purger.is_finished() || i < 1000 {
            let (token, s) = session(i, n, &agents, later, DAY);
            let start = Instant::now();
            store.create(&s).await.expect("create");
            creates.push(start.elapsed().as_nanos() as u64);
            fresh.push(token.expose_secret().to_owned());
            // Half the validates hit a fresh session, half one of the million (half of those
            // expired, being purged).
            let t = if i % 2 == 0 {
                &fresh[(next() % fresh.len() as u64) as usize]
            } else {
                &data.tokens[(next() % data.tokens.len() as u64) as usize]
            };
            let start = Instant::now();
            let _ = black_box(auth.validate_session(t).await.map(read));
            validates.push(start.elapsed().as_nanos() as u64);
            let start = Instant::now();
            black_box(Sha256::digest(black_box([i as u8; 1024])));
            control.push(start.elapsed().as_nanos() as u64);
            i += 1;
        }
    });
    let (purged, took) = purger.join().expect("purger");
    println!(
        "sweep: purge_expired removed {purged} sessions in {:.0} ms on another thread, meanwhile:",
        took.as_secs_f64() * 1e3
    );
    println!("| operation | count | p50 | p99 | p99.99 | max | over 1 ms |");
    println!("|---|---|---|---|---|---|---|");
    row("create (during purge)", std::mem::take(&mut creates));
    row(
        "validate_session (during purge)",
        std::mem::take(&mut validates),
    );
    row("control: SHA-256 of 1 KiB", control);
    drop((auth, store, data, fresh));

    // The same purge as an application runs it: `Authenticator::expire` as a task on the
    // runtime that serves the requests (what `spawn_expiry_task` does), here a current-thread
    // runtime. Each request first yields, as a handler awaiting its socket does, and its time
    // counts from there: the time it waited for the purge to hand the thread back, plus its
    // own.
    let data = build(rt, n, false, |i| if i % 2 == 0 { DAY } else { 3 * DAY });
    let store = data.auth.tokens().clone();
    let clock = ManualClock::new(later);
    let auth: Auth = Authenticator::builder(MemoryUserStore::new(), store.clone())
        .clock(clock.clone())
        .without_throttle()
        .build();
    let mut fresh: Vec<String> = Vec::new();
    let local = tokio::task::LocalSet::new();
    let (purged, took) = local.block_on(rt, async {
        let expiry = {
            let auth = auth.clone();
            tokio::task::spawn_local(async move {
                let start = Instant::now();
                let n = auth.expire().await.expect("purge");
                (n, start.elapsed())
            })
        };
        let mut i = 0;
        while !expiry.is_finished() || i < 1000 {
            let (token, s) = session(i, n, &agents, later, DAY);
            let start = Instant::now();
            tokio::task::yield_now().await;
            store.create(&s).await.expect("create");
            creates.push(start.elapsed().as_nanos() as u64);
            fresh.push(token.expose_secret().to_owned());
            let t = if i % 2 == 0 {
                &fresh[(next() % fresh.len() as u64) as usize]
            } else {
                &data.tokens[(next() % data.tokens.len() as u64) as usize]
            };
            let start = Instant::now();
            tokio::task::yield_now().await;
            let _ = black_box(auth.validate_session(t).await.map(read));
            validates.push(start.elapsed().as_nanos() as u64);
            i += 1;
        }
        expiry.await.expect("expiry task")
    });
    println!(
        "sweep on the request runtime: Authenticator::expire removed {purged} sessions in {:.0} ms as a task on the current-thread runtime serving these requests (each yields first):",
        took.as_secs_f64() * 1e3
    );
    println!("| operation | count | p50 | p99 | p99.99 | max | over 1 ms |");
    println!("|---|---|---|---|---|---|---|");
    row("create (purge on the same runtime)", creates);
    row("validate_session (purge on the same runtime)", validates);
}

fn main() {
    let parts = parts();
    let has = |p: &str| parts.iter().any(|x| x == p);
    let rt = runtime();
    let mut c = Criterion::default().configure_from_args();
    let mut memory_rows = Vec::new();
    for n in sizes() {
        if !(has("validate") || has("memory") || has("purge")) {
            break;
        }
        let data = build(&rt, n, has("purge"), |_| DAY);
        memory_rows.push((n, data.store_bytes));
        println!(
            "memory: {n} sessions: {} heap bytes kept by the store's creates, {:.1} B per session",
            data.store_bytes,
            data.store_bytes as f64 / n as f64
        );
        if has("validate") {
            validate_part(&mut c, &rt, &data, n);
        }
        if has("purge") {
            let later = OffsetDateTime::now_utc() + 2 * DAY;
            purge_part(&rt, data, later, n, "all expired");
            let mixed = build(&rt, n, true, |i| if i % 2 == 0 { DAY } else { 3 * DAY });
            purge_part(&rt, mixed, later, n / 2, "half expired");
        }
    }
    if has("memory") {
        println!("| sessions | heap bytes held by the store | per session |");
        println!("|---|---|---|");
        for (n, bytes) in &memory_rows {
            println!("| {n} | {bytes} | {:.1} B |", *bytes as f64 / *n as f64);
        }
    }
    if has("tail") {
        tail_part(&rt);
    }
    c.final_summary();
}
