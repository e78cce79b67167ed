//! Does the leaf certificate cover the name the client asked for?
//!
//! RFC 6125 as browsers apply it: only subjectAltName counts (no CN
//! fallback), DNS names compare case-insensitively without a trailing dot, a
//! wildcard is a whole leftmost label (`*.example.com`) and stands for exactly
//! one label, and an IP address matches only an IP SAN.
//!
//! For a target given as an address there is no name to check: an IP SAN
//! equal to the address is a match, anything else is `not_checked` (with the
//! names the certificate covers listed), never a mismatch.

use std::net::IpAddr;

pub use crate::model::assessment::{NameCheck, NameStatus};

/// Check `san` (the leaf's SANs as `cert::parse` writes them) against the
/// target: `hostname` when the target was a name, else `address`.
pub fn check(san: &[String], hostname: Option<&str>, address: IpAddr) -> NameCheck {
    let names = san.to_vec();
    match hostname {
        Some(host) => {
            let covered = match host.parse::<IpAddr>() {
                Ok(ip) => san.iter().any(|s| s.parse::<IpAddr>().ok() == Some(ip)),
                Err(_) => san.iter().any(|s| dns_matches(s, host)),
            };
            NameCheck {
                status: if covered {
                    NameStatus::Match
                } else {
                    NameStatus::Mismatch
                },
                expected: Some(host.to_string()),
                names,
            }
        }
        None => {
            let covered = san.iter().any(|s| s.parse::<IpAddr>().ok() == Some(address));
            NameCheck {
                status: if covered {
                    NameStatus::Match
                } else {
                    NameStatus::NotChecked
                },
                expected: Some(address.to_string()),
                names,
            }
        }
    }
}

/// One DNS SAN `pattern` against `host`.
pub fn dns_matches(pattern: &str, host: &str) -> bool {
    let p = pattern.trim_end_matches('.').to_ascii_lowercase();
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if p.is_empty() || h.is_empty() || p.parse::<IpAddr>().is_ok() {
        return false;
    }
    match p.strip_prefix("*.") {
        Some(rest) => {
            // The wildcard replaces exactly one non-empty leftmost label, and
            // the rest must have at least two labels (no `*.com`).
            rest.contains('.')
                && h.split_once('.')
                    .is_some_and(|(first, tail)| !first.is_empty() && tail == rest)
        }
        None => !p.contains('*') && p == h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn san(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_and_wildcard_dns_names() {
        assert!(dns_matches("a.example.com", "A.Example.COM."));
        assert!(dns_matches("*.example.com", "www.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.com", "example.com"));
        assert!(!dns_matches("w*.example.com", "www.example.com"));
        assert!(!dns_matches("127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn hostname_target_matches_or_mismatches() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let c = check(&san(&["a.test", "*.b.test"]), Some("x.b.test"), ip);
        assert_eq!(c.status, NameStatus::Match);
        let c = check(&san(&["a.test"]), Some("other.test"), ip);
        assert_eq!(c.status, NameStatus::Mismatch);
        assert_eq!(c.expected.as_deref(), Some("other.test"));
        assert_eq!(c.names, ["a.test"]);
    }

    #[test]
    fn address_target_matches_an_ip_san_or_is_not_checked() {
        let ip: IpAddr = "127.0.2.2".parse().unwrap();
        assert_eq!(
            check(&san(&["a.test", "127.0.2.2"]), None, ip).status,
            NameStatus::Match
        );
        let c = check(&san(&["a.test"]), None, ip);
        assert_eq!(c.status, NameStatus::NotChecked);
        assert_eq!(c.names, ["a.test"]);
        let v6: IpAddr = "::1".parse().unwrap();
        assert_eq!(check(&san(&["::1"]), None, v6).status, NameStatus::Match);
    }
}
