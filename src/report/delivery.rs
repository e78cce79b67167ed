//! Delivery: batches from the outbox to upstream over HTTPS, until upstream
//! said yes.
//!
//! Why it is shaped like this: upstream may be down for days, overloaded
//! (429/503 with `Retry-After`), or may take a batch and lose the answer.
//! So every batch goes out under its outbox batch id as the idempotency key
//! (`Idempotency-Key` header and `batch_id` in the body) and is deleted only
//! on a 2xx; transient failures (connect errors, timeouts, 408, 429, 5xx)
//! wait with exponential backoff and jitter, or exactly what `Retry-After`
//! asks; any other 4xx means upstream will never take this batch as it is, so
//! it is logged and parked in the outbox (kept, visible, not retried forever)
//! and delivery goes on with the next one.
//!
//! Several upstream URLs (`--upstream` repeated: central processes of one
//! fleet on one database) are tried in turn within one attempt: a URL that
//! does not connect or answers 5xx hands the batch to the next, and the
//! one that took it is tried first from then on. A batch the first central
//! applied but could not acknowledge reaches the next under the same
//! `batch_id`, which the shared store recognises: acknowledged, not applied
//! twice.
//!
//! TLS: reqwest with rustls; upstream's certificate is verified against the
//! system store, or only against a configured CA bundle. A client identity
//! (mTLS) is optional. `http://` is accepted for tests and labs, with a
//! warning.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::wire::{REPORTS_PATH, Report, SensorInfo};
use crate::report::outbox::{Outbox, Storage};

/// Longest `Retry-After` obeyed; a larger one is clamped (and logged).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// Bytes of an error answer kept for the log.
const ERROR_BODY_CAP: usize = 512;

#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// Base URL, e.g. `https://central.example:48999`.
    pub url: String,
    /// More base URLs of the same fleet, tried after `url` (failover).
    pub fallback_urls: Vec<String>,
    pub token: String,
    /// Verify upstream only against these PEM CAs (instead of the system store).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and its private key, PEM (mTLS).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Whole-request deadline.
    pub timeout: Duration,
    /// Caps per batch: events and (uncompressed) payload bytes.
    pub max_events: u32,
    pub max_bytes: u64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl UpstreamConfig {
    pub fn new(url: &str, token: &str) -> UpstreamConfig {
        UpstreamConfig {
            url: url.to_string(),
            fallback_urls: Vec::new(),
            token: token.to_string(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            timeout: Duration::from_secs(30),
            max_events: 500,
            max_bytes: 4 << 20,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("upstream URL `{url}`: {reason}")]
    Url { url: String, reason: String },
    #[error("upstream CA bundle {path}: {reason}")]
    Ca { path: String, reason: String },
    #[error("client identity {path}: {reason}")]
    Identity { path: String, reason: String },
    #[error("cannot build the HTTPS client: {0}")]
    Client(String),
}

/// What upstream made of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: upstream has the batch.
    Acked { status: u16 },
    /// Try again later: after `after` when upstream said so.
    Retry { reason: String, after: Option<Duration> },
    /// Upstream will not take this batch: park it.
    Permanent { status: u16, reason: String },
}

/// The error and every `source()` below it: reqwest's top-level message is
/// only "error sending request"; the cause is further down.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let m = s.to_string();
        if !out.contains(&m) {
            out.push_str(": ");
            out.push_str(&m);
        }
        cur = s.source();
    }
    out
}

/// `Retry-After`: delay-seconds or an HTTP-date (relative to `now`).
pub fn parse_retry_after(v: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let d = at - now;
    Some(if d.is_positive() {
        Duration::from_secs(d.whole_seconds() as u64)
    } else {
        Duration::ZERO
    })
}

/// Pure: an HTTP answer to an outcome.
pub fn classify(status: u16, retry_after: Option<Duration>, body: &str) -> Outcome {
    let body: String = body.chars().take(ERROR_BODY_CAP).collect();
    let reason = format!("HTTP {status}: {}", body.trim());
    match status {
        200..=299 => Outcome::Acked { status },
        // Redirects are not followed (a POST must not turn into a GET, nor the
        // token travel elsewhere): the URL is wrong until someone fixes it.
        300..=399 => Outcome::Permanent {
            status,
            reason: format!("{reason} (redirected: configure the final URL)"),
        },
        408 | 429 => Outcome::Retry {
            reason,
            after: retry_after,
        },
        400..=499 => Outcome::Permanent { status, reason },
        _ => Outcome::Retry {
            reason,
            after: retry_after,
        },
    }
}

