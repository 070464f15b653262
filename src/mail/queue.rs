//! The mail queue: mail sent off the request path by one background task.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::{recipient_domain, AccountMail, MailError, MailRenderer, Mailer, OutgoingMail};
use crate::audit;

/// The `tracing` target of failed sends' errors.
const LOG_TARGET: &str = "keycard::mail";

/// `enqueue` dropped the mail: the queue is full (or its task has stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mail queue is full (or its background task has stopped), so the mail was dropped; the mail server is slow or down, or the queue's capacity is too small for the load")]
pub struct MailQueueFull;

/// Sends mail **off the request path**: a bounded queue drained by one background tokio task
/// that calls the [`Mailer`].
///
/// - [`enqueue`](Self::enqueue) renders the message with the [`MailRenderer`] and queues it; it
///   never waits. When the queue is full (default [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)
///   mails waiting) the mail is dropped, the audit event `mail.dropped` is emitted and
///   [`MailQueueFull`] returned, so a slow or dead mail server costs requests nothing.
/// - The task sends one mail at a time, each within a time-out (default
///   [`DEFAULT_SEND_TIMEOUT`](Self::DEFAULT_SEND_TIMEOUT), 30 s). A send that failed with
///   [`MailError::Unavailable`] or timed out is tried once more after a second; a mail that
///   still fails emits the audit event `mail.failed` (the recipient's domain and why, never
///   the body) and its error is logged at WARN under the target `keycard::mail`. A mailer that
///   panics fails that mail only.
/// - [`flush`](Self::flush) waits until every mail enqueued before it was handed to the mailer
///   and the send finished (tests, graceful shutdown).
///
/// Clones share one queue. When the last clone is dropped the task sends what is still queued
/// and ends. The task runs on the tokio runtime that spawned the queue: spawn it on the
/// application's main runtime (not on a per-worker runtime that may stop first).
#[derive(Clone)]
pub struct MailQueue {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: mpsc::UnboundedSender<Job>,
    /// One permit per mail waiting in the queue: the bound.
    slots: Arc<Semaphore>,
    capacity: usize,
    send_timeout: Duration,
    renderer: Arc<dyn MailRenderer>,
}

enum Job {
    /// A mail and its queue slot, freed when the task takes the mail off the queue.
    Mail(OutgoingMail, OwnedSemaphorePermit),
    /// Answered once every job before it is done.
    Flush(oneshot::Sender<()>),
}

impl MailQueue {
    /// How many mails may wait in the queue by default.
    pub const DEFAULT_CAPACITY: usize = 1024;
    /// How long one send may take by default.
    pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

    /// A queue of [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) mails and its task, sending
    /// through `mailer` what `renderer` renders.
    ///
    /// # Panics
    /// Outside a tokio runtime (the task is spawned with `tokio::spawn`).
    pub fn spawn(mailer: impl Mailer + 'static, renderer: impl MailRenderer + 'static) -> Self {
        Self::builder(mailer, renderer).spawn()
    }

    /// A queue of at most `capacity` waiting mails (at least 1) and its task.
    ///
    /// # Panics
    /// Outside a tokio runtime (the task is spawned with `tokio::spawn`).
    pub fn with_capacity(
        mailer: impl Mailer + 'static,
        renderer: impl MailRenderer + 'static,
        capacity: usize,
    ) -> Self {
        Self::builder(mailer, renderer).capacity(capacity).spawn()
    }

    /// A builder, to set the capacity and the send time-out before spawning.
    pub fn builder(
        mailer: impl Mailer + 'static,
        renderer: impl MailRenderer + 'static,
    ) -> MailQueueBuilder {
        MailQueueBuilder {
            mailer: Arc::new(mailer),
            renderer: Arc::new(renderer),
            capacity: Self::DEFAULT_CAPACITY,
            send_timeout: Self::DEFAULT_SEND_TIMEOUT,
        }
    }

    /// Renders `message` for `to` and queues it, without waiting.
    ///
    /// `to` must be the address stored for the user, never the spelling a request typed.
    ///
    /// # Errors
    /// [`MailQueueFull`] when the queue is full or its task has stopped: the mail was dropped
    /// and the audit event `mail.dropped` emitted. Account flows should answer as if it had
    /// been sent (the answer must not depend on the mail), so this is for metrics and logs.
    pub fn enqueue(&self, to: &str, message: AccountMail) -> Result<(), MailQueueFull> {
        let Ok(slot) = Arc::clone(&self.inner.slots).try_acquire_owned() else {
            audit::mail_dropped("full", &recipient_domain(to));
            return Err(MailQueueFull);
        };
        let mail = OutgoingMail::from_rendered(to, self.inner.renderer.render(&message));
        self.inner.jobs.send(Job::Mail(mail, slot)).map_err(|_| {
            audit::mail_dropped("stopped", &recipient_domain(to));
            MailQueueFull
        })
    }

