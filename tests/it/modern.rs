//! What today's TLS needs checked (issue 22), against real servers: post-quantum
//! groups from rustls servers with chosen key-exchange groups; client
//! authentication, certificate deployments, resumption and early data from
//! `openssl s_server`.

use std::net::SocketAddr;

use netsensor::model::record::{ClientAuthMode, EndpointRecord};
use rustls::crypto::SupportedKxGroup;
use rustls::crypto::aws_lc_rs::kx_group;
use testbed::{self, KeyKind};
use tokio::net::TcpListener;

use crate::support::{self, find, quick, scan};

async fn rustls_server(
    tag: &str,
    groups: Vec<&'static dyn SupportedKxGroup>,
) -> (tokio::task::JoinHandle<()>, SocketAddr) {
    let chain = testbed::issue_chain(tag, &["pq.test"], KeyKind::EcdsaP256).expect("chain");
    let (config, _) = testbed::rustls_config_with_groups(
        chain.presented(),
        &chain.leaf_key,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        Some(groups),
    )
    .expect("config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    (testbed::serve_tls(listener, config), addr)
}

async fn one(addr: SocketAddr) -> EndpointRecord {
    let records = scan(&[&addr.ip().to_string()], &[], &addr.port().to_string(), quick()).await;
    find(&records, addr).clone()
}

/// One criterion of `security_rating_info.security_rating` by name: its
/// value, whether it passes, its issue and its data.
fn criterion(r: &EndpointRecord, name: &str) -> (String, bool, String, serde_json::Value) {
    let sr = r
        .security_rating_info
        .as_ref()
        .and_then(|i| i.security_rating.as_ref())
        .unwrap_or_else(|| panic!("no security_rating: {:#?}", r.security_rating_info));
    let c = sr
        .criteria()
        .find(|c| c.criteria_name == name)
        .unwrap_or_else(|| panic!("no criterion {name}: {sr:#?}"));
    (
        c.value.clone(),
        c.rating.value,
        c.rating.issue.clone(),
        serde_json::Value::Object(c.data.clone()),
    )
}

fn finding_ids(r: &EndpointRecord) -> Vec<&str> {
    r.findings.iter().map(|f| f.id.as_str()).collect()
}

#[tokio::test]
async fn hybrid_group_found_and_client_order_followed() {
    let (_server, addr) = rustls_server(
        "pq hybrid",
        vec![kx_group::X25519MLKEM768, kx_group::X25519, kx_group::SECP256R1],
    )
    .await;
    let r = one(addr).await;
    let kx = r.key_exchange.as_ref().expect("key_exchange");
    assert_eq!(kx.post_quantum, Some(true), "{kx:#?}");
    assert_eq!(kx.pq_hybrids, vec!["X25519MLKEM768"]);
    assert!(kx.pq_ml_kem.is_empty());
    // rustls servers take the first group of the client's list they support
    // (`choose_suite_and_kx_group`): offered either kind first, they follow us.
    assert_eq!(kx.pq_preference.as_deref(), Some("client"), "{kx:#?}");
    assert_eq!(kx.pq_only, Some(false));
    assert!(kx.groups.contains(&"X25519MLKEM768".to_string()), "{:?}", kx.groups);
    // Our own rustls handshake offers x25519 first, and the server follows.
    assert_eq!(r.handshake.as_ref().and_then(|h| h.group.as_deref()), Some("x25519"));
    assert!(!finding_ids(&r).contains(&"no_post_quantum"), "{:?}", r.findings);
    // The hybrid never lowers the key-exchange score.
    assert_eq!(
        r.grade.as_ref().map(|g| g.key_exchange_score),
        Some(90),
        "{:#?}",
        r.grade
    );
}

#[tokio::test]
async fn classical_groups_only_is_a_note() {
    let (_server, addr) = rustls_server("pq none", vec![kx_group::X25519, kx_group::SECP256R1]).await;
    let r = one(addr).await;
    let kx = r.key_exchange.as_ref().expect("key_exchange");
    assert_eq!(kx.post_quantum, Some(false), "{kx:#?}");
    assert!(kx.pq_hybrids.is_empty() && kx.pq_ml_kem.is_empty());
    assert_eq!(kx.pq_preference, None);
    assert_eq!(kx.pq_only, Some(false));
    let note = r
        .findings
        .iter()
        .find(|f| f.id == "no_post_quantum")
        .expect("no_post_quantum");
    assert!(note.evidence.contains("x25519, secp256r1"), "{}", note.evidence);
}

#[tokio::test]
async fn ml_kem_only_server_is_reachable_and_not_marked_down() {
    let (_server, addr) = rustls_server("pq only", vec![kx_group::MLKEM768, kx_group::X25519MLKEM768]).await;
    let r = one(addr).await;
    let kx = r.key_exchange.as_ref().expect("key_exchange");
    assert_eq!(kx.post_quantum, Some(true), "{kx:#?}");
    assert_eq!(kx.pq_ml_kem, vec!["MLKEM768"]);
    assert_eq!(kx.pq_hybrids, vec!["X25519MLKEM768"]);
    assert_eq!(kx.pq_only, Some(true));
    assert_eq!(kx.pq_preference, None);
    // Reachable: our own handshake completed over the hybrid.
    let h = r.handshake.as_ref().expect("handshake");
    assert_eq!(h.error, None);
    assert!(finding_ids(&r).contains(&"post_quantum_only"), "{:?}", r.findings);
    let g = r.grade.as_ref().expect("grade");
    assert_eq!(g.key_exchange_score, 90, "{g:#?}");
}

/// A TLS 1.3 rustls server choosing the group in its own order
/// (`testbed::serve_tls_server_group_order`).
async fn server_order(
    tag: &str,
    groups: Vec<&'static dyn SupportedKxGroup>,
) -> (tokio::task::JoinHandle<()>, SocketAddr) {
    let chain = testbed::issue_chain(tag, &["pq.test"], KeyKind::EcdsaP256).expect("chain");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server =
        testbed::serve_tls_server_group_order(listener, chain.presented(), &chain.leaf_key, groups).expect("server");
    (server, addr)
}

/// `post_quantum`, `pq_hybrids`, `pq_ml_kem`, `pq_preference`, `pq_only`.
type PqView = (Option<bool>, Vec<String>, Vec<String>, Option<String>, Option<bool>);

/// The post-quantum view of a record as one comparable tuple.
fn pq_view(r: &EndpointRecord) -> PqView {
    let kx = r.key_exchange.as_ref().expect("key_exchange");
    (
        kx.post_quantum,
        kx.pq_hybrids.clone(),
        kx.pq_ml_kem.clone(),
        kx.pq_preference.clone(),
        kx.pq_only,
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Server preference, each way, plus a classical-only and a hybrid-only
/// server, all choosing in their own order: the record says exactly which.
#[tokio::test]
async fn server_preferred_pq_classical_and_pq_only() {
    let (_a, pq_first) = server_order(
        "prefers pq",
        vec![kx_group::X25519MLKEM768, kx_group::X25519, kx_group::SECP256R1],
    )
    .await;
    let (_b, classical_first) = server_order(
        "prefers classical",
        vec![kx_group::X25519, kx_group::X25519MLKEM768, kx_group::SECP256R1],
    )
    .await;
    let (_c, classical) = server_order("classical only", vec![kx_group::X25519, kx_group::SECP256R1]).await;
    let (_d, hybrid_only) = server_order("hybrid only", vec![kx_group::X25519MLKEM768]).await;
    let (_e, kem_only) = server_order("ml-kem only", vec![kx_group::MLKEM768]).await;
    let (p, c, n, h, k) = tokio::join!(
        one(pq_first),
        one(classical_first),
        one(classical),
        one(hybrid_only),
        one(kem_only)
    );

    let hy = strings(&["X25519MLKEM768"]);
    assert_eq!(
        pq_view(&p),
        (Some(true), hy.clone(), vec![], Some("pq".into()), Some(false)),
        "{:#?}",
        p.key_exchange
    );
    assert_eq!(
        pq_view(&c),
        (Some(true), hy.clone(), vec![], Some("classical".into()), Some(false)),
        "{:#?}",
        c.key_exchange
    );
    assert_eq!(
        pq_view(&n),
        (Some(false), vec![], vec![], None, Some(false)),
        "{:#?}",
        n.key_exchange
    );
    assert_eq!(
        pq_view(&h),
        (Some(true), hy.clone(), vec![], None, Some(true)),
        "{:#?}",
        h.key_exchange
    );

    // ML-KEM alone: found, and reached by our own handshake too (it offers
    // MLKEM768 without a share, so the server asks for it).
    assert_eq!(
        pq_view(&k),
        (Some(true), vec![], strings(&["MLKEM768"]), None, Some(true)),
        "{:#?}",
        k.key_exchange
    );
    // Every group accepted alone, in the record's order.
    let groups = |r: &EndpointRecord| r.key_exchange.as_ref().map(|k| k.groups.clone()).unwrap_or_default();
    assert_eq!(groups(&p), strings(&["x25519", "secp256r1", "X25519MLKEM768"]));
    assert_eq!(groups(&c), strings(&["x25519", "secp256r1", "X25519MLKEM768"]));
    assert_eq!(groups(&n), strings(&["x25519", "secp256r1"]));
    assert_eq!(groups(&h), hy);

    // Our own handshake offers x25519 first with its share: the PQ-preferring
    // server asks for the hybrid (HelloRetryRequest), the other takes x25519.
    let group = |r: &EndpointRecord| {
        let h = r.handshake.as_ref().expect("handshake");
        assert_eq!(h.error, None, "{h:#?}");
        h.group.clone()
    };
    assert_eq!(group(&p).as_deref(), Some("X25519MLKEM768"));
    assert_eq!(group(&c).as_deref(), Some("x25519"));
    assert_eq!(group(&n).as_deref(), Some("x25519"));
    assert_eq!(group(&h).as_deref(), Some("X25519MLKEM768"));
    assert_eq!(group(&k).as_deref(), Some("MLKEM768"));
    assert!(finding_ids(&k).contains(&"post_quantum_only"), "{:?}", k.findings);
    let default_group = |r: &EndpointRecord| r.key_exchange.as_ref().and_then(|k| k.default_group.clone());
    assert_eq!(default_group(&p).as_deref(), Some("X25519MLKEM768"));
    assert_eq!(default_group(&c).as_deref(), Some("x25519"));

    // Notes: only the classical server lacks PQ; only the hybrid-only one is PQ-only.
    for (r, no_pq, only) in [
        (&p, false, false),
        (&c, false, false),
        (&n, true, false),
        (&h, false, true),
    ] {
        let ids = finding_ids(r);
        assert_eq!(ids.contains(&"no_post_quantum"), no_pq, "{ids:?}");
        assert_eq!(ids.contains(&"post_quantum_only"), only, "{ids:?}");
        // Hybrids and a PQ-only server keep the key-exchange score.
        assert_eq!(
            r.grade.as_ref().map(|g| g.key_exchange_score),
            Some(90),
            "{:#?}",
            r.grade
        );
    }

    // The same in the seed's shape.
    let (value, pass, issue, data) = criterion(&p, "Post-quantum key exchange");
    assert_eq!((value.as_str(), pass, issue.as_str()), ("X25519MLKEM768", true, "None"));
    assert_eq!(
        data,
        serde_json::json!({"post_quantum": true, "hybrids": ["X25519MLKEM768"], "ml_kem": [],
            "preference": "pq", "only": false})
    );
    assert_eq!(criterion(&c, "Post-quantum key exchange").3["preference"], "classical");
    let (value, pass, issue, _) = criterion(&n, "Post-quantum key exchange");
    assert_eq!(
        (value.as_str(), pass, issue.as_str()),
        ("None", false, "No post-quantum key exchange")
    );
    assert_eq!(criterion(&h, "Post-quantum key exchange").3["only"], true);
}

fn client_auth_of(r: &EndpointRecord) -> (Option<ClientAuthMode>, Vec<String>) {
    match &r.client_auth {
        Some(a) => (Some(a.mode), a.ca_names.clone()),
        None => (None, Vec::new()),
    }
}

/// The same openssl server three times: without client authentication,
/// asking for a certificate (`-verify 1`) and requiring one (`-Verify 1`).
/// Enumeration must not read the certificate alerts as refused suites.
#[tokio::test]
async fn client_auth_none_optional_required_and_enumeration_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = testbed::issue_chain("client auth", &["auth.test"], KeyKind::EcdsaP256).expect("chain");
    let ca = support::write(dir.path(), "clients.pem", &chain.root_pem);
    let ca = ca.to_str().expect("path");
    let (_a, plain) = support::openssl_server(&chain, dir.path(), &[]).await;
    let (_b, optional) = support::openssl_server(&chain, dir.path(), &["-verify", "1", "-CAfile", ca]).await;
    let (_c, required) = support::openssl_server(&chain, dir.path(), &["-Verify", "1", "-CAfile", ca]).await;
    let (p, o, q) = tokio::join!(one(plain), one(optional), one(required));
    assert_eq!(
        client_auth_of(&p),
        (Some(ClientAuthMode::None), vec![]),
        "{:#?}",
        p.client_auth
    );
    let root_dn = "CN=client auth root CA, O=netsensor testbed";
    assert_eq!(
        client_auth_of(&o),
        (Some(ClientAuthMode::Optional), vec![root_dn.to_string()])
    );
    assert_eq!(
        client_auth_of(&q),
        (Some(ClientAuthMode::Required), vec![root_dn.to_string()])
    );
    let sigs = &q.client_auth.as_ref().expect("client_auth").signature_algorithms;
    assert!(sigs.contains(&"ecdsa_secp256r1_sha256".to_string()), "{sigs:?}");
    assert_eq!(
        q.client_auth.as_ref().and_then(|a| a.protocol.as_deref()),
        Some("TLSv1.3")
    );
    // Enumeration: identical protocols, suites, groups and signature algorithms.
    for r in [&o, &q] {
        assert_eq!(r.protocols, p.protocols);
        assert_eq!(r.protocol_ciphers, p.protocol_ciphers);
        let (a, b) = (
            r.key_exchange.as_ref().expect("kx"),
            p.key_exchange.as_ref().expect("kx"),
        );
        assert_eq!(
            (&a.groups, &a.signature_algorithms),
            (&b.groups, &b.signature_algorithms)
        );
    }
    assert!(!p.protocol_ciphers.is_empty());
    // The seed's shape: the mode and the CA names, passing either way.
    let (value, pass, _, data) = criterion(&q, "Client certificate");
    assert_eq!((value.as_str(), pass), ("required", true));
    assert_eq!(data["ca_names"], serde_json::json!([root_dn]));
    assert_eq!(data["protocol"], "TLSv1.3");
    assert_eq!(criterion(&o, "Client certificate").0, "optional");
    assert_eq!(criterion(&p, "Client certificate").0, "none");
}

/// openssl holding an RSA and an ECDSA certificate (`-dcert`): both found,
/// each with the offers that got it; resumption by ticket and by session ID.
#[tokio::test]
async fn two_certificates_and_resumption() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsa = testbed::issue_chain("deploy rsa", &["deploy.test"], KeyKind::Rsa2048).expect("chain");
    let ec = testbed::issue_chain("deploy ec", &["deploy.test"], KeyKind::EcdsaP384).expect("chain");
    let ec_cert = support::write(dir.path(), "ec.pem", &ec.leaf_pem);
    let ec_key = support::write(dir.path(), "ec.key", &ec.leaf_key_pem);
    let (_s, addr) = support::openssl_server(
        &rsa,
        dir.path(),
        &[
            "-dcert",
            ec_cert.to_str().expect("path"),
            "-dkey",
            ec_key.to_str().expect("path"),
        ],
    )
    .await;
    let r = one(addr).await;
    let d = &r.certificate_deployments;
    let keys: Vec<&str> = d.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(
        keys.contains(&"RSA 2048") && keys.contains(&"ECDSA secp384r1"),
        "{keys:?}"
    );
    let ecdsa = d.iter().find(|d| d.key == "ECDSA secp384r1").expect("ecdsa");
    assert!(
        ecdsa.offers.contains(&"TLSv1.3 ecdsa_secp384r1_sha384".to_string()),
        "{:?}",
        ecdsa.offers
    );
    assert!(
        ecdsa.offers.contains(&"TLSv1.2 ECDSA".to_string()),
        "{:?}",
        ecdsa.offers
    );
    let rsa_d = d.iter().find(|d| d.key == "RSA 2048").expect("rsa");
    assert!(
        rsa_d.offers.contains(&"TLSv1.3 rsa_pss_rsae_sha256".to_string()),
        "{:?}",
        rsa_d.offers
    );
    assert!(rsa_d.offers.contains(&"TLSv1.2 RSA".to_string()), "{:?}", rsa_d.offers);
    let t = r.tls13.as_ref().expect("tls13");
    assert!(
        t.signature_algorithms.contains(&"ecdsa_secp384r1_sha384".to_string()),
        "{t:#?}"
    );
    assert!(
        t.signature_algorithms.contains(&"rsa_pss_rsae_sha256".to_string()),
        "{t:#?}"
    );
    assert!(!t.signature_algorithms.contains(&"ed25519".to_string()), "{t:#?}");
    assert!(
        t.certificate_compression.is_empty(),
        "OpenSSL 3.0 has no RFC 8879: {t:#?}"
    );
    assert_eq!(t.max_early_data_size, Some(0), "{t:#?}");
    assert_eq!(t.early_data_accepted, None);
    let res = r.resumption.as_ref().expect("resumption");
    assert_eq!(res.tls13_ticket, Some(true), "{res:#?}");
    assert_eq!(res.tls12_session_id, Some(true), "{res:#?}");
    assert_eq!(r.client_auth.as_ref().map(|a| a.mode), Some(ClientAuthMode::None));

    // The seed's shape: both certificates (each from a private CA, so each
    // untrusted: the criterion fails), resumption both ways, no 0-RTT, and
    // no SCTs on a private leaf (which passes: CT is for public CAs).
    let (value, pass, issue, data) = criterion(&r, "Certificate deployments");
    assert_eq!(data["count"], 2, "{data:#}");
    assert!(
        value == "RSA 2048, ECDSA secp384r1" || value == "ECDSA secp384r1, RSA 2048",
        "{value}"
    );
    assert_eq!((pass, issue.as_str()), (false, "2 of 2 certificates not trusted"));
    let (value, pass, _, _) = criterion(&r, "Session resumption");
    assert_eq!((value.as_str(), pass), ("TLS 1.3 ticket, TLS 1.2 session ID", true));
    let (value, pass, _, data) = criterion(&r, "Early data (0-RTT)");
    assert_eq!((value.as_str(), pass), ("Not offered", true));
    assert_eq!(data, serde_json::json!({"max_early_data_size": 0, "accepted": null}));
    let (value, pass, _, data) = criterion(&r, "Signed certificate timestamps");
    assert_eq!((value.as_str(), pass), ("None", true));
    assert_eq!(
        data,
        serde_json::json!({"count": 0, "log_ids": [], "publicly_trusted": false})
    );
}

/// A rustls server: tickets without early data, no client authentication.
#[tokio::test]
async fn rustls_server_resumes_without_early_data() {
    let (_server, addr) = rustls_server("extras rustls", vec![kx_group::X25519]).await;
    let r = one(addr).await;
    let t = r.tls13.as_ref().expect("tls13");
    assert_eq!(t.max_early_data_size, Some(0), "{t:#?}");
    assert_eq!(t.early_data_accepted, None);
    assert_eq!(t.signature_algorithms, vec!["ecdsa_secp256r1_sha256"]);
    let res = r.resumption.as_ref().expect("resumption");
    assert_eq!(res.tls13_ticket, Some(true), "{res:#?}");
    assert_eq!(r.certificate_deployments.len(), 1);
    assert_eq!(r.certificate_deployments[0].key, "ECDSA secp256r1");
}

/// `openssl s_server -early_data` (which cannot be combined with `-www`):
/// the ticket allows 0-RTT and our early request is accepted.
#[tokio::test]
async fn early_data_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = testbed::issue_chain("early", &["early.test"], KeyKind::EcdsaP256).expect("chain");
    let cert = support::write(dir.path(), "leaf.pem", &chain.leaf_pem);
    let key = support::write(dir.path(), "leaf.key", &chain.leaf_key_pem);
    let ip = "127.0.0.1".parse().expect("ip");
    let addr = SocketAddr::new(ip, support::free_port(ip));
    let child = std::process::Command::new("openssl")
        .arg("s_server")
        .args(["-accept", &addr.to_string(), "-tls1_3", "-early_data", "-quiet"])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl");
    let mut p = support::Proc {
        child,
        name: "openssl s_server -early_data",
    };
    support::wait_listening(addr, &mut p).await;
    let r = one(addr).await;
    let t = r.tls13.as_ref().expect("tls13");
    assert!(t.max_early_data_size.is_some_and(|m| m > 0), "{t:#?}");
    assert_eq!(t.early_data_accepted, Some(true), "{t:#?}");
    assert_eq!(r.resumption.as_ref().and_then(|x| x.tls13_ticket), Some(true));
    let (value, pass, issue, data) = criterion(&r, "Early data (0-RTT)");
    assert_eq!(
        (value.as_str(), pass, issue.as_str()),
        ("Accepted", false, "0-RTT data accepted: early requests can be replayed")
    );
    assert_eq!(data["accepted"], true);
}
