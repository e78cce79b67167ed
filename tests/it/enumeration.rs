//! Enumeration against real servers with known configurations: the sets of
//! accepted suites per protocol, the preference and the server's order must
//! be exactly what each server is configured to accept. Hostile servers end
//! in typed results within bounded time.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netsensor::model::record::{Category, EndpointRecord};
use netsensor::probe::enumerate::{self, EnumConfig};
use netsensor::wire::{
    CipherSuite, Codec, Compression, HandshakeMessage, HandshakeType, ProtocolVersion, Random, ServerHello,
};
use testbed::{self, KeyKind};
use tokio::net::TcpListener;

use crate::support::{self, find, quick, scan};

fn suites(r: &EndpointRecord, protocol: &str) -> Vec<u32> {
    r.protocol_ciphers
        .iter()
        .find(|p| p.protocol == protocol)
        .map(|p| p.ciphers.iter().map(|c| c.code).collect())
        .unwrap_or_default()
}

fn set(codes: &[u32]) -> BTreeSet<u32> {
    codes.iter().copied().collect()
}

fn pref<'a>(r: &'a EndpointRecord, protocol: &str) -> Option<&'a str> {
    r.protocol_ciphers
        .iter()
        .find(|p| p.protocol == protocol)?
        .cipher_pref_order
        .as_deref()
}

fn offered(r: &EndpointRecord) -> Vec<String> {
    let p = r.protocols.as_ref().expect("protocols");
    p.iter().filter(|(_, on)| **on).map(|(k, _)| k.clone()).collect()
}

async fn one(addr: SocketAddr) -> EndpointRecord {
    let records = scan(&[&addr.ip().to_string()], &[], &addr.port().to_string(), quick()).await;
    find(&records, addr).clone()
}

#[tokio::test]
async fn openssl_server_preference_and_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("enum pref", &["pref.test"], KeyKind::Rsa2048).unwrap();
    // The server's order is the cipher string's order.
    let cipher = "AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256";
    let (_p, addr) = support::openssl_server(&chain, dir.path(), &["-tls1_2", "-cipher", cipher, "-serverpref"]).await;
    let r = one(addr).await;
    assert_eq!(offered(&r), vec!["TLSv1.2"]);
    assert_eq!(
        suites(&r, "TLSv1.2"),
        vec![0x002f, 0xc030, 0x009e],
        "server order: {r:#?}"
    );
    assert_eq!(pref(&r, "TLSv1.2"), Some("server"));
    let entry = &r.protocol_ciphers[0].ciphers;
    assert_eq!(entry[0].kex_info, "RSA");
    assert!(entry[1].kex_info.starts_with("ECDH "), "{:?}", entry[1]);
    assert!(entry[2].kex_info.starts_with("DH "), "{:?}", entry[2]);
    assert!(r.enumeration_errors.is_empty(), "{:?}", r.enumeration_errors);
}

#[tokio::test]
async fn openssl_client_preference() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("enum cpref", &["cpref.test"], KeyKind::Rsa2048).unwrap();
    let cipher = "AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256";
    let (_p, addr) = support::openssl_server(&chain, dir.path(), &["-tls1_2", "-cipher", cipher]).await;
    let r = one(addr).await;
    assert_eq!(set(&suites(&r, "TLSv1.2")), set(&[0x002f, 0xc030, 0x009e]));
    assert_eq!(pref(&r, "TLSv1.2"), Some("client"));
}

#[tokio::test]
async fn legacy_only_server_is_enumerated_and_its_chain_read_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("enum legacy", &["legacy.test"], KeyKind::Rsa2048).unwrap();
    let args = [
        "-no_tls1_2",
        "-no_tls1_3",
        "-cipher",
        "AES256-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0",
    ];
    let (_p, addr) = support::openssl_server(&chain, dir.path(), &args).await;
    let r = one(addr).await;
    // rustls cannot talk to it, yet it is a TLS endpoint with a known chain.
    assert_eq!(r.category, Category::Discovered);
    assert!(r.handshake.as_ref().unwrap().error.is_some());
    assert_eq!(offered(&r), vec!["TLSv1.0", "TLSv1.1"]);
    for p in ["TLSv1.0", "TLSv1.1"] {
        assert_eq!(set(&suites(&r, p)), set(&[0x0035, 0xc013]), "{p}");
    }
    assert_eq!(r.chain.len(), 2, "chain from the plaintext Certificate message");
    assert_eq!(
        r.certificate.as_ref().unwrap().common_name.as_deref(),
        Some("legacy.test")
    );
    let f = r.features.as_ref().unwrap();
    assert_eq!(f.fallback_scsv, Some(true), "OpenSSL honours TLS_FALLBACK_SCSV");
    assert_eq!(f.secure_renegotiation, Some(true));
}

