//! The request head an agent sends, parsed without I/O.
//!
//! Pure and bounded, like mini-redis's `Frame::check`: [`parse_head`] looks at
//! the bytes read so far and says "incomplete", "here is the request" or "this
//! is not a request we will serve". The connection owns the read loop and the
//! size and time limits; nothing here allocates more than the head it is given.

use thiserror::Error;

/// What an agent asked for: the method, the request target and the one header
/// the proxy cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// `host:port` for CONNECT (authority form), anything for other methods.
    pub target: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// The `Proxy-Authorization` header value, if sent.
    pub proxy_authorization: Option<String>,
    /// Every header, names lower-cased, values trimmed, in order (the
    /// service routes on the same port need `Authorization`, `Content-Length`…).
    pub headers: Vec<(String, String)>,
    /// Length of the head including the blank line; bytes after it belong to the tunnel.
    pub head_len: usize,
}

/// Why a head cannot be served; each maps to one status line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeadError {
    #[error("malformed request line")]
    BadRequestLine,
    #[error("malformed header line")]
    BadHeader,
    #[error("unsupported HTTP version {0:?}")]
    BadVersion(String),
    #[error("request head exceeds {limit} bytes")]
    TooLarge { limit: usize },
}

/// A CONNECT target split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Lower case, no trailing dot, IPv6 literals without brackets.
    pub host: String,
    pub port: u16,
}

/// Parses the head at the start of `buf`: `Ok(None)` while the blank line has
/// not arrived and `buf` is within `limit`. Accepts CRLF and bare LF line ends.
pub fn parse_head(buf: &[u8], limit: usize) -> Result<Option<RequestHead>, HeadError> {
    let Some(head_len) = find_head_end(buf) else {
        return if buf.len() > limit {
            Err(HeadError::TooLarge { limit })
        } else {
            Ok(None)
        };
    };
    if head_len > limit {
        return Err(HeadError::TooLarge { limit });
    }
    let head = &buf[..head_len];
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let request_line = lines.next().ok_or(HeadError::BadRequestLine)?;
    let request_line = std::str::from_utf8(request_line).map_err(|_| HeadError::BadRequestLine)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::BadRequestLine);
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) || target.is_empty() {
        return Err(HeadError::BadRequestLine);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::BadVersion(version.chars().take(16).collect()));
    }
    let mut proxy_authorization = None;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let line = std::str::from_utf8(line).map_err(|_| HeadError::BadHeader)?;
        let (name, value) = line.split_once(':').ok_or(HeadError::BadHeader)?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(HeadError::BadHeader);
        }
        if name.eq_ignore_ascii_case("proxy-authorization") {
            proxy_authorization = Some(value.trim().to_string());
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Some(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        version: version.to_string(),
        proxy_authorization,
        headers,
        head_len,
    }))
}

/// The index just past the blank line ending the head (`\r\n\r\n` or `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(pos) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + pos;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

/// Splits a CONNECT target: `host:port`, `[v6]:port`. The port is required.
pub fn parse_authority(target: &str) -> Option<Authority> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, rest) = rest.split_once(']')?;
        (host, rest.strip_prefix(':')?)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    (valid && port != 0).then_some(Authority { host, port })
}

/// Splits an absolute-form target (`http://host[:port]/path?query`) into
/// the destination and the origin-form path to send it. Only `http`: an
/// `https://` URL would have to be fetched by the proxy in TLS, which this
/// pass-through proxy never does. User info (`user@host`) is refused.
pub fn parse_absolute(target: &str) -> Option<(Authority, String)> {
    let rest = target
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &target[7..])?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return None;
    }
    let with_port = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_string()
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Some((parse_authority(&with_port)?, path))
}

