//! Purpose-built STARTTLS responders: each follows its RFC's exchange byte
//! for byte (the section is cited on each script), then hands the socket to
//! a rustls acceptor built from `testbed`, so the TLS behind the
//! upgrade is exactly the TLS a `testbed::serve_tls` listener serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One step of the plaintext dialogue, server side.
#[derive(Clone, Debug)]
pub enum Step {
    Send(Vec<u8>),
    /// Read one CRLF-terminated line.
    Line,
    /// Read exactly this many bytes.
    Exact(usize),
    /// Read until these bytes have arrived.
    Until(&'static [u8]),
}

fn send(b: impl AsRef<[u8]>) -> Step {
    Step::Send(b.as_ref().to_vec())
}

/// A responder: its dialogue, and TLS afterwards when `tls` is set.
#[derive(Clone)]
pub struct Script {
    pub steps: Vec<Step>,
    pub tls: Option<Arc<ServerConfig>>,
    /// From this connection on (0-based), answer `421` and close (SMTP throttling).
    pub throttle_from: Option<usize>,
    /// The first this-many connections read once and hang up without a word.
    pub hang_up_first: usize,
}

/// Connections accepted so far, for the throttling test.
#[derive(Default)]
pub struct Counter(AtomicUsize);

impl Counter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Serve `script` on `listener` until the handle is aborted.
pub fn serve(listener: TcpListener, script: Script) -> (JoinHandle<()>, Arc<Counter>) {
    let counter = Arc::new(Counter::default());
    let script = Arc::new(script);
    let seen = counter.clone();
    let handle = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let n = seen.0.fetch_add(1, Ordering::Relaxed);
            let script = script.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), run(stream, &script, n)).await;
            });
        }
    });
    (handle, counter)
}

async fn run(mut s: TcpStream, script: &Script, n: usize) -> std::io::Result<()> {
    if n < script.hang_up_first {
        let mut sink = [0u8; 1024];
        let _ = s.read(&mut sink).await;
        return Ok(());
    }
    if script.throttle_from.is_some_and(|from| n >= from) {
        // RFC 5321 §3.8 / §4.2.3: 421 Service not available, closing transmission channel.
        s.write_all(b"421 4.7.0 mx.test Too many connections, try again later\r\n")
            .await?;
        return Ok(());
    }
    let mut buf = Vec::new();
    for step in &script.steps {
        match step {
            Step::Send(b) => s.write_all(b).await?,
            Step::Line => read_until(&mut s, &mut buf, b"\n").await?,
            Step::Until(end) => read_until(&mut s, &mut buf, end).await?,
            Step::Exact(k) => {
                // Exactly: a client may send its ClientHello right behind
                // (MySQL does), and those bytes belong to the TLS acceptor.
                let have = buf.len().min(*k);
                buf.drain(..have);
                let mut rest = vec![0u8; k - have];
                s.read_exact(&mut rest).await?;
            }
        }
    }
    if let Some(cfg) = &script.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
        let mut tls = acceptor.accept(s).await?;
        let mut sink = [0u8; 256];
        let _ = tls.read(&mut sink).await;
    } else {
        // Hold the line until the client hangs up.
        let mut sink = [0u8; 256];
        while s.read(&mut sink).await? > 0 {}
    }
    Ok(())
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 1024];
    let n = s.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, end: &[u8]) -> std::io::Result<()> {
    loop {
        if let Some(i) = buf.windows(end.len()).position(|w| w == end) {
            buf.drain(..i + end.len());
            return Ok(());
        }
        fill(s, buf).await?;
    }
}

/// SMTP, RFC 3207 §4 with RFC 5321 §4.1.1.1: greeting, EHLO, STARTTLS, 220.
pub fn smtp(offer: bool) -> Vec<Step> {
    let ehlo: &[u8] = match offer {
        true => b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
        false => b"250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
    };
    let mut steps = vec![
        send("220 mx.test ESMTP Postfix (Debian/GNU)\r\n"),
        Step::Line,
        send(ehlo),
    ];
    if offer {
        steps.extend([Step::Line, send("220 2.0.0 Ready to start TLS\r\n")]);
    }
    steps
}

/// IMAP, RFC 3501 §6.2.1 (and RFC 2595 §3.1): greeting, `a STARTTLS`, `a OK`.
pub fn imap(offer: bool) -> Vec<Step> {
    match offer {
        true => vec![
            send(
                "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n",
            ),
            Step::Line,
            send("a OK Begin TLS negotiation now.\r\n"),
        ],
        false => vec![
            send(
                "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n",
            ),
            Step::Line,
            send("a BAD Error in IMAP command STARTTLS: Unknown command.\r\n"),
        ],
    }
}

