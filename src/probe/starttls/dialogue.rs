//! The plaintext dialogues that come before TLS on STARTTLS services.
//!
//! Half of the ports worth scanning (mail, directory, databases, remote
//! desktop) start in plaintext and upgrade. Judging each reply is kept here,
//! pure, so every malformed, partial or throttling answer becomes a typed
//! error that unit tests can reach without a socket; `probe::starttls` owns
//! the reads, writes and the deadline.

use std::fmt;
use std::str::FromStr;

use crate::model::record::Transport;

/// Longest reply line we accept (RFC 5321 §4.5.3.1.5 says 512 for SMTP; IMAP
/// capability lines run longer).
pub const LINE_CAP: usize = 4096;
/// Most bytes read from a server before its answer is judged complete.
pub const TOTAL_CAP: usize = 32 * 1024;

/// A protocol with an in-band upgrade to TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Starttls {
    Smtp,
    Imap,
    Pop3,
    Ftp,
    Ldap,
    Postgres,
    XmppClient,
    XmppServer,
    Mysql,
    Rdp,
}

impl Starttls {
    pub const ALL: [Starttls; 10] = [
        Starttls::Smtp,
        Starttls::Imap,
        Starttls::Pop3,
        Starttls::Ftp,
        Starttls::Ldap,
        Starttls::Postgres,
        Starttls::XmppClient,
        Starttls::XmppServer,
        Starttls::Mysql,
        Starttls::Rdp,
    ];

    /// The name used on the command line and in `transport: starttls-NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Starttls::Smtp => "smtp",
            Starttls::Imap => "imap",
            Starttls::Pop3 => "pop3",
            Starttls::Ftp => "ftp",
            Starttls::Ldap => "ldap",
            Starttls::Postgres => "postgres",
            Starttls::XmppClient => "xmpp",
            Starttls::XmppServer => "xmpp-server",
            Starttls::Mysql => "mysql",
            Starttls::Rdp => "rdp",
        }
    }

    /// The record's `service` for this protocol.
    pub fn service(self) -> &'static str {
        match self {
            Starttls::Postgres => "postgresql",
            Starttls::XmppClient | Starttls::XmppServer => "xmpp",
            other => other.name(),
        }
    }

    /// The protocol conventionally on `port`.
    pub fn for_port(port: u16) -> Option<Starttls> {
        Some(match port {
            25 | 587 => Starttls::Smtp,
            143 => Starttls::Imap,
            110 => Starttls::Pop3,
            21 => Starttls::Ftp,
            389 => Starttls::Ldap,
            5432 => Starttls::Postgres,
            5222 => Starttls::XmppClient,
            5269 => Starttls::XmppServer,
            3306 => Starttls::Mysql,
            3389 => Starttls::Rdp,
            _ => return None,
        })
    }

    /// The protocol a plaintext service named by `detect::identify` may upgrade with.
    pub fn for_service(service: &str) -> Option<Starttls> {
        Some(match service {
            "smtp" | "smtp-or-ftp" => Starttls::Smtp,
            "ftp" => Starttls::Ftp,
            "imap" => Starttls::Imap,
            "pop3" => Starttls::Pop3,
            "mysql" => Starttls::Mysql,
            _ => return None,
        })
    }

    /// The record's transport for an endpoint reached through this upgrade.
    pub fn transport(self) -> Transport {
        match self {
            Starttls::Smtp => Transport::StarttlsSmtp,
            Starttls::Imap => Transport::StarttlsImap,
            Starttls::Pop3 => Transport::StarttlsPop3,
            Starttls::Ftp => Transport::StarttlsFtp,
            Starttls::Ldap => Transport::StarttlsLdap,
            Starttls::Postgres => Transport::StarttlsPostgres,
            Starttls::XmppClient => Transport::StarttlsXmpp,
            Starttls::XmppServer => Transport::StarttlsXmppServer,
            Starttls::Mysql => Transport::StarttlsMysql,
            Starttls::Rdp => Transport::StarttlsRdp,
        }
    }

    /// Whether the server speaks first (a greeting precedes our first command).
    pub fn server_first(self) -> bool {
        matches!(
            self,
            Starttls::Smtp | Starttls::Imap | Starttls::Pop3 | Starttls::Ftp | Starttls::Mysql
        )
    }
}

impl fmt::Display for Starttls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Starttls {
    type Err = StarttlsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.to_ascii_lowercase();
        let alias = match s.as_str() {
            "postgresql" | "psql" => "postgres",
            "xmpp-client" => "xmpp",
            "submission" => "smtp",
            other => other,
        };
        Starttls::ALL
            .into_iter()
            .find(|p| p.name() == alias)
            .ok_or(StarttlsError::UnknownProtocol(s))
    }
}

