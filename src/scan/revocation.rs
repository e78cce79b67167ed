//! The live revocation check's fetches (`--revocation`, profile key
//! `revocation`): OCSP to the leaf's AIA responder, else the CRL from its
//! distribution point, each under a deadline and a size cap, only to
//! addresses the operator's allowlist covers, and cached for the scan's life
//! (a [`Checker`] per scan) so that a thousand endpoints under one issuer
//! make one CRL fetch. Every decision (the allowlist, the request, what an
//! answer means) is [`crate::grade::revocation`]'s; this file resolves,
//! connects and reads.
//!
//! The host is resolved once and the connection pinned to the addresses the
//! allowlist accepted (a second lookup could answer differently); redirects
//! are not followed and no proxy is used, for the same reason.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::grade::revocation::{
    self as rules, AllowError, Allowlist, Answer, CertKey, CrlIndex, Permit, Revocation, RevocationStatus, Target,
};

/// Deadlines and caps of the fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One fetch, from the lookup to the last byte of the body.
    pub deadline: Duration,
    /// Largest OCSP response read.
    pub ocsp_max: usize,
    /// Largest CRL read.
    pub crl_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_secs(5),
            ocsp_max: 64 * 1024,
            crl_max: 10 * 1024 * 1024,
        }
    }
}

type OcspKey = (CertKey, String);
type CrlKey = (Vec<u8>, String);
type Cell<T> = Arc<OnceCell<Result<T, Failure>>>;

/// Why one source gave no verdict: refused by the allowlist, or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Failure {
    NotAllowed(String),
    Error(String),
}

/// The revocation checks of one scan: the allowlist, the limits and the
/// caches (keyed by issuer key hash and URL; OCSP also by serial).
#[derive(Debug)]
pub struct Checker {
    allow: Allowlist,
    limits: Limits,
    ocsp: Mutex<HashMap<OcspKey, Cell<Answer>>>,
    crl: Mutex<HashMap<CrlKey, Cell<Arc<CrlIndex>>>>,
    fetches: AtomicU64,
}

