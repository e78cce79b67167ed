//! The SYN engine's I/O: one sender ([`super::sender`]), one receiver
//! thread per address family, raw sockets through `pnet::transport`.
//!
//! The walk goes through the plan in order, paced ([`crate::discover::pacing`]),
//! and writes one SYN per target (`1 + retries` copies back to back, as
//! zmap's `--probes` does: no per-probe timer, no table). The receivers read
//! every TCP segment the host gets, keep those that acknowledge one of our
//! cookies, take a round-trip sample from the send-time table
//! ([`super::timing`]), and report each (address, port) once. After the
//! walk, the final wait ends when every probe has its answer or after a few
//! learned round trips ([`crate::discover::rtt`]; the ceiling only when
//! nothing answered); then the silent ports of hosts that answered get
//! retransmissions. Only when closed and filtered ports are wanted is the
//! plan walked again to report the targets that never answered as filtered.
//! Memory is the answers (every answering port, and the addresses that
//! answered), never the range.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pnet::packet::ip::IpNextHeaderProtocols;
use pnet::transport::{self, TransportChannelType, TransportProtocol, TransportSender};

use super::packet::{Prober, answer_filter, tcp_in_ipv4};
use super::sender::Sender;
use super::timing::SendTimes;
use super::{SynConfig, SynError};
use crate::discover::checkpoint::Tracker;
use crate::discover::connect::{PortState, Progress};
use crate::discover::rtt::Rtt;
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
pub(super) fn open_channels(ports: &RangeInclusive<u16>) -> Result<Channels, SynError> {
    let tx4 = transport::transport_channel(
        256,
        TransportChannelType::Layer4(TransportProtocol::Ipv4(IpNextHeaderProtocols::Tcp)),
    )
    .map_err(SynError::from_open)?
    .0;
    let rx4 = open_receiver(false, ports).map_err(SynError::from_open)?;
    let v6 = transport::transport_channel(
        256,
        TransportChannelType::Layer4(TransportProtocol::Ipv6(IpNextHeaderProtocols::Tcp)),
    )
    .ok()
    .and_then(|(tx, _)| open_receiver(true, ports).ok().map(|rx| (tx, rx)));
    Ok(Channels { v4: (tx4, rx4), v6 })
}

/// The socket replies are read from: raw TCP of one family with a large
/// receive buffer (on loopback it also gets our own SYNs, so two packets
/// arrive per probe; a default-sized buffer overflows at full rate and
/// loses answers). pnet's receiver cannot size its buffer without unsafe
/// code, which this crate forbids, so it is opened with rustix and read as
/// a datagram socket; pnet still parses every packet.
fn open_receiver(v6: bool, ports: &RangeInclusive<u16>) -> io::Result<UdpSocket> {
    use rustix::net::{AddressFamily, SocketType, ipproto, sockopt};
    let family = if v6 { AddressFamily::INET6 } else { AddressFamily::INET };
    let fd = rustix::net::socket(family, SocketType::RAW, Some(ipproto::TCP))?;
    const BUFFER: usize = 32 << 20;
    if sockopt::set_socket_recv_buffer_size_force(&fd, BUFFER).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(&fd, BUFFER);
    }
    // Only answers to our source ports reach user space (our own SYNs on
    // loopback, and everyone else's traffic, are dropped in the kernel).
    // Without the filter the receiver still works: it filters by cookie.
    let socket = socket2::Socket::from(fd);
    let filter: Vec<socket2::SockFilter> = answer_filter(!v6, ports)
        .into_iter()
        .map(|(code, jt, jf, k)| socket2::SockFilter::new(code, jt, jf, k))
        .collect();
    if let Err(e) = socket.attach_filter(&filter) {
        tracing::debug!("SYN receiver without its kernel filter: {e}");
    }
    let socket = UdpSocket::from(socket);
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
    /// (address, port) pairs that answered (SYN-ACK or RST), each reported once.
    seen: Mutex<HashSet<(IpAddr, u16)>>,
    /// Addresses that answered anything: a silent port of one of them is
    /// worth a retransmission, a silent address is dark.
    live: Mutex<HashSet<IpAddr>>,
    /// Answers so far (the size of `seen`).
    answers: AtomicU64,
    /// Report closed and unanswered ports too.
    report_unanswered: bool,
    /// Report closed ports too.
    report_closed: bool,
    /// The engine's watermark: every position below it was sent at least `wait` ago.
    watermark: Mutex<u128>,
    tracker: Option<&'a Tracker>,
    finished: AtomicBool,
    /// Send times, for round-trip samples.
    times: SendTimes,
    rtt: Mutex<Rtt>,
}

