//! Purpose-built vulnerable TLS responders for the vulnerability checks.
//!
//! Debian's OpenSSL 3 is patched against every flaw the active checks look
//! for, so each flaw is reproduced here by a small responder built on
//! `wire`'s encoders: it reads a ClientHello, answers a static-RSA flight
//! (ServerHello, Certificate, ServerHelloDone, with a real test certificate)
//! and then misbehaves exactly as the vulnerable implementation did. None of
//! them completes a handshake; none holds anything secret.
//!
//! Every responder binds 127.0.0.1 on port 0, serves at most
//! [`MAX_CONNECTIONS`] connections within [`LIFETIME`], drops each
//! connection after [`CONNECTION_LIFETIME`], and is aborted when its handle
//! is dropped: it stops by itself even if a test forgets it.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use netsensor::wire::record::{Record, encode_records};
use netsensor::wire::{
    Alert, AlertDescription, AlertLevel, CertificateChain, CipherSuite, ClientExtension, ClientHello, Codec,
    Compression, ContentType, Deframer, Event, ExtensionType, HandshakeMessage, HandshakeType, HeartbeatMode,
    ProtocolVersion, Random, Reader, ServerExtension, ServerHello,
};
use num_bigint::BigUint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};

pub const MAX_CONNECTIONS: usize = 32;
pub const LIFETIME: Duration = Duration::from_secs(90);
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(15);

/// TLS_RSA_WITH_AES_128_CBC_SHA: static RSA, so the flight needs no
/// ServerKeyExchange and the ROBOT responder can decrypt the key exchange.
pub const SUITE: CipherSuite = CipherSuite(0x002f);

/// A running responder; aborted on drop.
pub struct Responder {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve `handler` on a fresh 127.0.0.1 port, bounded in connections and time.
pub async fn spawn<F, Fut>(handler: F) -> Responder
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = testbed::bind_loopback("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let stop = Instant::now() + LIFETIME;
        for _ in 0..MAX_CONNECTIONS {
            let Ok(Ok((stream, _))) = timeout_at(stop, listener.accept()).await else {
                break;
            };
            let conn = handler(stream);
            tokio::spawn(async move {
                let _ = timeout(CONNECTION_LIFETIME, conn).await;
            });
        }
    });
    Responder { addr, task }
}

/// The server side of one connection: events from the client, bounded.
pub struct ServerConn {
    pub stream: TcpStream,
    deframer: Deframer,
    buf: Vec<u8>,
}

impl ServerConn {
    pub fn new(stream: TcpStream) -> Self {
        ServerConn {
            stream,
            deframer: Deframer::new(),
            buf: vec![0; 16 * 1024],
        }
    }

    /// The next event from the client; `None` on close, error or 10 s of silence.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            match self.deframer.next_event() {
                Ok(Some(ev)) => return Some(ev),
                Ok(None) => {}
                Err(_) => return None,
            }
            let n = match timeout(Duration::from_secs(10), self.stream.read(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => return None,
            };
            self.deframer.feed(&self.buf[..n]).ok()?;
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Option<()> {
        self.stream.write_all(bytes).await.ok()
    }

    pub async fn alert(&mut self, version: ProtocolVersion, description: AlertDescription) {
        let mut out = Vec::new();
        let alert = Alert {
            level: AlertLevel::Fatal,
            description,
        };
        encode_records(ContentType::Alert, version, &alert.to_bytes(), &mut out);
        let _ = self.send(&out).await;
        let _ = self.stream.shutdown().await;
    }

    /// Reads the ClientHello and answers the static-RSA flight (ServerHello
    /// with `extra` extensions, Certificate, ServerHelloDone). Returns the
    /// hello and the version negotiated, or `None` after refusing it.
    pub async fn accept_hello(
        &mut self,
        chain: &[Vec<u8>],
        extra: impl Fn(&ClientHello) -> Vec<ServerExtension>,
    ) -> Option<(ClientHello, ProtocolVersion)> {
        let hello = match self.next().await? {
            Event::Handshake(m) if m.typ == HandshakeType::ClientHello => {
                ClientHello::read(&mut Reader::new(&m.body)).ok()?
            }
            _ => return None,
        };
        let version = hello.client_version.min(ProtocolVersion::TLSv1_2);
        if !hello.cipher_suites.contains(&SUITE) {
            self.alert(version, AlertDescription::HandshakeFailure).await;
            return None;
        }
        let mut extensions = vec![ServerExtension::RenegotiationInfo(Vec::new())];
        extensions.extend(extra(&hello));
        let sh = ServerHello {
            legacy_version: version,
            random: Random([0x5a; 32]),
            session_id: vec![0x11; 32],
            cipher_suite: SUITE,
            compression: Compression::Null,
            extensions,
        };
        let mut flight = Vec::new();
        for (typ, body) in [
            (HandshakeType::ServerHello, sh.to_bytes()),
            (
                HandshakeType::Certificate,
                CertificateChain {
                    certificates: chain.to_vec(),
                }
                .to_bytes(),
            ),
            (HandshakeType::ServerHelloDone, Vec::new()),
        ] {
            HandshakeMessage { typ, body }.encode(&mut flight);
        }
        let mut out = Vec::new();
        encode_records(ContentType::Handshake, version, &flight, &mut out);
        self.send(&out).await?;
        Some((hello, version))
    }
}

