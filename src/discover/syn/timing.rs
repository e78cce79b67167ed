//! When each SYN left, for round-trip samples, in fixed memory.
//!
//! The SYN engine keeps no state per probe, but the RTT model
//! ([`crate::discover::rtt`]) needs samples: how long after its SYN did a
//! SYN-ACK or RST come back. A table of atomic slots, indexed by a hash of
//! (address, port), holds the send time of the latest probe that landed in
//! each slot with a tag of the same hash: the receiver reads the slot of an
//! answer and gets a sample when the tag matches. A collision costs a
//! sample, never a verdict (verdicts come from the cookie). Lock-free: one
//! store per probe, one load per answer.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Bits of a slot holding microseconds since the table's origin (12 days).
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// Send times of recent probes.
pub struct SendTimes {
    slots: Vec<AtomicU64>,
    origin: Instant,
}

impl SendTimes {
    /// A table of `slots` entries (rounded up to a power of two, at least 1).
    pub fn new(slots: usize, origin: Instant) -> SendTimes {
        let n = slots.max(1).next_power_of_two();
        SendTimes {
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            origin,
        }
    }

    fn hash(addr: IpAddr, port: u16) -> u64 {
        let a: u128 = match addr {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6) ^ (1 << 127),
        };
        // A multiplicative mix (splitmix64's finaliser) of the address and port.
        let mut h = (a as u64) ^ ((a >> 64) as u64).rotate_left(17) ^ (u64::from(port) << 48);
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }

    fn slot(&self, h: u64) -> &AtomicU64 {
        &self.slots[(h as usize) & (self.slots.len() - 1)]
    }

    /// A probe to (addr, port) left at `at`.
    pub fn sent(&self, addr: IpAddr, port: u16, at: Instant) {
        let h = Self::hash(addr, port);
        let micros = (at.saturating_duration_since(self.origin).as_micros() as u64).min(TIME_MASK);
        // The tag is the hash's top bits: the slot index uses the low ones.
        let value = (h >> TIME_BITS << TIME_BITS) | micros.max(1);
        self.slot(h).store(value, Ordering::Relaxed);
    }

    /// An answer from (addr, port) came at `at`: the round trip, when the
    /// slot still holds that probe's send time.
    pub fn answered(&self, addr: IpAddr, port: u16, at: Instant) -> Option<Duration> {
        let h = Self::hash(addr, port);
        let value = self.slot(h).load(Ordering::Relaxed);
        if value == 0 || value >> TIME_BITS != h >> TIME_BITS {
            return None;
        }
        let sent = self.origin + Duration::from_micros(value & TIME_MASK);
        at.checked_duration_since(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_finds_its_probe_send_time() {
        let t0 = Instant::now();
        let t = SendTimes::new(1024, t0);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        t.sent(a, 443, t0 + Duration::from_millis(5));
        t.sent(b, 443, t0 + Duration::from_millis(6));
        assert_eq!(
            t.answered(a, 443, t0 + Duration::from_millis(8)),
            Some(Duration::from_millis(3))
        );
        assert_eq!(
            t.answered(b, 443, t0 + Duration::from_millis(7)),
            Some(Duration::from_millis(1))
        );
        assert_eq!(t.answered(a, 444, t0 + Duration::from_millis(8)), None, "never sent");
    }

    #[test]
    fn a_collision_loses_a_sample_not_a_wrong_one() {
        let t0 = Instant::now();
        let t = SendTimes::new(1, t0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        t.sent(a, 1, t0);
        t.sent(a, 2, t0 + Duration::from_millis(1));
        assert_eq!(t.answered(a, 1, t0 + Duration::from_millis(2)), None);
        assert_eq!(
            t.answered(a, 2, t0 + Duration::from_millis(2)),
            Some(Duration::from_millis(1))
        );
    }
}