#[tokio::test]
async fn tls13_only_server_with_chosen_suites_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("enum t13", &["t13.test"], KeyKind::EcdsaP256).unwrap();
    let args = [
        "-tls1_3",
        "-ciphersuites",
        "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256",
        "-groups",
        "X25519:P-384",
    ];
    let (_p, addr) = support::openssl_server(&chain, dir.path(), &args).await;
    let r = one(addr).await;
    assert_eq!(offered(&r), vec!["TLSv1.3"]);
    assert_eq!(set(&suites(&r, "TLSv1.3")), set(&[0x1301, 0x1303, 0x1304]));
    let kx = r.key_exchange.as_ref().unwrap();
    assert_eq!(kx.groups, vec!["x25519", "secp384r1"]);
}

#[tokio::test]
async fn rustls_server_accepts_exactly_its_provider_suites() {
    let chain = testbed::issue_chain("enum rustls", &["rustls.test"], KeyKind::EcdsaP256).unwrap();
    let (cfg, _) = testbed::rustls_config(
        chain.presented(),
        &chain.leaf_key,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    )
    .unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let _s = testbed::serve_tls(l, cfg);
    let r = one(addr).await;
    assert_eq!(offered(&r), vec!["TLSv1.2", "TLSv1.3"]);
    assert_eq!(set(&suites(&r, "TLSv1.3")), set(&[0x1301, 0x1302, 0x1303]));
    // ECDSA key: the three ECDHE-ECDSA AEAD suites rustls implements.
    assert_eq!(set(&suites(&r, "TLSv1.2")), set(&[0xc02b, 0xc02c, 0xcca9]));
    let f = r.features.as_ref().unwrap();
    assert_eq!(f.extended_master_secret, Some(true));
    assert_eq!(f.secure_renegotiation, Some(true));
    assert_eq!(f.heartbeat, Some(false));
    assert!(
        f.alpn.contains(&"h2".to_string()) && f.alpn.contains(&"http/1.1".to_string()),
        "{:?}",
        f.alpn
    );
    assert!(r.key_exchange.as_ref().unwrap().groups.contains(&"x25519".to_string()));
}

#[tokio::test]
async fn nginx_with_static_rsa_only() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("enum nginx", &["nginx.test"], KeyKind::Rsa2048).unwrap();
    let (_n, tls, _) = support::nginx_with(&chain, dir.path(), "TLSv1.2", "AES128-SHA:AES256-GCM-SHA384").await;
    let r = one(tls).await;
    assert_eq!(offered(&r), vec!["TLSv1.2"]);
    assert_eq!(set(&suites(&r, "TLSv1.2")), set(&[0x002f, 0x009d]));
    assert!(
        r.protocol_ciphers[0]
            .ciphers
            .iter()
            .all(|c| !c.forward_secrecy && c.kex_info == "RSA")
    );
}

fn server_hello(version: ProtocolVersion, suite: u16) -> Vec<u8> {
    let sh = ServerHello {
        legacy_version: version,
        random: Random([7; 32]),
        session_id: Vec::new(),
        cipher_suite: CipherSuite(suite),
        compression: Compression::Null,
        extensions: Vec::new(),
    };
    let mut body = Vec::new();
    sh.encode(&mut body);
    HandshakeMessage {
        typ: HandshakeType::ServerHello,
        body,
    }
    .to_records(version)
}

async fn hostile(serve: impl FnOnce(TcpListener) -> tokio::task::JoinHandle<()>) -> (enumerate::Enumeration, Duration) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let _s = serve(l);
    let cfg = EnumConfig {
        deadline: Duration::from_millis(400),
        per_host: 8,
        ..EnumConfig::default()
    };
    let t0 = Instant::now();
    let e = enumerate::enumerate(addr, None, cfg).await;
    (e, t0.elapsed())
}