    /// Waits until every mail enqueued so far was handed to the mailer and its send finished
    /// (sent, failed or timed out): for tests and graceful shutdown. Returns at once when the
    /// task has stopped.
    pub async fn flush(&self) {
        let (done, finished) = oneshot::channel();
        if self.inner.jobs.send(Job::Flush(done)).is_ok() {
            // An error means the task stopped: nothing more will be sent.
            let _ = finished.await;
        }
    }

    /// How many mails wait in the queue now (not counting the one being sent).
    pub fn len(&self) -> usize {
        self.inner
            .capacity
            .saturating_sub(self.inner.slots.available_permits())
    }

    /// Whether no mail waits in the queue now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many mails may wait in the queue.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }
}

impl fmt::Debug for MailQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailQueue")
            .field("queued", &self.len())
            .field("capacity", &self.inner.capacity)
            .field("send_timeout", &self.inner.send_timeout)
            .field("renderer", &self.inner.renderer)
            .finish_non_exhaustive()
    }
}

/// Configures a [`MailQueue`] before its task is spawned: from [`MailQueue::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct MailQueueBuilder {
    mailer: Arc<dyn Mailer>,
    renderer: Arc<dyn MailRenderer>,
    capacity: usize,
    send_timeout: Duration,
}

impl MailQueueBuilder {
    /// At most `capacity` mails wait in the queue (at least 1; default
    /// [`MailQueue::DEFAULT_CAPACITY`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// One send may take at most `timeout` (default [`MailQueue::DEFAULT_SEND_TIMEOUT`]);
    /// a send still running then is abandoned and counts as failed.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// Spawns the queue's task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime (the task is spawned with `tokio::spawn`).
    pub fn spawn(self) -> MailQueue {
        let (jobs, queued) = mpsc::unbounded_channel();
        tokio::spawn(drain(queued, self.mailer, self.send_timeout));
        MailQueue {
            inner: Arc::new(Inner {
                jobs,
                slots: Arc::new(Semaphore::new(self.capacity)),
                capacity: self.capacity,
                send_timeout: self.send_timeout,
                renderer: self.renderer,
            }),
        }
    }
}

/// The queue's task: one job at a time, in order, until every `MailQueue` clone is dropped.
async fn drain(mut queued: mpsc::UnboundedReceiver<Job>, mailer: Arc<dyn Mailer>, limit: Duration) {
    while let Some(job) = queued.recv().await {
        match job {
            Job::Mail(mail, slot) => {
                drop(slot);
                deliver(&mailer, Arc::new(mail), limit).await;
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Why one attempt failed.
enum Failure {
    Mail(MailError),
    Timeout,
    Panicked,
}

impl Failure {
    fn reason(&self) -> &'static str {
        match self {
            Self::Mail(MailError::InvalidAddress { .. }) => "invalid_address",
            Self::Mail(MailError::Rejected { .. }) => "rejected",
            Self::Mail(MailError::Unavailable { .. }) => "unavailable",
            Self::Mail(MailError::Config { .. }) => "config",
            Self::Timeout => "timeout",
            Self::Panicked => "panicked",
        }
    }

    fn worth_retrying(&self) -> bool {
        matches!(
            self,
            Self::Mail(MailError::Unavailable { .. }) | Self::Timeout
        )
    }
}

async fn deliver(mailer: &Arc<dyn Mailer>, mail: Arc<OutgoingMail>, limit: Duration) {
    let mut result = attempt(mailer, &mail, limit).await;
    if matches!(&result, Err(failure) if failure.worth_retrying()) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        result = attempt(mailer, &mail, limit).await;
    }
    if let Err(failure) = result {
        let domain = recipient_domain(&mail.to);
        audit::mail_failed(failure.reason(), &domain);
        match &failure {
            Failure::Mail(error) => {
                tracing::warn!(target: LOG_TARGET, domain = %domain, error = %error, "mail not sent");
            }
            Failure::Timeout => {
                tracing::warn!(target: LOG_TARGET, domain = %domain, timeout_secs = limit.as_secs_f64(), "mail not sent: the mailer did not finish in time");
            }
            Failure::Panicked => {
                tracing::error!(target: LOG_TARGET, domain = %domain, "mail not sent: the mailer panicked");
            }
        }
    }
}

/// One send in its own task, so a time-out can abort it and a panic stays in it.
async fn attempt(
    mailer: &Arc<dyn Mailer>,
    mail: &Arc<OutgoingMail>,
    limit: Duration,
) -> Result<(), Failure> {
    let mailer = Arc::clone(mailer);
    let mail = Arc::clone(mail);
    let send = tokio::spawn(async move { mailer.send(&mail).await });
    let abort = send.abort_handle();
    match tokio::time::timeout(limit, send).await {
        Ok(Ok(result)) => result.map_err(Failure::Mail),
        Ok(Err(_)) => Err(Failure::Panicked),
        Err(_) => {
            abort.abort();
            Err(Failure::Timeout)
        }
    }
}
