//! Running password hashes off the async executor: bounded concurrency, bounded queue.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{Error, HashError, Result};
use crate::password::PasswordHasher;

/// How long an overloaded login is told to wait before retrying.
pub(crate) const OVERLOADED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// At most `max_concurrent` hashes run at once, on Tokio's blocking pool; at most
/// `max_queued` more wait for a turn. Beyond that, [`Error::Overloaded`] at once.
pub(crate) struct HashPool {
    hasher: Arc<dyn PasswordHasher>,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    queued: AtomicUsize,
    max_queued: usize,
}

impl HashPool {
    pub(crate) fn new(
        hasher: Arc<dyn PasswordHasher>,
        max_concurrent: usize,
        max_queued: usize,
    ) -> Self {
        Self {
            hasher,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            queued: AtomicUsize::new(0),
            max_queued,
        }
    }

    /// Whether a hash asked for now would be refused (a cheap early check; [`run`](Self::run)
    /// decides for real).
    pub(crate) fn is_full(&self) -> bool {
        self.permits.available_permits() == 0
            && self.queued.load(Ordering::Relaxed) >= self.max_queued
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit moves into the
    /// blocking task, so the bound holds even when the caller's future is dropped mid-hash.
    /// Outside a Tokio runtime the work runs inline.
    ///
    /// # Errors
    /// [`Error::Overloaded`] when `max_queued` callers already wait; `work`'s own errors;
    /// [`HashError::TaskFailed`] if the blocking task panicked.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn PasswordHasher) -> Result<T> + Send + 'static,
    {
        let hasher = Arc::clone(&self.hasher);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return work(&*hasher);
        };
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _place =
                    QueuePlace::take(&self.queued, self.max_queued).ok_or(Error::Overloaded {
                        retry_after: OVERLOADED_RETRY_AFTER,
                    })?;
                // The semaphore is never closed, so acquiring only waits.
                Arc::clone(&self.permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::Overloaded {
                        retry_after: OVERLOADED_RETRY_AFTER,
                    })?
            }
        };
        handle
            .spawn_blocking(move || {
                let _permit = permit;
                work(&*hasher)
            })
            .await
            .map_err(|e| Error::PasswordHash(HashError::TaskFailed(e)))?
    }
}

impl fmt::Debug for HashPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashPool")
            .field("hasher", &self.hasher)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_queued", &self.max_queued)
            .finish()
    }
}

/// One place in the wait queue, given back on drop (also when the waiting future is dropped).
struct QueuePlace<'a>(&'a AtomicUsize);

impl<'a> QueuePlace<'a> {
    fn take(queued: &'a AtomicUsize, max: usize) -> Option<Self> {
        queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_is_bounded_and_refuses_fast() {
        let pool = Arc::new(HashPool::new(
            Arc::new(Argon2Hasher::insecure_for_tests()),
            1,
            2,
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
        assert!(pool.is_full());
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
        assert!(!pool.is_full());
        pool.run(|_| Ok(())).await.expect("room again");
    }
}
