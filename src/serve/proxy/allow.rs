//! Which destinations agents may reach: the allowlist, without I/O.
//!
//! The proxy must not become a way into the sensor's own network. Three rules
//! keep it out: destinations are matched by name and port (wildcards such as
//! `*.issuer.example:443` cover sub-domains only); an IP literal is accepted
//! only when that address and port are listed; and a name matched by a
//! wildcard may not resolve to a loopback, private, link-local or unspecified
//! address (DNS tricks) — only an exactly listed `name:port` may.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// One allowlist entry: a host pattern and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub host: HostPattern,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// An exact name (lower case, no trailing dot).
    Name(String),
    /// `*.suffix`: any name ending in `.suffix`, stored with its leading dot.
    Wildcard(String),
    /// An IP literal, matched only by the same literal.
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    #[error("allow entry {0:?}: expected HOST:PORT, *.DOMAIN:PORT or [IPv6]:PORT")]
    Syntax(String),
}

/// How a destination was allowed; decides whether internal addresses may follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Listed exactly (name or IP literal): any address it resolves to.
    Explicit,
    /// Through a wildcard: public addresses only.
    Wildcard,
}

/// Why a destination is refused (the `403` reasons, also counted and logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Denied {
    #[error("destination not on the allowlist")]
    NotListed,
    #[error("IP literal not on the allowlist")]
    IpLiteral,
    #[error("name resolves to an internal address and is not listed explicitly")]
    InternalAddress,
    /// Not an IP literal and not a host name (a `:` in a name, say): refused
    /// before any rule or DNS sees it.
    #[error("not a host name")]
    InvalidName,
}

impl std::str::FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RuleError::Syntax(s.to_string());
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, port) = rest.split_once(']').ok_or_else(err)?;
            (host, port.strip_prefix(':').ok_or_else(err)?)
        } else {
            let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
            if host.contains(':') {
                // An IPv6 literal needs brackets, or the port is ambiguous.
                return Err(err());
            }
            (host, port)
        };
        let port: u16 = port.parse().map_err(|_| err())?;
        if port == 0 {
            return Err(err());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Rule {
                host: HostPattern::Ip(ip),
                port,
            });
        }
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let (wild, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host.as_str()),
        };
        let label_ok = |l: &str| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(err());
        }
        let host = if wild {
            HostPattern::Wildcard(format!(".{name}"))
        } else {
            HostPattern::Name(name.to_string())
        };
        Ok(Rule { host, port })
    }
}

/// The configured destinations.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    rules: Vec<Rule>,
}

impl Allowlist {
    pub fn new(rules: Vec<Rule>) -> Self {
        Allowlist { rules }
    }

    /// Parses `HOST:PORT` entries; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, RuleError> {
        entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<_, _>>()
            .map(Allowlist::new)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether `host:port` (normalised: lower case, no trailing dot, IPv6
    /// without brackets) may be reached at all, before resolution.
    pub fn check(&self, host: &str, port: u16) -> Result<Grant, Denied> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            let listed = self
                .rules
                .iter()
                .any(|r| r.port == port && r.host == HostPattern::Ip(ip));
            return if listed {
                Ok(Grant::Explicit)
            } else {
                Err(Denied::IpLiteral)
            };
        }
        // A name is letters, digits, `-`, `_` and dots; anything else (a `:`
        // that is not an IP literal) would match a wildcard's suffix and
        // reach DNS as something no rule meant.
        let is_name = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !is_name {
            return Err(Denied::InvalidName);
        }
        let mut grant = None;
        for rule in self.rules.iter().filter(|r| r.port == port) {
            match &rule.host {
                HostPattern::Name(name) if name == host => return Ok(Grant::Explicit),
                HostPattern::Wildcard(suffix) if host.len() > suffix.len() && host.ends_with(suffix.as_str()) => {
                    grant = Some(Grant::Wildcard)
                }
                _ => {}
            }
        }
        grant.ok_or(Denied::NotListed)
    }

    /// The addresses a granted name may be connected to: all of them when
    /// listed explicitly, the public ones when matched by a wildcard.
    pub fn permitted_addresses(grant: Grant, addrs: &[IpAddr]) -> Result<Vec<IpAddr>, Denied> {
        let permitted: Vec<IpAddr> = match grant {
            Grant::Explicit => addrs.to_vec(),
            Grant::Wildcard => addrs.iter().copied().filter(|a| !is_internal(*a)).collect(),
        };
        if permitted.is_empty() && !addrs.is_empty() {
            return Err(Denied::InternalAddress);
        }
        Ok(permitted)
    }
}

