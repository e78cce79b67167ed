//! The endpoint budget (`--endpoint-budget`) against a real server that
//! stops answering: a TLS server (rustls, test PKI) behind a loopback proxy
//! that relays the first N connections and, from then on, accepts and holds
//! every connection without a byte in answer. The scan must end within the
//! budget plus a margin, and the record must name what was cut.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use netsensor::model::record::{EndpointRecord, Transport};
use testbed::{self, KeyKind};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{find, quick, scan};

/// A rustls server speaking TLS 1.2 and 1.3 with an HTTP answer.
async fn server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let chain = testbed::issue_chain("budget", &["budget.test"], KeyKind::EcdsaP256).unwrap();
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let (cfg, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &versions).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (addr, testbed::serve_tls_with_headers(l, cfg, ""))
}

/// Relay the first `relayed` connections to `upstream`; accept every later
/// one and hold it, reading and dropping what comes, never answering.
/// Returns the proxy's address and the count of connections it accepted.
async fn stalling_proxy(upstream: SocketAddr, relayed: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = l.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                if n <= relayed {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                } else {
                    // Bounded: the scan closes its end at its deadline, or the
                    // test's runtime ends and drops this task.
                    let mut buf = [0u8; 4096];
                    while let Ok(k) = client.read(&mut buf).await {
                        if k == 0 {
                            break;
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

async fn scan_one(addr: SocketAddr, budget: Option<Duration>) -> (EndpointRecord, Duration) {
    let mut opts = quick();
    opts.handshake_timeout = Duration::from_secs(5);
    opts.endpoint_budget = budget;
    let t0 = Instant::now();
    let records = scan(&["127.0.0.1"], &[], &addr.port().to_string(), opts).await;
    (find(&records, addr).clone(), t0.elapsed())
}

/// Only the first handshake is answered: the enumeration stalls, the budget
/// cuts it, and the stages that needed it are named with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stalls_after_the_handshake_is_cut_at_the_budget() {
    let (upstream, _srv) = server().await;
    let (proxy, _) = stalling_proxy(upstream, 1).await;
    let budget = Duration::from_millis(1500);
    let (r, took) = scan_one(proxy, Some(budget)).await;
    // Without the budget one stalled exchange alone waits its 5 s deadline.
    assert!(took < budget + Duration::from_millis(2500), "took {took:?}");
    assert_eq!(r.transport, Transport::Tls, "{r:#?}");
    assert!(r.certificate.is_some(), "the first handshake's chain is kept");
    for stage in ["enumeration: budget", "vulnerabilities: budget", "tls_extras: budget"] {
        assert!(
            r.not_probed.iter().any(|s| s == stage),
            "{stage} missing: {:?}",
            r.not_probed
        );
    }
    assert!(
        r.not_probed.iter().all(|s| s.ends_with(": budget")),
        "{:?}",
        r.not_probed
    );
    assert!(
        r.protocol_ciphers.is_empty(),
        "a cut enumeration leaves no partial suite list"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["not_probed"].is_array(), "{json}");
}

/// The enumeration and the `GET /` are answered, then the server stalls:
/// the cut lands on the later stages only, and the record says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stalls_after_the_enumeration_names_the_later_stages() {
    let (upstream, _srv) = server().await;
    // An unhindered run first: how many connections the handshake, the
    // enumeration and the GET take, and that nothing is cut without a stall.
    let (open, _) = stalling_proxy(upstream, usize::MAX).await;
    let (full, _) = scan_one(open, Some(Duration::from_secs(60))).await;
    assert!(full.not_probed.is_empty(), "{:?}", full.not_probed);
    let enumerated = full.enumeration_connections.expect("the enumeration ran") as usize;
    assert!(!full.protocol_ciphers.is_empty());

    let (proxy, seen) = stalling_proxy(upstream, 1 + enumerated + 1).await;
    let budget = Duration::from_millis(2500);
    let (r, took) = scan_one(proxy, Some(budget)).await;
    assert!(took < budget + Duration::from_millis(2500), "took {took:?}");
    assert!(seen.load(Ordering::SeqCst) > 1 + enumerated + 1, "something was held");
    assert!(!r.not_probed.is_empty(), "the stalled stages are named");
    assert!(
        r.not_probed.iter().all(|s| s.ends_with(": budget")),
        "{:?}",
        r.not_probed
    );
    assert!(
        r.not_probed
            .iter()
            .any(|s| s == "vulnerabilities: budget" || s == "tls_extras: budget"),
        "{:?}",
        r.not_probed
    );
    // What finished is as in the full run.
    if !r.not_probed.iter().any(|s| s == "enumeration: budget") {
        assert_eq!(r.protocol_ciphers, full.protocol_ciphers);
    }
}
