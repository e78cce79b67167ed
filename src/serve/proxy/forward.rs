//! Plain-HTTP forwarding (`--forward-http`): an absolute-form request
//! (`GET http://host/path`) sent on to an allowlisted origin through hyper's
//! client, its answer streamed back.
//!
//! Each request is checked on its own, including the later ones on a
//! kept-alive connection (hyper hands every request to the proxy); the origin
//! gets the request in origin form with the allowlisted destination's `Host`,
//! without hop-by-hop headers or the proxy credentials, and without
//! `Content-Length` when `Transfer-Encoding` is present (RFC 9112 §6.3: hyper
//! reads such a body as chunked, and the origin must read it the same way).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::Refusal;
use super::request::{self, Authority};
use super::server::{Proxy, Refused};

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the proxy's own credentials.
const HOP: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::HeaderName::from_static("proxy-connection"),
    header::HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// The headers the origin gets for an agent's `headers` (pure).
pub fn origin_headers(headers: &HeaderMap, authority: &Authority) -> HeaderMap {
    let mut out = headers.clone();
    // Headers the agent named in `Connection` are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for name in named {
        if let Ok(n) = header::HeaderName::from_bytes(name.as_bytes()) {
            out.remove(n);
        }
    }
    for h in &HOP {
        out.remove(h);
    }
    if out.contains_key(header::TRANSFER_ENCODING) {
        out.remove(header::CONTENT_LENGTH);
    }
    let host = if authority.host.contains(':') {
        format!("[{}]", authority.host)
    } else {
        authority.host.clone()
    };
    let host = if authority.port == 80 {
        host
    } else {
        format!("{host}:{}", authority.port)
    };
    if let Ok(v) = HeaderValue::from_str(&host) {
        out.insert(header::HOST, v);
    }
    out.insert(header::CONNECTION, HeaderValue::from_static("close"));
    out
}

/// Forwards `req` to its allowlisted origin and streams the answer back.
pub async fn forward(proxy: &Arc<Proxy>, req: Request<Incoming>, peer: SocketAddr) -> Result<Response<Body>, Refused> {
    let target = req.uri().to_string();
    proxy.check_credentials(&req)?;
    let (authority, path) = request::parse_absolute(&target).ok_or_else(|| {
        proxy.refused(
            StatusCode::BAD_REQUEST,
            Refusal::BadRequest,
            &target,
            "not an http:// URL without user info".into(),
        )
    })?;
    let upstream = proxy.open(&authority, &target).await?;
    let started = Instant::now();
    let unreachable = |detail: String| proxy.refused(StatusCode::BAD_GATEWAY, Refusal::Unreachable, &target, detail);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(upstream))
        .await
        .map_err(|e| unreachable(format!("origin: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let (parts, body) = req.into_parts();
    let uri: Uri = path
        .parse()
        .map_err(|_| proxy.refused(StatusCode::BAD_REQUEST, Refusal::BadRequest, &target, "bad path".into()))?;
    let mut out = Request::new(body);
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = uri;
    *out.version_mut() = parts.version;
    *out.headers_mut() = origin_headers(&parts.headers, &authority);
    if let Some(hook) = &proxy.config.on_agent {
        hook(peer.ip());
    }
    proxy.counters.tunnels_total.fetch_add(1, Ordering::Relaxed);
    let answer = sender
        .send_request(out)
        .await
        .map_err(|e| unreachable(format!("origin: {e}")))?;
    tracing::info!(
        agent = %peer,
        target = %target,
        http = ?parts.version,
        mode = "forward",
        status = answer.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        outcome = "closed",
        "tunnel"
    );
    let (mut head, body) = answer.into_parts();
    let origin_closes = head
        .headers
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    for h in &HOP {
        head.headers.remove(h);
    }
    if origin_closes {
        head.headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(Response::from_parts(head, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_headers_drop_hop_by_hop_credentials_and_a_conflicting_length() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("agent-chosen.example"));
        h.insert(header::PROXY_AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        let a = Authority {
            host: "repo.example".into(),
            port: 8080,
        };
        let out = origin_headers(&h, &a);
        assert_eq!(out[header::HOST], "repo.example:8080");
        assert_eq!(out[header::CONNECTION], "close");
        assert_eq!(out[header::ACCEPT], "*/*");
        assert_eq!(out[header::TRANSFER_ENCODING], "chunked");
        for gone in ["proxy-authorization", "x-secret", "content-length"] {
            assert!(!out.contains_key(gone), "{gone}");
        }
        let v6 = origin_headers(
            &HeaderMap::new(),
            &Authority {
                host: "::1".into(),
                port: 80,
            },
        );
        assert_eq!(v6[header::HOST], "[::1]");
    }
}
