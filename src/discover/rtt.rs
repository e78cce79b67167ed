//! Round-trip times: how long to wait for an answer, learned from answers.
//!
//! A fixed deadline is either too long (1.5 s after the last SYN when every
//! answer came back in 50 µs) or too short (a satellite link). nmap learns
//! it instead, per host and per scan, as TCP does (RFC 6298): a smoothed
//! RTT and its variance from each SYN-ACK, RST or connect completion, and a
//! timeout of `SRTT + 4·RTTVAR`, held between a floor and a ceiling (the
//! operator's `--connect-timeout`, which stops being the wait and becomes
//! its upper bound). Where nothing ever answered there is nothing to learn
//! from, and the ceiling is the wait: dark space costs one ceiling per scan.
//!
//! Pure: samples in, timeouts out; the engines measure and the caller owns
//! the clock. Memory is bounded ([`MAX_HOSTS`] per-host estimators).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Per-host estimators kept at most; beyond, new hosts share the scan's.
pub const MAX_HOSTS: usize = 16_384;

/// The shortest timeout the model gives, however fast the answers: a
/// scheduler tick and a busy receiver must not turn into lost ports.
pub const FLOOR: Duration = Duration::from_millis(20);

/// RFC 6298's smoothed round-trip time and variance.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Estimator {
    /// Smoothed RTT and variance in microseconds (`None` before the first sample).
    srtt: Option<f64>,
    rttvar: f64,
    samples: u64,
}

impl Estimator {
    /// Takes one measured round trip (RFC 6298 §2.2-2.3: α = 1/8, β = 1/4).
    pub fn observe(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64() * 1e6;
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
        self.samples += 1;
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The smoothed RTT, once there is one.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt.map(|s| Duration::from_secs_f64(s / 1e6))
    }

    /// `SRTT + 4·RTTVAR` in microseconds, unbounded; `None` before any sample.
    fn rto_micros(&self) -> Option<f64> {
        self.srtt.map(|s| (s + 4.0 * self.rttvar).max(0.0))
    }

    /// `SRTT + 4·RTTVAR` within [`FLOOR`, `ceiling`]; the ceiling before any sample.
    pub fn timeout(&self, ceiling: Duration) -> Duration {
        match self.rto_micros() {
            None => ceiling,
            Some(us) => bounded(us, ceiling),
        }
    }
}

/// `us` microseconds within [`FLOOR`, `ceiling`] (a ceiling under the floor wins).
fn bounded(us: f64, ceiling: Duration) -> Duration {
    let d = Duration::try_from_secs_f64(us / 1e6).unwrap_or(ceiling);
    d.clamp(FLOOR.min(ceiling), ceiling)
}

/// The scan's estimator and one per host, bounded.
#[derive(Debug, Default)]
pub struct Rtt {
    scan: Estimator,
    hosts: HashMap<IpAddr, Estimator>,
    /// The largest per-host timeout seen so far (µs), for the final wait.
    worst_host: f64,
}

impl Rtt {
    pub fn new() -> Rtt {
        Rtt::default()
    }

    /// One answer from `host` after `rtt`.
    pub fn observe(&mut self, host: IpAddr, rtt: Duration) {
        self.scan.observe(rtt);
        let full = self.hosts.len() >= MAX_HOSTS;
        let e = match self.hosts.get_mut(&host) {
            Some(e) => Some(e),
            None if !full => Some(self.hosts.entry(host).or_default()),
            None => None,
        };
        if let Some(e) = e {
            e.observe(rtt);
            self.worst_host = self.worst_host.max(e.rto_micros().unwrap_or(0.0));
        }
    }

    /// Whether `host` has answered (has its own estimate).
    pub fn knows(&self, host: IpAddr) -> bool {
        self.hosts.contains_key(&host)
    }

    /// Whether anything has answered yet.
    pub fn answered(&self) -> bool {
        self.scan.samples() > 0
    }

    pub fn scan(&self) -> &Estimator {
        &self.scan
    }

