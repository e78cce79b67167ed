//! What to scan: addresses, names and ports, and the order to visit them in.
//!
//! A target list can describe far more addresses than fit in memory (a /8 is
//! 16 M addresses, times every port), so nothing here expands a range. A
//! [`TargetSet`] is a handful of intervals; a [`ScanPlan`] numbers every
//! (address, port) pair and visits the numbers through a seeded
//! [`Permutation`], which also makes checkpoints (an index) and shards (a
//! residue class) trivial.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use crate::discover::permute::Permutation;

/// The ports of the vendor sensor's default set plus the mail ports we add.
pub const DEFAULT_PORTS: [u16; 12] = [25, 110, 143, 389, 443, 465, 587, 636, 993, 995, 3389, 8443];

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

fn bad_target(token: &str, reason: impl Into<String>) -> TargetError {
    TargetError::BadTarget {
        token: token.to_string(),
        reason: reason.into(),
    }
}

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

/// A sorted, de-duplicated set of ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSet(Vec<u16>);

impl PortSet {
    pub fn as_slice(&self) -> &[u16] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for PortSet {
    type Err = TargetError;

    /// `443`, `1-1024`, `default`, `all` (or `-`), and comma-separated mixes.
    fn from_str(s: &str) -> Result<Self, TargetError> {
        let bad = |token: &str, reason: &str| TargetError::BadPort {
            token: token.to_string(),
            reason: reason.to_string(),
        };
        let mut set = BTreeSet::new();
        for token in s.split(',').map(str::trim) {
            match token {
                "" => return Err(bad(s, "empty entry in the port list")),
                "default" => set.extend(DEFAULT_PORTS),
                "all" | "-" => set.extend(1..=65535u16),
                _ => {
                    let (a, b) = token.split_once('-').unwrap_or((token, token));
                    let parse = |p: &str| -> Result<u16, TargetError> {
                        match p.trim().parse::<u32>() {
                            Ok(0) => Err(bad(token, "port 0 cannot be scanned")),
                            Ok(n) if n <= 65535 => Ok(n as u16),
                            Ok(_) => Err(bad(token, "ports go up to 65535")),
                            Err(_) => Err(bad(token, "not a port number, range or `default`")),
                        }
                    };
                    let (a, b) = (
                        if a.is_empty() { Ok(1) } else { parse(a) }?,
                        if b.is_empty() { Ok(65535) } else { parse(b) }?,
                    );
                    if a > b {
                        return Err(bad(token, "range end comes before its start"));
                    }
                    set.extend(a..=b);
                }
            }
        }
        Ok(PortSet(set.into_iter().collect()))
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end.wrapping_add(1) {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn u128_to_ip(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

/// An inclusive interval of addresses of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Interval {
    v6: bool,
    first: u128,
    last: u128,
}

impl Interval {
    fn of(spec: &TargetSpec) -> Option<Interval> {
        match spec {
            TargetSpec::Net(net) => {
                let first = ip_to_u128(net.network());
                let host_bits = match net {
                    IpNetwork::V4(n) => 32 - u32::from(n.prefix()),
                    IpNetwork::V6(n) => 128 - u32::from(n.prefix()),
                };
                let span = if host_bits >= 128 {
                    u128::MAX
                } else {
                    (1u128 << host_bits) - 1
                };
                Some(Interval {
                    v6: net.is_ipv6(),
                    first,
                    last: first + span,
                })
            }
            TargetSpec::Range { first, last } => Some(Interval {
                v6: first.is_ipv6(),
                first: ip_to_u128(*first),
                last: ip_to_u128(*last),
            }),
            TargetSpec::Host(_) => None,
        }
    }

    fn len(&self) -> u128 {
        self.last - self.first + 1
    }

    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv6() == self.v6 && (self.first..=self.last).contains(&ip_to_u128(ip))
    }
}

#[derive(Clone, Debug)]
struct Block {
    range: Interval,
    hostname: Option<Arc<str>>,
}

/// The addresses to scan, as intervals, with the names that produced them.
#[derive(Clone, Debug, Default)]
pub struct TargetSet {
    blocks: Vec<Block>,
    /// `ends[i]` = number of addresses in blocks `0..=i`.
    ends: Vec<u128>,
    exclude: Vec<Interval>,
}

impl TargetSet {
    /// Build the set. `resolve` turns a host name into its addresses (it is the
    /// only I/O, injected so this stays pure and testable).
    pub fn new<R>(specs: &[TargetSpec], exclude: &[TargetSpec], mut resolve: R) -> Result<Self, TargetError>
    where
        R: FnMut(&str) -> Result<Vec<IpAddr>, String>,
    {
        if specs.is_empty() {
            return Err(TargetError::Empty);
        }
        let mut exclusions = Vec::new();
        for spec in exclude {
            match Interval::of(spec) {
                Some(iv) => exclusions.push(iv),
                None => {
                    let TargetSpec::Host(h) = spec else { continue };
                    return Err(TargetError::NamedExclusion { token: h.clone() });
                }
            }
        }
        let mut anonymous: Vec<Interval> = Vec::new();
        let mut named: Vec<Block> = Vec::new();
        for spec in specs {
            match spec {
                TargetSpec::Host(host) => {
                    let addrs = resolve(host).map_err(|reason| TargetError::Resolve {
                        host: host.clone(),
                        reason,
                    })?;
                    if addrs.is_empty() {
                        return Err(TargetError::Resolve {
                            host: host.clone(),
                            reason: "the name has no addresses".into(),
                        });
                    }
                    let name: Arc<str> = Arc::from(host.as_str());
                    let mut seen = BTreeSet::new();
                    for a in addrs {
                        if seen.insert(a) {
                            let iv = Interval {
                                v6: a.is_ipv6(),
                                first: ip_to_u128(a),
                                last: ip_to_u128(a),
                            };
                            named.push(Block {
                                range: iv,
                                hostname: Some(name.clone()),
                            });
                        }
                    }
                }
                other => anonymous.extend(Interval::of(other)),
            }
        }
        // Overlapping anonymous ranges are merged so no address is probed twice.
        anonymous.sort_by_key(|iv| (iv.v6, iv.first));
        let mut merged: Vec<Interval> = Vec::new();
        for iv in anonymous {
            match merged.last_mut() {
                Some(prev) if prev.v6 == iv.v6 && iv.first <= prev.last.saturating_add(1) => {
                    prev.last = prev.last.max(iv.last);
                }
                _ => merged.push(iv),
            }
        }
        let mut blocks: Vec<Block> = merged
            .into_iter()
            .map(|range| Block { range, hostname: None })
            .collect();
        blocks.extend(named);
        let mut ends = Vec::with_capacity(blocks.len());
        let mut total: u128 = 0;
        for b in &blocks {
            total = total.checked_add(b.range.len()).ok_or(TargetError::TooLarge {
                addresses: u128::MAX,
                ports: 0,
            })?;
            ends.push(total);
        }
        Ok(TargetSet {
            blocks,
            ends,
            exclude: exclusions,
        })
    }

    /// Addresses in the set, counting excluded ones (they are skipped while iterating).
    pub fn len(&self) -> u128 {
        self.ends.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th address and the host name it came from.
    pub fn get(&self, i: u128) -> Option<(IpAddr, Option<Arc<str>>)> {
        let b = self.ends.partition_point(|&end| end <= i);
        let block = self.blocks.get(b)?;
        let before = if b == 0 { 0 } else { self.ends[b - 1] };
        let ip = u128_to_ip(block.range.first + (i - before), block.range.v6);
        Some((ip, block.hostname.clone()))
    }

    /// The host names `ip` is scanned under: `None` for an address or range
    /// that holds it, `Some(name)` for each name that resolved to it. An
    /// engine that learns of a port by address alone (SYN scanning) uses this
    /// to give the record the same SNI the plan would have.
    pub fn names_of(&self, ip: IpAddr) -> Vec<Option<Arc<str>>> {
        self.blocks
            .iter()
            .filter(|b| b.range.contains(ip))
            .map(|b| b.hostname.clone())
            .collect()
    }

    pub fn is_excluded(&self, ip: IpAddr) -> bool {
        self.exclude.iter().any(|iv| iv.contains(ip))
    }
}

/// One (address, port) to probe, with the name to send as SNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: IpAddr,
    pub port: u16,
    pub hostname: Option<Arc<str>>,
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

/// `--shard i/n`: this sensor takes every n-th index starting at i-1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

impl FromStr for Shard {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, TargetError> {
        let bad = || TargetError::BadShard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if i == 0 || n == 0 || i > n {
            return Err(bad());
        }
        Ok(Shard { index: i - 1, count: n })
    }
}

/// Every (address, port) pair of a scan, numbered and visited in a seeded
/// pseudo-random order.
#[derive(Clone, Debug)]
pub struct ScanPlan {
    targets: TargetSet,
    ports: PortSet,
    perm: Permutation,
    seed: u64,
    shard: Option<Shard>,
}

impl ScanPlan {
    pub fn new(targets: TargetSet, ports: PortSet, seed: u64) -> Result<Self, TargetError> {
        if ports.is_empty() {
            return Err(TargetError::NoPorts);
        }
        let total = targets
            .len()
            .checked_mul(ports.len() as u128)
            .ok_or(TargetError::TooLarge {
                addresses: targets.len(),
                ports: ports.len(),
            })?;
        Ok(ScanPlan {
            perm: Permutation::new(total, seed),
            seed,
            targets,
            ports,
            shard: None,
        })
    }

    pub fn with_shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// Number of (address, port) indices, before exclusions and sharding.
    pub fn len(&self) -> u128 {
        self.perm.len()
    }

    pub fn is_empty(&self) -> bool {
        self.perm.is_empty()
    }

    pub fn ports(&self) -> &PortSet {
        &self.ports
    }

    pub fn targets(&self) -> &TargetSet {
        &self.targets
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// A digest of what the plan visits and in what order (addresses, names,
    /// exclusions, ports, seed, shard): equal digests mean position `i` is the
    /// same target in both plans, which is what a checkpoint relies on.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        let iv = |h: &mut Sha256, iv: &Interval| {
            h.update([u8::from(iv.v6)]);
            h.update(iv.first.to_be_bytes());
            h.update(iv.last.to_be_bytes());
        };
        for b in &self.targets.blocks {
            iv(&mut h, &b.range);
            h.update(b.hostname.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
        }
        h.update(b"exclude");
        for e in &self.targets.exclude {
            iv(&mut h, e);
        }
        h.update(b"ports");
        for p in self.ports.as_slice() {
            h.update(p.to_be_bytes());
        }
        h.update(self.seed.to_be_bytes());
        if let Some(s) = self.shard {
            h.update(s.index.to_be_bytes());
            h.update(s.count.to_be_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The target at position `index` of the walk, or `None` when excluded
    /// or outside this shard.
    pub fn at(&self, index: u128) -> Option<Target> {
        if let Some(s) = self.shard
            && index % u128::from(s.count) != u128::from(s.index)
        {
            return None;
        }
        let n = self.perm.apply(index);
        let nports = self.ports.len() as u128;
        let (addr, hostname) = self.targets.get(n / nports)?;
        if self.targets.is_excluded(addr) {
            return None;
        }
        let port = self.ports.as_slice()[(n % nports) as usize];
        Some(Target { addr, port, hostname })
    }

    /// Walk the plan from position `start` (a checkpoint) to the end, yielding
    /// each position with its target.
    pub fn iter_from(&self, start: u128) -> impl Iterator<Item = (u128, Target)> + '_ {
        (start..self.len()).filter_map(move |i| self.at(i).map(|t| (i, t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
        assert_eq!("60000-".parse::<PortSet>().unwrap().len(), 5536);
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
}
