//! The syntax of one target (address, CIDR, range, host name, `HOST:PORT`)
//! and of target, exclusion and block lists read from files.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::str::FromStr;

use ipnetwork::IpNetwork;

use super::{MAX_V6_HOST_BITS, TargetError, bad_target, ip_to_u128};

/// One target as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetSpec {
    /// An address or a CIDR network (a single address is a /32 or /128).
    Net(IpNetwork),
    /// An inclusive range `first-last` of one family.
    Range { first: IpAddr, last: IpAddr },
    /// A DNS name: resolved before scanning and used as SNI.
    Host(String),
}

impl FromStr for TargetSpec {
    type Err = TargetError;

    fn from_str(token: &str) -> Result<Self, TargetError> {
        let t = token.trim();
        if t.is_empty() {
            return Err(bad_target(token, "empty target"));
        }
        if let Some((addr, prefix)) = t.split_once('/') {
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| bad_target(t, format!("`{addr}` is not an IP address")))?;
            let prefix: u8 = prefix
                .parse()
                .map_err(|_| bad_target(t, format!("prefix `{prefix}` is not a number")))?;
            let net = IpNetwork::new(ip, prefix).map_err(|_| {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                bad_target(t, format!("prefix /{prefix} is out of range (0..={max})"))
            })?;
            if let IpNetwork::V6(n) = net
                && 128 - u32::from(n.prefix()) > MAX_V6_HOST_BITS
            {
                return Err(bad_target(
                    t,
                    format!("IPv6 networks wider than /{} cannot be scanned", 128 - MAX_V6_HOST_BITS),
                ));
            }
            // Normalise to the network address so 10.0.0.5/24 means 10.0.0.0/24.
            let net = IpNetwork::new(net.network(), net.prefix()).map_err(|e| bad_target(t, e.to_string()))?;
            return Ok(TargetSpec::Net(net));
        }
        if let Some((a, b)) = t.split_once('-')
            && let Ok(first) = a.parse::<IpAddr>()
        {
            let last = match (first, b.parse::<IpAddr>(), b.parse::<u8>()) {
                (_, Ok(last), _) => last,
                (IpAddr::V4(f), Err(_), Ok(octet)) => {
                    let [x, y, z, _] = f.octets();
                    IpAddr::V4(Ipv4Addr::new(x, y, z, octet))
                }
                _ => {
                    return Err(bad_target(
                        t,
                        format!("range end `{b}` is not an address or last octet"),
                    ));
                }
            };
            if first.is_ipv4() != last.is_ipv4() {
                return Err(bad_target(t, "range mixes IPv4 and IPv6"));
            }
            if ip_to_u128(first) > ip_to_u128(last) {
                return Err(bad_target(t, "range end comes before its start"));
            }
            if ip_to_u128(last) - ip_to_u128(first) >= 1u128 << MAX_V6_HOST_BITS {
                return Err(bad_target(t, "range is too wide to scan"));
            }
            return Ok(TargetSpec::Range { first, last });
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(TargetSpec::Net(IpNetwork::from(ip)));
        }
        if t.contains(':') {
            return Err(bad_target(t, "not a valid IPv6 address"));
        }
        if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad_target(t, "not a valid IPv4 address"));
        }
        validate_hostname(t)?;
        Ok(TargetSpec::Host(t.trim_end_matches('.').to_ascii_lowercase()))
    }
}

fn validate_hostname(t: &str) -> Result<(), TargetError> {
    let name = t.trim_end_matches('.');
    if name.len() > 253 {
        return Err(bad_target(t, "host name longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad_target(t, "host name has an empty label"));
        }
        if label.len() > 63 {
            return Err(bad_target(t, "host name label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(bad_target(t, format!("`{c}` is not allowed in a host name")));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad_target(t, "host name label starts or ends with `-`"));
        }
    }
    Ok(())
}

/// Parse a list of target files' contents: one or more targets per line,
/// `#` starts a comment.
pub fn parse_target_lines(text: &str, path: &str) -> Result<Vec<TargetSpec>, TargetError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for token in line.split(|c: char| c.is_whitespace() || c == ',') {
            if token.is_empty() {
                continue;
            }
            out.push(token.parse().map_err(|e| TargetError::InFile {
                path: path.to_string(),
                line: i + 1,
                source: Box::new(e),
            })?);
        }
    }
    Ok(out)
}

/// Read a target file (`-iL`, `--exclude-file`).
pub fn read_target_file(path: &Path) -> Result<Vec<TargetSpec>, TargetError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| TargetError::File {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    parse_target_lines(&text, &shown)
}

/// The operator's blocklist: applied to every scan when the file exists
/// (exclusion syntax, one or more per line, `#` comments).
pub const SYSTEM_BLOCKLIST: &str = "/etc/sensor/blocklist";

/// The exclusions of the blocklist at `path`; none when the file does not
/// exist, an error when it exists but cannot be read or parsed (a broken
/// blocklist must stop a scan, not be ignored).
pub fn read_blocklist(path: &Path) -> Result<Vec<TargetSpec>, TargetError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    read_target_file(path)
}

/// Parse `HOST[:PORT]` as `sensor grade` takes it: `127.0.0.1:8443`,
/// `[::1]:443`, `::1`, `mail.example:465`, `example.test` (port 443).
pub fn parse_endpoint(s: &str) -> Result<(TargetSpec, u16), TargetError> {
    let bad_port = |p: &str| TargetError::BadPort {
        token: p.to_string(),
        reason: "not a port number (1-65535)".into(),
    };
    let parse_port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad_port(p)),
        Ok(n) => Ok(n),
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest
            .split_once(']')
            .ok_or_else(|| bad_target(s, "missing `]` after an IPv6 address"))?;
        match tail.strip_prefix(':') {
            Some(p) => (h, parse_port(p)?),
            None if tail.is_empty() => (h, 443),
            None => return Err(bad_target(s, "expected `:PORT` after `]`")),
        }
    } else if s.matches(':').count() > 1 {
        (s, 443)
    } else if let Some((h, p)) = s.rsplit_once(':') {
        (h, parse_port(p)?)
    } else {
        (s, 443)
    };
    let spec: TargetSpec = host.parse()?;
    match &spec {
        TargetSpec::Net(n) if n.prefix() != if n.is_ipv4() { 32 } else { 128 } => {
            Err(bad_target(s, "one endpoint, not a network: give one address or name"))
        }
        TargetSpec::Range { .. } => Err(bad_target(s, "one endpoint, not a range")),
        _ => Ok((spec, port)),
    }
}
