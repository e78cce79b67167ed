//! Grades of real servers with test-generated PKI: one endpoint per chain
//! defect, the letter and the reasons asserted. The private root is trusted
//! the way an enterprise would (`--ca-bundle`), so only the defect under test
//! moves the grade.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use netsensor::grade::trust::StoreKind;
use netsensor::grade::{Letter, TrustStore, TrustStores, VulnStatus};
use netsensor::model::record::EndpointRecord;
use netsensor::scan::ScanOptions;
use testbed::{self, Chain, KeyKind, LeafSpec};
use tokio::net::TcpListener;

use crate::support::{self, find, quick, scan};

const HSTS: &str = "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n";

fn trusting(root: &[u8]) -> ScanOptions {
    trusting_store(TrustStore::from_der("test private CA", StoreKind::Memory, &[root.to_vec()]).unwrap())
}

fn trusting_store(store: TrustStore) -> ScanOptions {
    let mut stores = TrustStores::empty();
    stores.push(store);
    ScanOptions {
        trust: Arc::new(stores),
        ..quick()
    }
}

async fn serve(
    chain: &Chain,
    presented: Vec<Vec<u8>>,
    headers: &'static str,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let (cfg, _) = testbed::rustls_config(presented, &chain.leaf_key, &versions).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (addr, testbed::serve_tls_with_headers(l, cfg, headers))
}

async fn graded(target: &str, addr: SocketAddr, opts: ScanOptions) -> EndpointRecord {
    let records = scan(&[target], &[], &addr.port().to_string(), opts).await;
    find(&records, addr).clone()
}

fn letter(r: &EndpointRecord) -> Letter {
    r.grade.as_ref().unwrap_or_else(|| panic!("no grade: {r:#?}")).letter
}

fn has_finding(r: &EndpointRecord, id: &str) -> bool {
    r.findings.iter().any(|f| f.id == id)
}

fn caps(r: &EndpointRecord) -> String {
    r.grade.as_ref().map(|g| format!("{:?}", g.caps)).unwrap_or_default()
}

#[tokio::test]
async fn a_good_chain_with_hsts_is_a_plus_and_without_is_a() {
    let chain = testbed::issue_chain("grade good", &["localhost"], KeyKind::EcdsaP256).unwrap();
    let (with, _a) = serve(&chain, chain.presented(), HSTS).await;
    let (without, _b) = serve(&chain, chain.presented(), "").await;
    let r = graded("localhost", with, trusting(&chain.root)).await;
    assert_eq!(letter(&r), Letter::APlus, "{}", caps(&r));
    let info = r.security_rating_info.as_ref().unwrap();
    assert_eq!(serde_json::to_value(info.security_rating_score).unwrap(), "Very secure");
    assert!(
        info.security_headers.contains_key("Strict-Transport-Security"),
        "{:?}",
        info.security_headers
    );
    // The active checks ran against the real server and say what they saw.
    for id in ["heartbleed", "ccs_injection", "robot", "ticketbleed"] {
        let v = r
            .vulnerabilities
            .iter()
            .find(|v| v.id == id)
            .unwrap_or_else(|| panic!("no {id} verdict"));
        assert!(!v.inferred && v.status == VulnStatus::NotVulnerable, "{v:?}");
        assert!(v.evidence.starts_with("not vulnerable:"), "{v:?}");
    }
    let r = graded("localhost", without, trusting(&chain.root)).await;
    assert_eq!(letter(&r), Letter::A, "{}", caps(&r));
    assert!(has_finding(&r, "hsts_missing"));
}

