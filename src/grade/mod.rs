//! Grading: observations in, judgements out.
//!
//! Pure: [`assess`] takes what the probes saw (the [`EndpointRecord`], the
//! chain as DER, the vulnerability probes' results, the HTTP answer), a
//! [`Policy`], loaded [`TrustStores`] and the time `now`, and returns an
//! [`Assessment`]. Nothing here opens a socket or reads the clock; the one
//! function that reads files is [`TrustStores::load`], which the caller runs
//! once before grading.
//!
//! - [`chain`]: chain validation with every issue named (webpki's verdict per
//!   trust store plus our own reading of each certificate), and the seed's
//!   `certificate_chain` shape. [`names`]: the hostname check.
//! - [`rating`]: the SSL Labs rating guide 2009r — scores, caps, letters.
//! - [`ciphers`]: `safe` / `weak` / `insecure` per suite. [`strength`]: the
//!   scales the two compare on.
//! - [`vulns`]: vulnerability verdicts, probed and inferred.
//! - [`hsts`]: HTTP security headers and Strict-Transport-Security.
//! - [`deployments`]: every certificate the server holds, each assessed; the worst counts.
//! - [`modern`]: notes the 2009r guide has no rule for (post-quantum key exchange).
//! - [`report`]: the upstream's `security_rating_info` and the four levels.
//!
//! `docs/grading.md` is the human-readable version of every rule.

pub mod chain;
pub mod ciphers;
pub mod deployments;
pub mod hsts;
pub mod modern;
pub mod names;
pub mod ocsp;
pub mod rating;
pub mod report;
pub mod revocation;
pub mod strength;
pub mod trust;
pub mod vulns;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use chain::{CertificateChain, ChainInput, ChainIssue, ChainReport, OcspStatus};
pub use ciphers::{CipherClass, ClassifiedCipher, ClassifiedProtocol};
pub use hsts::{Hsts, HttpHeaders, HttpReport};
pub use names::{NameCheck, NameStatus};
pub use rating::{Cap, Grade, Letter};
pub use report::{Level, Levels, SecurityRatingInfo, security_rating_info};
pub use trust::{TrustConfig, TrustError, TrustStore, TrustStores};
pub use vulns::{VulnStatus, Vulnerabilities, VulnerabilityVerdict};

pub use crate::model::assessment::{Finding, Severity};
use crate::model::cert::CertInfo;
use crate::model::record::EndpointRecord;

/// Thresholds a deployment may change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// A certificate expiring within this many days is reported.
    pub expiry_warning_days: u32,
    /// Longest validity for a publicly trusted leaf (CA/B Forum: 398 days).
    pub max_public_validity_days: u32,
    /// A+ needs an HSTS max-age of at least this many seconds (180 days);
    /// a shorter one is a warning (A−).
    pub hsts_min_max_age: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            expiry_warning_days: 30,
            max_public_validity_days: 398,
            hsts_min_max_age: 180 * 86_400,
        }
    }
}

/// Everything observed about one endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Observation<'a> {
    pub record: &'a EndpointRecord,
    /// The chain exactly as the server sent it, leaf first (may be empty:
    /// then trust is judged from the record's parsed chain alone).
    pub chain_der: &'a [Vec<u8>],
    /// The stapled OCSP response's verdict, when one was stapled and checked.
    pub ocsp: Option<OcspStatus>,
    pub vulnerabilities: Vulnerabilities,
    /// The answer to `GET /`, on HTTPS endpoints.
    pub http: Option<&'a HttpHeaders>,
}

/// The judgement on one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// `None` when there is nothing to rate (no TLS observed); then
    /// `no_grade_reason` says why.
    pub grade: Option<Grade>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_grade_reason: Option<String>,
    /// One per chain issue, vulnerability and HSTS problem, worst first.
    pub findings: Vec<Finding>,
    /// Trust verdicts, the name check, the path and `chain_issues`.
    pub chain: ChainReport,
    /// The chain in the upstream's shape.
    pub certificate_chain: CertificateChain,
    /// Every accepted suite, classed, per protocol.
    pub protocol_ciphers: Vec<ClassifiedProtocol>,
    pub vulnerabilities: Vec<VulnerabilityVerdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpReport>,
    pub levels: Levels,
}

