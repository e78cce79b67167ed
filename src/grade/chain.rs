//! Certificate-chain validation with every problem named.
//!
//! Two views of one chain: webpki's verdict per trust store (through rustls's
//! `WebPkiServerVerifier`, with our `now`), and our own reading of the parsed
//! certificates, which names each issue and the certificate it concerns.
//! webpki stops at the first error and accepts RSA-1024; the reading does
//! neither. Where they overlap webpki decides path building: a chain some
//! store accepts is never called incomplete.
//!
//! An issue `breaks_trust` when a browser would refuse the chain for it; the
//! rating turns exactly those into T caps. Expiry and signature checks apply
//! to the leaf and the intermediates on the path from the leaf, not to a
//! self-signed root the server also sent (clients use their own copy).

use std::net::IpAddr;

use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::names::{self, NameCheck, NameStatus};
use super::trust::TrustStores;
use super::{Policy, Severity};
pub use crate::model::assessment::{
    CertChainDetail, CertDetail, CertificateChain, ChainIssue, ChainReport, OcspStatus, StoreVerdict,
};
use crate::model::cert::CertInfo;
use crate::model::record::{Revocation, RevocationStatus};

/// What chain analysis needs from the observation.
#[derive(Clone, Copy, Debug)]
pub struct ChainInput<'a> {
    /// The presented chain, leaf first, parsed.
    pub certs: &'a [CertInfo],
    /// The same chain as DER (empty when only parsed fields are known: then
    /// webpki is not consulted and trust is judged from the fields alone).
    pub der: &'a [Vec<u8>],
    pub hostname: Option<&'a str>,
    pub address: IpAddr,
    pub ocsp: Option<OcspStatus>,
    /// The live revocation check's answer (`record.revocation`), when one ran.
    pub revocation: Option<&'a Revocation>,
}

