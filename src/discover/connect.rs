//! Which ports are open: TCP connect scanning at kernel speed.
//!
//! The kernel does the handshake, so this needs no privileges and sees
//! exactly what an application would. The cost of a probe is its system
//! calls, so the engine is a plain event loop per core (mio over epoll), not
//! a task per probe: `socket`, `connect`, `epoll_ctl`, `getsockopt`, `close`
//! and nothing else for a closed port. Every probe in flight has the same
//! timeout, so deadlines expire in launch order and a FIFO is the whole
//! timer wheel. What is polite is configurable: a global rate (probes per
//! second), a cap on connections in flight that stays under `RLIMIT_NOFILE`,
//! and a deadline per connect, so dark address space costs one timeout per
//! probe, in parallel, not the kernel's two minutes.
//!
//! Open ports are handed over as connected sockets, so the TLS stage reuses
//! the connection instead of dialling again.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::discover::checkpoint::Tracker;
use crate::discover::pacing::{self, Pacer, Rate, Window};
use crate::discover::rtt::Rtt;
use crate::discover::targets::{ScanPlan, Target};

/// How a port answered a connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortState {
    Open,
    /// Refused (RST): a host is there, nothing listens.
    Closed,
    /// No answer, or an ICMP error: something drops or blocks the probe.
    Filtered,
}

/// The outcome of one connect probe. An open port carries its connected,
/// non-blocking socket.
#[derive(Debug)]
pub enum Connect {
    Open(std::net::TcpStream),
    /// The port accepted the connection and reset it before it could be
    /// used: open (something listens), with no socket to hand over.
    Reset {
        reason: &'static str,
    },
    Closed {
        reason: &'static str,
    },
    Filtered {
        reason: &'static str,
    },
}

impl Connect {
    pub fn state(&self) -> PortState {
        match self {
            Connect::Open(_) | Connect::Reset { .. } => PortState::Open,
            Connect::Closed { .. } => PortState::Closed,
            Connect::Filtered { .. } => PortState::Filtered,
        }
    }

