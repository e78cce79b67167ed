//! Realistic endpoint records for the benches: real certificate chains
//! (issued on the spot with the testbed's PKI), a modern TLS configuration,
//! addresses and names varied per record.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use netsensor::grade::trust::StoreKind;
use netsensor::grade::{self, Observation, Policy, TrustStore, TrustStores};
use netsensor::model::cert;
use netsensor::model::record::{
    Category, EndpointRecord, Features, Handshake, KeyExchange, PROTOCOL_NAMES, ProtocolCiphers, SuiteRef, Transport,
    cipher_entry,
};
use netsensor::wire::CipherSuite;
use testbed::{KeyKind, issue_chain};
use time::OffsetDateTime;

/// What a scan hands the grading stage for one endpoint.
#[derive(Clone)]
pub struct Input {
    pub record: EndpointRecord,
    /// The chain as presented, leaf first.
    pub der: Vec<Vec<u8>>,
}

/// The certificate world of a run: `k` chains, half of them under a private
/// CA the trust configuration knows (the rest chain to unknown roots, as
/// appliances and lab gear do), leaves of every key kind.
pub struct World {
    pub chains: Vec<Vec<Vec<u8>>>,
    pub trust: TrustStores,
    pub policy: Policy,
    pub now: OffsetDateTime,
}

impl World {
    pub fn new(k: usize) -> World {
        let kinds = [KeyKind::EcdsaP256, KeyKind::Rsa2048, KeyKind::EcdsaP384];
        let mut trusted = Vec::new();
        let mut chains = Vec::new();
        for i in 0..k {
            let (name, wild) = (format!("www.bench{i}.test"), format!("*.bench{i}.test"));
            let c = issue_chain(&format!("bench {i}"), &[&name, &wild], kinds[i % kinds.len()]).expect("issue chain");
            if i % 2 == 0 {
                trusted.push(c.root.clone());
            }
            // Every fourth server forgets its intermediate.
            chains.push(if i % 4 == 3 {
                vec![c.leaf.clone()]
            } else {
                c.presented()
            });
        }
        let mut trust = TrustStores::web_roots();
        trust.push(TrustStore::from_der("bench private CA", StoreKind::Memory, &trusted).expect("trust store"));
        World {
            chains,
            trust,
            policy: Policy::default(),
            now: OffsetDateTime::now_utc(),
        }
    }

    /// `n` endpoints, one chain each (round robin), distinct addresses.
    pub fn inputs(&self, n: usize) -> Vec<Input> {
        (0..n)
            .map(|i| {
                let k = i % self.chains.len();
                let addr = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
                let port = [443, 8443, 636, 993][i % 4];
                Input {
                    record: template(addr, port, Some(format!("h{i}.bench{k}.test"))),
                    der: self.chains[k].clone(),
                }
            })
            .collect()
    }
}

const SUITES: [(&str, u16); 7] = [
    ("TLSv1.3", 0x1302),
    ("TLSv1.3", 0x1301),
    ("TLSv1.3", 0x1303),
    ("TLSv1.2", 0xc030),
    ("TLSv1.2", 0xc02f),
    ("TLSv1.2", 0xcca8),
    ("TLSv1.2", 0xc028),
];

/// An enumerated TLS 1.2 + 1.3 endpoint, as the probes leave it.
pub fn template(addr: IpAddr, port: u16, hostname: Option<String>) -> EndpointRecord {
    let mut r = EndpointRecord::new(
        addr,
        port,
        hostname,
        Category::Discovered,
        "2026-11-24T12:00:00Z".into(),
    );
    r.transport = Transport::Tls;
    r.service = Some("tls".into());
    r.port_reason = "syn-ack".into();
    r.protocols = Some(
        PROTOCOL_NAMES
            .iter()
            .map(|p| (p.to_string(), *p == "TLSv1.2" || *p == "TLSv1.3"))
            .collect::<BTreeMap<_, _>>(),
    );
    for (p, code) in SUITES {
        let entry = cipher_entry(CipherSuite(code), Some("ECDH x25519"));
        match r.protocol_ciphers.iter_mut().find(|pc| pc.protocol == p) {
            Some(pc) => pc.ciphers.push(entry),
            None => r.protocol_ciphers.push(ProtocolCiphers {
                protocol: p.to_string(),
                cipher_pref_order: Some("server".into()),
                compressors: "NULL".into(),
                ciphers: vec![entry],
            }),
        }
    }
    r.key_exchange = Some(KeyExchange {
        groups: vec!["x25519".into(), "secp256r1".into(), "secp384r1".into()],
        default_group: Some("x25519".into()),
        signature_algorithms: vec!["ecdsa_secp256r1_sha256".into(), "rsa_pss_rsae_sha256".into()],
        ..KeyExchange::default()
    });
    r.features = Some(Features {
        secure_renegotiation: Some(true),
        fallback_scsv: Some(true),
        extended_master_secret: Some(true),
        session_ticket: Some(true),
        alpn: vec!["h2".into(), "http/1.1".into()],
        compression: vec!["NULL".into()],
        ..Features::default()
    });
    r.handshake = Some(Handshake {
        protocol: Some("TLSv1.3".into()),
        cipher_suite: Some(SuiteRef::from(CipherSuite(0x1302))),
        group: Some("x25519".into()),
        alpn: Some("h2".into()),
        duration_ms: 3,
        ..Handshake::default()
    });
    r
}

/// Parse the presented chain into the record, as the scan does after the
/// handshake (`scan::tls_endpoint`).
pub fn parse_into(r: &mut EndpointRecord, der: &[Vec<u8>]) {
    let chain: Vec<_> = der.iter().map(|d| cert::parse_lossy(d)).collect();
    r.certificate = chain.first().cloned();
    r.chain = chain;
}

/// The judgement the scan computes (`scan::grade_into`): assessment and the
/// upstream's rating info.
pub fn judge(r: &EndpointRecord, der: &[Vec<u8>], w: &World) -> (grade::Assessment, grade::SecurityRatingInfo) {
    let obs = Observation {
        record: r,
        chain_der: der,
        ocsp: None,
        vulnerabilities: Default::default(),
        http: None,
    };
    let a = grade::assess(&obs, &w.trust, &w.policy, w.now);
    let info = grade::security_rating_info(r, &a);
    (a, info)
}

pub fn apply(r: &mut EndpointRecord, (a, info): (grade::Assessment, grade::SecurityRatingInfo)) {
    r.security_rating_info = Some(info);
    r.grade = a.grade;
    r.findings = a.findings;
    r.chain_report = Some(a.chain);
    r.vulnerabilities = a.vulnerabilities;
}

/// Parse, validate and grade one endpoint, all on the calling thread.
pub fn grade_one(input: &Input, w: &World) -> EndpointRecord {
    let mut r = input.record.clone();
    parse_into(&mut r, &input.der);
    let j = judge(&r, &input.der, w);
    apply(&mut r, j);
    r
}

/// `n` fully graded records (the events a run reports).
pub fn graded(n: usize) -> Vec<EndpointRecord> {
    let w = World::new(8);
    w.inputs(n).iter().map(|i| grade_one(i, &w)).collect()
}

/// `cargo test --all-targets` runs benches too, without `--bench`: they are
/// measurements, not tests, so they only say how to run them then.
pub fn not_benchmarking(name: &str) -> bool {
    let benchmarking = std::env::args().any(|a| a == "--bench" || a == "--child");
    if !benchmarking {
        println!("{name}: a measurement; run it with `cargo bench --bench {name}`");
    }
    !benchmarking
}

pub fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
