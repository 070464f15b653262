//! The tests that hash with keycard's default (OWASP) argon2id parameters and assert what a
//! burst of such hashes does on this machine run one at a time.
//!
//! Each of them loads both cores on its own (a registration flood, a login storm, forty
//! simultaneous logins). The hashing pool admits by the wait it expects, learned from the
//! time its hashes take, so a test that asserts "a burst of 40 waits its turn on 2 cores"
//! measures a machine whose cores another such test is also using, and half its hashes take
//! twice as long. Holding [`alone`]'s guard for the whole test keeps each one's claim about
//! the machine it runs on; tests that hash with the cheap test parameters still run beside
//! them.

use tokio::sync::{Mutex, MutexGuard};

static REAL_HASHING: Mutex<()> = Mutex::const_new(());

/// Waits until no other real-hashing test runs; hold the guard for the whole test.
pub(crate) async fn alone() -> MutexGuard<'static, ()> {
    REAL_HASHING.lock().await
}
