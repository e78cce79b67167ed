//! Send one hand-built ClientHello, read the server's first flight.
//!
//! Enumeration needs hundreds of these, each answering one question ("does
//! it pick a suite from this list?"), so each is a short connection that
//! stops reading as soon as the question is answered: at the ServerHello, or
//! at ServerHelloDone when the certificate and key-exchange parameters are
//! wanted too. Reading is bounded by the deframer's limits and one deadline.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::probe::starttls;
use crate::probe::starttls::dialogue::{Starttls, StarttlsError};
use crate::wire::record::Deframer;
use crate::wire::server::CertificateStatus;
use crate::wire::{
    Alert, CertificateChain, Codec, Event, HandshakeType, ProtocolVersion, Reader, ServerHello, ServerKeyExchange,
    Sslv2Message, Sslv2ServerHello,
};

/// How far to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// Stop at the ServerHello (or HelloRetryRequest).
    ServerHello,
    /// Go on to ServerHelloDone (TLS ≤ 1.2): certificate, stapled OCSP,
    /// key-exchange parameters.
    HelloDone,
}

/// Why reading stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// We got what we asked for.
    Complete,
    /// The server sent an alert.
    Alert,
    /// The server closed the connection.
    Closed,
    Reset,
    Timeout,
    /// Could not connect or write the hello.
    Connect(String),
    /// The server sent something that does not parse.
    Malformed(String),
    /// The STARTTLS dialogue was turned away for now (SMTP 421, busy).
    Throttled(String),
}

/// The plaintext dialogue each connection needs before its hello (STARTTLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preamble {
    pub proto: Starttls,
    /// The name for EHLO / the XMPP `to`.
    pub host: Option<String>,
}

/// What the server sent back, as far as we read.
#[derive(Clone, Debug)]
pub struct Flight {
    pub server_hello: Option<ServerHello>,
    /// DER, as sent (TLS ≤ 1.2 Certificate message).
    pub chain: Vec<Vec<u8>>,
    pub key_exchange: Option<ServerKeyExchange>,
    /// A CertificateStatus (stapled OCSP) message arrived.
    pub ocsp_response: Option<Vec<u8>>,
    pub hello_done: bool,
    pub alert: Option<Alert>,
    pub sslv2: Option<Sslv2ServerHello>,
    pub ended: Ended,
}

impl Flight {
    fn new() -> Self {
        Flight {
            server_hello: None,
            chain: Vec::new(),
            key_exchange: None,
            ocsp_response: None,
            hello_done: false,
            alert: None,
            sslv2: None,
            ended: Ended::Closed,
        }
    }

    /// The negotiated version, when a real ServerHello (not an HRR) arrived.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.server_hello
            .as_ref()
            .filter(|sh| !sh.is_hello_retry_request())
            .map(ServerHello::version)
    }
}

/// Connect to `addr`, send `hello` (one or more records), and read the answer.
pub async fn exchange(addr: SocketAddr, hello: &[u8], until: Until, deadline: Duration) -> Flight {
    exchange_via(addr, None, hello, until, deadline).await
}

/// [`exchange`] on a connection first upgraded with `preamble`, when given;
/// the deadline covers the dialogue too.
pub async fn exchange_via(
    addr: SocketAddr,
    preamble: Option<&Preamble>,
    hello: &[u8],
    until: Until,
    deadline: Duration,
) -> Flight {
    let mut flight = Flight::new();
    let started = tokio::time::Instant::now();
    let work = async {
        let mut stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                flight.ended = Ended::Connect(e.to_string());
                return;
            }
        };
        if let Some(p) = preamble {
            let left = deadline.saturating_sub(started.elapsed());
            stream = match starttls::upgrade(stream, p.proto, p.host.as_deref(), left).await {
                Ok(s) => s,
                Err(e) if e.is_throttled() => {
                    flight.ended = Ended::Throttled(e.to_string());
                    return;
                }
                Err(StarttlsError::Timeout { .. }) => {
                    flight.ended = Ended::Timeout;
                    return;
                }
                Err(e) => {
                    flight.ended = Ended::Connect(format!("STARTTLS failed: {e}"));
                    return;
                }
            };
        }
        let _ = stream.set_nodelay(true);
        if let Err(e) = stream.write_all(hello).await {
            flight.ended = Ended::Connect(format!("cannot send the hello: {e}"));
            return;
        }
        read_flight(&mut stream, until, &mut flight).await;
    };
    if tokio::time::timeout(deadline, work).await.is_err() {
        flight.ended = Ended::Timeout;
    }
    flight
}

