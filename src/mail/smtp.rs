//! `SmtpMailer`: mail over SMTP with lettre, TLS by rustls.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use percent_encoding::percent_decode_str;
use url::{Host, Url};

use super::{MailError, Mailer, OutgoingMail};
use crate::async_trait;

/// How long one SMTP command (connecting included) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest line SMTP carries (RFC 5321 §4.5.3.1.6), without its CRLF.
const MAX_LINE: usize = 998;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// Plain SMTP: loopback only.
    Plain,
    /// STARTTLS, required: no mail goes out if the server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

/// Sends mail over SMTP (feature `smtp`), built on lettre with rustls.
///
/// Made from a URL by [`from_url`](Self::from_url):
///
/// | URL | connection | default port |
/// |---|---|---|
/// | `smtps://host[:port]` | TLS from the first byte (implicit TLS, "SMTPS") | 465 |
/// | `smtp+starttls://host[:port]`, `smtp://host[:port]?tls=starttls` | plain, then `STARTTLS`, **required**: if the server does not offer it, no mail (and no password) is sent | 587 |
/// | `smtp://host[:port]` | plain SMTP, **only to a loopback host** (`127.0.0.0/8`, `::1`, `localhost`): a local relay or a test server | 25 |
///
/// TLS checks the server's certificate against the Mozilla root certificates (bundled through
/// `webpki-roots`) and the host name of the URL, with TLS 1.2 or 1.3; there is no option to
/// skip the check. Plain SMTP to any other host is refused with [`MailError::Config`]: mail
/// carries one-time tokens, and whoever reads the wire could use them.
///
/// Credentials come from the URL's user info, percent-decoded
/// (`smtps://apikey:s%40cret@smtp.example.com`); they are sent only after the connection is
/// secured (or to loopback). `Debug` never shows them.
///
/// Each mail opens its own connection (EHLO with this machine's host name), and each SMTP
/// command, connecting included, times out after 30 s. The text part goes out `7bit`, each
/// line as written, when it is ASCII with lines of at most 998 characters (so a long link is
/// never wrapped or quoted-printable encoded); otherwise lettre picks quoted-printable or
/// base64. Control characters in the subject are replaced by spaces.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    port: u16,
    security: Security,
    has_credentials: bool,
}

impl fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .field(
                "credentials",
                &if self.has_credentials {
                    "<redacted>"
                } else {
                    "none"
                },
            )
            .finish()
    }
}

fn config(reason: impl Into<String>) -> MailError {
    MailError::Config {
        reason: reason.into(),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
        // `smtp` is not a scheme the URL standard knows, so its IPv4 hosts come as names.
        Host::Domain(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    }
}

fn decoded(part: &str, what: &str) -> Result<String, MailError> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| {
            config(format!(
                "the mail URL's {what} is not UTF-8 once percent-decoded"
            ))
        })
}