/// Analyse the presented chain against `trust` at `now`.
pub fn analyze(input: &ChainInput<'_>, trust: &TrustStores, policy: &Policy, now: OffsetDateTime) -> ChainReport {
    let certs = input.certs;
    let empty_names = NameCheck {
        status: NameStatus::NotChecked,
        expected: input.hostname.map(str::to_string),
        names: Vec::new(),
    };
    if certs.is_empty() {
        return ChainReport {
            trusted: None,
            publicly_trusted: false,
            trusted_by: Vec::new(),
            stores: Vec::new(),
            name_check: empty_names,
            path: Vec::new(),
            chain_issues: Vec::new(),
        };
    }
    let mut issues = Vec::new();
    let path = build_path(certs);

    // webpki's verdict per store.
    let stores = if input.der.is_empty() {
        Vec::new()
    } else {
        verify_all(input, trust, now)
    };
    let trusted_by: Vec<String> = stores.iter().filter(|v| v.trusted).map(|v| v.store.clone()).collect();
    let webpki_trusted = !trusted_by.is_empty();
    let publicly_trusted = trust
        .stores
        .iter()
        .filter(|s| s.is_public())
        .any(|s| trusted_by.contains(&s.name));

    // Structure: order, extras, the top of the path.
    structure_issues(certs, input.der, &path, trust, webpki_trusted, &mut issues);

    // Each certificate on its own.
    for (i, c) in certs.iter().enumerate() {
        let on_path = path.contains(&i);
        // A self-signed CA above the leaf is a root: clients use their own copy.
        let presented_root = i != 0 && c.self_issued;
        let counts = on_path && !presented_root;
        if let Some(err) = &c.parse_error {
            issues.push(issue(
                "unparsable_certificate",
                Some(i),
                if i == 0 { Severity::High } else { Severity::Medium },
                i == 0,
                format!("certificate #{i} does not parse: {err}"),
            ));
            continue;
        }
        validity_issues(i, c, counts, policy, now, &mut issues);
        key_issues(i, c, &mut issues);
        if !c.self_issued {
            signature_issues(i, c, counts, &mut issues);
        }
    }

    // The leaf's own rules.
    let leaf = &certs[0];
    if leaf.parse_error.is_none() {
        if leaf.san.is_empty() {
            issues.push(issue(
                "missing_san",
                Some(0),
                Severity::Medium,
                false,
                format!(
                    "the leaf {} has no subjectAltName: clients ignore the CN and match no name",
                    label(0, leaf)
                ),
            ));
        }
        if leaf.is_ca {
            issues.push(issue(
                "ca_leaf",
                Some(0),
                Severity::Medium,
                false,
                format!(
                    "the leaf {} has the CA flag set (basicConstraints CA:TRUE)",
                    label(0, leaf)
                ),
            ));
        }
        if publicly_trusted {
            too_long_issue(leaf, policy, &mut issues);
        }
    }
    let live = input.revocation.filter(|r| r.status == RevocationStatus::Revoked);
    if let Some(r) = live {
        issues.push(issue(
            "revoked",
            Some(0),
            Severity::Critical,
            true,
            revoked_detail(&label(0, leaf), r),
        ));
    } else if input.ocsp == Some(OcspStatus::Revoked) {
        issues.push(issue(
            "revoked",
            Some(0),
            Severity::Critical,
            true,
            format!("the stapled OCSP response says the leaf {} is revoked", label(0, leaf)),
        ));
    }

    // The name.
    let name_check = names::check(&leaf.san, input.hostname, input.address);
    if name_check.status == NameStatus::Mismatch {
        let covered = if name_check.names.is_empty() {
            "no names (no subjectAltName)".to_string()
        } else {
            name_check.names.join(", ")
        };
        issues.push(issue(
            "hostname_mismatch",
            Some(0),
            Severity::High,
            false,
            format!(
                "'{}' is not covered by the leaf certificate, which covers {covered}",
                input.hostname.unwrap_or_default()
            ),
        ));
    }

    // webpki refused for a reason none of ours names.
    let named_break = issues.iter().any(|i| i.breaks_trust);
    if !input.der.is_empty() && !webpki_trusted && !named_break {
        let detail = match best_error(&stores) {
            Some((store, err)) => format!("no trust store accepts the chain; {store}: {err}"),
            None => "no trust store is configured".to_string(),
        };
        issues.push(issue("untrusted", None, Severity::High, true, detail));
    }

    let breaks = issues.iter().any(|i| i.breaks_trust);
    let trusted = if breaks {
        Some(false)
    } else if input.der.is_empty() {
        None
    } else {
        Some(webpki_trusted)
    };
    ChainReport {
        trusted,
        publicly_trusted: publicly_trusted && !breaks,
        trusted_by,
        stores,
        name_check,
        path,
        chain_issues: issues,
    }
}

fn issue(id: &str, index: Option<usize>, severity: Severity, breaks_trust: bool, detail: String) -> ChainIssue {
    ChainIssue {
        id: id.to_string(),
        certificate_index: index,
        severity,
        breaks_trust,
        detail,
    }
}

/// `#1 (CN of it)` for messages.
fn label(i: usize, c: &CertInfo) -> String {
    let name = c.common_name.clone().unwrap_or_else(|| c.subject_dn.clone());
    format!("#{i} ({name})")
}

/// Walk issuer links from the leaf through the presented certificates,
/// preferring the next one in sending order when several fit.
fn build_path(certs: &[CertInfo]) -> Vec<usize> {
    let mut path = vec![0];
    let mut cur = 0;
    loop {
        let c = &certs[cur];
        if c.self_issued || c.parse_error.is_some() {
            break;
        }
        let fits = |j: usize| {
            !path.contains(&j)
                && certs[j].parse_error.is_none()
                && !certs[j].subject_dn.is_empty()
                && certs[j].subject_dn == c.issuer_dn
        };
        let next = if cur + 1 < certs.len() && fits(cur + 1) {
            Some(cur + 1)
        } else {
            (0..certs.len()).find(|&j| fits(j))
        };
        match next {
            Some(j) => {
                path.push(j);
                cur = j;
            }
            None => break,
        }
    }
    path
}

