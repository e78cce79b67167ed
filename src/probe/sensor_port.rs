//! The sensor's own service port (48999): agent proxy, status and metrics
//! in plain HTTP unless it has a certificate.
//!
//! It tells TLS from plain HTTP by the first byte and, without a service
//! certificate, leaves a ClientHello unanswered; it never speaks first. So
//! a scan of the sensor's host found it "unsecured, unknown" after a
//! handshake timeout. Asked what it is (`GET /api/v1/status`), it says:
//! that names it, and the finding is actionable (give it a certificate, or
//! keep it on loopback).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::record::ServiceInfo;

/// The service port's default; `serve::proxy::DEFAULT_PORT` is the same.
pub const PORT: u16 = 48999;

/// Most of the status document read.
const CAP: usize = 64 * 1024;

/// What the service port at `addr` says it is, within `deadline`; `None`
/// when it is not a sensor's.
pub async fn identify(addr: SocketAddr, deadline: Duration) -> Option<ServiceInfo> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let request = format!(
            "GET /api/v1/status HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: netsensor\r\nConnection: close\r\n\r\n"
        );
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        (&mut s).take(CAP as u64).read_to_end(&mut answer).await.ok()?;
        Some(answer)
    };
    let answer = tokio::time::timeout(deadline, exchange).await.ok()??;
    parse(&answer)
}

/// The service info in a status answer (pure, for tests).
fn parse(answer: &[u8]) -> Option<ServiceInfo> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    if head.split(' ').nth(1) != Some("200") {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_slice(&answer[split + 4..]).ok()?;
    let sensor = doc.get("sensor")?;
    let id = sensor.get("id")?.as_str()?;
    let version = sensor.get("version").and_then(|v| v.as_str()).map(str::to_string);
    let id: String = id.chars().filter(|c| !c.is_control()).take(64).collect();
    Some(ServiceInfo {
        name: "netsensor".into(),
        banner: Some(format!("netsensor service port, sensor {id}, plain HTTP")),
        server: None,
        product: Some("netsensor".into()),
        version: version.map(|v| v.chars().filter(|c| !c.is_control()).take(32).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sensors_status_names_it_and_anything_else_does_not() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"sensor\":{\"id\":\"lab-1\",\"name\":null,\"version\":\"0.1.0\"},\"profiles\":[]}";
        let info = parse(ok).unwrap();
        assert_eq!(info.name, "netsensor");
        assert_eq!(info.version.as_deref(), Some("0.1.0"));
        assert!(info.banner.unwrap().contains("sensor lab-1"));
        assert!(parse(b"HTTP/1.1 404 Not Found\r\n\r\n{\"sensor\":{\"id\":\"x\"}}").is_none());
        assert!(parse(b"HTTP/1.1 200 OK\r\n\r\n{\"status\":\"ok\"}").is_none());
        assert!(parse(b"SSH-2.0-OpenSSH_9.2\r\n").is_none());
    }
}
