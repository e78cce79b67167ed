//! Certificates as the inventory and upstream see them.
//!
//! Pure: DER in, [`CertInfo`] out. The fields follow the upstream schema's
//! names (`common_name`, `serial_number`, `thumbprint`, `valid_from`, …) so
//! the report layer only copies. Key size is counted from the modulus here,
//! not taken from x509-parser, whose `key_size()` misreports unusual moduli
//! (2040 for a 2047-bit key), and grading must see the real number.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::model::timestamp::rfc3339;

/// One certificate, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    pub common_name: Option<String>,
    /// Every subject attribute present, under the upstream schema's names
    /// (`common_name`, `organization_name`, `country`, …); unknown attributes
    /// under their dotted OID. Repeated attributes are joined with `, `.
    pub subject: BTreeMap<String, String>,
    pub subject_dn: String,
    pub issuer_dn: String,
    /// Subject alternative names: DNS names and IP addresses as text.
    pub san: Vec<String>,
    /// Serial number, upper-case hex.
    pub serial_number: String,
    /// SHA-256 of the DER encoding, upper-case hex.
    pub thumbprint: String,
    pub valid_from: String,
    pub valid_to: String,
    /// `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`, or the OID.
    pub key_algorithm: String,
    /// Bits: RSA modulus bits counted exactly, EC curve size.
    pub key_size: Option<u32>,
    /// Named curve of an EC key, e.g. `secp256r1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_curve: Option<String>,
    /// RSA public exponent when it fits in 64 bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsa_exponent: Option<u64>,
    /// e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    pub is_ca: bool,
    /// Subject and issuer are the same name.
    pub self_issued: bool,
    /// Set when the DER could not be parsed; then only `thumbprint` is reliable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// Signed certificate timestamps embedded in the certificate (RFC 6962
    /// extension 1.3.6.1.4.1.11129.2.4.2): the CT logs that promised to publish it.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub scts: Vec<Sct>,
}

/// One embedded signed certificate timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sct {
    /// The log's id (SHA-256 of its key), upper-case hex.
    pub log_id: String,
    /// When the log promised to publish the certificate, RFC 3339.
    pub timestamp: String,
}

#[derive(Debug, thiserror::Error)]
#[error("certificate does not parse: {0}")]
pub struct CertError(String);

