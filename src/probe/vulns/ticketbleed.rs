//! Ticketbleed (CVE-2016-9244): F5 BIG-IP echoing 32 bytes of session id.
//!
//! A client resuming with a session ticket may send a session id of any
//! length up to 32; a server that accepts the ticket echoes that id in its
//! ServerHello (RFC 5077 §3.4). Affected BIG-IP versions always echoed 32
//! bytes, so a 1-byte id came back followed by 31 bytes of their memory.
//!
//! The check is Filippo Valsorda's published one (filippo.io/Ticketbleed):
//! obtain a genuine ticket, then resume it with a 1-byte session id and look
//! at the length of the id the ServerHello carries. The leak is on the
//! resumption path only (a ticket the server cannot decrypt gets a full
//! handshake and a fresh id), so the ticket must be one the server issued:
//!
//! 1. A real TLS 1.2 handshake with rustls (observation-only verifier); the
//!    server's NewSessionTicket travels in the clear before its
//!    ChangeCipherSpec, so a tap on the socket reads it from the bytes.
//!    No NewSessionTicket after a full handshake: the server issues no
//!    tickets — not vulnerable.
//! 2. A hand-built TLS 1.2 ClientHello with that ticket, the same suite and
//!    SNI, and a random 1-byte session id. Whether the server resumed is read
//!    from what follows its ServerHello (ChangeCipherSpec or
//!    NewSessionTicket: resumed; Certificate: full handshake), so a fresh
//!    random id that happens to start with our byte is not mistaken for an
//!    echo.
//!
//! - Resumed, and the id is longer than one byte and starts with ours:
//!   vulnerable (the extra bytes are counted, not kept).
//! - Resumed, and the id is our byte alone: not vulnerable.
//! - Not resumed: inconclusive — the echo path was not exercised.
//!
//! rustls completes TLS 1.2 only with ECDHE and AEAD suites; for servers
//! without one, a made-up ticket is tried instead, which can only show a
//! server that echoes without resuming — otherwise inconclusive.

use std::sync::{Arc, Mutex};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::probe::danger::AcceptAnyChain;
use crate::probe::enumerate::Enumeration;
use crate::probe::tls::Tap;
use crate::wire::codec::{LengthPrefix, read_bytes};
use crate::wire::{
    CipherSuite, ClientExtension, Codec, Deframer, Event, HandshakeType, ProtocolVersion, Reader, ServerHello,
};

use super::conversation::{Conversation, Reply};
use super::{Target, Verdict, VulnConfig, legacy_offer, no_legacy_reason, random};

/// The most server bytes the tap keeps: a full TLS 1.2 flight with a long
/// chain fits; a server sending more only loses its ticket.
const TAP_CAP: usize = 256 * 1024;

/// What the full handshake gave.
enum Issued {
    /// A ticket and the suite of the session it resumes.
    Ticket(Vec<u8>, CipherSuite),
    /// The handshake completed without a NewSessionTicket.
    NoTicket(CipherSuite),
    /// rustls could not complete a handshake.
    Failed(String),
}

pub(super) async fn check(t: &Target, e: &Enumeration, cfg: &VulnConfig) -> Verdict {
    // Session tickets are an extension: TLS 1.0–1.2 only.
    let Some((fallback_version, fallback_suites)) = legacy_offer(e, false, |_| true) else {
        return Verdict::untested(no_legacy_reason(e), 0);
    };
    let id = random()[0];
    match full_handshake(t, cfg).await {
        Issued::Ticket(ticket, suite) => {
            let hello = t
                .builder(ProtocolVersion::TLSv1_2)
                .cipher_suites([suite])
                .extension(ClientExtension::SessionTicket(ticket.clone()))
                .session_id(&[id]);
            let what = format!(
                "a genuine {}-byte session ticket ({}) offered with the 1-byte session id {id:#04x}",
                ticket.len(),
                suite.name()
            );
            judge(t, cfg, hello.build(), what, id, true).await
        }
        Issued::NoTicket(suite) => Verdict::safe(
            format!(
                "a full TLS 1.2 handshake ({}) ended without a NewSessionTicket: the server issues no session \
                 tickets, and the flaw is in ticket resumption",
                suite.name()
            ),
            1,
        ),
        Issued::Failed(why) => {
            let ticket: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(29).wrapping_add(3)).collect();
            let hello = t
                .builder(fallback_version)
                .cipher_suites(fallback_suites)
                .extension(ClientExtension::SessionTicket(ticket))
                .session_id(&[id]);
            let what = format!(
                "no genuine ticket could be obtained ({why}); a made-up 32-byte ticket offered with the 1-byte \
                 session id {id:#04x}"
            );
            let mut v = judge(t, cfg, hello.build(), what, id, false).await;
            v.connections += 1;
            v
        }
    }
}