/// POP3, RFC 2595 §4: greeting, `STLS`, `+OK`.
pub fn pop3(offer: bool) -> Vec<Step> {
    let answer = match offer {
        true => "+OK Begin TLS negotiation now.\r\n",
        false => "-ERR Unknown command: STLS\r\n",
    };
    vec![send("+OK Dovecot (Debian) ready.\r\n"), Step::Line, send(answer)]
}

/// FTP, RFC 4217 §4: greeting, `AUTH TLS`, 234.
pub fn ftp(offer: bool) -> Vec<Step> {
    let answer = match offer {
        true => "234 Proceed with negotiation.\r\n",
        false => "530 Please login with USER and PASS.\r\n",
    };
    vec![send("220 (vsFTPd 3.0.3)\r\n"), Step::Line, send(answer)]
}

/// LDAP, RFC 4511 §4.14: the StartTLS ExtendedRequest (31 bytes, messageID 1)
/// answered by an ExtendedResponse; success carries the responseName [10].
pub fn ldap(offer: bool) -> Vec<Step> {
    const OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
    let answer = match offer {
        true => {
            let mut op = vec![0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00, 0x8a, OID.len() as u8];
            op.extend_from_slice(OID);
            let mut body = vec![0x02, 0x01, 0x01, 0x78, op.len() as u8];
            body.extend(op);
            let mut msg = vec![0x30, body.len() as u8];
            msg.extend(body);
            msg
        }
        // protocolError (2), as slapd answers an unsupported extended operation.
        false => vec![
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00,
        ],
    };
    vec![Step::Exact(31), Step::Send(answer)]
}

/// PostgreSQL protocol §55.2.10: SSLRequest (8 bytes), `S` or `N`.
pub fn postgres(offer: bool) -> Vec<Step> {
    vec![Step::Exact(8), send(if offer { "S" } else { "N" })]
}

/// XMPP, RFC 6120 §5.4.2 (example in §9.1.2): stream headers, features,
/// `<starttls/>`, `<proceed/>`.
pub fn xmpp(offer: bool) -> Vec<Step> {
    xmpp_stream(offer, "jabber:client")
}

/// The same between servers (RFC 6120 §4.7.5, `jabber:server`).
pub fn xmpp_server(offer: bool) -> Vec<Step> {
    xmpp_stream(offer, "jabber:server")
}

fn xmpp_stream(offer: bool, ns: &str) -> Vec<Step> {
    let features = match offer {
        true => {
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
        }
        false => {
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
        }
    };
    let header = format!(
        "<?xml version='1.0'?><stream:stream from='im.test' id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' version='1.0' \
         xml:lang='en' xmlns='{ns}' xmlns:stream='http://etherx.jabber.org/streams'>{features}"
    );
    let mut steps = vec![Step::Until(b"version='1.0'>"), send(header)];
    if offer {
        steps.extend([
            Step::Until(b"/>"),
            send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
        ]);
    }
    steps
}

/// MySQL client/server protocol: the v10 initial handshake (CLIENT_SSL
/// 0x0800 in the capability flags when offered), then the 32-byte SSLRequest.
pub fn mysql(offer: bool) -> Vec<Step> {
    let mut payload = vec![0x0a];
    payload.extend_from_slice(b"10.11.6-MariaDB-0+deb12u1\0");
    payload.extend_from_slice(&[7, 0, 0, 0]); // thread id
    payload.extend_from_slice(b"abcdefgh\0"); // auth data part 1, filler
    let low: u16 = if offer { 0xffff } else { !0x0800 };
    payload.extend_from_slice(&low.to_le_bytes());
    payload.extend_from_slice(&[0x2d, 0x02, 0x00, 0xff, 0x81, 21]); // charset, status, caps high, auth len
    payload.extend_from_slice(&[0; 10]);
    payload.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    let mut packet = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    packet.push(0);
    packet.extend(payload);
    let mut steps = vec![Step::Send(packet)];
    if offer {
        steps.push(Step::Exact(36));
    }
    steps
}

/// RDP, [MS-RDPBCGR] 2.2.1.1–2.2.1.2: X.224 Connection Request (19 bytes),
/// Connection Confirm with RDP_NEG_RSP selecting PROTOCOL_SSL (1), or
/// standard RDP security (0).
pub fn rdp(offer: bool) -> Vec<Step> {
    let selected = if offer { 1 } else { 0 };
    vec![
        Step::Exact(19),
        Step::Send(vec![
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x08, 0x00, selected, 0x00,
            0x00, 0x00,
        ]),
    ]
}
