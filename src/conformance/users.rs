//! The [`UserStore`] contract as a reusable test suite.
//!
//! [`UserStore`] has no insert (users come from your own sign-up flow), so the checks put
//! their users in through [`SeedUsers`], which you implement for the store under test (keycard
//! implements it for its own stores). Then run [`run_all`], and [`concurrent_tasks`] on a
//! multi-thread runtime:
//!
//! ```
//! use std::sync::Arc;
//! use keycard::conformance::users;
//! use keycard::MemoryUserStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // In your crate: `#[tokio::test(flavor = "multi_thread")] async fn users_keep_the_contract()`.
//! let store = Arc::new(MemoryUserStore::new());
//! users::run_all(&*store).await;
//! users::concurrent_tasks(store).await;
//! # }
//! ```
//!
//! The promises checked are those of [`UserStore`]'s contract:
//!
//! - a user is found by its normalized email ([`normalize_email`]) and by its id, and both
//!   lookups return the same user, with the email and hash as stored;
//! - an unknown email or id is `Ok(None)`, never an error, whatever its shape (an id that is
//!   not of the store's key type, such as text for an integer key, is simply unknown);
//! - lookups match exactly: a different email or id never finds a user, even one that a
//!   database might consider equal (`LIKE` wildcards, leading zeros or spaces in an integer
//!   id, accents or other Unicode forms of the same letters);
//! - `set_password_hash` replaces the hash, which later lookups (by email and by id) return;
//!   it touches no other user, and for an unknown id it succeeds and changes nothing;
//! - input is data: SQL, `LIKE` and glob metacharacters, quotes, very long strings (an email
//!   of [`MAX_EMAIL_LEN`](crate::MAX_EMAIL_LEN) bytes stored, 64 KiB strings looked up) and
//!   unusual Unicode (combining marks, right-to-left overrides, zero-width joiners, emoji,
//!   NUL) round-trip byte for byte or are not found, never an error;
//! - a user's [`profile`](crate::User::profile) never includes its password hash;
//! - concurrent `set_password_hash` calls and lookups neither lose nor tear a value: a
//!   lookup returns the user with one of the hashes written, and each user ends with one of
//!   its own.
//!
//! Like the token store checks, these create their own data only (emails
//! `conformance-<check>-<random>@example.com` and variants), so several runs may share one
//! database. `UserStore` has no delete, so the users they create stay: point the checks at a
//! scratch table or schema.
//!
//! # Stability
//!
//! The check functions, [`SeedUsers`] and their signatures follow semver. A minor release may
//! make a check stricter or add checks to [`run_all`], but only to test a promise already
//! written in [`UserStore`]'s documentation, and the change is listed in the changelog; a
//! store that keeps the documented contract keeps passing. A check is removed only in a
//! breaking release.
//!
//! # Panics
//! Every check panics when the store breaks the contract or returns an error.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::join_all;

pub use super::accounts::{
    change_email_moves_the_key, concurrent_email_changes, email_lookup_is_canonical,
    mark_email_verified_needs_the_current_address, run_account_checks,
};
use super::joined;
use crate::{normalize_email, MemoryUserStore, StoreError, User, UserId, UserRecord, UserStore};

/// How the checks create users in the store under test.
///
/// Implement it for your store (in your tests, if you like: it only needs to insert).
/// keycard implements it for `MemoryUserStore<UserRecord>`, `SqliteUserStore`,
/// `PostgresUserStore` and `Arc`s of them.
#[async_trait]
pub trait SeedUsers: UserStore {
    /// Inserts a new user with this email (trimmed; store it as given, and key it by
    /// [`normalize_email`] as registration would) and PHC hash, and returns its id. The store chooses the id (a random text id, the next
    /// integer of a sequence, a new UUID); it must be new.
    ///
    /// # Errors
    /// A [`StoreError`] when the backend fails or the email is taken (the checks use fresh
    /// emails, so this fails the check).
    async fn seed_user(&self, email: &str, password_hash: &str) -> Result<UserId, StoreError>;
}

#[async_trait]
impl<S: SeedUsers + ?Sized> SeedUsers for Arc<S> {
    async fn seed_user(&self, email: &str, password_hash: &str) -> Result<UserId, StoreError> {
        (**self).seed_user(email, password_hash).await
    }
}

