//! The sensor's own service port (48999): agent proxy, status and metrics
//! in plain HTTP unless it has a certificate.
//!
//! It tells TLS from plain HTTP by the first byte and, without a service
//! certificate, leaves a ClientHello unanswered; it never speaks first. So
//! a scan of the sensor's host found it "unsecured, unknown" after a
//! handshake timeout. Asked what it is (`GET /healthz`, open to anyone:
//! the status route needs a token), it says so in its `Server` header
//! (`netsensor/VERSION`): that names it, and the finding is actionable (give
//! it a certificate, or keep it on loopback).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::record::ServiceInfo;

/// The service port's default; `serve::proxy::DEFAULT_PORT` is the same.
pub const PORT: u16 = 48999;

/// Most of the health answer read.
const CAP: usize = 16 * 1024;

/// What the service port at `addr` says it is, within `deadline`; `None`
/// when it is not a sensor's.
pub async fn identify(addr: SocketAddr, deadline: Duration) -> Option<ServiceInfo> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: netsensor\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        (&mut s).take(CAP as u64).read_to_end(&mut answer).await.ok()?;
        Some(answer)
    };
    let answer = tokio::time::timeout(deadline, exchange).await.ok()??;
    parse(&answer)
}

/// The service info in a health answer (pure, for tests).
fn parse(answer: &[u8]) -> Option<ServiceInfo> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let mut lines = head.split("\r\n");
    if lines.next()?.split(' ').nth(1) != Some("200") {
        return None;
    }
    let server = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("server")
            .then(|| value.trim().to_string())
    })?;
    let version = server.strip_prefix("netsensor/")?;
    let version: String = version.chars().filter(|c| !c.is_control()).take(32).collect();
    Some(ServiceInfo {
        name: "netsensor".into(),
        banner: Some(format!("netsensor service port {version}, plain HTTP")),
        server: Some(format!("netsensor/{version}")),
        product: Some("netsensor".into()),
        version: Some(version),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensors_status_names_it_and_anything_else_does_not() {
        let ok =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nserver: netsensor/0.1.0\r\n\r\n{\"status\":\"ok\"}";
        let info = parse(ok).unwrap();
        assert_eq!(info.name, "netsensor");
        assert_eq!(info.version.as_deref(), Some("0.1.0"));
        assert!(info.banner.unwrap().contains("netsensor service port 0.1.0"));
        assert!(parse(b"HTTP/1.1 404 Not Found\r\nServer: netsensor/0.1.0\r\n\r\n").is_none());
        assert!(parse(b"HTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n{\"status\":\"ok\"}").is_none());
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\"}").is_none());
        assert!(parse(b"SSH-2.0-OpenSSH_9.2\r\n").is_none());
    }
}
