//! The upstream's `security_rating_info` object, built from an assessment.
//!
//! Levels (`docs/grading.md`): the letter maps to the four-level rating as
//! A+/A → Very secure, A−/B → Secure, C/D/E → At risk, F/T/M → Not secure.
//! The chain level is Not secure when the chain is untrusted, the name does
//! not match or any issue is critical; At risk with a high-severity issue;
//! Secure with medium or low issues only; Very secure with none. The
//! protocol/cipher level maps [`protocol_cipher_letter`] the same way as the
//! overall letter.

use super::Assessment;
use super::Severity;
use super::ciphers::{CipherClass, ClassifiedCipher};
use super::names::NameStatus;
use super::rating::protocol_cipher_letter;
use super::strength;
pub use crate::model::assessment::{
    CriterionRating, HandshakeProtocol, Level, Levels, ProtocolCipherScore, RatingCriterion, SecurityRating,
    SecurityRatingInfo, SeedCipher, SeedProtocolCiphers,
};
use crate::model::record::cipher_entry;
use crate::model::record::{Category, EndpointRecord, PROTOCOL_NAMES};
use crate::wire::CipherSuite;

/// Compute the levels from an assessment's parts.
pub fn levels(record: &EndpointRecord, a: &Assessment) -> Levels {
    let security_rating = match &a.grade {
        Some(g) => Some(Level::of(g.letter)),
        None if record.category == Category::Unsecured => Some(Level::NotSecure),
        None => None,
    };
    let chain = if a.chain.path.is_empty() {
        None
    } else {
        let worst = a.chain.chain_issues.iter().map(|i| i.severity).max();
        Some(
            if a.chain.trusted == Some(false)
                || a.chain.name_check.status == NameStatus::Mismatch
                || worst == Some(Severity::Critical)
            {
                Level::NotSecure
            } else if worst == Some(Severity::High) {
                Level::AtRisk
            } else if worst.is_some_and(|w| w >= Severity::Low) {
                Level::Secure
            } else {
                Level::VerySecure
            },
        )
    };
    Levels {
        security_rating,
        certificate_chain: chain,
        protocol_cipher: a.grade.as_ref().map(|g| Level::of(protocol_cipher_letter(g))),
    }
}

/// Short per-protocol warnings for the seed's `warnings` string.
fn protocol_warnings(protocol: &str, ciphers: &[ClassifiedCipher], compressors: &str) -> String {
    let mut w: Vec<String> = Vec::new();
    match protocol {
        "SSLv2" => w.push("SSLv2 is broken (DROWN)".into()),
        "SSLv3" => w.push("SSLv3 is broken (POODLE)".into()),
        "TLSv1.0" | "TLSv1.1" => w.push(format!("{protocol} is deprecated (RFC 8996)")),
        _ => {}
    }
    let cbc = ciphers.iter().any(|c| c.reasons.iter().any(|r| r == "CBC mode"));
    if cbc && matches!(protocol, "SSLv3" | "TLSv1.0") {
        w.push("CBC suites (BEAST)".into());
    }
    let insecure = ciphers.iter().filter(|c| c.class == CipherClass::Insecure).count();
    if insecure > 0 {
        w.push(format!("{insecure} insecure suite(s)"));
    }
    let compressed = compressors
        .split([',', ' '])
        .map(str::trim)
        .any(|m| !m.is_empty() && !m.eq_ignore_ascii_case("NULL"));
    if compressed {
        w.push(format!("TLS compression {compressors} (CRIME)"));
    }
    w.join("; ")
}

/// Build `security_rating_info` for `record` from its assessment.
pub fn security_rating_info(record: &EndpointRecord, a: &Assessment) -> SecurityRatingInfo {
    let protocol_ciphers = a
        .protocol_ciphers
        .iter()
        .map(|p| {
            let of = |class: CipherClass| {
                p.ciphers
                    .iter()
                    .filter(|c| c.class == class)
                    .map(SeedCipher::from)
                    .collect::<Vec<_>>()
            };
            SeedProtocolCiphers {
                protocol: p.protocol.clone(),
                cipher_pref_order: p.cipher_pref_order.clone(),
                compressors: p.compressors.clone(),
                safe_ciphers: of(CipherClass::Safe),
                weak_ciphers: of(CipherClass::Weak),
                insecure_ciphers: of(CipherClass::Insecure),
                warnings: protocol_warnings(&p.protocol, &p.ciphers, &p.compressors),
            }
        })
        .collect();
    let handshake_protocols = record
        .handshake
        .as_ref()
        .and_then(|h| {
            let protocol = h.protocol.clone()?;
            let suite = h.cipher_suite.as_ref()?;
            let entry = cipher_entry(CipherSuite(suite.code), None);
            Some(vec![HandshakeProtocol {
                protocol,
                cipher_algorithm: suite.name.clone(),
                key_size: strength::cipher_bits(&entry),
            }])
        })
        .unwrap_or_default();
    let (security_headers, http_response_headers) = match &a.http {
        Some(h) => (h.security_headers.clone(), h.http_response_headers.clone()),
        None => Default::default(),
    };
    let mut protocols: Vec<String> = PROTOCOL_NAMES
        .iter()
        .filter(|p| {
            record.protocols.as_ref().is_some_and(|m| m.get(**p) == Some(&true))
                || record.protocol_ciphers.iter().any(|pc| pc.protocol == **p)
        })
        .map(|p| p.to_string())
        .collect();
    if protocols.is_empty()
        && let Some(p) = record.handshake.as_ref().and_then(|h| h.protocol.clone())
    {
        protocols.push(p);
    }
    SecurityRatingInfo {
        protocol_ciphers,
        handshake_protocols,
        certificate_chain: a.certificate_chain.clone(),
        security_headers,
        http_response_headers,
        security_rating_score: a.levels.security_rating,
        certificate_chain_score: a.levels.certificate_chain,
        protocol_cipher_score: ProtocolCipherScore {
            protocols,
            score: a.levels.protocol_cipher,
        },
        security_rating: Some(security_rating(record, a)).filter(|r| !r.is_empty()),
    }
}