    /// The nmap-style reason: `syn-ack`, `conn-refused`, `no-response`, …
    pub fn reason(&self) -> &'static str {
        match self {
            Connect::Open(_) => "syn-ack",
            Connect::Reset { reason } | Connect::Closed { reason } | Connect::Filtered { reason } => reason,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PortscanConfig {
    /// Probes per second across the whole scan: learned (`auto`, the
    /// default), at most a number, or unlimited ([`crate::discover::pacing`]).
    pub rate: Rate,
    /// Connections in flight at once (also bounded by the file-descriptor limit).
    pub max_in_flight: usize,
    /// The longest wait for one connect: the wait itself until a host has
    /// answered, then the ceiling of its learned timeout ([`crate::discover::rtt`]).
    pub connect_timeout: Duration,
    /// Extra attempts for a port that did not answer.
    pub retries: u8,
    /// Event-loop threads; 0 means one per available core.
    pub threads: usize,
}

impl Default for PortscanConfig {
    fn default() -> Self {
        PortscanConfig {
            rate: Rate::Auto,
            max_in_flight: 2_048,
            // Long enough to cover the kernel's first SYN retransmission (1 s).
            connect_timeout: Duration::from_millis(1_500),
            retries: 0,
            threads: 0,
        }
    }
}

/// Connections in flight that the process can afford: the soft
/// `RLIMIT_NOFILE` minus a reserve for everything else the process holds.
pub fn fd_budget() -> usize {
    const RESERVE: u64 = 128;
    let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    match lim.current {
        Some(n) if n > RESERVE * 2 => (n - RESERVE).min(1 << 20) as usize,
        Some(n) => (n / 2).max(1) as usize,
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

/// Counters a progress display or a metrics endpoint can read while a scan runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Positions this walk will visit (0 while unknown); set by whoever
    /// builds the plan, for displays (done / total, time left).
    pub total: AtomicU64,
    /// Open ports in the TLS and plaintext stages, and those done.
    pub examining: crate::discover::examining::Examining,
    /// Positions of the plan walked so far (including excluded/other-shard ones).
    pub walked: AtomicU64,
    /// Connect probes finished.
    pub probed: AtomicU64,
    pub open: AtomicU64,
    /// Host discovery ([`crate::discover::hosts`]): running now, and the
    /// addresses found up (as they are found) and down (at its end).
    pub discovering_hosts: AtomicBool,
    pub hosts_up: AtomicU64,
    pub hosts_down: AtomicU64,
    /// The pacing rate in force, probes per second ([`Progress::probe_rate`]).
    rate: AtomicU64,
}

/// [`Progress::rate`] when no rate limit is in force.
const UNLIMITED: u64 = u64::MAX;

impl Progress {
    /// Publish the rate the engine paces at (`None`: no limit).
    pub fn set_rate(&self, rate: Option<f64>) {
        let v = rate.map_or(UNLIMITED, |r| r.round().clamp(1.0, (UNLIMITED - 1) as f64) as u64);
        self.rate.store(v, Ordering::Relaxed);
    }

    /// The rate the discovery engine paces at now, probes per second:
    /// `Some(0)` before the engine started, `None` when it runs unlimited.
    /// For the progress bar, the `-v` log and metrics (`netsensor_probe_rate`).
    pub fn probe_rate(&self) -> Option<u64> {
        match self.rate.load(Ordering::Relaxed) {
            UNLIMITED => None,
            r => Some(r),
        }
    }
}

/// What the engine's system calls can say, sorted by what it means.
enum ErrorClass {
    Refused,
    /// The handshake completed and the peer reset: an open port.
    Reset,
    Unreachable(&'static str),
    /// Ephemeral ports or descriptors ran out: not an answer from the target.
    LocalResource,
}

fn classify_error(e: &io::Error) -> ErrorClass {
    use rustix::io::Errno;
    if e.kind() == io::ErrorKind::ConnectionRefused {
        return ErrorClass::Refused;
    }
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    ) {
        return ErrorClass::Reset;
    }
    match e.raw_os_error().map(Errno::from_raw_os_error) {
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

fn outcome_of(e: &io::Error) -> Option<Connect> {
    match classify_error(e) {
        ErrorClass::Refused => Some(Connect::Closed { reason: "conn-refused" }),
        ErrorClass::Reset => Some(Connect::Reset {
            reason: "syn-ack, then reset",
        }),
        ErrorClass::Unreachable(reason) => Some(Connect::Filtered { reason }),
        ErrorClass::LocalResource => None,
    }
}

/// Walk `plan` from position `start` and connect to every target under the
/// rate, concurrency and deadline limits, calling `report` with each outcome
/// (from the engine's threads, as soon as it is known). Blocks until the
/// walk is done or `stop` is set and the probes in flight have finished.
pub fn run_blocking<F>(
    plan: &ScanPlan,
    start: u128,
    cfg: &PortscanConfig,
    progress: &Progress,
    stop: &AtomicBool,
    report: F,
) -> io::Result<()>
where
    F: Fn(Target, Connect) + Sync,
{
    run_tracked(plan, start, cfg, progress, stop, None, |_, t, c| report(t, c))
}

/// [`run_blocking`] that also reports each outcome's position in the plan
/// and, with a `tracker` (checkpoint/resume), skips the positions it says
/// were done before and marks positions without a target (other shard,
/// excluded) done. Marking probed positions done is the caller's job: it
/// knows when their records are out.
pub fn run_tracked<F>(
    plan: &ScanPlan,
    start: u128,
    cfg: &PortscanConfig,
    progress: &Progress,
    stop: &AtomicBool,
    tracker: Option<&Tracker>,
    report: F,
) -> io::Result<()>
where
    F: Fn(u128, Target, Connect) + Sync,
{
    let threads = match cfg.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let threads = threads.clamp(1, 64);
    let in_flight = cfg.max_in_flight.clamp(1, fd_budget());
    let per_thread = (in_flight / threads).max(1);
    let report = &report;
    progress.set_rate(Pacer::new(cfg.rate).rate());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|k| {
                let lane = Lane {
                    plan,
                    next: start + k as u128,
                    step: threads as u128,
                    cap: per_thread,
                    pacer: Pacer::share(cfg.rate, threads as u32),
                    lanes: threads as u32,
                    publishes: k == 0,
                    rtt: Rtt::new(),
                    timeout: cfg.connect_timeout,
                    retries: cfg.retries,
                    tracker,
                };
                scope.spawn(move || lane.run(progress, stop, report))
            })
            .collect();
        let mut result = Ok(());
        for w in workers {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(io::Error::other("a scan thread panicked")),
            }
        }
        result
    })
}

/// One event loop walking every `step`-th position of the plan.
struct Lane<'a> {
    plan: &'a ScanPlan,
    next: u128,
    step: u128,
    cap: usize,
    pacer: Pacer,
    lanes: u32,
    /// This lane publishes the rate for all (lanes pace alike).
    publishes: bool,
    rtt: Rtt,
    /// The ceiling of every connect's deadline.
    timeout: Duration,
    retries: u8,
    tracker: Option<&'a Tracker>,
}

