//! SYN probes and their replies as bytes, without sockets.
//!
//! The raw sockets we use are layer 4: the kernel writes the IP header (and
//! routes, and picks the interface), we write the TCP header. The TCP
//! checksum covers a pseudo-header with both addresses, so building a probe
//! needs our source address even though we do not write it. Replies are read
//! from the TCP header alone; everything here is total over its input (a
//! short or malformed segment is `None`, never a panic).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use pnet::packet::tcp::{self, MutableTcpPacket, TcpFlags, TcpOption, TcpPacket};

use super::cookie::CookieKey;
use crate::discover::connect::PortState;

/// TCP header (20) plus one MSS option (4): what nmap and masscan send.
pub const SYN_LEN: usize = 24;

/// The SYN from `src` to `dst` with sequence number `seq`, checksummed.
/// `None` when the families differ.
pub fn build_syn(src: SocketAddr, dst: SocketAddr, seq: u32) -> Option<[u8; SYN_LEN]> {
    let mut buf = [0u8; SYN_LEN];
    let mut p = MutableTcpPacket::new(&mut buf)?;
    p.set_source(src.port());
    p.set_destination(dst.port());
    p.set_sequence(seq);
    p.set_acknowledgement(0);
    p.set_data_offset((SYN_LEN / 4) as u8);
    p.set_flags(TcpFlags::SYN);
    p.set_window(64_240);
    p.set_urgent_ptr(0);
    p.set_options(&[TcpOption::mss(1460)]);
    let checksum = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => tcp::ipv4_checksum(&p.to_immutable(), &s, &d),
        (IpAddr::V6(s), IpAddr::V6(d)) => tcp::ipv6_checksum(&p.to_immutable(), &s, &d),
        _ => return None,
    };
    p.set_checksum(checksum);
    Some(buf)
}

/// The sender and TCP segment of an IPv4 datagram as a raw IPv4 socket
/// delivers it (IP header included); `None` unless it is a whole, first
/// fragment of TCP.
pub fn tcp_in_ipv4(datagram: &[u8]) -> Option<(IpAddr, &[u8])> {
    use pnet::packet::ip::IpNextHeaderProtocols;
    use pnet::packet::ipv4::Ipv4Packet;
    let ip = Ipv4Packet::new(datagram)?;
    let header = usize::from(ip.get_header_length()) * 4;
    let total = usize::from(ip.get_total_length()).min(datagram.len());
    if ip.get_version() != 4
        || header < 20
        || header > total
        || ip.get_next_level_protocol() != IpNextHeaderProtocols::Tcp
        || ip.get_fragment_offset() != 0
    {
        return None;
    }
    Some((IpAddr::V4(ip.get_source()), &datagram[header..total]))
}

/// What came back, as far as a port scan cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// SYN+ACK: something listens.
    SynAck,
    /// RST (with ACK): the host is there, nothing listens.
    Rst,
}

/// The fields of a TCP segment a reply is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The port that answered (the segment's source).
    pub remote_port: u16,
    /// Our port it was sent to (the segment's destination).
    pub local_port: u16,
    pub ack: u32,
    pub kind: ReplyKind,
}

/// Read a TCP segment (no IP header). `None` for anything that cannot be an
/// answer to a SYN: too short, no ACK flag (our own SYNs seen on loopback, the
/// kernel's RST to a SYN-ACK), or neither SYN nor RST.
pub fn parse_reply(segment: &[u8]) -> Option<Reply> {
    if segment.len() < 20 || usize::from(segment[12] >> 4) * 4 < 20 {
        return None;
    }
    let p = TcpPacket::new(segment)?;
    let flags = p.get_flags();
    if flags & TcpFlags::ACK == 0 {
        return None;
    }
    let kind = if flags & TcpFlags::RST != 0 {
        ReplyKind::Rst
    } else if flags & TcpFlags::SYN != 0 {
        ReplyKind::SynAck
    } else {
        return None;
    };
    Some(Reply {
        remote_port: p.get_source(),
        local_port: p.get_destination(),
        ack: p.get_acknowledgement(),
        kind,
    })
}

