//! ICMP echo as a liveness probe (IPv4, raw sockets): one echo request per
//! address, replies matched by identifier and a keyed sequence number.
//!
//! Why beside the TCP probes: a host that answers nothing on the liveness
//! ports (a workstation with every port filtered) still often answers ping,
//! and one echo costs one packet. IPv6 addresses get the TCP probes only.
//! The building and matching of packets is pure; [`open`] and the two loops
//! are the I/O.

use std::io;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pnet::packet::icmp::echo_request::MutableEchoRequestPacket;
use pnet::packet::icmp::{IcmpPacket, IcmpTypes, checksum};
use pnet::packet::ip::IpNextHeaderProtocols;
use pnet::transport::{self, TransportChannelType, TransportProtocol, TransportSender};

use crate::discover::pacing::{Pacer, Rate};
use crate::discover::targets::TargetSet;

/// The per-scan identity of our echoes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoKey {
    pub ident: u16,
    pub key: u64,
}

impl EchoKey {
    /// The sequence number of the echo to `addr`: others' echo replies (and
    /// a reply from an address we did not ping) do not match.
    pub fn sequence(&self, addr: Ipv4Addr) -> u16 {
        let x = (u64::from(u32::from(addr)) ^ self.key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (x >> 48) as u16
    }

    /// The echo request to `addr` (ICMP header and 8 bytes of payload).
    pub fn request(&self, addr: Ipv4Addr) -> Vec<u8> {
        let mut buf = vec![0u8; 16];
        if let Some(mut p) = MutableEchoRequestPacket::new(&mut buf) {
            p.set_icmp_type(IcmpTypes::EchoRequest);
            p.set_identifier(self.ident);
            p.set_sequence_number(self.sequence(addr));
            p.set_payload(b"netsensr");
        }
        if let Some(icmp) = IcmpPacket::new(&buf) {
            let sum = checksum(&icmp);
            buf[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        buf
    }

    /// The address whose echo this IPv4 datagram answers, if it is a reply
    /// to one of ours.
    pub fn reply_from(&self, datagram: &[u8]) -> Option<Ipv4Addr> {
        if datagram.len() < 20 || datagram[0] >> 4 != 4 || datagram[9] != 1 {
            return None;
        }
        let header = usize::from(datagram[0] & 0x0f) * 4;
        let icmp = datagram.get(header..header + 8)?;
        let src = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
        let (kind, ident, seq) = (
            icmp[0],
            u16::from_be_bytes([icmp[4], icmp[5]]),
            u16::from_be_bytes([icmp[6], icmp[7]]),
        );
        (kind == IcmpTypes::EchoReply.0 && ident == self.ident && seq == self.sequence(src)).then_some(src)
    }
}

/// The raw ICMP sockets: pnet's sender, and a receiver opened with rustix
/// for its large buffer (as the SYN engine's).
pub struct Pinger {
    pub tx: TransportSender,
    pub rx: UdpSocket,
}

pub fn open() -> io::Result<Pinger> {
    use rustix::net::{AddressFamily, SocketType, ipproto, sockopt};
    let (tx, _) = transport::transport_channel(
        256,
        TransportChannelType::Layer4(TransportProtocol::Ipv4(IpNextHeaderProtocols::Icmp)),
    )?;
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP))?;
    const BUFFER: usize = 8 << 20;
    if sockopt::set_socket_recv_buffer_size_force(&fd, BUFFER).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(&fd, BUFFER);
    }
    let rx = UdpSocket::from(socket2::Socket::from(fd));
    rx.set_read_timeout(Some(Duration::from_millis(20)))?;
    Ok(Pinger { tx, rx })
}

/// Send one echo to every IPv4 address of `targets` that is not excluded,
/// paced at `rate`'s starting rate. Returns the number sent.
pub fn send_all(tx: &mut TransportSender, targets: &TargetSet, key: EchoKey, rate: Rate, stop: &AtomicBool) -> u64 {
    let interval = Pacer::new(rate)
        .rate()
        .map(|r| Duration::from_secs_f64(1.0 / r.max(1.0)));
    let mut due = Instant::now();
    let mut sent = 0;
    for i in 0..targets.len() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Some((IpAddr::V4(addr), _)) = targets.get(i) else {
            continue;
        };
        if targets.is_excluded(IpAddr::V4(addr)) {
            continue;
        }
        if let Some(iv) = interval {
            let now = Instant::now();
            due = due.max(now.checked_sub(Duration::from_millis(20)).unwrap_or(now)) + iv;
            if due > now + Duration::from_micros(500) {
                std::thread::sleep(due - now);
            }
        }
        let bytes = key.request(addr);
        for attempt in 0..6u32 {
            let Some(packet) = IcmpPacket::new(&bytes) else { break };
            match tx.send_to(packet, IpAddr::V4(addr)) {
                Ok(_) => {
                    sent += 1;
                    break;
                }
                Err(e) if matches!(e.raw_os_error(), Some(105) | Some(11)) => {
                    // ENOBUFS / EAGAIN: the local queue is full, wait a little.
                    std::thread::sleep(Duration::from_micros(200 << attempt));
                }
                Err(_) => break,
            }
        }
    }
    sent
}

/// Read echo replies until `done` is set, calling `alive` with each
/// address that answered one of ours.
pub fn receive(rx: &UdpSocket, key: EchoKey, done: &AtomicBool, alive: impl Fn(IpAddr)) {
    let mut buf = vec![0u8; 2048];
    while !done.load(Ordering::Relaxed) {
        match rx.recv_from(&mut buf) {
            Ok((n, _)) => {
                if let Some(a) = key.reply_from(&buf[..n]) {
                    alive(IpAddr::V4(a));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::debug!("ICMP receiver: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_to(request: &[u8], from: Ipv4Addr, kind: u8) -> Vec<u8> {
        let mut d = vec![0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0];
        d.extend(from.octets());
        d.extend([127, 0, 0, 1]);
        let mut icmp = request.to_vec();
        icmp[0] = kind;
        d.extend(icmp);
        d
    }

    #[test]
    fn a_reply_matches_its_echo_and_nothing_else() {
        let key = EchoKey { ident: 0x4242, key: 7 };
        let a: Ipv4Addr = "127.0.0.9".parse().unwrap();
        let req = key.request(a);
        assert_eq!(req[0], 8, "echo request");
        assert_eq!(u16::from_be_bytes([req[4], req[5]]), 0x4242);
        let sum = checksum(&IcmpPacket::new(&req).unwrap());
        assert_eq!(u16::from_be_bytes([req[2], req[3]]), sum, "checksummed");
        assert_eq!(key.reply_from(&reply_to(&req, a, 0)), Some(a));
        // Our own request seen on loopback, a reply from another address,
        // another scan's identifier: not answers.
        assert_eq!(key.reply_from(&reply_to(&req, a, 8)), None);
        assert_eq!(key.reply_from(&reply_to(&req, "127.0.0.10".parse().unwrap(), 0)), None);
        let other = EchoKey { ident: 1, key: 7 };
        assert_eq!(other.reply_from(&reply_to(&req, a, 0)), None);
        assert_eq!(key.reply_from(&[0x45, 0, 0]), None);
    }
}
