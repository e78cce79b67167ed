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
    HandshakeProtocol, Level, Levels, ProtocolCipherScore, SecurityRatingInfo, SeedCipher, SeedProtocolCiphers,
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
    }
}
