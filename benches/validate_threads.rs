//! `validate_session` of one session from one thread and from every core at once: what a load
//! test with one token sees. Every core reads the same record under the same shard lock; the
//! returned strings are copies, so no reference count is written by all of them.
//!
//! ```sh
//! cargo bench --bench validate_threads
//! ```
//!
//! Plain timing loops, no criterion, and no counting allocator (its global counters would be
//! the shared cache line under test). Figures are in BENCHMARKS.md.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keycard::{
    Authenticator, ClientInfo, MemoryTokenStore, MemoryUserStore, Session, Token, UserId,
    UserRecord,
};
use time::OffsetDateTime;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Validates per second of one session from 1 thread and from every core, each thread on its
/// own current-thread runtime: what a load test with one token sees, where every core reads
/// the same record (and, were strings shared by reference count, would write one count).
fn main() {
    const PER_THREAD: u32 = 2_000_000;
    let auth = Arc::new(
        Authenticator::builder(
            MemoryUserStore::<UserRecord>::new(),
            MemoryTokenStore::new(),
        )
        .without_throttle()
        .build(),
    );
    let token = Token::generate().expect("os rng");
    let client = ClientInfo::none()
        .with_ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        .with_user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36");
    // A UUID user id: longer than `UserId` keeps inline.
    let user = UserId::from("67e55044-10b1-426f-9247-bb680e5fe0c8");
    let session = Session::new(&token, user, OffsetDateTime::now_utc(), DAY, client);
    runtime()
        .block_on(auth.tokens().create(&session))
        .expect("create");
    let token = token.expose_secret().to_owned();
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    println!("threads: validate_session of one session, {PER_THREAD} per thread");
    println!("| threads | validates per second | ÷ one thread |");
    println!("|---|---|---|");
    let mut one = 0.0;
    for threads in [1, cores] {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    runtime().block_on(async {
                        for _ in 0..PER_THREAD {
                            let session = auth.validate_session(&token).await.expect("valid");
                            // Read as a caller would: the copies cannot be optimized away.
                            black_box(session.user_id.as_str());
                            black_box(session.client.user_agent.as_deref());
                        }
                    });
                });
            }
        });
        let rate = f64::from(PER_THREAD) * threads as f64 / started.elapsed().as_secs_f64();
        if threads == 1 {
            one = rate;
        }
        println!("| {threads} | {:.2} M | {:.2} |", rate / 1e6, rate / one);
    }
}