#[tokio::test]
async fn an_unknown_root_is_t_with_the_grade_it_would_have() {
    let chain = testbed::issue_chain("grade unknown", &["localhost"], KeyKind::EcdsaP256).unwrap();
    let (addr, _s) = serve(&chain, chain.presented(), HSTS).await;
    let r = graded(
        "localhost",
        addr,
        ScanOptions {
            trust: Arc::new(TrustStores::web_roots()),
            ..quick()
        },
    )
    .await;
    assert_eq!(letter(&r), Letter::T);
    assert_eq!(r.grade.as_ref().unwrap().if_trusted, Some(Letter::APlus));
    // The root was not sent and no store has it: unknown CA or missing
    // intermediate cannot be told apart, and the evidence says so.
    assert!(
        ["unknown_issuer", "untrusted", "incomplete_chain"]
            .iter()
            .any(|id| has_finding(&r, id)),
        "{:?}",
        r.findings
    );
}

/// What, leaf spec, presented chain, expected letter, finding id.
type Case = (&'static str, LeafSpec, fn(&Chain) -> Vec<Vec<u8>>, Letter, &'static str);

#[tokio::test]
async fn each_chain_defect_is_named_and_graded() {
    let expired = LeafSpec {
        not_before_days: -400,
        not_after_days: -1,
        ..LeafSpec::default()
    };
    let future = LeafSpec {
        not_before_days: 10,
        not_after_days: 100,
        ..LeafSpec::default()
    };
    let selfsigned = LeafSpec {
        self_signed: true,
        ..LeafSpec::default()
    };
    let cases: Vec<Case> = vec![
        ("expired", expired, |c| c.presented(), Letter::T, "expired"),
        ("not yet valid", future, |c| c.presented(), Letter::T, "not_yet_valid"),
        (
            "self-signed",
            selfsigned,
            |c| vec![c.leaf.clone()],
            Letter::T,
            "self_signed",
        ),
        (
            "missing intermediate",
            LeafSpec::default(),
            |c| vec![c.leaf.clone()],
            Letter::T,
            "incomplete_chain",
        ),
        (
            "wrong order",
            LeafSpec::default(),
            |c| vec![c.leaf.clone(), c.root.clone(), c.intermediate.clone()],
            Letter::APlus,
            "wrong_order",
        ),
    ];
    for (what, spec, presented, want, id) in cases {
        let chain = testbed::issue_chain_with(&format!("grade {what}"), &["localhost"], &spec).unwrap();
        let (addr, _s) = serve(&chain, presented(&chain), HSTS).await;
        let r = graded("localhost", addr, trusting(&chain.root)).await;
        assert_eq!(letter(&r), want, "{what}: {}\n{:#?}", caps(&r), r.findings);
        assert!(has_finding(&r, id), "{what}: no `{id}` in {:#?}", r.findings);
    }
}

#[tokio::test]
async fn a_name_mismatch_is_m_and_an_address_target_is_not_checked() {
    let chain = testbed::issue_chain("grade name", &["other.test"], KeyKind::EcdsaP256).unwrap();
    let (addr, _s) = serve(&chain, chain.presented(), HSTS).await;
    let r = graded("localhost", addr, trusting(&chain.root)).await;
    assert_eq!(letter(&r), Letter::M, "{}", caps(&r));
    assert!(has_finding(&r, "hostname_mismatch"));
    // Scanned by address with no IP SAN: no name was checked, so no M.
    let r = graded("127.0.0.1", addr, trusting(&chain.root)).await;
    assert_eq!(letter(&r), Letter::APlus, "{}", caps(&r));
    let report = serde_json::to_value(r.chain_report.as_ref().unwrap()).unwrap();
    assert_eq!(report["name_check"]["status"], "not_checked", "{report:#}");
}

/// Run `openssl ARGS` in `dir`, failing the test with its stderr; its stdout.
fn openssl(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// RSA-1024 and SHA-1 need OpenSSL: rcgen will not make them.
fn openssl_pki(
    dir: &std::path::Path,
    leaf_bits: u32,
    digest: &str,
) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| openssl(dir, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=grade openssl root",
        "-sha256",
    ]);
    run(&[
        "req",
        "-newkey",
        &format!("rsa:{leaf_bits}"),
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "30",
        &format!("-{digest}"),
        "-extfile",
        "ext.cnf",
    ]);
    let pem = std::fs::read(dir.join("ca.pem")).unwrap();
    (pem, dir.join("leaf.pem"), dir.join("leaf.key"))
}