#[async_trait]
impl SeedUsers for MemoryUserStore<UserRecord> {
    async fn seed_user(&self, email: &str, password_hash: &str) -> Result<UserId, StoreError> {
        let id = fresh_text_id();
        self.insert(UserRecord::new(id.clone(), email, password_hash))
            .map_err(StoreError::backend)?;
        Ok(id)
    }
}

#[cfg(feature = "sqlite")]
#[async_trait]
impl SeedUsers for crate::sqlite::SqliteUserStore {
    async fn seed_user(&self, email: &str, password_hash: &str) -> Result<UserId, StoreError> {
        let id = fresh_text_id();
        match self
            .insert_if_absent(&UserRecord::new(id.clone(), email, password_hash))
            .await?
        {
            true => Ok(id),
            false => Err(StoreError::backend("the seeded email or id exists")),
        }
    }
}

#[cfg(feature = "postgres")]
#[async_trait]
impl SeedUsers for crate::postgres::PostgresUserStore {
    async fn seed_user(&self, email: &str, password_hash: &str) -> Result<UserId, StoreError> {
        let id = fresh_text_id();
        match self
            .insert_if_absent(&UserRecord::new(id.clone(), email, password_hash))
            .await?
        {
            true => Ok(id),
            false => Err(StoreError::backend("the seeded email or id exists")),
        }
    }
}

/// Runs every check on `store`, one after another: [`find_by_email_and_id`],
/// [`unknown_users_are_none`], [`lookups_match_exactly`], [`set_password_hash_replaces`],
/// [`hostile_input_is_data`], [`unicode_round_trips`], [`nul_bytes_are_not_found`],
/// [`profile_hides_the_hash`] and [`concurrent_operations`].
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn run_all<S: SeedUsers + ?Sized>(store: &S) {
    find_by_email_and_id(store).await;
    unknown_users_are_none(store).await;
    lookups_match_exactly(store).await;
    set_password_hash_replaces(store).await;
    hostile_input_is_data(store).await;
    unicode_round_trips(store).await;
    nul_bytes_are_not_found(store).await;
    profile_hides_the_hash(store).await;
    concurrent_operations(store).await;
}

/// A seeded user is found by its normalized email and by its id; both return the same user,
/// with the id, email and hash as seeded.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn find_by_email_and_id<S: SeedUsers + ?Sized>(store: &S) {
    let email = email("find");
    let hash = phc("find");
    let id = seed(store, &email, &hash).await;
    let by_email = found(store.find_by_email(&email).await, "find_by_email")
        .unwrap_or_else(|| panic!("a seeded user must be found by its email {email:?}"));
    assert_user(&by_email, &id, &email, &hash, "find_by_email");
    let by_id = found(store.find_by_id(&id).await, "find_by_id")
        .unwrap_or_else(|| panic!("a seeded user must be found by its id {id}"));
    assert_user(&by_id, &id, &email, &hash, "find_by_id");
    let other = seed(store, &self::email("find-other"), &phc("find-other")).await;
    assert_ne!(other, id, "seeded users must get distinct ids");
    assert_eq!(
        found(store.find_by_id(&id).await, "find_by_id").map(|u| u.id()),
        Some(id.clone()),
        "another user's arrival must not change who an id names"
    );
}

/// An unknown email or id is `Ok(None)`, whatever its shape: ids that are not of the store's
/// key type (text for an integer key, an integer for a UUID key), empty strings, the largest
/// and smallest integers.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn unknown_users_are_none<S: SeedUsers + ?Sized>(store: &S) {
    for unknown in [email("unknown"), String::new(), "@".to_owned()] {
        assert_none(
            store.find_by_email(&unknown).await,
            "find_by_email",
            &unknown,
        );
    }
    let ids = [
        fresh_text_id().as_str().to_owned(),
        String::new(),
        i64::MAX.to_string(),
        i64::MIN.to_string(),
        u64::MAX.to_string(),
        "-1".to_owned(),
        "1e3".to_owned(),
        "67e55044-10b1-426f-9247-bb680e5fe0c8".to_owned(),
    ];
    for unknown in ids {
        assert_none(
            store.find_by_id(&UserId::new(unknown.clone())).await,
            "find_by_id",
            &unknown,
        );
    }
}

