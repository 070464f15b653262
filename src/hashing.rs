//! Running password hashes off the async executor: bounded concurrency, and a queue bounded
//! by the wait it implies.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::error::{Error, HashError, Result};
use crate::password::PasswordHasher;

/// How long an overloaded login is told to wait before retrying, at least.
pub(crate) const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What one hash is assumed to cost until the pool has timed one: on the low side (OWASP
/// parameters take about 20-50 ms on one core), so that a burst arriving before the first
/// hash has finished is not refused on a guess; the first measurement replaces it.
const INITIAL_HASH_ESTIMATE: Duration = Duration::from_millis(10);

/// At most `max_concurrent` hashes run at once, on Tokio's blocking pool. A caller that finds
/// every slot busy waits for one only if the wait this implies (the queue ahead of it times
/// the time a hash takes, divided by the slots) is within `max_wait`, and at most
/// `max_queued` callers wait at all. Beyond that, [`Error::Overloaded`] at once, with the
/// expected wait as `retry_after`. The time a hash takes is learned from the hashes the pool
/// runs ([`HashTime`]), so the queue is as long as the machine can drain in `max_wait`.
pub(crate) struct HashPool {
    hasher: Arc<dyn PasswordHasher>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    queued: AtomicUsize,
    max_queued: usize,
    max_wait: Duration,
    /// What one run takes, learned from the runs.
    hash_time: Arc<HashTime>,
}

impl HashPool {
    pub(crate) fn new(
        hasher: Arc<dyn PasswordHasher>,
        max_concurrent: usize,
        max_queued: usize,
        max_wait: Duration,
    ) -> Self {
        Self {
            hasher,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent: max_concurrent.max(1),
            queued: AtomicUsize::new(0),
            max_queued,
            max_wait,
            hash_time: Arc::new(HashTime::default()),
        }
    }

    /// The learned time one hash takes.
    pub(crate) fn hash_estimate(&self) -> Duration {
        self.hash_time.estimate()
    }

    /// How long a caller joining a queue of `queued` would wait for a slot.
    fn wait_behind(&self, queued: usize) -> Duration {
        let per_slot = nanos(self.hash_estimate()) / self.max_concurrent as u64;
        Duration::from_nanos(per_slot.saturating_mul(queued as u64 + 1))
    }

    /// Whether a caller behind `queued` others may wait.
    fn may_queue(&self, queued: usize) -> bool {
        queued < self.max_queued && self.wait_behind(queued) <= self.max_wait
    }

    /// The refusal for a caller that found the queue at `queued`: retry once the queue has
    /// drained to what `max_wait` allows.
    fn overloaded(&self, queued: usize) -> Error {
        let excess = self.wait_behind(queued).saturating_sub(self.max_wait);
        Error::Overloaded {
            retry_after: excess.max(OVERLOADED_RETRY_AFTER),
        }
    }

    /// `Err` if a hash asked for now would be refused (a cheap early check, before any
    /// throttle or store work; [`run`](Self::run) decides for real).
    pub(crate) fn admit(&self) -> Result<()> {
        if self.permits.available_permits() > 0 {
            return Ok(());
        }
        let queued = self.queued.load(Ordering::Relaxed);
        match self.may_queue(queued) {
            true => Ok(()),
            false => Err(self.overloaded(queued)),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit moves into the
    /// blocking task, so the bound holds even when the caller's future is dropped mid-hash.
    /// Outside a Tokio runtime the work runs inline.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when the queue is full or the wait it implies is too long;
    /// `work`'s own errors as `Error::from(HashError)` ([`Error::PasswordHash`], or
    /// [`Error::Randomness`] for a salt that could not be drawn); a [`HashError`] of kind
    /// [`TaskFailed`](crate::HashErrorKind::TaskFailed) if the blocking task panicked.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn PasswordHasher) -> Result<T, HashError> + Send + 'static,
    {
        let hasher = Arc::clone(&self.hasher);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return work(&*hasher).map_err(Error::from);
        };
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _place = QueuePlace::take(&self.queued, |n| self.may_queue(n))
                    .map_err(|n| self.overloaded(n))?;
                // The semaphore is never closed, so acquiring only waits.
                Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Overloaded {
                        retry_after: OVERLOADED_RETRY_AFTER,
                    })?
            }
        };
        let hash_time = Arc::clone(&self.hash_time);
        handle
            .spawn_blocking(move || {
                let _permit = permit;
                let started = Instant::now();
                let done = work(&*hasher);
                let took = started.elapsed();
                hash_time.learn(took);
                warn_if_unoptimised(took);
                done
            })
            .await
            .map_err(HashError::task_failed)?
            .map_err(Error::from)
    }
}

/// A hash slower than this in a debug build means argon2 itself runs unoptimised.
const SLOW_DEBUG_HASH: Duration = Duration::from_millis(200);

