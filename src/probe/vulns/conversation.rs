//! A scripted TLS conversation: hello, the server's clear flight, then
//! crafted records and the server's answer to them.
//!
//! `probe::hello::exchange` sends one hello and hangs up; the checks need to
//! keep the connection, write more records after ServerHelloDone and read
//! what comes back, event by event, under one deadline. The reading is the
//! same as there: bytes go through the bounded [`Deframer`], so the server
//! can send anything and costs at most the deframer's limits.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::wire::{
    Alert, AlertLevel, CertificateChain, Codec, Deframer, Event, HandshakeMessage, HandshakeType, ProtocolVersion,
    Reader, ServerHello,
};

use super::Target;

/// What the next read gave.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    Event(Event),
    /// Orderly close (EOF).
    Closed,
    Reset,
    /// Nothing within the wait.
    Timeout,
    /// Bytes that do not parse as TLS records.
    Malformed(String),
    /// Another I/O error.
    Failed(String),
}

impl Reply {
    /// A short description for evidence lines.
    pub fn describe(&self) -> String {
        match self {
            Reply::Event(Event::Alert(a)) => describe_alert(a),
            Reply::Event(Event::Handshake(m)) => format!("a {} message", m.typ),
            Reply::Event(Event::ChangeCipherSpec) => "a ChangeCipherSpec".into(),
            Reply::Event(Event::Heartbeat(p)) => format!("a {}-byte heartbeat record", p.len()),
            Reply::Event(Event::Protected { content_type, len }) => {
                format!("a {len}-byte {content_type} record")
            }
            Reply::Event(Event::Sslv2(_)) => "an SSLv2 message".into(),
            Reply::Closed => "the connection closed without an alert".into(),
            Reply::Reset => "the connection reset".into(),
            Reply::Timeout => "nothing (timeout)".into(),
            Reply::Malformed(e) => format!("an unreadable answer ({e})"),
            Reply::Failed(e) => format!("an I/O error ({e})"),
        }
    }
}

pub(crate) fn describe_alert(a: &Alert) -> String {
    let level = match a.level {
        AlertLevel::Fatal => "fatal",
        AlertLevel::Warning => "warning",
        _ => "unknown-level",
    };
    format!("a {level} {} alert", a.description)
}

/// The server's clear flight up to ServerHelloDone.
#[derive(Clone, Debug)]
pub(crate) struct ServerFlight {
    pub server_hello: ServerHello,
    /// DER, leaf first, as sent.
    pub chain: Vec<Vec<u8>>,
    /// The server asked for a client certificate.
    pub certificate_request: bool,
    /// Every handshake message of the flight, in order (for a transcript).
    pub messages: Vec<HandshakeMessage>,
}

impl ServerFlight {
    pub fn version(&self) -> ProtocolVersion {
        self.server_hello.version()
    }
}

/// One connection under one deadline.
pub(crate) struct Conversation {
    stream: TcpStream,
    deframer: Deframer,
    buf: Vec<u8>,
    deadline: Instant,
    /// The first bytes read after [`Conversation::mark`] (at most a record
    /// header): what the answer to a probe looked like even when the deframer
    /// refuses it.
    tail: Option<Vec<u8>>,
}

const READ_CHUNK: usize = 16 * 1024;
const TAIL: usize = 5;