/// The source ports of one scan and the cookie that signs its probes.
#[derive(Clone, Debug)]
pub struct Prober {
    pub key: CookieKey,
    pub ports: RangeInclusive<u16>,
}

impl Prober {
    /// Our port for probes to `remote:port`: spread over the range by the
    /// key, so retries reuse it and the receiver needs no table.
    pub fn local_port(&self, remote: IpAddr, port: u16) -> u16 {
        let (lo, hi) = (*self.ports.start(), *self.ports.end());
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        lo + (self.key.seq(remote, port, 0) % span) as u16
    }

    /// The probe for `dst`, sent from `src_ip`.
    pub fn syn(&self, src_ip: IpAddr, dst: SocketAddr) -> Option<[u8; SYN_LEN]> {
        let lp = self.local_port(dst.ip(), dst.port());
        let seq = self.key.seq(dst.ip(), dst.port(), lp);
        build_syn(SocketAddr::new(src_ip, lp), dst, seq)
    }

    /// Judge a segment from `remote`: the port and its state when it answers
    /// one of our probes, `None` for everything else (other traffic, forged or
    /// stale replies, our own SYNs on loopback).
    pub fn classify(&self, remote: IpAddr, segment: &[u8]) -> Option<(u16, PortState)> {
        let r = parse_reply(segment)?;
        if !self.ports.contains(&r.local_port) || r.local_port != self.local_port(remote, r.remote_port) {
            return None;
        }
        if !self.key.matches(remote, r.remote_port, r.local_port, r.ack) {
            return None;
        }
        let state = match r.kind {
            ReplyKind::SynAck => PortState::Open,
            ReplyKind::Rst => PortState::Closed,
        };
        Some((r.remote_port, state))
    }
}

/// One classic-BPF instruction: `(code, jt, jf, k)`, as `struct sock_filter`.
pub type BpfInsn = (u16, u8, u8, u32);