/// Set once the unoptimised-build warning was logged: it is logged once per process.
static WARNED_UNOPTIMISED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The first time a hash takes over [`SLOW_DEBUG_HASH`] in a debug build, logs (once) what
/// to add to the application's `Cargo.toml`: a dependency's profile settings do not reach
/// its dependents, so argon2 runs unoptimised in their debug builds, 20 times slower.
fn warn_if_unoptimised(took: Duration) {
    warn_once_if_slow(&WARNED_UNOPTIMISED, took);
}

fn warn_once_if_slow(warned: &std::sync::atomic::AtomicBool, took: Duration) {
    if cfg!(debug_assertions) && took > SLOW_DEBUG_HASH && !warned.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            "keycard: a password hash took over 200 ms: argon2 is running unoptimised in this \
             debug build, which makes every login and registration slow. Add these lines to \
             your Cargo.toml (the workspace root's) to optimise it even in debug builds:\n\n\
             [profile.dev.package.argon2]\nopt-level = 3\n\
             [profile.dev.package.blake2]\nopt-level = 3\n"
        );
    }
}

/// How many runs the learned hash time averages over: the first ones' plain mean, then a
/// moving average with this weight's inverse (1/8: a few hashes adapt it to a new machine or
/// load, one outlier moves it little).
const LEARNING_WINDOW: u64 = 8;

/// What one hash takes, learned from the runs: the mean of the first
/// [`LEARNING_WINDOW`] runs, then a moving average over about as many. The first run of a
/// fresh instance is often slow (a cold start, a machine busy starting it); as one sample
/// among the first eight it moves the estimate as much as any other, where a moving average
/// seeded with it would keep it high, and refuse bursts the machine can serve, for dozens of
/// runs. Races between runs lose a sample at worst.
#[derive(Default)]
struct HashTime {
    /// The estimate in nanoseconds; [`UNMEASURED`] before the first run.
    nanos: AtomicU64,
    /// Runs timed so far: how many the estimate averages, up to [`LEARNING_WINDOW`].
    runs: AtomicU64,
}

impl HashTime {
    fn estimate(&self) -> Duration {
        match self.nanos.load(Ordering::Relaxed) {
            UNMEASURED => INITIAL_HASH_ESTIMATE,
            measured => Duration::from_nanos(measured),
        }
    }

    /// Folds one run's duration in.
    fn learn(&self, took: Duration) {
        let runs = self
            .runs
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
            .min(LEARNING_WINDOW);
        let sample = nanos(took).max(1);
        let new = match self.nanos.load(Ordering::Relaxed) {
            UNMEASURED => sample,
            old => old - old / runs + sample / runs,
        };
        self.nanos.store(new.max(1), Ordering::Relaxed);
    }
}

/// The estimate before the first hash was timed ([`INITIAL_HASH_ESTIMATE`] applies).
const UNMEASURED: u64 = 0;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl fmt::Debug for HashPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPool")
            .field("hasher", &self.hasher)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_queued", &self.max_queued)
            .field("max_wait", &self.max_wait)
            .field("hash_estimate", &self.hash_estimate())
            .finish()
    }
}

