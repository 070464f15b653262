//! The `UserStore` contract suite (`keycard::conformance::users`, with its `AccountStore`
//! checks) run against every user store keycard ships that needs no server: memory and
//! SQLite. PostgreSQL runs it in `user_store_postgres`, MySQL in `mysql`; the custom-table
//! example in `tests/examples/custom_user_table.rs`.

use std::sync::Arc;

use keycard::conformance::users::{self, SeedUsers};
use keycard::{MemoryUserStore, UserRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_user_store_keeps_the_contract() {
    let store = Arc::new(MemoryUserStore::<UserRecord>::new());
    users::run_all(&*store).await;
    users::run_account_checks(&*store).await;
    users::run_account_checks(&store).await;
    users::concurrent_tasks(store).await;
}

#[tokio::test(flavor = "current_thread")]
async fn memory_user_store_keeps_the_contract_through_dyn() {
    let store: Arc<dyn SeedUsers<User = UserRecord>> = Arc::new(MemoryUserStore::new());
    users::run_all(&*store).await;
    users::run_all(&store).await;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use keycard::sqlite::SqliteUserStore;

    async fn open(dir: &tempfile::TempDir, table: &str) -> SqliteUserStore {
        let store = SqliteUserStore::open(dir.path().join("keycard.db"))
            .await
            .expect("open a SQLite file in a temporary directory")
            .with_table(table)
            .expect("a valid table name");
        store.migrate().await.expect("migrate");
        store
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_user_store_keeps_the_contract() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(open(&dir, "keycard_users").await);
        users::run_all(&*store).await;
        users::run_account_checks(&*store).await;
        users::concurrent_tasks(store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_user_store_keeps_the_contract_in_another_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn SeedUsers<User = UserRecord>> =
            Arc::new(open(&dir, "other_users").await);
        users::run_all(&*store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_user_store_keeps_the_account_contract_in_another_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = open(&dir, "other_users").await;
        users::run_account_checks(&store).await;
    }
}

/// Stores that break one promise each: the suite must notice.
mod broken {
    use super::*;
    use keycard::{
        normalize_email, AccountStore, EmailChange, NewUser, Registered, StoreError, User, UserId,
        UserRegistry, UserStore,
    };
    use time::OffsetDateTime;

    #[derive(Debug, Clone, Copy)]
    enum Flaw {
        /// `find_by_email` treats `%` as a wildcard, like a careless `LIKE`.
        LikeMatch,
        /// An unknown id is an error instead of `Ok(None)`.
        ErrorOnUnknown,
        /// `set_password_hash` is silently dropped.
        DropsRehash,
        /// Integer-like ids are compared after trimming zeros and spaces.
        LooseIds,
        /// `find_by_email` folds `é` to `e`, like an accent-insensitive collation.
        FoldsAccents,
        /// The address is stored in canonical form instead of as typed.
        StoresCanonical,
        /// `mark_email_verified` ignores the address it is given.
        VerifiesAnyAddress,
    }

    #[derive(Debug)]
    struct Broken {
        inner: MemoryUserStore<UserRecord>,
        flaw: Flaw,
    }

    #[keycard::async_trait]
    impl UserStore for Broken {
        type User = UserRecord;
        async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
            match self.flaw {
                // `%` matches whatever: pretend the pattern found someone.
                Flaw::LikeMatch if email.contains('%') => {
                    Ok(Some(UserRecord::new(UserId::from("wild"), email, "x")))
                }
                Flaw::FoldsAccents => {
                    let folded = email.replace('é', "e");
                    self.inner.find_by_email(&folded).await
                }
                _ => self.inner.find_by_email(email).await,
            }
        }
        async fn find_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
            match self.flaw {
                Flaw::LooseIds => {
                    let trimmed = id.as_str().trim().trim_start_matches(['0', '+']);
                    self.inner.find_by_id(&UserId::from(trimmed)).await
                }
                _ => match self.inner.find_by_id(id).await? {
                    None if matches!(self.flaw, Flaw::ErrorOnUnknown) => {
                        Err(StoreError::backend("no such row"))
                    }
                    found => Ok(found),
                },
            }
        }
        async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
            match self.flaw {
                Flaw::DropsRehash => Ok(()),
                _ => self.inner.set_password_hash(id, phc).await,
            }
        }
    }

    #[keycard::async_trait]
    impl SeedUsers for Broken {
        async fn seed_user(&self, email: &str, hash: &str) -> Result<UserId, StoreError> {
            match self.flaw {
                Flaw::StoresCanonical => self.inner.seed_user(&normalize_email(email), hash).await,
                _ => self.inner.seed_user(email, hash).await,
            }
        }
    }

    #[keycard::async_trait]
    impl UserRegistry for Broken {
        async fn create_user(&self, new: &NewUser) -> Result<Registered<UserRecord>, StoreError> {
            self.inner.create_user(new).await
        }
    }

    #[keycard::async_trait]
    impl AccountStore for Broken {
        async fn mark_email_verified(
            &self,
            id: &UserId,
            email: &str,
            at: OffsetDateTime,
        ) -> Result<bool, StoreError> {
            match self.flaw {
                Flaw::VerifiesAnyAddress => match self.inner.find_by_id(id).await? {
                    Some(user) => self.inner.mark_email_verified(id, user.email(), at).await,
                    None => Ok(false),
                },
                _ => self.inner.mark_email_verified(id, email, at).await,
            }
        }
        async fn change_email(
            &self,
            id: &UserId,
            new_email: &str,
            at: OffsetDateTime,
        ) -> Result<EmailChange, StoreError> {
            self.inner.change_email(id, new_email, at).await
        }
    }

    fn broken(flaw: Flaw) -> Broken {
        Broken {
            inner: MemoryUserStore::new(),
            flaw,
        }
    }

    #[tokio::test]
    #[should_panic(expected = "must find nobody")]
    async fn a_like_wildcard_match_is_caught() {
        users::lookups_match_exactly(&broken(Flaw::LikeMatch)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "must be Ok(None) for an unknown user")]
    async fn an_error_for_an_unknown_id_is_caught() {
        users::unknown_users_are_none(&broken(Flaw::ErrorOnUnknown)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "the password hash must be the last one stored")]
    async fn a_dropped_rehash_is_caught() {
        users::set_password_hash_replaces(&broken(Flaw::DropsRehash)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "must find nobody")]
    async fn loose_integer_ids_are_caught() {
        // Integer ids, as a store over an INTEGER key would have them.
        #[derive(Debug)]
        struct IntIds(Broken, std::sync::atomic::AtomicI64);
        #[keycard::async_trait]
        impl UserStore for IntIds {
            type User = UserRecord;
            async fn find_by_email(&self, e: &str) -> Result<Option<UserRecord>, StoreError> {
                self.0.find_by_email(e).await
            }
            async fn find_by_id(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
                self.0.find_by_id(id).await
            }
            async fn set_password_hash(&self, id: &UserId, p: &str) -> Result<(), StoreError> {
                self.0.set_password_hash(id, p).await
            }
        }
        #[keycard::async_trait]
        impl SeedUsers for IntIds {
            async fn seed_user(&self, email: &str, hash: &str) -> Result<UserId, StoreError> {
                let id =
                    UserId::from(self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1000);
                self.0
                    .inner
                    .insert(UserRecord::new(id.clone(), email, hash))
                    .map_err(StoreError::backend)?;
                Ok(id)
            }
        }
        let store = IntIds(broken(Flaw::LooseIds), Default::default());
        users::lookups_match_exactly(&store).await;
    }

    #[tokio::test]
    #[should_panic(expected = "must find nobody")]
    async fn accent_folding_is_caught() {
        users::lookups_match_exactly(&broken(Flaw::FoldsAccents)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "User::email must return the address as typed")]
    async fn a_store_keeping_only_the_canonical_form_is_caught() {
        users::email_lookup_is_canonical(&broken(Flaw::StoresCanonical)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "mark_email_verified with another address must answer false")]
    async fn a_verification_of_another_address_is_caught() {
        users::mark_email_verified_needs_the_current_address(&broken(Flaw::VerifiesAnyAddress))
            .await;
    }

    #[tokio::test]
    async fn an_honest_store_passes_every_check() {
        users::run_all(&broken(Flaw::LikeMatch).inner).await;
        users::run_account_checks(&broken(Flaw::LikeMatch)).await;
    }
}
