//! The SYN engine's I/O: one sender thread, one receiver thread per address
//! family, raw sockets through `pnet::transport`.
//!
//! The sender walks the plan in order, at the global rate, and writes one
//! SYN per target (`1 + retries` copies back to back, as zmap's `--probes`
//! does: no per-probe timer, no table). The receivers read every TCP segment
//! the host gets, keep those that acknowledge one of our cookies, and report
//! each (address, port) once. After the walk, a final wait catches late
//! replies; then, only when closed and filtered ports are wanted, the plan is
//! walked again to report the targets that never answered as filtered.
//! Memory is the answers (open ports; all answering ports when closed ones
//! are shown), never the range.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet::packet::ip::IpNextHeaderProtocols;
use pnet::transport::{self, TransportChannelType, TransportProtocol, TransportSender};

use super::packet::{Prober, tcp_in_ipv4};
use super::{SynConfig, SynError};
use crate::discover::checkpoint::Tracker;
use crate::discover::connect::{PortState, Progress};
use crate::discover::targets::{ScanPlan, Target};

/// One port's verdict from the SYN engine.
#[derive(Debug)]
pub struct SynHit {
    pub target: Target,
    pub state: PortState,
    /// nmap's words: `syn-ack`, `reset`, `no-response`, …
    pub reason: &'static str,
    /// For an open port with a checkpoint: the hold to release once its
    /// records are out ([`Tracker::release`]).
    pub hold: Option<u64>,
}

/// Open the raw sockets (IPv4 required, IPv6 when the host has it).
pub(super) fn open_channels() -> Result<Channels, SynError> {
    let tx4 = transport::transport_channel(
        256,
        TransportChannelType::Layer4(TransportProtocol::Ipv4(IpNextHeaderProtocols::Tcp)),
    )
    .map_err(SynError::from_open)?
    .0;
    let rx4 = open_receiver(false).map_err(SynError::from_open)?;
    let v6 = transport::transport_channel(
        256,
        TransportChannelType::Layer4(TransportProtocol::Ipv6(IpNextHeaderProtocols::Tcp)),
    )
    .ok()
    .and_then(|(tx, _)| open_receiver(true).ok().map(|rx| (tx, rx)));
    Ok(Channels { v4: (tx4, rx4), v6 })
}

/// The socket replies are read from: raw TCP of one family with a large
/// receive buffer (on loopback it also gets our own SYNs, so two packets
/// arrive per probe; a default-sized buffer overflows at full rate and
/// loses answers). pnet's receiver cannot size its buffer without unsafe
/// code, which this crate forbids, so it is opened with rustix and read as
/// a datagram socket; pnet still parses every packet.
fn open_receiver(v6: bool) -> io::Result<UdpSocket> {
    use rustix::net::{AddressFamily, SocketType, ipproto, sockopt};
    let family = if v6 { AddressFamily::INET6 } else { AddressFamily::INET };
    let fd = rustix::net::socket(family, SocketType::RAW, Some(ipproto::TCP))?;
    const BUFFER: usize = 32 << 20;
    if sockopt::set_socket_recv_buffer_size_force(&fd, BUFFER).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(&fd, BUFFER);
    }
    let socket = UdpSocket::from(fd);
    // A timeout set once: each read is one system call, and the loop still
    // sees the end of the final wait within 20 ms.
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    Ok(socket)
}

pub(super) struct Channels {
    v4: (TransportSender, UdpSocket),
    v6: Option<(TransportSender, UdpSocket)>,
}

/// Shared between the sender and the receivers.
struct Shared<'a> {
    plan: &'a ScanPlan,
    prober: Prober,
    /// (address, port) pairs already reported.
    seen: Mutex<HashSet<(IpAddr, u16)>>,
    /// Report (and so remember) closed and unanswered ports too.
    report_unanswered: bool,
    /// The engine's watermark: every position below it was sent at least `wait` ago.
    watermark: Mutex<u128>,
    tracker: Option<&'a Tracker>,
    finished: AtomicBool,
}

