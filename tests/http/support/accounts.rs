//! The `accounts_api` app put together as its binary does: its account flows over a memory
//! one-time store, with mail printed to the log (the binary without `--smtp`), or with the
//! one-time tokens and mailer a test chooses.

use std::sync::Arc;

use keycard::http::{SessionCookie, TrustedProxies};
use keycard::mail::{LogMailer, Mailer};
use keycard::one_time::{MemoryOneTimeStore, OneTimeTokens};

use crate::app::{AccountsApp, Auth};

/// The app over `auth`, mail printed to the log.
pub(crate) fn app(auth: Auth, cookie: SessionCookie, proxies: TrustedProxies) -> AccountsApp {
    let one_time = OneTimeTokens::new(MemoryOneTimeStore::new());
    app_with(auth, one_time, Arc::new(LogMailer::new()), cookie, proxies)
}

/// The app over `auth`, with these one-time tokens and this mailer; links under
/// `http://127.0.0.1`.
pub(crate) fn app_with(
    auth: Auth,
    one_time: OneTimeTokens,
    mailer: Arc<dyn Mailer>,
    cookie: SessionCookie,
    proxies: TrustedProxies,
) -> AccountsApp {
    let flows = crate::app::flows(auth.clone(), one_time, mailer, "http://127.0.0.1")
        .expect("a valid public URL");
    AccountsApp::new(auth, flows, cookie, proxies)
}