/// Exponential backoff with jitter: the n-th wait is uniform in
/// [d/2, d] where d = min(max, base * 2^n).
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max, attempt: 0 }
    }
    pub fn next_delay(&mut self) -> Duration {
        let d = self.base.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let r = f64::from(random_u32()) / f64::from(u32::MAX);
        d.mul_f64(0.5 + 0.5 * r)
    }
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

fn random_u32() -> u32 {
    let id = crate::report::outbox::random_id();
    u32::from_str_radix(&id[..8], 16).unwrap_or(0x8000_0000)
}

/// The HTTPS client for one upstream (one or more URLs of one fleet).
pub struct Client {
    http: reqwest::Client,
    /// The reports endpoint of each upstream URL, in the configured order.
    endpoints: Vec<String>,
    /// Which of them is tried first: the last one that took a batch.
    prefer: std::sync::atomic::AtomicUsize,
    token: String,
}

/// An upstream URL delivery can use: https (or http, with a warning) and a host.
fn check_url(raw: &str) -> Result<(), DeliveryError> {
    let bad = |reason: String| DeliveryError::Url {
        url: raw.to_string(),
        reason,
    };
    let url = reqwest::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" => tracing::warn!(
            url = %raw,
            "upstream is plain http://: reports and the token travel unencrypted; use https:// outside a lab"
        ),
        other => return Err(bad(format!("scheme `{other}`: use https:// (or http:// in a lab)"))),
    }
    if url.host_str().is_none() {
        return Err(bad("no host".into()));
    }
    Ok(())
}

/// Whether an attempt's failure hands the batch to the next upstream URL:
/// no answer at all, or a 5xx (that central cannot apply it now). A 408 or
/// 429 is a central that is there and asks to wait; a 4xx is the batch's
/// own fault, the same everywhere.
pub fn fails_over(status: Option<u16>) -> bool {
    status.is_none_or(|s| s >= 500)
}

impl Client {
    pub fn new(cfg: &UpstreamConfig) -> Result<Client, DeliveryError> {
        for url in std::iter::once(&cfg.url).chain(&cfg.fallback_urls) {
            check_url(url)?;
        }
        let mut b = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("netsensor/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path).map_err(|e| DeliveryError::Ca {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| DeliveryError::Ca {
                path: path.display().to_string(),
                reason: error_chain(&e),
            })?;
            if certs.is_empty() {
                return Err(DeliveryError::Ca {
                    path: path.display().to_string(),
                    reason: "no certificate in it".into(),
                });
            }
            b = b.tls_certs_only(certs);
        }
        if let (Some(cert), Some(key)) = (&cfg.client_cert, &cfg.client_key) {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|e| DeliveryError::Identity {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                })
            };
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend_from_slice(&read(key)?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| DeliveryError::Identity {
                path: cert.display().to_string(),
                reason: error_chain(&e),
            })?;
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| DeliveryError::Client(error_chain(&e)))?;
        let endpoints = std::iter::once(&cfg.url)
            .chain(&cfg.fallback_urls)
            .map(|u| format!("{}{REPORTS_PATH}", u.trim_end_matches('/')))
            .collect();
        Ok(Client {
            http,
            endpoints,
            prefer: std::sync::atomic::AtomicUsize::new(0),
            token: cfg.token.clone(),
        })
    }

    /// The reports endpoint tried first now.
    pub fn endpoint(&self) -> &str {
        let i = self.prefer.load(std::sync::atomic::Ordering::Relaxed);
        &self.endpoints[i % self.endpoints.len()]
    }

    /// Every reports endpoint, in the configured order.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The HTTP client (the upstream's CA and identity), for the fleet's calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// One attempt: POST the report gzip'd to the preferred upstream URL,
    /// then, while the answer [`fails_over`], to the next ones (each once);
    /// classify the answer.
    pub async fn send(&self, report: &Report) -> Outcome {
        use std::sync::atomic::Ordering::Relaxed;
        let body = match encode(report) {
            Ok(b) => b,
            Err(e) => {
                return Outcome::Permanent {
                    status: 0,
                    reason: format!("cannot encode the report: {e}"),
                };
            }
        };
        let n = self.endpoints.len();
        let first = self.prefer.load(Relaxed) % n;
        let mut failed = Vec::new();
        for k in 0..n {
            let i = (first + k) % n;
            let endpoint = &self.endpoints[i];
            let (outcome, status) = self.send_to(endpoint, report, body.clone()).await;
            if let Outcome::Retry { reason, .. } = &outcome
                && fails_over(status)
                && k + 1 < n
            {
                tracing::warn!(endpoint = %endpoint, batch = %report.batch_id, error = %reason, "report not taken; trying the next upstream");
                failed.push(format!("{endpoint}: {reason}"));
                continue;
            }
            if i != first && matches!(outcome, Outcome::Acked { .. }) {
                self.prefer.store(i, Relaxed);
                tracing::info!(endpoint = %endpoint, "report delivery failed over to this upstream");
            }
            return match outcome {
                Outcome::Retry { reason, after } if !failed.is_empty() => Outcome::Retry {
                    reason: format!("{}; {endpoint}: {reason}", failed.join("; ")),
                    after,
                },
                o => o,
            };
        }
        Outcome::Retry {
            reason: "no upstream URL".into(),
            after: None,
        }
    }

    /// One POST to one endpoint: the outcome, and the status when there
    /// was an answer.
    async fn send_to(&self, endpoint: &str, report: &Report, body: Vec<u8>) -> (Outcome, Option<u16>) {
        let resp = self
            .http
            .post(endpoint)
            .bearer_auth(&self.token)
            .header("Idempotency-Key", &report.batch_id)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                return (
                    Outcome::Retry {
                        reason: error_chain(&e),
                        after: None,
                    },
                    None,
                );
            }
        };
        let (status, retry_after, text) = read_answer(resp, ERROR_BODY_CAP).await;
        (classify(status, retry_after, &text), Some(status))
    }
}