/// Which upgrade a scan tries on an open port (`--starttls`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StarttlsMode {
    /// By well-known port, else by what a plaintext service says first.
    #[default]
    Auto,
    /// This protocol on every port.
    Only(Starttls),
    /// Never: implicit TLS only.
    Off,
}

impl StarttlsMode {
    /// The upgrade to try before any implicit-TLS handshake on `port`.
    pub fn for_port(self, port: u16) -> Option<Starttls> {
        match self {
            StarttlsMode::Auto => Starttls::for_port(port),
            StarttlsMode::Only(p) => Some(p),
            StarttlsMode::Off => None,
        }
    }
}

impl FromStr for StarttlsMode {
    type Err = StarttlsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(StarttlsMode::Auto),
            "none" | "off" => Ok(StarttlsMode::Off),
            other => other.parse().map(StarttlsMode::Only),
        }
    }
}

/// Why an upgrade did not happen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StarttlsError {
    #[error("unknown STARTTLS protocol `{0}`")]
    UnknownProtocol(String),
    /// The service answered in its protocol but offers no TLS upgrade.
    #[error("{proto} service does not offer STARTTLS: {reply}")]
    NotOffered { proto: Starttls, reply: String },
    /// The service turned us away for now (SMTP 421 and other 4xx, busy).
    #[error("{proto} service is throttling: {reply}")]
    Throttled { proto: Starttls, reply: String },
    /// The service refused the upgrade or the session for another reason.
    #[error("{proto} service refused: {reply}")]
    Refused { proto: Starttls, reply: String },
    /// The answer does not follow the protocol.
    #[error("{proto}: unexpected answer: {detail}")]
    Malformed { proto: Starttls, detail: String },
    #[error("{proto}: a reply exceeded {cap} bytes")]
    TooLong { proto: Starttls, cap: usize },
    #[error("{proto}: the server closed the connection during the plaintext dialogue")]
    Closed { proto: Starttls },
    #[error("{proto}: no answer within {ms} ms")]
    Timeout { proto: Starttls, ms: u128 },
    #[error("{proto}: {detail}")]
    Io { proto: Starttls, detail: String },
}

impl StarttlsError {
    /// The service is what the protocol says but has no TLS: an unsecured endpoint.
    pub fn is_not_offered(&self) -> bool {
        matches!(self, StarttlsError::NotOffered { .. })
    }

    pub fn is_throttled(&self) -> bool {
        matches!(self, StarttlsError::Throttled { .. })
    }

    /// The plaintext the server sent that this error is about, when any.
    pub fn reply(&self) -> Option<&str> {
        match self {
            StarttlsError::NotOffered { reply, .. }
            | StarttlsError::Throttled { reply, .. }
            | StarttlsError::Refused { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

/// Printable text, at most `max` characters: replies end up in records.
pub fn printable(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

/// One CRLF (or LF) terminated line at the start of `buf`: the line without
/// its terminator and the bytes consumed; `None` when incomplete.
pub fn take_line(proto: Starttls, buf: &[u8]) -> Result<Option<(String, usize)>, StarttlsError> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(i) if i > LINE_CAP => Err(StarttlsError::TooLong { proto, cap: LINE_CAP }),
        Some(i) => {
            let line = &buf[..i];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Some((String::from_utf8_lossy(line).into_owned(), i + 1)))
        }
        None if buf.len() > LINE_CAP => Err(StarttlsError::TooLong { proto, cap: LINE_CAP }),
        None => Ok(None),
    }
}

/// An SMTP or FTP reply: a three-digit code and its lines (RFC 5321 §4.2,
/// RFC 959 §4.2: `250-` continues, `250 ` ends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        printable(self.lines.join(" | ").as_bytes(), 300)
    }
}

/// A complete SMTP/FTP reply at the start of `buf`, and the bytes it used.
pub fn take_reply(proto: Starttls, buf: &[u8]) -> Result<Option<(Reply, usize)>, StarttlsError> {
    let mut at = 0;
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let Some((line, used)) = take_line(proto, &buf[at..])? else {
            return Ok(None);
        };
        at += used;
        let bytes = line.as_bytes();
        let this = match bytes.get(..3).map(std::str::from_utf8) {
            Some(Ok(digits)) if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse::<u16>().ok(),
            _ => None,
        };
        let sep = bytes.get(3).copied();
        match (code, this) {
            // FTP multi-line replies may carry lines without a code in between.
            (Some(_), None) if proto == Starttls::Ftp => {}
            (None, Some(c)) => code = Some(c),
            (Some(c), Some(t)) if c == t => {}
            _ => {
                return Err(StarttlsError::Malformed {
                    proto,
                    detail: format!("not a reply line: {}", printable(bytes, 120)),
                });
            }
        }
        lines.push(line.clone());
        if this.is_some() && sep != Some(b'-') {
            if lines.len() > 256 {
                return Err(StarttlsError::TooLong { proto, cap: TOTAL_CAP });
            }
            let code = code.unwrap_or_default();
            return Ok(Some((Reply { code, lines }, at)));
        }
    }
}