async fn read_flight(stream: &mut TcpStream, until: Until, flight: &mut Flight) {
    let mut deframer = Deframer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Drain every event the bytes so far make.
        loop {
            match deframer.next_event() {
                Ok(Some(event)) => {
                    if let Some(end) = on_event(event, until, flight) {
                        flight.ended = end;
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    flight.ended = Ended::Malformed(e.to_string());
                    return;
                }
            }
        }
        let room = deframer.room().min(buf.len());
        if room == 0 {
            flight.ended = Ended::Malformed("the server's flight exceeds the buffer limit".into());
            return;
        }
        match stream.read(&mut buf[..room]).await {
            Ok(0) => {
                flight.ended = Ended::Closed;
                return;
            }
            Ok(n) => {
                if let Err(e) = deframer.feed(&buf[..n]) {
                    flight.ended = Ended::Malformed(e.to_string());
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                flight.ended = Ended::Reset;
                return;
            }
            Err(e) => {
                flight.ended = Ended::Connect(e.to_string());
                return;
            }
        }
    }
}

/// Act on one event; `Some` ends the read.
fn on_event(event: Event, until: Until, flight: &mut Flight) -> Option<Ended> {
    match event {
        Event::Alert(alert) => {
            flight.alert = Some(alert);
            Some(Ended::Alert)
        }
        Event::Sslv2(body) => match crate::wire::sslv2::read_message(&body) {
            Ok(Sslv2Message::ServerHello(sh)) => {
                flight.sslv2 = Some(sh);
                Some(Ended::Complete)
            }
            Ok(Sslv2Message::Error(code)) => Some(Ended::Malformed(format!("SSLv2 error {code:#06x}"))),
            Ok(_) => Some(Ended::Malformed("unexpected SSLv2 message".into())),
            Err(e) => Some(Ended::Malformed(e.to_string())),
        },
        Event::Handshake(msg) => {
            let body = msg.body.as_slice();
            match msg.typ {
                HandshakeType::ServerHello => {
                    let sh = match ServerHello::read(&mut Reader::new(body)) {
                        Ok(sh) => sh,
                        Err(e) => return Some(Ended::Malformed(format!("ServerHello: {e}"))),
                    };
                    let stop = until == Until::ServerHello
                        || sh.is_hello_retry_request()
                        || sh.version() >= ProtocolVersion::TLSv1_3;
                    flight.server_hello = Some(sh);
                    stop.then_some(Ended::Complete)
                }
                HandshakeType::Certificate => {
                    match CertificateChain::read(&mut Reader::new(body)) {
                        Ok(c) => flight.chain = c.certificates,
                        Err(e) => return Some(Ended::Malformed(format!("Certificate: {e}"))),
                    }
                    None
                }
                HandshakeType::CertificateStatus => {
                    if let Ok(status) = CertificateStatus::read(&mut Reader::new(body)) {
                        flight.ocsp_response = Some(status.ocsp_response);
                    }
                    None
                }
                HandshakeType::ServerKeyExchange => {
                    let Some(sh) = &flight.server_hello else {
                        return Some(Ended::Malformed("ServerKeyExchange before ServerHello".into()));
                    };
                    match ServerKeyExchange::read(body, sh.cipher_suite, sh.version()) {
                        Ok(ske) => flight.key_exchange = Some(ske),
                        Err(e) => return Some(Ended::Malformed(format!("ServerKeyExchange: {e}"))),
                    }
                    None
                }
                HandshakeType::ServerHelloDone => {
                    flight.hello_done = true;
                    Some(Ended::Complete)
                }
                // CertificateRequest and anything else before ServerHelloDone: keep reading.
                _ => None,
            }
        }
        Event::ChangeCipherSpec | Event::Protected { .. } | Event::Heartbeat(_) => Some(Ended::Complete),
    }
}
