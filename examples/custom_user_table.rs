//! Your own users table behind keycard: a [`UserStore`] over an existing SQLite table whose
//! columns have their own names and whose ids are integers.
//!
//! ```sql
//! CREATE TABLE accounts (
//!     account_no   INTEGER PRIMARY KEY,   -- your key, an integer
//!     login_email  TEXT NOT NULL UNIQUE,  -- stored normalized (keycard::normalize_email)
//!     pw_phc       TEXT NOT NULL,         -- the argon2id PHC string
//!     display_name TEXT NOT NULL
//! );
//! ```
//!
//! What it takes:
//!
//! - a row type that implements [`User`]: the id as a [`UserId`] (`UserId::from(i64)`), the
//!   email, the PHC hash, and what the client may see ([`User::profile`]);
//! - a store that implements [`UserStore`] with `#[keycard::async_trait]`, querying with the
//!   re-exported `keycard::sqlite::driver` (the `rusqlite` crate; no driver version of your
//!   own to keep in step). An id that is not an integer (`id.as_i64()` is `None`) is simply not found;
//! - registration hashes with [`Authenticator::hash_password_with_policy`], which applies
//!   the password policy first.
//!
//! Run it with `cargo run --example custom_user_table --features sqlite`: it registers a user,
//! logs in, validates the token, changes the password and prints each step.
//! `tests/example_custom_user_table.rs` runs this same store through keycard's `UserStore`
//! conformance suite (`keycard::conformance::users`).

use std::error::Error as StdError;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use keycard::sqlite::driver::{self as rusqlite, params, Connection, OptionalExtension, Row};
use keycard::{
    normalize_email, Authenticator, ClientInfo, Error, MemoryTokenStore, StoreError, User, UserId,
    UserStore,
};
use serde_json::{Map, Value};

/// One row of `accounts`.
#[derive(Clone)]
pub(crate) struct Account {
    /// `account_no`: the integer key.
    pub(crate) account_no: i64,
    /// `login_email`, normalized.
    pub(crate) login_email: String,
    /// `pw_phc`: the password hash as a PHC string.
    pub(crate) pw_phc: String,
    /// `display_name`: shown to the user after login.
    pub(crate) display_name: String,
}

impl std::fmt::Debug for Account {
    // Never print the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("account_no", &self.account_no)
            .field("login_email", &self.login_email)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl User for Account {
    fn id(&self) -> UserId {
        UserId::from(self.account_no)
    }
    fn email(&self) -> &str {
        &self.login_email
    }
    fn password_hash(&self) -> &str {
        &self.pw_phc
    }
    fn profile(&self) -> Map<String, Value> {
        let mut profile = Map::new();
        profile.insert("display_name".into(), self.display_name.clone().into());
        profile
    }
}

/// The `accounts` table. One connection behind a mutex, used from Tokio's blocking pool: enough
/// for an example and for tests; a busy service would use a connection pool.
#[derive(Debug, Clone)]
pub(crate) struct Accounts {
    conn: Arc<Mutex<Connection>>,
}

const COLUMNS: &str = "account_no, login_email, pw_phc, display_name";

impl Accounts {
    /// Opens the database at `path` (`None`: a private in-memory database) and creates the
    /// table if it is missing.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the database cannot be opened or the table created.
    pub(crate) fn open(path: Option<&Path>) -> Result<Self, StoreError> {
        let conn = match path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }
        .map_err(StoreError::backend)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS accounts (
                 account_no   INTEGER PRIMARY KEY,
                 login_email  TEXT NOT NULL UNIQUE,
                 pw_phc       TEXT NOT NULL,
                 display_name TEXT NOT NULL
             );",
        )
        .map_err(StoreError::backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Adds an account and returns its id. `pw_phc` comes from
    /// [`Authenticator::hash_password_with_policy`]; the email is stored normalized, as logins
    /// look it up.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the insert fails (for example, the email is taken).
    pub(crate) async fn register(
        &self,
        email: &str,
        display_name: &str,
        pw_phc: &str,
    ) -> Result<UserId, StoreError> {
        let (email, name, phc) = (
            normalize_email(email),
            display_name.to_owned(),
            pw_phc.to_owned(),
        );
        let account_no = self
            .run(move |conn| {
                conn.query_row(
                    "INSERT INTO accounts (login_email, pw_phc, display_name) VALUES (?1, ?2, ?3) \
                     RETURNING account_no",
                    params![email, phc, name],
                    |row| row.get::<_, i64>(0),
                )
            })
            .await?;
        Ok(UserId::from(account_no))
    }

    /// Runs `work` on the connection, on Tokio's blocking pool (SQLite calls block).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&conn)
        })
        .await
        .map_err(StoreError::backend)?
        .map_err(StoreError::backend)
    }
}

