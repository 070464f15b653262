//! The real argon2 hasher, counting how often each operation runs (and how many
//! verifications ran against the dummy hash): the core tests assert that every login path
//! costs exactly the verifications it should.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keycard::{Argon2Hasher, HashError, PasswordHasher};

#[derive(Debug, Clone)]
pub(crate) struct CountingHasher {
    pub(crate) inner: Arc<Argon2Hasher>,
    verifies: Arc<AtomicUsize>,
    dummy_verifies: Arc<AtomicUsize>,
    hashes: Arc<AtomicUsize>,
}

impl CountingHasher {
    pub(crate) fn new(inner: Argon2Hasher) -> Self {
        Self {
            inner: Arc::new(inner),
            verifies: Arc::default(),
            dummy_verifies: Arc::default(),
            hashes: Arc::default(),
        }
    }

    /// Verifications so far.
    pub(crate) fn verifies(&self) -> usize {
        self.verifies.load(Ordering::SeqCst)
    }

    /// Verifications against [`PasswordHasher::dummy_hash`] so far (unknown users, unusable
    /// stored hashes).
    pub(crate) fn dummy_verifies(&self) -> usize {
        self.dummy_verifies.load(Ordering::SeqCst)
    }

    /// New hashes so far.
    pub(crate) fn hashes(&self) -> usize {
        self.hashes.load(Ordering::SeqCst)
    }
}

impl PasswordHasher for CountingHasher {
    fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        self.inner.hash(password)
    }
    fn verify(&self, password: &[u8], phc: &str) -> Result<bool, HashError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        if phc == self.inner.dummy_hash() {
            self.dummy_verifies.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.verify(password, phc)
    }
    fn needs_rehash(&self, phc: &str) -> bool {
        self.inner.needs_rehash(phc)
    }
    fn dummy_hash(&self) -> &str {
        self.inner.dummy_hash()
    }
}
