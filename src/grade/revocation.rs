//! The live revocation check's decisions, without the network (issue 22).
//!
//! `scan::revocation` fetches; everything it decides is here so that it is
//! tested without sockets: where to ask (the leaf's AIA responder and CRL
//! distribution points), whether the operator allows asking there (the
//! allowlist: a private PKI's responder is usually inside the network, and a
//! scanner must not call out to wherever a certificate points), the OCSP
//! request (RFC 6960 CertID with SHA-1, which every RFC 5019 responder
//! knows), and what an answer means: the OCSP response's CertID must be ours
//! and its signature the issuer's (or a delegated responder's the issuer
//! signed for OCSP signing), a CRL must be the issuer's and signed by it.
//! A fetched answer is unauthenticated transport, so an unsigned or foreign
//! answer is an error, never a verdict.

use std::collections::HashMap;
use std::net::IpAddr;

use ::time::OffsetDateTime;
use ipnetwork::IpNetwork;
use x509_parser::asn1_rs::{BitString, FromDer};
use x509_parser::prelude::*;

use super::ocsp::{self, OcspError, SEQUENCE};
use crate::grade::OcspStatus;
pub use crate::model::record::{Revocation, RevocationStatus};
use crate::model::timestamp::rfc3339;

/// Why a check could not conclude.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RevocationError {
    #[error("the leaf certificate does not parse: {0}")]
    Leaf(String),
    #[error("the server did not send the leaf's issuer, whose key signs the answer")]
    NoIssuer,
    #[error("the leaf is self-signed: there is no issuer to ask")]
    SelfSigned,
    #[error(transparent)]
    Ocsp(#[from] OcspError),
    #[error("the OCSP response has no answer for this certificate (serial {0})")]
    NotAnswered(String),
    #[error("the OCSP response is not signed by the issuer or a responder it delegated to")]
    OcspSignature,
    #[error("the answer is stale: its nextUpdate {0} is past")]
    Stale(String),
    #[error("the CRL does not parse: {0}")]
    Crl(String),
    #[error("the CRL is issued by {0}, not by the leaf's issuer")]
    CrlIssuer(String),
    #[error("the CRL's signature does not verify with the issuer's key")]
    CrlSignature,
}

// ---- The allowlist ----------------------------------------------------------

/// Where the operator allows revocation fetches to go: networks (CIDR or a
/// single address) and host names. Empty: nowhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    nets: Vec<IpNetwork>,
    hosts: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "revocation allowlist entry `{0}` is neither a CIDR, an address nor a host name: write 10.0.0.0/8, 192.0.2.7, ::1 or ocsp.pki.internal"
)]
pub struct AllowError(pub String);

/// Why a fetch is refused: the words after "not allowed: ".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

/// What the allowlist says about a URL's host before any lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permit {
    /// The host is named in the allowlist: fetch from whatever it resolves to.
    Named,
    /// Resolve the host, then [`Allowlist::decide`] on the addresses.
    Resolve,
    /// Refused without a lookup (no network is allowed at all).
    Refused(Refusal),
}

fn host_name(s: &str) -> Option<String> {
    let s = s.trim_end_matches('.').to_ascii_lowercase();
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then_some(s)
}

impl Allowlist {
    /// Parse the operator's entries (`--revocation-allow`, `revocation_allow`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, AllowError> {
        let mut out = Allowlist::default();
        for e in entries {
            let e = e.as_ref().trim();
            if let Ok(net) = e.parse::<IpNetwork>() {
                out.nets.push(net);
            } else if let Ok(ip) = e.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
                out.nets.push(IpNetwork::from(ip));
            } else if let Some(h) = host_name(e) {
                out.hosts.push(h);
            } else {
                return Err(AllowError(e.to_string()));
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }

    /// The first look at a URL's host (a name or an address literal).
    pub fn permit(&self, host: &str) -> Permit {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if self.hosts.contains(&name) {
            Permit::Named
        } else if self.nets.is_empty() {
            Permit::Refused(Refusal(host.to_string()))
        } else {
            Permit::Resolve
        }
    }