/// Retransmissions (new connects) a silent port of a host that answered
/// gets after its learned timeout, beyond `--retries`: the loss a short
/// learned timeout exposes is repaired here, not by the kernel's 1 s SYN
/// retransmission that the old fixed 1.5 s deadline waited for.
const LIVE_RETRIES: u8 = 2;

struct Slot {
    stream: mio::net::TcpStream,
    index: u128,
    target: Target,
    attempt: u8,
    generation: u32,
    launched: Instant,
    /// The deadline was learned (shorter than the ceiling).
    learned: bool,
}

impl Lane<'_> {
    /// The deadline of attempt `attempt` to `addr`: the ceiling until the
    /// host has answered, then its learned timeout, doubled per retry.
    fn deadline_for(&self, addr: std::net::IpAddr, attempt: u8) -> (Duration, bool) {
        if !self.rtt.knows(addr) {
            return (self.timeout, false);
        }
        let base = self.rtt.timeout_for(addr, self.timeout);
        let t = base.saturating_mul(1 << u32::from(attempt.saturating_sub(self.retries).min(8)));
        (t.min(self.timeout), t < self.timeout)
    }

    /// An answer (open, refused, reset) after `took`: a round-trip sample;
    /// one that needed a retransmission is a loss signal for the pacer.
    fn answered(&mut self, target: &Target, attempt: u8, took: Duration, outcome: &Connect, window: &mut Window) {
        let answer = matches!(
            outcome,
            Connect::Open(_) | Connect::Reset { .. } | Connect::Closed { reason: "conn-refused" }
        );
        if answer {
            self.rtt.observe(target.addr, took);
            if attempt > 0 {
                window.lost += 1;
            }
        }
    }
}