impl SmtpMailer {
    /// A mailer for the server at `url`, sending from `from` (`no-reply@example.com` or
    /// `Example <no-reply@example.com>`). See the table above for the URL forms.
    ///
    /// Nothing is connected yet: a wrong host or port shows at the first send
    /// ([`MailError::Unavailable`]).
    ///
    /// # Errors
    /// [`MailError::Config`] for a URL that does not parse, has no host, an unknown scheme or
    /// `tls` value, any other query parameter, a path, or plain SMTP to a host that is not on
    /// loopback; [`MailError::InvalidAddress`] when `from` is not an address.
    pub fn from_url(url: &str, from: &str) -> Result<Self, MailError> {
        // The URL may hold a password: never echo it in an error.
        let parsed = Url::parse(url).map_err(|e| {
            config(format!(
                "the mail URL does not parse ({e}); write smtps://host, smtp+starttls://host or, on loopback only, smtp://127.0.0.1:PORT"
            ))
        })?;
        let tls_param = {
            let mut tls = None;
            for (key, value) in parsed.query_pairs() {
                match key.as_ref() {
                    "tls" if tls.is_none() => tls = Some(value.into_owned()),
                    "tls" => return Err(config("the mail URL gives `tls` twice")),
                    other => {
                        return Err(config(format!(
                            "the mail URL has an unknown parameter {other:?}; the only one is tls=starttls"
                        )))
                    }
                }
            }
            tls
        };
        let security = match (parsed.scheme(), tls_param.as_deref()) {
            ("smtp", None) => Security::Plain,
            ("smtp", Some("starttls" | "required")) | ("smtp+starttls", None) => {
                Security::StartTls
            }
            ("smtps", None) => Security::Implicit,
            ("smtp", Some(other)) => {
                return Err(config(format!(
                    "the mail URL's tls={other:?} is unknown; use tls=starttls, or smtps:// for implicit TLS"
                )))
            }
            ("smtp+starttls" | "smtps", Some(_)) => {
                return Err(config(
                    "the mail URL's scheme already sets the TLS mode: drop its tls parameter",
                ))
            }
            (scheme, _) => {
                return Err(config(format!(
                    "the mail URL's scheme {scheme:?} is not supported; use smtps://, smtp+starttls:// or, on loopback only, smtp://"
                )))
            }
        };
        let host = parsed
            .host()
            .ok_or_else(|| config("the mail URL has no host"))?;
        if !matches!(parsed.path(), "" | "/") || parsed.fragment().is_some() {
            return Err(config(
                "the mail URL has a path or a fragment; write scheme://[user:password@]host[:port]",
            ));
        }
        if security == Security::Plain && !is_loopback(&host) {
            return Err(config(format!(
                "plain SMTP to {host} is refused: mail carries one-time tokens and the wire is readable; use smtps://{host} (implicit TLS) or smtp+starttls://{host}, or a relay on loopback"
            )));
        }
        let server = match &host {
            Host::Domain(name) => (*name).to_owned(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        let port = parsed.port().unwrap_or(match security {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Implicit => 465,
        });
        let tls = match security {
            Security::Plain => Tls::None,
            Security::StartTls | Security::Implicit => {
                let parameters = TlsParameters::new(server.clone()).map_err(|e| {
                    config(format!(
                        "TLS cannot be set up for {server}: {}",
                        crate::error::chain(&e)
                    ))
                })?;
                if security == Security::StartTls {
                    Tls::Required(parameters)
                } else {
                    Tls::Wrapper(parameters)
                }
            }
        };
        let from: Mailbox = from.parse().map_err(|e| MailError::InvalidAddress {
            address: from.to_owned(),
            reason: format!("the From address does not parse: {e}"),
        })?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(COMMAND_TIMEOUT));
        let has_credentials = !parsed.username().is_empty() || parsed.password().is_some();
        if has_credentials {
            let user = decoded(parsed.username(), "user name")?;
            let password = decoded(parsed.password().unwrap_or(""), "password")?;
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            host: server,
            port,
            security,
            has_credentials,
        })
    }

    fn message(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        let to: Address = mail.to.parse().map_err(|e| MailError::InvalidAddress {
            address: mail.to.clone(),
            reason: format!("{e}"),
        })?;
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(text_body(&mail.text));
        let builder = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(one_line(&mail.subject));
        let built = match &mail.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::html(html.clone())),
            ),
            None => builder.singlepart(text),
        };
        built.map_err(|e| MailError::InvalidAddress {
            address: mail.to.clone(),
            reason: format!("the mail cannot be built: {e}"),
        })
    }
}

/// `text` with every control character replaced by a space: a header holds one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The text part as `7bit` when it can be (ASCII, no control character but tab and line
/// ends, lines of at most 998 characters), each line as written with CRLF line ends; else
/// whatever lettre picks (quoted-printable or base64).
fn text_body(text: &str) -> Body {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let seven_bit = lines.iter().all(|line| {
        line.len() <= MAX_LINE
            && line
                .bytes()
                .all(|b| b == b'\t' || (b.is_ascii() && !b.is_ascii_control()))
    });
    if seven_bit {
        Body::dangerous_pre_encoded(
            lines.join("\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    } else {
        Body::new(text.to_owned())
    }
}

fn send_error(error: &lettre::transport::smtp::Error) -> MailError {
    let reason = crate::error::chain(error);
    if error.is_permanent() || error.is_transient() {
        MailError::Rejected { reason }
    } else if error.is_client() {
        MailError::Config {
            reason: format!("the mail server does not offer what the mail URL asks for: {reason}"),
        }
    } else {
        MailError::Unavailable { reason }
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| send_error(&e))
    }
}
