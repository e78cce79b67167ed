//! What to scan: addresses, names and ports, and the order to visit them in.
//!
//! A target list can describe far more addresses than fit in memory (a /8 is
//! 16 M addresses, times every port), so nothing here expands a range. A
//! [`TargetSet`] is a handful of intervals; a [`ScanPlan`] numbers every
//! (address, port) pair and visits the numbers through a seeded
//! [`Permutation`], which also makes checkpoints (an index) and shards (a
//! residue class) trivial.
//!
//! [`spec`]: the syntax of one target and of target files; [`ports`]: port
//! lists; [`set`]: the interval set with exclusions; [`plan`]: the numbered,
//! permuted, sharded walk.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod live;
pub mod plan;
pub mod ports;
pub mod set;
pub mod spec;

pub use live::{LiveMarks, LiveSet};
pub use plan::*;
pub use ports::*;
pub use set::*;
pub use spec::*;

/// IPv6 networks wider than this many host bits are refused: nobody can scan
/// them, and accepting them would only hide a typo.
const MAX_V6_HOST_BITS: u32 = 112;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("target `{token}`: {reason}")]
    BadTarget { token: String, reason: String },
    #[error("port `{token}`: {reason}")]
    BadPort { token: String, reason: String },
    #[error("{path}:{line}: {source}")]
    InFile {
        path: String,
        line: usize,
        #[source]
        source: Box<TargetError>,
    },
    #[error("cannot read target file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("could not resolve `{host}`: {reason} (check the name, or give an address)")]
    Resolve { host: String, reason: String },
    #[error("exclusion `{token}`: exclusions take addresses, CIDRs or ranges, not names")]
    NamedExclusion { token: String },
    #[error("no targets given: name addresses, CIDRs, ranges or hosts, or use -iL FILE")]
    Empty,
    #[error("no ports given: use -p with a list, a range or `default`")]
    NoPorts,
    #[error("the target space ({addresses} addresses x {ports} ports) is too large to number")]
    TooLarge { addresses: u128, ports: usize },
    #[error("shard `{0}`: expected i/n with 1 <= i <= n, e.g. 2/4")]
    BadShard(String),
}