impl Shared<'_> {
    /// Record that (addr, port) has its verdict; false when it already had one.
    fn first_time(&self, addr: IpAddr, port: u16) -> bool {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert((addr, port))
    }

    fn answered(&self, addr: IpAddr, port: u16) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(addr, port))
    }

    fn watermark(&self) -> u128 {
        *self.watermark.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Report a verdict for (addr, port) under every name the plan scans it as.
    fn report<F: Fn(SynHit)>(&self, report: &F, addr: IpAddr, port: u16, state: PortState, reason: &'static str) {
        for hostname in self.plan.targets().names_of(addr) {
            let hold = match (state, self.tracker) {
                (PortState::Open, Some(t)) => Some(t.hold(self.watermark())),
                _ => None,
            };
            report(SynHit {
                target: Target { addr, port, hostname },
                state,
                reason,
                hold,
            });
        }
    }
}

/// Walk `plan` from `start` with SYN probes and report every port that
/// answered SYN-ACK (and, with `cfg.report_unanswered`, the closed and
/// filtered ones too). Blocks until the walk and the final wait are over, or
/// `stop` is set and the wait after the last probe is.
pub fn run_blocking<F>(
    plan: &ScanPlan,
    start: u128,
    cfg: &SynConfig,
    progress: &Progress,
    stop: &AtomicBool,
    tracker: Option<&Tracker>,
    report: F,
) -> Result<(), SynError>
where
    F: Fn(SynHit) + Sync,
{
    let Channels { v4, v6 } = open_channels()?;
    let (mut tx4, rx4) = v4;
    let (mut tx6, rx6) = match v6 {
        Some((t, r)) => (Some(t), Some(r)),
        None => (None, None),
    };
    let shared = Shared {
        plan,
        prober: Prober {
            key: cfg.key,
            ports: cfg.source_ports.clone(),
        },
        seen: Mutex::new(HashSet::new()),
        report_unanswered: cfg.report_unanswered,
        watermark: Mutex::new(start),
        tracker,
        finished: AtomicBool::new(false),
    };
    let shared = &shared;
    let report = &report;
    let end = std::thread::scope(|scope| {
        let r4 = scope.spawn(move || receive(rx4, shared, progress, report));
        let r6 = rx6.map(|rx| scope.spawn(move || receive(rx, shared, progress, report)));
        let end = send(shared, start, cfg, progress, stop, &mut tx4, tx6.as_mut(), report);
        // The final wait: replies to the last probes are still on their way.
        let until = Instant::now() + cfg.wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
        shared.finished.store(true, Ordering::Relaxed);
        let mut result = Ok(end);
        for r in std::iter::once(r4).chain(r6) {
            match r.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(SynError::Io(e)),
                Err(_) => result = Err(SynError::Io(io::Error::other("the SYN receiver thread panicked"))),
            }
        }
        result
    })?;
    if shared.report_unanswered {
        // Walk what was sent again: every target without an answer is filtered.
        for index in start..end {
            if tracker.is_some_and(|t| t.skip(index)) {
                continue;
            }
            if let Some(t) = plan.at(index)
                && !shared.answered(t.addr, t.port)
            {
                report(SynHit {
                    target: t,
                    state: PortState::Filtered,
                    reason: "no-response",
                    hold: None,
                });
            }
        }
    }
    if let Some(t) = tracker {
        t.done_below(end);
    }
    Ok(())
}