/// Lookups match exactly. For a seeded user, none of these finds anyone: its email with a
/// character changed, prefixed, suffixed, in uppercase-free variants a database collation
/// might fold (a trailing space, accents), or with `LIKE` wildcards in place of characters;
/// its id with a leading zero, a sign, surrounding spaces, a suffix, or in uppercase.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn lookups_match_exactly<S: SeedUsers + ?Sized>(store: &S) {
    let email = email("exact");
    let id = seed(store, &email, &phc("exact")).await;
    let (local, domain) = email.split_once('@').expect("an email has an @");
    let emails = [
        format!("{email} "),
        format!(" {email}"),
        format!("{email}x"),
        format!("x{email}"),
        format!("{local}@"),
        format!("%@{domain}"),
        format!("{}_@{domain}", &local[..local.len() - 1]),
        format!("{local}@%"),
        "%".to_owned(),
        "_%".to_owned(),
        "*".to_owned(),
        format!("{local}@{}", domain.replacen('e', "é", 1)),
        format!("{local}@{}", domain.replacen('e', "e\u{301}", 1)),
        format!("{local}@{}", domain.replacen('e', "ｅ", 1)),
    ];
    for other in &emails {
        assert_none(store.find_by_email(other).await, "find_by_email", other);
    }
    let key = id.as_str();
    let ids = [
        format!("0{key}"),
        format!("+{key}"),
        format!(" {key}"),
        format!("{key} "),
        format!("{key}0"),
        format!("{key}%"),
        format!("{key}.0"),
        key.to_uppercase(),
        "%".to_owned(),
        "*".to_owned(),
    ];
    for other in ids.iter().filter(|i| i.as_str() != key) {
        assert_none(
            store.find_by_id(&UserId::new(other.clone())).await,
            "find_by_id",
            other,
        );
    }
}

/// `set_password_hash` replaces the hash: lookups by id and by email return the new one (the
/// store keeps no stale copy), a second replacement replaces the first, other users keep
/// theirs, and replacing an unknown user's hash succeeds and creates no one.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn set_password_hash_replaces<S: SeedUsers + ?Sized>(store: &S) {
    let email = email("rehash");
    let other_email = self::email("rehash-other");
    let old = phc("rehash-old");
    let id = seed(store, &email, &old).await;
    let other_hash = phc("rehash-other");
    let other = seed(store, &other_email, &other_hash).await;
    for round in ["first", "second"] {
        let new = phc(&format!("rehash-{round}"));
        store
            .set_password_hash(&id, &new)
            .await
            .unwrap_or_else(|e| panic!("set_password_hash failed: {e}"));
        let by_id = found(store.find_by_id(&id).await, "find_by_id").expect("the user exists");
        assert_user(
            &by_id,
            &id,
            &email,
            &new,
            "find_by_id after set_password_hash",
        );
        let by_email =
            found(store.find_by_email(&email).await, "find_by_email").expect("the user exists");
        assert_user(
            &by_email,
            &id,
            &email,
            &new,
            "find_by_email after set_password_hash",
        );
    }
    let untouched = found(store.find_by_id(&other).await, "find_by_id").expect("the user exists");
    assert_user(
        &untouched,
        &other,
        &other_email,
        &other_hash,
        "another user after set_password_hash",
    );
    let unknown = fresh_text_id();
    store
        .set_password_hash(&unknown, &phc("rehash-unknown"))
        .await
        .unwrap_or_else(|e| panic!("set_password_hash of an unknown user must succeed: {e}"));
    assert_none(
        store.find_by_id(&unknown).await,
        "find_by_id",
        unknown.as_str(),
    );
    let untouched = found(store.find_by_id(&other).await, "find_by_id").expect("the user exists");
    assert_eq!(untouched.password_hash(), other_hash);
}

