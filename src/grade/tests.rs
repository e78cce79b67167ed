//! Grading, case by case, on hand-built observations: every band, every cap
//! (the letter and the reason), every chain issue on a generated PKI.

use std::collections::BTreeMap;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::OffsetDateTime;
use time::macros::datetime;

use super::chain::{self, ChainInput};
use super::rating::{self, RatingInput};
use super::*;
use crate::model::record::cipher_entry;
use crate::model::record::{
    Category, EndpointRecord, Features, Handshake, KeyExchange, PROTOCOL_NAMES, ProtocolCiphers, SuiteRef, Transport,
};
use crate::wire::CipherSuite;

const NOW: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);
const YEAR: &str = "max-age=31536000; includeSubDomains";

// ---- Builders ---------------------------------------------------------------

/// A suite as (protocol, IANA code, observed key exchange).
type Suite = (&'static str, u16, &'static str);

/// TLS 1.3 and TLS 1.2 ECDHE-AEAD, as a well-configured server offers.
const MODERN: [Suite; 5] = [
    ("TLSv1.3", 0x1302, "ECDH x25519"),
    ("TLSv1.3", 0x1301, "ECDH x25519"),
    ("TLSv1.3", 0x1303, "ECDH x25519"),
    ("TLSv1.2", 0xc030, "ECDH x25519"),
    ("TLSv1.2", 0xc02f, "ECDH x25519"),
];

fn record(protocols: &[&str], suites: &[Suite]) -> EndpointRecord {
    let mut r = EndpointRecord::new(
        "127.0.0.1".parse().unwrap(),
        443,
        Some("a.test".into()),
        Category::Discovered,
        "2026-06-01T00:00:00Z".into(),
    );
    r.transport = Transport::Tls;
    r.protocols = Some(
        PROTOCOL_NAMES
            .iter()
            .map(|p| (p.to_string(), protocols.contains(p)))
            .collect::<BTreeMap<_, _>>(),
    );
    for (p, code, kex) in suites {
        let entry = cipher_entry(CipherSuite(*code), Some(kex).filter(|k| !k.is_empty()).copied());
        match r.protocol_ciphers.iter_mut().find(|pc| pc.protocol == *p) {
            Some(pc) => pc.ciphers.push(entry),
            None => r.protocol_ciphers.push(ProtocolCiphers {
                protocol: p.to_string(),
                cipher_pref_order: Some("server".into()),
                compressors: "NULL".into(),
                ciphers: vec![entry],
            }),
        }
    }
    r.features = Some(Features {
        secure_renegotiation: Some(true),
        compression: vec!["NULL".into()],
        ..Features::default()
    });
    if let Some((p, code, _)) = suites.first() {
        r.handshake = Some(Handshake {
            protocol: Some(p.to_string()),
            cipher_suite: Some(SuiteRef::from(CipherSuite(*code))),
            group: Some("x25519".into()),
            ..Handshake::default()
        });
    }
    r
}

fn modern() -> EndpointRecord {
    record(&["TLSv1.2", "TLSv1.3"], &MODERN)
}

/// `modern()` plus extra suites (and their protocols).
fn modern_plus(extra: &[Suite]) -> EndpointRecord {
    let mut suites = MODERN.to_vec();
    suites.extend_from_slice(extra);
    let mut protocols = vec!["TLSv1.2", "TLSv1.3"];
    for (p, _, _) in extra {
        if !protocols.contains(p) {
            protocols.push(p);
        }
    }
    record(&protocols, &suites)
}

fn cert(cn: &str, issuer: &str, alg: &str, bits: u32) -> CertInfo {
    CertInfo {
        common_name: Some(cn.into()),
        subject_dn: format!("CN={cn}"),
        issuer_dn: format!("CN={issuer}"),
        san: vec![cn.into()],
        thumbprint: format!("thumb-{cn}"),
        valid_from: "2026-01-01T00:00:00Z".into(),
        valid_to: "2026-12-31T00:00:00Z".into(),
        key_algorithm: alg.into(),
        key_size: Some(bits),
        key_curve: (alg == "EC").then(|| format!("curve{bits}")),
        rsa_exponent: (alg == "RSA").then_some(65537),
        signature_algorithm: "sha256WithRSAEncryption".into(),
        self_issued: cn == issuer,
        is_ca: cn == issuer,
        ..CertInfo::default()
    }
}

fn rsa_leaf(bits: u32) -> CertInfo {
    cert("a.test", "Test CA", "RSA", bits)
}

fn ec_leaf(bits: u32) -> CertInfo {
    cert("a.test", "Test CA", "EC", bits)
}

/// A chain every store accepted, with the name matching and nothing wrong.
fn clean_chain() -> ChainReport {
    ChainReport {
        trusted: Some(true),
        publicly_trusted: true,
        trusted_by: vec!["webpki-roots".into()],
        stores: Vec::new(),
        name_check: NameCheck {
            status: NameStatus::Match,
            expected: Some("a.test".into()),
            names: vec!["a.test".into()],
        },
        path: vec![0],
        chain_issues: Vec::new(),
    }
}

fn chain_with(id: &str, breaks_trust: bool, detail: &str) -> ChainReport {
    let mut c = clean_chain();
    c.trusted = Some(!breaks_trust);
    c.chain_issues.push(ChainIssue {
        id: id.into(),
        certificate_index: Some(0),
        severity: Severity::High,
        breaks_trust,
        detail: detail.into(),
    });
    c
}

/// Rate with HTTP observed and `hsts` as the STS header (or none).
fn rate_full(
    r: &EndpointRecord,
    leaf: &CertInfo,
    chain: &ChainReport,
    probes: Vulnerabilities,
    hsts: Option<&str>,
) -> Grade {
    let v = vulns::evaluate(r, &probes);
    let h = hsts.map(hsts::parse_hsts);
    rating::rate(&RatingInput {
        record: r,
        leaf: Some(leaf),
        chain,
        vulnerabilities: &v,
        hsts: h.as_ref(),
        http_observed: true,
        hsts_min_max_age: Policy::default().hsts_min_max_age,
    })
    .unwrap()
}

/// Rate with an RSA-2048 leaf, a clean chain, no probe results and a year of HSTS.
fn rate(r: &EndpointRecord) -> Grade {
    rate_full(
        r,
        &rsa_leaf(2048),
        &clean_chain(),
        Vulnerabilities::default(),
        Some(YEAR),
    )
}

#[track_caller]
fn assert_cap(g: &Grade, letter: Letter, id: &str, reason_has: &str) {
    let cap = g
        .caps
        .iter()
        .find(|c| c.id == id && c.letter == letter)
        .unwrap_or_else(|| panic!("no {letter} cap `{id}` in {:#?}", g.caps));
    assert!(
        cap.reason.contains(reason_has),
        "cap {id} reason `{}` lacks `{reason_has}`",
        cap.reason
    );
}

#[track_caller]
fn assert_no_cap(g: &Grade, id: &str) {
    assert!(
        !g.caps.iter().any(|c| c.id == id),
        "unexpected cap `{id}` in {:#?}",
        g.caps
    );
}

// ---- Scores and bands -------------------------------------------------------

#[test]
fn modern_server_with_long_hsts_is_a_plus_93() {
    let g = rate(&modern());
    assert_eq!(
        (g.protocol_score, g.key_exchange_score, g.cipher_score, g.score),
        (100, 90, 90, 93)
    );
    assert_eq!(g.letter, Letter::APlus, "{g:#?}");
    assert!(g.caps.is_empty() && g.warnings.is_empty() && g.if_trusted.is_none());
}

#[test]
fn protocol_score_is_best_plus_worst_over_two() {
    assert_eq!(rating::protocol_points("SSLv2"), Some(0));
    assert_eq!(rating::protocol_points("SSLv3"), Some(80));
    assert_eq!(rating::protocol_points("TLSv1.0"), Some(90));
    assert_eq!(rating::protocol_points("TLSv1.1"), Some(95));
    assert_eq!(rating::protocol_points("TLSv1.2"), Some(100));
    assert_eq!(rating::protocol_points("TLSv1.3"), Some(100));
    let g = rate(&modern_plus(&[("TLSv1.0", 0xc014, "ECDH x25519")]));
    assert_eq!(g.protocol_score, 95, "TLS 1.0 + 1.3: (90 + 100) / 2");
    let g = rate(&modern_plus(&[("SSLv3", 0xc014, "ECDH x25519")]));
    assert_eq!(g.protocol_score, 90, "SSLv3 + 1.3: (80 + 100) / 2");
    let g = rate(&record(
        &["TLSv1.1", "TLSv1.2"],
        &[("TLSv1.2", 0xc02f, "ECDH x25519"), ("TLSv1.1", 0xc013, "ECDH x25519")],
    ));
    assert_eq!(g.protocol_score, 98, "(95 + 100) / 2 = 97.5, rounded half up");
}

#[test]
fn key_exchange_bands_for_rsa_certificate_keys() {
    assert_eq!(rating::key_exchange_points(511), 20);
    assert_eq!(rating::key_exchange_points(512), 40);
    assert_eq!(rating::key_exchange_points(1023), 40);
    assert_eq!(rating::key_exchange_points(1024), 80);
    assert_eq!(rating::key_exchange_points(2047), 80);
    assert_eq!(rating::key_exchange_points(2048), 90);
    assert_eq!(rating::key_exchange_points(4095), 90);
    assert_eq!(rating::key_exchange_points(4096), 100);
    // With a group stronger than the key, the key decides.
    let strong = record(&["TLSv1.3"], &[("TLSv1.3", 0x1302, "ECDH secp384r1")]);
    let score = |bits| {
        let mut r = strong.clone();
        r.handshake = None;
        rate_full(
            &r,
            &rsa_leaf(bits),
            &clean_chain(),
            Vulnerabilities::default(),
            Some(YEAR),
        )
        .key_exchange_score
    };
    assert_eq!(score(4096), 100);
    assert_eq!(score(3072), 90);
    assert_eq!(score(2047), 80, "RSA bits are exact: 2047 is not 2048");
    assert_eq!(score(1024), 80);
    assert_eq!(score(768), 40);
    assert_eq!(score(384), 20);
}

