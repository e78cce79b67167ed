//! The post-quantum servers of `tests/it/modern.rs`, for the peers to be
//! pointed at (`benches/conformance/modern.py --only pq`): rustls servers on
//! free ports of 127.0.0.1 choosing the key-exchange group in their own
//! order (`serve_tls_server_group_order`), plus one following the client's
//! order. Prints `NAME<TAB>PORT` per server, then serves until killed.
//!
//!     cargo run -p netsensor-testbed --example pq_servers

use rustls::crypto::aws_lc_rs::kx_group;
use testbed::KeyKind;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), testbed::Error> {
    let chain = testbed::issue_chain("pq bench", &["pq.test"], KeyKind::EcdsaP256)?;
    let servers: Vec<(&str, Vec<&'static dyn rustls::crypto::SupportedKxGroup>)> = vec![
        (
            "prefers X25519MLKEM768",
            vec![kx_group::X25519MLKEM768, kx_group::X25519, kx_group::SECP256R1],
        ),
        (
            "prefers x25519 (hybrid second)",
            vec![kx_group::X25519, kx_group::X25519MLKEM768, kx_group::SECP256R1],
        ),
        ("classical only", vec![kx_group::X25519, kx_group::SECP256R1]),
        ("X25519MLKEM768 only", vec![kx_group::X25519MLKEM768]),
        ("MLKEM768 only", vec![kx_group::MLKEM768]),
    ];
    let mut handles = Vec::new();
    for (name, groups) in servers {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        handles.push(testbed::serve_tls_server_group_order(
            listener,
            chain.presented(),
            &chain.leaf_key,
            groups,
        )?);
        println!("{name}\t{port}");
    }
    // Tell the reader everything is listening.
    println!("ready");
    for h in handles {
        let _ = h.await;
    }
    Ok(())
}