fn account(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        account_no: row.get(0)?,
        login_email: row.get(1)?,
        pw_phc: row.get(2)?,
        display_name: row.get(3)?,
    })
}

#[keycard::async_trait]
impl UserStore for Accounts {
    type User = Account;

    async fn find_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
        // keycard passes the email normalized; compare it exactly (no LIKE, no COLLATE NOCASE).
        let email = email.to_owned();
        self.run(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM accounts WHERE login_email = ?1"
            ))?
            .query_row(params![email], account)
            .optional()
        })
        .await
    }

    async fn find_by_id(&self, id: &UserId) -> Result<Option<Account>, StoreError> {
        // Ids come from sessions keycard issued for your accounts, but treat them as input:
        // only the canonical integer form names an account ("042" and "42 " do not).
        let Some(account_no) = id.as_i64() else {
            return Ok(None);
        };
        self.run(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM accounts WHERE account_no = ?1"
            ))?
            .query_row(params![account_no], account)
            .optional()
        })
        .await
    }

    async fn set_password_hash(&self, id: &UserId, phc: &str) -> Result<(), StoreError> {
        let Some(account_no) = id.as_i64() else {
            return Ok(());
        };
        let phc = phc.to_owned();
        self.run(move |conn| {
            conn.prepare_cached("UPDATE accounts SET pw_phc = ?2 WHERE account_no = ?1")?
                .execute(params![account_no, phc])
                .map(drop)
        })
        .await
    }
}

const EMAIL: &str = "ann.lee@example.com";
const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a longer and newer passphrase";

/// Registers, logs in, validates and changes a password over `accounts`, printing each step.
///
/// # Errors
/// Any keycard error, or a step that does not turn out as expected.
pub(crate) async fn demo(accounts: Accounts) -> Result<(), Box<dyn StdError + Send + Sync>> {
    let auth = Authenticator::builder(accounts, MemoryTokenStore::new()).build();

    // Registration: the policy checks the password, then argon2id hashes it.
    match auth.hash_password_with_policy("annlee", EMAIL).await {
        Err(Error::WeakPassword(rejection)) => println!("weak password refused: {rejection}"),
        other => return Err(format!("a weak password must be refused, got {other:?}").into()),
    }
    let phc = auth.hash_password_with_policy(PASSWORD, EMAIL).await?;
    let id = auth.users().register(EMAIL, "Ann Lee", &phc).await?;
    println!(
        "registered {EMAIL} as account_no {}",
        id.as_i64().unwrap_or_default()
    );

    // Login: the email is normalized before the lookup, so case and spaces do not matter.
    let login = auth
        .login("  Ann.Lee@Example.COM ", PASSWORD, ClientInfo::none())
        .await?;
    println!(
        "logged in: session {} for account_no {} (the token goes to the client, never to a log)",
        login.session.id, login.user.account_no
    );

    // Validate: one token store read and one `find_by_id` on your table.
    let me = auth.validate(login.token.expose_secret()).await?;
    println!(
        "validated: {} <{}>, profile {}",
        me.user.display_name,
        me.user.login_email,
        Value::Object(me.user.profile())
    );

    // Change the password: `set_password_hash` writes `pw_phc`; other sessions end.
    let other_device = auth.login(EMAIL, PASSWORD, ClientInfo::none()).await?;
    // The caller's session is rotated: go on with the new token (the old one ends too).
    let changed = auth
        .change_password(&login.session, PASSWORD, NEW_PASSWORD, &ClientInfo::none())
        .await?;
    println!(
        "password changed; {} earlier session(s) ended",
        changed.ended
    );
    let login = changed.login;
    if !matches!(
        auth.validate(other_device.token.expose_secret()).await,
        Err(Error::InvalidToken)
    ) {
        return Err("the other device's session must be gone".into());
    }
    match auth.login(EMAIL, PASSWORD, ClientInfo::none()).await {
        Err(Error::InvalidCredentials) => println!("the old password no longer works"),
        other => return Err(format!("the old password must fail, got {other:?}").into()),
    }
    let again = auth.login(EMAIL, NEW_PASSWORD, ClientInfo::none()).await?;
    println!(
        "logged in with the new password: session {}",
        again.session.id
    );
    let stored = auth
        .users()
        .find_by_id(&id)
        .await?
        .ok_or("the account exists")?;
    println!(
        "accounts.pw_phc is an argon2id PHC string: {}",
        stored.pw_phc.starts_with("$argon2id$")
    );
    auth.logout(again.token.expose_secret()).await?;
    auth.logout(login.token.expose_secret()).await?;
    println!("logged out");
    Ok(())
}

// `pub(crate)`: `tests/examples` runs it too, from this source.
#[tokio::main]
pub(crate) async fn main() -> Result<(), Box<dyn StdError + Send + Sync>> {
    demo(Accounts::open(None)?).await
}
