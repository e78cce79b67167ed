//! `scan::run` end to end against real servers: TLS found with the exact
//! chain, plaintext services unsecured, closed vs filtered, IPv6, exclusions,
//! SNI for names, and hostile servers bounded by their deadline.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netsensor::model::cert;
use netsensor::model::record::{Category, EndpointRecord, FailureKind, Transport};
use testbed::{self, KeyKind};
use tokio::net::{TcpListener, TcpSocket};

use crate::support::{self, find, quick, scan};

fn assert_chain(r: &EndpointRecord, expected: &[Vec<u8>]) {
    assert_eq!(r.category, Category::Discovered, "{r:#?}");
    assert_eq!(r.transport, Transport::Tls);
    assert_eq!(r.chain.len(), expected.len(), "chain length: {r:#?}");
    for (got, der) in r.chain.iter().zip(expected) {
        let want = cert::parse(der).expect("own certificate parses");
        assert_eq!(got.thumbprint, cert::thumbprint(der));
        assert_eq!(got.subject_dn, want.subject_dn);
        assert_eq!(got.serial_number, want.serial_number);
    }
    assert_eq!(r.certificate.as_ref(), r.chain.first());
}

#[tokio::test]
async fn finds_rustls_servers_with_their_chains_on_v4_and_v6() {
    let chain13 = testbed::issue_chain("it rustls13", &["r13.test"], KeyKind::EcdsaP256).unwrap();
    let chain12 = testbed::issue_chain("it rustls12", &["r12.test"], KeyKind::Rsa2048).unwrap();
    let (cfg13, _) =
        testbed::rustls_config(chain13.presented(), &chain13.leaf_key, &[&rustls::version::TLS13]).unwrap();
    let (cfg12, _) =
        testbed::rustls_config(chain12.presented(), &chain12.leaf_key, &[&rustls::version::TLS12]).unwrap();
    let l13 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l12 = TcpListener::bind("[::1]:0").await.unwrap();
    let (a13, a12) = (l13.local_addr().unwrap(), l12.local_addr().unwrap());
    let _s = (testbed::serve_tls(l13, cfg13), testbed::serve_tls(l12, cfg12));

    let ports = format!("{},{}", a13.port(), a12.port());
    let records = scan(&["127.0.0.1", "::1"], &[], &ports, quick()).await;

    let r = find(&records, a13);
    assert_chain(r, &chain13.presented());
    let h = r.handshake.as_ref().unwrap();
    assert_eq!(h.protocol.as_deref(), Some("TLSv1.3"));
    assert_eq!(h.cipher_suite.as_ref().unwrap().code >> 8, 0x13);
    assert_eq!(h.alpn.as_deref(), Some("h2"));
    assert!(h.group.is_some());
    assert_eq!(r.certificate.as_ref().unwrap().common_name.as_deref(), Some("r13.test"));
    assert_eq!(r.certificate.as_ref().unwrap().key_algorithm, "EC");

    let r = find(&records, a12);
    assert!(r.address.is_ipv6());
    assert_chain(r, &chain12.presented());
    let h = r.handshake.as_ref().unwrap();
    assert_eq!(h.protocol.as_deref(), Some("TLSv1.2"));
    let suite = h.cipher_suite.as_ref().unwrap();
    assert!(suite.name.starts_with("TLS_ECDHE_RSA_WITH_"), "{suite:?}");
    assert_eq!(r.certificate.as_ref().unwrap().key_size, Some(2048));
}

#[tokio::test]
async fn finds_openssl_tls12_and_tls13_servers() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("it openssl", &["ossl.test"], KeyKind::Rsa2048).unwrap();
    let d12 = dir.path().join("12");
    let d13 = dir.path().join("13");
    std::fs::create_dir_all(&d12).unwrap();
    std::fs::create_dir_all(&d13).unwrap();
    let (_p12, a12) = support::openssl_server(&chain, &d12, &["-tls1_2"]).await;
    let (_p13, a13) = support::openssl_server(&chain, &d13, &["-tls1_3"]).await;
    let records = scan(&["127.0.0.1"], &[], &format!("{},{}", a12.port(), a13.port()), quick()).await;
    let r12 = find(&records, a12);
    assert_chain(r12, &chain.presented());
    assert_eq!(r12.handshake.as_ref().unwrap().protocol.as_deref(), Some("TLSv1.2"));
    let r13 = find(&records, a13);
    assert_chain(r13, &chain.presented());
    assert_eq!(r13.handshake.as_ref().unwrap().protocol.as_deref(), Some("TLSv1.3"));
}