impl Conversation {
    /// Connects to `t`; every later step ends by `deadline`.
    pub async fn open(t: &Target, deadline: Instant) -> Result<Self, String> {
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(t.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
            Err(_) => return Err("cannot connect: timed out".into()),
        };
        let _ = stream.set_nodelay(true);
        Ok(Conversation {
            stream,
            deframer: Deframer::new(),
            buf: vec![0; READ_CHUNK],
            deadline,
            tail: None,
        })
    }

    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout_at(self.deadline, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot send: {e}")),
            Err(_) => Err("cannot send: timed out".into()),
        }
    }

    /// Remember the first bytes that arrive from now on.
    pub fn mark(&mut self) {
        self.tail = Some(Vec::new());
    }

    /// The first bytes read since [`Conversation::mark`].
    pub fn tail(&self) -> &[u8] {
        self.tail.as_deref().unwrap_or_default()
    }

    /// The next event, or how the connection ended; waits until `until`
    /// (never past the conversation's deadline).
    pub async fn next(&mut self, until: Instant) -> Reply {
        let until = until.min(self.deadline);
        loop {
            match self.deframer.next_event() {
                Ok(Some(ev)) => return Reply::Event(ev),
                Ok(None) => {}
                Err(e) => return Reply::Malformed(e.to_string()),
            }
            let room = self.deframer.room().min(self.buf.len());
            if room == 0 {
                return Reply::Malformed("the answer exceeds the buffer limit".into());
            }
            let read = tokio::time::timeout_at(until, self.stream.read(&mut self.buf[..room])).await;
            match read {
                Err(_) => return Reply::Timeout,
                Ok(Ok(0)) => return Reply::Closed,
                Ok(Ok(n)) => {
                    let bytes = self.buf.get(..n).unwrap_or_default();
                    if let Some(tail) = self.tail.as_mut() {
                        let room = TAIL.saturating_sub(tail.len());
                        tail.extend(bytes.iter().take(room));
                    }
                    if let Err(e) = self.deframer.feed(bytes) {
                        return Reply::Malformed(e.to_string());
                    }
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return Reply::Reset,
                Ok(Err(e)) => return Reply::Failed(e.to_string()),
            }
        }
    }

    /// Sends `hello` and reads the server's flight to ServerHelloDone
    /// (TLS ≤ 1.2). `Err` says why the flight did not come: an alert, a
    /// close, a TLS 1.3 answer, a timeout.
    pub async fn hello(&mut self, hello: &[u8]) -> Result<ServerFlight, String> {
        self.send(hello).await?;
        let mut server_hello: Option<ServerHello> = None;
        let mut chain = Vec::new();
        let mut certificate_request = false;
        let mut messages = Vec::new();
        loop {
            let ev = match self.next(self.deadline).await {
                Reply::Event(ev) => ev,
                Reply::Timeout => return Err("no ServerHelloDone before the deadline".into()),
                other => return Err(format!("the hello was answered with {}", other.describe())),
            };
            let msg = match ev {
                Event::Handshake(msg) => msg,
                Event::Alert(a) => return Err(format!("the hello was answered with {}", describe_alert(&a))),
                other => {
                    return Err(format!(
                        "unexpected in the server's flight: {}",
                        Reply::Event(other).describe()
                    ));
                }
            };
            match msg.typ {
                HandshakeType::ServerHello => {
                    let sh = ServerHello::read(&mut Reader::new(&msg.body)).map_err(|e| format!("ServerHello: {e}"))?;
                    if sh.is_hello_retry_request() || sh.version() >= ProtocolVersion::TLSv1_3 {
                        return Err(format!("the server answered with {}", sh.version()));
                    }
                    server_hello = Some(sh);
                }
                HandshakeType::Certificate => {
                    if let Ok(c) = CertificateChain::read(&mut Reader::new(&msg.body)) {
                        chain = c.certificates;
                    }
                }
                HandshakeType::CertificateRequest => certificate_request = true,
                HandshakeType::ServerHelloDone => {
                    messages.push(msg);
                    return match server_hello {
                        Some(server_hello) => Ok(ServerFlight {
                            server_hello,
                            chain,
                            certificate_request,
                            messages,
                        }),
                        None => Err("ServerHelloDone without a ServerHello".into()),
                    };
                }
                _ => {}
            }
            messages.push(msg);
        }
    }

    /// The socket, for a conversation that goes on past what the deframer
    /// reads (protected records). Only once the server has nothing pending.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}
