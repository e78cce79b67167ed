//! A second look at an open port that did not answer our ClientHello.
//!
//! Some services close silently on bytes they do not understand. One fresh
//! connection that first listens for a banner (SSH, SMTP, FTP speak first)
//! and otherwise asks an HTTP question tells most of them apart. Both reads
//! are bounded in time and size.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BANNER_CAP: usize = 4096;

/// Connect, wait up to `banner_wait` for the server to speak, else send an
/// HTTP request; return whatever arrived (possibly nothing) before `deadline`.
pub async fn banner(addr: SocketAddr, host: Option<&str>, banner_wait: Duration, deadline: Duration) -> Vec<u8> {
    let end = Instant::now() + deadline;
    let Ok(Ok(mut stream)) = tokio::time::timeout(deadline, TcpStream::connect(addr)).await else {
        return Vec::new();
    };
    let mut buf = vec![0u8; BANNER_CAP];
    if let Ok(Ok(n)) = tokio::time::timeout(banner_wait, stream.read(&mut buf)).await {
        buf.truncate(n);
        return buf;
    }
    let host = host.map(str::to_string).unwrap_or_else(|| match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    });
    let request = format!("GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: netsensor\r\nAccept: */*\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Vec::new();
    }
    let mut got = 0;
    while got < BANNER_CAP {
        match tokio::time::timeout_at(end, stream.read(&mut buf[got..])).await {
            Ok(Ok(n)) if n > 0 => {
                got += n;
                if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            _ => break,
        }
    }
    buf.truncate(got);
    buf
}