impl Shared<'_> {
    /// Record that (addr, port) has its verdict; false when it already had one.
    fn first_time(&self, addr: IpAddr, port: u16) -> bool {
        let new = self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert((addr, port));
        if new {
            self.answers.fetch_add(1, Ordering::Relaxed);
        }
        new
    }

    /// Record that a probe to (addr, port) never left (not an answer); false
    /// when it already had a verdict.
    fn unsent(&self, addr: IpAddr, port: u16) -> bool {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).insert((addr, port))
    }

    fn answered(&self, addr: IpAddr, port: u16) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(addr, port))
    }

    fn is_live(&self, addr: IpAddr) -> bool {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).contains(&addr)
    }

    fn watermark(&self) -> u128 {
        *self.watermark.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn final_wait(&self, ceiling: Duration) -> Duration {
        self.rtt.lock().unwrap_or_else(|p| p.into_inner()).final_wait(ceiling)
    }

    /// Listen after the last probe: until every probe sent since `expected`
    /// was set has its answer, or a few round trips of the slowest host
    /// that answered have passed (the ceiling when nothing answered).
    fn settle(&self, expected: u64, ceiling: Duration, stop: &AtomicBool) {
        let last_send = Instant::now();
        loop {
            if self.answers.load(Ordering::Relaxed) >= expected {
                return;
            }
            let left = self.final_wait(ceiling).saturating_sub(last_send.elapsed());
            if left.is_zero() || stop.load(Ordering::Relaxed) && last_send.elapsed() >= ceiling {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(1)));
        }
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

/// Rounds of retransmission to silent ports of hosts that answered.
const RETRANSMIT_ROUNDS: u32 = 2;

/// Walk `plan` from `start` with SYN probes and report every port that
/// answered SYN-ACK (and, with `cfg.report_unanswered`, the closed and
/// filtered ones too). Blocks until the walk and the final wait are over, or
/// `stop` is set and the wait after the last probe is.
///
/// The final wait is learned ([`Rtt::final_wait`]): it ends as soon as every
/// probe has its answer, else after a few round trips of the slowest host
/// that answered; only when nothing answered is it `cfg.wait`. Then the
/// silent ports of hosts that did answer get their retransmission (up to
/// [`RETRANSMIT_ROUNDS`] rounds, each only if the previous one found
/// something or was the first): under loss, that is where ports go missing.
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
    let Channels { v4, v6 } = open_channels(&cfg.source_ports)?;
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
        live: Mutex::new(HashSet::new()),
        answers: AtomicU64::new(0),
        report_unanswered: cfg.report_unanswered,
        report_closed: cfg.report_closed,
        watermark: Mutex::new(start),
        tracker,
        finished: AtomicBool::new(false),
        times: SendTimes::new(1 << 16, Instant::now()),
        rtt: Mutex::new(Rtt::new()),
    };
    let shared = &shared;
    let report = &report;
    let end = std::thread::scope(|scope| {
        let r4 = scope.spawn(move || receive(rx4, shared, progress, report));
        let r6 = rx6.map(|rx| scope.spawn(move || receive(rx, shared, progress, report)));
        let mut sender = Sender::new(
            &mut tx4,
            tx6.as_mut(),
            &shared.prober,
            &shared.times,
            u32::from(cfg.retries) + 1,
            cfg.rate,
            cfg.per_host_rate,
        );
        progress.set_rate(sender.rate());
        let (end, sent) = walk(shared, start, cfg, progress, stop, &mut sender, report);
        shared.settle(sent, cfg.wait, stop);
        let mut before = shared.answers.load(Ordering::Relaxed);
        for round in 0..RETRANSMIT_ROUNDS {
            if stop.load(Ordering::Relaxed) || before >= sent {
                break;
            }
            let resent = retransmit(shared, start, end, progress, stop, &mut sender);
            if resent == 0 {
                break;
            }
            shared.settle(before + resent, cfg.wait, stop);
            let found = shared.answers.load(Ordering::Relaxed) - before;
            tracing::debug!(round, resent, found, "SYN retransmission");
            // Answers that needed a retransmission: the path loses packets.
            sender.lost(found);
            before += found;
            if found == 0 {
                break;
            }
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

/// The walk: every position from `start`, one probe each. Returns the
/// position it stopped at and the number of probes sent.
fn walk<F: Fn(SynHit)>(
    shared: &Shared<'_>,
    start: u128,
    cfg: &SynConfig,
    progress: &Progress,
    stop: &AtomicBool,
    sender: &mut Sender<'_>,
    report: &F,
) -> (u128, u64) {
    let plan = shared.plan;
    let len = plan.len();
    let began = Instant::now();
    // (time, position) marks: every position below was sent before that time.
    let mut marks: VecDeque<(Instant, u128)> = VecDeque::new();
    let mut last_mark = began;
    let mut next = start;
    let mut sent = 0u64;
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
        let outcome = sender.probe(SocketAddr::new(target.addr, target.port), stop, progress);
        progress.probed.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(()) => sent += 1,
            Err(reason) => {
                if shared.report_unanswered && shared.unsent(target.addr, target.port) {
                    // The probe never left: say why, as the connect engine would.
                    shared.report(report, target.addr, target.port, PortState::Filtered, reason);
                }
            }
        }
    }
    (next, sent)
}

/// One retransmission round: a probe again to every silent port of a host
/// that answered something. Returns how many were sent.
fn retransmit(
    shared: &Shared<'_>,
    start: u128,
    end: u128,
    progress: &Progress,
    stop: &AtomicBool,
    sender: &mut Sender<'_>,
) -> u64 {
    if shared.live.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
        return 0;
    }
    let mut resent = 0;
    for index in start..end {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if shared.tracker.is_some_and(|t| t.skip(index)) {
            continue;
        }
        let Some(t) = shared.plan.at(index) else { continue };
        if shared.is_live(t.addr)
            && !shared.answered(t.addr, t.port)
            && sender.probe(SocketAddr::new(t.addr, t.port), stop, progress).is_ok()
        {
            resent += 1;
        }
    }
    resent
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
        // Every answer is remembered (a silent port of a live host is
        // retransmitted to); closed ports are reported only when asked for.
        if shared.first_time(addr, port) {
            if let Some(rtt) = shared.times.answered(addr, port, Instant::now()) {
                shared.rtt.lock().unwrap_or_else(|p| p.into_inner()).observe(addr, rtt);
            }
            shared.live.lock().unwrap_or_else(|p| p.into_inner()).insert(addr);
            if open {
                progress.open.fetch_add(1, Ordering::Relaxed);
            }
            if open || shared.report_unanswered || shared.report_closed {
                shared.report(report, addr, port, state, if open { "syn-ack" } else { "reset" });
            }
        }
    }
    Ok(())
}