#[tokio::test]
async fn nginx_tls_is_discovered_and_its_plain_port_unsecured() {
    let dir = tempfile::tempdir().unwrap();
    let chain = testbed::issue_chain("it nginx", &["nginx.test"], KeyKind::EcdsaP384).unwrap();
    let (_nginx, tls, http) = support::nginx(&chain, dir.path()).await;
    let records = scan(&["127.0.0.1"], &[], &format!("{},{}", tls.port(), http.port()), quick()).await;
    let r = find(&records, tls);
    assert_chain(r, &chain.presented());
    assert_eq!(r.certificate.as_ref().unwrap().key_curve.as_deref(), Some("secp384r1"));
    let r = find(&records, http);
    assert_eq!(r.category, Category::Unsecured);
    assert_eq!(r.transport, Transport::Plain);
    assert_eq!(r.service.as_deref(), Some("http"));
    let plain = r.plain.as_ref().unwrap();
    assert!(plain.server.as_deref().unwrap_or("").starts_with("nginx"), "{plain:?}");
    assert_eq!(r.handshake.as_ref().unwrap().error_kind, Some(FailureKind::NotTls));
}

#[tokio::test]
async fn plain_http_listener_is_unsecured_with_its_server_header() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let _s = testbed::serve_http(l);
    let records = scan(&["127.0.0.1"], &[], &a.port().to_string(), quick()).await;
    let r = find(&records, a);
    assert_eq!(r.category, Category::Unsecured);
    assert_eq!(r.service.as_deref(), Some("http"));
    assert_eq!(r.plain.as_ref().unwrap().server.as_deref(), Some("netsensor-testbed"));
    assert!(r.certificate.is_none());
}

/// A listener whose accept queue is full drops SYNs: a real "filtered" port
/// on loopback, without firewall rules.
async fn filtered_port() -> (TcpListener, Vec<tokio::net::TcpStream>, SocketAddr) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..2 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    (listener, fillers, addr)
}

#[tokio::test]
async fn closed_and_filtered_ports_are_told_apart() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (_keep, _fill, filtered) = filtered_port().await;
    let mut opts = quick();
    opts.show_closed = true;
    opts.portscan.connect_timeout = Duration::from_millis(400);
    let records = scan(
        &["127.0.0.1"],
        &[],
        &format!("{},{}", closed.port(), filtered.port()),
        opts.clone(),
    )
    .await;
    let c = find(&records, closed);
    assert_eq!(c.category, Category::Closed);
    assert_eq!(c.port_reason, "conn-refused");
    let f = find(&records, filtered);
    assert_eq!(f.category, Category::Filtered);
    assert_eq!(f.port_reason, "no-response");
    // Without --show-closed neither appears.
    opts.show_closed = false;
    let records = scan(
        &["127.0.0.1"],
        &[],
        &format!("{},{}", closed.port(), filtered.port()),
        opts,
    )
    .await;
    assert!(records.is_empty(), "{records:#?}");
}

#[tokio::test]
async fn exclusions_are_never_probed() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let _s = testbed::serve_http(l);
    let records = scan(&["127.0.0.0/30"], &["127.0.0.1"], &a.port().to_string(), quick()).await;
    assert!(records.iter().all(|r| r.address != a.ip()), "{records:#?}");
    let records = scan(&["127.0.0.0/30"], &[], &a.port().to_string(), quick()).await;
    assert_eq!(records.iter().filter(|r| r.address == a.ip()).count(), 1);
}