/// A receiver's answer as [`classify`] reads it: the status, `Retry-After`,
/// and at most `cap` bytes of the body (read chunk by chunk, so a receiver
/// that answers with an endless body costs `cap` bytes, not memory without
/// bound). Shared by report delivery and the alert webhook.
pub async fn read_answer(mut resp: reqwest::Response, cap: usize) -> (u16, Option<Duration>, String) {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, time::OffsetDateTime::now_utc()));
    let mut head = Vec::new();
    while head.len() < cap {
        match resp.chunk().await {
            Ok(Some(c)) => head.extend_from_slice(&c[..c.len().min(cap - head.len())]),
            _ => break,
        }
    }
    (status, retry_after, String::from_utf8_lossy(&head).into_owned())
}

/// The report as the gzip'd JSON body that goes on the wire.
pub fn encode(report: &Report) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(report).map_err(std::io::Error::other)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json)?;
    gz.finish()
}

/// Delivery counters, for logs and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub delivered_batches: std::sync::atomic::AtomicU64,
    pub delivered_events: std::sync::atomic::AtomicU64,
    pub retries: std::sync::atomic::AtomicU64,
    pub parked: std::sync::atomic::AtomicU64,
}

/// Takes batches from `outbox`, sends them, acks or parks them, until
/// `shutdown` fires. `wake` is notified when something was enqueued
/// (otherwise the outbox is looked at every few seconds).
///
/// Shutdown stops at whatever await the loop is in, a send included: every
/// outbox step runs to its end on a blocking thread, and a batch whose
/// answer never came is sent again under the same id at the next start, so
/// stopping anywhere loses and doubles nothing.
pub async fn run<S: Storage + Send + 'static>(
    outbox: Arc<Mutex<Outbox<S>>>,
    client: Client,
    sensor: SensorInfo,
    cfg: UpstreamConfig,
    wake: Arc<Notify>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        () = shutdown.cancelled() => tracing::debug!("delivery stopped"),
        () = deliver(outbox, client, sensor, cfg, wake, stats) => {}
    }
}

