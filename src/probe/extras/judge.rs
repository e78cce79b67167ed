//! Pure readings of the extras' handshakes: client authentication from a
//! CertificateRequest and how the handshake ended, certificate deployments
//! from the chains each offer got.

use crate::model::cert::CertInfo;
use crate::model::record::{CertificateDeployment, ClientAuthMode};

/// How one handshake ended, as far as client authentication cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Completed, and the server said nothing bad in the moment after.
    Completed,
    /// The server sent this alert (during the handshake or right after our Finished).
    Alert(u8),
    /// Any other failure (reset, timeout, protocol error).
    Failed,
}

/// Alerts a server sends when it wants a certificate it did not get:
/// handshake_failure, bad_certificate, certificate_unknown, certificate_required.
pub const CERTIFICATE_WANTED: [u8; 4] = [40, 42, 46, 116];

/// `requested`: the server sent a CertificateRequest (we answered with no
/// certificate). `None` when nothing can be said (the handshake failed before).
pub fn client_auth(requested: bool, ending: Ending) -> Option<ClientAuthMode> {
    match (requested, ending) {
        (false, Ending::Completed) => Some(ClientAuthMode::None),
        (false, _) => None,
        (true, Ending::Completed) => Some(ClientAuthMode::Optional),
        (true, Ending::Alert(a)) if CERTIFICATE_WANTED.contains(&a) => Some(ClientAuthMode::Required),
        // Asked, then refused in some other way: still refused without a certificate.
        (true, _) => Some(ClientAuthMode::Required),
    }
}

/// A certificate's key as a person names it: `RSA 2048`, `ECDSA P-256`, `Ed25519`.
pub fn key_name(c: &CertInfo) -> String {
    let alg = c.key_algorithm.as_str();
    match (alg, &c.key_curve, c.key_size) {
        ("Ed25519" | "Ed448", _, _) => alg.to_string(),
        ("EC" | "ECDSA", Some(curve), _) => format!("ECDSA {curve}"),
        (_, _, Some(bits)) if alg.eq_ignore_ascii_case("rsa") => format!("RSA {bits}"),
        (other, Some(curve), _) => format!("{other} {curve}"),
        (other, None, Some(bits)) => format!("{other} {bits}"),
        (other, None, None) => other.to_string(),
    }
}

/// Group the chains the offers got by leaf: one deployment per certificate,
/// in the order first seen.
pub fn deployments(seen: &[(String, Vec<CertInfo>)]) -> Vec<CertificateDeployment> {
    let mut out: Vec<CertificateDeployment> = Vec::new();
    for (offer, chain) in seen {
        let Some(leaf) = chain.first() else { continue };
        match out.iter_mut().find(|d| d.thumbprint == leaf.thumbprint) {
            Some(d) => {
                if !d.offers.contains(offer) {
                    d.offers.push(offer.clone());
                }
            }
            None => out.push(CertificateDeployment {
                key: key_name(leaf),
                thumbprint: leaf.thumbprint.clone(),
                offers: vec![offer.clone()],
                chain: chain.clone(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_modes() {
        assert_eq!(client_auth(false, Ending::Completed), Some(ClientAuthMode::None));
        assert_eq!(client_auth(false, Ending::Failed), None);
        assert_eq!(client_auth(false, Ending::Alert(40)), None);
        assert_eq!(client_auth(true, Ending::Completed), Some(ClientAuthMode::Optional));
        for a in CERTIFICATE_WANTED {
            assert_eq!(client_auth(true, Ending::Alert(a)), Some(ClientAuthMode::Required));
        }
        assert_eq!(client_auth(true, Ending::Failed), Some(ClientAuthMode::Required));
    }

    fn cert(thumb: &str, alg: &str, curve: Option<&str>, bits: Option<u32>) -> CertInfo {
        let mut c = crate::model::cert::parse_lossy(&[]);
        c.thumbprint = thumb.into();
        c.key_algorithm = alg.into();
        c.key_curve = curve.map(str::to_string);
        c.key_size = bits;
        c
    }

    #[test]
    fn deployments_one_per_leaf() {
        let rsa = cert("aa", "RSA", None, Some(2048));
        let ec = cert("bb", "EC", Some("P-256"), Some(256));
        let seen = vec![
            ("TLSv1.3 rsa_pss_rsae_sha256".to_string(), vec![rsa.clone()]),
            ("TLSv1.3 ecdsa_secp256r1_sha256".to_string(), vec![ec.clone()]),
            ("TLSv1.2 RSA".to_string(), vec![rsa]),
            ("TLSv1.2 ECDSA".to_string(), vec![]),
        ];
        let d = deployments(&seen);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].key, "RSA 2048");
        assert_eq!(d[0].offers, vec!["TLSv1.3 rsa_pss_rsae_sha256", "TLSv1.2 RSA"]);
        assert_eq!(d[1].key, "ECDSA P-256");
        assert_eq!(d[1].offers, vec!["TLSv1.3 ecdsa_secp256r1_sha256"]);
    }
}