/// The sender: walk, pace, write. Returns the position it stopped at.
#[allow(clippy::too_many_arguments)]
fn send<F: Fn(SynHit)>(
    shared: &Shared<'_>,
    start: u128,
    cfg: &SynConfig,
    progress: &Progress,
    stop: &AtomicBool,
    tx4: &mut TransportSender,
    mut tx6: Option<&mut TransportSender>,
    report: &F,
) -> u128 {
    let plan = shared.plan;
    let len = plan.len();
    let copies = u64::from(cfg.retries) + 1;
    let began = Instant::now();
    let mut sent: u64 = 0;
    let mut sources = SourceCache::default();
    // (time, position) marks: every position below was sent before that time.
    let mut marks: VecDeque<(Instant, u128)> = VecDeque::new();
    let mut last_mark = began;
    let mut next = start;
    let mut budget = HostBudget::new(cfg.per_host_rate, began);
    while next < len && !stop.load(Ordering::Relaxed) {
        let index = next;
        next += 1;
        progress.walked.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if now.duration_since(last_mark) >= Duration::from_millis(2) {
            last_mark = now;
            marks.push_back((now, index));
            advance_watermark(shared, &mut marks, now, cfg.wait);
        }
        if shared.tracker.is_some_and(|t| t.skip(index)) {
            continue;
        }
        let Some(target) = plan.at(index) else {
            continue;
        };
        while let Some(wait) = budget.take(target.addr, copies as u32, Instant::now()) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(wait.max(Duration::from_millis(1)));
        }
        let outcome = sources.source_for(target.addr).and_then(|src| {
            let bytes = shared
                .prober
                .syn(src, SocketAddr::new(target.addr, target.port))
                .ok_or("local-error")?;
            let tx = match target.addr {
                IpAddr::V4(_) => &mut *tx4,
                IpAddr::V6(_) => tx6.as_deref_mut().ok_or("no-ipv6")?,
            };
            for _ in 0..copies {
                if cfg.rate > 0 {
                    pace(began, sent, cfg.rate);
                }
                sent += 1;
                send_one(tx, &bytes, target.addr)?;
            }
            Ok(())
        });
        progress.probed.fetch_add(1, Ordering::Relaxed);
        if let Err(reason) = outcome
            && shared.report_unanswered
            && shared.first_time(target.addr, target.port)
        {
            // The probe never left: say why, as the connect engine would.
            shared.report(report, target.addr, target.port, PortState::Filtered, reason);
        }
    }
    next
}

/// The per-host probe budget: at most `limit` probes to one address in any
/// one-second window. The permutation already spreads a wide scan over many
/// hosts; this bounds what one host sees when the plan is one host's many
/// ports. Memory is the hosts probed in the current window, never the range.
#[derive(Debug)]
pub(crate) struct HostBudget {
    limit: u32,
    window: Instant,
    counts: HashMap<IpAddr, u32>,
}

impl HostBudget {
    pub(crate) fn new(limit: u32, now: Instant) -> Self {
        HostBudget {
            limit,
            window: now,
            counts: HashMap::new(),
        }
    }

    /// Account for `n` probes to `addr` at `now`; how long to wait first
    /// when the host's budget for this window is spent (the caller sleeps,
    /// then calls again).
    pub(crate) fn take(&mut self, addr: IpAddr, n: u32, now: Instant) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.counts.clear();
        }
        let used = self.counts.entry(addr).or_insert(0);
        if *used > 0 && *used + n > self.limit {
            return Some((self.window + Duration::from_secs(1)).saturating_duration_since(now));
        }
        *used += n;
        None
    }
}

/// Sleep until the `sent`-th packet is due at `rate` per second.
fn pace(began: Instant, sent: u64, rate: u32) {
    let due = began + Duration::from_secs_f64(sent as f64 / f64::from(rate));
    let now = Instant::now();
    if due > now + Duration::from_micros(500) {
        std::thread::sleep(due - now);
    }
}

/// Write one SYN. A full socket buffer is waited out briefly; a refusal by
/// the local firewall or routing is the target's verdict.
fn send_one(tx: &mut TransportSender, bytes: &[u8], dst: IpAddr) -> Result<(), &'static str> {
    use rustix::io::Errno;
    for attempt in 0..8u32 {
        let packet = pnet::packet::tcp::TcpPacket::new(bytes).ok_or("local-error")?;
        match tx.send_to(packet, dst) {
            Ok(_) => return Ok(()),
            Err(e) => match e.raw_os_error().map(Errno::from_raw_os_error) {
                Some(Errno::NOBUFS) | Some(Errno::AGAIN) | Some(Errno::INTR) => {
                    std::thread::sleep(Duration::from_micros(200 << attempt.min(6)));
                }
                Some(Errno::HOSTUNREACH) => return Err("host-unreachable"),
                Some(Errno::NETUNREACH) => return Err("net-unreachable"),
                Some(Errno::ACCESS) | Some(Errno::PERM) => return Err("admin-prohibited"),
                _ => return Err("local-error"),
            },
        }
    }
    Err("local-error")
}

