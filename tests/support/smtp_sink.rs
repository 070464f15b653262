//! A small real SMTP server on loopback that keeps every message it receives: the mail server
//! of the tests. It speaks enough SMTP for lettre (greeting, EHLO/HELO, MAIL, RCPT, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT) over real TCP, and parses received messages with
//! `mail-parser`.
//!
//! Shared by the test binaries through `#[path]`:
//! `#[path = "../../support/smtp_sink.rs"] pub(crate) mod smtp_sink;`.

#![allow(dead_code)]

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

/// The longest message the sink accepts, and the longest command line.
const MAX_MESSAGE: usize = 1 << 20;
const MAX_LINE: usize = 4096;

/// One message as received: the envelope and the raw data.
#[derive(Debug, Clone)]
pub(crate) struct ReceivedMail {
    /// The `MAIL FROM` address, without angle brackets.
    pub(crate) mail_from: String,
    /// Every `RCPT TO` address, without angle brackets.
    pub(crate) rcpt_to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, CRLF line ends kept.
    pub(crate) data: String,
}

impl ReceivedMail {
    /// The message parsed.
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

    /// The subject.
    pub(crate) fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }
}

/// The SMTP sink: listening on `127.0.0.1:<port>` until dropped.
#[derive(Debug)]
pub(crate) struct SmtpSink {
    port: u16,
    received: Mutex<mpsc::UnboundedReceiver<ReceivedMail>>,
    accept: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP sink on 127.0.0.1");
        let port = listener.local_addr().expect("sink address").port();
        let (deliver, received) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, deliver.clone()));
            }
        });
        Self {
            port,
            received: Mutex::new(received),
            accept,
        }
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP on loopback.
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The next message received, waiting at most 10 s.
    pub(crate) async fn next_mail(&self) -> ReceivedMail {
        tokio::time::timeout(Duration::from_secs(10), self.received.lock().await.recv())
            .await
            .expect("a mail reached the SMTP sink within 10 s")
            .expect("the sink is running")
    }

    /// Every message received so far and not yet taken.
    pub(crate) async fn drain(&self) -> Vec<ReceivedMail> {
        let mut received = self.received.lock().await;
        let mut mails = Vec::new();
        while let Ok(mail) = received.try_recv() {
            mails.push(mail);
        }
        mails
    }
}

fn address(argument: &str) -> String {
    let argument = argument.trim();
    let inner = argument
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(argument, |(inner, _)| inner);
    inner.to_owned()
}

/// One SMTP session: replies to each command; a message is delivered at the end of its DATA.
async fn session(stream: TcpStream, deliver: mpsc::UnboundedSender<ReceivedMail>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    let mut from = String::new();
    let mut rcpt = Vec::new();
    if write
        .write_all(b"220 keycard-test-sink ESMTP ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(n) if n > MAX_LINE => return,
            Ok(_) => {}
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-keycard-test-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 keycard-test-sink\r\n",
            "MAIL" => {
                from = address(command.split_once(':').map_or("", |(_, a)| a));
                rcpt.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                rcpt.push(address(command.split_once(':').map_or("", |(_, a)| a)));
                b"250 OK\r\n"
            }
            "DATA" => {
                if write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(unstuffed);
                    if data.len() > MAX_MESSAGE {
                        return;
                    }
                }
                let _ = deliver.send(ReceivedMail {
                    mail_from: from.clone(),
                    rcpt_to: std::mem::take(&mut rcpt),
                    data,
                });
                b"250 OK: queued\r\n"
            }
            "RSET" => {
                rcpt.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 Bye\r\n").await;
                return;
            }
            _ => b"502 Command not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
