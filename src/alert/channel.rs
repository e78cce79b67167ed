//! A configured channel made ready to send: secrets read, clients built,
//! and one answer type for all of them, so delivery and `sensor alerts
//! test` treat a webhook, a mail server and the log alike.

pub use crate::alert::answer::{Answer, ChannelError};
use crate::alert::config::{Channel, ChannelKind};
use crate::alert::email::Mailer;
use crate::alert::notice::Message;
use crate::alert::webhook::Hook;

enum Kind {
    Webhook(Hook),
    Email(Box<Mailer>),
    Log,
}

/// A channel ready to send.
pub struct Sender {
    pub name: String,
    pub kind: &'static str,
    /// `Some(cap)`: a digest channel.
    pub digest: Option<usize>,
    inner: Kind,
}

fn secret(channel: &str, field: &'static str, path: &std::path::Path) -> Result<String, ChannelError> {
    let e = |reason: String| ChannelError::Secret {
        channel: channel.to_string(),
        field,
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|x| e(format!("cannot read: {x}")))?;
    let s = text.trim();
    if s.is_empty() {
        return Err(e("is empty".into()));
    }
    Ok(s.to_string())
}

impl Sender {
    /// Reads `c`'s secret files and builds its client: a bad CA or an
    /// unreadable secret is an error when the daemon starts, not at the
    /// first notice.
    pub fn new(c: &Channel) -> Result<Sender, ChannelError> {
        let inner = match &c.kind {
            ChannelKind::Webhook(w) => {
                let s = match (&w.secret, &w.secret_file) {
                    (Some(s), _) => Some(s.clone()),
                    (None, Some(p)) => Some(secret(&c.name, "secret_file", p)?),
                    (None, None) => None,
                };
                Kind::Webhook(Hook::new(&c.name, w, s)?)
            }
            ChannelKind::Email(e) => {
                let p = match (&e.password, &e.password_file) {
                    (Some(p), _) => Some(p.clone()),
                    (None, Some(f)) => Some(secret(&c.name, "password_file", f)?),
                    (None, None) => None,
                };
                Kind::Email(Box::new(Mailer::new(&c.name, e, p)?))
            }
            ChannelKind::Log => Kind::Log,
        };
        Ok(Sender {
            name: c.name.clone(),
            kind: c.kind.name(),
            digest: c.digest.then_some(c.digest_max),
            inner,
        })
    }

    /// One attempt at delivering `m`.
    pub async fn send(&self, m: &Message) -> Answer {
        match &self.inner {
            Kind::Webhook(h) => h.send(m).await,
            Kind::Email(e) => e.send(m).await,
            Kind::Log => crate::alert::log::send(&self.name, m),
        }
    }
}