fn heartbeat_offered(hello: &ClientHello) -> Vec<ServerExtension> {
    match hello.extension(ExtensionType::Heartbeat) {
        Some(ClientExtension::Heartbeat(_)) => vec![ServerExtension::Heartbeat(HeartbeatMode::PeerAllowedToSend)],
        _ => Vec::new(),
    }
}

/// Heartbleed (CVE-2014-0160), as OpenSSL 1.0.1–1.0.1f: negotiates the
/// heartbeat extension and answers a HeartbeatRequest with payload_length
/// bytes whatever the record carried — here our payload followed by filler
/// standing in for the leaked memory — plus 16 bytes of padding, split into
/// 2^14-byte records the way OpenSSL's ssl3_write_bytes splits them.
pub async fn heartbleed(chain: Vec<Vec<u8>>) -> Responder {
    let chain = Arc::new(chain);
    spawn(move |stream| {
        let chain = chain.clone();
        async move {
            let mut c = ServerConn::new(stream);
            let Some((_, version)) = c.accept_hello(&chain, heartbeat_offered).await else {
                return;
            };
            while let Some(ev) = c.next().await {
                let Event::Heartbeat(req) = ev else { continue };
                let [1, hi, lo, payload @ ..] = req.as_slice() else {
                    continue;
                };
                let claimed = usize::from(u16::from_be_bytes([*hi, *lo]));
                let mut body = vec![2, *hi, *lo];
                body.extend(payload.iter().take(claimed));
                body.extend(
                    b"LEAKED-MEMORY!"
                        .iter()
                        .cycle()
                        .take(claimed.saturating_sub(payload.len())),
                );
                body.extend([0u8; 16]);
                let mut out = Vec::new();
                encode_records(ContentType::Heartbeat, version, &body, &mut out);
                if c.send(&out).await.is_none() {
                    return;
                }
            }
        }
    })
    .await
}

/// How the CCS-injection responder reacts to an early ChangeCipherSpec.
#[derive(Clone, Copy, Debug)]
pub enum CcsMode {
    /// Ignores it and waits for more, sending nothing.
    Silent,
    /// OpenSSL before 1.0.1h (CVE-2014-0224): accepts the first CCS and
    /// switches its read state to keys from an empty master secret; the next
    /// record fails to decrypt and draws a fatal bad_record_mac.
    OpenSsl101g,
}

pub async fn ccs_injection(chain: Vec<Vec<u8>>, mode: CcsMode) -> Responder {
    let chain = Arc::new(chain);
    spawn(move |stream| {
        let chain = chain.clone();
        async move {
            let mut c = ServerConn::new(stream);
            let Some((_, version)) = c.accept_hello(&chain, |_| Vec::new()).await else {
                return;
            };
            let mut switched = false;
            while let Some(ev) = c.next().await {
                match (mode, ev, switched) {
                    (_, Event::ChangeCipherSpec, false) => switched = true,
                    (CcsMode::OpenSsl101g, Event::Protected { .. }, true) => {
                        c.alert(version, AlertDescription::BadRecordMac).await;
                        return;
                    }
                    _ => {}
                }
            }
        }
    })
    .await
}

/// An RSA private key: modulus and private exponent, big-endian.
#[derive(Clone)]
pub struct RsaKey {
    pub n: Vec<u8>,
    pub d: Vec<u8>,
}

/// One DER TLV: (tag, contents, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let (lb, rest) = rest.split_at_checked(usize::from(l0 & 0x7f))?;
        (lb.iter().fold(0usize, |a, &x| a << 8 | usize::from(x)), rest)
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// `n` and `d` from a PKCS#8 RSA key (RFC 5208 around RFC 8017's RSAPrivateKey).
pub fn rsa_key(pkcs8: &[u8]) -> RsaKey {
    let parse = || {
        let (_, info, _) = der(pkcs8)?;
        let (_, _version, rest) = der(info)?;
        let (_, _algorithm, rest) = der(rest)?;
        let (_, octets, _) = der(rest)?;
        let (_, rsa, _) = der(octets)?;
        let (_, _version, rest) = der(rsa)?;
        let (_, n, rest) = der(rest)?;
        let (_, _e, rest) = der(rest)?;
        let (_, d, _) = der(rest)?;
        Some(RsaKey {
            n: n.to_vec(),
            d: d.to_vec(),
        })
    };
    parse().expect("a PKCS#8 RSA key")
}

/// Whether `block` is PKCS#1 v1.5 type 2 with at least 8 padding bytes and a
/// 48-byte secret — the check whose outcome a vulnerable server lets show.
fn conforming(block: &[u8]) -> bool {
    let [0, 2, rest @ ..] = block else { return false };
    match rest.iter().position(|&b| b == 0) {
        Some(sep) => sep >= 8 && rest.len() - sep - 1 == 48,
        None => false,
    }
}

