//! The addresses of a scan as a handful of intervals with the exclusions
//! cut out: never a list, whatever the size of the range.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnetwork::IpNetwork;

use super::{TargetError, TargetSpec, ip_to_u128, u128_to_ip};

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
    /// Feed the set (intervals, names, exclusions) to a plan's fingerprint.
    pub(crate) fn digest_into(&self, h: &mut sha2::Sha256) {
        use sha2::Digest;
        let iv = |h: &mut sha2::Sha256, iv: &Interval| {
            h.update([u8::from(iv.v6)]);
            h.update(iv.first.to_be_bytes());
            h.update(iv.last.to_be_bytes());
        };
        for b in &self.blocks {
            iv(h, &b.range);
            h.update(b.hostname.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
        }
        h.update(b"exclude");
        for e in &self.exclude {
            iv(h, e);
        }
    }

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

    /// The indices ([`TargetSet::get`]) at which `ip` is in the set: one per
    /// block holding it (an address and a name that resolves to it are two).
    pub fn indices_of(&self, ip: IpAddr) -> impl Iterator<Item = u128> + '_ {
        let v = super::ip_to_u128(ip);
        self.blocks.iter().enumerate().filter_map(move |(b, block)| {
            let before = if b == 0 { 0 } else { self.ends[b - 1] };
            block.range.contains(ip).then(|| before + (v - block.range.first))
        })
    }

    /// Addresses that are probed: [`TargetSet::len`] less the excluded ones.
    pub fn probed_len(&self) -> u128 {
        // Exclusions may overlap each other: merge them first.
        let mut ex = self.exclude.clone();
        ex.sort_by_key(|iv| (iv.v6, iv.first));
        let mut merged: Vec<Interval> = Vec::new();
        for iv in ex {
            match merged.last_mut() {
                Some(prev) if prev.v6 == iv.v6 && iv.first <= prev.last.saturating_add(1) => {
                    prev.last = prev.last.max(iv.last);
                }
                _ => merged.push(iv),
            }
        }
        let mut excluded: u128 = 0;
        for b in &self.blocks {
            for e in merged.iter().filter(|e| e.v6 == b.range.v6) {
                let (lo, hi) = (b.range.first.max(e.first), b.range.last.min(e.last));
                if lo <= hi {
                    excluded = excluded.saturating_add(hi - lo + 1);
                }
            }
        }
        self.len().saturating_sub(excluded)
    }
}

/// One (address, port) to probe, with the name to send as SNI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub addr: IpAddr,
    pub port: u16,
    pub hostname: Option<Arc<str>>,
}