impl Lane<'_> {
    fn run<F: Fn(u128, Target, Connect)>(
        mut self,
        progress: &Progress,
        stop: &AtomicBool,
        report: &F,
    ) -> io::Result<()> {
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(1024);
        let mut slots: Vec<Option<Slot>> = Vec::new();
        let mut generations: Vec<u32> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut expiry: VecDeque<(Instant, usize, u32)> = VecDeque::new();
        let mut retry: VecDeque<(u128, Target, u8)> = VecDeque::new();
        let mut in_flight = 0usize;
        let mut next_send = Instant::now();
        let mut window_start = Instant::now();
        let mut window = Window::default();
        let mut spare = Spare::default();
        let len = self.plan.len();

        loop {
            // Launch while there is room, work and (when rate-limited) budget.
            let mut now = Instant::now();
            if now.duration_since(window_start) >= pacing::WINDOW {
                self.pacer.window(std::mem::take(&mut window));
                window_start = now;
                if self.publishes {
                    progress.set_rate(self.pacer.rate().map(|r| r * f64::from(self.lanes)));
                }
            }
            let interval = self.pacer.rate().map(|r| Duration::from_secs_f64(1.0 / r.max(0.001)));
            while in_flight < self.cap && !stop.load(Ordering::Relaxed) {
                if let Some(iv) = interval {
                    if now < next_send {
                        break;
                    }
                    // After a stall, do not burst to catch up by more than a window's worth.
                    let floor = now.checked_sub(pacing::WINDOW).unwrap_or(now);
                    next_send = next_send.max(floor) + iv;
                }
                let (index, target, attempt) = if let Some(r) = retry.pop_front() {
                    r
                } else if self.next < len {
                    let index = self.next;
                    self.next += self.step;
                    progress.walked.fetch_add(1, Ordering::Relaxed);
                    if self.tracker.is_some_and(|t| t.skip(index)) {
                        continue;
                    }
                    match self.plan.at(index) {
                        Some(t) => (index, t, 0),
                        None => {
                            if let Some(t) = self.tracker {
                                t.done(index);
                            }
                            continue;
                        }
                    }
                } else {
                    break;
                };
                let (timeout, learned) = self.deadline_for(target.addr, attempt);
                window.sent += 1;
                match launch(
                    &poll,
                    index,
                    &target,
                    &mut slots,
                    &mut generations,
                    &mut free,
                    attempt,
                    &mut spare,
                ) {
                    Ok(Launched::Pending(i, generation)) => {
                        in_flight += 1;
                        let launched = Instant::now();
                        if let Some(Some(slot)) = slots.get_mut(i) {
                            slot.launched = launched;
                            slot.learned = learned;
                        }
                        expiry.push_back((launched + timeout, i, generation));
                    }
                    Ok(Launched::Done(outcome, took)) => {
                        // Loopback answers inside connect(): no event loop round.
                        self.answered(&target, attempt, took, &outcome, &mut window);
                        finish(progress, report, index, target, outcome);
                    }
                    Err(e) => match outcome_of(&e) {
                        Some(outcome) => finish(progress, report, index, target, outcome),
                        None if attempt < 8 => {
                            // Out of local ports or descriptors: back off a little.
                            retry.push_back((index, target, attempt + 1));
                            std::thread::sleep(Duration::from_millis(2 << attempt.min(6)));
                        }
                        None => finish(
                            progress,
                            report,
                            index,
                            target,
                            Connect::Filtered { reason: "local-error" },
                        ),
                    },
                }
                now = Instant::now();
            }
            let walked_all = self.next >= len && retry.is_empty();
            if in_flight == 0 && (walked_all || stop.load(Ordering::Relaxed)) {
                return Ok(());
            }

            // Sleep until an answer, the next deadline, or the next send slot.
            let mut wait = Duration::from_millis(50);
            if let Some(&(deadline, _, _)) = expiry.front() {
                wait = wait.min(deadline.saturating_duration_since(now));
            }
            if interval.is_some() && in_flight < self.cap && !walked_all {
                wait = wait.min(next_send.saturating_duration_since(now));
            }
            match poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }

            for event in events.iter() {
                let i = event.token().0;
                let Some(slot) = slots.get_mut(i).and_then(Option::take) else {
                    continue;
                };
                let outcome = match slot.stream.take_error() {
                    Ok(Some(e)) | Err(e) => outcome_of(&e),
                    Ok(None) => match slot.stream.peer_addr() {
                        Ok(_) => Some(Connect::Open(std::net::TcpStream::from(slot.stream))),
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            // Spurious wake-up: still connecting.
                            slots[i] = Some(slot);
                            continue;
                        }
                        Err(e) => outcome_of(&e),
                    },
                };
                free.push(i);
                in_flight -= 1;
                let outcome = match outcome {
                    Some(Connect::Open(s)) => open_or_self(s, &slot.target),
                    Some(o) => o,
                    None => Connect::Filtered { reason: "local-error" },
                };
                self.answered(
                    &slot.target,
                    slot.attempt,
                    slot.launched.elapsed(),
                    &outcome,
                    &mut window,
                );
                finish(progress, report, slot.index, slot.target, outcome);
            }

            // Expire probes whose deadline passed (FIFO: same timeout for all).
            let now = Instant::now();
            while let Some(&(deadline, i, generation)) = expiry.front() {
                if deadline > now {
                    break;
                }
                expiry.pop_front();
                let live = slots
                    .get(i)
                    .and_then(Option::as_ref)
                    .is_some_and(|s| s.generation == generation);
                if !live {
                    continue;
                }
                let Some(slot) = slots[i].take() else { continue };
                free.push(i);
                in_flight -= 1;
                drop(slot.stream);
                let live_retry = slot.learned && slot.attempt < self.retries.saturating_add(LIVE_RETRIES);
                if slot.attempt < self.retries || live_retry {
                    retry.push_back((slot.index, slot.target, slot.attempt + 1));
                } else {
                    finish(
                        progress,
                        report,
                        slot.index,
                        slot.target,
                        Connect::Filtered { reason: "no-response" },
                    );
                }
            }
        }
    }
}

