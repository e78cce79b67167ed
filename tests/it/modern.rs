//! What today's TLS needs checked (issue 22), against real servers: post-quantum
//! groups from rustls servers with chosen key-exchange groups.

use std::net::SocketAddr;

use netsensor::model::record::EndpointRecord;
use rustls::crypto::SupportedKxGroup;
use rustls::crypto::aws_lc_rs::kx_group;
use testbed::{self, KeyKind};
use tokio::net::TcpListener;

use crate::support::{find, quick, scan};

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