/// Loopback, private, link-local, unspecified, shared (CGNAT), multicast,
/// broadcast and documentation-free special ranges: nothing a public issuing
/// service lives on.
pub fn is_internal(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => is_internal_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(a),
        },
    }
}

fn is_internal_v4(a: Ipv4Addr) -> bool {
    let [o1, o2, ..] = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || o1 == 0
        || (o1 == 100 && (64..128).contains(&o2))
}

fn is_internal_v6(a: Ipv6Addr) -> bool {
    let s0 = a.segments()[0];
    a.is_loopback() || a.is_unspecified() || a.is_multicast() || (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::parse(entries).unwrap()
    }

    #[test]
    fn parses_rules() {
        assert_eq!(
            "ACME.Issuer.Example.:443".parse::<Rule>().unwrap(),
            Rule {
                host: HostPattern::Name("acme.issuer.example".into()),
                port: 443
            }
        );
        assert_eq!(
            "*.issuer.example:443".parse::<Rule>().unwrap(),
            Rule {
                host: HostPattern::Wildcard(".issuer.example".into()),
                port: 443
            }
        );
        assert_eq!(
            "[::1]:8443".parse::<Rule>().unwrap(),
            Rule {
                host: HostPattern::Ip("::1".parse().unwrap()),
                port: 8443
            }
        );
        for bad in [
            "issuer.example",
            "issuer.example:0",
            "issuer.example:x",
            "*.:443",
            "a..b:443",
            "*:443",
            "::1:443",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_names_and_ports() {
        let l = list(&["acme.test:14000", "*.issuer.example:443"]);
        assert_eq!(l.check("acme.test", 14000), Ok(Grant::Explicit));
        assert_eq!(l.check("acme.test", 443), Err(Denied::NotListed));
        assert_eq!(l.check("a.issuer.example", 443), Ok(Grant::Wildcard));
        assert_eq!(l.check("a.b.issuer.example", 443), Ok(Grant::Wildcard));
        assert_eq!(l.check("issuer.example", 443), Err(Denied::NotListed));
        assert_eq!(l.check("evilissuer.example", 443), Err(Denied::NotListed));
        assert_eq!(l.check("other.example", 443), Err(Denied::NotListed));
    }

    #[test]
    fn names_with_a_colon_are_refused_before_any_rule() {
        let l = list(&["*.issuer.test:443"]);
        assert_eq!(l.check("evil:x.issuer.test", 443), Err(Denied::InvalidName));
        assert_eq!(l.check("a::b.issuer.test", 443), Err(Denied::InvalidName));
        assert_eq!(l.check("ok.issuer.test", 443), Ok(Grant::Wildcard));
    }

    #[test]
    fn ip_literals_only_when_listed() {
        let l = list(&["127.0.0.7:443", "*.issuer.example:443"]);
        assert_eq!(l.check("127.0.0.7", 443), Ok(Grant::Explicit));
        assert_eq!(l.check("127.0.0.8", 443), Err(Denied::IpLiteral));
        assert_eq!(l.check("127.0.0.7", 80), Err(Denied::IpLiteral));
        assert_eq!(l.check("::1", 443), Err(Denied::IpLiteral));
    }

    #[test]
    fn wildcards_never_reach_internal_addresses() {
        let public: IpAddr = "192.0.2.10".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let private: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            Allowlist::permitted_addresses(Grant::Wildcard, &[lo]),
            Err(Denied::InternalAddress)
        );
        assert_eq!(
            Allowlist::permitted_addresses(Grant::Wildcard, &[lo, public]),
            Ok(vec![public])
        );
        assert_eq!(
            Allowlist::permitted_addresses(Grant::Explicit, &[lo, private]),
            Ok(vec![lo, private])
        );
    }

    #[test]
    fn classifies_internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in ["192.0.2.1", "8.8.8.8", "2001:db8::1", "172.32.0.1"] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }
}
