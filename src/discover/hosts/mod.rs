//! Host discovery: which addresses of a large range are alive, asked
//! cheaply before the port list is probed, so dark addresses cost a few
//! probes instead of the whole list (nmap's default, `-Pn` to skip).
//!
//! Why: on a range that is mostly dark, almost every port probe goes to no
//! host. A liveness probe per address (TCP SYN to [`LIVENESS_PORTS`] and an
//! ICMP echo where raw sockets allow; kernel connects to the same ports
//! without them) finds the hosts that are there; a SYN-ACK, a RST (a closed
//! port is a host saying no) or an echo reply counts as alive. Then the plan
//! is walked with only the live addresses' positions
//! ([`ScanPlan::with_live`]): what is found on a live host is exactly what a
//! scan without host discovery finds, with the same positions for
//! checkpoints.
//!
//! What it misses, as nmap does: a host that drops every liveness probe but
//! has an open port on the list is reported down and its ports are not
//! probed. `--no-host-discovery` (`-Pn`) or `host_discovery = false` is the
//! answer; [`rule`] says when it runs by default.

mod icmp;
pub mod rule;

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use icmp::EchoKey;
pub use rule::{AUTO_MIN_ADDRESSES, Decision, HostDiscovery, LIVENESS_PORTS, decide};

use crate::discover::connect::PortState;
use crate::discover::connect::{self, Connect, PortscanConfig, Progress};
use crate::discover::pacing::Rate;
use crate::discover::syn::{self, SynConfig, SynError};
use crate::discover::targets::{LiveMarks, LiveSet, PortSet, ScanPlan, TargetError, TargetSet};

/// Which engine sends the liveness probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// SYN to the liveness ports and ICMP echo (raw sockets).
    Syn,
    /// Kernel connects to the liveness ports (no privilege).
    Connect,
}

/// How the liveness probes are sent: the scan's own pacing and deadlines.
#[derive(Clone, Debug)]
pub struct LivenessConfig {
    pub engine: Engine,
    pub rate: Rate,
    /// The ceiling of a probe's wait (`--connect-timeout`).
    pub timeout: Duration,
    pub retries: u8,
    pub per_host_rate: u32,
    pub max_in_flight: usize,
    pub threads: usize,
    /// The walk's order (the plan's seed).
    pub seed: u64,
}

impl LivenessConfig {
    /// Liveness probes per address: the ports, plus the echo with raw sockets.
    pub fn probes_per_address(&self) -> usize {
        LIVENESS_PORTS.len() + usize::from(self.engine == Engine::Syn)
    }
}