fn openssl_root(pem: &[u8]) -> ScanOptions {
    trusting_store(TrustStore::from_pem("test openssl CA", StoreKind::Memory, pem).unwrap())
}

async fn openssl_serving(
    dir: &std::path::Path,
    leaf: &std::path::Path,
    key: &std::path::Path,
    extra: &[&str],
) -> (support::Proc, SocketAddr) {
    let lo = "127.0.0.1".parse().unwrap();
    let addr = SocketAddr::new(lo, support::free_port(lo));
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &addr.to_string(),
            "-www",
            "-quiet",
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .args(extra)
        .arg("-cert")
        .arg(leaf)
        .arg("-key")
        .arg(key)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut p = support::Proc {
        child,
        name: "openssl s_server",
    };
    support::wait_listening(addr, &mut p).await;
    (p, addr)
}

#[tokio::test]
async fn rsa_1024_and_sha1_signatures_are_judged_by_our_code() {
    let dir = tempfile::tempdir().unwrap();
    let weak = dir.path().join("weak");
    let sha1 = dir.path().join("sha1");
    std::fs::create_dir_all(&weak).unwrap();
    std::fs::create_dir_all(&sha1).unwrap();

    let (root, leaf, key) = openssl_pki(&weak, 1024, "sha256");
    let (_p, addr) = openssl_serving(&weak, &leaf, &key, &[]).await;
    let r = graded("localhost", addr, openssl_root(&root)).await;
    assert_eq!(r.certificate.as_ref().unwrap().key_size, Some(1024));
    assert!(has_finding(&r, "weak_key"), "{:#?}", r.findings);
    let g = r.grade.as_ref().unwrap();
    assert!(g.key_exchange_score <= 80, "{g:?}");
    assert!(
        matches!(g.letter, Letter::B | Letter::C | Letter::F),
        "{:?}: {}",
        g.letter,
        caps(&r)
    );

    let (root, leaf, key) = openssl_pki(&sha1, 2048, "sha1");
    let (_p, addr) = openssl_serving(&sha1, &leaf, &key, &[]).await;
    let r = graded("localhost", addr, openssl_root(&root)).await;
    assert_eq!(
        r.certificate.as_ref().unwrap().signature_algorithm,
        "sha1WithRSAEncryption"
    );
    assert!(has_finding(&r, "sha1_signature"), "{:#?}", r.findings);
    assert_eq!(letter(&r), Letter::T, "{}", caps(&r));
}

#[tokio::test]
async fn a_stapled_revoked_ocsp_response_is_f() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (root, leaf, key) = openssl_pki(d, 2048, "sha256");
    let run = |args: &[&str]| openssl(d, args);
    let serial = run(&["x509", "-in", "leaf.pem", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=");
    // An OpenSSL CA database with the leaf revoked, and a response signed by the CA.
    std::fs::write(
        d.join("index.txt"),
        format!("R\t301231000000Z\t261101000000Z\t{serial}\tunknown\t/CN=localhost\n"),
    )
    .unwrap();
    run(&[
        "ocsp",
        "-index",
        "index.txt",
        "-rsigner",
        "ca.pem",
        "-rkey",
        "ca.key",
        "-CA",
        "ca.pem",
        "-issuer",
        "ca.pem",
        "-cert",
        "leaf.pem",
        "-respout",
        "resp.der",
        "-ndays",
        "1",
    ]);
    let (_p, addr) = openssl_serving(d, &leaf, &key, &["-status_file", "resp.der"]).await;
    let r = graded("localhost", addr, openssl_root(&root)).await;
    assert_eq!(r.features.as_ref().unwrap().ocsp_stapling, Some(true));
    assert!(has_finding(&r, "revoked"), "{:#?}", r.findings);
    // SSL Labs: a revoked certificate is an F, not a trust question.
    assert_eq!(letter(&r), Letter::F, "{}", caps(&r));
}