/// ROBOT (Bleichenbacher's oracle, as in the 2017 ROBOT paper's vulnerable
/// stacks): decrypts the ClientKeyExchange with the certificate's key and
/// answers a block that is not PKCS#1-conforming at once with a fatal
/// handshake_failure, while a conforming one goes on to the Finished, which
/// fails with bad_record_mac. The two answers tell an attacker whether the
/// padding was right. (The version bytes are not checked, as in many of the
/// affected stacks.)
pub async fn robot_oracle(chain: Vec<Vec<u8>>, key: RsaKey) -> Responder {
    let chain = Arc::new(chain);
    let key = Arc::new(key);
    spawn(move |stream| {
        let (chain, key) = (chain.clone(), key.clone());
        async move {
            let mut c = ServerConn::new(stream);
            let Some((_, version)) = c.accept_hello(&chain, |_| Vec::new()).await else {
                return;
            };
            let Some(Event::Handshake(cke)) = c.next().await else {
                return;
            };
            if cke.typ != HandshakeType::ClientKeyExchange {
                return;
            }
            let Some(ct) = cke.body.get(2..) else { return };
            let n = BigUint::from_bytes_be(&key.n);
            let m = BigUint::from_bytes_be(ct).modpow(&BigUint::from_bytes_be(&key.d), &n);
            let k = key.n.iter().skip_while(|&&b| b == 0).count();
            let bytes = m.to_bytes_be();
            let mut block = vec![0u8; k.saturating_sub(bytes.len())];
            block.extend(bytes);
            if !conforming(&block) {
                c.alert(version, AlertDescription::HandshakeFailure).await;
                return;
            }
            while let Some(ev) = c.next().await {
                if let Event::Protected { .. } = ev {
                    c.alert(version, AlertDescription::BadRecordMac).await;
                    return;
                }
            }
        }
    })
    .await
}

/// A rustls TLS 1.2 server that issues session tickets, aborted on drop.
pub struct TicketServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for TicketServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn rustls_with_tickets(chain: &testbed::Chain) -> TicketServer {
    let (config, _) =
        testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS12]).expect("config");
    let mut config = (*config).clone();
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().expect("ticketer");
    let listener = testbed::bind_loopback("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = testbed::serve_tls(listener, Arc::new(config));
    TicketServer { addr, task }
}

/// Ticketbleed (CVE-2016-9244), as F5 BIG-IP: a proxy in front of `upstream`
/// (a rustls server issuing tickets) that, when the server resumes a ticket
/// offered with a session id shorter than 32 bytes, stretches the echoed id
/// to 32 bytes with filler standing in for the leaked memory. Everything
/// else passes through unchanged.
pub async fn ticketbleed(upstream: SocketAddr) -> Responder {
    spawn(move |mut client| async move {
        // The ClientHello, kept raw to forward it as it came.
        let mut raw = Vec::new();
        let mut d = Deframer::new();
        let mut buf = vec![0u8; 16 * 1024];
        let hello = loop {
            match d.next_event() {
                Ok(Some(Event::Handshake(m))) if m.typ == HandshakeType::ClientHello => {
                    match ClientHello::read(&mut Reader::new(&m.body)) {
                        Ok(h) => break h,
                        Err(_) => return,
                    }
                }
                Ok(None) => {}
                _ => return,
            }
            let n = match client.read(&mut buf).await {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            raw.extend_from_slice(&buf[..n]);
            if d.feed(&buf[..n]).is_err() {
                return;
            }
        };
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        if server.write_all(&raw).await.is_err() {
            return;
        }
        // The server's first record: the ServerHello (rustls sends its
        // flight in whole records).
        let mut from_server = Vec::new();
        let (first, used) = loop {
            let mut r = Reader::new(&from_server);
            if let Ok(rec) = Record::read(&mut r) {
                break (rewrite(&hello, rec), r.used());
            }
            let n = match server.read(&mut buf).await {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            from_server.extend_from_slice(&buf[..n]);
        };
        if client.write_all(&first).await.is_err() || client.write_all(&from_server[used..]).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    })
    .await
}

/// The record with a resumed session's echoed id stretched to 32 bytes.
fn rewrite(hello: &ClientHello, rec: Record<'_>) -> Vec<u8> {
    let mut original = Vec::new();
    encode_records(rec.header.content_type, rec.header.version, rec.payload, &mut original);
    let short = (1..32).contains(&hello.session_id.len());
    if rec.header.content_type != ContentType::Handshake || !short {
        return original;
    }
    let mut r = Reader::new(rec.payload);
    let mut messages = Vec::new();
    while r.any_left() {
        let Ok(mut m) = HandshakeMessage::read(&mut r) else {
            return original;
        };
        if m.typ == HandshakeType::ServerHello
            && let Ok(mut sh) = ServerHello::read(&mut Reader::new(&m.body))
            && sh.session_id == hello.session_id
        {
            sh.session_id.resize(32, 0xee);
            m.body = sh.to_bytes();
        }
        m.encode(&mut messages);
    }
    let mut out = Vec::new();
    encode_records(ContentType::Handshake, rec.header.version, &messages, &mut out);
    out
}