    /// How long to wait for `host`: its own estimate once it has one, else
    /// the scan's; the ceiling while nothing has answered.
    pub fn timeout_for(&self, host: IpAddr, ceiling: Duration) -> Duration {
        match self.hosts.get(&host) {
            Some(e) => e.timeout(ceiling),
            _ => self.scan.timeout(ceiling),
        }
    }

    /// How long to listen after the last probe: a few timeouts of the
    /// slowest host that answered, within [`FLOOR`, `ceiling`]; the ceiling
    /// when nothing answered (what is silent may be slow, not dark).
    pub fn final_wait(&self, ceiling: Duration) -> Duration {
        if !self.answered() {
            return ceiling;
        }
        let scan = self.scan.rto_micros().unwrap_or(0.0);
        bounded(scan.max(self.worst_host) * 2.0, ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn follows_rfc_6298() {
        let mut e = Estimator::default();
        assert_eq!(
            e.timeout(Duration::from_secs(1)),
            Duration::from_secs(1),
            "no sample: the ceiling"
        );
        e.observe(100 * MS);
        // SRTT = R, RTTVAR = R/2: RTO = R + 4·R/2 = 3R.
        assert_eq!(e.srtt(), Some(100 * MS));
        assert_eq!(e.timeout(Duration::from_secs(1)), 300 * MS);
        e.observe(100 * MS);
        // RTTVAR = 3/4·50 + 1/4·0 = 37.5; SRTT = 100: RTO = 250 ms.
        assert_eq!(e.timeout(Duration::from_secs(1)), 250 * MS);
        e.observe(200 * MS);
        // RTTVAR = 3/4·37.5 + 1/4·100 = 53.125; SRTT = 112.5: RTO = 325 ms.
        let t = e.timeout(Duration::from_secs(1));
        assert!((t.as_secs_f64() - 0.325).abs() < 1e-6, "{t:?}");
    }

    #[test]
    fn timeouts_stay_between_floor_and_ceiling() {
        let mut e = Estimator::default();
        e.observe(Duration::from_micros(40));
        assert_eq!(e.timeout(Duration::from_secs(1)), FLOOR);
        let mut slow = Estimator::default();
        slow.observe(Duration::from_secs(3));
        assert_eq!(slow.timeout(Duration::from_millis(1500)), Duration::from_millis(1500));
        // A ceiling under the floor wins.
        assert_eq!(e.timeout(5 * MS), 5 * MS);
    }

    #[test]
    fn hosts_have_their_own_estimate_and_fall_back_to_the_scans() {
        let (fast, slow, new): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
        );
        let mut r = Rtt::new();
        let ceiling = Duration::from_millis(1500);
        assert_eq!(r.final_wait(ceiling), ceiling, "nothing answered: the ceiling");
        for _ in 0..8 {
            r.observe(fast, Duration::from_micros(50));
            r.observe(slow, 200 * MS);
        }
        assert_eq!(r.timeout_for(fast, ceiling), FLOOR);
        assert!(r.timeout_for(slow, ceiling) >= 200 * MS);
        let scan = r.timeout_for(new, ceiling);
        assert!(scan > FLOOR && scan < ceiling, "{scan:?}");
        // The final wait covers the slowest host that answered, twice.
        assert!(r.final_wait(ceiling) >= 2 * r.timeout_for(slow, ceiling).min(ceiling / 2));
        assert!(r.final_wait(ceiling) <= ceiling);
    }

    #[test]
    fn a_fast_scan_waits_the_floor_not_the_ceiling() {
        let mut r = Rtt::new();
        let h: IpAddr = "::1".parse().unwrap();
        for _ in 0..100 {
            r.observe(h, Duration::from_micros(30));
        }
        assert_eq!(r.final_wait(Duration::from_millis(1500)), FLOOR);
    }

    #[test]
    fn memory_is_bounded() {
        let mut r = Rtt::new();
        for i in 0..(MAX_HOSTS as u32 + 1000) {
            r.observe(IpAddr::from(i.to_be_bytes()), MS);
        }
        assert_eq!(r.hosts.len(), MAX_HOSTS);
        assert_eq!(r.scan().samples(), MAX_HOSTS as u64 + 1000);
    }
}