/// Parse a DER certificate. Never panics on any input.
pub fn parse(der: &[u8]) -> Result<CertInfo, CertError> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| CertError(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )));
    }
    let mut subject: BTreeMap<String, String> = BTreeMap::new();
    for attr in cert.subject().iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        let key = attribute_name(&oid).map(str::to_string).unwrap_or(oid);
        let value = match attr.as_str() {
            Ok(s) => s.to_string(),
            Err(_) => hex_upper(attr.attr_value().data),
        };
        subject
            .entry(key)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut san = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => san.push(d.to_string()),
                GeneralName::IPAddress(raw) => {
                    if let Some(ip) = ip_from_bytes(raw) {
                        san.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let spki = cert.public_key();
    let alg_oid = spki.algorithm.algorithm.to_id_string();
    let (mut key_algorithm, mut key_size, mut key_curve, mut rsa_exponent) = (alg_oid.clone(), None, None, None);
    match alg_oid.as_str() {
        "1.2.840.113549.1.1.1" => {
            key_algorithm = "RSA".into();
            if let Ok(PublicKey::RSA(rsa)) = spki.parsed() {
                key_size = Some(significant_bits(rsa.modulus));
                let e = strip_zeros(rsa.exponent);
                if e.len() <= 8 {
                    rsa_exponent = Some(e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
                }
            }
        }
        "1.2.840.10045.2.1" => {
            key_algorithm = "EC".into();
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if let Some(c) = curve {
                let (name, bits) = curve_name(&c);
                key_size = bits;
                key_curve = Some(name.map(str::to_string).unwrap_or(c));
            }
        }
        "1.3.101.112" => (key_algorithm, key_size) = ("Ed25519".into(), Some(256)),
        "1.3.101.113" => (key_algorithm, key_size) = ("Ed448".into(), Some(456)),
        "1.2.840.10040.4.1" => {
            key_algorithm = "DSA".into();
            key_size = spki.algorithm.parameters.as_ref().and_then(|p| dsa_p_bits(p.data));
        }
        _ => {}
    }
    let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
    let signature_algorithm = signature_name(&sig_oid).map(str::to_string).unwrap_or(sig_oid);
    let subject_dn = cert.subject().to_string();
    let issuer_dn = cert.issuer().to_string();
    Ok(CertInfo {
        common_name: subject.get("common_name").cloned(),
        subject,
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        subject_dn,
        issuer_dn,
        san,
        serial_number: hex_upper(strip_zeros(cert.raw_serial())),
        thumbprint: thumbprint(der),
        valid_from: rfc3339(cert.validity().not_before.to_datetime()),
        valid_to: rfc3339(cert.validity().not_after.to_datetime()),
        key_algorithm,
        key_size,
        key_curve,
        rsa_exponent,
        signature_algorithm,
        is_ca: cert.is_ca(),
        parse_error: None,
        scts: scts(&cert),
    })
}

fn scts(cert: &X509Certificate<'_>) -> Vec<Sct> {
    use x509_parser::extensions::ParsedExtension;
    let mut out = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SCT(list) = ext.parsed_extension() {
            for sct in list {
                let ms = i128::from(sct.timestamp) * 1_000_000;
                let timestamp = ::time::OffsetDateTime::from_unix_timestamp_nanos(ms)
                    .map(rfc3339)
                    .unwrap_or_else(|_| sct.timestamp.to_string());
                out.push(Sct {
                    log_id: hex_upper(sct.id.key_id),
                    timestamp,
                });
            }
        }
    }
    out
}

/// Parse, or describe what could not be parsed: a chain entry is never dropped.
pub fn parse_lossy(der: &[u8]) -> CertInfo {
    parse(der).unwrap_or_else(|e| CertInfo {
        thumbprint: thumbprint(der),
        parse_error: Some(e.0),
        ..CertInfo::default()
    })
}

pub fn thumbprint(der: &[u8]) -> String {
    hex_upper(&Sha256::digest(der))
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

/// Bits in a big-endian unsigned integer, ignoring leading zeros.
fn significant_bits(b: &[u8]) -> u32 {
    let b = strip_zeros(b);
    match b.first() {
        None => 0,
        Some(&top) => (b.len() as u32 - 1) * 8 + (8 - top.leading_zeros()),
    }
}

/// DSA key size is the size of `p` in Dss-Parms ::= SEQUENCE { p, q, g }.
fn dsa_p_bits(params: &[u8]) -> Option<u32> {
    use x509_parser::der_parser::ber::parse_ber_integer;
    let (_, p) = parse_ber_integer(params).ok()?;
    Some(significant_bits(p.as_slice().ok()?))
}

fn ip_from_bytes(raw: &[u8]) -> Option<IpAddr> {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(raw).ok().map(IpAddr::from),
        _ => None,
    }
}

fn attribute_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "common_name",
        "2.5.4.4" => "surname",
        "2.5.4.5" => "serial_number",
        "2.5.4.6" => "country",
        "2.5.4.7" => "locality",
        "2.5.4.8" => "state",
        "2.5.4.9" => "street_address",
        "2.5.4.10" => "organization_name",
        "2.5.4.11" => "organization_units",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.17" => "postal_code",
        "2.5.4.42" => "given_name",
        "2.5.4.45" => "unique_identifier",
        "2.5.4.46" => "dn_qualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organization_identifier",
        "1.2.840.113549.1.9.1" => "email",
        "1.2.840.113549.1.9.2" => "unstructured_name",
        "1.2.840.113549.1.9.8" => "unstructured_address",
        "0.9.2342.19200300.100.1.1" => "user_identifier",
        "0.9.2342.19200300.100.1.25" => "domain_component",
        _ => return None,
    })
}

fn curve_name(oid: &str) -> (Option<&'static str>, Option<u32>) {
    match oid {
        "1.2.840.10045.3.1.7" => (Some("secp256r1"), Some(256)),
        "1.3.132.0.34" => (Some("secp384r1"), Some(384)),
        "1.3.132.0.35" => (Some("secp521r1"), Some(521)),
        "1.3.132.0.10" => (Some("secp256k1"), Some(256)),
        "1.2.840.10045.3.1.1" => (Some("secp192r1"), Some(192)),
        "1.3.132.0.33" => (Some("secp224r1"), Some(224)),
        "1.3.36.3.3.2.8.1.1.7" => (Some("brainpoolP256r1"), Some(256)),
        "1.3.36.3.3.2.8.1.1.11" => (Some("brainpoolP384r1"), Some(384)),
        "1.3.36.3.3.2.8.1.1.13" => (Some("brainpoolP512r1"), Some(512)),
        _ => (None, None),
    }
}

