//! The mail module without a server: the default rendering (escaped HTML, links on their own
//! line), redacted `Debug`, and the queue that sends mail off the request path (order,
//! bound, audit events, retries, time-outs). The mailers here are the queue's sinks under
//! test, recording what the queue hands them; SMTP itself is tested against a real server in
//! `tests/backends/smtp.rs`.

use crate::support::recorder::Recorder;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keycard::async_trait;
use keycard::mail::{
    AccountMail, DefaultRenderer, MailError, MailQueue, MailQueueFull, MailRenderer, Mailer,
    OutgoingMail, RenderedMail,
};

const LINK: &str = "https://app.example.com/password/reset?lang=en&token=kcot_SECRETSECRET\"><script>alert(1)</script>";

fn minutes(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

fn every_message() -> Vec<AccountMail> {
    vec![
        AccountMail::VerifyEmail {
            link: LINK.into(),
            expires_in: minutes(24 * 60),
        },
        AccountMail::RegistrationAttempt {
            login_url: "https://app.example.com/login".into(),
            reset_url: "https://app.example.com/password/forgot".into(),
        },
        AccountMail::PasswordReset {
            link: LINK.into(),
            expires_in: minutes(30),
        },
        AccountMail::PasswordChanged,
        AccountMail::SignInLink {
            link: LINK.into(),
            expires_in: minutes(15),
        },
        AccountMail::ConfirmEmailChange {
            link: LINK.into(),
            new_email: "<b>new</b>@example.com".into(),
            expires_in: minutes(60),
        },
        AccountMail::EmailChangeRequested {
            new_email: "<b>new</b>@example.com".into(),
        },
        AccountMail::EmailChanged {
            new_email: "<b>new</b>@example.com".into(),
        },
    ]
}

#[test]
fn the_default_renderer_escapes_html_and_puts_each_link_on_its_own_line() {
    let renderer = DefaultRenderer::new("Tom & <Jerry>");
    for message in every_message() {
        let mail = renderer.render(&message);
        let html = mail.html.as_deref().expect("an HTML part");
        assert!(!html.contains("<script>"), "{message:?}: {html}");
        assert!(!html.contains("<b>"), "{message:?}: {html}");
        assert!(!html.contains("<Jerry>"), "{message:?}: {html}");
        assert!(
            html.contains("Tom &amp; &lt;Jerry&gt;"),
            "{message:?}: {html}"
        );
        assert!(mail.subject.contains("Tom & <Jerry>"), "{:?}", mail.subject);
        let lines: Vec<&str> = mail.text.lines().collect();
        match &message {
            AccountMail::VerifyEmail { .. }
            | AccountMail::PasswordReset { .. }
            | AccountMail::SignInLink { .. }
            | AccountMail::ConfirmEmailChange { .. } => {
                assert!(lines.contains(&LINK), "{message:?}: {}", mail.text);
                assert!(
                    html.contains("href=\"https://app.example.com/password/reset?lang=en&amp;token=kcot_SECRETSECRET&quot;&gt;"),
                    "{message:?}: {html}"
                );
            }
            AccountMail::RegistrationAttempt { .. } => {
                assert!(lines.contains(&"https://app.example.com/login"));
                assert!(lines.contains(&"https://app.example.com/password/forgot"));
                assert!(!mail.text.contains("token"), "no token: {}", mail.text);
            }
            _ => assert!(!mail.text.contains("https://"), "{}", mail.text),
        }
    }
    let reset = renderer.render(&every_message()[2]);
    assert!(reset.text.contains("30 minutes"), "{}", reset.text);
    let verify = renderer.render(&every_message()[0]);
    assert!(verify.text.contains("1 day"), "{}", verify.text);
}

#[test]
fn debug_never_shows_a_link_or_a_body() {
    for message in every_message() {
        let debug = format!("{message:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        let rendered = DefaultRenderer::new("Example").render(&message);
        let debug = format!("{rendered:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        let outgoing = OutgoingMail::from_rendered("ann@example.com", rendered);
        let debug = format!("{outgoing:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("ann@example.com"), "{debug}");
    }
    let debug = format!(
        "{:?}",
        OutgoingMail::new("ann@example.com", "Hi", "body SECRET").with_html("<p>SECRET</p>")
    );
    assert!(!debug.contains("SECRET"), "{debug}");
    assert!(debug.contains("text_len: 11"), "{debug}");
    let debug = format!("{:?}", RenderedMail::new("Hi", "SECRET"));
    assert!(!debug.contains("SECRET"), "{debug}");
}

/// Everything written by a `tracing` fmt subscriber, for assertions.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
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

/// Captures this thread's `tracing` output while the guard lives (the tests run on a
/// current-thread runtime, so the queue's task logs on this thread too).
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

fn reset() -> AccountMail {
    AccountMail::PasswordReset {
        link: LINK.into(),
        expires_in: minutes(30),
    }
}

#[tokio::test]
async fn the_queue_delivers_every_mail_in_order() {
    let recorder = Recorder::default();
    let queue = MailQueue::spawn(recorder.clone(), DefaultRenderer::new("Example"));
    queue.enqueue("ann@example.com", reset()).expect("queued");
    queue
        .enqueue("bob@example.com", AccountMail::PasswordChanged)
        .expect("queued");
    queue.flush().await;
    let sent = recorder.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].to, "ann@example.com");
    assert_eq!(sent[0].subject, "Reset your Example password");
    assert!(sent[0].text.lines().any(|line| line == LINK));
    assert_eq!(sent[1].to, "bob@example.com");
    assert_eq!(sent[1].subject, "Your Example password was changed");
    assert!(queue.is_empty());
}

#[tokio::test]
async fn a_full_queue_drops_the_mail_says_so_and_audits_it() {
    let (captured, _guard) = capture();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let recorder = Recorder {
        gate: Some(Arc::clone(&gate)),
        ..Recorder::default()
    };
    let queue = MailQueue::with_capacity(recorder.clone(), DefaultRenderer::new("Example"), 2);
    assert_eq!(queue.capacity(), 2);
    queue
        .enqueue("ann@example.com", reset())
        .expect("first fits");
    queue
        .enqueue("bob@example.com", reset())
        .expect("second fits");
    assert_eq!(queue.len(), 2);
    let refused = queue.enqueue("carol@Example.ORG", reset());
    assert_eq!(refused, Err(MailQueueFull));
    assert!(refused
        .expect_err("full")
        .to_string()
        .contains("mail queue is full"));

    let log = captured.text();
    assert!(log.contains("mail.dropped"), "{log}");
    assert!(log.contains("reason=\"full\""), "{log}");
    assert!(log.contains("domain=\"example.org\""), "{log}");
    assert!(!log.contains("carol"), "only the domain is logged: {log}");
    assert!(!log.contains("SECRET"), "{log}");

    gate.add_permits(2);
    queue.flush().await;
    let sent: Vec<String> = recorder.sent().into_iter().map(|mail| mail.to).collect();
    assert_eq!(sent, ["ann@example.com", "bob@example.com"]);
    // Room again once the queue drained.
    queue
        .enqueue("carol@example.org", reset())
        .expect("fits now");
}

#[tokio::test]
async fn enqueue_does_not_wait_for_a_slow_mailer() {
    let recorder = Recorder {
        sleep: Some(Duration::from_secs(2)),
        ..Recorder::default()
    };
    let queue = MailQueue::spawn(recorder.clone(), DefaultRenderer::new("Example"));
    // Let the task start sending the first mail, then time the enqueues behind it.
    queue.enqueue("ann@example.com", reset()).expect("queued");
    tokio::task::yield_now().await;
    let started = Instant::now();
    for _ in 0..10 {
        queue.enqueue("ann@example.com", reset()).expect("queued");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(200),
        "10 enqueues behind a 2 s send took {took:?}"
    );
    assert!(
        recorder.sent().is_empty(),
        "the first send is still sleeping"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_mail_is_audited_with_its_domain_and_not_retried() {
    let (captured, _guard) = capture();
    let recorder = Recorder {
        fail: Some(MailError::Rejected {
            reason: "550 5.1.1 no such user".into(),
        }),
        ..Recorder::default()
    };
    let queue = MailQueue::spawn(recorder.clone(), DefaultRenderer::new("Example"));
    queue.enqueue("ann@example.com", reset()).expect("queued");
    queue.flush().await;
    assert_eq!(recorder.attempts(), 1, "a refusal is final");
    let log = captured.text();
    assert!(log.contains("mail.failed"), "{log}");
    assert!(log.contains("reason=\"rejected\""), "{log}");
    assert!(log.contains("domain=\"example.com\""), "{log}");
    assert!(log.contains("no such user"), "the error is logged: {log}");
    assert!(!log.contains("SECRET"), "never the body: {log}");
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_server_is_tried_twice() {
    let (captured, _guard) = capture();
    let recorder = Recorder {
        fail: Some(MailError::Unavailable {
            reason: "connection refused".into(),
        }),
        ..Recorder::default()
    };
    let queue = MailQueue::spawn(recorder.clone(), DefaultRenderer::new("Example"));
    queue.enqueue("ann@example.com", reset()).expect("queued");
    queue.flush().await;
    assert_eq!(recorder.attempts(), 2);
    assert!(captured.text().contains("reason=\"unavailable\""));
}

#[tokio::test(start_paused = true)]
async fn a_send_that_hangs_times_out_and_the_queue_moves_on() {
    let (captured, _guard) = capture();
    let hanging = Recorder {
        sleep: Some(Duration::from_secs(3600)),
        ..Recorder::default()
    };
    let queue = MailQueue::builder(hanging.clone(), DefaultRenderer::new("Example"))
        .send_timeout(Duration::from_secs(5))
        .spawn();
    let started = tokio::time::Instant::now();
    queue.enqueue("ann@example.com", reset()).expect("queued");
    queue.flush().await;
    assert_eq!(hanging.attempts(), 2, "one retry after a time-out");
    assert!(started.elapsed() < Duration::from_secs(60));
    let log = captured.text();
    assert!(log.contains("reason=\"timeout\""), "{log}");
}

#[derive(Debug)]
struct Panicking;

#[async_trait]
impl Mailer for Panicking {
    async fn send(&self, _: &OutgoingMail) -> Result<(), MailError> {
        panic!("a broken mailer");
    }
}

#[tokio::test]
async fn a_panicking_mailer_fails_its_mail_and_the_queue_goes_on() {
    let recorder = Recorder::default();
    let mailers: Vec<Arc<dyn Mailer>> = vec![Arc::new(Panicking), Arc::new(recorder.clone())];
    let panicking = MailQueue::spawn(Arc::clone(&mailers[0]), DefaultRenderer::new("Example"));
    panicking
        .enqueue("ann@example.com", reset())
        .expect("queued");
    panicking.flush().await;
    // The task survived the panic: it still takes mail.
    panicking
        .enqueue("ann@example.com", reset())
        .expect("still running");
    panicking.flush().await;
    let working = MailQueue::spawn(Arc::clone(&mailers[1]), DefaultRenderer::new("Example"));
    working.enqueue("ann@example.com", reset()).expect("queued");
    working.flush().await;
    assert_eq!(recorder.sent().len(), 1);
}
