//! What every example server does at run time, whatever its web framework: opening the
//! stores named by `--store`, logging, and waiting for Ctrl-C or SIGTERM. The command line is
//! in `mod.rs`.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keycard::mfa::{MemoryPasskeyStore, MemorySecondFactorStore, PasskeyStore, SecondFactorStore};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokenStore};
use keycard::throttle::{MemoryThrottle, Throttle};
use keycard::{
    Authenticator, AuthenticatorBuilder, MemoryTokenStore, MemoryUserStore, StoreError, TokenStore,
    UserRecord, UserStore,
};

use crate::common::Registry;

/// The user store type both examples run on, whatever the backend.
pub(crate) type Users = Arc<dyn UserStore<User = UserRecord>>;

/// A boxed error for `main`.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// The token store and user store named by a `--store` URL, plus a way to add the demo user.
pub(crate) struct Stores {
    /// Sessions.
    pub(crate) tokens: Arc<dyn TokenStore>,
    /// Users.
    #[allow(dead_code)] // the demo apps only
    pub(crate) users: Users,
    /// Login attempts, counted where the sessions live, so that every instance over the
    /// same store shares one count.
    pub(crate) throttle: Arc<dyn Throttle>,
    /// The user store again, as one that creates users.
    #[allow(dead_code)] // the registering app only
    pub(crate) registry: Registry,
    /// One-time tokens (the links of account mails), where the sessions live.
    #[allow(dead_code)] // the registering app only
    pub(crate) one_time: Arc<dyn OneTimeTokenStore>,
    /// Second factors, beside the users.
    #[allow(dead_code)] // the registering app only
    pub(crate) second_factors: Arc<dyn SecondFactorStore>,
    /// Passkeys, beside the users (in memory where the users are).
    #[allow(dead_code)] // the registering app with the `passkeys` feature only
    pub(crate) passkeys: Arc<dyn PasskeyStore>,
    seeder: Arc<dyn SeedUser>,
}

/// Adds a user unless one with the same email exists, so seeding a persistent store at every
/// start is harmless.
#[async_trait]
pub(crate) trait SeedUser: Send + Sync {
    /// Inserts `user` if its email is free; returns whether it did.
    async fn seed_user(&self, user: UserRecord) -> Result<bool, StoreError>;
}

#[async_trait]
impl SeedUser for MemoryUserStore<UserRecord> {
    async fn seed_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        // `insert` refuses a taken email or id and leaves the store unchanged.
        Ok(self.insert(user).is_ok())
    }
}

#[cfg(feature = "sqlite")]
#[async_trait]
impl SeedUser for keycard::sqlite::SqliteUserStore {
    async fn seed_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.insert_if_absent(&user).await
    }
}

#[cfg(feature = "postgres")]
#[async_trait]
impl SeedUser for keycard::postgres::PostgresUserStore {
    async fn seed_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.insert_if_absent(&user).await
    }
}

#[cfg(feature = "mysql")]
#[async_trait]
impl SeedUser for keycard::mysql::MysqlUserStore {
    async fn seed_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.insert_if_absent(&user).await
    }
}

/// How often the example servers purge expired sessions.
pub(crate) const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

impl Stores {
    /// The authenticator an app's `configure` sets up (its protocol's options), over these
    /// stores and with their throttle.
    #[allow(dead_code)] // the demo apps only
    pub(crate) fn authenticator(
        &self,
        configure: fn(Users, Arc<dyn TokenStore>, Duration) -> AuthenticatorBuilder<Users>,
        session_ttl: Duration,
    ) -> Authenticator<Users> {
        configure(self.users.clone(), self.tokens.clone(), session_ttl)
            .throttle(self.throttle.clone())
            .build()
    }

    /// Adds `user` unless its email is taken (idempotent).
    #[allow(dead_code)] // the demo apps only
    pub(crate) async fn seed_user(&self, user: UserRecord) -> Result<bool, StoreError> {
        self.seeder.seed_user(user).await
    }
}

