//! SYN scanning: discovery with half-open TCP probes over raw sockets.
//!
//! Why: a connect scan costs five system calls and a socket per probe and
//! the kernel's connection table; a SYN scan writes one packet per probe and
//! keeps no state per probe at all, so its rate is bounded by the packet path
//! rather than by the connection table. It needs `CAP_NET_RAW` (or root);
//! without it, [`ScanType::Auto`] falls back to the connect engine
//! ([`crate::discover::connect`]).
//!
//! How: [`cookie`] makes each probe's sequence number a keyed hash of its
//! addresses and ports, so a reply is matched to its probe by arithmetic
//! (as masscan and zmap do), not by a table; [`packet`] builds the SYN and
//! judges replies as bytes; [`engine`] runs a sender thread (the walk of the
//! plan, the global rate, `1 + retries` copies per probe) and a receiver
//! thread per address family, with a final wait for late replies. Results are
//! the connect engine's verdicts (open / closed / filtered per address and
//! port), so [`crate::scan`] treats both engines alike.
//!
//! The kernel's RSTs: our SYNs come from raw sockets, so when a SYN-ACK
//! arrives the host's TCP stack finds no socket for it and answers with a
//! RST. That is harmless and even polite (the server drops its half-open
//! connection at once): the verdict was taken from the SYN-ACK, and the TLS
//! stages then open a fresh, ordinary `connect()` to each open port, which
//! the kernel owns from start to finish. Our probes use source ports
//! [`DEFAULT_SOURCE_PORTS`] (above Linux's default ephemeral range,
//! 32768–60999), so the kernel's own connections never collide with them; an
//! operator who wants the RSTs gone can drop them with one rule, e.g.
//! `iptables -A OUTPUT -p tcp --sport 61000:65535 --tcp-flags RST RST -j DROP`.
//! Nothing depends on it.

pub mod cookie;
pub mod engine;
pub mod packet;
mod sender;
pub mod timing;

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

pub use cookie::CookieKey;

use crate::discover::pacing::Rate;
pub use engine::{SynHit, run_blocking};

/// Source ports of SYN probes: outside the kernel's default ephemeral range.
pub const DEFAULT_SOURCE_PORTS: RangeInclusive<u16> = 61_000..=65_535;

/// Which engine finds open ports (`--scan-type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanType {
    /// SYN when raw sockets can be opened, else connect (with one log line saying why).
    #[default]
    Auto,
    /// SYN probes over raw sockets; an error without the privilege.
    Syn,
    /// The kernel's connect(); needs no privilege.
    Connect,
}

impl FromStr for ScanType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ScanType::Auto),
            "syn" => Ok(ScanType::Syn),
            "connect" => Ok(ScanType::Connect),
            other => Err(format!("scan type `{other}`: expected syn, connect or auto")),
        }
    }
}

impl fmt::Display for ScanType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ScanType::Auto => "auto",
            ScanType::Syn => "syn",
            ScanType::Connect => "connect",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynError {
    #[error("SYN scanning needs raw sockets, which need root or CAP_NET_RAW ({0}); use --scan-type connect")]
    NotPermitted(std::io::Error),
    #[error("cannot open a raw socket: {0}")]
    Open(std::io::Error),
    #[error("the SYN engine failed: {0}")]
    Io(std::io::Error),
}

impl SynError {
    fn from_open(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::PermissionDenied => SynError::NotPermitted(e),
            _ => SynError::Open(e),
        }
    }
}

/// Whether this process may open the raw sockets a SYN scan needs (opens
/// and closes them; sends nothing).
pub fn raw_sockets_available() -> Result<(), SynError> {
    engine::open_channels(&DEFAULT_SOURCE_PORTS).map(drop)
}

#[derive(Clone, Debug)]
pub struct SynConfig {
    /// Packets per second across the scan (retries included): learned
    /// (`auto`), at most a number, or unlimited.
    pub rate: Rate,
    /// Extra copies of each probe, sent back to back (zmap's `--probes`).
    pub retries: u8,
    /// Per-host probe budget: probes per second to any one address; 0 means none.
    pub per_host_rate: u32,
    /// The longest wait for replies after the last probe (the learned wait
    /// is shorter once answers come); also the age after which a position
    /// counts as done for checkpoints.
    pub wait: Duration,
    pub source_ports: RangeInclusive<u16>,
    pub key: CookieKey,
    /// Also report closed (RST) and filtered (no answer) ports.
    pub report_unanswered: bool,
    /// Also report closed (RST) ports, without the filtered ones (host
    /// discovery: a RST shows a host).
    pub report_closed: bool,
}

impl Default for SynConfig {
    fn default() -> Self {
        SynConfig {
            rate: Rate::Auto,
            retries: 0,
            per_host_rate: 0,
            wait: Duration::from_millis(1_500),
            source_ports: DEFAULT_SOURCE_PORTS,
            key: CookieKey::random(),
            report_unanswered: false,
            report_closed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_budget_spends_per_host_per_second() {
        let t0 = std::time::Instant::now();
        let mut b = sender::HostBudget::new(3, t0);
        let (a, c): (std::net::IpAddr, std::net::IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        assert_eq!(b.take(a, 2, t0), None);
        assert_eq!(b.take(c, 3, t0), None, "another host has its own budget");
        let wait = b.take(a, 2, t0 + Duration::from_millis(400)).expect("a is over budget");
        assert_eq!(wait, Duration::from_millis(600));
        assert_eq!(b.take(a, 2, t0 + Duration::from_secs(1)), None, "a new window");
        // A probe larger than the whole budget still goes, alone in its window.
        let mut one = sender::HostBudget::new(1, t0);
        assert_eq!(one.take(a, 2, t0), None);
        assert!(one.take(a, 1, t0).is_some());
        let mut off = sender::HostBudget::new(0, t0);
        assert!((0..100).all(|_| off.take(a, 5, t0).is_none()));
    }

    #[test]
    fn parses_scan_types() {
        assert_eq!("SYN".parse::<ScanType>(), Ok(ScanType::Syn));
        assert_eq!("connect".parse::<ScanType>(), Ok(ScanType::Connect));
        assert_eq!("auto".parse::<ScanType>(), Ok(ScanType::Auto));
        assert!("udp".parse::<ScanType>().unwrap_err().contains("`udp`"));
        assert_eq!(ScanType::Syn.to_string(), "syn");
    }
}