#[test]
fn key_exchange_bands_for_ec_keys_use_rsa_equivalents() {
    let mut r = record(&["TLSv1.3"], &[("TLSv1.3", 0x1302, "ECDH secp521r1")]);
    r.handshake = None;
    let score = |bits| {
        rate_full(
            &r,
            &ec_leaf(bits),
            &clean_chain(),
            Vulnerabilities::default(),
            Some(YEAR),
        )
    };
    assert_eq!(score(521).key_exchange_score, 100, "P-521 ≈ RSA 15360");
    assert_eq!(score(384).key_exchange_score, 100, "P-384 ≈ RSA 7680");
    assert_eq!(score(256).key_exchange_score, 90, "P-256 ≈ RSA 3072");
    assert_eq!(score(224).key_exchange_score, 90, "P-224 ≈ RSA 2048");
    assert_eq!(score(192).key_exchange_score, 80, "P-192 ≈ RSA 1024");
    assert_eq!(score(160).key_exchange_score, 80, "160-bit ≈ RSA 1024");
    let g = score(112);
    assert_eq!(g.key_exchange_score, 40, "112-bit ≈ RSA 512");
    assert_cap(&g, Letter::F, "key_exchange_weak", "EC curve112");
}

#[test]
fn key_exchange_takes_the_weaker_of_certificate_and_dh_parameters() {
    let mut r = record(
        &["TLSv1.2"],
        &[("TLSv1.2", 0x009f, "DH 1024"), ("TLSv1.2", 0xc030, "ECDH secp384r1")],
    );
    r.handshake = None;
    let g = rate_full(
        &r,
        &rsa_leaf(4096),
        &clean_chain(),
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!(g.key_exchange_score, 80);
    assert_cap(
        &g,
        Letter::B,
        "key_exchange_80",
        "DH 1024-bit parameters (TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    );
    assert_eq!(g.letter, Letter::B);
    // The record's smallest DH prime counts too.
    let mut r = record(&["TLSv1.3"], &[("TLSv1.3", 0x1302, "ECDH secp384r1")]);
    r.handshake = None;
    r.key_exchange = Some(KeyExchange {
        groups: vec!["secp384r1".into(), "ffdhe2048".into()],
        dh_min_bits: Some(3072),
        ..KeyExchange::default()
    });
    let g = rate_full(
        &r,
        &rsa_leaf(4096),
        &clean_chain(),
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!(g.key_exchange_score, 90, "ffdhe2048 is the weakest: 2048");
}

#[test]
fn cipher_score_is_strongest_plus_weakest_over_two() {
    assert_eq!(rating::cipher_points(0), 0);
    assert_eq!(rating::cipher_points(56), 20);
    assert_eq!(rating::cipher_points(112), 20);
    assert_eq!(rating::cipher_points(127), 20);
    assert_eq!(rating::cipher_points(128), 80);
    assert_eq!(rating::cipher_points(255), 80);
    assert_eq!(rating::cipher_points(256), 100);
    let only = |s: Suite| rate(&record(&[s.0], &[s])).cipher_score;
    assert_eq!(only(("TLSv1.2", 0xc02f, "ECDH x25519")), 80, "AES-128 alone");
    assert_eq!(only(("TLSv1.2", 0xc030, "ECDH x25519")), 100, "AES-256 alone");
    assert_eq!(
        only(("TLSv1.2", 0xcca8, "ECDH x25519")),
        100,
        "ChaCha20 counts as 256 bits"
    );
    let g = rate(&record(
        &["TLSv1.2"],
        &[("TLSv1.2", 0xc030, "ECDH x25519"), ("TLSv1.2", 0xc012, "ECDH x25519")],
    ));
    assert_eq!(g.cipher_score, 60, "AES-256 + 3DES (112 bits): (100 + 20) / 2");
}

#[test]
fn letters_follow_the_score_thresholds() {
    let cases = [
        (100, Letter::A),
        (80, Letter::A),
        (79, Letter::B),
        (65, Letter::B),
        (64, Letter::C),
        (50, Letter::C),
        (49, Letter::D),
        (35, Letter::D),
        (34, Letter::E),
        (20, Letter::E),
        (19, Letter::F),
        (0, Letter::F),
    ];
    for (score, letter) in cases {
        assert_eq!(Letter::from_score(score), letter, "score {score}");
    }
}

#[test]
fn a_3des_server_scores_77_and_is_capped_at_c() {
    // TLS 1.2 with AES-128-GCM and 3DES, RSA 2048: protocol 100, key 90,
    // cipher (80 + 20) / 2 = 50 → 30 + 27 + 20 = 77, a B by score, C by cap.
    let r = record(
        &["TLSv1.2"],
        &[("TLSv1.2", 0xc02f, "ECDH x25519"), ("TLSv1.2", 0xc012, "ECDH x25519")],
    );
    let g = rate(&r);
    assert_eq!((g.cipher_score, g.score), (50, 77));
    assert_eq!(g.letter, Letter::C, "the 64-bit block cap (3DES with TLS 1.2) is C");
    assert_cap(
        &g,
        Letter::C,
        "64bit_block_with_modern_protocols",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA (TLSv1.2)",
    );
}

// ---- F caps -----------------------------------------------------------------

#[test]
fn f_cap_for_sslv2() {
    let mut r = modern();
    r.protocols.as_mut().unwrap().insert("SSLv2".into(), true);
    let g = rate(&r);
    assert_eq!(g.letter, Letter::F);
    assert_cap(&g, Letter::F, "sslv2", "SSLv2 is supported");
    assert_cap(&g, Letter::F, "drown", "SSLv2 accepted");
    assert_eq!(g.protocol_score, 50, "(0 + 100) / 2");
}

#[test]
fn sslv2_cipher_kinds_from_the_enumeration_count() {
    let mut r = modern();
    r.protocols.as_mut().unwrap().insert("SSLv2".into(), true);
    r.protocol_ciphers.insert(
        0,
        ProtocolCiphers {
            protocol: "SSLv2".into(),
            cipher_pref_order: None,
            compressors: "NULL".into(),
            ciphers: vec![crate::model::record::CipherEntry {
                code: 0x020080,
                name: "SSL_CK_RC4_128_EXPORT40_WITH_MD5".into(),
                kex_info: "RSA".into(),
                forward_secrecy: false,
                bits: 40,
                export: true,
                anonymous: false,
                aead: false,
                encryption: "RC4".into(),
            }],
        },
    );
    let g = rate(&r);
    assert_eq!(g.letter, Letter::F);
    assert_cap(&g, Letter::F, "sslv2", "SSLv2 is supported");
    assert_cap(
        &g,
        Letter::F,
        "export_suites",
        "SSL_CK_RC4_128_EXPORT40_WITH_MD5 (SSLv2)",
    );
    assert_cap(
        &g,
        Letter::F,
        "cipher_under_112_bits",
        "SSL_CK_RC4_128_EXPORT40_WITH_MD5 (SSLv2)",
    );
    assert_eq!(g.cipher_score, 60, "(100 + 20) / 2: the 40-bit SSLv2 kind counts");
}

#[test]
fn only_sslv2_zeroes_the_protocol_score() {
    let mut r = record(&["SSLv2"], &[]);
    r.handshake = Some(Handshake {
        protocol: Some("SSLv2".into()),
        cipher_suite: Some(SuiteRef::from(CipherSuite(0x0004))),
        ..Handshake::default()
    });
    let g = rate(&r);
    assert_eq!((g.protocol_score, g.letter), (0, Letter::F));
    assert_cap(&g, Letter::F, "protocol_score_zero", "only SSLv2");
}

#[test]
fn f_cap_when_sslv3_is_the_best_protocol() {
    let r = record(&["SSLv3"], &[("SSLv3", 0x002f, "RSA")]);
    let g = rate(&r);
    assert_eq!(g.letter, Letter::F);
    assert_cap(&g, Letter::F, "sslv3_best", "SSLv3 is the best protocol");
    assert_cap(&g, Letter::C, "poodle", "TLS_RSA_WITH_AES_128_CBC_SHA (SSLv3)");
}

#[test]
fn f_cap_for_export_suites_and_export_key_exchange_is_40() {
    let g = rate(&modern_plus(&[("TLSv1.0", 0x0008, "RSA")]));
    assert_eq!(g.letter, Letter::F);
    assert_cap(
        &g,
        Letter::F,
        "export_suites",
        "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA (TLSv1.0)",
    );
    assert_eq!(g.key_exchange_score, 40);
    assert_cap(&g, Letter::F, "key_exchange_weak", "export key exchange accepted");
}

#[test]
fn f_cap_for_ciphers_under_112_bits() {
    let g = rate(&modern_plus(&[("TLSv1.2", 0x0015, "DH 2048")]));
    assert_eq!(g.letter, Letter::F);
    assert_cap(
        &g,
        Letter::F,
        "cipher_under_112_bits",
        "TLS_DHE_RSA_WITH_DES_CBC_SHA (TLSv1.2)",
    );
    assert_eq!(g.cipher_score, 60, "(100 + 20) / 2");
}

#[test]
fn f_cap_and_zero_score_for_null_encryption_only() {
    let r = record(&["TLSv1.2"], &[("TLSv1.2", 0x0002, "RSA")]);
    let g = rate(&r);
    assert_eq!((g.cipher_score, g.letter), (0, Letter::F));
    assert_cap(&g, Letter::F, "cipher_score_zero", "TLS_RSA_WITH_NULL_SHA");
    assert_cap(&g, Letter::F, "cipher_under_112_bits", "TLS_RSA_WITH_NULL_SHA");
}

#[test]
fn f_cap_for_key_exchange_score_40_or_less() {
    let g = rate_full(
        &modern(),
        &rsa_leaf(768),
        &clean_chain(),
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!((g.key_exchange_score, g.letter), (40, Letter::F));
    assert_cap(&g, Letter::F, "key_exchange_weak", "RSA 768-bit certificate key");
    let r = modern_plus(&[("TLSv1.2", 0x009e, "DH 768")]);
    let g = rate(&r);
    assert_eq!(g.key_exchange_score, 40);
    assert_cap(&g, Letter::F, "key_exchange_weak", "DH 768-bit parameters");
    assert_eq!(verdict(&r, "logjam").status, VulnStatus::Vulnerable);
}

#[test]
fn f_cap_and_zero_key_score_for_anonymous_key_exchange() {
    let g = rate(&modern_plus(&[("TLSv1.2", 0x00a6, "DH 2048")]));
    assert_eq!((g.key_exchange_score, g.letter), (0, Letter::F));
    assert_cap(
        &g,
        Letter::F,
        "anonymous_key_exchange",
        "TLS_DH_anon_WITH_AES_128_GCM_SHA256 (TLSv1.2)",
    );
    assert_cap(
        &g,
        Letter::F,
        "key_exchange_score_zero",
        "anonymous key exchange accepted",
    );
}

#[test]
fn f_cap_for_md5_signed_leaf_shows_t_with_f_if_trusted() {
    let mut leaf = rsa_leaf(2048);
    leaf.signature_algorithm = "md5WithRSAEncryption".into();
    let ca = cert("Test CA", "Test CA", "RSA", 2048);
    let report = chain::analyze(
        &cert_input(&[leaf.clone(), ca]),
        &TrustStores::empty(),
        &Policy::default(),
        NOW,
    );
    let g = rate_full(&modern(), &leaf, &report, Vulnerabilities::default(), Some(YEAR));
    assert_cap(&g, Letter::F, "md5_signature", "md5WithRSAEncryption");
    assert_cap(&g, Letter::T, "md5_signature", "MD5");
    assert_eq!((g.letter, g.if_trusted), (Letter::T, Some(Letter::F)));
}

#[test]
fn f_cap_for_md2_signed_intermediate() {
    let leaf = cert("a.test", "Inter", "RSA", 2048);
    let mut inter = cert("Inter", "Root", "RSA", 2048);
    inter.signature_algorithm = "md2WithRSAEncryption".into();
    let report = chain::analyze(
        &cert_input(&[leaf.clone(), inter]),
        &TrustStores::empty(),
        &Policy::default(),
        NOW,
    );
    let g = rate_full(&modern(), &leaf, &report, Vulnerabilities::default(), Some(YEAR));
    assert_cap(&g, Letter::F, "md2_signature", "#1 (Inter)");
}

#[test]
fn f_cap_for_rsa_exponent_1() {
    let mut leaf = rsa_leaf(2048);
    leaf.rsa_exponent = Some(1);
    let report = chain::analyze(
        &cert_input(&[leaf.clone()]),
        &TrustStores::empty(),
        &Policy::default(),
        NOW,
    );
    let issue = report.chain_issues.iter().find(|i| i.id == "rsa_exponent_1").unwrap();
    assert_eq!((issue.certificate_index, issue.severity), (Some(0), Severity::Critical));
    let g = rate_full(&modern(), &leaf, &report, Vulnerabilities::default(), Some(YEAR));
    assert_cap(&g, Letter::F, "rsa_exponent_1", "RSA public exponent 1");
}

#[test]
fn f_cap_for_each_probed_vulnerability() {
    type Set = fn(&mut Vulnerabilities);
    let cases: [(&str, Set, &str); 5] = [
        ("heartbleed", |v| v.heartbleed = Some(true), "Heartbleed"),
        ("ccs_injection", |v| v.ccs_injection = Some(true), "CCS injection"),
        ("ticketbleed", |v| v.ticketbleed = Some(true), "Ticketbleed"),
        ("robot", |v| v.robot = Some(true), "ROBOT"),
        (
            "insecure_renegotiation",
            |v| v.insecure_renegotiation = Some(true),
            "renegotiation",
        ),
    ];
    for (id, set, name) in cases {
        let mut v = Vulnerabilities::default();
        set(&mut v);
        let g = rate_full(&modern(), &rsa_leaf(2048), &clean_chain(), v, Some(YEAR));
        assert_eq!(g.letter, Letter::F, "{id}");
        assert_cap(&g, Letter::F, id, name);
        assert_cap(&g, Letter::F, id, "probe: the server mishandled");
    }
    // Tested and safe: no cap, no note.
    let safe = Vulnerabilities {
        heartbleed: Some(false),
        ccs_injection: Some(false),
        ticketbleed: Some(false),
        robot: Some(false),
        insecure_renegotiation: Some(false),
    };
    let g = rate_full(&modern(), &rsa_leaf(2048), &clean_chain(), safe, Some(YEAR));
    assert_eq!(g.letter, Letter::APlus);
    assert!(g.notes.is_empty(), "{:?}", g.notes);
}

#[test]
fn untested_probes_are_noted_not_capped() {
    let g = rate_full(
        &modern(),
        &rsa_leaf(2048),
        &clean_chain(),
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!(g.letter, Letter::APlus);
    assert!(
        g.notes
            .iter()
            .any(|n| n.contains("not probed: heartbleed, ccs_injection")),
        "{:?}",
        g.notes
    );
}

// ---- C caps -----------------------------------------------------------------

#[test]
fn c_cap_without_tls_1_2() {
    let r = record(
        &["TLSv1.0", "TLSv1.1"],
        &[("TLSv1.1", 0xc014, "ECDH x25519"), ("TLSv1.0", 0xc014, "ECDH x25519")],
    );
    let g = rate(&r);
    assert_eq!(g.letter, Letter::C);
    assert_cap(
        &g,
        Letter::C,
        "no_tls12",
        "TLS 1.2 is not supported (only TLSv1.0, TLSv1.1)",
    );
    assert_cap(&g, Letter::B, "old_protocols", "TLSv1.0, TLSv1.1");
}

#[test]
fn tls_1_3_only_is_not_capped_for_missing_tls_1_2() {
    let r = record(&["TLSv1.3"], &MODERN[..3]);
    let g = rate(&r);
    assert_no_cap(&g, "no_tls12");
    assert_eq!(g.letter, Letter::APlus);
}

#[test]
fn c_cap_for_rc4_with_tls_1_1_or_later() {
    let g = rate(&modern_plus(&[("TLSv1.2", 0x0005, "RSA")]));
    assert_eq!(g.letter, Letter::C);
    assert_cap(
        &g,
        Letter::C,
        "rc4_with_modern_protocols",
        "TLS_RSA_WITH_RC4_128_SHA (TLSv1.2)",
    );
    assert_cap(&g, Letter::B, "rc4", "TLS_RSA_WITH_RC4_128_SHA");
}

#[test]
fn rc4_only_on_tls_1_0_is_b_not_c() {
    let g = rate(&modern_plus(&[("TLSv1.0", 0x0005, "RSA")]));
    assert_no_cap(&g, "rc4_with_modern_protocols");
    assert_cap(&g, Letter::B, "rc4", "TLS_RSA_WITH_RC4_128_SHA (TLSv1.0)");
    assert_eq!(g.letter, Letter::B);
}

#[test]
fn c_cap_for_64bit_block_ciphers_with_tls_1_1_or_later() {
    let g = rate(&modern_plus(&[("TLSv1.1", 0x000a, "RSA")]));
    assert_eq!(g.letter, Letter::C);
    assert_cap(
        &g,
        Letter::C,
        "64bit_block_with_modern_protocols",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA (TLSv1.1)",
    );
    // On TLS 1.0 only it is SWEET32 still, but no C.
    let g = rate(&modern_plus(&[("TLSv1.0", 0x000a, "RSA")]));
    assert_no_cap(&g, "64bit_block_with_modern_protocols");
}

#[test]
fn c_cap_for_poodle() {
    let g = rate(&modern_plus(&[("SSLv3", 0x0035, "RSA")]));
    assert_eq!(g.letter, Letter::C);
    assert_cap(
        &g,
        Letter::C,
        "poodle",
        "CBC suites accepted: TLS_RSA_WITH_AES_256_CBC_SHA (SSLv3)",
    );
    assert_cap(&g, Letter::B, "old_protocols", "SSLv3");
}

#[test]
fn c_cap_for_crime() {
    let mut r = modern();
    r.protocol_ciphers[1].compressors = "NULL, DEFLATE".into();
    let g = rate(&r);
    assert_eq!(g.letter, Letter::C);
    assert_cap(&g, Letter::C, "crime", "TLS compression accepted: DEFLATE");
    let mut r = modern();
    r.features.as_mut().unwrap().compression = vec!["NULL".into(), "DEFLATE".into()];
    assert_cap(&rate(&r), Letter::C, "crime", "DEFLATE");
}

// ---- B caps -----------------------------------------------------------------

#[test]
fn b_cap_for_old_protocols() {
    let g = rate(&modern_plus(&[
        ("TLSv1.0", 0xc014, "ECDH x25519"),
        ("TLSv1.1", 0xc014, "ECDH x25519"),
    ]));
    assert_eq!(g.letter, Letter::B);
    assert_cap(
        &g,
        Letter::B,
        "old_protocols",
        "old protocols supported: TLSv1.0, TLSv1.1",
    );
}

#[test]
fn b_cap_without_forward_secrecy() {
    let r = record(&["TLSv1.2"], &[("TLSv1.2", 0x009d, "RSA"), ("TLSv1.2", 0x009c, "RSA")]);
    let g = rate(&r);
    assert_eq!(g.letter, Letter::B);
    assert_cap(&g, Letter::B, "no_forward_secrecy", "no suite with forward secrecy");
    assert_no_cap(&g, "no_aead");
}

#[test]
fn b_cap_without_aead() {
    let r = record(
        &["TLSv1.2"],
        &[("TLSv1.2", 0xc014, "ECDH x25519"), ("TLSv1.2", 0xc013, "ECDH x25519")],
    );
    let g = rate(&r);
    assert_eq!(g.letter, Letter::B);
    assert_cap(&g, Letter::B, "no_aead", "no AEAD suite");
    assert_no_cap(&g, "no_forward_secrecy");
}

#[test]
fn b_cap_for_key_exchange_score_80() {
    let g = rate_full(
        &modern(),
        &rsa_leaf(1024),
        &clean_chain(),
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!((g.key_exchange_score, g.letter), (80, Letter::B));
    assert_cap(&g, Letter::B, "key_exchange_80", "RSA 1024-bit certificate key");
    assert_no_cap(&g, "key_exchange_weak");
}

// ---- T and M ----------------------------------------------------------------

#[test]
fn t_for_a_trust_breaking_chain_issue_keeps_the_letter_it_would_have() {
    let chain = chain_with(
        "expired",
        true,
        "certificate #0 (a.test) expired on 2026-01-01T00:00:00Z",
    );
    let g = rate_full(
        &modern(),
        &rsa_leaf(2048),
        &chain,
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!((g.letter, g.if_trusted), (Letter::T, Some(Letter::APlus)));
    assert_cap(&g, Letter::T, "expired", "expired on 2026-01-01");
}

#[test]
fn t_shows_even_when_the_server_would_be_f() {
    let mut r = modern();
    r.protocols.as_mut().unwrap().insert("SSLv2".into(), true);
    let chain = chain_with("self_signed", true, "the leaf #0 (a.test) is self-signed");
    let g = rate_full(&r, &rsa_leaf(2048), &chain, Vulnerabilities::default(), Some(YEAR));
    assert_eq!((g.letter, g.if_trusted), (Letter::T, Some(Letter::F)));
}

#[test]
fn m_for_a_name_mismatch() {
    let chain = chain_with(
        "hostname_mismatch",
        false,
        "'a.test' is not covered by the leaf certificate, which covers b.test",
    );
    let g = rate_full(
        &modern(),
        &rsa_leaf(2048),
        &chain,
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!((g.letter, g.if_trusted), (Letter::M, Some(Letter::APlus)));
    assert_cap(&g, Letter::M, "hostname_mismatch", "which covers b.test");
}

#[test]
fn t_takes_precedence_over_m() {
    let mut chain = chain_with("hostname_mismatch", false, "mismatch");
    chain.chain_issues.push(ChainIssue {
        id: "unknown_issuer".into(),
        certificate_index: Some(1),
        severity: Severity::High,
        breaks_trust: true,
        detail: "root not trusted".into(),
    });
    let g = rate_full(
        &modern(),
        &rsa_leaf(2048),
        &chain,
        Vulnerabilities::default(),
        Some(YEAR),
    );
    assert_eq!(g.letter, Letter::T);
    assert_cap(&g, Letter::M, "hostname_mismatch", "mismatch");
    assert_cap(&g, Letter::T, "unknown_issuer", "root not trusted");
}

// ---- A−, A, A+ --------------------------------------------------------------

#[test]
fn a_minus_without_tls_1_3() {
    let g = rate(&record(&["TLSv1.2"], &MODERN[3..]));
    assert_eq!(g.letter, Letter::AMinus);
    assert_eq!(g.warnings, ["TLS 1.3 is not supported"]);
}

#[test]
fn a_minus_without_secure_renegotiation() {
    let mut r = modern();
    r.features.as_mut().unwrap().secure_renegotiation = Some(false);
    let g = rate(&r);
    assert_eq!(g.letter, Letter::AMinus);
    assert_eq!(g.warnings, ["secure renegotiation (RFC 5746) is not supported"]);
    // Unknown is not a warning.
    r.features.as_mut().unwrap().secure_renegotiation = None;
    assert_eq!(rate(&r).letter, Letter::APlus);
}

#[test]
fn a_minus_for_short_hsts() {
    let g = rate_full(
        &modern(),
        &rsa_leaf(2048),
        &clean_chain(),
        Vulnerabilities::default(),
        Some("max-age=86400"),
    );
    assert_eq!(g.letter, Letter::AMinus);
    assert_eq!(
        g.warnings,
        ["HSTS max-age 86400 s is shorter than 180 days (15552000 s)"]
    );
}

#[test]
fn a_minus_for_malformed_hsts() {
    let g = rate_full(
        &modern(),
        &rsa_leaf(2048),
        &clean_chain(),
        Vulnerabilities::default(),
        Some("max-age=soon"),
    );
    assert_eq!(g.letter, Letter::AMinus);
    assert!(
        g.warnings[0].starts_with("HSTS header is malformed: max-age `soon`"),
        "{:?}",
        g.warnings
    );
}

#[test]
fn a_plus_needs_hsts_of_180_days() {
    let at = |hsts| {
        rate_full(
            &modern(),
            &rsa_leaf(2048),
            &clean_chain(),
            Vulnerabilities::default(),
            hsts,
        )
        .letter
    };
    assert_eq!(at(Some("max-age=15552000")), Letter::APlus, "exactly 180 days");
    assert_eq!(at(Some("max-age=15551999")), Letter::AMinus);
    assert_eq!(at(None), Letter::A, "no HSTS header alone keeps A");
}

#[test]
fn without_an_http_probe_the_best_is_a_with_a_note() {
    let r = modern();
    let v = vulns::evaluate(&r, &Vulnerabilities::default());
    let g = rating::rate(&RatingInput {
        record: &r,
        leaf: Some(&rsa_leaf(2048)),
        chain: &clean_chain(),
        vulnerabilities: &v,
        hsts: None,
        http_observed: false,
        hsts_min_max_age: Policy::default().hsts_min_max_age,
    })
    .unwrap();
    assert_eq!(g.letter, Letter::A);
    assert!(g.notes.iter().any(|n| n.contains("HTTP not probed")));
}

#[test]
fn warnings_do_not_lift_a_capped_letter() {
    let g = rate(&record(&["TLSv1.2"], &[("TLSv1.2", 0xc014, "ECDH x25519")]));
    assert_eq!(g.letter, Letter::B);
    assert_eq!(g.warnings, ["TLS 1.3 is not supported"]);
}

// ---- Partial observations ---------------------------------------------------

#[test]
fn without_enumeration_the_negotiated_suite_is_graded_with_a_note() {
    let mut r = modern();
    r.protocols = None;
    r.protocol_ciphers.clear();
    let g = rate(&r);
    assert_eq!(g.protocol_score, 100);
    assert!(
        g.notes
            .iter()
            .any(|n| n.contains("graded on the negotiated TLSv1.3 only")),
        "{:?}",
        g.notes
    );
    assert!(g.notes.iter().any(|n| n.contains("cipher suites not enumerated")));
}

#[test]
fn nothing_to_rate_without_tls() {
    let r = EndpointRecord::new(
        "127.0.0.1".parse().unwrap(),
        80,
        None,
        Category::Unsecured,
        "2026-06-01T00:00:00Z".into(),
    );
    let a = assess(&observe(&r, &[]), &TrustStores::empty(), &Policy::default(), NOW);
    assert!(a.grade.is_none());
    assert_eq!(a.no_grade_reason.as_deref(), Some("no TLS or SSL protocol observed"));
    assert_eq!(
        a.levels.security_rating,
        Some(Level::NotSecure),
        "an unsecured endpoint"
    );
}

// ---- Chains: CertInfo-only checks ---------------------------------------------

fn cert_input(certs: &[CertInfo]) -> ChainInput<'_> {
    ChainInput {
        certs,
        der: &[],
        hostname: Some("a.test"),
        address: "127.0.0.1".parse().unwrap(),
        ocsp: None,
        revocation: None,
    }
}

fn ids(r: &ChainReport) -> Vec<&str> {
    r.chain_issues.iter().map(|i| i.id.as_str()).collect()
}

#[track_caller]
fn issue<'a>(r: &'a ChainReport, id: &str) -> &'a ChainIssue {
    r.chain_issues
        .iter()
        .find(|i| i.id == id)
        .unwrap_or_else(|| panic!("no issue `{id}` in {:#?}", r.chain_issues))
}

#[test]
fn weak_keys_are_judged_by_exact_bits() {
    let certs = [cert("a.test", "Inter", "RSA", 2047), cert("Inter", "Root", "EC", 192)];
    let r = chain::analyze(&cert_input(&certs), &TrustStores::empty(), &Policy::default(), NOW);
    let leaf = r
        .chain_issues
        .iter()
        .find(|i| i.id == "weak_key" && i.certificate_index == Some(0))
        .unwrap();
    assert!(leaf.detail.contains("RSA 2047 bits (minimum 2048)"), "{}", leaf.detail);
    assert_eq!(leaf.severity, Severity::High);
    let inter = r
        .chain_issues
        .iter()
        .find(|i| i.id == "weak_key" && i.certificate_index == Some(1))
        .unwrap();
    assert!(
        inter.detail.contains("EC curve192 (192 bits; minimum 224)"),
        "{}",
        inter.detail
    );
    let ok = [cert("a.test", "Inter", "RSA", 2048), cert("Inter", "Root", "EC", 224)];
    let r = chain::analyze(&cert_input(&ok), &TrustStores::empty(), &Policy::default(), NOW);
    assert!(!ids(&r).contains(&"weak_key"));
}

#[test]
fn sha1_signature_on_leaf_or_intermediate_breaks_trust_but_not_on_a_root() {
    let mut leaf = cert("a.test", "Inter", "RSA", 2048);
    leaf.signature_algorithm = "sha1WithRSAEncryption".into();
    let mut inter = cert("Inter", "Root", "RSA", 2048);
    inter.signature_algorithm = "ecdsa-with-SHA1".into();
    let mut root = cert("Root", "Root", "RSA", 2048);
    root.signature_algorithm = "sha1WithRSAEncryption".into();
    let r = chain::analyze(
        &cert_input(&[leaf, inter, root]),
        &TrustStores::empty(),
        &Policy::default(),
        NOW,
    );
    let sha1: Vec<(Option<usize>, bool)> = r
        .chain_issues
        .iter()
        .filter(|i| i.id == "sha1_signature")
        .map(|i| (i.certificate_index, i.breaks_trust))
        .collect();
    assert_eq!(
        sha1,
        [(Some(0), true), (Some(1), true)],
        "a root's own signature is not checked"
    );
    assert_eq!(r.trusted, Some(false));
    let g = rate_full(&modern(), &rsa_leaf(2048), &r, Vulnerabilities::default(), Some(YEAR));
    assert_eq!(g.letter, Letter::T);
    assert_cap(&g, Letter::T, "sha1_signature", "sha1WithRSAEncryption");
}

#[test]
fn md5_signature_is_named() {
    let mut leaf = cert("a.test", "Root", "RSA", 2048);
    leaf.signature_algorithm = "md5WithRSAEncryption".into();
    let r = chain::analyze(&cert_input(&[leaf]), &TrustStores::empty(), &Policy::default(), NOW);
    let i = issue(&r, "md5_signature");
    assert_eq!(
        (i.certificate_index, i.severity, i.breaks_trust),
        (Some(0), Severity::Critical, true)
    );
}

#[test]
fn missing_san_and_ca_flag_on_the_leaf() {
    let mut leaf = cert("a.test", "Root", "RSA", 2048);
    leaf.san.clear();
    leaf.is_ca = true;
    let r = chain::analyze(&cert_input(&[leaf]), &TrustStores::empty(), &Policy::default(), NOW);
    assert!(issue(&r, "missing_san").detail.contains("no subjectAltName"));
    assert!(issue(&r, "ca_leaf").detail.contains("CA:TRUE"));
    let m = issue(&r, "hostname_mismatch");
    assert!(m.detail.contains("covers no names (no subjectAltName)"), "{}", m.detail);
}

#[test]
fn expiring_soon_follows_the_policy() {
    let mut leaf = cert("a.test", "Root", "RSA", 2048);
    leaf.valid_to = "2026-06-20T00:00:00Z".into();
    let r = chain::analyze(
        &cert_input(&[leaf.clone()]),
        &TrustStores::empty(),
        &Policy::default(),
        NOW,
    );
    let i = issue(&r, "expiring_soon");
    assert!(
        i.detail.contains("in 19 days; warning threshold 30 days"),
        "{}",
        i.detail
    );
    assert!(!i.breaks_trust);
    let policy = Policy {
        expiry_warning_days: 10,
        ..Policy::default()
    };
    let r = chain::analyze(&cert_input(&[leaf]), &TrustStores::empty(), &policy, NOW);
    assert!(!ids(&r).contains(&"expiring_soon"));
}

#[test]
fn an_expired_extra_certificate_does_not_break_trust() {
    let leaf = cert("a.test", "Root", "RSA", 2048);
    let mut stray = cert("Stray", "Other", "RSA", 2048);
    stray.valid_to = "2020-01-01T00:00:00Z".into();
    let r = chain::analyze(
        &cert_input(&[leaf, stray]),
        &TrustStores::empty(),
        &Policy::default(),
        NOW,
    );
    let e = issue(&r, "expired");
    assert_eq!((e.certificate_index, e.breaks_trust), (Some(1), false));
    assert_eq!(issue(&r, "extra_certificate").certificate_index, Some(1));
}

#[test]
fn unparsable_leaf_breaks_trust() {
    let bad = crate::model::cert::parse_lossy(b"junk");
    let r = chain::analyze(&cert_input(&[bad]), &TrustStores::empty(), &Policy::default(), NOW);
    let i = issue(&r, "unparsable_certificate");
    assert!(i.breaks_trust);
}

#[test]
fn validity_over_398_days_counts_only_for_publicly_trusted_leaves() {
    // A private CA's five-year leaf is fine (see the PKI tests below for the
    // chain); the public rule itself is checked in chain.rs's unit test.
    let mut leaf = cert("a.test", "Root", "RSA", 2048);
    leaf.valid_from = "2026-01-01T00:00:00Z".into();
    leaf.valid_to = "2031-01-01T00:00:00Z".into();
    let r = chain::analyze(&cert_input(&[leaf]), &TrustStores::empty(), &Policy::default(), NOW);
    assert!(!ids(&r).contains(&"validity_too_long"));
}

// ---- Chains: a generated PKI, verified by webpki ------------------------------

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
}

fn ca(cn: &str, signer: Option<&Ca>) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = datetime!(2025-01-01 00:00 UTC);
    p.not_after = datetime!(2035-01-01 00:00 UTC);
    let cert = match signer {
        Some(s) => p.signed_by(&key, &s.issuer).unwrap(),
        None => p.self_signed(&key).unwrap(),
    };
    Ca {
        der: cert.der().to_vec(),
        issuer: Issuer::new(p, key),
    }
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("no-san"));
    p.not_before = datetime!(2026-01-01 00:00 UTC);
    p.not_after = datetime!(2026-12-31 00:00 UTC);
    p
}

fn sign(p: &CertificateParams, signer: &Ca) -> Vec<u8> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    p.signed_by(&key, &signer.issuer).unwrap().der().to_vec()
}

struct Pki {
    root: Ca,
    inter: Ca,
    stores: TrustStores,
}

fn pki() -> Pki {
    let root = ca("Grade Test Root", None);
    let inter = ca("Grade Test Intermediate", Some(&root));
    let mut stores = TrustStores::web_roots();
    stores
        .push(TrustStore::from_der("bundle:test", trust::StoreKind::Memory, std::slice::from_ref(&root.der)).unwrap());
    Pki { root, inter, stores }
}

fn analyze_der(
    pki: &Pki,
    der: &[Vec<u8>],
    hostname: Option<&str>,
    ocsp: Option<OcspStatus>,
) -> (ChainReport, Vec<CertInfo>) {
    let certs: Vec<CertInfo> = der.iter().map(|d| crate::model::cert::parse_lossy(d)).collect();
    let input = ChainInput {
        certs: &certs,
        der,
        hostname,
        address: "127.0.0.1".parse().unwrap(),
        ocsp,
        revocation: None,
    };
    (chain::analyze(&input, &pki.stores, &Policy::default(), NOW), certs)
}

fn observe<'a>(r: &'a EndpointRecord, der: &'a [Vec<u8>]) -> Observation<'a> {
    Observation {
        record: r,
        chain_der: der,
        ocsp: None,
        vulnerabilities: Vulnerabilities::default(),
        http: None,
    }
}

/// The chain issue `id` becomes a T cap naming `evidence`, over an otherwise A+ server.
#[track_caller]
fn assert_t(r: &ChainReport, id: &str, evidence: &str) {
    let g = rate_full(&modern(), &rsa_leaf(2048), r, Vulnerabilities::default(), Some(YEAR));
    assert_eq!(
        (g.letter, g.if_trusted),
        (Letter::T, Some(Letter::APlus)),
        "{:#?}",
        g.caps
    );
    assert_cap(&g, Letter::T, id, evidence);
}

#[test]
fn a_private_ca_chain_is_trusted_by_its_bundle_only() {
    let pki = pki();
    let leaf = sign(&leaf_params(&["a.test"]), &pki.inter);
    let der = vec![leaf, pki.inter.der.clone()];
    let (r, certs) = analyze_der(&pki, &der, Some("a.test"), None);
    assert_eq!(r.trusted, Some(true), "{:#?}", r);
    assert_eq!(r.trusted_by, ["bundle:test"]);
    assert!(!r.publicly_trusted);
    assert_eq!(r.stores[0].store, "webpki-roots");
    assert!(
        r.stores[0].error.as_deref().unwrap().contains("UnknownIssuer"),
        "{:?}",
        r.stores[0]
    );
    assert_eq!(r.name_check.status, NameStatus::Match);
    assert_eq!(r.path, [0, 1]);
    assert!(r.chain_issues.is_empty(), "{:#?}", r.chain_issues);
    // The seed's shape.
    let seed = chain::certificate_chain(&certs, &r, None, NOW);
    let d = &seed.cert_chain_details[0];
    assert_eq!(
        (
            d.cert_chain_id,
            d.overall_status.as_str(),
            d.is_valid_chain,
            d.is_additional_cert_chain
        ),
        (1, "Valid", true, false)
    );
    let c = &d.cert_details[0];
    assert_eq!(
        (c.status.as_str(), c.key_algorithm.as_str(), c.algorithm_type.as_str()),
        ("Active", "EC", "SHA256")
    );
    assert_eq!(c.issue_date, Some(1_767_225_600_000), "2026-01-01 in epoch ms");
    assert_eq!(c.expiration_date, Some(1_798_675_200_000), "2026-12-31 in epoch ms");
    assert_eq!(c.subject, "CN=a.test");
    assert_eq!(c.issuer_dn, "CN=Grade Test Intermediate");
    let json = serde_json::to_value(&seed).unwrap();
    assert!(json["cert_chain_details"][0]["cert_details"][1]["issuer_DN"].is_string());
}

#[test]
fn expired_leaf_is_named_and_graded_t() {
    let pki = pki();
    let mut p = leaf_params(&["a.test"]);
    p.not_before = datetime!(2025-01-01 00:00 UTC);
    p.not_after = datetime!(2026-01-01 00:00 UTC);
    let der = vec![sign(&p, &pki.inter), pki.inter.der.clone()];
    let (r, certs) = analyze_der(&pki, &der, Some("a.test"), None);
    let i = issue(&r, "expired");
    assert_eq!(
        (i.certificate_index, i.severity, i.breaks_trust),
        (Some(0), Severity::Critical, true)
    );
    assert!(
        i.detail.contains("expired on 2026-01-01T00:00:00Z (151 days ago)"),
        "{}",
        i.detail
    );
    assert_eq!(r.trusted, Some(false));
    assert!(
        r.stores[1].error.as_deref().unwrap().contains("expired"),
        "{:?}",
        r.stores[1]
    );
    assert_eq!(
        chain::certificate_chain(&certs, &r, None, NOW).cert_chain_details[0].cert_details[0].status,
        "Expired"
    );
    let g = rate_full(&modern(), &certs[0], &r, Vulnerabilities::default(), Some(YEAR));
    assert_eq!((g.letter, g.if_trusted), (Letter::T, Some(Letter::APlus)));
    assert_cap(&g, Letter::T, "expired", "#0 (a.test) expired");
}

#[test]
fn not_yet_valid_leaf_is_named() {
    let pki = pki();
    let mut p = leaf_params(&["a.test"]);
    p.not_before = datetime!(2026-07-01 00:00 UTC);
    let der = vec![sign(&p, &pki.inter), pki.inter.der.clone()];
    let (r, certs) = analyze_der(&pki, &der, Some("a.test"), None);
    let i = issue(&r, "not_yet_valid");
    assert!(
        i.breaks_trust && i.detail.contains("not valid before 2026-07-01T00:00:00Z"),
        "{i:?}"
    );
    assert_t(&r, "not_yet_valid", "not valid before 2026-07-01");
    assert_eq!(
        chain::certificate_chain(&certs, &r, None, NOW).cert_chain_details[0].cert_details[0].status,
        "Not yet valid"
    );
}

#[test]
fn self_signed_leaf_is_untrusted_unless_a_store_holds_it() {
    let pki = pki();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = leaf_params(&["a.test"]).self_signed(&key).unwrap().der().to_vec();
    let (r, _) = analyze_der(&pki, std::slice::from_ref(&leaf), Some("a.test"), None);
    let i = issue(&r, "self_signed");
    assert!(i.breaks_trust && i.detail.contains("no trust store holds it"), "{i:?}");
    assert_eq!(ids(&r), ["self_signed"], "one root cause, one issue");
    let g = rate_full(&modern(), &rsa_leaf(2048), &r, Vulnerabilities::default(), Some(YEAR));
    assert_cap(&g, Letter::T, "self_signed", "self-signed");
}

#[test]
fn a_self_signed_leaf_held_by_a_bundle_is_trusted() {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = leaf_params(&["a.test"]).self_signed(&key).unwrap().der().to_vec();
    let mut stores = TrustStores::empty();
    stores.push(TrustStore::from_der("bundle:pinned", trust::StoreKind::Memory, std::slice::from_ref(&leaf)).unwrap());
    let certs = [crate::model::cert::parse_lossy(&leaf)];
    let der = [leaf];
    let input = ChainInput {
        der: &der,
        ..cert_input(&certs)
    };
    let r = chain::analyze(&input, &stores, &Policy::default(), NOW);
    let i = issue(&r, "self_signed");
    assert!(
        !i.breaks_trust && i.detail.contains("a configured trust store holds it"),
        "{i:?}"
    );
    assert_eq!(
        (r.trusted, r.trusted_by.as_slice()),
        (Some(true), ["bundle:pinned".to_string()].as_slice())
    );
}

#[test]
fn unknown_root_sent_by_the_server_is_named() {
    let pki = pki();
    let other_root = ca("Unknown Root", None);
    let other_inter = ca("Unknown Intermediate", Some(&other_root));
    let der = vec![
        sign(&leaf_params(&["a.test"]), &other_inter),
        other_inter.der.clone(),
        other_root.der.clone(),
    ];
    let (r, _) = analyze_der(&pki, &der, Some("a.test"), None);
    let i = issue(&r, "unknown_issuer");
    assert_eq!((i.certificate_index, i.breaks_trust), (Some(2), true));
    assert!(
        i.detail.contains("root #2 (Unknown Root)") && i.detail.contains("webpki-roots, bundle:test"),
        "{}",
        i.detail
    );
    assert_eq!(r.path, [0, 1, 2]);
    assert_t(&r, "unknown_issuer", "Unknown Root");
}

#[test]
fn missing_intermediate_makes_an_incomplete_chain() {
    let pki = pki();
    let der = vec![sign(&leaf_params(&["a.test"]), &pki.inter)];
    let (r, _) = analyze_der(&pki, &der, Some("a.test"), None);
    let i = issue(&r, "incomplete_chain");
    assert_eq!((i.certificate_index, i.breaks_trust), (Some(0), true));
    assert!(i.detail.contains("issuer 'CN=Grade Test Intermediate'"), "{}", i.detail);
    assert_eq!(r.trusted, Some(false));
    assert_t(&r, "incomplete_chain", "the chain cannot be built");
    // Issued straight by a trusted root, nothing is missing.
    let der = vec![sign(&leaf_params(&["a.test"]), &pki.root)];
    let (r, _) = analyze_der(&pki, &der, Some("a.test"), None);
    assert_eq!(
        (r.trusted, r.chain_issues.len()),
        (Some(true), 0),
        "{:#?}",
        r.chain_issues
    );
}

#[test]
fn chain_sent_out_of_order_is_named_but_trusted() {
    let pki = pki();
    let sub = ca("Grade Test Sub", Some(&pki.inter));
    let der = vec![
        sign(&leaf_params(&["a.test"]), &sub),
        pki.inter.der.clone(),
        sub.der.clone(),
    ];
    let (r, _) = analyze_der(&pki, &der, Some("a.test"), None);
    assert_eq!(r.path, [0, 2, 1]);
    assert!(issue(&r, "wrong_order").detail.contains("#0 → #2 → #1"));
    assert_eq!(r.trusted, Some(true));
    assert_eq!(ids(&r), ["wrong_order"]);
}

#[test]
fn extra_and_duplicate_certificates_are_named() {
    let pki = pki();
    let stray = ca("Stray CA", None);
    let der = vec![
        sign(&leaf_params(&["a.test"]), &pki.inter),
        pki.inter.der.clone(),
        stray.der.clone(),
        pki.inter.der.clone(),
    ];
    let (r, _) = analyze_der(&pki, &der, Some("a.test"), None);
    assert_eq!(r.trusted, Some(true));
    let extra: Vec<(Option<usize>, &str)> = r
        .chain_issues
        .iter()
        .filter(|i| i.id == "extra_certificate")
        .map(|i| (i.certificate_index, i.detail.as_str()))
        .collect();
    assert_eq!(extra.len(), 2, "{extra:?}");
    assert!(extra[0].1.contains("#2 (Stray CA) is not on the path"));
    assert!(extra[1].1.contains("#3 (Grade Test Intermediate) is a duplicate of #1"));
}

#[test]
fn hostname_mismatch_is_named_and_graded_m() {
    let pki = pki();
    let der = vec![
        sign(&leaf_params(&["b.test", "*.c.test"]), &pki.inter),
        pki.inter.der.clone(),
    ];
    let (r, certs) = analyze_der(&pki, &der, Some("a.test"), None);
    assert_eq!(r.trusted, Some(true), "the chain itself is fine");
    assert_eq!(r.name_check.status, NameStatus::Mismatch);
    assert!(
        issue(&r, "hostname_mismatch")
            .detail
            .contains("which covers b.test, *.c.test")
    );
    assert_eq!(
        chain::certificate_chain(&certs, &r, None, NOW).cert_chain_details[0].overall_status,
        "Invalid"
    );
    let g = rate_full(&modern(), &certs[0], &r, Vulnerabilities::default(), Some(YEAR));
    assert_eq!((g.letter, g.if_trusted), (Letter::M, Some(Letter::APlus)));
}

#[test]
fn an_address_target_is_matched_by_ip_san_or_not_checked_without_m() {
    let pki = pki();
    let der = vec![sign(&leaf_params(&["b.test"]), &pki.inter), pki.inter.der.clone()];
    let (r, certs) = analyze_der(&pki, &der, None, None);
    assert_eq!(r.name_check.status, NameStatus::NotChecked);
    assert_eq!(r.name_check.names, ["b.test"]);
    assert_eq!(
        r.trusted,
        Some(true),
        "webpki's name error does not count against the chain"
    );
    assert!(r.chain_issues.is_empty(), "{:#?}", r.chain_issues);
    let g = rate_full(&modern(), &certs[0], &r, Vulnerabilities::default(), Some(YEAR));
    assert_eq!(g.letter, Letter::APlus);
    let der = vec![
        sign(&leaf_params(&["b.test", "127.0.0.1"]), &pki.inter),
        pki.inter.der.clone(),
    ];
    let (r, _) = analyze_der(&pki, &der, None, None);
    assert_eq!(r.name_check.status, NameStatus::Match);
}

#[test]
fn ca_flag_on_the_leaf_is_named_and_webpki_refusal_reported() {
    let pki = pki();
    let mut p = leaf_params(&["a.test"]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let der = vec![sign(&p, &pki.inter), pki.inter.der.clone()];
    let (r, _) = analyze_der(&pki, &der, Some("a.test"), None);
    assert!(issue(&r, "ca_leaf").detail.contains("CA flag"));
    let u = issue(&r, "untrusted");
    assert!(u.breaks_trust && u.detail.contains("CaUsedAsEndEntity"), "{}", u.detail);
    assert_t(&r, "untrusted", "no trust store accepts the chain");
}

#[test]
fn revoked_by_stapled_ocsp() {
    let pki = pki();
    let der = vec![sign(&leaf_params(&["a.test"]), &pki.inter), pki.inter.der.clone()];
    let (r, certs) = analyze_der(&pki, &der, Some("a.test"), Some(OcspStatus::Revoked));
    let i = issue(&r, "revoked");
    assert_eq!((i.severity, i.breaks_trust), (Severity::Critical, true));
    assert_f_revoked(&r, "stapled OCSP response says the leaf #0 (a.test) is revoked");
    assert_eq!(r.trusted, Some(false));
    let seed = chain::certificate_chain(&certs, &r, Some(OcspStatus::Revoked), NOW);
    assert_eq!(seed.cert_chain_details[0].cert_details[0].status, "Revoked");
    assert!(!seed.cert_chain_details[0].is_valid_chain);
    let (r, _) = analyze_der(&pki, &der, Some("a.test"), Some(OcspStatus::Good));
    assert_eq!(r.trusted, Some(true));
}

/// A revoked leaf is an F (SSL Labs), shown as F rather than T.
fn assert_f_revoked(r: &ChainReport, evidence: &str) {
    let g = rate_full(&modern(), &rsa_leaf(2048), r, Vulnerabilities::default(), Some(YEAR));
    assert_eq!((g.letter, g.if_trusted), (Letter::F, None), "{:#?}", g.caps);
    assert_cap(&g, Letter::F, "revoked", evidence);
    assert!(!g.caps.iter().any(|c| c.letter == Letter::T), "{:#?}", g.caps);
}

#[test]
fn revoked_by_a_live_check_names_source_url_time_and_reason() {
    use crate::model::record::{Revocation, RevocationStatus};
    let pki = pki();
    let der = vec![sign(&leaf_params(&["a.test"]), &pki.inter), pki.inter.der.clone()];
    let certs: Vec<CertInfo> = der.iter().map(|d| crate::model::cert::parse_lossy(d)).collect();
    let live = |status| Revocation {
        status,
        source: Some("crl".into()),
        url: Some("http://127.0.0.1:9/ca.crl".into()),
        revoked_at: (status == RevocationStatus::Revoked).then(|| "2026-11-01T00:00:00Z".into()),
        reason: (status == RevocationStatus::Revoked).then(|| "keyCompromise".into()),
        detail: String::new(),
    };
    let analyze = |r: &Revocation| {
        let input = ChainInput {
            certs: &certs,
            der: &der,
            hostname: Some("a.test"),
            address: "127.0.0.1".parse().unwrap(),
            ocsp: None,
            revocation: Some(r),
        };
        chain::analyze(&input, &pki.stores, &Policy::default(), NOW)
    };
    let r = analyze(&live(RevocationStatus::Revoked));
    assert_eq!(
        issue(&r, "revoked").detail,
        "the CRL http://127.0.0.1:9/ca.crl says the leaf #0 (a.test) is revoked since 2026-11-01T00:00:00Z (keyCompromise)"
    );
    assert_f_revoked(&r, "the CRL http://127.0.0.1:9/ca.crl says");
    let seed = chain::certificate_chain(&certs, &r, None, NOW);
    assert_eq!(seed.cert_chain_details[0].cert_details[0].status, "Revoked");
    for s in [
        RevocationStatus::Good,
        RevocationStatus::Unknown,
        RevocationStatus::NotChecked,
        RevocationStatus::Error,
    ] {
        let r = analyze(&live(s));
        assert_eq!(r.trusted, Some(true), "{s:?}");
        assert!(!ids(&r).contains(&"revoked"), "{s:?}");
    }
}

#[test]
fn no_trust_store_means_untrusted_with_the_reason() {
    let pki = pki();
    let der = vec![
        sign(&leaf_params(&["a.test"]), &pki.inter),
        pki.inter.der.clone(),
        pki.root.der.clone(),
    ];
    let certs: Vec<CertInfo> = der.iter().map(|d| crate::model::cert::parse_lossy(d)).collect();
    let input = ChainInput {
        certs: &certs,
        der: &der,
        hostname: Some("a.test"),
        address: "127.0.0.1".parse().unwrap(),
        ocsp: None,
        revocation: None,
    };
    let r = chain::analyze(&input, &TrustStores::empty(), &Policy::default(), NOW);
    assert!(issue(&r, "unknown_issuer").detail.contains("no store configured"));
    assert_eq!(r.trusted, Some(false));
}

// ---- The whole assessment and the seed shape ------------------------------------

#[test]
fn assess_end_to_end_private_pki_with_hsts() {
    let pki = pki();
    let der = vec![sign(&leaf_params(&["a.test"]), &pki.inter), pki.inter.der.clone()];
    let mut r = modern();
    r.chain = der.iter().map(|d| crate::model::cert::parse_lossy(d)).collect();
    r.certificate = r.chain.first().cloned();
    let http = HttpHeaders {
        status: 200,
        headers: vec![
            ("Server".into(), "nginx".into()),
            (
                "Strict-Transport-Security".into(),
                "max-age=63072000; includeSubDomains".into(),
            ),
        ],
    };
    let obs = Observation {
        record: &r,
        chain_der: &der,
        ocsp: None,
        vulnerabilities: Vulnerabilities::default(),
        http: Some(&http),
    };
    let a = assess(&obs, &pki.stores, &Policy::default(), NOW);
    let g = a.grade.as_ref().unwrap();
    assert_eq!(g.letter, Letter::APlus, "{g:#?}");
    assert_eq!(g.key_exchange_score, 90, "P-256 leaf ≈ RSA 3072");
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    assert_eq!(
        a.levels,
        Levels {
            security_rating: Some(Level::VerySecure),
            certificate_chain: Some(Level::VerySecure),
            protocol_cipher: Some(Level::VerySecure),
        }
    );
    let info = security_rating_info(&r, &a);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["security_rating_score"], "Very secure");
    assert_eq!(json["certificate_chain_score"], "Very secure");
    assert_eq!(
        json["protocol_cipher_score"]["protocols"],
        serde_json::json!(["TLSv1.2", "TLSv1.3"])
    );
    assert_eq!(json["protocol_cipher_score"]["score"], "Very secure");
    assert_eq!(
        json["security_headers"]["Strict-Transport-Security"],
        "max-age=63072000; includeSubDomains"
    );
    assert_eq!(json["http_response_headers"]["Server"], "nginx");
    assert_eq!(json["handshake_protocols"][0]["protocol"], "TLSv1.3");
    assert_eq!(
        json["handshake_protocols"][0]["cipher_algorithm"],
        "TLS_AES_256_GCM_SHA384"
    );
    assert_eq!(json["handshake_protocols"][0]["key_size"], 256);
    let t12 = &json["protocol_ciphers"][1];
    assert_eq!(t12["protocol"], "TLSv1.2");
    assert_eq!(t12["safe_ciphers"][0]["name"], "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    assert_eq!(t12["safe_ciphers"][0]["unsafe"], 0);
    assert_eq!(t12["safe_ciphers"][0]["kex_info"], "ECDH x25519");
    assert_eq!(t12["weak_ciphers"], serde_json::json!([]));
    assert_eq!(t12["warnings"], "");
    assert_eq!(
        json["certificate_chain"]["cert_chain_details"][0]["overall_status"],
        "Valid"
    );
    // The assessment itself round-trips.
    let text = serde_json::to_string(&a).unwrap();
    let back: Assessment = serde_json::from_str(&text).unwrap();
    assert_eq!(back, a);
    assert!(text.contains("\"letter\":\"A+\""));
}

#[test]
fn assess_a_legacy_server_classes_ciphers_and_lists_findings() {
    let mut r = modern_plus(&[
        ("TLSv1.0", 0xc014, "ECDH x25519"),
        ("TLSv1.0", 0x000a, "RSA"),
        ("TLSv1.0", 0x0005, "RSA"),
    ]);
    r.protocol_ciphers[2].compressors = "NULL".into();
    let leaf = rsa_leaf(2048);
    r.chain = vec![leaf.clone()];
    r.certificate = Some(leaf);
    let a = assess(&observe(&r, &[]), &TrustStores::empty(), &Policy::default(), NOW);
    let t10 = a.protocol_ciphers.iter().find(|p| p.protocol == "TLSv1.0").unwrap();
    let classes: Vec<(u32, CipherClass)> = t10.ciphers.iter().map(|c| (c.code, c.class)).collect();
    assert_eq!(
        classes,
        [
            (0xc014, CipherClass::Weak),
            (0x000a, CipherClass::Weak),
            (0x0005, CipherClass::Insecure)
        ]
    );
    let info = security_rating_info(&r, &a);
    let seed10 = info.protocol_ciphers.iter().find(|p| p.protocol == "TLSv1.0").unwrap();
    assert_eq!(seed10.insecure_ciphers.len(), 1);
    assert_eq!(seed10.insecure_ciphers[0].unsafe_flag, 1);
    assert_eq!(seed10.weak_ciphers.len(), 2);
    assert_eq!(
        seed10.warnings,
        "TLSv1.0 is deprecated (RFC 8996); CBC suites (BEAST); 1 insecure suite(s)"
    );
    let found: Vec<&str> = a.findings.iter().map(|f| f.id.as_str()).collect();
    for id in ["incomplete_chain", "beast", "sweet32", "rc4"] {
        assert!(found.contains(&id), "{id} missing from {found:?}");
    }
    assert_eq!(a.findings[0].severity, Severity::High, "worst first");
    let g = a.grade.as_ref().unwrap();
    assert_eq!(g.letter, Letter::T, "CertInfo alone: issuer is no trusted root");
    assert_eq!(g.if_trusted, Some(Letter::B));
    assert_eq!(a.levels.security_rating, Some(Level::NotSecure));
    assert_eq!(
        a.levels.protocol_cipher,
        Some(Level::Secure),
        "B from old protocols and RC4"
    );
    assert_eq!(a.levels.certificate_chain, Some(Level::NotSecure));
}

#[test]
fn letters_map_to_four_levels() {
    let cases = [
        (Letter::APlus, Level::VerySecure),
        (Letter::A, Level::VerySecure),
        (Letter::AMinus, Level::Secure),
        (Letter::B, Level::Secure),
        (Letter::C, Level::AtRisk),
        (Letter::D, Level::AtRisk),
        (Letter::E, Level::AtRisk),
        (Letter::F, Level::NotSecure),
        (Letter::T, Level::NotSecure),
        (Letter::M, Level::NotSecure),
    ];
    for (letter, level) in cases {
        assert_eq!(Level::of(letter), level, "{letter}");
    }
    assert_eq!(serde_json::to_value(Level::AtRisk).unwrap(), "At risk");
    assert_eq!(serde_json::to_value(Letter::AMinus).unwrap(), "A-");
}

#[test]
fn hsts_findings_for_missing_short_and_malformed_headers() {
    let r = modern();
    let find = |headers: Vec<(String, String)>| {
        let http = HttpHeaders { status: 200, headers };
        let obs = Observation {
            http: Some(&http),
            ..observe(&r, &[])
        };
        assess(&obs, &TrustStores::empty(), &Policy::default(), NOW)
            .findings
            .into_iter()
            .filter(|f| f.id.starts_with("hsts"))
            .map(|f| (f.id, f.evidence))
            .collect::<Vec<_>>()
    };
    let sts = |v: &str| vec![("Strict-Transport-Security".to_string(), v.to_string())];
    let missing = find(vec![]);
    assert_eq!(missing[0].0, "hsts_missing");
    assert!(missing[0].1.contains("status 200"));
    assert_eq!(find(sts("max-age=60"))[0].0, "hsts_short");
    assert_eq!(find(sts("max-age=x"))[0].0, "hsts_malformed");
    assert!(find(sts(YEAR)).is_empty());
}

// ---- Inferred vulnerabilities -------------------------------------------------

fn verdict(r: &EndpointRecord, id: &str) -> VulnerabilityVerdict {
    vulns::evaluate(r, &Vulnerabilities::default())
        .into_iter()
        .find(|v| v.id == id)
        .unwrap()
}

#[test]
fn inferred_vulnerabilities_name_their_evidence() {
    let r = modern_plus(&[
        ("SSLv3", 0x002f, "RSA"),
        ("TLSv1.0", 0x0016, "DH 1024"),
        ("TLSv1.0", 0x0003, "RSA"),
        ("TLSv1.0", 0x0014, "DH 512"),
    ]);
    let v = |id| verdict(&r, id);
    assert_eq!(v("poodle").status, VulnStatus::Vulnerable);
    assert!(v("poodle").evidence.contains("TLS_RSA_WITH_AES_128_CBC_SHA (SSLv3)"));
    assert!(
        v("beast")
            .evidence
            .contains("TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA (TLSv1.0)")
    );
    assert!(
        v("sweet32")
            .evidence
            .contains("TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA (TLSv1.0)")
    );
    assert!(v("freak").evidence.contains("TLS_RSA_EXPORT_WITH_RC4_40_MD5 (TLSv1.0)"));
    assert!(
        v("logjam")
            .evidence
            .contains("TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA (TLSv1.0, DH 512-bit)")
    );
    assert!(v("rc4").evidence.contains("TLS_RSA_EXPORT_WITH_RC4_40_MD5"));
    assert_eq!(v("drown").status, VulnStatus::NotVulnerable);
    assert_eq!(v("crime").status, VulnStatus::NotVulnerable);
    assert!(v("poodle").inferred);
}

#[test]
fn a_modern_server_is_not_vulnerable_by_inference() {
    let r = modern();
    for id in ["poodle", "beast", "sweet32", "freak", "logjam", "drown", "crime", "rc4"] {
        assert_eq!(
            verdict(&r, id).status,
            VulnStatus::NotVulnerable,
            "{id}: {:?}",
            verdict(&r, id)
        );
    }
}

#[test]
fn logjam_from_the_smallest_dh_prime_and_dhe_export() {
    let mut r = modern();
    r.key_exchange = Some(KeyExchange {
        dh_min_bits: Some(768),
        ..KeyExchange::default()
    });
    assert!(verdict(&r, "logjam").evidence.contains("smallest DH prime 768 bits"));
    let r = modern_plus(&[("TLSv1.0", 0x0014, "DH")]);
    assert!(verdict(&r, "logjam").evidence.contains("DHE export"));
}

#[test]
fn unobserved_inputs_leave_inferred_checks_not_tested() {
    let mut r = modern();
    r.protocols = None;
    r.protocol_ciphers.clear();
    r.features = None;
    for id in ["poodle", "beast", "sweet32", "freak", "logjam", "drown", "crime", "rc4"] {
        assert_eq!(verdict(&r, id).status, VulnStatus::NotTested, "{id}");
    }
    // SSLv3 known to be on, its suites unknown.
    let mut r = modern();
    r.protocol_ciphers.clear();
    r.protocols.as_mut().unwrap().insert("SSLv3".into(), true);
    assert_eq!(verdict(&r, "poodle").status, VulnStatus::NotTested);
    assert!(verdict(&r, "poodle").evidence.contains("not enumerated"));
}

#[test]
fn probe_results_pass_through_with_not_tested_kept() {
    let r = modern();
    let v = vulns::evaluate(
        &r,
        &Vulnerabilities {
            robot: Some(true),
            heartbleed: Some(false),
            ..Vulnerabilities::default()
        },
    );
    let by = |id: &str| v.iter().find(|x| x.id == id).unwrap().status;
    assert_eq!(by("robot"), VulnStatus::Vulnerable);
    assert_eq!(by("heartbleed"), VulnStatus::NotVulnerable);
    assert_eq!(by("ticketbleed"), VulnStatus::NotTested);
}

#[test]
fn a_publicly_trusted_leaf_without_scts_is_a_finding() {
    let leaf = ec_leaf(256);
    let f = super::modern::transparency(&clean_chain(), Some(&leaf)).expect("no_sct");
    assert_eq!((f.id.as_str(), f.severity), ("no_sct", Severity::Medium));
    // With an embedded SCT, or from a private CA: nothing to say.
    let mut with = leaf.clone();
    with.scts.push(crate::model::cert::Sct {
        log_id: "11".repeat(32),
        timestamp: "2026-01-01T00:00:00Z".into(),
    });
    assert_eq!(super::modern::transparency(&clean_chain(), Some(&with)), None);
    let mut private = clean_chain();
    private.publicly_trusted = false;
    assert_eq!(super::modern::transparency(&private, Some(&leaf)), None);
}

/// The seed-shaped criteria: each issue-22 observation becomes one criterion,
/// failing only where a finding (or replayable 0-RTT) says so.
#[test]
fn security_rating_criteria_follow_the_observations_and_findings() {
    use crate::model::record::{
        CertificateDeployment, ClientAuth, ClientAuthMode, Ech, KeyExchange, Resumption, Tls13Extras,
    };
    let mut r = modern();
    r.key_exchange = Some(KeyExchange {
        groups: vec!["x25519".into()],
        post_quantum: Some(false),
        pq_only: Some(false),
        ..Default::default()
    });
    r.client_auth = Some(ClientAuth {
        mode: ClientAuthMode::Required,
        ca_names: vec!["CN=clients".into()],
        signature_algorithms: vec!["ed25519".into()],
        protocol: Some("TLSv1.3".into()),
    });
    r.resumption = Some(Resumption {
        tls13_ticket: Some(true),
        tls12_session_id: Some(false),
    });
    r.tls13 = Some(Tls13Extras {
        max_early_data_size: Some(16384),
        early_data_accepted: Some(true),
        ech: Some(Ech {
            retry_configs: true,
            public_name: Some("public.test".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let deployment = |key: &str, trusted| CertificateDeployment {
        key: key.into(),
        thumbprint: key.replace(' ', ""),
        offers: vec![],
        chain: vec![],
        grade: Some(Letter::A),
        trusted: Some(trusted),
        der: vec![],
    };
    r.certificate_deployments = vec![deployment("RSA 2048", true), deployment("ECDSA secp256r1", false)];
    r.certificate = Some(ec_leaf(256));
    let mut chain = clean_chain();
    let findings = super::modern::findings(&r)
        .into_iter()
        .chain(super::modern::transparency(&chain, r.certificate.as_ref()))
        .collect();
    let a = Assessment {
        grade: None,
        no_grade_reason: None,
        findings,
        chain: chain.clone(),
        certificate_chain: crate::model::assessment::CertificateChain {
            cert_chain_details: Vec::new(),
        },
        protocol_ciphers: Vec::new(),
        vulnerabilities: Vec::new(),
        http: None,
        levels: Levels {
            security_rating: None,
            certificate_chain: None,
            protocol_cipher: None,
        },
    };
    let sr = super::report::security_rating(&r, &a);
    let rows: Vec<(&str, &str, &str, bool, &str)> = sr
        .criteria()
        .map(|c| {
            (
                c.category_name.as_str(),
                c.criteria_name.as_str(),
                c.value.as_str(),
                c.rating.value,
                c.rating.issue.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "Key exchange",
                "Post-quantum key exchange",
                "None",
                false,
                "No post-quantum key exchange"
            ),
            ("Authentication", "Client certificate", "required", true, "None"),
            (
                "Authentication",
                "Certificate deployments",
                "RSA 2048, ECDSA secp256r1",
                false,
                "1 of 2 certificates not trusted"
            ),
            ("Session", "Session resumption", "TLS 1.3 ticket", true, "None"),
            (
                "Session",
                "Early data (0-RTT)",
                "Accepted",
                false,
                "0-RTT data accepted: early requests can be replayed"
            ),
            (
                "Privacy",
                "Encrypted Client Hello",
                "Supported (public name public.test)",
                true,
                "None"
            ),
            (
                "Transparency",
                "Signed certificate timestamps",
                "None",
                false,
                "No embedded Certificate Transparency timestamps"
            ),
        ]
    );
    assert_eq!(sr.authentication[0].data["ca_names"], serde_json::json!(["CN=clients"]));
    assert_eq!(sr.session[0].data["tls12_session_id"], serde_json::json!(false));
    assert_eq!(sr.privacy[0].data["supported"], serde_json::json!(true));
    // A private CA's leaf without SCTs passes; nothing observed, nothing said.
    chain.publicly_trusted = false;
    let a = Assessment {
        findings: Vec::new(),
        chain,
        ..a
    };
    let sr = super::report::security_rating(&r, &a);
    assert!(sr.transparency[0].rating.value, "{:#?}", sr.transparency);
    assert!(super::report::security_rating(&modern(), &a).is_empty());
}
