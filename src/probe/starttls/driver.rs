//! The plaintext half of a STARTTLS connection, on a real socket.
//!
//! Every later probe (the rustls handshake, each enumeration hello) needs its
//! own upgraded connection, so the dialogue is one function that takes a
//! connected socket and hands it back ready for a ClientHello. One deadline
//! covers the whole dialogue and every read is capped (`LINE_CAP`,
//! `TOTAL_CAP`); what the replies mean is decided by the pure
//! `crate::probe::starttls::dialogue`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::probe::starttls::dialogue::{self as script, Reply, Starttls, StarttlsError, TOTAL_CAP};

/// What an upgrade learnt besides the socket: the first thing the server said.
#[derive(Debug)]
pub struct Upgraded {
    pub stream: TcpStream,
    /// The greeting or first answer, printable, for the record's banner.
    pub greeting: Option<String>,
}

/// Run the dialogue of `proto` on `stream` and return it ready for TLS.
/// `host` names the service where the protocol wants a name (EHLO, XMPP `to`).
pub async fn upgrade(
    stream: TcpStream,
    proto: Starttls,
    host: Option<&str>,
    deadline: Duration,
) -> Result<TcpStream, StarttlsError> {
    upgrade_with_greeting(stream, proto, host, deadline)
        .await
        .map(|u| u.stream)
}

/// [`upgrade`], also returning the server's greeting.
pub async fn upgrade_with_greeting(
    stream: TcpStream,
    proto: Starttls,
    host: Option<&str>,
    deadline: Duration,
) -> Result<Upgraded, StarttlsError> {
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        proto,
        end: Instant::now() + deadline,
        deadline,
        greeting: None,
    };
    let name = host
        .map(str::to_string)
        .or_else(|| conn.stream.peer_addr().ok().map(|a| a.ip().to_string()))
        .unwrap_or_else(|| "localhost".into());
    let result = match proto {
        Starttls::Smtp => smtp(&mut conn).await,
        Starttls::Imap => imap(&mut conn).await,
        Starttls::Pop3 => pop3(&mut conn).await,
        Starttls::Ftp => ftp(&mut conn).await,
        Starttls::Ldap => ldap(&mut conn).await,
        Starttls::Postgres => postgres(&mut conn).await,
        Starttls::XmppClient | Starttls::XmppServer => xmpp(&mut conn, &name).await,
        Starttls::Mysql => mysql(&mut conn).await,
        Starttls::Rdp => rdp(&mut conn).await,
    };
    result?;
    if !conn.buf.is_empty() {
        // Bytes after the go-ahead would be read as TLS: a server (or a
        // man in the middle) injecting plaintext, CVE-2011-0411 style.
        return Err(StarttlsError::Malformed {
            proto,
            detail: format!("{} bytes sent after the go-ahead", conn.buf.len()),
        });
    }
    Ok(Upgraded {
        stream: conn.stream,
        greeting: conn.greeting,
    })
}

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    proto: Starttls,
    end: Instant,
    deadline: Duration,
    greeting: Option<String>,
}

impl Conn {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), StarttlsError> {
        match tokio::time::timeout_at(self.end, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StarttlsError::Io {
                proto: self.proto,
                detail: format!("cannot send: {e}"),
            }),
            Err(_) => Err(self.timeout()),
        }
    }

    fn timeout(&self) -> StarttlsError {
        StarttlsError::Timeout {
            proto: self.proto,
            ms: self.deadline.as_millis(),
        }
    }

    /// Read more bytes into the buffer, within the deadline and the total cap.
    async fn fill(&mut self) -> Result<(), StarttlsError> {
        if self.buf.len() >= TOTAL_CAP {
            return Err(StarttlsError::TooLong {
                proto: self.proto,
                cap: TOTAL_CAP,
            });
        }
        let mut chunk = [0u8; 4096];
        let room = (TOTAL_CAP - self.buf.len()).min(chunk.len());
        match tokio::time::timeout_at(self.end, self.stream.read(&mut chunk[..room])).await {
            Ok(Ok(0)) => Err(StarttlsError::Closed { proto: self.proto }),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(StarttlsError::Io {
                proto: self.proto,
                detail: e.to_string(),
            }),
            Err(_) => Err(self.timeout()),
        }
    }

    /// Read until `parse` finds a complete unit; it returns the unit and the bytes used.
    async fn read<T>(
        &mut self,
        parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, StarttlsError>,
    ) -> Result<T, StarttlsError> {
        loop {
            if let Some((unit, used)) = parse(&self.buf)? {
                self.buf.drain(..used);
                return Ok(unit);
            }
            self.fill().await?;
        }
    }

    async fn reply(&mut self) -> Result<Reply, StarttlsError> {
        let proto = self.proto;
        self.read(|b| script::take_reply(proto, b)).await
    }

    async fn line(&mut self) -> Result<String, StarttlsError> {
        let proto = self.proto;
        self.read(|b| script::take_line(proto, b)).await
    }

    /// Read until `judge` has a verdict on everything received so far; the buffer is consumed.
    async fn until(&mut self, judge: impl Fn(&[u8]) -> Option<Result<(), StarttlsError>>) -> Result<(), StarttlsError> {
        loop {
            if let Some(verdict) = judge(&self.buf) {
                self.buf.clear();
                return verdict;
            }
            self.fill().await?;
        }
    }

    fn greet(&mut self, text: &str) {
        if self.greeting.is_none() {
            self.greeting = Some(script::printable(text.as_bytes(), 200));
        }
    }
}