fn judge(proto: Starttls, reply: &Reply, ok: u16) -> Result<(), StarttlsError> {
    let text = reply.text();
    match reply.code {
        c if c == ok => Ok(()),
        421 => Err(StarttlsError::Throttled { proto, reply: text }),
        400..=499 if proto == Starttls::Smtp => Err(StarttlsError::Throttled { proto, reply: text }),
        _ => Err(StarttlsError::Refused { proto, reply: text }),
    }
}

/// SMTP greeting: 220, or throttling (421, any 4xx), or a refusal (554).
pub fn smtp_greeting(reply: &Reply) -> Result<(), StarttlsError> {
    judge(Starttls::Smtp, reply, 220)
}

/// The EHLO answer: 250 listing `STARTTLS` (RFC 3207 §4).
pub fn smtp_ehlo(reply: &Reply) -> Result<(), StarttlsError> {
    judge(Starttls::Smtp, reply, 250)?;
    let offers = reply
        .lines
        .iter()
        .skip(1)
        .any(|l| l.get(4..).is_some_and(|kw| kw.trim().eq_ignore_ascii_case("STARTTLS")));
    match offers {
        true => Ok(()),
        false => Err(StarttlsError::NotOffered {
            proto: Starttls::Smtp,
            reply: reply.text(),
        }),
    }
}

/// The answer to `STARTTLS`: 220 to go ahead; 454 means TLS is not available.
pub fn smtp_starttls(reply: &Reply) -> Result<(), StarttlsError> {
    match reply.code {
        454 | 502 => Err(StarttlsError::NotOffered {
            proto: Starttls::Smtp,
            reply: reply.text(),
        }),
        _ => judge(Starttls::Smtp, reply, 220),
    }
}

/// FTP greeting: 220 (RFC 959); 421 is "service not available".
pub fn ftp_greeting(reply: &Reply) -> Result<(), StarttlsError> {
    judge(Starttls::Ftp, reply, 220)
}

/// The answer to `AUTH TLS` (RFC 4217 §4): 234 to go ahead; 5xx means no TLS.
pub fn ftp_auth(reply: &Reply) -> Result<(), StarttlsError> {
    match reply.code {
        234 => Ok(()),
        421 => Err(StarttlsError::Throttled {
            proto: Starttls::Ftp,
            reply: reply.text(),
        }),
        _ => Err(StarttlsError::NotOffered {
            proto: Starttls::Ftp,
            reply: reply.text(),
        }),
    }
}

/// POP3 (RFC 2595 §4): `+OK` greeting, `+OK` to `STLS`, `-ERR` when not offered.
pub fn pop3_status(line: &str, greeting: bool) -> Result<(), StarttlsError> {
    let proto = Starttls::Pop3;
    let reply = printable(line.as_bytes(), 300);
    if line.starts_with("+OK") {
        Ok(())
    } else if line.starts_with("-ERR") {
        match greeting {
            true => Err(StarttlsError::Refused { proto, reply }),
            false => Err(StarttlsError::NotOffered { proto, reply }),
        }
    } else {
        Err(StarttlsError::Malformed { proto, detail: reply })
    }
}

/// IMAP greeting (RFC 3501 §7.1): `* OK` to go on; `* PREAUTH` forbids
/// STARTTLS; `* BYE` turns us away.
pub fn imap_greeting(line: &str) -> Result<(), StarttlsError> {
    let proto = Starttls::Imap;
    let reply = printable(line.as_bytes(), 300);
    let upper = line.to_ascii_uppercase();
    if upper.starts_with("* OK") {
        Ok(())
    } else if upper.starts_with("* PREAUTH") {
        Err(StarttlsError::NotOffered { proto, reply })
    } else if upper.starts_with("* BYE") {
        Err(StarttlsError::Throttled { proto, reply })
    } else {
        Err(StarttlsError::Malformed { proto, detail: reply })
    }
}

/// The tag our IMAP command carries.
pub const IMAP_TAG: &str = "a";

