//! `SmtpMailer` against a real SMTP server on loopback (the sink in
//! `tests/http/support/smtp_sink.rs`, real TCP, no mock): what reaches the server, which URLs are
//! refused, and a server that is not there.

use std::time::Duration;

use keycard::mail::{
    AccountMail, DefaultRenderer, MailError, MailQueue, MailRenderer, Mailer, OutgoingMail,
    SmtpMailer,
};

use crate::support::smtp_sink::SmtpSink;

const FROM: &str = "keycard@example.com";

/// A link as long as a real one (well past 76 characters), with an `&` for the HTML escape.
fn reset_link() -> String {
    format!(
        "https://app.example.com/password/reset?lang=en&token=kcot_{}.{}_abcdef",
        "A".repeat(22),
        "b".repeat(43)
    )
}

#[tokio::test]
async fn a_password_reset_reaches_the_server_with_the_link_on_its_own_line() {
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::from_url(&sink.url(), FROM).expect("loopback plain SMTP is allowed");
    let link = reset_link();
    let rendered = DefaultRenderer::new("Example").render(&AccountMail::PasswordReset {
        link: link.clone(),
        expires_in: Duration::from_secs(30 * 60),
    });
    mailer
        .send(&OutgoingMail::from_rendered("ann@example.com", rendered))
        .await
        .expect("the sink accepts the mail");

    let mail = sink.next_mail().await;
    assert_eq!(mail.mail_from, FROM);
    assert_eq!(mail.to, vec!["ann@example.com".to_owned()]);
    assert_eq!(mail.subject(), "Reset your Example password");
    // The text part, decoded, has the link alone on a line.
    let text = mail.text();
    assert!(
        text.lines().any(|line| line.trim_end() == link),
        "the link is on a line of its own in:\n{text}"
    );
    assert!(text.contains("30 minutes"), "{text}");
    // And on the wire too: 7bit, not wrapped or quoted-printable encoded, so `token=` is
    // readable as is.
    assert!(
        mail.data.contains(&format!("\r\n{link}\r\n")),
        "the link goes out verbatim on its own line:\n{}",
        mail.data
    );
    assert!(mail.data.contains("Content-Transfer-Encoding: 7bit"));
    // What a reader of the mail (and the HTTP tests) takes from it: the link's token.
    let token = link.split("token=").nth(1).expect("the link has a token");
    assert_eq!(mail.token().as_deref(), Some(token));
    // The HTML alternative escapes the link.
    let html = mail.html().expect("an HTML part");
    assert!(
        html.contains("?lang=en&amp;token=kcot_"),
        "the HTML part escapes the link's `&`:\n{html}"
    );
}

#[tokio::test]
async fn the_queue_sends_through_smtp_off_the_request_path() {
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::from_url(&sink.url(), FROM).expect("mailer");
    let queue = MailQueue::spawn(mailer, DefaultRenderer::new("Example"));
    queue
        .enqueue(
            "bob@example.com",
            AccountMail::EmailChanged {
                new_email: "bob@new.example".into(),
            },
        )
        .expect("queued");
    queue.flush().await;
    let mail = sink.wait_for("bob@example.com", 1).await.remove(0);
    assert_eq!(mail.to, vec!["bob@example.com".to_owned()]);
    assert!(mail.text().contains("bob@new.example"));
    assert!(mail.token().is_none(), "a notice carries no link token");
    assert!(
        sink.mails_to("bob@new.example").is_empty(),
        "only the recipient is mailed"
    );
}

#[tokio::test]
async fn plain_smtp_to_a_remote_host_is_refused() {
    for url in [
        "smtp://mail.example.com:25",
        "smtp://mail.example.com",
        "smtp://192.0.2.1:25",
        "smtp://user:secret@mail.example.com:25",
    ] {
        let error = SmtpMailer::from_url(url, FROM).expect_err(url);
        assert!(
            matches!(error, MailError::Config { .. }),
            "{url}: {error:?}"
        );
        assert!(
            error.to_string().contains("smtps://"),
            "the error says what to use instead: {error}"
        );
        assert!(!error.to_string().contains("secret"), "{error}");
    }
}

#[tokio::test]
async fn tls_urls_and_loopback_urls_are_accepted() {
    for url in [
        "smtp://127.0.0.1:2525",
        "smtp://127.8.9.10:2525",
        "smtp://localhost:2525",
        "smtp://[::1]:2525",
        "smtps://mail.example.com",
        "smtps://user:p%40ss@mail.example.com:465",
        "smtp+starttls://mail.example.com:587",
        "smtp://mail.example.com:587?tls=starttls",
    ] {
        SmtpMailer::from_url(url, "Example <no-reply@example.com>")
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[tokio::test]
async fn malformed_urls_are_config_errors() {
    for url in [
        "not a url",
        "http://mail.example.com",
        "smtp://mail.example.com?tls=none",
        "smtp://127.0.0.1:25?timeout=3",
        "smtps://mail.example.com?tls=starttls",
        "smtps://mail.example.com/path",
        "smtp://",
    ] {
        let error = SmtpMailer::from_url(url, FROM).expect_err(url);
        assert!(
            matches!(error, MailError::Config { .. }),
            "{url}: {error:?}"
        );
    }
    let error = SmtpMailer::from_url("smtp://127.0.0.1:25", "not an address").expect_err("from");
    assert!(
        matches!(error, MailError::InvalidAddress { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn debug_never_shows_the_credentials() {
    let mailer =
        SmtpMailer::from_url("smtps://apikey:hunter2@mail.example.com", FROM).expect("mailer");
    let debug = format!("{mailer:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("apikey"), "{debug}");
    assert!(debug.contains("mail.example.com"), "{debug}");
}

#[tokio::test]
async fn a_server_that_is_not_there_is_unavailable() {
    // A port that was free a moment ago: nothing listens on it now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let mailer = SmtpMailer::from_url(&format!("smtp://127.0.0.1:{port}"), FROM).expect("mailer");
    let error = mailer
        .send(&OutgoingMail::new("ann@example.com", "Hello", "Hi"))
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, MailError::Unavailable { .. }), "{error:?}");
}

#[tokio::test]
async fn a_bad_recipient_is_refused_before_connecting() {
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::from_url(&sink.url(), FROM).expect("mailer");
    for to in ["not an address", "ann@example.com\r\nBcc: eve@example.com"] {
        let error = mailer
            .send(&OutgoingMail::new(to, "Hello", "Hi"))
            .await
            .expect_err(to);
        assert!(
            matches!(error, MailError::InvalidAddress { .. }),
            "{error:?}"
        );
    }
    assert!(sink.drain().is_empty());
}

#[tokio::test]
async fn starttls_never_falls_back_to_plain_text() {
    // The sink does not offer STARTTLS: a mailer that requires it sends nothing.
    let sink = SmtpSink::start().await;
    let mailer = SmtpMailer::from_url(
        &format!("smtp+starttls://user:secret@127.0.0.1:{}", sink.port()),
        FROM,
    )
    .expect("mailer");
    let error = mailer
        .send(&OutgoingMail::new("ann@example.com", "Hello", "Hi"))
        .await
        .expect_err("no STARTTLS, no mail");
    assert!(matches!(error, MailError::Config { .. }), "{error:?}");
    assert!(!error.to_string().contains("secret"), "{error}");
    assert!(sink.drain().is_empty());
}