    /// Every address the host resolved to must be inside an allowed network
    /// (one outside is how a name points a scanner somewhere it must not go).
    pub fn decide(&self, host: &str, addrs: &[IpAddr]) -> Result<(), Refusal> {
        if addrs.is_empty() {
            return Err(Refusal(format!("{host} (no address)")));
        }
        match addrs.iter().find(|a| !self.nets.iter().any(|n| n.contains(**a))) {
            Some(a) if a.to_string() == host => Err(Refusal(host.to_string())),
            Some(a) => Err(Refusal(format!("{host} ({a})"))),
            None => Ok(()),
        }
    }
}

/// A fetchable URL: HTTP or HTTPS with a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    /// The host as written (an address literal without brackets).
    pub host: String,
    /// Set when the host is an address literal.
    pub literal: Option<IpAddr>,
    pub port: u16,
}

/// Check a URL from a certificate: only `http` and `https` are fetched
/// (`ldap:` CRLs are common in private PKIs and are refused with a reason).
pub fn target(raw: &str) -> Result<Target, String> {
    let u = url::Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL ({e})"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("`{raw}` is not HTTP(S)"));
    }
    let (host, literal) = match u.host() {
        Some(url::Host::Domain(d)) => (d.to_string(), None),
        Some(url::Host::Ipv4(a)) => (a.to_string(), Some(IpAddr::V4(a))),
        Some(url::Host::Ipv6(a)) => (a.to_string(), Some(IpAddr::V6(a))),
        None => return Err(format!("`{raw}` has no host")),
    };
    let port = u.port_or_known_default().unwrap_or(80);
    Ok(Target {
        url: raw.to_string(),
        host,
        literal,
        port,
    })
}

// ---- The certificate and where to ask ---------------------------------------

/// What identifies the leaf to a responder and in a CRL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertKey {
    /// SHA-1 of the issuer's name as the leaf carries it.
    pub name_hash: Vec<u8>,
    /// SHA-1 of the issuer's public key (the BIT STRING's contents).
    pub key_hash: Vec<u8>,
    /// The serial number's INTEGER contents, as encoded in the leaf.
    pub serial: Vec<u8>,
}

/// The leaf, its issuer and the places to ask about it.
pub struct Subject<'a> {
    pub leaf: X509Certificate<'a>,
    pub issuer: X509Certificate<'a>,
    pub key: CertKey,
    /// OCSP responder URLs from the AIA extension.
    pub ocsp: Vec<String>,
    /// CRL URLs from the CRL distribution points.
    pub crl: Vec<String>,
}