/// Loopback connects, answered inside `connect()`, on reused sockets.
///
/// On loopback the kernel runs the whole exchange (SYN, then SYN-ACK or
/// RST) inside the `connect()` call, so the answer can be read at once,
/// without an epoll round. And a socket whose connect was refused can be
/// connected again (Linux answers the first new `connect()` with
/// `ECONNABORTED`, resetting it, and the next one goes out): a closed port
/// then costs `connect`, `getsockopt` and the reset instead of `socket`,
/// `connect`, `epoll_ctl`, `epoll_wait`, `getsockopt` and `close`; the
/// kernel's socket creation and teardown were a third of the CPU of a
/// full-port scan (docs/benchmarks.md).
#[derive(Default)]
struct Spare {
    v4: Option<socket2::Socket>,
    v6: Option<socket2::Socket>,
}

enum Loopback {
    Answered(Connect),
    Pending(mio::net::TcpStream),
}

impl Spare {
    fn connect(&mut self, addr: SocketAddr, target: &Target) -> io::Result<Loopback> {
        use rustix::io::Errno;
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let slot = if addr.is_ipv4() { &mut self.v4 } else { &mut self.v6 };
        let socket = match slot.take() {
            Some(s) => s,
            None => Socket::new(
                Domain::for_address(addr),
                Type::STREAM.nonblocking(),
                Some(Protocol::TCP),
            )?,
        };
        let to = SockAddr::from(addr);
        let mut result = socket.connect(&to);
        if matches!(&result, Err(e) if e.raw_os_error() == Some(Errno::CONNABORTED.raw_os_error())) {
            // The reset after a refused connect: now the real one.
            result = socket.connect(&to);
        }
        match result {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(Errno::INPROGRESS.raw_os_error()) => {}
            Err(e) => {
                return match outcome_of(&e) {
                    Some(outcome) => Ok(Loopback::Answered(outcome)),
                    None => Err(e),
                };
            }
        }
        match socket.take_error() {
            Ok(Some(e)) | Err(e) => match outcome_of(&e) {
                Some(outcome) => {
                    if matches!(outcome, Connect::Closed { .. }) {
                        *slot = Some(socket);
                    }
                    Ok(Loopback::Answered(outcome))
                }
                None => Err(e),
            },
            Ok(None) => {
                let stream = std::net::TcpStream::from(socket);
                if stream.peer_addr().is_ok() {
                    Ok(Loopback::Answered(open_or_self(stream, target)))
                } else {
                    Ok(Loopback::Pending(mio::net::TcpStream::from_std(stream)))
                }
            }
        }
    }
}

/// What starting a connect led to.
enum Launched {
    /// In flight: its slot and generation.
    Pending(usize, u32),
    /// Answered at once (loopback: the kernel handles the SYN inside
    /// `connect()`), after this long.
    Done(Connect, Duration),
}

// The connect loop's state, borrowed field by field so the caller keeps the rest.
#[allow(clippy::too_many_arguments)]
fn launch(
    poll: &Poll,
    index: u128,
    target: &Target,
    slots: &mut Vec<Option<Slot>>,
    generations: &mut Vec<u32>,
    free: &mut Vec<usize>,
    attempt: u8,
    spare: &mut Spare,
) -> io::Result<Launched> {
    let addr = SocketAddr::new(target.addr, target.port);
    let started = Instant::now();
    let mut stream = if addr.ip().is_loopback() {
        match spare.connect(addr, target)? {
            Loopback::Answered(outcome) => return Ok(Launched::Done(outcome, started.elapsed())),
            Loopback::Pending(s) => s,
        }
    } else {
        mio::net::TcpStream::connect(addr)?
    };
    let i = match free.pop() {
        Some(i) => i,
        None => {
            slots.push(None);
            generations.push(0);
            slots.len() - 1
        }
    };
    if let Err(e) = poll.registry().register(&mut stream, Token(i), Interest::WRITABLE) {
        free.push(i);
        return Err(e);
    }
    generations[i] = generations[i].wrapping_add(1);
    let generation = generations[i];
    slots[i] = Some(Slot {
        stream,
        index,
        target: target.clone(),
        attempt,
        generation,
        launched: started,
        learned: false,
    });
    Ok(Launched::Pending(i, generation))
}

