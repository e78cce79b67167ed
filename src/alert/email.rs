//! The e-mail channel: SMTP with STARTTLS (or TLS from the first byte) and
//! authentication, through lettre on the same rustls/aws-lc-rs stack as
//! the rest of the sensor; the server's certificate is verified like
//! reqwest verifies (the platform verifier), or only against a configured
//! CA bundle.
//!
//! A message is plain text and HTML (everything in it escaped, see
//! [`crate::alert::render`]); its `Message-ID` is derived from the
//! message's idempotency id, so a re-send after a lost answer is the same
//! mail to anyone who deduplicates. The server's answer decides: 2xx
//! delivered; a permanent 5xx (a recipient refused, a sender not allowed)
//! is refused for good and parked with the server's words; anything else
//! (no connection, 4xx, a timeout, a TLS failure) is retried.

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::alert::answer::{Answer, ChannelError};
use crate::alert::config::{Email, SmtpTls};
use crate::alert::notice::Message;
use crate::alert::render;
use crate::report::delivery::error_chain;

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl Mailer {
    /// The transport for `e`; `password` is the configured one or the one
    /// read from `password_file`.
    pub fn new(name: &str, e: &Email, password: Option<String>) -> Result<Mailer, ChannelError> {
        let bad = |reason: String| ChannelError::Client {
            channel: name.to_string(),
            reason,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(e.host.as_str())
            .port(e.port)
            .timeout(Some(e.timeout));
        if e.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(e.host.clone());
            if let Some(path) = &e.ca_bundle {
                let ca = |reason: String| ChannelError::Ca {
                    channel: name.to_string(),
                    path: path.display().to_string(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|x| ca(x.to_string()))?;
                let cert = Certificate::from_pem(&pem).map_err(|x| ca(error_chain(&x)))?;
                params = params
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|x| bad(error_chain(&x)))?;
            b = b.tls(match e.tls {
                SmtpTls::Wrapper => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        } else {
            tracing::warn!(
                channel = name,
                "e-mail without TLS: notices travel in the clear; use starttls outside a lab"
            );
            b = b.tls(Tls::None);
        }
        if let (Some(user), Some(pass)) = (&e.username, password) {
            b = b.credentials(Credentials::new(user.clone(), pass));
        }
        let parse = |s: &str| s.parse::<Mailbox>().map_err(|x| bad(format!("`{s}`: {x}")));
        Ok(Mailer {
            transport: b.build(),
            from: parse(&e.from)?,
            to: e.to.iter().map(|t| parse(t)).collect::<Result<_, _>>()?,
        })
    }

    /// One attempt.
    pub async fn send(&self, m: &Message) -> Answer {
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(m.subject())
            .message_id(Some(format!("<{}@netsensor.invalid>", m.id)));
        for t in &self.to {
            builder = builder.to(t.clone());
        }
        let mail = match builder.multipart(MultiPart::alternative_plain_html(render::text(m), render::html(m))) {
            Ok(mail) => mail,
            Err(e) => return Answer::Refused(format!("cannot build the message: {e}")),
        };
        match self.transport.send(mail).await {
            Ok(resp) => {
                let words: Vec<&str> = resp.message().collect();
                Answer::Delivered(format!("{} {}", resp.code(), words.join(" ")).trim().to_string())
            }
            Err(e) if e.is_permanent() => Answer::Refused(error_chain(&e)),
            Err(e) => Answer::Retry {
                reason: error_chain(&e),
                after: None,
            },
        }
    }
}