fn sha1(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

/// Find the leaf's issuer among the presented certificates (by name and
/// signature) and read where to ask.
pub fn subject(chain: &[Vec<u8>]) -> Result<Subject<'_>, RevocationError> {
    let leaf_der = chain.first().ok_or(RevocationError::Leaf("no certificate".into()))?;
    let (_, leaf) = X509Certificate::from_der(leaf_der).map_err(|e| RevocationError::Leaf(e.to_string()))?;
    if leaf.subject().as_raw() == leaf.issuer().as_raw() && leaf.verify_signature(None).is_ok() {
        return Err(RevocationError::SelfSigned);
    }
    let issuer = chain[1..]
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .find(|c| c.subject().as_raw() == leaf.issuer().as_raw() && leaf.verify_signature(Some(c.public_key())).is_ok())
        .ok_or(RevocationError::NoIssuer)?;
    let key = CertKey {
        name_hash: sha1(leaf.issuer().as_raw()),
        key_hash: sha1(&issuer.public_key().subject_public_key.data),
        serial: leaf.raw_serial().to_vec(),
    };
    let (mut ocsp, mut crl) = (Vec::new(), Vec::new());
    for ext in leaf.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for d in aia.iter() {
                    if d.access_method == x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_OCSP
                        && let GeneralName::URI(u) = &d.access_location
                    {
                        ocsp.push(u.to_string());
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for p in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        for n in names {
                            if let GeneralName::URI(u) = n {
                                crl.push(u.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Subject {
        leaf,
        issuer,
        key,
        ocsp,
        crl,
    })
}

// ---- OCSP ------------------------------------------------------------------

const SHA1_ALGORITHM: &[u8] = &[0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00];

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
    out
}

/// The DER `OCSPRequest` for one certificate: no nonce (responders that
/// pre-sign, as most public ones do, ignore it), no signature.
pub fn ocsp_request(key: &CertKey) -> Vec<u8> {
    let cert_id = der(
        SEQUENCE,
        &[
            SHA1_ALGORITHM.to_vec(),
            der(0x04, &key.name_hash),
            der(0x04, &key.key_hash),
            der(0x02, &key.serial),
        ]
        .concat(),
    );
    let request = der(SEQUENCE, &cert_id);
    let list = der(SEQUENCE, &request);
    let tbs = der(SEQUENCE, &list);
    der(SEQUENCE, &tbs)
}

/// What an OCSP response or a CRL says about the leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// `Good`, `Revoked` or `Unknown`.
    pub status: RevocationStatus,
    /// RFC 3339, when revoked.
    pub revoked_at: Option<String>,
    /// RFC 5280 reason name, when revoked and given.
    pub reason: Option<String>,
}

/// RFC 5280 CRLReason names.
pub fn reason_name(code: u8) -> String {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        other => return format!("reason {other}"),
    }
    .to_string()
}

/// `YYYYMMDDHHMMSS[.f]Z` → UTC time.
fn generalized(s: &str) -> Option<OffsetDateTime> {
    let digits = s.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !s.ends_with('Z') {
        return None;
    }
    let n = |a: usize, b: usize| digits[a..b].parse::<u32>().ok();
    let month = ::time::Month::try_from(u8::try_from(n(4, 6)?).ok()?).ok()?;
    let date =
        ::time::Date::from_calendar_date(i32::try_from(n(0, 4)?).ok()?, month, u8::try_from(n(6, 8)?).ok()?).ok()?;
    let t = ::time::Time::from_hms(
        u8::try_from(n(8, 10)?).ok()?,
        u8::try_from(n(10, 12)?).ok()?,
        u8::try_from(n(12, 14)?).ok()?,
    )
    .ok()?;
    Some(::time::PrimitiveDateTime::new(date, t).assume_utc())
}

fn serial_text(serial: &[u8]) -> String {
    crate::model::ids::hex(serial)
}

/// Whether `tbs` carries a valid signature by `spki`.
fn signed_by(spki: &SubjectPublicKeyInfo<'_>, alg: &AlgorithmIdentifier<'_>, sig: &BitString<'_>, tbs: &[u8]) -> bool {
    x509_parser::verify::verify_signature(spki, alg, sig, tbs).is_ok()
}

/// Judge a responder's answer about `key`, issued under `issuer`, at `now`.
pub fn ocsp_answer(
    der: &[u8],
    key: &CertKey,
    issuer: &X509Certificate<'_>,
    now: OffsetDateTime,
) -> Result<Answer, RevocationError> {
    let basic = ocsp::parse(der)?;
    let strip = |s: &[u8]| s.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
    let ours = strip(&key.serial);
    let single = basic
        .responses
        .iter()
        .find(|s| strip(s.serial) == ours && (s.hash_algorithm != SHA1_ALGORITHM || s.issuer_key_hash == key.key_hash))
        .ok_or_else(|| RevocationError::NotAnswered(serial_text(&key.serial)))?;
    // The signature: the issuer's own, or a responder certificate the
    // issuer signed with the OCSP-signing purpose (RFC 6960 4.2.2.2).
    let (_, alg) =
        AlgorithmIdentifier::from_der(basic.signature_algorithm).map_err(|_| RevocationError::OcspSignature)?;
    let (_, sig) = BitString::from_der(basic.signature).map_err(|_| RevocationError::OcspSignature)?;
    let by_issuer = signed_by(issuer.public_key(), &alg, &sig, basic.tbs);
    let by_delegate = || {
        basic.certs.iter().any(|c| {
            let Ok((_, cert)) = X509Certificate::from_der(c) else {
                return false;
            };
            let delegated = cert.issuer().as_raw() == issuer.subject().as_raw()
                && cert.verify_signature(Some(issuer.public_key())).is_ok()
                && matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing)
                && cert.validity().is_valid_at(ASN1Time::from(now));
            delegated && signed_by(cert.public_key(), &alg, &sig, basic.tbs)
        })
    };
    if !by_issuer && !by_delegate() {
        return Err(RevocationError::OcspSignature);
    }
    if let Some(next) = single.next_update
        && generalized(next).is_none_or(|t| t < now)
    {
        return Err(RevocationError::Stale(next.to_string()));
    }
    Ok(match single.status {
        OcspStatus::Good => Answer {
            status: RevocationStatus::Good,
            revoked_at: None,
            reason: None,
        },
        OcspStatus::Unknown => Answer {
            status: RevocationStatus::Unknown,
            revoked_at: None,
            reason: None,
        },
        OcspStatus::Revoked => Answer {
            status: RevocationStatus::Revoked,
            revoked_at: single.revoked_at.and_then(generalized).map(rfc3339),
            reason: single.reason.map(reason_name),
        },
    })
}

