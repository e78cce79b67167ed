//! One `GET /` over TLS for the response headers that grading reads
//! (HSTS and the other security headers, `Server`).
//!
//! The body is never read: the response head is capped at 16 KiB and the
//! whole exchange at one deadline, so a server that streams forever or never
//! answers costs nothing more than the deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const HEAD_CAP: usize = 16 * 1024;

/// The status line and headers, as the grader reads them.
pub use crate::model::observed::HttpHeaders as ResponseHead;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("the response head is not complete")]
    Incomplete,
    #[error("the response head is larger than {HEAD_CAP} bytes")]
    TooLarge,
    #[error("not an HTTP response: {0}")]
    Malformed(String),
}

/// Parse a response head (pure). `bytes` may hold more than the head.
pub fn parse_head(bytes: &[u8]) -> Result<ResponseHead, HeadError> {
    let end = match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => i,
        None if bytes.len() >= HEAD_CAP => return Err(HeadError::TooLarge),
        None => return Err(HeadError::Incomplete),
    };
    let text = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(HeadError::Malformed(status_line.chars().take(60).collect()));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| HeadError::Malformed(status_line.chars().take(60).collect()))?;
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(ResponseHead { status, headers })
}

/// A client for the GET: HTTP/1.1 only, any certificate accepted. Built once
/// per process; every endpoint's GET shares it.
pub fn client() -> Result<TlsConnector, rustls::Error> {
    static CLIENT: std::sync::OnceLock<Result<TlsConnector, rustls::Error>> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let config = crate::probe::tls::observer_config(vec![b"http/1.1".to_vec()])?;
            Ok(TlsConnector::from(Arc::new(config)))
        })
        .clone()
}

/// `GET /` on `addr` over TLS with `Host: host`, returning the response head.
pub async fn get_head(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: Option<&str>,
    deadline: Duration,
) -> Result<ResponseHead, String> {
    let work = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let name = match sni.and_then(|s| ServerName::try_from(s.to_string()).ok()) {
            Some(n) => n,
            None => ServerName::IpAddress(addr.ip().into()),
        };
        let mut tls = connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
        let host = match (sni, addr) {
            (Some(h), _) => h.to_string(),
            (None, SocketAddr::V4(a)) => a.ip().to_string(),
            (None, SocketAddr::V6(a)) => format!("[{}]", a.ip()),
        };
        let port = if addr.port() == 443 {
            String::new()
        } else {
            format!(":{}", addr.port())
        };
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {host}{port}\r\nUser-Agent: netsensor/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            match parse_head(&buf) {
                Ok(head) => return Ok(head),
                Err(HeadError::Incomplete) => {}
                Err(e) => return Err(e.to_string()),
            }
            let n = tls.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before the response head ended".into());
            }
            let room = HEAD_CAP.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..n.min(room)]);
        }
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or_else(|_| Err(format!("no HTTP response within {} ms", deadline.as_millis())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_head() {
        let raw = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nStrict-Transport-Security: max-age=63072000; includeSubDomains\r\nX-Frame-Options:DENY\r\n\r\nbody";
        let h = parse_head(raw).unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.first("server"), Some("nginx"));
        assert_eq!(
            h.first("strict-transport-security"),
            Some("max-age=63072000; includeSubDomains")
        );
        assert_eq!(h.first("X-Frame-Options"), Some("DENY"));
        assert_eq!(h.headers.len(), 3);
    }

    #[test]
    fn rejects_partial_oversized_and_non_http() {
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
            Err(HeadError::Incomplete)
        );
        assert_eq!(parse_head(&vec![b'a'; HEAD_CAP]), Err(HeadError::TooLarge));
        assert!(matches!(parse_head(b"SSH-2.0-x\r\n\r\n"), Err(HeadError::Malformed(_))));
        assert!(matches!(
            parse_head(b"HTTP/1.1 abc\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }
}
