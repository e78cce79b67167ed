//! The walk: every (address, port) pair numbered, visited through a seeded
//! permutation, optionally one shard of it.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::live::LiveSet;
use crate::discover::permute::Permutation;

use super::{PortSet, Target, TargetError, TargetSet};

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
    /// After host discovery: only these addresses' positions have targets.
    live: Option<Arc<LiveSet>>,
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
            live: None,
        })
    }

    pub fn with_shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// The same walk where only the addresses in `live` (by index in the
    /// target set) have targets: the positions of the others read as
    /// excluded, so both engines skip them and checkpoints mark them done.
    /// The fingerprint does not change: position `i` is still the same
    /// (address, port), which a checkpoint relies on.
    pub fn with_live(mut self, live: Option<Arc<LiveSet>>) -> Self {
        self.live = live;
        self
    }

    /// The live addresses, when host discovery filtered the plan.
    pub fn live(&self) -> Option<&LiveSet> {
        self.live.as_deref()
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
        self.targets.digest_into(&mut h);
        h.update(b"ports");
        for p in self.ports.as_slice() {
            h.update(p.to_be_bytes());
        }
        h.update(self.seed.to_be_bytes());
        if let Some(s) = self.shard {
            h.update(s.index.to_be_bytes());
            h.update(s.count.to_be_bytes());
        }
        crate::model::ids::hex(&h.finalize())
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
        if let Some(live) = &self.live
            && !live.contains(n / nports)
        {
            return None;
        }
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