fn advance_watermark(shared: &Shared<'_>, marks: &mut VecDeque<(Instant, u128)>, now: Instant, wait: Duration) {
    let mut reached = None;
    while let Some(&(t, pos)) = marks.front() {
        if now.duration_since(t) < wait {
            break;
        }
        reached = Some(pos);
        marks.pop_front();
    }
    let Some(pos) = reached else { return };
    let w = {
        let mut w = shared.watermark.lock().unwrap_or_else(|p| p.into_inner());
        *w = (*w).max(pos);
        *w
    };
    // Unanswered ports are reported only at the end: until then nothing is done.
    if !shared.report_unanswered
        && let Some(t) = shared.tracker
    {
        t.done_below(w);
    }
}

/// The receiver: read segments until the sender's final wait is over.
fn receive<F: Fn(SynHit)>(rx: UdpSocket, shared: &Shared<'_>, progress: &Progress, report: &F) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    while !shared.finished.load(Ordering::Relaxed) {
        let (n, from) = match rx.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            },
        };
        let data = &buf[..n];
        // IPv4 raw sockets deliver the IP header, IPv6 ones only the segment.
        let (addr, segment) = match from.ip() {
            IpAddr::V4(_) => match tcp_in_ipv4(data) {
                Some(x) => x,
                None => continue,
            },
            IpAddr::V6(a) => (IpAddr::V6(a), data),
        };
        let verdict = shared.prober.classify(addr, segment);
        let Some((port, state)) = verdict else { continue };
        let open = state == PortState::Open;
        // Closed ports matter only when they are reported; each verdict once.
        if (open || shared.report_unanswered) && shared.first_time(addr, port) {
            if open {
                progress.open.fetch_add(1, Ordering::Relaxed);
            }
            shared.report(report, addr, port, state, if open { "syn-ack" } else { "reset" });
        }
    }
    Ok(())
}

/// The source address the kernel would use towards each destination,
/// cached per /24 (IPv4) or /64 (IPv6): the TCP checksum needs it.
#[derive(Default)]
struct SourceCache {
    map: HashMap<(bool, u128), Result<IpAddr, &'static str>>,
}

impl SourceCache {
    fn source_for(&mut self, dst: IpAddr) -> Result<IpAddr, &'static str> {
        let key = match dst {
            IpAddr::V4(a) => (false, u128::from(u32::from(a) >> 8)),
            IpAddr::V6(a) => (true, u128::from(a) >> 64),
        };
        if let Some(r) = self.map.get(&key) {
            return *r;
        }
        if self.map.len() >= 65_536 {
            self.map.clear();
        }
        let r = route_source(dst);
        self.map.insert(key, r);
        r
    }
}

/// Ask the kernel's routing table for our address towards `dst` (connecting
/// a UDP socket sends nothing).
fn route_source(dst: IpAddr) -> Result<IpAddr, &'static str> {
    let any: SocketAddr = match dst {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let s = UdpSocket::bind(any).map_err(|_| "local-error")?;
    match s.connect(SocketAddr::new(dst, 9)) {
        Ok(()) => s.local_addr().map(|a| a.ip()).map_err(|_| "local-error"),
        Err(e) if e.kind() == io::ErrorKind::NetworkUnreachable => Err("net-unreachable"),
        Err(e) if e.kind() == io::ErrorKind::HostUnreachable => Err("host-unreachable"),
        Err(_) => Err("no-route"),
    }
}