/// One line of the answer to `a STARTTLS` (RFC 3501 §6.2.1): `None` for an
/// untagged line to skip, `Some(Ok)` for `a OK`.
pub fn imap_starttls(line: &str) -> Option<Result<(), StarttlsError>> {
    let proto = Starttls::Imap;
    let reply = printable(line.as_bytes(), 300);
    if line.starts_with("* ") {
        return match line.to_ascii_uppercase().starts_with("* BYE") {
            true => Some(Err(StarttlsError::Throttled { proto, reply })),
            false => None,
        };
    }
    let rest = line.strip_prefix(IMAP_TAG).and_then(|r| r.strip_prefix(' '));
    let status = rest.map(|r| r.split(' ').next().unwrap_or("").to_ascii_uppercase());
    Some(match status.as_deref() {
        Some("OK") => Ok(()),
        Some("NO") | Some("BAD") => Err(StarttlsError::NotOffered { proto, reply }),
        _ => Err(StarttlsError::Malformed { proto, detail: reply }),
    })
}

/// The LDAP StartTLS ExtendedRequest (RFC 4511 §4.14.1), messageID 1:
/// SEQUENCE { INTEGER 1, [APPLICATION 23] { [0] "1.3.6.1.4.1.1466.20037" } }.
pub fn ldap_request() -> Vec<u8> {
    const OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
    let mut ext = vec![0x80, OID.len() as u8];
    ext.extend_from_slice(OID);
    let mut op = vec![0x77, ext.len() as u8];
    op.extend(ext);
    let mut body = vec![0x02, 0x01, 0x01];
    body.extend(op);
    let mut msg = vec![0x30, body.len() as u8];
    msg.extend(body);
    msg
}

/// One BER tag-length header: (tag, header length, content length); `None` when incomplete.
fn ber_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, StarttlsError> {
    let proto = Starttls::Ldap;
    let (Some(&tag), Some(&first)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((tag, 2, first as usize)));
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 {
        return Err(StarttlsError::Malformed {
            proto,
            detail: format!("BER length of {n} bytes"),
        });
    }
    let Some(bytes) = buf.get(2..2 + n) else {
        return Ok(None);
    };
    let len = bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
    Ok(Some((tag, 2 + n, len)))
}

/// Bytes of the first complete LDAPMessage in `buf`; `None` when incomplete.
pub fn ldap_frame_len(buf: &[u8]) -> Result<Option<usize>, StarttlsError> {
    let Some((tag, hdr, len)) = ber_header(buf)? else {
        return Ok(None);
    };
    if tag != 0x30 {
        return Err(StarttlsError::Malformed {
            proto: Starttls::Ldap,
            detail: format!("an LDAPMessage starts with SEQUENCE, not {tag:#04x}"),
        });
    }
    if hdr + len > TOTAL_CAP {
        return Err(StarttlsError::TooLong {
            proto: Starttls::Ldap,
            cap: TOTAL_CAP,
        });
    }
    Ok((buf.len() >= hdr + len).then_some(hdr + len))
}

/// Judge the ExtendedResponse (RFC 4511 §4.12): resultCode success (0) to go
/// ahead; busy (51) and unavailable (52) throttle; anything else, no TLS.
pub fn ldap_response(frame: &[u8]) -> Result<(), StarttlsError> {
    let proto = Starttls::Ldap;
    let bad = |detail: &str| StarttlsError::Malformed {
        proto,
        detail: detail.to_string(),
    };
    let (_, hdr, len) = ber_header(frame)?.ok_or_else(|| bad("truncated message"))?;
    let body = frame.get(hdr..hdr + len).ok_or_else(|| bad("truncated message"))?;
    let (tag, h, l) = ber_header(body)?.ok_or_else(|| bad("truncated messageID"))?;
    if tag != 0x02 {
        return Err(bad("no messageID"));
    }
    let op = body.get(h + l..).ok_or_else(|| bad("truncated messageID"))?;
    let (tag, h, _) = ber_header(op)?.ok_or_else(|| bad("truncated protocolOp"))?;
    if tag != 0x78 {
        return Err(bad(&format!("protocolOp {tag:#04x} is not an ExtendedResponse")));
    }
    let inner = op.get(h..).ok_or_else(|| bad("truncated ExtendedResponse"))?;
    match inner {
        [0x0a, 1, code, ..] => match code {
            0 => Ok(()),
            51 | 52 => Err(StarttlsError::Throttled {
                proto,
                reply: format!("resultCode {code}"),
            }),
            _ => Err(StarttlsError::NotOffered {
                proto,
                reply: format!("resultCode {code}"),
            }),
        },
        _ => Err(bad("no resultCode")),
    }
}