/// On loopback a connect to a port in the ephemeral range can pick that same
/// port as its source and connect to itself: that is not an open port.
fn open_or_self(s: std::net::TcpStream, target: &Target) -> Connect {
    if s.local_addr().ok() == Some(SocketAddr::new(target.addr, target.port)) {
        return Connect::Closed { reason: "self-connect" };
    }
    Connect::Open(s)
}

fn finish<F: Fn(u128, Target, Connect)>(
    progress: &Progress,
    report: &F,
    index: u128,
    target: Target,
    outcome: Connect,
) {
    progress.probed.fetch_add(1, Ordering::Relaxed);
    if outcome.state() == PortState::Open {
        progress.open.fetch_add(1, Ordering::Relaxed);
    }
    report(index, target, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::targets::{PortSet, TargetSet, TargetSpec};
    use std::sync::Mutex;

    fn plan(ports: &str) -> ScanPlan {
        let specs: Vec<TargetSpec> = vec!["127.0.0.1".parse().unwrap()];
        let set = TargetSet::new(&specs, &[], |_| Err("no dns".into())).unwrap();
        ScanPlan::new(set, ports.parse::<PortSet>().unwrap(), 3).unwrap()
    }

    fn scan(plan: &ScanPlan, cfg: &PortscanConfig) -> Vec<(u16, PortState, &'static str)> {
        let seen = Mutex::new(Vec::new());
        let progress = Progress::default();
        run_blocking(plan, 0, cfg, &progress, &AtomicBool::new(false), |t, c| {
            seen.lock().unwrap().push((t.port, c.state(), c.reason()));
        })
        .unwrap();
        let mut v = seen.into_inner().unwrap();
        v.sort();
        assert_eq!(progress.probed.load(Ordering::Relaxed) as usize, v.len());
        v
    }

    #[test]
    fn tells_open_from_closed_and_reports_each_port_once() {
        let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let op = open.local_addr().unwrap().port();
        let p = plan(&format!("{op},{closed}"));
        let got = scan(
            &p,
            &PortscanConfig {
                rate: Rate::Unlimited,
                ..PortscanConfig::default()
            },
        );
        let mut want = vec![
            (op, PortState::Open, "syn-ack"),
            (closed, PortState::Closed, "conn-refused"),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn a_wide_scan_reports_every_port_exactly_once() {
        let listeners: Vec<_> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let p = plan("20000-22000");
        let cfg = PortscanConfig {
            rate: Rate::Unlimited,
            max_in_flight: 64,
            threads: 2,
            ..PortscanConfig::default()
        };
        let got = scan(&p, &cfg);
        assert_eq!(got.len(), 2001);
        let ports: std::collections::HashSet<u16> = got.iter().map(|g| g.0).collect();
        assert_eq!(ports.len(), 2001);
        drop(listeners);
    }

    #[test]
    fn the_rate_limit_holds() {
        let p = plan("30001-30040");
        let cfg = PortscanConfig {
            rate: Rate::Max(200),
            threads: 2,
            ..PortscanConfig::default()
        };
        let t0 = Instant::now();
        assert_eq!(scan(&p, &cfg).len(), 40);
        // 40 probes at 200/s cannot finish in much less than 0.2 s.
        assert!(t0.elapsed() >= Duration::from_millis(150), "{:?}", t0.elapsed());
    }

    #[test]
    fn stop_ends_the_walk_early() {
        let p = plan("1-65535");
        let stop = AtomicBool::new(true);
        let progress = Progress::default();
        run_blocking(&p, 0, &PortscanConfig::default(), &progress, &stop, |_, _| {}).unwrap();
        assert_eq!(progress.probed.load(Ordering::Relaxed), 0);
    }
}