/// Sends the resumption hello and judges the session id that comes back.
async fn judge(
    t: &Target,
    cfg: &VulnConfig,
    hello: Result<Vec<u8>, crate::wire::WireError>,
    what: String,
    id: u8,
    genuine: bool,
) -> Verdict {
    let base = if genuine { 1 } else { 0 };
    let hello = match hello {
        Ok(h) => h,
        Err(err) => return Verdict::untested(format!("cannot build the ClientHello: {err}"), base),
    };
    let deadline = Instant::now() + cfg.deadline;
    let mut conv = match Conversation::open(t, deadline).await {
        Ok(c) => c,
        Err(why) => return Verdict::untested(why, base),
    };
    let n = base + 1;
    if let Err(why) = conv.send(&hello).await {
        return Verdict::untested(format!("{what}: {why}"), n);
    }
    let sh = match conv.next(deadline).await {
        Reply::Event(Event::Handshake(m)) if m.typ == HandshakeType::ServerHello => {
            match ServerHello::read(&mut Reader::new(&m.body)) {
                Ok(sh) => sh,
                Err(err) => return Verdict::untested(format!("{what}: unreadable ServerHello: {err}"), n),
            }
        }
        other => return Verdict::untested(format!("{what} was answered with {}", other.describe()), n),
    };
    let sid = sh.session_id.clone();
    let resumed = match conv.next(deadline).await {
        Reply::Event(Event::ChangeCipherSpec) => Some(true),
        Reply::Event(Event::Handshake(m)) if m.typ == HandshakeType::NewSessionTicket => Some(true),
        Reply::Event(Event::Handshake(m)) if m.typ == HandshakeType::Certificate => Some(false),
        Reply::Event(Event::Handshake(m)) if m.typ == HandshakeType::ServerKeyExchange => Some(false),
        _ => None,
    };
    let echo = format!("a {}-byte session id", sid.len());
    let prefixed = sid.first() == Some(&id);
    match resumed {
        Some(true) if sid.len() > 1 && prefixed => Verdict::vulnerable(
            format!(
                "{what} was resumed with {echo} starting with ours: {} bytes of server memory \
                 (CVE-2016-9244)",
                sid.len() - 1
            ),
            n,
        ),
        Some(true) if sid == [id] => Verdict::safe(
            format!("{what} was resumed, and the session id echoed is exactly ours"),
            n,
        ),
        Some(true) => Verdict::safe(format!("{what} was resumed with {echo} that does not extend ours"), n),
        Some(false) => Verdict::inconclusive(
            format!("{what} was not resumed (a full handshake, {echo}), so the echo was not exercised"),
            n,
        ),
        None => Verdict::inconclusive(
            format!("{what} drew a ServerHello with {echo} and no sign of whether the session was resumed"),
            n,
        ),
    }
}

/// A full TLS 1.2 handshake with rustls; the NewSessionTicket is read off
/// the wire by a tap on the socket.
async fn full_handshake(t: &Target, cfg: &VulnConfig) -> Issued {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AcceptAnyChain::new(&provider));
    let config = match ClientConfig::builder_with_provider(provider).with_protocol_versions(&[&rustls::version::TLS12])
    {
        // Resumption stays on (the default): rustls asks for a ticket.
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
        Err(e) => return Issued::Failed(format!("rustls: {e}")),
    };
    let name = match t.sni.as_deref().and_then(|s| ServerName::try_from(s.to_string()).ok()) {
        Some(n) => n,
        None => ServerName::IpAddress(t.addr.ip().into()),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let work = async {
        let stream = TcpStream::connect(t.addr).await?;
        let tap = Tap::new(stream, seen.clone(), TAP_CAP);
        TlsConnector::from(Arc::new(config))
            .connect(name, tap)
            .await
            .map(|_| ())
    };
    match tokio::time::timeout(cfg.deadline, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Issued::Failed(format!("rustls TLS 1.2 handshake: {e}")),
        Err(_) => return Issued::Failed("rustls TLS 1.2 handshake: timed out".into()),
    }
    let bytes = seen.lock().map(|v| v.clone()).unwrap_or_default();
    read_ticket(&bytes)
}