#[tokio::test]
async fn hostile_servers_end_in_typed_results_within_bounds() {
    // A ServerHello choosing a suite that was never offered.
    let (e, _) = hostile(|l| testbed::serve_bytes(l, server_hello(ProtocolVersion::TLSv1_2, 0xfefe))).await;
    assert!(e.versions.is_empty(), "{:?}", e.versions);
    assert!(e.errors.iter().any(|m| m.contains("not offered")), "{:?}", e.errors);

    // A record longer than 2^14 (plaintext limit) and a truncated record.
    let (e, _) = hostile(|l| testbed::serve_bytes(l, vec![0x16, 0x03, 0x03, 0x40, 0x01, 0x02])).await;
    assert!(e.versions.is_empty());
    assert!(e.errors.iter().any(|m| m.contains("malformed")), "{:?}", e.errors);
    let (e, _) = hostile(|l| testbed::serve_then_reset(l, vec![0x16, 0x03, 0x03, 0x00, 0x30, 0x02, 0x00])).await;
    assert!(e.versions.is_empty());

    // An endless stream of one-byte handshake fragments: the deframer's caps stop it.
    let (e, took) = hostile(|l| testbed::serve_endless(l, vec![0x16, 0x03, 0x03, 0x00, 0x01, 0x0b], 8 << 20)).await;
    assert!(e.versions.is_empty());
    assert!(e.errors.iter().any(|m| m.contains("malformed")), "{:?}", e.errors);
    assert!(took < Duration::from_secs(20), "{took:?}");

    // An SSLv2 SERVER-HELLO in answer to everything.
    let sslv2 = vec![
        0x80, 0x0c, 0x04, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x01, 0x01, 0x00, 0x80,
    ];
    let (e, _) = hostile(|l| testbed::serve_bytes(l, sslv2)).await;
    assert!(
        e.versions.is_empty(),
        "TLS versions from an SSLv2 answer: {:?}",
        e.versions
    );

    // A reset right after a valid ServerHello: the suite was chosen, so it counts.
    let (e, _) = hostile(|l| testbed::serve_then_reset(l, server_hello(ProtocolVersion::TLSv1_2, 0x002f))).await;
    assert!(e.errors.iter().all(|m| !m.contains("panic")));
    assert!(
        e.versions
            .values()
            .all(|v| v.accepted.iter().all(|a| a.suite == CipherSuite(0x002f)))
    );

    // Silence: the enumeration gives up after a few timeouts instead of
    // waiting out every probe's deadline.
    let (e, took) = hostile(testbed::serve_stall).await;
    assert!(e.versions.is_empty());
    assert!(
        e.errors.iter().any(|m| m.contains("stopped answering")),
        "{:?}",
        e.errors
    );
    assert!(took < Duration::from_secs(10), "stalling server cost {took:?}");
    assert!(e.connections < 40, "{} connections to a silent server", e.connections);
}

/// Debian's OpenSSL 3 has no RC4 or 3DES; gnutls-serv still serves them.
/// It binds every address, so it gets a free port and is only ever talked
/// to on 127.0.0.1.
#[tokio::test]
async fn gnutls_serves_rc4_and_3des_and_we_find_them() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("enum gnutls", &["gnutls.test"], KeyKind::Rsa2048).unwrap();
    let cert = support::write(dir.path(), "chain.pem", &chain.chain_pem());
    let key = support::write(dir.path(), "key.pem", &chain.leaf_key_pem);
    let lo = "127.0.0.1".parse().unwrap();
    let addr = SocketAddr::new(lo, support::free_port(lo));
    let child = std::process::Command::new("gnutls-serv")
        .args(["--http", "--quiet", "--heartbeat", "--port", &addr.port().to_string()])
        .args([
            "--priority",
            "NORMAL:+3DES-CBC:+ARCFOUR-128:+RSA:+VERS-TLS1.0:+VERS-TLS1.1:+SHA1:+MD5",
        ])
        .arg("--x509certfile")
        .arg(&cert)
        .arg("--x509keyfile")
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gnutls-serv must be installed (apt-get install gnutls-bin)");
    let mut p = support::Proc {
        child,
        name: "gnutls-serv",
    };
    support::wait_listening(addr, &mut p).await;
    let r = one(addr).await;
    for proto in ["TLSv1.0", "TLSv1.1", "TLSv1.2"] {
        let s = set(&suites(&r, proto));
        assert!(
            s.contains(&0x000a),
            "{proto}: TLS_RSA_WITH_3DES_EDE_CBC_SHA missing from {s:x?}"
        );
        assert!(
            s.contains(&0x0005),
            "{proto}: TLS_RSA_WITH_RC4_128_SHA missing from {s:x?}"
        );
    }
    let rc4 = r
        .protocol_ciphers
        .iter()
        .flat_map(|p| &p.ciphers)
        .find(|c| c.code == 0x0005)
        .unwrap();
    assert_eq!((rc4.encryption.as_str(), rc4.bits), ("RC4", 128));
    let f = r.features.as_ref().unwrap();
    assert_eq!(
        f.heartbeat,
        Some(true),
        "gnutls-serv --heartbeat negotiates the heartbeat extension"
    );
    // RC4 and 3DES with TLS 1.1+ cap the grade at C.
    let g = r.grade.as_ref().unwrap();
    assert!(g.caps.iter().any(|c| c.reason.contains("RC4")), "{:?}", g.caps);
}