/// PostgreSQL SSLRequest (protocol §55.2.10): length 8, code 80877103.
pub const POSTGRES_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The one-byte answer: `S` to go ahead, `N` for no TLS; `E` is an old
/// server's error message, which also means no TLS.
pub fn postgres_answer(byte: u8) -> Result<(), StarttlsError> {
    let proto = Starttls::Postgres;
    match byte {
        b'S' => Ok(()),
        b'N' | b'E' => Err(StarttlsError::NotOffered {
            proto,
            reply: (byte as char).to_string(),
        }),
        other => Err(StarttlsError::Malformed {
            proto,
            detail: format!("SSLRequest answered with {other:#04x}"),
        }),
    }
}

/// The XMPP stream header (RFC 6120 §4.2); `to` is the domain the server serves.
pub fn xmpp_open(to: &str, server: bool) -> String {
    let ns = if server { "jabber:server" } else { "jabber:client" };
    let to: String = to
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        .collect();
    format!(
        "<?xml version='1.0'?><stream:stream to='{to}' xmlns='{ns}' \
         xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
}

/// The `<starttls/>` command (RFC 6120 §5.4.2.1).
pub const XMPP_STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/// Judge the server's stream so far, once its features are complete:
/// `None` while incomplete, `Some(Ok)` when `<starttls` is offered.
pub fn xmpp_features(buf: &[u8]) -> Option<Result<(), StarttlsError>> {
    let proto = Starttls::XmppClient;
    let text = String::from_utf8_lossy(buf);
    if text.contains("<stream:error") {
        return Some(Err(StarttlsError::Refused {
            proto,
            reply: printable(buf, 300),
        }));
    }
    let start = text.find("<stream:features")?;
    let features = &text[start..];
    let end = features
        .find("</stream:features>")
        .or_else(|| features.find("/>").filter(|&i| !features[..i].contains('>')))?;
    let features = &features[..end];
    Some(match features.contains("<starttls") {
        true => Ok(()),
        false => Err(StarttlsError::NotOffered {
            proto,
            reply: printable(features.as_bytes(), 300),
        }),
    })
}

/// The answer to `<starttls/>` (RFC 6120 §5.4.2.2–3): `<proceed/>` or `<failure/>`.
pub fn xmpp_proceed(buf: &[u8]) -> Option<Result<(), StarttlsError>> {
    let text = String::from_utf8_lossy(buf);
    if text.contains("<proceed") {
        Some(Ok(()))
    } else if text.contains("<failure") || text.contains("<stream:error") || text.contains("</stream:stream>") {
        Some(Err(StarttlsError::Refused {
            proto: Starttls::XmppClient,
            reply: printable(buf, 300),
        }))
    } else {
        None
    }
}

/// MySQL CLIENT_SSL capability bit.
pub const MYSQL_CLIENT_SSL: u32 = 0x0800;

/// What the MySQL initial handshake (protocol v10) says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MysqlGreeting {
    pub server_version: String,
    pub capabilities: u32,
    pub charset: u8,
}

/// Bytes of the first complete MySQL packet (3-byte length, sequence), or `None`.
pub fn mysql_packet_len(buf: &[u8]) -> Result<Option<usize>, StarttlsError> {
    let [a, b, c, _, ..] = buf else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([*a, *b, *c, 0]) as usize;
    if len + 4 > TOTAL_CAP {
        return Err(StarttlsError::TooLong {
            proto: Starttls::Mysql,
            cap: TOTAL_CAP,
        });
    }
    Ok((buf.len() >= len + 4).then_some(len + 4))
}

/// Parse the initial handshake packet (with its 4-byte header).
pub fn mysql_greeting(packet: &[u8]) -> Result<MysqlGreeting, StarttlsError> {
    let proto = Starttls::Mysql;
    let bad = |detail: String| StarttlsError::Malformed { proto, detail };
    let payload = packet.get(4..).ok_or_else(|| bad("truncated packet".into()))?;
    match payload.first() {
        Some(0x0a) => {}
        Some(0xff) => {
            // ERR packet: 0xff, error code (2 bytes), message. 1040 is "Too many connections".
            let code = payload.get(1..3).map(|c| u16::from_le_bytes([c[0], c[1]])).unwrap_or(0);
            let reply = printable(payload.get(3..).unwrap_or(&[]), 300);
            return Err(match code {
                1040 | 1129 => StarttlsError::Throttled { proto, reply },
                _ => StarttlsError::Refused { proto, reply },
            });
        }
        other => return Err(bad(format!("protocol version {other:?}"))),
    }
    let rest = &payload[1..];
    let nul = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| bad("unterminated server version".into()))?;
    let server_version = printable(&rest[..nul], 100);
    // thread id (4), auth data part 1 (8), filler (1), capabilities low (2), charset (1), status (2), capabilities high (2).
    let fixed = rest
        .get(nul + 1..nul + 1 + 20)
        .ok_or_else(|| bad("truncated handshake".into()))?;
    let low = u16::from_le_bytes([fixed[13], fixed[14]]) as u32;
    let charset = fixed[15];
    let high = u16::from_le_bytes([fixed[18], fixed[19]]) as u32;
    Ok(MysqlGreeting {
        server_version,
        capabilities: low | (high << 16),
        charset,
    })
}