/// Grade one endpoint. Pure: same inputs, same assessment.
pub fn assess(obs: &Observation<'_>, trust: &TrustStores, policy: &Policy, now: OffsetDateTime) -> Assessment {
    let record = obs.record;
    let certs: Vec<CertInfo> = if !obs.chain_der.is_empty() {
        obs.chain_der
            .iter()
            .map(|d| crate::model::cert::parse_lossy(d))
            .collect()
    } else if !record.chain.is_empty() {
        record.chain.clone()
    } else {
        record.certificate.iter().cloned().collect()
    };
    let input = ChainInput {
        certs: &certs,
        der: obs.chain_der,
        hostname: record.hostname.as_deref(),
        address: record.address,
        ocsp: obs.ocsp,
        revocation: record.revocation.as_ref(),
    };
    let chain = chain::analyze(&input, trust, policy, now);
    let certificate_chain = chain::certificate_chain(&certs, &chain, obs.ocsp, now);
    let vulnerabilities = vulns::evaluate(record, &obs.vulnerabilities);
    let http = obs.http.map(hsts::report);
    let rating_input = rating::RatingInput {
        record,
        leaf: certs.first().filter(|c| c.parse_error.is_none()),
        chain: &chain,
        vulnerabilities: &vulnerabilities,
        hsts: http.as_ref().and_then(|h| h.hsts.as_ref()),
        http_observed: http.is_some(),
        hsts_min_max_age: policy.hsts_min_max_age,
    };
    let (grade, no_grade_reason) = match rating::rate(&rating_input) {
        Ok(g) => (Some(g), None),
        Err(why) => (None, Some(why)),
    };
    let mut findings = findings(&chain, &vulnerabilities, http.as_ref(), policy);
    findings.extend(modern::findings(record));
    findings.extend(modern::transparency(&chain, certs.first()));
    findings.extend(modern::revocation(record));
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut a = Assessment {
        grade,
        no_grade_reason,
        findings,
        chain,
        certificate_chain,
        protocol_ciphers: ciphers::classify_all(&record.protocol_ciphers),
        vulnerabilities,
        http,
        levels: Levels {
            security_rating: None,
            certificate_chain: None,
            protocol_cipher: None,
        },
    };
    a.levels = report::levels(record, &a);
    a
}

fn findings(
    chain: &ChainReport,
    vulns: &[VulnerabilityVerdict],
    http: Option<&HttpReport>,
    policy: &Policy,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = chain
        .chain_issues
        .iter()
        .map(|i| Finding {
            id: i.id.clone(),
            severity: i.severity,
            title: chain_title(&i.id).to_string(),
            evidence: i.detail.clone(),
        })
        .collect();
    out.extend(vulns.iter().filter(|v| v.is_vulnerable()).map(|v| Finding {
        id: v.id.clone(),
        severity: v.severity,
        title: format!("Vulnerable to {}", v.name),
        evidence: v.evidence.clone(),
    }));
    if let Some(h) = http {
        match &h.hsts {
            None => out.push(Finding {
                id: "hsts_missing".into(),
                severity: Severity::Low,
                title: "No HTTP Strict Transport Security".into(),
                evidence: format!(
                    "the HTTPS response (status {}) has no Strict-Transport-Security header",
                    h.status
                ),
            }),
            Some(s) if s.malformed.is_some() => out.push(Finding {
                id: "hsts_malformed".into(),
                severity: Severity::Medium,
                title: "Malformed Strict-Transport-Security header".into(),
                evidence: format!("`{}`: {}", s.raw, s.malformed.as_deref().unwrap_or_default()),
            }),
            Some(s) if s.max_age.is_some_and(|a| a < policy.hsts_min_max_age) => out.push(Finding {
                id: "hsts_short".into(),
                severity: Severity::Low,
                title: "HSTS max-age too short".into(),
                evidence: format!(
                    "max-age={} s is under {} days (`{}`)",
                    s.max_age.unwrap_or(0),
                    policy.hsts_min_max_age / 86_400,
                    s.raw
                ),
            }),
            Some(_) => {}
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

fn chain_title(id: &str) -> &'static str {
    match id {
        "expired" => "Certificate expired",
        "not_yet_valid" => "Certificate not yet valid",
        "expiring_soon" => "Certificate expiring soon",
        "hostname_mismatch" => "Certificate name mismatch",
        "self_signed" => "Self-signed certificate",
        "unknown_issuer" => "Certificate issuer not trusted",
        "incomplete_chain" => "Incomplete certificate chain",
        "wrong_order" => "Certificate chain sent out of order",
        "extra_certificate" => "Extra certificate in chain",
        "weak_key" => "Weak certificate key",
        "rsa_exponent_1" => "RSA public exponent 1",
        "sha1_signature" => "SHA-1 certificate signature",
        "md5_signature" => "MD5 certificate signature",
        "md2_signature" => "MD2 certificate signature",
        "missing_san" => "No subjectAltName",
        "validity_too_long" => "Certificate validity over the public limit",
        "ca_leaf" => "CA flag on the leaf certificate",
        "revoked" => "Certificate revoked",
        "unparsable_certificate" => "Certificate does not parse",
        "untrusted" => "Certificate chain not trusted",
        _ => "Certificate chain problem",
    }
}
