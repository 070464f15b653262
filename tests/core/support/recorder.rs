//! A `Mailer` that records every mail it is handed (and can wait, sleep or fail first): the
//! sink under test for the mail queue and the account flows' library tests. (The HTTP tests
//! send over real SMTP instead.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keycard::async_trait;
use keycard::mail::{MailError, Mailer, OutgoingMail};

/// Records every mail the queue hands it; optionally waits for permits first, sleeps, or
/// fails.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    pub(crate) sent: Arc<Mutex<Vec<OutgoingMail>>>,
    pub(crate) attempts: Arc<AtomicUsize>,
    pub(crate) gate: Option<Arc<tokio::sync::Semaphore>>,
    pub(crate) sleep: Option<Duration>,
    pub(crate) fail: Option<MailError>,
}

impl Recorder {
    pub(crate) fn sent(&self) -> Vec<OutgoingMail> {
        self.sent.lock().expect("not poisoned").clone()
    }
    pub(crate) fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Mailer for Recorder {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate open").forget();
        }
        if let Some(sleep) = self.sleep {
            tokio::time::sleep(sleep).await;
        }
        if let Some(error) = &self.fail {
            return Err(error.clone());
        }
        self.sent.lock().expect("not poisoned").push(mail.clone());
        Ok(())
    }
}