/// The SSLRequest packet (sequence 1) that asks for TLS on a server with CLIENT_SSL.
pub fn mysql_ssl_request(greeting: &MysqlGreeting) -> Vec<u8> {
    // CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH.
    let caps: u32 = 0x0001 | 0x0200 | MYSQL_CLIENT_SSL | 0x8000 | 0x0008_0000;
    let mut p = vec![32, 0, 0, 1];
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(if greeting.charset == 0 { 0x21 } else { greeting.charset });
    p.extend_from_slice(&[0; 23]);
    p
}

/// X.224 Connection Request with RDP_NEG_REQ asking for TLS or CredSSP
/// ([MS-RDPBCGR] 2.2.1.1), in a TPKT (RFC 1006).
pub const RDP_CONNECTION_REQUEST: [u8; 19] = [
    0x03, 0x00, 0x00, 0x13, // TPKT v3, length 19
    0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 CR: LI 14, CR CDT, dst-ref, src-ref, class 0
    0x01, 0x00, 0x08, 0x00, // RDP_NEG_REQ, flags, length 8
    0x03, 0x00, 0x00, 0x00, // PROTOCOL_SSL | PROTOCOL_HYBRID
];

/// Bytes of the first complete TPKT in `buf`, or `None`.
pub fn tpkt_len(buf: &[u8]) -> Result<Option<usize>, StarttlsError> {
    let [v, _, hi, lo, ..] = buf else {
        return Ok(None);
    };
    let len = u16::from_be_bytes([*hi, *lo]) as usize;
    if *v != 3 || len < 7 {
        return Err(StarttlsError::Malformed {
            proto: Starttls::Rdp,
            detail: format!("not a TPKT header: {:02x?}", &buf[..4]),
        });
    }
    Ok((buf.len() >= len).then_some(len))
}

