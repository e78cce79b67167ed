//! The stateless cookie that ties a reply to a probe.
//!
//! A SYN scan sends far more probes than it could remember, so, like masscan
//! and zmap, we remember none: the initial sequence number of each SYN is a
//! keyed hash of the probe's (remote address, remote port, local port). A
//! SYN-ACK or RST that answers it acknowledges `seq + 1`, so the receiver
//! recomputes the hash from the reply's own addresses and ports and accepts
//! the reply only when they match. The key is random per scan, so nobody on
//! the path can forge replies for probes they did not see, and replies to
//! another scan (or to the kernel's own connections) do not match.
//!
//! The local address is left out of the hash on purpose: an IPv6 raw socket
//! does not tell the receiver which of our addresses a reply was sent to, and
//! the local port already comes from a range only this scan uses.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher24;

/// A per-scan secret: SipHash-2-4 keyed with two random 64-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieKey {
    k0: u64,
    k1: u64,
}

impl CookieKey {
    pub fn new(k0: u64, k1: u64) -> Self {
        CookieKey { k0, k1 }
    }

    /// A fresh key from the operating system's generator: unpredictable for
    /// the scan's lifetime.
    pub fn random() -> Self {
        CookieKey {
            k0: crate::model::ids::random_u64(),
            k1: crate::model::ids::random_u64(),
        }
    }

    /// The initial sequence number of the SYN to `remote:remote_port` sent
    /// from `local_port`.
    pub fn seq(&self, remote: IpAddr, remote_port: u16, local_port: u16) -> u32 {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        match remote {
            IpAddr::V4(a) => {
                h.write_u8(4);
                h.write(&a.octets());
            }
            IpAddr::V6(a) => {
                h.write_u8(6);
                h.write(&a.octets());
            }
        }
        h.write_u16(remote_port);
        h.write_u16(local_port);
        let x = h.finish();
        (x ^ (x >> 32)) as u32
    }

    /// Whether `ack` (from a reply) acknowledges our SYN to that remote from that port.
    pub fn matches(&self, remote: IpAddr, remote_port: u16, local_port: u16, ack: u32) -> bool {
        ack == self.seq(remote, remote_port, local_port).wrapping_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_per_key_and_tuple() {
        let k = CookieKey::new(1, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(k.seq(a, 443, 61000), k.seq(a, 443, 61000));
        assert!(k.matches(a, 443, 61000, k.seq(a, 443, 61000).wrapping_add(1)));
        assert!(!k.matches(a, 443, 61000, k.seq(a, 443, 61000)));
    }

    #[test]
    fn every_field_and_the_key_change_the_cookie() {
        let k = CookieKey::new(1, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let base = k.seq(a, 443, 61000);
        assert_ne!(base, k.seq(b, 443, 61000));
        assert_ne!(base, k.seq(a, 444, 61000));
        assert_ne!(base, k.seq(a, 443, 61001));
        assert_ne!(base, CookieKey::new(1, 3).seq(a, 443, 61000));
        assert_ne!(k.seq(v6, 443, 61000), base);
    }

    #[test]
    fn random_keys_differ() {
        assert_ne!(CookieKey::random(), CookieKey::random());
    }

    #[test]
    fn cookies_spread_over_the_sequence_space() {
        let k = CookieKey::new(7, 9);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let seqs: std::collections::HashSet<u32> = (1..=10_000u16).map(|p| k.seq(a, p, 61000)).collect();
        assert!(seqs.len() > 9_990, "{} distinct of 10000", seqs.len());
    }
}
