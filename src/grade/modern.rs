//! Notes on what today's TLS adds beyond the SSL Labs 2009r guide: post-quantum
//! key exchange and Certificate Transparency. The guide predates both, so none
//! of these changes the score (a hybrid group counts as its strongest
//! component in [`super::strength::group`], so it never lowers the key
//! exchange; a server offering only ML-KEM groups is not marked down for
//! lacking ECDHE); they are findings a security team reads.

use crate::model::assessment::{ChainReport, Finding, Severity};
use crate::model::cert::CertInfo;
use crate::model::record::EndpointRecord;

/// A publicly trusted leaf without embedded SCTs: browsers that enforce
/// Certificate Transparency refuse it unless the server staples SCTs by
/// other means (TLS extension or OCSP), which are not checked here.
pub fn transparency(chain: &ChainReport, leaf: Option<&CertInfo>) -> Option<Finding> {
    let leaf = leaf?;
    (chain.publicly_trusted && leaf.scts.is_empty() && leaf.parse_error.is_none()).then(|| Finding {
        id: "no_sct".into(),
        severity: Severity::Medium,
        title: "No embedded Certificate Transparency timestamps".into(),
        evidence: format!(
            "the publicly trusted certificate {} has no SCT extension (RFC 6962): CT-enforcing browsers refuse it unless SCTs arrive by TLS extension or OCSP",
            leaf.subject_dn
        ),
    })
}

/// A live revocation check that could not conclude (the "revoked" verdict
/// is a chain issue, `revoked`): the operator learns why and where.
pub fn revocation(record: &EndpointRecord) -> Option<Finding> {
    use crate::model::record::RevocationStatus as S;
    let r = record.revocation.as_ref()?;
    let (id, severity, title) = match r.status {
        S::NotChecked => ("revocation_not_checked", Severity::Info, "Revocation not checked"),
        S::Error => ("revocation_check_failed", Severity::Low, "Revocation check failed"),
        S::Unknown => ("revocation_unknown", Severity::Info, "Revocation status unknown"),
        S::Good | S::Revoked => return None,
    };
    Some(Finding {
        id: id.into(),
        severity,
        title: title.into(),
        evidence: r.detail.clone(),
    })
}

/// The post-quantum notes for one record.
pub fn findings(record: &EndpointRecord) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(kx) = &record.key_exchange else {
        return out;
    };
    match (kx.post_quantum, kx.pq_only) {
        (Some(false), _) => out.push(Finding {
            id: "no_post_quantum".into(),
            severity: Severity::Info,
            title: "No post-quantum key exchange".into(),
            evidence: format!(
                "TLS 1.3 accepts {} but no ML-KEM group (X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, MLKEM512/768/1024): recorded traffic could be decrypted by a future quantum computer",
                if kx.groups.is_empty() {
                    "its groups".to_string()
                } else {
                    kx.groups.join(", ")
                }
            ),
        }),
        (Some(true), Some(true)) => out.push(Finding {
            id: "post_quantum_only".into(),
            severity: Severity::Info,
            title: "Only post-quantum key exchange".into(),
            evidence: format!(
                "TLS 1.3 accepts only {}: clients without ML-KEM cannot connect",
                kx.pq_hybrids.iter().chain(&kx.pq_ml_kem).cloned().collect::<Vec<_>>().join(", ")
            ),
        }),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::{Category, KeyExchange};

    fn record(kx: KeyExchange) -> EndpointRecord {
        let mut r = EndpointRecord::new(
            "127.0.0.1".parse().expect("address"),
            443,
            None,
            Category::Discovered,
            "2026-01-01T00:00:00Z".into(),
        );
        r.key_exchange = Some(kx);
        r
    }

    #[test]
    fn no_pq_is_a_note_and_pq_only_another() {
        let f = findings(&record(KeyExchange {
            groups: vec!["x25519".into()],
            post_quantum: Some(false),
            pq_only: Some(false),
            ..KeyExchange::default()
        }));
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].id.as_str(), f[0].severity), ("no_post_quantum", Severity::Info));
        assert!(
            f[0].evidence.starts_with("TLS 1.3 accepts x25519 but"),
            "{}",
            f[0].evidence
        );
        let f = findings(&record(KeyExchange {
            post_quantum: Some(true),
            pq_ml_kem: vec!["MLKEM768".into()],
            pq_only: Some(true),
            ..KeyExchange::default()
        }));
        assert_eq!(f[0].id, "post_quantum_only");
        assert!(f[0].evidence.contains("MLKEM768"));
        let hybrid = findings(&record(KeyExchange {
            post_quantum: Some(true),
            pq_only: Some(false),
            ..KeyExchange::default()
        }));
        assert!(hybrid.is_empty());
        // Not probed: nothing said.
        assert!(findings(&record(KeyExchange::default())).is_empty());
    }
}