fn structure_issues(
    certs: &[CertInfo],
    der: &[Vec<u8>],
    path: &[usize],
    trust: &TrustStores,
    webpki_trusted: bool,
    issues: &mut Vec<ChainIssue>,
) {
    if path.iter().enumerate().any(|(k, &i)| k != i) {
        let walk: Vec<String> = path.iter().map(|i| format!("#{i}")).collect();
        issues.push(issue(
            "wrong_order",
            None,
            Severity::Low,
            false,
            format!(
                "the path from the leaf is {}, but each certificate's issuer must follow it in the order sent",
                walk.join(" → ")
            ),
        ));
    }
    for (i, c) in certs.iter().enumerate() {
        // Unparsable certificates have their own issue.
        if path.contains(&i) || c.parse_error.is_some() {
            continue;
        }
        let duplicate = (0..i).find(|&j| certs[j].thumbprint == c.thumbprint);
        let detail = match duplicate {
            Some(j) => format!("certificate {} is a duplicate of #{j}", label(i, c)),
            None => format!(
                "certificate {} is not on the path from the leaf (it issues none of the certificates sent)",
                label(i, c)
            ),
        };
        issues.push(issue("extra_certificate", Some(i), Severity::Low, false, detail));
    }
    let top = *path.last().unwrap_or(&0);
    let t = &certs[top];
    if t.parse_error.is_some() {
        return;
    }
    if t.self_issued {
        if top == 0 {
            let (breaks, detail) = if webpki_trusted {
                (
                    false,
                    format!(
                        "the leaf {} is self-signed; a configured trust store holds it",
                        label(0, t)
                    ),
                )
            } else {
                (
                    true,
                    format!("the leaf {} is self-signed and no trust store holds it", label(0, t)),
                )
            };
            issues.push(issue("self_signed", Some(0), Severity::High, breaks, detail));
        } else if !webpki_trusted && !trust.has_anchor_subject(&t.subject_dn) {
            issues.push(issue(
                "unknown_issuer",
                Some(top),
                Severity::High,
                true,
                format!(
                    "the root {} sent by the server is in no trust store ({})",
                    label(top, t),
                    store_names(trust)
                ),
            ));
        }
    } else if !webpki_trusted && !trust.has_anchor_subject(&t.issuer_dn) {
        issues.push(missing_issuer(certs, der, top, trust));
    }
}

/// The top of the path names an issuer that was neither sent nor trusted.
/// Two causes read alike there: a root no store holds (the server need not
/// send it), or an intermediate the server forgot. [`missing_issuer_is_root`]
/// tells them apart as far as the chain can; the AIA extension, when it
/// names where the issuer is published, is quoted either way.
fn missing_issuer(certs: &[CertInfo], der: &[Vec<u8>], top: usize, trust: &TrustStores) -> ChainIssue {
    let t = &certs[top];
    let published = der
        .get(top)
        .map(|d| ca_issuers(d))
        .unwrap_or_default()
        .first()
        .map(|url| format!("; the certificate says its issuer is published at {url} (AIA caIssuers)"))
        .unwrap_or_default();
    if missing_issuer_is_root(certs, top) {
        issue(
            "unknown_issuer",
            Some(top),
            Severity::High,
            true,
            format!(
                "untrusted root (not in any trust store): the issuer '{}' of certificate {} is a root CA that no \
                 trust store holds ({}); the server sent the chain up to it. If it is a private CA, trust it \
                 with --ca-bundle{published}",
                t.issuer_dn,
                label(top, t),
                store_names(trust)
            ),
        )
    } else {
        issue(
            "incomplete_chain",
            Some(top),
            Severity::High,
            true,
            format!(
                "incomplete chain: the issuer '{}' of certificate {} was not sent and is not a trusted root ({}): \
                 the chain cannot be built (an intermediate is missing: the server must send it){published}",
                t.issuer_dn,
                label(top, t),
                store_names(trust)
            ),
        )
    }
}

/// Whether the missing issuer of certificate `top` is a root rather than
/// a missing intermediate: its name says so (`… Root …`), or the server
/// sent intermediates and the last of them is a CA whose issuer is
/// missing (servers that send intermediates send them all; the root is
/// the one they may leave out). A lone leaf whose issuer is missing is a
/// missing intermediate: public CAs never issue leaves from a root.
fn missing_issuer_is_root(certs: &[CertInfo], top: usize) -> bool {
    let t = &certs[top];
    let named_root = t
        .issuer_dn
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("CN="))
        .any(|cn| {
            cn.to_ascii_lowercase()
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| w == "root")
        });
    named_root || (top != 0 && t.is_ca)
}

