//! The webhook channel: the message as JSON (`docs/schema/alert.schema.json`)
//! POSTed to the receiver, signed.
//!
//! The receiver must be able to tell the sensor's messages from anyone
//! else's and a fresh message from a replayed one, so with a shared secret
//! every attempt carries `X-Netsensor-Timestamp` (Unix seconds) and
//! `X-Netsensor-Signature: v1=HEX`, HEX being HMAC-SHA256 under the secret
//! of `TIMESTAMP.BODY`; the receiver recomputes it and refuses timestamps
//! older than a few minutes. `Idempotency-Key` is the message's id, the
//! same on every attempt, so a re-send after a lost answer or a crash is
//! recognised. Answers are classified as reporting's are: 2xx delivered,
//! 408/429/5xx and network errors retried (honouring `Retry-After`), any
//! other status refused for good.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::alert::answer::{Answer, ChannelError};
use crate::alert::config::Webhook;
use crate::alert::notice::Message;
use crate::report::delivery::{Outcome, classify, error_chain, read_answer};

pub const TIMESTAMP_HEADER: &str = "X-Netsensor-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Netsensor-Signature";
/// Bytes of a receiver's answer kept for the log and `sensor alerts test`.
const ANSWER_CAP: usize = 200;

/// `v1=` and the hex HMAC-SHA256 under `secret` of `TIMESTAMP.BODY`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length; unreachable, but never panic.
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = crate::model::ids::hex(&tag);
    format!("v1={hex}")
}

pub struct Hook {
    http: reqwest::Client,
    url: String,
    secret: Option<String>,
}

impl Hook {
    /// The client for `w`; `secret` is the configured one or the one read
    /// from `secret_file`.
    pub fn new(name: &str, w: &Webhook, secret: Option<String>) -> Result<Hook, ChannelError> {
        if w.url.starts_with("http://") {
            tracing::warn!(channel = name, url = %w.url, "webhook is plain http://: notices travel unencrypted; use https:// outside a lab");
        }
        let mut b = reqwest::Client::builder()
            .timeout(w.timeout)
            .connect_timeout(w.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("netsensor/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(path) = &w.ca_bundle {
            let bad = |reason: String| ChannelError::Ca {
                channel: name.to_string(),
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(error_chain(&e)))?;
            if certs.is_empty() {
                return Err(bad("no certificate in it".into()));
            }
            b = b.tls_certs_only(certs);
        }
        let http = b.build().map_err(|e| ChannelError::Client {
            channel: name.to_string(),
            reason: error_chain(&e),
        })?;
        Ok(Hook {
            http,
            url: w.url.clone(),
            secret,
        })
    }

    /// One attempt.
    pub async fn send(&self, m: &Message) -> Answer {
        let body = match serde_json::to_vec(m) {
            Ok(b) => b,
            Err(e) => return Answer::Refused(format!("cannot encode the notice: {e}")),
        };
        let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let mut req = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", &m.id)
            .header(TIMESTAMP_HEADER, &ts);
        if let Some(secret) = &self.secret {
            req = req.header(SIGNATURE_HEADER, sign(secret.as_bytes(), &ts, &body));
        }
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer::Retry {
                    reason: error_chain(&e),
                    after: None,
                };
            }
        };
        // The receiver's answer is for the log: a capped prefix, never the whole body.
        let (status, retry_after, text) = read_answer(resp, ANSWER_CAP).await;
        match classify(status, retry_after, &text) {
            Outcome::Acked { status } => Answer::Delivered(format!("HTTP {status} {}", text.trim()).trim().to_string()),
            Outcome::Retry { reason, after } => Answer::Retry { reason, after },
            Outcome::Permanent { reason, .. } => Answer::Refused(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Python: hmac.new(b"0123456789abcdef", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        assert_eq!(
            sign(b"0123456789abcdef", "1700000000", br#"{"a":1}"#),
            "v1=9eb18f493f8ec135d9eb2dad817c369bb4e9cbfa818657897a7437c1cd8c3a23"
        );
        assert_ne!(
            sign(b"k", "1", b"{}"),
            sign(b"k", "2", b"{}"),
            "the timestamp is signed"
        );
        assert_ne!(sign(b"k", "1", b"{}"), sign(b"j", "1", b"{}"));
    }
}
