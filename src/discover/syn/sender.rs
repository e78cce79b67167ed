//! The SYN engine's sending side: the pacing of the writes, the per-host
//! budget, the source address per destination, one `sendto` per copy.
//!
//! Apart from the engine's walk so that the same path sends the first probe
//! of a target and its retransmission, under the same rate and budget.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet::transport::TransportSender;

use super::packet::Prober;
use super::timing::SendTimes;
use crate::discover::connect::Progress;
use crate::discover::pacing::{self, Pacer, Rate, Window};

/// Writes SYNs: both families' raw senders, the pacer, the budget.
pub(super) struct Sender<'a> {
    pub tx4: &'a mut TransportSender,
    pub tx6: Option<&'a mut TransportSender>,
    pub prober: &'a Prober,
    pub times: &'a SendTimes,
    pub copies: u32,
    pacer: Pacer,
    budget: HostBudget,
    sources: SourceCache,
    /// Pacing: the time the next packet is due.
    due: Instant,
    window_start: Instant,
    window: Window,
}

impl<'a> Sender<'a> {
    pub fn new(
        tx4: &'a mut TransportSender,
        tx6: Option<&'a mut TransportSender>,
        prober: &'a Prober,
        times: &'a SendTimes,
        copies: u32,
        rate: Rate,
        per_host_rate: u32,
    ) -> Self {
        let now = Instant::now();
        Sender {
            tx4,
            tx6,
            prober,
            times,
            copies,
            pacer: Pacer::new(rate),
            budget: HostBudget::new(per_host_rate, now),
            sources: SourceCache::default(),
            due: now,
            window_start: now,
            window: Window::default(),
        }
    }

    /// Loss signals from outside the sender (answers that needed a retransmission).
    pub fn lost(&mut self, n: u64) {
        self.window.lost += n;
    }

    /// The rate in force (probes per second; `None`: unlimited).
    pub fn rate(&self) -> Option<f64> {
        self.pacer.rate()
    }

    /// Send `copies` SYNs to `dst`, paced. `Err` is the reason the probe
    /// never left (the target's verdict, as the connect engine would say).
    pub fn probe(&mut self, dst: SocketAddr, stop: &AtomicBool, progress: &Progress) -> Result<(), &'static str> {
        while let Some(wait) = self.budget.take(dst.ip(), self.copies, Instant::now()) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(wait.max(Duration::from_millis(1)));
        }
        let src = self.sources.source_for(dst.ip())?;
        let bytes = self.prober.syn(src, dst).ok_or("local-error")?;
        for _ in 0..self.copies {
            self.pace(progress);
            let tx = match dst.ip() {
                IpAddr::V4(_) => &mut *self.tx4,
                IpAddr::V6(_) => self.tx6.as_deref_mut().ok_or("no-ipv6")?,
            };
            let (result, busy) = send_one(tx, &bytes, dst.ip());
            self.window.sent += 1;
            self.window.lost += u64::from(busy);
            result?;
        }
        self.times.sent(dst.ip(), dst.port(), Instant::now());
        Ok(())
    }

    /// Wait for the next packet's turn at the pacer's rate; every
    /// [`pacing::WINDOW`], let the pacer adjust and publish the rate.
    fn pace(&mut self, progress: &Progress) {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= pacing::WINDOW {
            self.pacer.window(std::mem::take(&mut self.window));
            self.window_start = now;
            progress.set_rate(self.pacer.rate());
        }
        let Some(rate) = self.pacer.rate() else { return };
        // After a stall, do not burst to catch up by more than a window's worth.
        let floor = now.checked_sub(pacing::WINDOW).unwrap_or(now);
        self.due = self.due.max(floor) + Duration::from_secs_f64(1.0 / rate);
        if self.due > now + Duration::from_micros(500) {
            std::thread::sleep(self.due - now);
        }
    }
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

/// Write one SYN. A full socket buffer is waited out briefly (and is a loss
/// signal: the local path is the bottleneck); a refusal by the local
/// firewall or routing is the target's verdict.
fn send_one(tx: &mut TransportSender, bytes: &[u8], dst: IpAddr) -> (Result<(), &'static str>, bool) {
    use rustix::io::Errno;
    let mut busy = false;
    for attempt in 0..8u32 {
        let Some(packet) = pnet::packet::tcp::TcpPacket::new(bytes) else {
            return (Err("local-error"), busy);
        };
        match tx.send_to(packet, dst) {
            Ok(_) => return (Ok(()), busy),
            Err(e) => match e.raw_os_error().map(Errno::from_raw_os_error) {
                Some(Errno::NOBUFS) | Some(Errno::AGAIN) | Some(Errno::INTR) => {
                    busy = true;
                    std::thread::sleep(Duration::from_micros(200 << attempt.min(6)));
                }
                Some(Errno::HOSTUNREACH) => return (Err("host-unreachable"), busy),
                Some(Errno::NETUNREACH) => return (Err("net-unreachable"), busy),
                Some(Errno::ACCESS) | Some(Errno::PERM) => return (Err("admin-prohibited"), busy),
                _ => return (Err("local-error"), busy),
            },
        }
    }
    (Err("local-error"), busy)
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
        Err(e) if e.kind() == std::io::ErrorKind::NetworkUnreachable => Err("net-unreachable"),
        Err(e) if e.kind() == std::io::ErrorKind::HostUnreachable => Err("host-unreachable"),
        Err(_) => Err("no-route"),
    }
}