/// What host discovery found.
#[derive(Debug)]
pub struct Census {
    pub live: LiveSet,
    pub up: u64,
    pub down: u64,
    /// Liveness probes sent (TCP and ICMP).
    pub probes: u64,
    pub took: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error(transparent)]
    Syn(#[from] SynError),
    #[error("host discovery (connect): {0}")]
    Connect(io::Error),
    #[error("host discovery: {0}")]
    Plan(#[from] TargetError),
}

/// Ask every address of `targets` whether it is alive. Publishes the count
/// of live hosts in `progress.hosts_up` as they are found. With `stop` set
/// the probes in flight finish and what was found so far is returned.
pub fn run_blocking(
    targets: &TargetSet,
    cfg: &LivenessConfig,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Census, HostsError> {
    let started = Instant::now();
    let ports: PortSet = LIVENESS_PORTS
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
        .parse()?;
    let plan = ScanPlan::new(targets.clone(), ports, cfg.seed)?;
    let marks = LiveMarks::new(targets.len());
    let alive = |ip: IpAddr| {
        for i in targets.indices_of(ip) {
            if marks.mark(i) {
                progress.hosts_up.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let local = Progress::default();
    let mut probes = 0;
    match cfg.engine {
        Engine::Syn => {
            let (syn_rate, echo_rate) = split_rate(cfg.rate, LIVENESS_PORTS.len() as u32);
            let syn_cfg = SynConfig {
                rate: syn_rate,
                retries: cfg.retries,
                per_host_rate: cfg.per_host_rate,
                wait: cfg.timeout,
                report_closed: true,
                ..SynConfig::default()
            };
            let key = EchoKey {
                ident: (crate::model::ids::random_u64() & 0xffff) as u16,
                key: crate::model::ids::random_u64(),
            };
            let pinger = match icmp::open() {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::debug!("host discovery without ICMP echo: {e}");
                    None
                }
            };
            let done = AtomicBool::new(false);
            let echoes = std::thread::scope(|scope| -> Result<u64, HostsError> {
                let pinging = pinger.map(|icmp::Pinger { mut tx, rx }| {
                    let (done, alive) = (&done, &alive);
                    let receiver = scope.spawn(move || icmp::receive(&rx, key, done, alive));
                    let sender = scope.spawn(move || icmp::send_all(&mut tx, targets, key, echo_rate, stop));
                    (sender, receiver)
                });
                let syn = syn::run_blocking(&plan, 0, &syn_cfg, &local, stop, None, |hit| {
                    if matches!(hit.state, PortState::Open | PortState::Closed) {
                        alive(hit.target.addr);
                    }
                });
                let mut echoes = 0;
                if let Some((sender, receiver)) = pinging {
                    let joining = Instant::now();
                    echoes = sender.join().unwrap_or(0);
                    // Echoes still going out when the SYN walk ended get a short grace.
                    if joining.elapsed() > Duration::from_millis(1) {
                        std::thread::sleep(cfg.timeout.min(Duration::from_millis(250)));
                    }
                    done.store(true, Ordering::Relaxed);
                    let _ = receiver.join();
                }
                syn?;
                Ok(echoes)
            })?;
            probes += echoes;
        }
        Engine::Connect => {
            let pcfg = PortscanConfig {
                rate: cfg.rate,
                max_in_flight: cfg.max_in_flight,
                connect_timeout: cfg.timeout,
                retries: cfg.retries,
                threads: cfg.threads,
            };
            connect::run_blocking(&plan, 0, &pcfg, &local, stop, |t, c| {
                if answered(&c) {
                    alive(t.addr);
                }
            })
            .map_err(HostsError::Connect)?;
        }
    }
    probes += local.probed.load(Ordering::Relaxed);
    let live = marks.freeze();
    let up = live.count();
    let down = u64::try_from(targets.probed_len())
        .unwrap_or(u64::MAX)
        .saturating_sub(up);
    progress.hosts_down.store(down, Ordering::Relaxed);
    Ok(Census {
        live,
        up,
        down,
        probes,
        took: started.elapsed(),
    })
}

/// The SYNs' and the echoes' shares of the rate: a ceiling stays a ceiling
/// for both together (`ports` SYNs to one echo per address).
fn split_rate(rate: Rate, ports: u32) -> (Rate, Rate) {
    match rate {
        Rate::Max(n) => {
            let echo = (n / (ports + 1)).max(1);
            (Rate::Max(n.saturating_sub(echo).max(1)), Rate::Max(echo))
        }
        other => (other, other),
    }
}

/// A connect outcome that shows a host: it accepted, reset, or refused.
fn answered(c: &Connect) -> bool {
    matches!(
        c,
        Connect::Open(_)
            | Connect::Reset { .. }
            | Connect::Closed {
                reason: "conn-refused" | "self-connect"
            }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_resets_are_alive_silence_and_unreachables_are_not() {
        assert!(answered(&Connect::Closed { reason: "conn-refused" }));
        assert!(answered(&Connect::Reset {
            reason: "syn-ack, then reset"
        }));
        assert!(!answered(&Connect::Filtered { reason: "no-response" }));
        assert!(!answered(&Connect::Filtered {
            reason: "host-unreachable"
        }));
    }

    #[test]
    fn a_rate_ceiling_is_shared_between_syns_and_echoes() {
        assert_eq!(split_rate(Rate::Max(1000), 4), (Rate::Max(800), Rate::Max(200)));
        assert_eq!(split_rate(Rate::Max(1), 4), (Rate::Max(1), Rate::Max(1)));
        assert_eq!(split_rate(Rate::Auto, 4), (Rate::Auto, Rate::Auto));
        assert_eq!(split_rate(Rate::Unlimited, 4), (Rate::Unlimited, Rate::Unlimited));
    }

    #[test]
    fn the_probe_count_includes_the_echo_only_with_raw_sockets() {
        let mut cfg = LivenessConfig {
            engine: Engine::Syn,
            rate: Rate::Auto,
            timeout: Duration::from_millis(100),
            retries: 0,
            per_host_rate: 0,
            max_in_flight: 16,
            threads: 1,
            seed: 1,
        };
        assert_eq!(cfg.probes_per_address(), LIVENESS_PORTS.len() + 1);
        cfg.engine = Engine::Connect;
        assert_eq!(cfg.probes_per_address(), LIVENESS_PORTS.len());
    }
}
