//! What the proxy reads from an agent's request, without I/O: the CONNECT
//! target, the absolute-form URL of a forwarded request, the credentials.
//!
//! hyper parses the request head (bounded, strict framing); these rules
//! are the proxy's own and stay pure: a target must be `host:port` with a
//! port, a forwarded URL plain `http` without user info, and a token is
//! compared in constant time.

/// A CONNECT target split into host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Lower case, no trailing dot, IPv6 literals without brackets.
    pub host: String,
    pub port: u16,
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
            let text = String::from_utf8_lossy(&input);
            let _ = parse_authority(&text);
            let _ = authorized(Some(&text), "t");
            let _ = parse_absolute(&text);
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
}