/// Opens the stores a `--store` URL names.
///
/// Supported: `memory` (sessions and users in this process, gone at exit); with their
/// features, `sqlite://PATH` (sessions and users in one file, kept across restarts),
/// `postgres://...` (sessions and users in the database) and `redis://...` (sessions in
/// Redis; users in memory, since keycard has no Redis user store). Tables are created on
/// start.
pub(crate) async fn open_stores(url: &str) -> Result<Stores, BoxError> {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    match scheme {
        "memory" => {
            let users = Arc::new(MemoryUserStore::<UserRecord>::new());
            Ok(Stores {
                tokens: Arc::new(MemoryTokenStore::new()),
                users: users.clone(),
                throttle: Arc::new(MemoryThrottle::default()),
                registry: users.clone(),
                one_time: Arc::new(MemoryOneTimeStore::new()),
                second_factors: Arc::new(MemorySecondFactorStore::new()),
                passkeys: Arc::new(MemoryPasskeyStore::new()),
                seeder: users,
            })
        }
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let path = url
                .strip_prefix("sqlite://")
                .filter(|path| !path.is_empty())
                .ok_or("--store sqlite:// needs a file path, e.g. sqlite://keycard.db")?;
            let db = keycard::sqlite::Sqlite::open(path).await?;
            db.migrate().await?;
            let users = Arc::new(db.user_store());
            Ok(Stores {
                tokens: Arc::new(db.token_store()),
                users: users.clone(),
                throttle: Arc::new(db.throttle(keycard::throttle::ThrottleLimits::default())),
                registry: users.clone(),
                one_time: Arc::new(db.one_time_store()),
                second_factors: Arc::new(db.second_factor_store()),
                passkeys: Arc::new(db.passkey_store()),
                seeder: users,
            })
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            let db = keycard::postgres::Postgres::connect(url).await?;
            db.migrate().await?;
            let users = Arc::new(db.user_store());
            Ok(Stores {
                tokens: Arc::new(db.token_store()),
                users: users.clone(),
                throttle: Arc::new(db.throttle(keycard::throttle::ThrottleLimits::default())),
                registry: users.clone(),
                one_time: Arc::new(db.one_time_store()),
                second_factors: Arc::new(db.second_factor_store()),
                passkeys: Arc::new(db.passkey_store()),
                seeder: users,
            })
        }
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => {
            // sqlx reads `mysql://` URLs; `mariadb://` is the same server.
            let url = url.replacen("mariadb://", "mysql://", 1);
            let db = keycard::mysql::Mysql::connect(&url).await?;
            db.migrate().await?;
            let users = Arc::new(db.user_store());
            Ok(Stores {
                tokens: Arc::new(db.token_store()),
                users: users.clone(),
                throttle: Arc::new(db.throttle(keycard::throttle::ThrottleLimits::default())),
                registry: users.clone(),
                one_time: Arc::new(db.one_time_store()),
                second_factors: Arc::new(db.second_factor_store()),
                passkeys: Arc::new(db.passkey_store()),
                seeder: users,
            })
        }
        #[cfg(feature = "redis")]
        "redis" | "rediss" => {
            let users = Arc::new(MemoryUserStore::<UserRecord>::new());
            let redis = keycard::redis::Redis::connect(url).await?;
            let tokens = redis.token_store();
            let throttle = redis.throttle(keycard::throttle::ThrottleLimits::default());
            Ok(Stores {
                tokens: Arc::new(tokens),
                users: users.clone(),
                throttle: Arc::new(throttle),
                registry: users.clone(),
                one_time: Arc::new(redis.one_time_store()),
                second_factors: Arc::new(MemorySecondFactorStore::new()),
                passkeys: Arc::new(MemoryPasskeyStore::new()),
                seeder: users,
            })
        }
        _ => Err(format!(
            "unsupported --store `{url}`: use `memory`, `sqlite://PATH`, `postgres://...`, \
             `mysql://...` or `redis://...` (all but `memory` need their cargo feature)"
        )
        .into()),
    }
}

/// Logs to stderr (`tracing`, level INFO and above): the adapter logs server-side failures,
/// such as a store that is down, with their causes.
pub(crate) fn init_logging() {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or a collector gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .init();
}

/// Listens for Ctrl-C (SIGINT) and SIGTERM from now on (call it before announcing the
/// address, so that a signal sent as soon as the server is up is not missed) and returns a
/// future that completes at the first of them. Must be called inside a tokio runtime (an
/// actix system is one).
///
/// # Errors
/// If the signal handlers cannot be installed.
pub(crate) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if let Err(error) = tokio::signal::ctrl_c().await {
                eprintln!("cannot listen for Ctrl-C: {error}");
                std::future::pending::<()>().await;
            }
        })
    }
}