/// RFC 3207 §4 (and RFC 5321 §4.1.1.1): greeting, EHLO, STARTTLS, 220.
async fn smtp(c: &mut Conn) -> Result<(), StarttlsError> {
    let greeting = c.reply().await?;
    c.greet(greeting.lines.first().map(String::as_str).unwrap_or(""));
    script::smtp_greeting(&greeting)?;
    c.send(b"EHLO netsensor.invalid\r\n").await?;
    script::smtp_ehlo(&c.reply().await?)?;
    c.send(b"STARTTLS\r\n").await?;
    script::smtp_starttls(&c.reply().await?)
}

/// RFC 3501 §6.2.1: greeting, `a STARTTLS`, `a OK`.
async fn imap(c: &mut Conn) -> Result<(), StarttlsError> {
    let greeting = c.line().await?;
    c.greet(&greeting);
    script::imap_greeting(&greeting)?;
    c.send(format!("{} STARTTLS\r\n", script::IMAP_TAG).as_bytes()).await?;
    for _ in 0..64 {
        let line = c.line().await?;
        if let Some(verdict) = script::imap_starttls(&line) {
            return verdict;
        }
    }
    Err(StarttlsError::TooLong {
        proto: c.proto,
        cap: TOTAL_CAP,
    })
}

/// RFC 2595 §4: greeting, `STLS`, `+OK`.
async fn pop3(c: &mut Conn) -> Result<(), StarttlsError> {
    let greeting = c.line().await?;
    c.greet(&greeting);
    script::pop3_status(&greeting, true)?;
    c.send(b"STLS\r\n").await?;
    script::pop3_status(&c.line().await?, false)
}

/// RFC 4217 §4: greeting, `AUTH TLS`, 234.
async fn ftp(c: &mut Conn) -> Result<(), StarttlsError> {
    let greeting = c.reply().await?;
    c.greet(greeting.lines.first().map(String::as_str).unwrap_or(""));
    script::ftp_greeting(&greeting)?;
    c.send(b"AUTH TLS\r\n").await?;
    script::ftp_auth(&c.reply().await?)
}

/// RFC 4511 §4.14: the StartTLS extended operation.
async fn ldap(c: &mut Conn) -> Result<(), StarttlsError> {
    c.send(&script::ldap_request()).await?;
    let frame = c
        .read(|b| Ok(script::ldap_frame_len(b)?.map(|n| (b[..n].to_vec(), n))))
        .await?;
    script::ldap_response(&frame)
}

/// PostgreSQL protocol §55.2.10: SSLRequest, one byte back.
async fn postgres(c: &mut Conn) -> Result<(), StarttlsError> {
    c.send(&script::POSTGRES_SSL_REQUEST).await?;
    let byte = c.read(|b| Ok(b.first().map(|&x| (x, 1)))).await?;
    script::postgres_answer(byte)
}

/// RFC 6120 §5.4: stream header, features with `<starttls/>`, `<proceed/>`.
async fn xmpp(c: &mut Conn, to: &str) -> Result<(), StarttlsError> {
    let server = c.proto == Starttls::XmppServer;
    c.send(script::xmpp_open(to, server).as_bytes()).await?;
    c.until(script::xmpp_features).await?;
    c.send(script::XMPP_STARTTLS.as_bytes()).await?;
    c.until(script::xmpp_proceed).await
}

/// MySQL: the server's greeting must carry CLIENT_SSL; then the SSLRequest packet.
async fn mysql(c: &mut Conn) -> Result<(), StarttlsError> {
    let packet = c
        .read(|b| Ok(script::mysql_packet_len(b)?.map(|n| (b[..n].to_vec(), n))))
        .await?;
    let greeting = script::mysql_greeting(&packet)?;
    c.greet(&greeting.server_version);
    if greeting.capabilities & script::MYSQL_CLIENT_SSL == 0 {
        return Err(StarttlsError::NotOffered {
            proto: c.proto,
            reply: format!("server {} without CLIENT_SSL", greeting.server_version),
        });
    }
    c.send(&script::mysql_ssl_request(&greeting)).await
}

/// [MS-RDPBCGR] 1.3.1.1: X.224 Connection Request with RDP_NEG_REQ, Connection Confirm.
async fn rdp(c: &mut Conn) -> Result<(), StarttlsError> {
    c.send(&script::RDP_CONNECTION_REQUEST).await?;
    let tpkt = c
        .read(|b| Ok(script::tpkt_len(b)?.map(|n| (b[..n].to_vec(), n))))
        .await?;
    script::rdp_confirm(&tpkt).map(|_| ())
}