/// The caIssuers URLs of a certificate's Authority Information Access.
fn ca_issuers(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::FromDer;
    let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for d in aia.iter() {
                if d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2"
                    && let GeneralName::URI(url) = &d.access_location
                {
                    urls.push(url.to_string());
                }
            }
        }
    }
    urls
}

fn store_names(trust: &TrustStores) -> String {
    if trust.stores.is_empty() {
        "no store configured".to_string()
    } else {
        trust
            .stores
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn validity_issues(
    i: usize,
    c: &CertInfo,
    counts: bool,
    policy: &Policy,
    now: OffsetDateTime,
    out: &mut Vec<ChainIssue>,
) {
    let sev = |leaf: Severity, other: Severity| if i == 0 { leaf } else { other };
    if let Some(to) = parse_time(&c.valid_to) {
        let days = (to - now).whole_days();
        if to < now {
            out.push(issue(
                "expired",
                Some(i),
                sev(Severity::Critical, Severity::High),
                counts,
                format!(
                    "certificate {} expired on {} ({} days ago)",
                    label(i, c),
                    c.valid_to,
                    -days
                ),
            ));
        } else if counts && days < i64::from(policy.expiry_warning_days) {
            out.push(issue(
                "expiring_soon",
                Some(i),
                Severity::Medium,
                false,
                format!(
                    "certificate {} expires on {} (in {days} days; warning threshold {} days)",
                    label(i, c),
                    c.valid_to,
                    policy.expiry_warning_days
                ),
            ));
        }
    }
    if let Some(from) = parse_time(&c.valid_from)
        && from > now
    {
        out.push(issue(
            "not_yet_valid",
            Some(i),
            Severity::High,
            counts,
            format!("certificate {} is not valid before {}", label(i, c), c.valid_from),
        ));
    }
}

fn key_issues(i: usize, c: &CertInfo, out: &mut Vec<ChainIssue>) {
    let bits = c.key_size.unwrap_or(0);
    let weak = match c.key_algorithm.as_str() {
        "RSA" | "DSA" => c.key_size.is_some() && bits < 2048,
        "EC" => c.key_size.is_some() && bits < 224,
        _ => false,
    };
    if weak {
        let what = match (&c.key_algorithm[..], &c.key_curve) {
            ("EC", Some(curve)) => format!("EC {curve} ({bits} bits; minimum 224)"),
            ("EC", None) => format!("EC {bits} bits (minimum 224)"),
            (alg, _) => format!("{alg} {bits} bits (minimum 2048)"),
        };
        out.push(issue(
            "weak_key",
            Some(i),
            if i == 0 { Severity::High } else { Severity::Medium },
            false,
            format!("certificate {} has a weak key: {what}", label(i, c)),
        ));
    }
    if c.key_algorithm == "RSA" && c.rsa_exponent == Some(1) {
        out.push(issue(
            "rsa_exponent_1",
            Some(i),
            Severity::Critical,
            false,
            format!(
                "certificate {} has RSA public exponent 1: its signatures are forgeable",
                label(i, c)
            ),
        ));
    }
}

/// The hash inside a signature algorithm name, upper case (`SHA256`, `SHA1`, `MD5`, …).
pub fn signature_hash(alg: &str) -> String {
    let a = alg.to_ascii_lowercase().replace('-', "");
    for (needle, name) in [
        ("sha512", "SHA512"),
        ("sha384", "SHA384"),
        ("sha256", "SHA256"),
        ("sha224", "SHA224"),
        ("sha1", "SHA1"),
        ("md5", "MD5"),
        ("md2", "MD2"),
        ("ed25519", "ED25519"),
        ("ed448", "ED448"),
        ("rsassapss", "RSASSA-PSS"),
    ] {
        if a.contains(needle) {
            return name.to_string();
        }
    }
    alg.to_ascii_uppercase()
}

fn signature_issues(i: usize, c: &CertInfo, counts: bool, out: &mut Vec<ChainIssue>) {
    let hash = signature_hash(&c.signature_algorithm);
    let (id, severity) = match hash.as_str() {
        "MD5" => ("md5_signature", Severity::Critical),
        "MD2" => ("md2_signature", Severity::Critical),
        "SHA1" => ("sha1_signature", Severity::High),
        _ => return,
    };
    out.push(issue(
        id,
        Some(i),
        severity,
        counts,
        format!(
            "certificate {} is signed with {} ({hash}, collisions are practical)",
            label(i, c),
            c.signature_algorithm
        ),
    ));
}

/// CA/Browser Forum ballot SC31: publicly trusted leaves issued from
/// 2020-09-01 may be valid at most 398 days.
fn too_long_issue(leaf: &CertInfo, policy: &Policy, out: &mut Vec<ChainIssue>) {
    let (Some(from), Some(to)) = (parse_time(&leaf.valid_from), parse_time(&leaf.valid_to)) else {
        return;
    };
    let cutoff = time::macros::datetime!(2020-09-01 00:00 UTC);
    let days = (to - from).whole_days();
    if from >= cutoff && (to - from) > time::Duration::days(i64::from(policy.max_public_validity_days)) {
        out.push(issue(
            "validity_too_long",
            Some(0),
            Severity::Medium,
            false,
            format!(
                "the publicly trusted leaf {} is valid for {days} days (from {} to {}); the limit is {} days",
                label(0, leaf),
                leaf.valid_from,
                leaf.valid_to,
                policy.max_public_validity_days
            ),
        ));
    }
}

fn verify_all(input: &ChainInput<'_>, trust: &TrustStores, now: OffsetDateTime) -> Vec<StoreVerdict> {
    let ee = CertificateDer::from(input.der[0].as_slice());
    let intermediates: Vec<CertificateDer<'_>> = input.der[1..]
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let name: ServerName<'static> = input
        .hostname
        .and_then(|h| ServerName::try_from(h.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(input.address.into()));
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    trust
        .stores
        .iter()
        .map(|store| {
            use rustls::client::danger::ServerCertVerifier;
            let result = store.verifier().verify_server_cert(&ee, &intermediates, &name, &[], at);
            let error = match result {
                Ok(_) => None,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. },
                )) => None,
                Err(e) => Some(e.to_string()),
            };
            StoreVerdict {
                store: store.name.clone(),
                trusted: error.is_none(),
                error,
            }
        })
        .collect()
}

