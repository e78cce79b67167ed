//! Pure readings of the extras' handshakes: client authentication from a
//! CertificateRequest and how the handshake ended, certificate deployments
//! from the chains each offer got, ECH support from the retry configs.

use crate::model::cert::CertInfo;
use crate::model::record::{CertificateDeployment, ClientAuthMode, Ech, EchConfigInfo};

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
/// What one offer got: (offer, parsed chain, DER chain).
pub type Got = (String, Vec<CertInfo>, Vec<Vec<u8>>);

pub fn deployments(seen: &[Got]) -> Vec<CertificateDeployment> {
    let mut out: Vec<CertificateDeployment> = Vec::new();
    for (offer, chain, der) in seen {
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
                grade: None,
                trusted: None,
                der: der.clone(),
            }),
        }
    }
    out
}

/// The record's view of a rejection: `retry` is the ECHConfigList the
/// server sent (absent: it ignored the offer).
pub fn ech(retry: Option<&[u8]>) -> Ech {
    use crate::wire::ech::{EchConfigEntry, kem_name, parse_config_list, suite_name};
    let Some(bytes) = retry else {
        return Ech::default();
    };
    let configs: Vec<EchConfigInfo> = parse_config_list(bytes)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e {
            EchConfigEntry::Known(c) => Some(EchConfigInfo {
                config_id: c.config_id,
                kem: kem_name(c.kem_id),
                cipher_suites: c.cipher_suites.iter().copied().map(suite_name).collect(),
                public_name: c.public_name,
                maximum_name_length: c.maximum_name_length,
            }),
            EchConfigEntry::Unknown { .. } => None,
        })
        .collect();
    Ech {
        retry_configs: true,
        public_name: configs.first().map(|c| c.public_name.clone()),
        configs,
    }
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
            ("TLSv1.3 rsa_pss_rsae_sha256".to_string(), vec![rsa.clone()], vec![]),
            ("TLSv1.3 ecdsa_secp256r1_sha256".to_string(), vec![ec.clone()], vec![]),
            ("TLSv1.2 RSA".to_string(), vec![rsa], vec![]),
            ("TLSv1.2 ECDSA".to_string(), vec![], vec![]),
        ];
        let d = deployments(&seen);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].key, "RSA 2048");
        assert_eq!(d[0].offers, vec!["TLSv1.3 rsa_pss_rsae_sha256", "TLSv1.2 RSA"]);
        assert_eq!(d[1].key, "ECDSA P-256");
        assert_eq!(d[1].offers, vec!["TLSv1.3 ecdsa_secp256r1_sha256"]);
    }

    #[test]
    fn ech_from_retry_configs() {
        use crate::wire::ech::{ECH_VERSION, EchConfig, encode_config_list};
        assert_eq!(ech(None), Ech::default());
        let list = encode_config_list(&EchConfig {
            version: ECH_VERSION,
            config_id: 7,
            kem_id: 0x0020,
            public_key: vec![1; 32],
            cipher_suites: vec![(1, 1), (1, 3)],
            maximum_name_length: 0,
            public_name: "public.test".into(),
            extensions: vec![],
        });
        let e = ech(Some(&list));
        assert!(e.retry_configs);
        assert_eq!(e.public_name.as_deref(), Some("public.test"));
        assert_eq!(
            e.configs,
            vec![EchConfigInfo {
                config_id: 7,
                kem: "DHKEM(X25519, HKDF-SHA256)".into(),
                cipher_suites: vec!["HKDF-SHA256/AES-128-GCM".into(), "HKDF-SHA256/ChaCha20Poly1305".into()],
                public_name: "public.test".into(),
                maximum_name_length: 0,
            }]
        );
        // Retry configs that do not decode still say the server supports ECH.
        let e = ech(Some(&[0, 1, 2]));
        assert!(e.retry_configs && e.public_name.is_none() && e.configs.is_empty());
    }
}