/// The head to send the origin for a forwarded plain-HTTP request: the
/// request line in origin form, the agent's end-to-end headers (hop-by-hop
/// and proxy credentials dropped) and `Connection: close` (one request per
/// connection keeps the forwarding path stateless).
pub fn forward_head(head: &RequestHead, authority: &Authority, path: &str) -> Vec<u8> {
    const HOP: [&str; 8] = [
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
    ];
    let mut out = format!("{} {path} {}\r\n", head.method, head.version);
    let mut host = false;
    for (name, value) in &head.headers {
        if HOP.contains(&name.as_str()) {
            continue;
        }
        host |= name == "host";
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !host {
        let h = if authority.host.contains(':') {
            format!("[{}]", authority.host)
        } else {
            authority.host.clone()
        };
        if authority.port == 80 {
            out.push_str(&format!("host: {h}\r\n"));
        } else {
            out.push_str(&format!("host: {h}:{}\r\n", authority.port));
        }
    }
    out.push_str("connection: close\r\n\r\n");
    out.into_bytes()
}

/// Checks a `Proxy-Authorization` value against the configured token:
/// `Bearer TOKEN`, or `Basic base64(user:TOKEN)` with any user name.
/// The token comparison takes the same time wherever the first difference is.
pub fn authorized(header: Option<&str>, token: &str) -> bool {
    let Some(header) = header else { return false };
    let (scheme, credentials) = header.trim().split_once(' ').unwrap_or((header, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        constant_time_eq(credentials.as_bytes(), token.as_bytes())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let Some(decoded) = base64_decode(credentials) else {
            return false;
        };
        let password = match decoded.iter().position(|&b| b == b':') {
            Some(i) => &decoded[i + 1..],
            None => &decoded[..],
        };
        constant_time_eq(password, token.as_bytes())
    } else {
        false
    }
}

/// Equal length and equal bytes, examining every byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 (RFC 4648 §4) with optional padding; `None` on anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 || s.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http11_connect_with_headers() {
        let raw =
            b"CONNECT acme.test:14000 HTTP/1.1\r\nHost: acme.test:14000\r\nProxy-Authorization: Bearer t0k\r\n\r\nTLS";
        let head = parse_head(raw, 8192).unwrap().unwrap();
        assert_eq!(head.method, "CONNECT");
        assert_eq!(head.target, "acme.test:14000");
        assert_eq!(head.version, "HTTP/1.1");
        assert_eq!(head.proxy_authorization.as_deref(), Some("Bearer t0k"));
        assert_eq!(&raw[head.head_len..], b"TLS");
    }

    #[test]
    fn parses_http10_connect_without_headers() {
        let head = parse_head(b"CONNECT a.example:443 HTTP/1.0\r\n\r\n", 8192)
            .unwrap()
            .unwrap();
        assert_eq!(head.version, "HTTP/1.0");
        assert_eq!(head.proxy_authorization, None);
        assert_eq!(head.head_len, 34);
        let head = parse_head(b"CONNECT a.example:443 HTTP/1.0\n\n", 8192)
            .unwrap()
            .unwrap();
        assert_eq!(head.head_len, 32);
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let raw = b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n";
        for n in 0..raw.len() {
            assert_eq!(parse_head(&raw[..n], 8192), Ok(None), "prefix {n}");
        }
        assert!(parse_head(raw, 8192).unwrap().is_some());
    }

    #[test]
    fn rejects_oversized_heads() {
        let mut raw = b"CONNECT ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 9000));
        assert_eq!(parse_head(&raw, 8192), Err(HeadError::TooLarge { limit: 8192 }));
        raw.extend_from_slice(b":443 HTTP/1.1\r\n\r\n");
        assert_eq!(parse_head(&raw, 8192), Err(HeadError::TooLarge { limit: 8192 }));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_head(b"\x16\x03\x01\n\n", 8192), Err(HeadError::BadRequestLine));
        assert_eq!(parse_head(b"CONNECT a:1\r\n\r\n", 8192), Err(HeadError::BadRequestLine));
        assert_eq!(
            parse_head(b"CONNECT a:1 HTTP/2\r\n\r\n", 8192),
            Err(HeadError::BadVersion("HTTP/2".into()))
        );
        assert_eq!(
            parse_head(b"CONNECT a:1 HTTP/1.1\r\nnocolon\r\n\r\n", 8192),
            Err(HeadError::BadHeader)
        );
    }

    #[test]
    fn splits_authorities() {
        let a = parse_authority("ACME.Test.:443").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("acme.test", 443));
        let a = parse_authority("[::1]:8443").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 8443));
        assert_eq!(parse_authority("a.example"), None);
        assert_eq!(parse_authority("a.example:0"), None);
        assert_eq!(parse_authority("a.example:70000"), None);
        assert_eq!(parse_authority("::1:443"), None);
        assert_eq!(parse_authority("a b:443"), None);
        assert_eq!(parse_authority(":443"), None);
    }

    #[test]
    fn checks_tokens() {
        assert!(authorized(Some("Bearer s3cret"), "s3cret"));
        assert!(authorized(Some("bearer  s3cret "), "s3cret"));
        assert!(!authorized(Some("Bearer s3cre"), "s3cret"));
        assert!(!authorized(None, "s3cret"));
        // "agent:s3cret"
        assert!(authorized(Some("Basic YWdlbnQ6czNjcmV0"), "s3cret"));
        // "agent:wrong"
        assert!(!authorized(Some("Basic YWdlbnQ6d3Jvbmc="), "s3cret"));
        assert!(!authorized(Some("Basic !!!"), "s3cret"));
        assert!(!authorized(Some("Digest s3cret"), "s3cret"));
    }

    #[test]
    fn never_panics_on_garbage() {
        // xorshift: reproducible bytes biased towards the parser's delimiters.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20_000 {
            let len = round % 300;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"CONNECT :[]\r\n HTTP/1.0a\xff"[(x % 24) as usize]
                })
                .collect();
            if let Ok(Some(head)) = parse_head(&input, 256) {
                assert!(head.head_len <= input.len());
                let _ = parse_authority(&head.target);
            }
            let text = String::from_utf8_lossy(&input);
            let _ = parse_authority(&text);
            let _ = authorized(Some(&text), "t");
        }
    }

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("YWdlbnQ6czNjcmV0").unwrap(), b"agent:s3cret");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("Y"), None);
    }

    #[test]
    fn absolute_form_targets() {
        let (a, p) = parse_absolute("http://Repo.Example/pkg?x=1").unwrap();
        assert_eq!((a.host.as_str(), a.port, p.as_str()), ("repo.example", 80, "/pkg?x=1"));
        let (a, p) = parse_absolute("HTTP://repo.example:8080").unwrap();
        assert_eq!((a.port, p.as_str()), (8080, "/"));
        let (a, p) = parse_absolute("http://[::1]?q").unwrap();
        assert_eq!((a.host.as_str(), a.port, p.as_str()), ("::1", 80, "/?q"));
        assert!(parse_absolute("https://repo.example/").is_none());
        assert!(parse_absolute("http://user:pw@repo.example/").is_none());
        assert!(parse_absolute("/relative").is_none());
        assert!(parse_absolute("http://:80/").is_none());
    }

    #[test]
    fn forwarded_heads_drop_hop_by_hop_headers_and_credentials() {
        let raw = b"GET http://repo.example:8080/x HTTP/1.1\r\nHost: repo.example:8080\r\nProxy-Authorization: Bearer t\r\nConnection: keep-alive\r\nAccept: */*\r\n\r\n";
        let head = parse_head(raw, 8192).unwrap().unwrap();
        let (a, p) = parse_absolute(&head.target).unwrap();
        let out = String::from_utf8(forward_head(&head, &a, &p)).unwrap();
        assert_eq!(
            out,
            "GET /x HTTP/1.1\r\nhost: repo.example:8080\r\naccept: */*\r\nconnection: close\r\n\r\n"
        );
        let raw = b"GET http://repo.example/ HTTP/1.0\r\n\r\n";
        let head = parse_head(raw, 8192).unwrap().unwrap();
        let (a, p) = parse_absolute(&head.target).unwrap();
        let out = String::from_utf8(forward_head(&head, &a, &p)).unwrap();
        assert_eq!(out, "GET / HTTP/1.0\r\nhost: repo.example\r\nconnection: close\r\n\r\n");
    }
}
