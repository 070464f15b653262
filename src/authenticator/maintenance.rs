//! Maintenance: purging expired sessions (and the throttle's ended windows), once or
//! periodically.

use std::time::Duration;

use super::Authenticator;
use crate::audit;
use crate::error::{Error, Result};
use crate::throttle::Throttle;
use crate::user::UserStore;

impl<U: UserStore> Authenticator<U> {
    /// Deletes every expired session from the token store and returns how many. Also prunes
    /// the throttle's ended windows ([`Throttle::prune`]).
    ///
    /// Sessions dead by idle timeout are deleted when next presented, or by this call once
    /// their absolute lifetime ends. Run it periodically with
    /// [`spawn_expiry_task`](Self::spawn_expiry_task), or from your own scheduler.
    ///
    /// # Errors
    /// [`Error::Store`] if the token store fails; [`Error::ThrottleUnavailable`] if the
    /// throttle's backend does.
    pub async fn expire(&self) -> Result<u64> {
        let now = self.now();
        let purged = self.inner.tokens.purge_expired(now).await?;
        audit::sessions_purged(purged);
        if let Some(throttle) = &self.inner.throttle {
            throttle
                .prune(now)
                .await
                .map_err(Error::ThrottleUnavailable)?;
        }
        Ok(purged)
    }

    /// Spawns a Tokio task that calls [`expire`](Self::expire) every `every` (at least one
    /// second) until the handle is aborted or the runtime shuts down. Failures are logged with
    /// `tracing` and retried at the next tick.
    ///
    /// # Panics
    /// If called outside a Tokio runtime, like [`tokio::spawn`].
    pub fn spawn_expiry_task(&self, every: Duration) -> tokio::task::JoinHandle<()>
    where
        U: 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_secs(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match this.expire().await {
                    Ok(purged) => tracing::debug!(purged, "keycard: purged expired sessions"),
                    Err(error) => {
                        tracing::warn!(%error, source = ?std::error::Error::source(&error), "keycard: purging expired sessions failed")
                    }
                }
            }
        })
    }
}