// ---- CRLs -------------------------------------------------------------------

/// A verified CRL reduced to what lookups need: built once per issuer and
/// URL, then asked about each leaf of that issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlIndex {
    /// Serial (leading zeros stripped) → (revocation time, reason).
    revoked: HashMap<Vec<u8>, (String, Option<String>)>,
    next_update: Option<OffsetDateTime>,
}

fn strip_zeros(s: &[u8]) -> Vec<u8> {
    s.iter().skip_while(|b| **b == 0).copied().collect()
}

impl CrlIndex {
    /// Parse and verify a CRL (DER, or PEM as some servers publish it)
    /// against the issuer.
    pub fn build(data: &[u8], issuer: &X509Certificate<'_>) -> Result<CrlIndex, RevocationError> {
        let pem;
        let der = if data.starts_with(b"-----BEGIN") {
            pem = x509_parser::pem::parse_x509_pem(data)
                .map_err(|e| RevocationError::Crl(e.to_string()))?
                .1;
            &pem.contents[..]
        } else {
            data
        };
        let (_, crl) = x509_parser::parse_x509_crl(der).map_err(|e| RevocationError::Crl(e.to_string()))?;
        if crl.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(RevocationError::CrlIssuer(crl.issuer().to_string()));
        }
        crl.verify_signature(issuer.public_key())
            .map_err(|_| RevocationError::CrlSignature)?;
        let revoked = crl
            .iter_revoked_certificates()
            .map(|r| {
                let reason = r.reason_code().map(|(_, c)| reason_name(c.0));
                (
                    strip_zeros(r.raw_serial()),
                    (rfc3339(r.revocation_date.to_datetime()), reason),
                )
            })
            .collect();
        Ok(CrlIndex {
            revoked,
            next_update: crl.next_update().map(|t| t.to_datetime()),
        })
    }

    /// Entries in the CRL.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    /// What the CRL says about one serial at `now`: listed is revoked even in
    /// a stale CRL (revocation is final); not listed in a stale one is not good.
    pub fn answer(&self, serial: &[u8], now: OffsetDateTime) -> Result<Answer, RevocationError> {
        if let Some((at, reason)) = self.revoked.get(&strip_zeros(serial)) {
            return Ok(Answer {
                status: RevocationStatus::Revoked,
                revoked_at: Some(at.clone()),
                reason: reason.clone(),
            });
        }
        if let Some(next) = self.next_update
            && next < now
        {
            return Err(RevocationError::Stale(rfc3339(next)));
        }
        Ok(Answer {
            status: RevocationStatus::Good,
            revoked_at: None,
            reason: None,
        })
    }
}