/// SQL, `LIKE` and glob metacharacters and quotes are data: emails and hashes containing
/// them round-trip exactly; emails and ids made of them find nobody; an email of
/// [`MAX_EMAIL_LEN`](crate::MAX_EMAIL_LEN) bytes and a 4 KiB hash round-trip; 64 KiB emails and
/// ids are looked up without error.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn hostile_input_is_data<S: SeedUsers + ?Sized>(store: &S) {
    let tag = format!("{:08x}", rand::random::<u32>());
    let hostile = [
        format!("o'brien-{tag}@example.com"),
        format!("\"quoted\"-{tag}@example.com"),
        format!("x'); drop table users; ---{tag}@example.com"),
        format!("' or '1'='1-{tag}@example.com"),
        format!("100%_{tag}@example.com"),
        format!("back\\slash-{tag}@example.com"),
        format!("semi;colon$1?{tag}@example.com"),
        format!("glob*[a-z]{{x}}-{tag}@example.com"),
        format!("`tick`-{tag}@example.com"),
    ];
    let mut seeded = Vec::new();
    for (i, email) in hostile.iter().enumerate() {
        let hash = format!("{}'\";--%_\\{i}", phc("hostile"));
        let id = seed(store, email, &hash).await;
        seeded.push((id, email, hash));
    }
    for (id, email, hash) in &seeded {
        let by_email = found(store.find_by_email(email).await, "find_by_email")
            .unwrap_or_else(|| panic!("a user with email {email:?} must be found"));
        assert_user(&by_email, id, email, hash, "hostile email");
        let by_id = found(store.find_by_id(id).await, "find_by_id").expect("the user exists");
        assert_user(&by_id, id, email, hash, "hostile email, by id");
    }
    for probe in [
        "' OR '1'='1",
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "'; SELECT 1; --",
        "%",
        "%%",
        "_",
        "*",
        "?",
        "\\",
        "'",
        "\"",
    ] {
        assert_none(store.find_by_email(probe).await, "find_by_email", probe);
        assert_none(
            store.find_by_id(&UserId::from(probe)).await,
            "find_by_id",
            probe,
        );
    }

    let max = crate::MAX_EMAIL_LEN;
    let suffix = format!("-{tag}@example.com");
    let long_email = format!("{}{suffix}", "l".repeat(max - suffix.len()));
    let long_hash = format!("{}{}", phc("long"), "h".repeat(4096));
    let id = seed(store, &long_email, &long_hash).await;
    let by_email = found(store.find_by_email(&long_email).await, "find_by_email")
        .expect("a user with a long email must be found");
    assert_user(
        &by_email,
        &id,
        &long_email,
        &long_hash,
        "long email and hash",
    );
    let huge = "x".repeat(64 * 1024);
    assert_none(store.find_by_email(&huge).await, "find_by_email", "64 KiB");
    assert_none(
        store.find_by_id(&UserId::new(huge.clone())).await,
        "find_by_id",
        "64 KiB",
    );
    store
        .set_password_hash(&UserId::new(huge), "x")
        .await
        .unwrap_or_else(|e| panic!("set_password_hash of a 64 KiB id must succeed: {e}"));
}

/// Emails in unusual Unicode round-trip byte for byte and are found only by their own
/// canonical form: composed accents are not found by their accent-free forms (their
/// decomposed forms have the same canonical form, [`normalize_email`], so they find the same
/// user), a zero-width joiner or a right-to-left override is not ignored, and emoji and CJK
/// are kept.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn unicode_round_trips<S: SeedUsers + ?Sized>(store: &S) {
    let tag = format!("{:08x}", rand::random::<u32>());
    let cases: [(String, Vec<String>); 5] = [
        (
            format!("zoë.ñandú-{tag}@exämple.com"),
            vec![format!("zoe.nandu-{tag}@example.com")],
        ),
        (
            format!("用户-{tag}@例子.广告"),
            vec![format!("用戶-{tag}@例子.广告")],
        ),
        (
            format!("crab-🦀-{tag}@example.com"),
            vec![format!("crab--{tag}@example.com")],
        ),
        (
            format!("a\u{200d}b-{tag}@example.com"),
            vec![format!("ab-{tag}@example.com")],
        ),
        (
            format!("\u{202e}moc.elpmaxe-{tag}@evil.example"),
            vec![format!("moc.elpmaxe-{tag}@evil.example")],
        ),
    ];
    for (raw, variants) in &cases {
        let email = normalize_email(raw);
        let hash = phc("unicode");
        let id = seed(store, &email, &hash).await;
        let by_email = found(store.find_by_email(&email).await, "find_by_email")
            .unwrap_or_else(|| panic!("a user with email {email:?} must be found"));
        assert_user(&by_email, &id, &email, &hash, "unicode email");
        if raw.starts_with("zo") {
            let decomposed = normalize_email(&format!(
                "zoe\u{308}.n\u{303}andu\u{301}-{tag}@exa\u{308}mple.com"
            ));
            let user = found(store.find_by_email(&decomposed).await, "find_by_email")
                .unwrap_or_else(|| panic!("the decomposed form of {email:?} must find its user"));
            assert_user(&user, &id, &email, &hash, "decomposed accents");
        }
        for variant in variants {
            let variant = normalize_email(variant);
            assert_none(
                store.find_by_email(&variant).await,
                "find_by_email",
                &variant,
            );
        }
    }
}