pub(crate) fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub(crate) fn u128_to_ip(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

pub(crate) fn bad_target(token: &str, reason: impl Into<String>) -> TargetError {
    TargetError::BadTarget {
        token: token.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn no_dns(_: &str) -> Result<Vec<IpAddr>, String> {
        Err("no DNS in unit tests".into())
    }

    fn set(specs: &[&str], exclude: &[&str]) -> TargetSet {
        let s: Vec<TargetSpec> = specs.iter().map(|t| t.parse().unwrap()).collect();
        let e: Vec<TargetSpec> = exclude.iter().map(|t| t.parse().unwrap()).collect();
        TargetSet::new(&s, &e, no_dns).unwrap()
    }

    #[test]
    fn parses_every_target_form() {
        assert_eq!(
            "127.0.0.0/24".parse::<TargetSpec>().unwrap(),
            TargetSpec::Net("127.0.0.0/24".parse().unwrap())
        );
        assert_eq!(
            "127.0.0.9/24".parse::<TargetSpec>().unwrap(),
            TargetSpec::Net("127.0.0.0/24".parse().unwrap()),
            "host bits are cleared"
        );
        assert_eq!(
            "::1".parse::<TargetSpec>().unwrap(),
            TargetSpec::Net("::1/128".parse().unwrap())
        );
        assert_eq!(
            "127.0.2.1-127.0.2.9".parse::<TargetSpec>().unwrap(),
            TargetSpec::Range {
                first: "127.0.2.1".parse().unwrap(),
                last: "127.0.2.9".parse().unwrap()
            }
        );
        assert_eq!(
            "127.0.2.1-9".parse::<TargetSpec>().unwrap(),
            TargetSpec::Range {
                first: "127.0.2.1".parse().unwrap(),
                last: "127.0.2.9".parse().unwrap()
            }
        );
        assert_eq!(
            "Mail.Example.".parse::<TargetSpec>().unwrap(),
            TargetSpec::Host("mail.example".into())
        );
        assert_eq!(
            "fe80::1-fe80::ff".parse::<TargetSpec>().unwrap(),
            TargetSpec::Range {
                first: "fe80::1".parse().unwrap(),
                last: "fe80::ff".parse().unwrap()
            }
        );
    }

    #[test]
    fn rejects_malformed_targets_naming_the_token() {
        for (bad, why) in [
            ("127.0.0.0/33", "out of range"),
            ("127.0.0.0/x", "not a number"),
            ("127.0.0/24", "not an IP address"),
            ("300.1.1.1", "IPv4"),
            ("1.2.3", "IPv4"),
            ("::g", "IPv6"),
            ("127.0.0.9-127.0.0.1", "before its start"),
            ("127.0.0.1-::1", "mixes"),
            ("127.0.0.1-300", "range end"),
            ("bad_host!", "not allowed"),
            ("a..b", "empty label"),
            ("-a.b", "starts or ends"),
            ("::/0", "cannot be scanned"),
            ("", "empty"),
        ] {
            let err = bad.parse::<TargetSpec>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{}`", bad.trim())), "{bad}: {err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn parses_ports() {
        assert_eq!("443".parse::<PortSet>().unwrap().as_slice(), &[443]);
        assert_eq!("8443,443,443".parse::<PortSet>().unwrap().as_slice(), &[443, 8443]);
        assert_eq!("1-5".parse::<PortSet>().unwrap().len(), 5);
        assert_eq!("default".parse::<PortSet>().unwrap().as_slice(), &DEFAULT_PORTS);
        assert_eq!("-".parse::<PortSet>().unwrap().len(), 65535);
        assert_eq!("default,8080".parse::<PortSet>().unwrap().len(), 13);
        assert_eq!("1-3,5,7-8".parse::<PortSet>().unwrap().to_string(), "1-3,5,7-8");
    }

    #[test]
    fn rejects_bad_ports_naming_the_token() {
        for (bad, token, why) in [
            ("0", "0", "port 0"),
            ("70000", "70000", "65535"),
            ("443,http", "http", "not a port"),
            ("10-1", "10-1", "before its start"),
            ("443,,8443", "443,,8443", "empty entry"),
            // Issue 17: an open range is refused, never read as "to 65535".
            ("1-", "1-", "open range"),
            ("443,60000-", "60000-", "open range"),
            ("-1024", "-1024", "open range"),
            ("+5", "+5", "not a port"),
            ("1-+5", "1-+5", "not a port"),
        ] {
            let err = bad.parse::<PortSet>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{token}`")), "{bad}: {err}");
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn target_files_allow_comments_and_name_the_line() {
        let specs = parse_target_lines("# lab\n127.0.0.1  # loopback\n\n::1, 127.0.2.0/30\n", "t.txt").unwrap();
        assert_eq!(specs.len(), 3);
        let err = parse_target_lines("127.0.0.1\n127.0.0.300\n", "t.txt")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.txt:2: target `127.0.0.300`"), "{err}");
    }

    #[test]
    fn parses_single_endpoints() {
        let ep = parse_endpoint;
        assert_eq!(
            ep("127.0.0.1:8443").unwrap(),
            (TargetSpec::Net("127.0.0.1/32".parse().unwrap()), 8443)
        );
        assert_eq!(
            ep("[::1]:465").unwrap(),
            (TargetSpec::Net("::1/128".parse().unwrap()), 465)
        );
        assert_eq!(ep("::1").unwrap().1, 443);
        assert_eq!(
            ep("localhost:993").unwrap(),
            (TargetSpec::Host("localhost".into()), 993)
        );
        assert_eq!(ep("example.test").unwrap().1, 443);
        assert!(ep("127.0.0.1:0").unwrap_err().to_string().contains("`0`"));
        assert!(ep("127.0.0.1:https").unwrap_err().to_string().contains("`https`"));
        assert!(ep("127.0.0.0/24").unwrap_err().to_string().contains("one endpoint"));
        assert!(ep("[::1").unwrap_err().to_string().contains("missing `]`"));
    }

    #[test]
    fn a_missing_blocklist_is_empty_a_broken_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_blocklist(&dir.path().join("none")).unwrap(), vec![]);
        let p = dir.path().join("blocklist");
        std::fs::write(&p, "127.0.9.0/24 # lab\n").unwrap();
        assert_eq!(read_blocklist(&p).unwrap().len(), 1);
        std::fs::write(&p, "127.0.9.0/33\n").unwrap();
        assert!(read_blocklist(&p).is_err());
    }

    #[test]
    fn overlapping_ranges_are_merged() {
        let s = set(&["127.0.0.0/24", "127.0.0.10", "127.0.0.250-127.0.1.5"], &[]);
        assert_eq!(s.len(), 256 + 6);
    }

    #[test]
    fn plan_covers_every_pair_exactly_once() {
        let s = set(&["127.0.0.0/28", "::1"], &[]);
        let plan = ScanPlan::new(s, "443,8443,1-3".parse().unwrap(), 42).unwrap();
        let seen: Vec<(IpAddr, u16)> = plan.iter_from(0).map(|(_, t)| (t.addr, t.port)).collect();
        assert_eq!(seen.len(), 17 * 5);
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len());
        assert!(unique.contains(&("::1".parse().unwrap(), 8443)));
        assert!(unique.contains(&("127.0.0.15".parse().unwrap(), 1)));
    }

    #[test]
    fn exclusions_are_respected() {
        let s = set(&["127.0.2.0/28"], &["127.0.2.9", "127.0.2.0-127.0.2.1"]);
        let plan = ScanPlan::new(s, "443".parse().unwrap(), 1).unwrap();
        let addrs: HashSet<IpAddr> = plan.iter_from(0).map(|(_, t)| t.addr).collect();
        assert_eq!(addrs.len(), 13);
        assert!(!addrs.contains(&"127.0.2.9".parse::<IpAddr>().unwrap()));
        assert!(!addrs.contains(&"127.0.2.0".parse::<IpAddr>().unwrap()));
    }

    #[test]
    fn names_become_sni_and_are_not_merged_away() {
        let specs: Vec<TargetSpec> = ["127.0.0.1", "localhost"].iter().map(|t| t.parse().unwrap()).collect();
        let s = TargetSet::new(&specs, &[], |h| {
            assert_eq!(h, "localhost");
            Ok(vec![
                "127.0.0.1".parse().unwrap(),
                "::1".parse().unwrap(),
                "127.0.0.1".parse().unwrap(),
            ])
        })
        .unwrap();
        assert_eq!(s.len(), 3);
        let names: Vec<Option<Arc<str>>> = (0..3).map(|i| s.get(i).unwrap().1).collect();
        assert_eq!(names.iter().filter(|n| n.is_some()).count(), 2);
    }

    #[test]
    fn resolution_failures_and_named_exclusions_are_errors() {
        let specs = vec![TargetSpec::Host("nowhere.test".into())];
        let err = TargetSet::new(&specs, &[], no_dns).unwrap_err().to_string();
        assert!(err.contains("`nowhere.test`"), "{err}");
        let ok = vec![TargetSpec::Net("127.0.0.1/32".parse().unwrap())];
        let err = TargetSet::new(&ok, &specs, no_dns).unwrap_err().to_string();
        assert!(err.contains("exclusions take addresses"), "{err}");
        assert_eq!(TargetSet::new(&[], &[], no_dns).unwrap_err(), TargetError::Empty);
    }

    #[test]
    fn shards_are_disjoint_and_cover_the_plan() {
        let s = set(&["127.0.0.0/26"], &[]);
        let plan = ScanPlan::new(s, "1-4".parse().unwrap(), 9).unwrap();
        let all: HashSet<(IpAddr, u16)> = plan.iter_from(0).map(|(_, t)| (t.addr, t.port)).collect();
        let mut union = HashSet::new();
        for i in 1..=3 {
            let sharded = plan.clone().with_shard(Some(format!("{i}/3").parse().unwrap()));
            for (_, t) in sharded.iter_from(0) {
                assert!(union.insert((t.addr, t.port)), "shards overlap");
            }
        }
        assert_eq!(union, all);
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
    }

    #[test]
    fn a_slash_8_is_numbered_not_materialised() {
        let s = set(&["10.0.0.0/8"], &[]);
        let plan = ScanPlan::new(s, "default".parse().unwrap(), 5).unwrap();
        assert_eq!(plan.len(), (1u128 << 24) * 12);
        let first: Vec<Target> = plan.iter_from(0).take(3).map(|(_, t)| t).collect();
        assert_eq!(first.len(), 3);
        let s = set(&["fd00::/24"], &[]);
        let plan = ScanPlan::new(s, "443".parse().unwrap(), 5).unwrap();
        assert_eq!(plan.iter_from(1u128 << 100).take(2).count(), 2);
    }

    /// Resident memory of this process in KiB (Linux; 0 elsewhere).
    fn rss_kib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        pages * 4
    }

    #[test]
    fn walking_a_slash_8_and_a_slash_104_keeps_memory_flat() {
        // A million positions of each: materialising them would take well over
        // 50 MiB (a Target is 40 bytes); the walk must stay within noise.
        let before = rss_kib();
        let mut checksum = 0u64;
        for (net, ports) in [("10.0.0.0/8", "default"), ("fd00::/104", "443,8443")] {
            let plan = ScanPlan::new(set(&[net], &[]), ports.parse().unwrap(), 5).unwrap();
            let n = plan.iter_from(plan.len() / 3).take(1_000_000).fold(0u64, |n, (_, t)| {
                checksum = checksum.wrapping_add(u64::from(t.port));
                n + 1
            });
            assert_eq!(n, 1_000_000, "{net}");
        }
        let grown = rss_kib().saturating_sub(before);
        assert!(checksum > 0);
        assert!(grown < 16 * 1024, "RSS grew by {grown} KiB while walking");
    }

    #[test]
    fn indices_of_and_probed_len_count_blocks_and_exclusions() {
        let s = set(
            &["127.0.0.0/24", "127.0.1.0-127.0.1.9"],
            &["127.0.0.0/30", "127.0.0.2-127.0.0.5"],
        );
        assert_eq!(s.len(), 266);
        // Overlapping exclusions count once: .0-.5 is 6 addresses.
        assert_eq!(s.probed_len(), 260);
        let ip: IpAddr = "127.0.1.3".parse().unwrap();
        let idx: Vec<u128> = s.indices_of(ip).collect();
        assert_eq!(idx.len(), 1);
        assert_eq!(s.get(idx[0]).unwrap().0, ip);
        assert_eq!(s.indices_of("10.0.0.1".parse().unwrap()).count(), 0);
        let named = TargetSet::new(
            &["127.0.0.0/24".parse().unwrap(), "host.test".parse().unwrap()],
            &[],
            |_| Ok(vec!["127.0.0.7".parse().unwrap()]),
        )
        .unwrap();
        let both: Vec<u128> = named.indices_of("127.0.0.7".parse().unwrap()).collect();
        assert_eq!(both.len(), 2, "the address and the name resolving to it");
        assert!(both.iter().all(|&i| named.get(i).unwrap().0.to_string() == "127.0.0.7"));
    }

    #[test]
    fn a_live_filter_keeps_positions_and_drops_dead_addresses() {
        let s = set(&["127.0.0.0/28"], &[]);
        let plan = ScanPlan::new(s.clone(), "1,2,3".parse().unwrap(), 9).unwrap();
        let marks = LiveMarks::new(s.len());
        for ip in ["127.0.0.3", "127.0.0.9"] {
            for i in s.indices_of(ip.parse().unwrap()) {
                marks.mark(i);
            }
        }
        let filtered = plan.clone().with_live(Some(Arc::new(marks.freeze())));
        assert_eq!(filtered.fingerprint(), plan.fingerprint(), "a checkpoint still fits");
        assert_eq!(filtered.len(), plan.len());
        let mut kept = 0;
        for i in 0..plan.len() {
            let t = plan.at(i).unwrap();
            let live = ["127.0.0.3", "127.0.0.9"].contains(&t.addr.to_string().as_str());
            // Same position, same target when live; nothing otherwise.
            assert_eq!(filtered.at(i), live.then_some(t));
            kept += usize::from(live);
        }
        assert_eq!(kept, 6);
        assert_eq!(filtered.live().map(LiveSet::count), Some(2));
    }
}
