//! How to learn everything a server accepts with as few handshakes as possible.
//!
//! Pure strategy, no sockets: which suites to offer next, what an answer
//! means, and how answers add up to a preference order. The probe layer
//! (`probe::hello`) only sends what this module asks for and reports what
//! came back, so the whole strategy is unit-tested without a server.
//!
//! Suite enumeration is elimination, as sslyze and testssl.sh do it: offer
//! a chunk, the server picks one, remove it, offer the rest again, until the
//! server refuses. That costs one handshake per accepted suite plus one per
//! chunk. Chunks keep every ClientHello small, because some middleboxes and
//! old stacks choke on large hellos.

use crate::model::record::PROTOCOL_NAMES;
use crate::wire::CipherSuite;
use crate::wire::suites::SuiteInfo;

/// The protocol versions we enumerate, as wire values (SSLv2 is separate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl Version {
    pub const ALL: [Version; 5] = [
        Version::Ssl3,
        Version::Tls10,
        Version::Tls11,
        Version::Tls12,
        Version::Tls13,
    ];

    pub fn wire(self) -> u16 {
        match self {
            Version::Ssl3 => 0x0300,
            Version::Tls10 => 0x0301,
            Version::Tls11 => 0x0302,
            Version::Tls12 => 0x0303,
            Version::Tls13 => 0x0304,
        }
    }

    pub fn from_wire(v: u16) -> Option<Version> {
        Version::ALL.into_iter().find(|x| x.wire() == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            Version::Ssl3 => PROTOCOL_NAMES[1],
            Version::Tls10 => PROTOCOL_NAMES[2],
            Version::Tls11 => PROTOCOL_NAMES[3],
            Version::Tls12 => PROTOCOL_NAMES[4],
            Version::Tls13 => PROTOCOL_NAMES[5],
        }
    }
}

/// Every suite worth offering at `version`: the whole registry for TLS 1.2
/// and older (servers ignore what they do not know), the TLS 1.3 suites for
/// TLS 1.3. Suites that exist only from TLS 1.2 on are left out of older
/// versions' hellos, which keeps them shorter.
pub fn candidates(version: Version) -> Vec<CipherSuite> {
    crate::wire::hello::offerable_suites(crate::wire::ProtocolVersion(version.wire()))
        .into_iter()
        .filter(|s| s.0 != 0x0000)
        .filter(|s| version >= Version::Tls12 || !s.info().is_some_and(only_tls12))
        .collect()
}

/// Suites defined only for TLS 1.2 (AEAD modes, SHA-256/384 MACs): a server
/// must not pick them in an older version, so offering them there only
/// makes hellos longer.
fn only_tls12(s: &SuiteInfo) -> bool {
    s.aead() || matches!(s.mac, "HMAC-SHA256" | "HMAC-SHA384")
}

/// Split `suites` into chunks that keep a hello under control.
pub fn chunks(suites: &[CipherSuite], max_per_hello: usize) -> Vec<Vec<CipherSuite>> {
    suites
        .chunks(max_per_hello.max(1))
        .map(<[CipherSuite]>::to_vec)
        .collect()
}

/// What one hello got back, reduced to what elimination needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The server chose this suite at the version we offered.
    Chose(CipherSuite),
    /// The server refused (alert, close) or answered at another version.
    Refused,
}

/// Elimination over one chunk: offer, remove the pick, offer again.
#[derive(Clone, Debug)]
pub struct Elimination {
    remaining: Vec<CipherSuite>,
    accepted: Vec<CipherSuite>,
    done: bool,
    /// Set when the server chose something we did not offer.
    pub lied: Option<CipherSuite>,
}

impl Elimination {
    pub fn new(offer: Vec<CipherSuite>) -> Self {
        let done = offer.is_empty();
        Elimination {
            remaining: offer,
            accepted: Vec::new(),
            done,
            lied: None,
        }
    }

    /// The suites to offer next, or `None` when this chunk is finished.
    pub fn next_offer(&self) -> Option<&[CipherSuite]> {
        (!self.done).then_some(self.remaining.as_slice())
    }