/// The kernel-side filter of a receiver: keep only TCP segments to one of
/// our source ports whose flags are an answer (RST, or SYN and ACK). On
/// loopback half of what a raw socket gets is our own SYNs; dropping them
/// (and every unrelated segment) before they are queued saves one
/// `recvfrom` and a copy per probe. `v4`: the socket delivers the IP header
/// first (IPv4 raw sockets do, IPv6 ones do not).
pub fn answer_filter(v4: bool, ports: &RangeInclusive<u16>) -> Vec<BpfInsn> {
    // Opcodes (linux/bpf_common.h, linux/filter.h).
    const LDX_B_MSH: u16 = 0x01 | 0x10 | 0xa0;
    const LD_H_IND: u16 = 0x08 | 0x40;
    const LD_B_IND: u16 = 0x10 | 0x40;
    const LD_H_ABS: u16 = 0x08 | 0x20;
    const LD_B_ABS: u16 = 0x10 | 0x20;
    const JGE: u16 = 0x05 | 0x30;
    const JGT: u16 = 0x05 | 0x20;
    const JSET: u16 = 0x05 | 0x40;
    const JEQ: u16 = 0x05 | 0x10;
    const AND: u16 = 0x04 | 0x50;
    const RET: u16 = 0x06;
    let (lo, hi) = (u32::from(*ports.start()), u32::from(*ports.end()));
    let mut prog = Vec::with_capacity(10);
    if v4 {
        // X = the IPv4 header's length (4 * IHL).
        prog.push((LDX_B_MSH, 0, 0, 0));
    }
    let (ld_h, ld_b) = if v4 { (LD_H_IND, LD_B_IND) } else { (LD_H_ABS, LD_B_ABS) };
    prog.extend([
        (ld_h, 0, 0, 2),    // A = destination port
        (JGE, 0, 6, lo),    // below our ports: drop
        (JGT, 5, 0, hi),    // above: drop
        (ld_b, 0, 0, 13),   // A = flags
        (JSET, 2, 0, 0x04), // RST: keep
        (AND, 0, 0, 0x12),
        (JEQ, 0, 1, 0x12), // SYN and ACK: keep, else drop
        (RET, 0, 0, u32::MAX),
        (RET, 0, 0, 0),
    ]);
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic-BPF program of the opcodes [`answer_filter`] uses: the
    /// bytes it keeps (0: dropped).
    fn run_bpf(prog: &[BpfInsn], pkt: &[u8]) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let byte = |i: usize| u32::from(*pkt.get(i).unwrap_or(&0));
        while let Some(&(code, jt, jf, k)) = prog.get(pc) {
            pc += 1;
            let k_us = k as usize;
            match code {
                0xb1 => x = 4 * (byte(k_us) & 0xf),
                0x48 => a = byte(x as usize + k_us) << 8 | byte(x as usize + k_us + 1),
                0x50 => a = byte(x as usize + k_us),
                0x28 => a = byte(k_us) << 8 | byte(k_us + 1),
                0x30 => a = byte(k_us),
                0x54 => a &= k,
                0x06 => return k,
                jump => {
                    let taken = match jump {
                        0x35 => a >= k,
                        0x25 => a > k,
                        0x45 => a & k != 0,
                        0x15 => a == k,
                        other => panic!("opcode {other:#x}"),
                    };
                    pc += usize::from(if taken { jt } else { jf });
                }
            }
        }
        panic!("fell off the program")
    }

    fn segment(dst_port: u16, flags: u8) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&443u16.to_be_bytes());
        t[2..4].copy_from_slice(&dst_port.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t
    }

    #[test]
    fn the_kernel_filter_keeps_answers_to_our_ports_only() {
        let ports = 61_000..=65_535;
        for v4 in [true, false] {
            let prog = answer_filter(v4, &ports);
            let wrap = |seg: Vec<u8>| {
                if v4 {
                    // An IPv4 header with options (IHL 6) in front.
                    let mut ip = vec![0x46u8; 1];
                    ip.extend([0u8; 23]);
                    ip.extend(seg);
                    ip
                } else {
                    seg
                }
            };
            let keep = |p: u16, f: u8| run_bpf(&prog, &wrap(segment(p, f))) > 0;
            assert!(keep(61_000, 0x12), "SYN-ACK to our first port");
            assert!(keep(65_535, 0x14), "RST-ACK to our last port");
            assert!(keep(62_000, 0x04), "bare RST");
            assert!(!keep(62_000, 0x02), "our own SYN, seen on loopback");
            assert!(!keep(62_000, 0x10), "a bare ACK");
            assert!(!keep(60_999, 0x12), "below our ports");
            assert!(!keep(443, 0x14), "someone else's traffic");
        }
    }

    fn prober() -> Prober {
        Prober {
            key: CookieKey::new(11, 22),
            ports: 61_000..=65_535,
        }
    }

    /// A reply segment as a server's kernel would build it.
    fn reply(from_port: u16, to_port: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
        let mut buf = vec![0u8; 20];
        let mut p = MutableTcpPacket::new(&mut buf).unwrap();
        p.set_source(from_port);
        p.set_destination(to_port);
        p.set_sequence(seq);
        p.set_acknowledgement(ack);
        p.set_data_offset(5);
        p.set_flags(flags);
        buf
    }

    #[test]
    fn builds_a_checksummed_syn_v4_and_v6() {
        let pr = prober();
        for (src, dst) in [("127.0.0.1", "127.0.0.5"), ("::1", "::1")] {
            let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
            let bytes = pr.syn(src, SocketAddr::new(dst, 443)).unwrap();
            let p = TcpPacket::new(&bytes).unwrap();
            assert_eq!(p.get_destination(), 443);
            assert!(pr.ports.contains(&p.get_source()));
            assert_eq!(p.get_flags(), TcpFlags::SYN);
            assert_eq!(p.get_data_offset(), 6);
            assert_eq!(p.get_sequence(), pr.key.seq(dst, 443, p.get_source()));
            let want = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => tcp::ipv4_checksum(&p, &s, &d),
                (IpAddr::V6(s), IpAddr::V6(d)) => tcp::ipv6_checksum(&p, &s, &d),
                _ => unreachable!(),
            };
            assert_eq!(p.get_checksum(), want);
            assert_ne!(want, 0);
        }
        let mixed = build_syn("127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap(), 0);
        assert!(mixed.is_none());
    }

    #[test]
    fn classifies_syn_ack_and_rst_answering_our_probe() {
        let pr = prober();
        let remote: IpAddr = "127.0.0.7".parse().unwrap();
        let lp = pr.local_port(remote, 8443);
        let ack = pr.key.seq(remote, 8443, lp).wrapping_add(1);
        let synack = reply(8443, lp, 999, ack, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(pr.classify(remote, &synack), Some((8443, PortState::Open)));
        let rst = reply(8443, lp, 0, ack, TcpFlags::RST | TcpFlags::ACK);
        assert_eq!(pr.classify(remote, &rst), Some((8443, PortState::Closed)));
    }

    #[test]
    fn ignores_everything_that_is_not_an_answer_to_us() {
        let pr = prober();
        let remote: IpAddr = "127.0.0.7".parse().unwrap();
        let lp = pr.local_port(remote, 8443);
        let seq = pr.key.seq(remote, 8443, lp);
        let synack = TcpFlags::SYN | TcpFlags::ACK;
        // Wrong acknowledgement: a stale reply, another scan, a forgery.
        assert_eq!(pr.classify(remote, &reply(8443, lp, 0, seq, synack)), None);
        // Right cookie, wrong sender: it answers a probe we never sent.
        assert_eq!(
            pr.classify("127.0.0.8".parse().unwrap(), &reply(8443, lp, 0, seq + 1, synack)),
            None
        );
        // A port outside our range (the kernel's own connections).
        assert_eq!(pr.classify(remote, &reply(8443, 40_000, 0, seq + 1, synack)), None);
        // Our own SYN, seen again on loopback; the kernel's RST to a SYN-ACK (no ACK flag).
        let own = pr.syn(remote, SocketAddr::new(remote, 8443)).unwrap();
        assert_eq!(pr.classify(remote, &own), None);
        assert_eq!(pr.classify(remote, &reply(8443, lp, seq + 1, 0, TcpFlags::RST)), None);
        // A bare ACK, and segments too short or with a bad header length.
        assert_eq!(pr.classify(remote, &reply(8443, lp, 0, seq + 1, TcpFlags::ACK)), None);
        let mut bad_offset = reply(8443, lp, 0, seq + 1, synack);
        bad_offset[12] = 0x40;
        assert_eq!(pr.classify(remote, &bad_offset), None);
        for n in 0..20 {
            assert_eq!(parse_reply(&vec![0xff; n]), None);
        }
    }

    #[test]
    fn finds_the_tcp_segment_in_an_ipv4_datagram() {
        use pnet::packet::ip::IpNextHeaderProtocols;
        use pnet::packet::ipv4::MutableIpv4Packet;
        let seg = reply(443, 61_000, 1, 2, TcpFlags::SYN | TcpFlags::ACK);
        let mut d = vec![0u8; 20 + seg.len()];
        {
            let mut ip = MutableIpv4Packet::new(&mut d).unwrap();
            ip.set_version(4);
            ip.set_header_length(5);
            ip.set_total_length((20 + seg.len()) as u16);
            ip.set_next_level_protocol(IpNextHeaderProtocols::Tcp);
            ip.set_source("127.0.0.9".parse().unwrap());
            ip.set_payload(&seg);
        }
        let (from, got) = tcp_in_ipv4(&d).unwrap();
        assert_eq!(from, "127.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(got, &seg[..]);
        let mut udp = d.clone();
        udp[9] = 17;
        assert_eq!(tcp_in_ipv4(&udp), None);
        let mut bad_ihl = d.clone();
        bad_ihl[0] = 0x4f;
        assert_eq!(tcp_in_ipv4(&bad_ihl), None);
        for n in 0..20 {
            assert_eq!(tcp_in_ipv4(&d[..n]), None);
        }
    }

    #[test]
    fn local_ports_stay_in_range_and_spread() {
        let pr = Prober {
            key: CookieKey::new(3, 4),
            ports: 61_000..=61_003,
        };
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let used: std::collections::HashSet<u16> = (1..200).map(|p| pr.local_port(a, p)).collect();
        assert_eq!(used, (61_000..=61_003).collect());
        let one = Prober {
            key: CookieKey::new(3, 4),
            ports: 65_535..=65_535,
        };
        assert_eq!(one.local_port(a, 443), 65_535);
    }
}