/// One place in the wait queue, given back on drop (also when the waiting future is dropped).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    /// A place if `allowed(places taken)`, in one atomic step; else the count it found.
    fn take(
        queued: &'a AtomicUsize,
        allowed: impl Fn(usize) -> bool,
    ) -> std::result::Result<Self, usize> {
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                allowed(n).then_some(n + 1)
            })
            .map(|_| Self(queued))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::Argon2Hasher;

    /// Collects what a `tracing` subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_slow_hash_in_a_debug_build_says_once_which_lines_to_add() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let warned = std::sync::atomic::AtomicBool::new(false);
        tracing::subscriber::with_default(subscriber, || {
            warn_once_if_slow(&warned, Duration::from_millis(20));
            warn_once_if_slow(&warned, Duration::from_millis(450));
            warn_once_if_slow(&warned, Duration::from_millis(600));
        });
        let log =
            String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("UTF-8");
        // The crate's tests are debug builds.
        assert_eq!(
            log.matches("[profile.dev.package.argon2]").count(),
            1,
            "{log}"
        );
        assert!(log.contains("opt-level = 3"), "{log}");
        assert!(log.contains("took_ms=450"), "{log}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_is_bounded_and_refuses_fast() {
        let pool = Arc::new(HashPool::new(
            Arc::new(Argon2Hasher::insecure_for_tests()),
            1,
            2,
            Duration::from_secs(3600),
        ));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        // One running (blocked on the gate) and two queued fill the pool.
        let mut held = Vec::new();
        for _ in 0..3 {
            let (pool, gate) = (Arc::clone(&pool), Arc::clone(&gate));
            held.push(tokio::spawn(async move {
                pool.run(move |_| {
                    let _ = gate.lock().map(|g| g.recv());
                    Ok(())
                })
                .await
            }));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(pool.admit().is_err());
        let started = std::time::Instant::now();
        let refused = pool.run(|_| Ok(())).await;
        assert!(
            matches!(refused, Err(Error::Overloaded { .. })),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(100));
        for _ in 0..3 {
            release.send(()).expect("a waiting hash");
        }
        for task in held {
            task.await.expect("joined").expect("ran");
        }
        assert!(pool.admit().is_ok());
        pool.run(|_| Ok(())).await.expect("room again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hash_errors_become_keycard_errors_at_the_boundary() {
        let pool = HashPool::new(
            Arc::new(Argon2Hasher::insecure_for_tests()),
            1,
            1,
            Duration::from_secs(1),
        );
        let corrupt = pool.run(|h| h.verify(b"pw", "garbage")).await;
        match corrupt {
            Err(Error::PasswordHash(e)) => {
                assert_eq!(e.kind(), crate::HashErrorKind::InvalidStoredHash)
            }
            other => panic!("expected PasswordHash, got {other:?}"),
        }
        #[allow(clippy::panic)]
        let panicked = pool
            .run(|_| -> Result<(), HashError> { panic!("hasher bug") })
            .await;
        match panicked {
            Err(Error::PasswordHash(e)) => {
                assert_eq!(e.kind(), crate::HashErrorKind::TaskFailed);
                let source = std::error::Error::source(&e).expect("the join error");
                assert!(source.is::<tokio::task::JoinError>(), "{source:?}");
            }
            other => panic!("expected PasswordHash, got {other:?}"),
        }
        // The permit came back despite the panic.
        pool.run(|_| Ok(())).await.expect("room again");
    }

    #[test]
    fn outside_a_runtime_errors_are_converted_too() {
        let pool = HashPool::new(
            Arc::new(Argon2Hasher::insecure_for_tests()),
            1,
            1,
            Duration::from_secs(1),
        );
        let corrupt = block_on(pool.run(|h| h.verify(b"pw", "garbage")));
        assert!(
            matches!(corrupt, Err(Error::PasswordHash(_))),
            "{corrupt:?}"
        );
    }

    struct NoWake;
    impl std::task::Wake for NoWake {
        fn wake(self: Arc<Self>) {}
    }

    /// Polls a future that never waits (the pool outside a runtime) to completion.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::from(Arc::new(NoWake));
        let mut cx = std::task::Context::from_waker(&waker);
        loop {
            if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }

    #[test]
    fn a_slow_first_hash_counts_as_one_of_the_first_eight() {
        let ms = Duration::from_millis;
        let time = HashTime::default();
        assert_eq!(time.estimate(), INITIAL_HASH_ESTIMATE);
        time.learn(ms(200));
        assert_eq!(time.estimate(), ms(200));
        time.learn(ms(20));
        assert_eq!(time.estimate(), ms(110));
        for _ in 0..6 {
            time.learn(ms(20));
        }
        // The mean of the eight, 42.5 ms. A moving average seeded with the first would still
        // say 91 ms: with 2 slots and the default 2 s wait, it would admit a burst of 45
        // logins where the mean admits 96.
        let mean = time.estimate();
        assert!(mean > ms(42) && mean < ms(43), "{mean:?}");
        // Then a moving average: one outlier moves it by an eighth of the difference.
        time.learn(ms(100));
        let moved = time.estimate();
        assert!(moved > ms(49) && moved < ms(50), "{moved:?}");
        for _ in 0..64 {
            time.learn(ms(20));
        }
        assert!(time.estimate() < ms(21), "{:?}", time.estimate());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_is_as_long_as_the_wait_allows_and_learns_the_hash_time() {
        let pool = Arc::new(HashPool::new(
            Arc::new(Argon2Hasher::insecure_for_tests()),
            1,
            1000,
            Duration::from_millis(250),
        ));
        pool.hash_time.nanos.store(100_000_000, Ordering::Relaxed); // 100 ms a hash
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        // One running and two waiting (100 ms and 200 ms behind): a third would wait 300 ms.
        let mut held = Vec::new();
        for _ in 0..3 {
            let (pool, gate) = (Arc::clone(&pool), Arc::clone(&gate));
            held.push(tokio::spawn(async move {
                pool.run(move |_| {
                    let _ = gate.lock().map(|g| g.recv());
                    Ok(())
                })
                .await
            }));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let refused = pool.run(|_| Ok(())).await;
        match refused {
            Err(Error::Overloaded { retry_after }) => {
                assert!(retry_after >= OVERLOADED_RETRY_AFTER)
            }
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert!(pool.admit().is_err());
        for _ in 0..3 {
            release.send(()).expect("a waiting hash");
        }
        for task in held {
            task.await.expect("joined").expect("ran");
        }
        // The gated runs took at least 50 ms each: the estimate moved toward them, and fast
        // runs bring it down again.
        for _ in 0..64 {
            pool.run(|_| Ok(())).await.expect("room");
        }
        assert!(
            pool.hash_estimate() < Duration::from_millis(10),
            "{:?}",
            pool.hash_estimate()
        );
    }
}