/// Judge the X.224 Connection Confirm ([MS-RDPBCGR] 2.2.1.2): TLS, CredSSP
/// (which starts with TLS) or HYBRID_EX go ahead; standard RDP security or a
/// negotiation failure mean no TLS. Returns the selected protocol.
pub fn rdp_confirm(tpkt: &[u8]) -> Result<u32, StarttlsError> {
    let proto = Starttls::Rdp;
    let x224 = tpkt.get(4..).unwrap_or(&[]);
    if x224.get(1).map(|b| b & 0xf0) != Some(0xd0) {
        return Err(StarttlsError::Malformed {
            proto,
            detail: "no X.224 Connection Confirm".into(),
        });
    }
    match x224.get(7..15) {
        Some([0x02, _, 8, 0, a, b, c, d]) => {
            let selected = u32::from_le_bytes([*a, *b, *c, *d]);
            match selected {
                0 => Err(StarttlsError::NotOffered {
                    proto,
                    reply: "standard RDP security selected".into(),
                }),
                _ => Ok(selected),
            }
        }
        Some([0x03, _, 8, 0, a, b, c, d]) => Err(StarttlsError::Refused {
            proto,
            reply: format!("RDP_NEG_FAILURE code {}", u32::from_le_bytes([*a, *b, *c, *d])),
        }),
        // No negotiation response: a server that knows only standard RDP security.
        None => Err(StarttlsError::NotOffered {
            proto,
            reply: "no RDP negotiation response (standard RDP security)".into(),
        }),
        Some(other) => Err(StarttlsError::Malformed {
            proto,
            detail: format!("negotiation response {other:02x?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> Reply {
        take_reply(Starttls::Smtp, s.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn names_round_trip_and_ports_map() {
        for p in Starttls::ALL {
            assert_eq!(p.name().parse::<Starttls>().unwrap(), p);
        }
        assert_eq!("postgresql".parse::<Starttls>().unwrap(), Starttls::Postgres);
        assert!("gopher".parse::<Starttls>().is_err());
        assert_eq!(Starttls::for_port(587), Some(Starttls::Smtp));
        assert_eq!(Starttls::for_port(3389), Some(Starttls::Rdp));
        assert_eq!(Starttls::for_port(443), None);
        assert_eq!(Starttls::Postgres.service(), "postgresql");
    }

    #[test]
    fn reads_multi_line_replies_and_their_prefixes() {
        let full = b"250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
        let (r, used) = take_reply(Starttls::Smtp, full).unwrap().unwrap();
        assert_eq!((r.code, r.lines.len(), used), (250, 3, full.len()));
        for cut in 0..full.len() {
            assert_eq!(take_reply(Starttls::Smtp, &full[..cut]).unwrap(), None, "prefix {cut}");
        }
        assert!(smtp_ehlo(&r).is_ok());
    }

    #[test]
    fn rejects_malformed_replies() {
        for bad in [&b"hello\r\n"[..], b"250-a\r\n354 b\r\n", b"\xff\xfe\r\n", b"25\r\n"] {
            assert!(
                matches!(take_reply(Starttls::Smtp, bad), Err(StarttlsError::Malformed { .. })),
                "{bad:?}"
            );
        }
        let long = vec![b'2'; LINE_CAP + 10];
        assert!(matches!(
            take_reply(Starttls::Smtp, &long),
            Err(StarttlsError::TooLong { .. })
        ));
    }

    #[test]
    fn judges_smtp_throttling_and_missing_starttls() {
        assert!(smtp_greeting(&reply("220 mx ESMTP\r\n")).is_ok());
        assert!(
            smtp_greeting(&reply("421 4.7.0 too busy\r\n"))
                .unwrap_err()
                .is_throttled()
        );
        assert!(smtp_greeting(&reply("450 later\r\n")).unwrap_err().is_throttled());
        assert!(matches!(
            smtp_greeting(&reply("554 go away\r\n")),
            Err(StarttlsError::Refused { .. })
        ));
        assert!(
            smtp_ehlo(&reply("250-mx\r\n250 SIZE 1000\r\n"))
                .unwrap_err()
                .is_not_offered()
        );
        assert!(smtp_ehlo(&reply("421 closing\r\n")).unwrap_err().is_throttled());
        assert!(smtp_starttls(&reply("220 go ahead\r\n")).is_ok());
        assert!(
            smtp_starttls(&reply("454 TLS not available\r\n"))
                .unwrap_err()
                .is_not_offered()
        );
        assert!(smtp_starttls(&reply("421 bye\r\n")).unwrap_err().is_throttled());
    }

    #[test]
    fn judges_ftp_imap_pop3() {
        let r = take_reply(Starttls::Ftp, b"220-Welcome\r\n text\r\n220 ready\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert!(ftp_greeting(&r).is_ok());
        let r = take_reply(Starttls::Ftp, b"234 AUTH TLS ok\r\n").unwrap().unwrap().0;
        assert!(ftp_auth(&r).is_ok());
        let r = take_reply(Starttls::Ftp, b"500 unknown command\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert!(ftp_auth(&r).unwrap_err().is_not_offered());
        assert!(imap_greeting("* OK ready").is_ok());
        assert!(imap_greeting("* PREAUTH hi").unwrap_err().is_not_offered());
        assert!(imap_greeting("* BYE busy").unwrap_err().is_throttled());
        assert!(matches!(imap_greeting("junk"), Err(StarttlsError::Malformed { .. })));
        assert_eq!(imap_starttls("* CAPABILITY IMAP4rev1"), None);
        assert_eq!(imap_starttls("a OK Begin TLS"), Some(Ok(())));
        assert!(imap_starttls("a BAD unknown").unwrap().unwrap_err().is_not_offered());
        assert!(matches!(
            imap_starttls("b OK"),
            Some(Err(StarttlsError::Malformed { .. }))
        ));
        assert!(pop3_status("+OK ready", true).is_ok());
        assert!(pop3_status("-ERR no", false).unwrap_err().is_not_offered());
        assert!(matches!(pop3_status("", true), Err(StarttlsError::Malformed { .. })));
    }

    #[test]
    fn builds_and_reads_ldap_starttls() {
        let req = ldap_request();
        assert_eq!(req.len(), 31);
        assert_eq!(&req[..7], &[0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18]);
        assert_eq!(ldap_frame_len(&req).unwrap(), Some(31));
        let ok = [
            0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert_eq!(ldap_frame_len(&ok).unwrap(), Some(14));
        assert!(ldap_response(&ok).is_ok());
        for cut in 0..ok.len() {
            assert_eq!(ldap_frame_len(&ok[..cut]).unwrap(), None);
            assert!(ldap_response(&ok[..cut]).is_err());
        }
        let mut no = ok;
        no[9] = 2;
        assert!(ldap_response(&no).unwrap_err().is_not_offered());
        no[9] = 51;
        assert!(ldap_response(&no).unwrap_err().is_throttled());
        assert!(ldap_frame_len(&[0x31, 0]).is_err());
        assert!(ldap_frame_len(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(ldap_response(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
    }

    #[test]
    fn judges_postgres_xmpp_mysql_rdp() {
        assert!(postgres_answer(b'S').is_ok());
        assert!(postgres_answer(b'N').unwrap_err().is_not_offered());
        assert!(matches!(postgres_answer(b'H'), Err(StarttlsError::Malformed { .. })));

        let feats = b"<stream:stream id='1'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
        assert_eq!(xmpp_features(feats), Some(Ok(())));
        for cut in 0..feats.len() - 1 {
            assert!(xmpp_features(&feats[..cut]).is_none_or(|r| r.is_ok()), "{cut}");
        }
        let plain = b"<stream:stream><stream:features><mechanisms/></stream:features>";
        assert!(xmpp_features(plain).unwrap().unwrap_err().is_not_offered());
        assert!(
            xmpp_features(b"<stream:features/>")
                .unwrap()
                .unwrap_err()
                .is_not_offered()
        );
        assert_eq!(
            xmpp_proceed(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            Some(Ok(()))
        );
        assert!(xmpp_proceed(b"<failure/>").unwrap().is_err());
        assert_eq!(xmpp_proceed(b"<proc"), None);
        assert!(xmpp_open("x.test' evil='1", false).contains("to='x.testevil1'"));

        let mut g = vec![0, 0, 0, 0, 0x0a];
        g.extend_from_slice(b"8.0.36\0");
        g.extend_from_slice(&[1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0x00, 0x08, 0x21, 2, 0, 0, 0]);
        let len = (g.len() - 4) as u8;
        g[0] = len;
        assert_eq!(mysql_packet_len(&g).unwrap(), Some(g.len()));
        let greeting = mysql_greeting(&g).unwrap();
        assert_eq!(greeting.server_version, "8.0.36");
        assert_ne!(greeting.capabilities & MYSQL_CLIENT_SSL, 0);
        assert_eq!(mysql_ssl_request(&greeting).len(), 36);
        for cut in 0..g.len() {
            assert!(mysql_greeting(&g[..cut]).is_err() || cut >= g.len());
        }
        let err = [5, 0, 0, 0, 0xff, 0x10, 0x04, b'#', b'x'];
        assert!(mysql_greeting(&err).unwrap_err().is_throttled());

        let cc = [3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0, 8, 0, 1, 0, 0, 0];
        assert_eq!(tpkt_len(&cc).unwrap(), Some(19));
        assert_eq!(rdp_confirm(&cc), Ok(1));
        let legacy = [3, 0, 0, 11, 6, 0xd0, 0, 0, 0x12, 0x34, 0];
        assert!(rdp_confirm(&legacy).unwrap_err().is_not_offered());
        let mut fail = cc;
        fail[11] = 3;
        assert!(matches!(rdp_confirm(&fail), Err(StarttlsError::Refused { .. })));
        assert!(tpkt_len(&[4, 0, 0, 19]).is_err());
        assert!(rdp_confirm(&[3, 0, 0, 7, 2, 0xe0, 0]).is_err());
    }

    #[test]
    fn never_panics_on_arbitrary_replies() {
        // xorshift: reproducible inputs without a dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"0123456789 -+*OKNOBADa\r\n<>/:'=\x00\x0a\x30\x78\x02\x03\xd0\xff";
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| match next() % 4 {
                    0 => next() as u8,
                    _ => alphabet[(next() % alphabet.len() as u64) as usize],
                })
                .collect();
            for proto in Starttls::ALL {
                if let Ok(Some((reply, used))) = take_reply(proto, &bytes) {
                    assert!(used <= bytes.len());
                    let _ = (smtp_greeting(&reply), smtp_ehlo(&reply), smtp_starttls(&reply));
                    let _ = (ftp_greeting(&reply), ftp_auth(&reply));
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = (imap_greeting(&text), imap_starttls(&text), pop3_status(&text, false));
            if let Ok(Some(n)) = ldap_frame_len(&bytes) {
                let _ = ldap_response(&bytes[..n]);
            }
            let _ = ldap_response(&bytes);
            let _ = (xmpp_features(&bytes), xmpp_proceed(&bytes));
            let _ = (mysql_packet_len(&bytes), mysql_greeting(&bytes));
            let _ = (tpkt_len(&bytes), rdp_confirm(&bytes));
            if let Some(&b) = bytes.first() {
                let _ = postgres_answer(b);
            }
        }
    }
}
