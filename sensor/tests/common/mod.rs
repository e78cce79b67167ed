//! Helpers shared by the binary's end-to-end tests (`appliance`, `reporting`):
//! the real `sensor` executable, loopback TLS servers that can be restarted
//! on the same port, free ports, and bounded waiting.

#![allow(dead_code)] // each test crate uses its own subset

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use testbed::{self, KeyKind};
use tokio::net::{TcpListener, TcpSocket};

/// The `sensor` binary under test.
pub fn sensor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sensor"))
}

/// A listener on a fixed port that can be re-bound after the old one is gone.
pub fn bind_reusable(addr: SocketAddr) -> TcpListener {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind(addr).unwrap();
    s.listen(64).unwrap()
}

/// A TLS 1.3 server on 127.0.0.1:`port` with a fresh chain whose CA is named by `tag`.
pub async fn tls_server(port: u16, tag: &str) -> tokio::task::JoinHandle<()> {
    let chain = testbed::issue_chain(tag, &["sensor.test"], KeyKind::EcdsaP256).unwrap();
    let (cfg, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).unwrap();
    testbed::serve_tls(bind_reusable(SocketAddr::from(([127, 0, 0, 1], port))), cfg)
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until `cond` holds.
pub async fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

/// SIGKILL `child` and reap it.
pub fn kill9(child: &mut std::process::Child) {
    let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
    let _ = child.wait();
}

/// SIGTERM `child`, wait up to 20 s for it to exit, then SIGKILL it.
pub fn term(child: &mut std::process::Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    kill9(child);
}