/// The seed's `security_rating` criteria for the issue-22 checks. A
/// criterion fails only where the assessment has a finding for it (`issue`
/// is then the finding's title) or, for early data, when 0-RTT requests are
/// accepted (replayable); the rest describe the configuration and pass.
/// Rules in docs/grading.md ("security_rating criteria").
pub fn security_rating(record: &EndpointRecord, a: &Assessment) -> SecurityRating {
    use serde_json::{Map, Value, json};
    let finding = |id: &str| a.findings.iter().find(|f| f.id == id).map(|f| f.title.clone());
    let criterion = |category: &str, name: &str, value: String, issue: Option<String>, data: Value| RatingCriterion {
        category_name: category.into(),
        criteria_name: name.into(),
        value,
        rating: CriterionRating {
            value: issue.is_none(),
            issue: issue.unwrap_or_else(|| "None".into()),
        },
        data: match data {
            Value::Object(m) => m,
            _ => Map::new(),
        },
    };
    let listed = |v: Vec<String>| if v.is_empty() { "None".to_string() } else { v.join(", ") };
    let mut out = SecurityRating::default();

    if let Some(kx) = &record.key_exchange
        && let Some(pq) = kx.post_quantum
    {
        let groups: Vec<String> = kx.pq_hybrids.iter().chain(&kx.pq_ml_kem).cloned().collect();
        out.key_exchange.push(criterion(
            "Key exchange",
            "Post-quantum key exchange",
            listed(groups),
            (!pq).then(|| finding("no_post_quantum").unwrap_or_else(|| "No post-quantum key exchange".into())),
            json!({
                "post_quantum": pq,
                "hybrids": kx.pq_hybrids,
                "ml_kem": kx.pq_ml_kem,
                "preference": kx.pq_preference,
                "only": kx.pq_only,
            }),
        ));
    }

    if let Some(c) = &record.client_auth {
        let mode = serde_json::to_value(c.mode).unwrap_or(Value::Null);
        out.authentication.push(criterion(
            "Authentication",
            "Client certificate",
            mode.as_str().unwrap_or_default().to_string(),
            None,
            json!({
                "mode": mode,
                "protocol": c.protocol,
                "ca_names": c.ca_names,
                "signature_algorithms": c.signature_algorithms,
            }),
        ));
    }
    if !record.certificate_deployments.is_empty() {
        let d = &record.certificate_deployments;
        let untrusted = d.iter().filter(|d| d.trusted == Some(false)).count();
        let issue = finding("deployment_worse")
            .or_else(|| (untrusted > 0).then(|| format!("{untrusted} of {} certificates not trusted", d.len())));
        let each: Vec<Value> = d
            .iter()
            .map(|d| json!({"key": d.key, "thumbprint": d.thumbprint, "grade": d.grade, "trusted": d.trusted}))
            .collect();
        out.authentication.push(criterion(
            "Authentication",
            "Certificate deployments",
            d.iter().map(|d| d.key.clone()).collect::<Vec<_>>().join(", "),
            issue,
            json!({"count": d.len(), "deployments": each}),
        ));
    }

    if let Some(r) = &record.resumption {
        let mut how = Vec::new();
        if r.tls13_ticket == Some(true) {
            how.push("TLS 1.3 ticket".to_string());
        }
        if r.tls12_session_id == Some(true) {
            how.push("TLS 1.2 session ID".to_string());
        }
        out.session.push(criterion(
            "Session",
            "Session resumption",
            listed(how),
            None,
            json!({"tls13_ticket": r.tls13_ticket, "tls12_session_id": r.tls12_session_id}),
        ));
    }
    if let Some(t) = &record.tls13 {
        if t.max_early_data_size.is_some() || t.early_data_accepted.is_some() {
            let value = match (t.max_early_data_size, t.early_data_accepted) {
                (_, Some(true)) => "Accepted".to_string(),
                (Some(n), _) if n > 0 => format!("Offered ({n} bytes), not accepted"),
                _ => "Not offered".to_string(),
            };
            out.session.push(criterion(
                "Session",
                "Early data (0-RTT)",
                value,
                (t.early_data_accepted == Some(true))
                    .then(|| "0-RTT data accepted: early requests can be replayed".to_string()),
                json!({"max_early_data_size": t.max_early_data_size, "accepted": t.early_data_accepted}),
            ));
        }
        if let Some(e) = &t.ech {
            let value = match (&e.retry_configs, &e.public_name) {
                (true, Some(n)) => format!("Supported (public name {n})"),
                (true, None) => "Supported".to_string(),
                (false, _) => "Not supported".to_string(),
            };
            let mut data = serde_json::to_value(e).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut data {
                m.insert("supported".into(), Value::Bool(e.retry_configs));
            }
            out.privacy
                .push(criterion("Privacy", "Encrypted Client Hello", value, None, data));
        }
    }

    if let Some(leaf) = &record.certificate {
        let n = leaf.scts.len();
        let value = match n {
            0 => "None".to_string(),
            1 => "1 SCT".to_string(),
            n => format!("{n} SCTs"),
        };
        let logs: Vec<&str> = leaf.scts.iter().map(|s| s.log_id.as_str()).collect();
        out.transparency.push(criterion(
            "Transparency",
            "Signed certificate timestamps",
            value,
            finding("no_sct"),
            json!({"count": n, "log_ids": logs, "publicly_trusted": a.chain.publicly_trusted}),
        ));
    }
    out
}
