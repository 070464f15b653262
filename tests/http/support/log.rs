//! The test binary's one global `tracing` subscriber, writing to a buffer the tests read:
//! installed on first use, so that no call site's interest is cached before it exists. Actix
//! workers run on threads of their own, so only a global subscriber sees their events.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything the global subscriber wrote.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }

    /// The lines of audit event `event` about client `ip`.
    #[cfg(feature = "axum")]
    pub(crate) fn events(&self, event: &str, ip: &str) -> Vec<String> {
        let event = format!(r#"event="{event}""#);
        let ip = format!("client_ip={ip}");
        self.text()
            .lines()
            .filter(|line| line.contains(&event) && line.contains(&ip))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test binary (installs the subscriber on first use).
pub(crate) fn log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    })
}