async fn deliver<S: Storage + Send + 'static>(
    outbox: Arc<Mutex<Outbox<S>>>,
    client: Client,
    sensor: SensorInfo,
    cfg: UpstreamConfig,
    wake: Arc<Notify>,
    stats: Arc<Stats>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut backoff = Backoff::new(cfg.backoff_base, cfg.backoff_max);
    let mut had_error = false;
    loop {
        let ob = outbox.clone();
        let (max_events, max_bytes) = (cfg.max_events, cfg.max_bytes);
        let next = tokio::task::spawn_blocking(move || {
            let mut ob = ob.lock().map_err(|_| "outbox lock poisoned".to_string())?;
            ob.next_batch(max_events, max_bytes, crate::report::outbox::random_id)
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let batch = match next {
            Ok(Some(b)) => b,
            Ok(None) => {
                let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox unreadable; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        let id = batch.id.clone();
        let outcome = match super::decode_batch(&batch) {
            Ok(events) => {
                let n = events.len();
                let report = Report::new(
                    sensor.clone(),
                    id.clone(),
                    crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc()),
                    events,
                );
                (client.send(&report).await, n)
            }
            Err(e) => (
                Outcome::Permanent {
                    status: 0,
                    reason: format!("outbox batch does not decode: {e}"),
                },
                0,
            ),
        };
        let (outcome, n) = outcome;
        let ob = outbox.clone();
        let bid = id.clone();
        let o2 = outcome.clone();
        let was_error = had_error;
        let stored = tokio::task::spawn_blocking(move || {
            let mut ob = ob.lock().map_err(|_| "outbox lock poisoned".to_string())?;
            match &o2 {
                Outcome::Acked { .. } => {
                    ob.ack(&bid).map_err(|e| e.to_string())?;
                    if was_error {
                        ob.set_last_error(None).map_err(|e| e.to_string())?;
                    }
                }
                Outcome::Retry { reason, .. } => {
                    ob.set_last_error(Some(&format!("{}: retrying: {reason}", now())))
                        .map_err(|e| e.to_string())?;
                }
                Outcome::Permanent { reason, .. } => {
                    ob.park(&bid, reason).map_err(|e| e.to_string())?;
                    ob.set_last_error(Some(&format!("{}: batch {bid} parked: {reason}", now())))
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok::<_, String>(ob.pending())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let pending = match stored {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, batch = %id, "outbox update failed; the batch will be sent again");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        match outcome {
            Outcome::Acked { status } => {
                stats.delivered_batches.fetch_add(1, Relaxed);
                stats.delivered_events.fetch_add(n as u64, Relaxed);
                backoff.reset();
                had_error = false;
                eprintln!(
                    "sensor: report: batch {id} delivered ({n} events, HTTP {status}); {pending} record(s) pending"
                );
            }
            Outcome::Retry { reason, after } => {
                stats.retries.fetch_add(1, Relaxed);
                had_error = true;
                let wait = match after {
                    Some(a) if a > MAX_RETRY_AFTER => {
                        tracing::warn!(asked = ?a, "Retry-After longer than an hour; waiting an hour");
                        MAX_RETRY_AFTER
                    }
                    Some(a) => {
                        // A Retry-After is a floor for this attempt; the backoff still grows.
                        let _ = backoff.next_delay();
                        a
                    }
                    None => backoff.next_delay(),
                };
                tracing::warn!(batch = %id, error = %reason, wait_ms = wait.as_millis() as u64, "report not delivered; will retry");
                tokio::time::sleep(wait).await;
            }
            Outcome::Permanent { status, reason } => {
                stats.parked.fetch_add(1, Relaxed);
                had_error = true;
                tracing::error!(batch = %id, status, error = %reason, "upstream refused the report for good; batch parked in the outbox (see `sensor outbox status`)");
                // A refusal of every batch (a revoked token) must not burn
                // through the outbox at full speed: pace the next one.
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

fn now() -> String {
    crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert_eq!(classify(200, None, ""), Outcome::Acked { status: 200 });
        assert_eq!(classify(202, None, ""), Outcome::Acked { status: 202 });
        assert!(matches!(
            classify(429, Some(Duration::from_secs(7)), "slow down"),
            Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(classify(408, None, ""), Outcome::Retry { .. }));
        assert!(matches!(classify(500, None, ""), Outcome::Retry { after: None, .. }));
        assert!(matches!(
            classify(503, Some(Duration::from_secs(2)), ""),
            Outcome::Retry { after: Some(_), .. }
        ));
        assert!(matches!(
            classify(400, None, "bad"),
            Outcome::Permanent { status: 400, .. }
        ));
        assert!(matches!(
            classify(401, None, ""),
            Outcome::Permanent { status: 401, .. }
        ));
        assert!(matches!(classify(422, None, ""), Outcome::Permanent { .. }));
        assert!(matches!(
            classify(308, None, ""),
            Outcome::Permanent { status: 308, .. }
        ));
    }

    #[test]
    fn only_silence_and_5xx_hand_a_batch_to_the_next_upstream() {
        assert!(fails_over(None), "no answer");
        assert!(fails_over(Some(500)) && fails_over(Some(503)));
        for s in [200, 400, 401, 403, 408, 409, 429] {
            assert!(!fails_over(Some(s)), "{s}");
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = time::macros::datetime!(2026-11-24 12:00:00 UTC);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 12:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 24 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(
            d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100),
            "{d:?}"
        );
        assert!(
            d[3] >= Duration::from_millis(400) && d[3] <= Duration::from_millis(800),
            "{d:?}"
        );
        assert!(d.iter().all(|x| *x <= Duration::from_secs(1)), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn the_error_chain_is_walked() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = DeliveryError::Client(String::new());
        let _ = outer;
        #[derive(Debug, thiserror::Error)]
        #[error("client error (Connect)")]
        struct Top(#[source] std::io::Error);
        assert_eq!(error_chain(&Top(inner)), "client error (Connect): connection refused");
    }
}