/// A NUL character in an email or id is input like any other: a lookup finds nobody and
/// returns `Ok(None)`, not an error (a client can put `\u0000` in a JSON login body; a
/// backend that cannot store NUL has no such user).
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn nul_bytes_are_not_found<S: SeedUsers + ?Sized>(store: &S) {
    let email = email("nul");
    let id = seed(store, &email, &phc("nul")).await;
    for probe in [
        format!("{email}\0"),
        email.replacen('@', "\0@", 1),
        "\0".to_owned(),
    ] {
        assert_none(store.find_by_email(&probe).await, "find_by_email", &probe);
    }
    for probe in [format!("{id}\0"), "\0".to_owned()] {
        assert_none(
            store.find_by_id(&UserId::new(probe.clone())).await,
            "find_by_id",
            &probe,
        );
    }
}

/// A user's [`profile`](crate::User::profile) (what protocols echo to clients) never contains
/// the password hash.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn profile_hides_the_hash<S: SeedUsers + ?Sized>(store: &S) {
    let email = email("profile");
    let hash = phc("profile");
    let id = seed(store, &email, &hash).await;
    let user = found(store.find_by_id(&id).await, "find_by_id").expect("the user exists");
    let profile = serde_json::Value::Object(user.profile()).to_string();
    assert!(
        !profile.contains(&hash),
        "a user's profile must not contain the password hash: {profile}"
    );
}

/// Many lookups and `set_password_hash` calls in flight at once: 16 writers race on one user
/// while readers look it up by email and id; 16 other users get their own new hash each. Every
/// lookup returns the user with one of the hashes written (never none, never a mix), and each
/// user ends with one of its own.
///
/// The operations are futures joined on the calling task; [`concurrent_tasks`] runs the same
/// work on separate Tokio tasks.
///
/// # Panics
/// When the store breaks the contract or fails.
pub async fn concurrent_operations<S: SeedUsers + ?Sized>(store: &S) {
    let race = Race::seed(store).await;
    let writes = race.hashes.iter().map(|h| race.write(store, h));
    let reads = (0..race.hashes.len()).map(|_| race.read(store));
    let others = race.others.iter().map(|o| Race::own(store, o));
    futures_util::future::join3(join_all(writes), join_all(reads), join_all(others)).await;
    race.settled(store).await;
}

/// [`concurrent_operations`]' work spread over many Tokio tasks (threads, on a multi-thread
/// runtime).
///
/// # Panics
/// When the store breaks the contract or fails, or outside a Tokio runtime.
pub async fn concurrent_tasks<S: SeedUsers + ?Sized + 'static>(store: Arc<S>) {
    let race = Arc::new(Race::seed(&*store).await);
    let mut tasks = Vec::new();
    for i in 0..race.hashes.len() {
        let (s, r) = (Arc::clone(&store), Arc::clone(&race));
        tasks.push(tokio::spawn(async move {
            r.write(&*s, &r.hashes[i]).await;
        }));
        let (s, r) = (Arc::clone(&store), Arc::clone(&race));
        tasks.push(tokio::spawn(async move { r.read(&*s).await }));
        let (s, r) = (Arc::clone(&store), Arc::clone(&race));
        tasks.push(tokio::spawn(async move {
            Race::own(&*s, &r.others[i]).await;
        }));
    }
    for task in join_all(tasks).await {
        joined(task);
    }
    race.settled(&*store).await;
}

/// The users and hashes of a concurrency check.
#[derive(Debug)]
struct Race {
    id: UserId,
    email: String,
    /// The original hash and the ones the writers race to set.
    original: String,
    hashes: Vec<String>,
    /// Other users: (id, email, new hash).
    others: Vec<(UserId, String, String)>,
}

impl Race {
    const WRITERS: usize = 16;

    async fn seed<S: SeedUsers + ?Sized>(store: &S) -> Self {
        let email = email("race");
        let original = phc("race-original");
        let id = seed(store, &email, &original).await;
        let hashes = (0..Self::WRITERS)
            .map(|i| phc(&format!("race-{i}")))
            .collect();
        let mut others = Vec::new();
        for i in 0..Self::WRITERS {
            let email = self::email(&format!("race-other-{i}"));
            let id = seed(store, &email, &phc("race-other-original")).await;
            others.push((id, email, phc(&format!("race-other-{i}"))));
        }
        Self {
            id,
            email,
            original,
            hashes,
            others,
        }
    }