/// The suite and the ticket from the server's clear bytes of a TLS 1.2
/// handshake (everything before its ChangeCipherSpec).
fn read_ticket(bytes: &[u8]) -> Issued {
    let mut d = Deframer::new();
    if let Err(e) = d.feed(bytes) {
        return Issued::Failed(format!("the server's handshake bytes: {e}"));
    }
    let mut suite = None;
    loop {
        match d.next_event() {
            Ok(Some(Event::Handshake(m))) if m.typ == HandshakeType::ServerHello => {
                suite = ServerHello::read(&mut Reader::new(&m.body))
                    .ok()
                    .map(|sh| sh.cipher_suite);
            }
            Ok(Some(Event::Handshake(m))) if m.typ == HandshakeType::NewSessionTicket => {
                let mut r = Reader::new(&m.body);
                let ticket = r
                    .u32()
                    .and_then(|_| read_bytes(&mut r, LengthPrefix::U16, "session ticket"));
                return match (ticket, suite) {
                    (Ok(t), Some(s)) if !t.is_empty() => Issued::Ticket(t.to_vec(), s),
                    (Ok(_), Some(s)) => Issued::NoTicket(s),
                    (Err(e), _) => Issued::Failed(format!("unreadable NewSessionTicket: {e}")),
                    (_, None) => Issued::Failed("NewSessionTicket without a ServerHello".into()),
                };
            }
            Ok(Some(Event::Handshake(_))) => continue,
            Ok(Some(_)) | Ok(None) => break,
            Err(e) => return Issued::Failed(format!("the server's handshake bytes: {e}")),
        }
    }
    match suite {
        Some(s) => Issued::NoTicket(s),
        None => Issued::Failed("no ServerHello in the server's bytes".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::HandshakeMessage;
    use crate::wire::record::encode_records;

    fn server_hello(suite: u16) -> Vec<u8> {
        let sh = ServerHello {
            legacy_version: ProtocolVersion::TLSv1_2,
            random: crate::wire::Random([1; 32]),
            session_id: Vec::new(),
            cipher_suite: CipherSuite(suite),
            compression: crate::wire::Compression::Null,
            extensions: Vec::new(),
        };
        HandshakeMessage {
            typ: HandshakeType::ServerHello,
            body: sh.to_bytes(),
        }
        .to_records(ProtocolVersion::TLSv1_2)
    }

    fn ticket_msg(ticket: &[u8]) -> Vec<u8> {
        let mut body = 7200u32.to_be_bytes().to_vec();
        body.extend_from_slice(&(ticket.len() as u16).to_be_bytes());
        body.extend_from_slice(ticket);
        HandshakeMessage {
            typ: HandshakeType::NewSessionTicket,
            body,
        }
        .to_records(ProtocolVersion::TLSv1_2)
    }

    #[test]
    fn reads_the_ticket_before_the_change_cipher_spec() {
        let mut wire = server_hello(0xc02f);
        wire.extend(ticket_msg(&[5; 40]));
        encode_records(
            crate::wire::ContentType::ChangeCipherSpec,
            ProtocolVersion::TLSv1_2,
            &[1],
            &mut wire,
        );
        wire.extend([22, 3, 3, 0, 4, 1, 2, 3, 4]);
        match read_ticket(&wire) {
            Issued::Ticket(t, s) => {
                assert_eq!(t, vec![5; 40]);
                assert_eq!(s, CipherSuite(0xc02f));
            }
            _ => panic!("no ticket"),
        }
    }

    #[test]
    fn no_ticket_and_empty_ticket_mean_none_issued() {
        let mut wire = server_hello(0xc02f);
        encode_records(
            crate::wire::ContentType::ChangeCipherSpec,
            ProtocolVersion::TLSv1_2,
            &[1],
            &mut wire,
        );
        assert!(matches!(read_ticket(&wire), Issued::NoTicket(CipherSuite(0xc02f))));
        let mut wire = server_hello(0xc02f);
        wire.extend(ticket_msg(&[]));
        assert!(matches!(read_ticket(&wire), Issued::NoTicket(_)));
        assert!(matches!(read_ticket(b"garbage"), Issued::Failed(_)));
        assert!(matches!(read_ticket(&[]), Issued::Failed(_)));
    }
}