#[tokio::test]
async fn host_name_targets_send_sni_and_address_targets_do_not() {
    let chain = testbed::issue_chain("it sni", &["localhost"], KeyKind::EcdsaP256).unwrap();
    let (cfg, log) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let _s = testbed::serve_tls(l, cfg);
    let records = scan(&["localhost"], &[], &a.port().to_string(), quick()).await;
    let r = find(&records, a);
    assert_eq!(r.hostname.as_deref(), Some("localhost"));
    assert_eq!(r.category, Category::Discovered);
    // Every hello, the rustls handshake's and the enumeration's, names the host.
    let seen = log.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| s.as_deref() == Some("localhost")),
        "{seen:?}"
    );

    let before = seen.len();
    let records = scan(&["127.0.0.1"], &[], &a.port().to_string(), quick()).await;
    assert_eq!(find(&records, a).hostname, None);
    let after = log.seen();
    assert!(after.len() > before);
    assert!(
        after[before..].iter().all(Option::is_none),
        "an address target must not send SNI: {after:?}"
    );
}

#[tokio::test]
async fn a_stalling_server_fails_within_the_deadline() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let _s = testbed::serve_stall(l);
    let mut opts = quick();
    opts.handshake_timeout = Duration::from_millis(700);
    let started = Instant::now();
    let records = scan(&["127.0.0.1"], &[], &a.port().to_string(), opts).await;
    let elapsed = started.elapsed();
    let r = find(&records, a);
    assert_eq!(r.category, Category::Unsecured);
    let h = r.handshake.as_ref().unwrap();
    assert_eq!(h.error_kind, Some(FailureKind::Timeout), "{h:?}");
    assert!(h.duration_ms >= 600, "{h:?}");
    // Bounded: one deadline plus scheduling slack, not the kernel's minutes.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test]
async fn garbage_answers_are_results_not_errors() {
    // Plaintext garbage, a TLS-looking record that is malformed, and an
    // oversized record header: each a failed handshake with a reason.
    let cases: Vec<(Vec<u8>, Category)> = vec![
        (b"\x00\x01garbage\xff\xfe".to_vec(), Category::Unsecured),
        (
            vec![0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0xff, 0xff, 0xff],
            Category::Discovered,
        ),
        (vec![0x16, 0x03, 0x03, 0x40, 0x01], Category::Discovered),
        (vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28], Category::Discovered),
    ];
    let mut addrs = Vec::new();
    let mut servers = Vec::new();
    for (bytes, _) in &cases {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        addrs.push(l.local_addr().unwrap());
        servers.push(testbed::serve_bytes(l, bytes.clone()));
    }
    let ports: Vec<String> = addrs.iter().map(|a| a.port().to_string()).collect();
    let records = scan(&["127.0.0.1"], &[], &ports.join(","), quick()).await;
    for ((bytes, category), addr) in cases.iter().zip(&addrs) {
        let r = find(&records, *addr);
        assert_eq!(r.category, *category, "{bytes:02x?}: {r:#?}");
        let h = r.handshake.as_ref().unwrap();
        assert!(h.error.is_some(), "{bytes:02x?}: {h:?}");
        assert!(r.chain.is_empty());
    }
    let alert = find(&records, addrs[3]);
    assert_eq!(
        alert.handshake.as_ref().unwrap().error_kind,
        Some(FailureKind::TlsAlert)
    );
}

#[tokio::test]
async fn a_server_that_hangs_up_is_probed_for_a_banner() {
    // Accepts, reads the ClientHello, closes: then, on a second connection,
    // speaks first like SSH does.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    let _s = tokio::spawn(async move {
        let mut n = 0;
        loop {
            let Ok((mut s, _)) = l.accept().await else { continue };
            n += 1;
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if n == 1 {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                drop(s);
            } else {
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    });
    let records = scan(&["127.0.0.1"], &[], &a.port().to_string(), quick()).await;
    let r = find(&records, a);
    assert_eq!(r.category, Category::Unsecured);
    assert_eq!(r.service.as_deref(), Some("ssh"));
    assert_eq!(
        r.plain.as_ref().unwrap().banner.as_deref(),
        Some("SSH-2.0-OpenSSH_9.2p1 Debian-2")
    );
}
