//! A real SMTP server on a loopback port that keeps every mail it is given: the other end of
//! `SmtpMailer` in the tests. It speaks the part of RFC 5321 a submitting client uses
//! (greeting, `EHLO`/`HELO`, `MAIL`, `RCPT`, `DATA` with dot-unstuffing, `RSET`, `NOOP`,
//! `QUIT`) over plain TCP; anything else is answered `502`. Received messages are parsed with
//! `mail-parser` where a test reads their parts.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The longest message the sink accepts, and the longest command line.
const MAX_MESSAGE: usize = 1 << 20;
const MAX_LINE: usize = 4096;

/// One mail as the server received it.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub(crate) mail_from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub(crate) to: Vec<String>,
    /// The message as sent after `DATA` (headers and body), dot-unstuffed.
    pub(crate) data: String,
}

impl Mail {
    /// The message parsed (by `mail-parser`).
    pub(crate) fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .expect("the sink received a parsable message")
    }

    /// The decoded text part.
    pub(crate) fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .expect("the message has a text part")
            .into_owned()
    }

    /// The decoded HTML part, if any.
    pub(crate) fn html(&self) -> Option<String> {
        let parsed = self.parsed();
        if parsed.html_body_count() == 0 || parsed.text_body == parsed.html_body {
            return None;
        }
        parsed.body_html(0).map(|html| html.into_owned())
    }

    /// The message with quoted-printable soft line breaks joined and `=3D` decoded: enough to
    /// read links out of any part lettre writes.
    pub(crate) fn decoded(&self) -> String {
        self.data.replace("=\r\n", "").replace("=3D", "=")
    }

    /// The one-time token of the first `token=` link in the mail, if any.
    pub(crate) fn token(&self) -> Option<String> {
        let text = self.decoded();
        let start = text.find("token=")? + "token=".len();
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect();
        (!token.is_empty()).then_some(token)
    }

    /// The decoded subject.
    pub(crate) fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }
}

/// The server; stops when dropped.
pub(crate) struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    arrived: Arc<Notify>,
    /// How many mails [`next_mail`](Self::next_mail) and [`drain`](Self::drain) have taken.
    taken: Mutex<usize>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on `127.0.0.1`, on a free port.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the SMTP sink");
        let addr = listener.local_addr().expect("the sink's address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (kept, told) = (Arc::clone(&mails), Arc::clone(&arrived));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (kept, told) = (Arc::clone(&kept), Arc::clone(&told));
                tokio::spawn(async move {
                    let _ = session(stream, &kept, &told).await;
                });
            }
        });
        Self {
            addr,
            mails,
            arrived,
            taken: Mutex::new(0),
            task,
        }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next mail not yet taken by `next_mail` or `drain`, waiting at most 10 s.
    pub(crate) async fn next_mail(&self) -> Mail {
        let next = *self.taken.lock().expect("the sink's lock");
        let mail = self.wait_for_count(next + 1).await.swap_remove(next);
        *self.taken.lock().expect("the sink's lock") = next + 1;
        mail
    }

    /// Every mail received and not yet taken by `next_mail` or `drain`.
    pub(crate) fn drain(&self) -> Vec<Mail> {
        let mails = self.mails();
        let mut taken = self.taken.lock().expect("the sink's lock");
        let fresh = mails[(*taken).min(mails.len())..].to_vec();
        *taken = mails.len();
        fresh
    }

    /// `smtp://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every mail so far.
    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.mails.lock().expect("the sink's lock").clone()
    }

    /// The mails so far whose envelope names `to`.
    pub(crate) fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|mail| mail.to.iter().any(|rcpt| rcpt == to))
            .collect()
    }

    /// Waits (at most 10 s, then panics) until `to` has at least `count` mails; returns them.
    pub(crate) async fn wait_for(&self, to: &str, count: usize) -> Vec<Mail> {
        self.wait_until(|mails| {
            let mine: Vec<Mail> = mails
                .iter()
                .filter(|mail| mail.to.iter().any(|rcpt| rcpt == to))
                .cloned()
                .collect();
            (mine.len() >= count).then_some(mine)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{to} did not get {count} mail(s) within 10 s: {:#?}",
                self.mails()
            )
        })
    }

    /// Waits (at most 10 s, then panics) until the sink has `count` mails in all.
    async fn wait_for_count(&self, count: usize) -> Vec<Mail> {
        self.wait_until(|mails| (mails.len() >= count).then(|| mails.to_vec()))
            .await
            .unwrap_or_else(|| panic!("the sink did not get {count} mail(s) within 10 s"))
    }

    /// Waits at most 10 s for `done` to return something, looking at every arrival.
    async fn wait_until<T>(&self, done: impl Fn(&[Mail]) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            // Registered before looking, so a mail arriving in between still wakes us.
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(found) = done(&self.mails()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return None;
            }
        }
    }
}

/// One client connection, until `QUIT` or EOF.
async fn session(
    stream: TcpStream,
    kept: &Mutex<Vec<Mail>>,
    arrived: &Notify,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await? {
            0 => return Ok(()),
            n if n > MAX_LINE => return Ok(()),
            _ => {}
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("HELO") || command.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if command.starts_with("MAIL FROM:") {
            from = address(&line.trim_end()["MAIL FROM:".len()..]);
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            to.push(address(&line.trim_end()["RCPT TO:".len()..]));
            b"250 OK\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                if data.len() > MAX_MESSAGE {
                    return Ok(());
                }
            }
            kept.lock().expect("the sink's lock").push(Mail {
                mail_from: from.clone(),
                to: std::mem::take(&mut to),
                data,
            });
            arrived.notify_waiters();
            b"250 OK: queued\r\n"
        } else if command.starts_with("RSET") {
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// The address of a `MAIL FROM:` or `RCPT TO:` argument, without angle brackets or
/// parameters.
fn address(argument: &str) -> String {
    let argument = argument.trim();
    argument
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(argument, |(inner, _)| inner)
        .to_owned()
}