    pub fn answer(&mut self, pick: Pick) {
        match pick {
            Pick::Chose(s) => match self.remaining.iter().position(|&x| x == s) {
                Some(i) => {
                    self.remaining.remove(i);
                    self.accepted.push(s);
                    self.done = self.remaining.is_empty();
                }
                None => {
                    // A suite we did not offer: the server is broken or lying.
                    // Stop here rather than loop.
                    self.lied = Some(s);
                    self.done = true;
                }
            },
            Pick::Refused => self.done = true,
        }
    }

    /// Accepted suites in the order the server picked them.
    pub fn accepted(&self) -> &[CipherSuite] {
        &self.accepted
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// Server or client preference, from the server's picks on the same suites
/// offered in two opposite orders: the same pick both times is the server's
/// choice; a pick that moved with our order (or moved at all) is not.
pub fn preference(
    forward_pick: CipherSuite,
    reverse_pick: CipherSuite,
    offered: &[CipherSuite],
) -> Option<&'static str> {
    if offered.len() < 2 {
        return None;
    }
    Some(if forward_pick == reverse_pick {
        "server"
    } else {
        "client"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::cipher_entry;

    #[test]
    fn candidates_split_tls13_from_the_rest() {
        let t13 = candidates(Version::Tls13);
        // The five RFC 8446 suites plus SM4 (RFC 8998), AEGIS and the integrity-only ones (RFC 9150).
        assert_eq!(t13.len(), 11, "{t13:?}");
        assert!((0x1301..=0x1305).all(|c| t13.contains(&CipherSuite(c))));
        let t12 = candidates(Version::Tls12);
        assert!(t12.len() > 300, "{}", t12.len());
        assert!(!t12.contains(&CipherSuite(0x00ff)) && !t12.contains(&CipherSuite(0x5600)));
        assert!(!t12.contains(&CipherSuite(0x1301)));
        let t10 = candidates(Version::Tls10);
        assert!(t10.contains(&CipherSuite(0x002f)), "AES128-SHA is a TLS 1.0 suite");
        assert!(!t10.contains(&CipherSuite(0xc02f)), "GCM is TLS 1.2 only");
        assert!(t10.len() < t12.len());
    }

    #[test]
    fn elimination_finds_every_accepted_suite_in_pick_order() {
        let server = [CipherSuite(3), CipherSuite(1)];
        let mut e = Elimination::new((1..=5).map(CipherSuite).collect());
        let mut rounds = 0;
        while let Some(offer) = e.next_offer() {
            rounds += 1;
            let pick = server.iter().find(|s| offer.contains(s)).copied();
            e.answer(pick.map_or(Pick::Refused, Pick::Chose));
            assert!(rounds < 10);
        }
        assert_eq!(e.accepted(), &server);
        assert_eq!(rounds, 3, "one per accepted suite plus the refusal");
    }

    #[test]
    fn elimination_stops_on_a_suite_never_offered() {
        let mut e = Elimination::new(vec![CipherSuite(1), CipherSuite(2)]);
        e.answer(Pick::Chose(CipherSuite(9)));
        assert!(e.is_done());
        assert_eq!(e.lied, Some(CipherSuite(9)));
        assert!(e.accepted().is_empty());
    }

    #[test]
    fn preference_from_two_orders() {
        let offered = [CipherSuite(1), CipherSuite(2), CipherSuite(3)];
        assert_eq!(preference(CipherSuite(2), CipherSuite(2), &offered), Some("server"));
        assert_eq!(preference(CipherSuite(1), CipherSuite(3), &offered), Some("client"));
        assert_eq!(preference(CipherSuite(1), CipherSuite(1), &offered[..1]), None);
    }

    #[test]
    fn cipher_entries_carry_grading_inputs() {
        let e = cipher_entry(CipherSuite(0xc02f), Some("ECDH x25519"));
        assert_eq!(e.name, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(
            (e.kex_info.as_str(), e.forward_secrecy, e.bits, e.aead),
            ("ECDH x25519", true, 128, true)
        );
        assert_eq!(e.encryption, "AES-GCM");
        let e = cipher_entry(CipherSuite(0x000a), None);
        assert_eq!(
            (e.kex_info.as_str(), e.forward_secrecy, e.encryption.as_str()),
            ("RSA", false, "3DES-CBC")
        );
        let e = cipher_entry(CipherSuite(0x0017), None);
        assert!(e.export && e.anonymous);
        let e = cipher_entry(CipherSuite(0xfefe), None);
        assert_eq!(e.name, "UNKNOWN_0xFEFE");
    }
}