impl Checker {
    pub fn new(allow: Allowlist, limits: Limits) -> Self {
        Checker {
            allow,
            limits,
            ocsp: Mutex::new(HashMap::new()),
            crl: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// The checker a scan's settings ask for: `None` when `enabled` is off.
    pub fn configured<S: AsRef<str>>(enabled: bool, allow: &[S]) -> Result<Option<Arc<Checker>>, AllowError> {
        let allow = Allowlist::parse(allow)?;
        Ok(enabled.then(|| Arc::new(Checker::new(allow, Limits::default()))))
    }

    /// Where fetches may go.
    pub fn allowlist(&self) -> &Allowlist {
        &self.allow
    }

    /// HTTP requests made so far (cache hits make none).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Check the leaf of `chain` (as sent, leaf first).
    pub async fn check(&self, chain: &[Vec<u8>]) -> Revocation {
        let subject = match rules::subject(chain) {
            Ok(s) => s,
            Err(e) => {
                return Revocation {
                    status: RevocationStatus::Unknown,
                    source: None,
                    url: None,
                    revoked_at: None,
                    reason: None,
                    detail: e.to_string(),
                };
            }
        };
        let mut notes: Vec<String> = Vec::new();
        let mut refused: Vec<(String, String)> = Vec::new();
        let mut errors = 0;
        let mut last_url = None;
        let sources = subject
            .ocsp
            .iter()
            .map(|u| ("ocsp", u))
            .chain(subject.crl.iter().map(|u| ("crl", u)));
        for (source, url) in sources {
            let answer = match source {
                "ocsp" => self.ocsp(&subject, url).await,
                _ => self.crl(&subject, url).await,
            };
            last_url = Some(url.clone());
            match answer {
                Ok(a) if a.status != RevocationStatus::Unknown => {
                    notes.push(format!("{source} {url}: {}", a.status.as_str()));
                    return rules::record(a, source, url, notes.join("; "));
                }
                Ok(_) => notes.push(format!("{source} {url}: the responder does not know the certificate")),
                Err(Failure::NotAllowed(why)) => {
                    notes.push(format!("{source} {url}: not allowed: {why}"));
                    refused.push((url.clone(), why));
                }
                Err(Failure::Error(e)) => {
                    errors += 1;
                    notes.push(format!("{source} {url}: {e}"));
                }
            }
        }
        let tried = notes.len();
        let (status, detail) = if tried == 0 {
            (
                RevocationStatus::Unknown,
                "the leaf names no OCSP responder and no CRL distribution point".to_string(),
            )
        } else if refused.len() == tried {
            let mut hosts: Vec<&str> = Vec::new();
            for (_, h) in &refused {
                if !hosts.contains(&h.as_str()) {
                    hosts.push(h);
                }
            }
            (
                RevocationStatus::NotChecked,
                format!("not allowed: {}", hosts.join(", ")),
            )
        } else if errors > 0 {
            (RevocationStatus::Error, notes.join("; "))
        } else {
            (RevocationStatus::Unknown, notes.join("; "))
        };
        let url = match status {
            RevocationStatus::NotChecked => refused.first().map(|(u, _)| u.clone()),
            _ => last_url,
        };
        Revocation {
            status,
            source: None,
            url,
            revoked_at: None,
            reason: None,
            detail,
        }
    }

    async fn ocsp(&self, s: &rules::Subject<'_>, url: &str) -> Result<Answer, Failure> {
        let cell = {
            let mut map = self.ocsp.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((s.key.clone(), url.to_string())).or_default().clone()
        };
        cell.get_or_init(|| async {
            let body = rules::ocsp_request(&s.key);
            let der = self.fetch(url, Some(body), self.limits.ocsp_max).await?;
            rules::ocsp_answer(&der, &s.key, &s.issuer, OffsetDateTime::now_utc())
                .map_err(|e| Failure::Error(e.to_string()))
        })
        .await
        .clone()
    }

    async fn crl(&self, s: &rules::Subject<'_>, url: &str) -> Result<Answer, Failure> {
        let cell = {
            let mut map = self.crl.lock().unwrap_or_else(|p| p.into_inner());
            map.entry((s.key.key_hash.clone(), url.to_string()))
                .or_default()
                .clone()
        };
        let index = cell
            .get_or_init(|| async {
                let data = self.fetch(url, None, self.limits.crl_max).await?;
                let issuer = s.issuer.as_raw().to_vec();
                // A 10 MiB CRL takes a while to parse and verify: on the CPU pool.
                crate::cpu::run(move || {
                    let (_, issuer) = x509_parser::parse_x509_certificate(&issuer)
                        .map_err(|e| Failure::Error(format!("the issuer does not parse: {e}")))?;
                    CrlIndex::build(&data, &issuer)
                        .map(Arc::new)
                        .map_err(|e| Failure::Error(e.to_string()))
                })
                .await
                .map_err(|e| Failure::Error(e.to_string()))?
            })
            .await
            .clone()?;
        index
            .answer(&s.key.serial, OffsetDateTime::now_utc())
            .map_err(|e| Failure::Error(e.to_string()))
    }

    /// Resolve, check against the allowlist, fetch under the deadline and cap.
    async fn fetch(&self, url: &str, post: Option<Vec<u8>>, cap: usize) -> Result<Vec<u8>, Failure> {
        let t = rules::target(url).map_err(Failure::NotAllowed)?;
        let deadline = self.limits.deadline;
        let work = async {
            let addrs = self.permitted(&t).await?;
            self.fetches.fetch_add(1, Ordering::Relaxed);
            get(&t, &addrs, post, cap, deadline).await.map_err(Failure::Error)
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Error(format!(
                "no answer within the deadline ({} ms)",
                deadline.as_millis()
            ))),
        }
    }

    /// The addresses to connect to, or why not.
    async fn permitted(&self, t: &Target) -> Result<Vec<SocketAddr>, Failure> {
        let permit = self.allow.permit(&t.host);
        if let Permit::Refused(r) = permit {
            return Err(Failure::NotAllowed(r.0));
        }
        let addrs: Vec<IpAddr> = match t.literal {
            Some(a) => vec![a],
            None => tokio::net::lookup_host((t.host.as_str(), t.port))
                .await
                .map_err(|e| Failure::Error(format!("cannot resolve {}: {e}", t.host)))?
                .map(|s| s.ip())
                .collect(),
        };
        if permit == Permit::Resolve {
            self.allow
                .decide(&t.host, &addrs)
                .map_err(|r| Failure::NotAllowed(r.0))?;
        }
        Ok(addrs.into_iter().map(|a| SocketAddr::new(a, t.port)).collect())
    }
}

/// One HTTP request to the pinned addresses; the body read up to `cap`.
async fn get(
    t: &Target,
    addrs: &[SocketAddr],
    post: Option<Vec<u8>>,
    cap: usize,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(deadline)
        .timeout(deadline);
    if t.literal.is_none() {
        b = b.resolve_to_addrs(&t.host, addrs);
    }
    let client = b.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    let req = match post {
        Some(body) => client
            .post(&t.url)
            .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
            .body(body),
        None => client.get(&t.url),
    };
    let mut resp = req.send().await.map_err(|e| format!("request failed: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let too_big = || format!("the answer is larger than the {} KiB cap", cap / 1024);
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