/// The record's words for a check's outcome.
pub fn record(answer: Answer, source: &str, url: &str, detail: String) -> Revocation {
    Revocation {
        status: answer.status,
        source: Some(source.to_string()),
        url: Some(url.to_string()),
        revoked_at: answer.revoked_at,
        reason: answer.reason,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_parses_networks_addresses_and_names() {
        let a = Allowlist::parse(&["10.0.0.0/8", "192.0.2.7", "::1", "[::2]", "OCSP.pki.internal."]).unwrap();
        assert_eq!(a.nets.len(), 4);
        assert_eq!(a.hosts, vec!["ocsp.pki.internal".to_string()]);
        for bad in ["", "10.0.0.0/33", "a b", "-x.example", "1.2.3", "http://x"] {
            let e = Allowlist::parse(&[bad]).unwrap_err();
            assert!(e.to_string().contains("10.0.0.0/8"), "{e}");
        }
    }

    #[test]
    fn allowlist_decides_on_every_address() {
        let a = Allowlist::parse(&["127.0.0.0/8", "ocsp.pki.internal"]).unwrap();
        assert_eq!(a.permit("OCSP.PKI.INTERNAL"), Permit::Named);
        assert_eq!(a.permit("crl.example"), Permit::Resolve);
        let lo: IpAddr = "127.0.0.5".parse().unwrap();
        let out: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(a.decide("crl.example", &[lo]), Ok(()));
        assert_eq!(
            a.decide("crl.example", &[lo, out]),
            Err(Refusal("crl.example (192.0.2.1)".into()))
        );
        assert_eq!(a.decide("192.0.2.1", &[out]), Err(Refusal("192.0.2.1".into())));
        assert_eq!(a.decide("x", &[]), Err(Refusal("x (no address)".into())));
        let empty = Allowlist::default();
        assert!(empty.is_empty());
        assert_eq!(empty.permit("127.0.0.1"), Permit::Refused(Refusal("127.0.0.1".into())));
    }

    #[test]
    fn only_http_urls_with_a_host_are_targets() {
        let t = target("http://127.0.0.1:8080/ocsp").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        assert_eq!(t.literal, Some("127.0.0.1".parse().unwrap()));
        let t = target("https://[::1]/x.crl").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.literal.is_some()), ("::1", 443, true));
        let t = target("http://crl.example/ca.crl").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.literal), ("crl.example", 80, None));
        assert!(
            target("ldap://ldap.example/cn=CA?certificateRevocationList")
                .unwrap_err()
                .contains("not HTTP(S)")
        );
        assert!(target("not a url").is_err());
    }

    #[test]
    fn ocsp_request_is_the_der_of_one_cert_id() {
        let key = CertKey {
            name_hash: vec![1; 20],
            key_hash: vec![2; 20],
            serial: vec![0x00, 0x81],
        };
        let r = ocsp_request(&key);
        // OCSPRequest / TBSRequest / requestList / Request / CertID
        let (req, rest) = ocsp::expect(&r, SEQUENCE, "OCSPRequest").unwrap();
        assert!(rest.is_empty());
        let (tbs, _) = ocsp::expect(req.value, SEQUENCE, "tbs").unwrap();
        let (list, _) = ocsp::expect(tbs.value, SEQUENCE, "list").unwrap();
        let (one, _) = ocsp::expect(list.value, SEQUENCE, "Request").unwrap();
        let (id, _) = ocsp::expect(one.value, SEQUENCE, "CertID").unwrap();
        let (alg, rest) = ocsp::tlv(id.value).unwrap();
        assert_eq!(alg.raw, SHA1_ALGORITHM);
        let (n, rest) = ocsp::expect(rest, 0x04, "n").unwrap();
        let (k, rest) = ocsp::expect(rest, 0x04, "k").unwrap();
        let (s, rest) = ocsp::expect(rest, 0x02, "s").unwrap();
        assert_eq!(
            (n.value, k.value, s.value, rest),
            (&[1; 20][..], &[2; 20][..], &[0, 0x81][..], &[][..])
        );
        // Long forms: a 300-byte body gets 0x82.
        assert_eq!(&der(0x04, &[0; 300])[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn generalized_times_and_reasons() {
        assert_eq!(
            generalized("20261101123456Z").map(rfc3339).as_deref(),
            Some("2026-11-01T12:34:56Z")
        );
        assert_eq!(
            generalized("20261101123456.5Z").map(rfc3339).as_deref(),
            Some("2026-11-01T12:34:56Z")
        );
        assert_eq!(generalized("2026110112345Z"), None);
        assert_eq!(generalized("20261301000000Z"), None);
        assert_eq!(reason_name(1), "keyCompromise");
        assert_eq!(reason_name(7), "reason 7");
    }

    // ---- Real certificates and CRLs (rcgen) ----

    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, IsCa, Issuer,
        KeyIdMethod, KeyPair, RevocationReason, RevokedCertParams, SerialNumber,
    };

    const NOW: i64 = 1_795_000_000; // 2026-11-18

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    struct Ca {
        der: Vec<u8>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let der = p.self_signed(&key).unwrap().der().to_vec();
        Ca {
            der,
            issuer: Issuer::new(p, key),
        }
    }

    fn leaf(ca: &Ca, serial: u64, crl: &str) -> Vec<u8> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        p.serial_number = Some(SerialNumber::from(serial));
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![crl.to_string()],
        }];
        p.signed_by(&key, &ca.issuer).unwrap().der().to_vec()
    }

    fn crl(ca: &Ca, revoked: &[u64], next: i64) -> Vec<u8> {
        CertificateRevocationListParams {
            this_update: at(NOW - 86_400),
            next_update: at(next),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: at(NOW - 3_600),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&ca.issuer)
        .unwrap()
        .der()
        .to_vec()
    }

    #[test]
    fn subject_finds_the_issuer_and_the_distribution_point() {
        let ca = ca("Rev CA");
        let chain = vec![leaf(&ca, 0x1234, "http://127.0.0.1:8080/ca.crl"), ca.der.clone()];
        let s = subject(&chain).unwrap();
        assert_eq!(s.crl, vec!["http://127.0.0.1:8080/ca.crl".to_string()]);
        assert!(s.ocsp.is_empty());
        assert_eq!(s.key.serial, vec![0x12, 0x34]);
        assert_eq!(s.key.key_hash.len(), 20);
        assert!(matches!(subject(&chain[..1]), Err(RevocationError::NoIssuer)));
        let other = self::ca("Other CA");
        assert!(matches!(
            subject(&[chain[0].clone(), other.der.clone()]),
            Err(RevocationError::NoIssuer)
        ));
        assert!(matches!(
            subject(std::slice::from_ref(&ca.der)),
            Err(RevocationError::SelfSigned)
        ));
    }

    #[test]
    fn a_crl_lists_the_revoked_serial_with_time_and_reason() {
        let ca = ca("Rev CA");
        let chain = vec![leaf(&ca, 0x1234, "http://x/ca.crl"), ca.der.clone()];
        let s = subject(&chain).unwrap();
        let index = CrlIndex::build(&crl(&ca, &[7, 0x1234], NOW + 86_400), &s.issuer).unwrap();
        assert_eq!(index.len(), 2);
        let a = index.answer(&s.key.serial, at(NOW)).unwrap();
        assert_eq!(a.status, RevocationStatus::Revoked);
        assert_eq!(a.revoked_at.as_deref(), Some(rfc3339(at(NOW - 3_600)).as_str()));
        assert_eq!(a.reason.as_deref(), Some("keyCompromise"));
        // Not listed: good while fresh, an error once stale; listed stays revoked.
        assert_eq!(index.answer(&[0x55], at(NOW)).unwrap().status, RevocationStatus::Good);
        assert!(matches!(
            index.answer(&[0x55], at(NOW + 2 * 86_400)),
            Err(RevocationError::Stale(_))
        ));
        assert_eq!(
            index.answer(&[0x00, 0x12, 0x34], at(NOW + 2 * 86_400)).unwrap().status,
            RevocationStatus::Revoked
        );
    }

    #[test]
    fn a_crl_from_another_issuer_or_with_a_bad_signature_is_refused() {
        let ca = ca("Rev CA");
        let chain = vec![leaf(&ca, 9, "http://x/ca.crl"), ca.der.clone()];
        let s = subject(&chain).unwrap();
        let other = self::ca("Other CA");
        assert!(matches!(
            CrlIndex::build(&crl(&other, &[9], NOW + 86_400), &s.issuer),
            Err(RevocationError::CrlIssuer(_))
        ));
        // Same name, other key: the signature does not verify.
        let impostor = self::ca("Rev CA");
        assert_eq!(
            CrlIndex::build(&crl(&impostor, &[9], NOW + 86_400), &s.issuer),
            Err(RevocationError::CrlSignature)
        );
        assert!(matches!(
            CrlIndex::build(b"not a crl", &s.issuer),
            Err(RevocationError::Crl(_))
        ));
        let good = crl(&ca, &[9], NOW + 86_400);
        for n in [0, 1, 10, good.len() / 2, good.len() - 1] {
            assert!(CrlIndex::build(&good[..n], &s.issuer).is_err(), "prefix {n}");
        }
    }
}