fn signature_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(params: rcgen::CertificateParams, key: &rcgen::KeyPair) -> Vec<u8> {
        params.self_signed(key).unwrap().der().to_vec()
    }

    /// The RFC 6962 extension's value: an OCTET STRING holding the TLS-encoded
    /// SignedCertificateTimestampList.
    fn sct_extension(scts: &[([u8; 32], u64)]) -> rcgen::CustomExtension {
        let mut list = Vec::new();
        for (log, ms) in scts {
            let mut one = vec![0u8]; // v1
            one.extend_from_slice(log);
            one.extend_from_slice(&ms.to_be_bytes());
            one.extend_from_slice(&[0, 0]); // no extensions
            one.extend_from_slice(&[4, 3, 0, 2, 0xAB, 0xCD]); // sha256/ecdsa, 2-byte "signature"
            list.extend_from_slice(&(one.len() as u16).to_be_bytes());
            list.extend(one);
        }
        let mut tls = (list.len() as u16).to_be_bytes().to_vec();
        tls.extend(list);
        let mut der = vec![0x04, tls.len() as u8];
        der.extend(tls);
        rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2], der)
    }

    #[test]
    fn embedded_scts_are_read_and_their_absence_is_empty() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["ct.test".into()]).unwrap();
        p.custom_extensions = vec![sct_extension(&[
            ([0x11; 32], 1_767_225_600_000),
            ([0x22; 32], 1_767_225_601_500),
        ])];
        let c = parse(&make(p, &key)).unwrap();
        assert_eq!(c.scts.len(), 2);
        assert_eq!(c.scts[0].log_id, "11".repeat(32));
        assert_eq!(c.scts[0].timestamp, "2026-01-01T00:00:00Z");
        assert_eq!(c.scts[1].log_id, "22".repeat(32));
        assert!(
            c.scts[1].timestamp.starts_with("2026-01-01T00:00:01"),
            "{}",
            c.scts[1].timestamp
        );
        let plain = rcgen::CertificateParams::new(vec!["ct.test".into()]).unwrap();
        assert!(parse(&make(plain, &key)).unwrap().scts.is_empty());
    }

    #[test]
    fn reads_the_fields_upstream_needs() {
        let mut p = rcgen::CertificateParams::new(vec!["a.test".into(), "127.0.0.1".into()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, "a.test");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example Org");
        p.distinguished_name.push(rcgen::DnType::CountryName, "US");
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0f, 0x6f, 0x55]));
        p.not_before = rcgen::date_time_ymd(2026, 1, 2);
        p.not_after = rcgen::date_time_ymd(2027, 1, 2);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = make(p, &key);
        let c = parse(&der).unwrap();
        assert_eq!(c.common_name.as_deref(), Some("a.test"));
        assert_eq!(c.subject["organization_name"], "Example Org");
        assert_eq!(c.subject["country"], "US");
        assert_eq!(c.san, vec!["a.test", "127.0.0.1"]);
        assert_eq!(c.serial_number, "0F6F55");
        assert_eq!(c.thumbprint.len(), 64);
        assert_eq!(c.valid_from, "2026-01-02T00:00:00Z");
        assert_eq!(c.valid_to, "2027-01-02T00:00:00Z");
        assert_eq!(c.key_algorithm, "EC");
        assert_eq!(c.key_curve.as_deref(), Some("secp256r1"));
        assert_eq!(c.key_size, Some(256));
        assert_eq!(c.signature_algorithm, "ecdsa-with-SHA256");
        assert!(c.self_issued);
        assert!(!c.is_ca);
        assert!(c.subject_dn.contains("CN=a.test"));
    }

    #[test]
    fn counts_rsa_modulus_bits_exactly() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x7f, 0xff]), 15);
        assert_eq!(significant_bits(&[0x00, 0x00]), 0);
        let mut modulus = vec![0x00, 0x7f];
        modulus.extend([0xffu8; 255]);
        assert_eq!(significant_bits(&modulus), 2047);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x30, 0x82, 0xff, 0xff, 0x00]).is_err());
        let lossy = parse_lossy(b"not a certificate");
        assert!(lossy.parse_error.is_some());
        assert_eq!(lossy.thumbprint, thumbprint(b"not a certificate"));
    }

    #[test]
    fn every_prefix_of_a_real_certificate_is_handled() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = make(rcgen::CertificateParams::new(vec!["p.test".into()]).unwrap(), &key);
        for n in 0..der.len() {
            assert!(parse(&der[..n]).is_err(), "prefix {n} parsed");
        }
        assert!(parse(&der).is_ok());
    }
}