/// The most telling refusal: anything beats "unknown issuer", which only says
/// that this store holds no anchor for the chain.
fn best_error(stores: &[StoreVerdict]) -> Option<(&str, &str)> {
    let errors = || {
        stores
            .iter()
            .filter_map(|v| v.error.as_deref().map(|e| (v.store.as_str(), e)))
    };
    errors()
        .find(|(_, e)| !e.contains("UnknownIssuer"))
        .or_else(|| errors().next())
}

/// The evidence of a live check's "revoked": source, URL, time, reason.
fn revoked_detail(leaf: &str, r: &Revocation) -> String {
    let source = match r.source.as_deref() {
        Some("crl") => "the CRL",
        _ => "the OCSP responder",
    };
    let mut out = format!(
        "{source} {} says the leaf {leaf} is revoked",
        r.url.as_deref().unwrap_or("?")
    );
    if let Some(at) = &r.revoked_at {
        out.push_str(&format!(" since {at}"));
    }
    if let Some(why) = &r.reason {
        out.push_str(&format!(" ({why})"));
    }
    out
}

// ---- The seed's shape -------------------------------------------------------

/// The presented chain in the seed's shape, one chain (id 1).
pub fn certificate_chain(
    certs: &[CertInfo],
    report: &ChainReport,
    ocsp: Option<OcspStatus>,
    now: OffsetDateTime,
) -> CertificateChain {
    if certs.is_empty() {
        return CertificateChain {
            cert_chain_details: Vec::new(),
        };
    }
    let ms = |t: Option<OffsetDateTime>| t.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    let cert_details = certs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let from = parse_time(&c.valid_from);
            let to = parse_time(&c.valid_to);
            let revoked = ocsp == Some(OcspStatus::Revoked) || report.issues_on(0).any(|x| x.id == "revoked");
            let status = if i == 0 && revoked {
                "Revoked"
            } else if to.is_some_and(|t| t < now) {
                "Expired"
            } else if from.is_some_and(|f| f > now) {
                "Not yet valid"
            } else {
                "Active"
            };
            let mut errors: Vec<String> = report.issues_on(i).map(|x| x.detail.clone()).collect();
            if i == 0 {
                errors.extend(
                    report
                        .chain_issues
                        .iter()
                        .filter(|x| x.certificate_index.is_none())
                        .map(|x| x.detail.clone()),
                );
            }
            CertDetail {
                status: status.to_string(),
                expiration_date: ms(to),
                key_algorithm: c.key_algorithm.clone(),
                algorithm_type: signature_hash(&c.signature_algorithm),
                issue_date: ms(from),
                issuer_dn: c.issuer_dn.clone(),
                subject: c.subject_dn.clone(),
                errors,
            }
        })
        .collect();
    let mismatch = report.name_check.status == NameStatus::Mismatch;
    let overall = match report.trusted {
        Some(false) => "Invalid",
        _ if mismatch => "Invalid",
        Some(true) => "Valid",
        None => "Unknown",
    };
    CertificateChain {
        cert_chain_details: vec![CertChainDetail {
            cert_chain_id: 1,
            overall_status: overall.to_string(),
            is_additional_cert_chain: false,
            is_valid_chain: report.trusted == Some(true),
            cert_details,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(from: &str, to: &str) -> CertInfo {
        CertInfo {
            common_name: Some("a.test".into()),
            valid_from: from.into(),
            valid_to: to.into(),
            ..CertInfo::default()
        }
    }

    #[test]
    fn public_leaf_validity_over_398_days_from_september_2020() {
        let policy = Policy::default();
        let mut out = Vec::new();
        too_long_issue(&leaf("2026-01-01T00:00:00Z", "2027-02-04T00:00:00Z"), &policy, &mut out);
        assert_eq!(out.len(), 1, "399 days");
        assert!(out[0].detail.contains("valid for 399 days"), "{}", out[0].detail);
        assert!(!out[0].breaks_trust);
        out.clear();
        too_long_issue(&leaf("2026-01-01T00:00:00Z", "2027-02-03T00:00:00Z"), &policy, &mut out);
        assert!(out.is_empty(), "398 days is allowed");
        too_long_issue(&leaf("2019-01-01T00:00:00Z", "2021-01-01T00:00:00Z"), &policy, &mut out);
        assert!(out.is_empty(), "issued before the rule");
    }

    mod diagnosis {
        use rcgen::{
            BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };

        use super::super::*;

        struct Ca {
            der: Vec<u8>,
            issuer: Issuer<'static, KeyPair>,
        }

        /// An authorityInfoAccess extension naming `url` as caIssuers.
        fn aia(url: &str) -> CustomExtension {
            let mut desc = vec![
                0x06,
                0x08,
                0x2b,
                0x06,
                0x01,
                0x05,
                0x05,
                0x07,
                0x30,
                0x02,
                0x86,
                url.len() as u8,
            ];
            desc.extend_from_slice(url.as_bytes());
            let mut seq = vec![0x30, desc.len() as u8];
            seq.extend(desc);
            let mut outer = vec![0x30, seq.len() as u8];
            outer.extend(seq);
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], outer)
        }

        fn ca(cn: &str, signer: Option<&Ca>, aia_url: Option<&str>) -> Ca {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name = rcgen::DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.custom_extensions = aia_url.map(aia).into_iter().collect();
            let cert = match signer {
                Some(s) => p.signed_by(&key, &s.issuer).unwrap(),
                None => p.self_signed(&key).unwrap(),
            };
            Ca {
                der: cert.der().to_vec(),
                issuer: Issuer::new(p, key),
            }
        }

        fn leaf(signer: &Ca, aia_url: Option<&str>) -> Vec<u8> {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let mut p = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, "a.test");
            p.custom_extensions = aia_url.map(aia).into_iter().collect();
            p.signed_by(&key, &signer.issuer).unwrap().der().to_vec()
        }

        /// The one trust-breaking issue of `der` against the web roots.
        fn diagnosis(der: &[Vec<u8>]) -> ChainIssue {
            let certs: Vec<CertInfo> = der.iter().map(|d| crate::model::cert::parse_lossy(d)).collect();
            let input = ChainInput {
                revocation: None,
                certs: &certs,
                der,
                hostname: Some("a.test"),
                address: "127.0.0.1".parse().unwrap(),
                ocsp: None,
            };
            let r = analyze(
                &input,
                &TrustStores::web_roots(),
                &Policy::default(),
                OffsetDateTime::now_utc(),
            );
            let breaking: Vec<&ChainIssue> = r.chain_issues.iter().filter(|i| i.breaks_trust).collect();
            assert_eq!(breaking.len(), 1, "{:#?}", r.chain_issues);
            breaking[0].clone()
        }

        #[test]
        fn a_complete_chain_below_an_unknown_root_is_an_untrusted_root() {
            let anchor = ca("Corp Anchor", None, None);
            let issuing = ca(
                "Corp Issuing CA",
                Some(&anchor),
                Some("http://pki.corp.test/anchor.crt"),
            );
            let i = diagnosis(&[leaf(&issuing, None), issuing.der.clone()]);
            assert_eq!((i.id.as_str(), i.certificate_index), ("unknown_issuer", Some(1)));
            assert!(
                i.detail.starts_with("untrusted root (not in any trust store)"),
                "{}",
                i.detail
            );
            assert!(
                i.detail.contains("'CN=Corp Anchor'") && i.detail.contains("--ca-bundle"),
                "{}",
                i.detail
            );
            assert!(
                i.detail
                    .contains("published at http://pki.corp.test/anchor.crt (AIA caIssuers)"),
                "{}",
                i.detail
            );
        }

        #[test]
        fn a_leaf_whose_issuer_is_missing_is_an_incomplete_chain_unless_a_root_issued_it() {
            let anchor = ca("Corp Anchor", None, None);
            let issuing = ca("Corp Issuing CA", Some(&anchor), None);
            let i = diagnosis(&[leaf(&issuing, Some("http://pki.corp.test/issuing.crt"))]);
            assert_eq!((i.id.as_str(), i.certificate_index), ("incomplete_chain", Some(0)));
            assert!(
                i.detail
                    .starts_with("incomplete chain: the issuer 'CN=Corp Issuing CA'"),
                "{}",
                i.detail
            );
            assert!(
                i.detail.contains("published at http://pki.corp.test/issuing.crt"),
                "{}",
                i.detail
            );
            let i = diagnosis(&[leaf(&issuing, None)]);
            assert!(!i.detail.contains("published at"), "no AIA, no URL: {}", i.detail);
            // A private root that issues leaves itself, named as a root.
            let root = ca("Lab Root CA", None, None);
            let i = diagnosis(&[leaf(&root, None)]);
            assert_eq!(i.id, "unknown_issuer", "{}", i.detail);
            assert!(i.detail.starts_with("untrusted root"), "{}", i.detail);
        }

        #[test]
        fn root_names_are_read_as_words() {
            let c = |issuer: &str, is_ca: bool| CertInfo {
                issuer_dn: issuer.into(),
                is_ca,
                ..CertInfo::default()
            };
            assert!(missing_issuer_is_root(&[c("CN=ACME Root CA X1, O=ACME", false)], 0));
            assert!(missing_issuer_is_root(&[c("CN=root", false)], 0));
            assert!(!missing_issuer_is_root(&[c("CN=Grassroots Issuing CA", false)], 0));
            assert!(!missing_issuer_is_root(&[c("O=Root Inc, CN=Issuing", false)], 0));
            assert!(missing_issuer_is_root(&[c("CN=x", false), c("CN=Issuing", true)], 1));
            assert!(!missing_issuer_is_root(&[c("CN=x", false), c("CN=Issuing", false)], 1));
        }
    }

    #[test]
    fn signature_hash_names() {
        assert_eq!(signature_hash("sha256WithRSAEncryption"), "SHA256");
        assert_eq!(signature_hash("ecdsa-with-SHA384"), "SHA384");
        assert_eq!(signature_hash("sha1WithRSAEncryption"), "SHA1");
        assert_eq!(signature_hash("ecdsa-with-SHA1"), "SHA1");
        assert_eq!(signature_hash("md5WithRSAEncryption"), "MD5");
        assert_eq!(signature_hash("ED25519"), "ED25519");
        assert_eq!(signature_hash("rsassaPss"), "RSASSA-PSS");
    }
}
