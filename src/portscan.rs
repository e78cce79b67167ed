//! Which ports are open: asynchronous TCP connect scanning.
//!
//! The kernel does the handshake, so this works without privileges and sees
//! exactly what an application would. What matters is pacing: a global rate
//! limit (probes per second, the polite default), a cap on connections in
//! flight that stays under `RLIMIT_NOFILE`, and a deadline per connect, so
//! dark address space costs one timeout per probe, in parallel, not the
//! kernel's two minutes.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::targets::{ScanPlan, Target};

/// How a port answered a connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    Open,
    /// Refused (RST): a host is there, nothing listens.
    Closed,
    /// No answer, or an ICMP error: something drops or blocks the probe.
    Filtered,
}

/// The outcome of one connect probe.
#[derive(Debug)]
pub enum Connect {
    Open(TcpStream),
    Closed { reason: &'static str },
    Filtered { reason: &'static str },
}

impl Connect {
    pub fn state(&self) -> PortState {
        match self {
            Connect::Open(_) => PortState::Open,
            Connect::Closed { .. } => PortState::Closed,
            Connect::Filtered { .. } => PortState::Filtered,
        }
    }

    /// The nmap-style reason: `syn-ack`, `conn-refused`, `no-response`, …
    pub fn reason(&self) -> &'static str {
        match self {
            Connect::Open(_) => "syn-ack",
            Connect::Closed { reason } | Connect::Filtered { reason } => reason,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PortscanConfig {
    /// Probes per second across the whole scan; 0 means no limit.
    pub rate: u32,
    /// Connections in flight at once (also bounded by the file-descriptor limit).
    pub max_in_flight: usize,
    pub connect_timeout: Duration,
    /// Extra attempts for a port that did not answer.
    pub retries: u8,
}

impl Default for PortscanConfig {
    fn default() -> Self {
        PortscanConfig {
            rate: 10_000,
            max_in_flight: 2_048,
            // Long enough to cover the kernel's first SYN retransmission (1 s).
            connect_timeout: Duration::from_millis(1_500),
            retries: 0,
        }
    }
}

/// Connections in flight that the process can afford: the soft
/// `RLIMIT_NOFILE` minus a reserve for everything else the process holds.
pub fn fd_budget() -> usize {
    const RESERVE: u64 = 64;
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    match lim.current {
        Some(n) if n > RESERVE => (n - RESERVE).min(1 << 20) as usize,
        Some(_) => 1,
        None => 1 << 20,
    }
}

/// Raise the soft file-descriptor limit to the hard one, as nmap does. Returns
/// the new soft limit.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum.map(|m| m.min(1 << 20));
        let _ = setrlimit(Resource::Nofile, lim);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// One connect probe with its own deadline and bounded retries.
pub async fn connect(addr: SocketAddr, timeout: Duration, retries: u8) -> Connect {
    let mut attempt = 0u8;
    let mut local_backoff = Duration::from_millis(5);
    let mut local_errors = 0;
    loop {
        match tokio::time::timeout(timeout, connect_once(addr)).await {
            Ok(Ok(stream)) => {
                // On loopback a connect to a port in the ephemeral range can
                // pick that same port as its source and connect to itself.
                if stream.local_addr().ok() == Some(addr) {
                    return Connect::Closed { reason: "self-connect" };
                }
                return Connect::Open(stream);
            }
            Ok(Err(e)) => match classify_error(&e) {
                ErrorClass::Refused => {
                    return Connect::Closed { reason: "conn-refused" };
                }
                ErrorClass::Unreachable(reason) => return Connect::Filtered { reason },
                ErrorClass::LocalResource if local_errors < 8 => {
                    // Ephemeral ports or descriptors ran out: not an answer
                    // from the target. Wait and try again, a bounded number of times.
                    local_errors += 1;
                    tokio::time::sleep(local_backoff).await;
                    local_backoff = (local_backoff * 2).min(Duration::from_millis(500));
                    continue;
                }
                ErrorClass::LocalResource => {
                    return Connect::Filtered { reason: "local-error" };
                }
            },
            Err(_elapsed) => {}
        }
        if attempt >= retries {
            return Connect::Filtered { reason: "no-response" };
        }
        attempt += 1;
    }
}

async fn connect_once(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_nodelay(true)?;
    socket.connect(addr).await
}

enum ErrorClass {
    Refused,
    Unreachable(&'static str),
    LocalResource,
}

fn classify_error(e: &io::Error) -> ErrorClass {
    use rustix::io::Errno;
    if e.kind() == io::ErrorKind::ConnectionRefused {
        return ErrorClass::Refused;
    }
    let errno = e.raw_os_error().map(Errno::from_raw_os_error);
    match errno {
        Some(Errno::HOSTUNREACH) => ErrorClass::Unreachable("host-unreachable"),
        Some(Errno::NETUNREACH) => ErrorClass::Unreachable("net-unreachable"),
        Some(Errno::ACCESS) | Some(Errno::PERM) => ErrorClass::Unreachable("admin-prohibited"),
        Some(Errno::TIMEDOUT) => ErrorClass::Unreachable("no-response"),
        Some(Errno::ADDRNOTAVAIL)
        | Some(Errno::MFILE)
        | Some(Errno::NFILE)
        | Some(Errno::NOBUFS)
        | Some(Errno::AGAIN) => ErrorClass::LocalResource,
        _ => ErrorClass::Unreachable("error"),
    }
}

/// Spaces probes evenly at `rate` per second, in small bursts so a sleep is
/// never shorter than the timer's resolution.
struct Pacer {
    per_probe: Option<Duration>,
    sent: u32,
    epoch: Instant,
}

impl Pacer {
    fn new(rate: u32) -> Self {
        let now = Instant::now();
        Pacer {
            per_probe: (rate > 0).then(|| Duration::from_secs(1) / rate),
            sent: 0,
            epoch: now,
        }
    }

    async fn wait(&mut self) {
        let Some(step) = self.per_probe else { return };
        self.sent += 1;
        let due = self.epoch + step * self.sent;
        if due > Instant::now() + Duration::from_millis(1) {
            tokio::time::sleep_until(due).await;
        }
        // Re-anchor every second so the multiplication never overflows.
        if self.sent >= 1_000_000 {
            self.epoch = due;
            self.sent = 0;
        }
    }
}

/// Counters a progress display or a metrics endpoint can read while a scan runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Positions of the plan walked so far (including excluded/other-shard ones).
    pub walked: AtomicU64,
    /// Connect probes finished.
    pub probed: AtomicU64,
    pub open: AtomicU64,
}

/// Walk `plan` from `start`, connect to each target under the rate and
/// concurrency limits, and hand every outcome to `handle` (in its own task,
/// holding the in-flight slot until it returns).
pub async fn run<H, F>(plan: Arc<ScanPlan>, start: u128, cfg: &PortscanConfig, progress: Arc<Progress>, handle: H)
where
    H: Fn(Target, Connect) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let limit = cfg.max_in_flight.clamp(1, fd_budget());
    let slots = Arc::new(Semaphore::new(limit));
    let handle = Arc::new(handle);
    let mut pacer = Pacer::new(cfg.rate);
    let (timeout, retries) = (cfg.connect_timeout, cfg.retries);
    for index in start..plan.len() {
        progress.walked.store(index as u64, Ordering::Relaxed);
        let Some(target) = plan.at(index) else {
            continue;
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        pacer.wait().await;
        let handle = handle.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let addr = SocketAddr::new(target.addr, target.port);
            let outcome = connect(addr, timeout, retries).await;
            progress.probed.fetch_add(1, Ordering::Relaxed);
            if outcome.state() == PortState::Open {
                progress.open.fetch_add(1, Ordering::Relaxed);
            }
            handle(target, outcome).await;
            drop(permit);
        });
    }
    progress.walked.store(plan.len() as u64, Ordering::Relaxed);
    // Wait for every probe (and its handler) to give its slot back.
    let _ = slots.acquire_many(limit as u32).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tells_open_from_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let t = Duration::from_secs(2);
        assert_eq!(connect(open, t, 0).await.state(), PortState::Open);
        let c = connect(closed, t, 0).await;
        assert_eq!(c.state(), PortState::Closed);
        assert_eq!(c.reason(), "conn-refused");
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_probes() {
        let mut p = Pacer::new(100);
        let t0 = Instant::now();
        for _ in 0..100 {
            p.wait().await;
        }
        let elapsed = Instant::now() - t0;
        assert!(
            elapsed >= Duration::from_millis(980) && elapsed <= Duration::from_millis(1020),
            "{elapsed:?}"
        );
        let mut unlimited = Pacer::new(0);
        let t0 = Instant::now();
        for _ in 0..1000 {
            unlimited.wait().await;
        }
        assert_eq!(Instant::now(), t0);
    }
}