    fn is_known(&self, hash: &str) -> bool {
        hash == self.original || self.hashes.iter().any(|h| h == hash)
    }

    async fn write<S: SeedUsers + ?Sized>(&self, store: &S, hash: &str) {
        store
            .set_password_hash(&self.id, hash)
            .await
            .unwrap_or_else(|e| panic!("concurrent set_password_hash failed: {e}"));
    }

    async fn read<S: SeedUsers + ?Sized>(&self, store: &S) {
        let by_email = found(store.find_by_email(&self.email).await, "find_by_email")
            .expect("a user being rehashed must stay findable by email");
        let by_id = found(store.find_by_id(&self.id).await, "find_by_id")
            .expect("a user being rehashed must stay findable by id");
        for user in [by_email, by_id] {
            assert_eq!(user.id(), self.id);
            assert_eq!(user.email(), self.email);
            assert!(
                self.is_known(user.password_hash()),
                "a lookup during concurrent writes returned a hash never written: {:?}",
                user.password_hash()
            );
        }
    }

    async fn own<S: SeedUsers + ?Sized>(store: &S, (id, email, hash): &(UserId, String, String)) {
        store
            .set_password_hash(id, hash)
            .await
            .unwrap_or_else(|e| panic!("concurrent set_password_hash failed: {e}"));
        let user = found(store.find_by_email(email).await, "find_by_email").expect("exists");
        assert_user(&user, id, email, hash, "a user's own concurrent write");
    }

    async fn settled<S: SeedUsers + ?Sized>(&self, store: &S) {
        let user = found(store.find_by_id(&self.id).await, "find_by_id").expect("exists");
        assert!(
            self.hashes.iter().any(|h| h == user.password_hash()),
            "after concurrent writes the hash must be one of those written, got {:?}",
            user.password_hash()
        );
        for (id, email, hash) in &self.others {
            let user = found(store.find_by_id(id).await, "find_by_id").expect("exists");
            assert_user(&user, id, email, hash, "another user after the race");
        }
    }
}

/// Seeds a user, panicking on failure.
pub(super) async fn seed<S: SeedUsers + ?Sized>(store: &S, email: &str, hash: &str) -> UserId {
    store
        .seed_user(email, hash)
        .await
        .unwrap_or_else(|e| panic!("seeding user {email:?} failed: {e} ({e:?})"))
}

/// Unwraps a lookup, panicking with the operation's name on error.
pub(super) fn found<T>(result: Result<Option<T>, StoreError>, what: &str) -> Option<T> {
    result.unwrap_or_else(|e| panic!("{what} failed: {e} ({e:?})"))
}

/// Asserts a lookup found nobody (and did not fail).
pub(super) fn assert_none<T: std::fmt::Debug>(
    result: Result<Option<T>, StoreError>,
    what: &str,
    probe: &str,
) {
    let shown: String = probe.chars().take(80).collect();
    match result {
        Ok(None) => {}
        Ok(Some(user)) => panic!("{what}({shown:?}) must find nobody, found {user:?}"),
        Err(e) => panic!("{what}({shown:?}) must be Ok(None) for an unknown user, got {e} ({e:?})"),
    }
}

fn assert_user<U: User>(user: &U, id: &UserId, email: &str, hash: &str, what: &str) {
    assert_eq!(&user.id(), id, "{what}: wrong user id");
    assert_eq!(
        user.email(),
        email,
        "{what}: the email must round-trip exactly"
    );
    assert_eq!(
        user.password_hash(),
        hash,
        "{what}: the password hash must be the last one stored"
    );
}

/// A fresh normalized email for one check.
fn email(check: &str) -> String {
    format!(
        "conformance-{check}-{:016x}@example.com",
        rand::random::<u64>()
    )
}

/// A fresh, unique PHC-shaped hash (the store treats it as opaque text).
pub(super) fn phc(tag: &str) -> String {
    format!(
        "$argon2id$v=19$m=19456,t=2,p=1${tag}${:032x}",
        rand::random::<u128>()
    )
}

/// A fresh text id, for stores that take the id they are given.
pub(super) fn fresh_text_id() -> UserId {
    UserId::new(format!("conformance-user-{:016x}", rand::random::<u64>()))
}
