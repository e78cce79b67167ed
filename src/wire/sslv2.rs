//! SSLv2: the CLIENT-HELLO we send and the SERVER-HELLO we read.
//!
//! No library we use speaks SSLv2 any more (OpenSSL dropped it, tls-parser
//! never had it), yet an SSLv2-capable server is a finding on its own (DROWN
//! works against any server sharing its RSA key). SSLv2 has its own record
//! header (2 bytes with the high bit set, or 3 bytes) and messages, so it
//! lives apart from TLS. A SERVER-HELLO carries the server's certificate
//! and every cipher kind it supports, so one exchange says everything.

use std::fmt;

use super::codec::{Codec, Reader, WireError, put_u16};
use super::enums::ProtocolVersion;
use super::suites::CipherSuite;

/// An SSLv2 cipher kind (3 bytes). TLS suites offered in an SSLv2 hello take
/// the form `0x00XXYY`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sslv2CipherSpec(pub u32);

impl Sslv2CipherSpec {
    pub const RC4_128_WITH_MD5: Self = Self(0x01_0080);
    pub const RC4_128_EXPORT40_WITH_MD5: Self = Self(0x02_0080);
    pub const RC2_128_CBC_WITH_MD5: Self = Self(0x03_0080);
    pub const RC2_128_CBC_EXPORT40_WITH_MD5: Self = Self(0x04_0080);
    pub const IDEA_128_CBC_WITH_MD5: Self = Self(0x05_0080);
    pub const DES_64_CBC_WITH_MD5: Self = Self(0x06_0040);
    pub const DES_192_EDE3_CBC_WITH_MD5: Self = Self(0x07_00c0);
    /// Not in the SSLv2 draft, but some implementations offered it.
    pub const RC4_64_WITH_MD5: Self = Self(0x08_0080);

    /// The seven cipher kinds of the SSLv2 specification.
    pub const ALL_SSLV2: [Self; 7] = [
        Self::RC4_128_WITH_MD5,
        Self::RC4_128_EXPORT40_WITH_MD5,
        Self::RC2_128_CBC_WITH_MD5,
        Self::RC2_128_CBC_EXPORT40_WITH_MD5,
        Self::IDEA_128_CBC_WITH_MD5,
        Self::DES_64_CBC_WITH_MD5,
        Self::DES_192_EDE3_CBC_WITH_MD5,
    ];

    /// A TLS suite in SSLv2 form.
    pub fn from_tls(suite: CipherSuite) -> Self {
        Self(u32::from(suite.0))
    }

    /// The TLS suite, if this is one in SSLv2 form.
    pub fn as_tls(self) -> Option<CipherSuite> {
        u16::try_from(self.0).ok().map(CipherSuite)
    }

    /// The SSLv2 name (`SSL_CK_…`), for the SSLv2 kinds.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::RC4_128_WITH_MD5 => "SSL_CK_RC4_128_WITH_MD5",
            Self::RC4_128_EXPORT40_WITH_MD5 => "SSL_CK_RC4_128_EXPORT40_WITH_MD5",
            Self::RC2_128_CBC_WITH_MD5 => "SSL_CK_RC2_128_CBC_WITH_MD5",
            Self::RC2_128_CBC_EXPORT40_WITH_MD5 => "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
            Self::IDEA_128_CBC_WITH_MD5 => "SSL_CK_IDEA_128_CBC_WITH_MD5",
            Self::DES_64_CBC_WITH_MD5 => "SSL_CK_DES_64_CBC_WITH_MD5",
            Self::DES_192_EDE3_CBC_WITH_MD5 => "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
            Self::RC4_64_WITH_MD5 => "SSL_CK_RC4_64_WITH_MD5",
            _ => return None,
        })
    }

    /// An export kind (40-bit key).
    pub fn export(self) -> bool {
        matches!(
            self,
            Self::RC4_128_EXPORT40_WITH_MD5 | Self::RC2_128_CBC_EXPORT40_WITH_MD5
        )
    }
}

impl fmt::Debug for Sslv2CipherSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.as_tls()) {
            (Some(n), _) => f.write_str(n),
            (None, Some(s)) => write!(f, "{s:?}"),
            (None, None) => write!(f, "Sslv2CipherSpec({:#08x})", self.0),
        }
    }
}

impl Codec for Sslv2CipherSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes()[1..]);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        r.u24().map(Sslv2CipherSpec)
    }
}

pub const MSG_ERROR: u8 = 0;
pub const MSG_CLIENT_HELLO: u8 = 1;
pub const MSG_SERVER_HELLO: u8 = 4;

/// SSLv2 ERROR codes.
pub const NO_CIPHER_ERROR: u16 = 0x0001;
pub const NO_CERTIFICATE_ERROR: u16 = 0x0002;
pub const BAD_CERTIFICATE_ERROR: u16 = 0x0004;
pub const UNSUPPORTED_CERTIFICATE_TYPE_ERROR: u16 = 0x0006;

/// The largest body a 2-byte record header can frame.
pub const MAX_RECORD_2: usize = 0x7fff;

/// Reads one SSLv2 record and returns its body (padding, if any, stripped).
///
/// `Incomplete` until the header and the whole body are here.
pub fn read_record<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], WireError> {
    let b0 = r.u8()?;
    let b1 = r.u8()?;
    if b0 & 0x80 != 0 {
        let len = usize::from(u16::from_be_bytes([b0 & 0x7f, b1]));
        return r.take(len);
    }
    let padding = usize::from(r.u8()?);
    let len = usize::from(u16::from_be_bytes([b0 & 0x3f, b1]));
    let body = r.take(len)?;
    body.get(
        ..len
            .checked_sub(padding)
            .ok_or(WireError::Invalid("SSLv2 record padding"))?,
    )
    .ok_or(WireError::Invalid("SSLv2 record padding"))
}

/// Frames `body` in a 2-byte SSLv2 record header.
pub fn encode_record(body: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
    let len = u16::try_from(body.len())
        .ok()
        .filter(|&l| usize::from(l) <= MAX_RECORD_2)
        .ok_or(WireError::TooLarge {
            what: "SSLv2 record",
            len: body.len(),
            max: MAX_RECORD_2,
        })?;
    put_u16(out, len | 0x8000);
    out.extend_from_slice(body);
    Ok(())
}

/// An SSLv2 CLIENT-HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sslv2ClientHello {
    pub version: ProtocolVersion,
    pub cipher_specs: Vec<Sslv2CipherSpec>,
    pub session_id: Vec<u8>,
    /// 16 to 32 bytes; the caller's, as nothing here is random.
    pub challenge: Vec<u8>,
}

impl Sslv2ClientHello {
    /// A hello offering version 2 and the seven SSLv2 cipher kinds.
    pub fn new(challenge: [u8; 16]) -> Self {
        Sslv2ClientHello {
            version: ProtocolVersion::SSLv2,
            cipher_specs: Sslv2CipherSpec::ALL_SSLV2.to_vec(),
            session_id: Vec::new(),
            challenge: challenge.to_vec(),
        }
    }

    /// Also offers TLS suites, in their 3-byte form.
    pub fn with_tls_suites(mut self, suites: impl IntoIterator<Item = CipherSuite>) -> Self {
        self.cipher_specs
            .extend(suites.into_iter().map(Sslv2CipherSpec::from_tls));
        self
    }

    /// The hello in its record, ready to send.
    pub fn to_record(&self) -> Result<Vec<u8>, WireError> {
        if !(16..=32).contains(&self.challenge.len()) {
            return Err(WireError::Invalid("SSLv2 challenge length (16 to 32 bytes)"));
        }
        if self.cipher_specs.is_empty() {
            return Err(WireError::Empty("SSLv2 cipher specs"));
        }
        let mut out = Vec::new();
        encode_record(&Sslv2Message::ClientHello(self.clone()).to_bytes(), &mut out)?;
        Ok(out)
    }
}

/// An SSLv2 SERVER-HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sslv2ServerHello {
    pub session_id_hit: bool,
    /// 1 is X.509.
    pub certificate_type: u8,
    pub version: ProtocolVersion,
    /// DER, empty on a session-id hit.
    pub certificate: Vec<u8>,
    /// Every kind the server supports that we offered (servers often send
    /// all they have).
    pub cipher_specs: Vec<Sslv2CipherSpec>,
    pub connection_id: Vec<u8>,
}

/// One SSLv2 handshake message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sslv2Message {
    Error(u16),
    ClientHello(Sslv2ClientHello),
    ServerHello(Sslv2ServerHello),
    /// Any other message type, unparsed.
    Other {
        typ: u8,
        body: Vec<u8>,
    },
}

fn len16(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

impl Codec for Sslv2Message {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Sslv2Message::Error(code) => {
                out.push(MSG_ERROR);
                put_u16(out, *code);
            }
            Sslv2Message::ClientHello(h) => {
                out.push(MSG_CLIENT_HELLO);
                h.version.encode(out);
                put_u16(out, len16(3 * h.cipher_specs.len()));
                put_u16(out, len16(h.session_id.len()));
                put_u16(out, len16(h.challenge.len()));
                h.cipher_specs.iter().for_each(|c| c.encode(out));
                out.extend_from_slice(&h.session_id);
                out.extend_from_slice(&h.challenge);
            }
            Sslv2Message::ServerHello(h) => {
                out.push(MSG_SERVER_HELLO);
                out.push(u8::from(h.session_id_hit));
                out.push(h.certificate_type);
                h.version.encode(out);
                put_u16(out, len16(h.certificate.len()));
                put_u16(out, len16(3 * h.cipher_specs.len()));
                put_u16(out, len16(h.connection_id.len()));
                out.extend_from_slice(&h.certificate);
                h.cipher_specs.iter().for_each(|c| c.encode(out));
                out.extend_from_slice(&h.connection_id);
            }
            Sslv2Message::Other { typ, body } => {
                out.push(*typ);
                out.extend_from_slice(body);
            }
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        fn specs(r: &mut Reader<'_>, len: usize) -> Result<Vec<Sslv2CipherSpec>, WireError> {
            if !len.is_multiple_of(3) {
                return Err(WireError::Invalid("SSLv2 cipher specs length (not a multiple of 3)"));
            }
            let mut sub = r.sub(len, "SSLv2 cipher specs")?;
            let mut out = Vec::new();
            while sub.any_left() {
                out.push(Sslv2CipherSpec::read(&mut sub)?);
            }
            Ok(out)
        }
        let typ = r.u8()?;
        match typ {
            MSG_ERROR => Ok(Sslv2Message::Error(r.u16()?)),
            MSG_CLIENT_HELLO => {
                let version = ProtocolVersion::read(r)?;
                let specs_len = usize::from(r.u16()?);
                let sid_len = usize::from(r.u16()?);
                let challenge_len = usize::from(r.u16()?);
                let cipher_specs = specs(r, specs_len)?;
                let session_id = r.take(sid_len)?.to_vec();
                let challenge = r.take(challenge_len)?.to_vec();
                Ok(Sslv2Message::ClientHello(Sslv2ClientHello {
                    version,
                    cipher_specs,
                    session_id,
                    challenge,
                }))
            }
            MSG_SERVER_HELLO => {
                let session_id_hit = r.u8()? != 0;
                let certificate_type = r.u8()?;
                let version = ProtocolVersion::read(r)?;
                let cert_len = usize::from(r.u16()?);
                let specs_len = usize::from(r.u16()?);
                let conn_len = usize::from(r.u16()?);
                let certificate = r.take(cert_len)?.to_vec();
                let cipher_specs = specs(r, specs_len)?;
                let connection_id = r.take(conn_len)?.to_vec();
                Ok(Sslv2Message::ServerHello(Sslv2ServerHello {
                    session_id_hit,
                    certificate_type,
                    version,
                    certificate,
                    cipher_specs,
                    connection_id,
                }))
            }
            _ => Ok(Sslv2Message::Other {
                typ,
                body: r.rest().to_vec(),
            }),
        }
    }
}

/// Reads one message from a whole SSLv2 record body.
pub fn read_message(body: &[u8]) -> Result<Sslv2Message, WireError> {
    Sslv2Message::from_bytes(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::record::{Deframer, Event};

    /// An SSLv2 SERVER-HELLO as the SSLv2 draft lays it out. No SSLv2 server
    /// exists on these machines (OpenSSL 3 and GnuTLS dropped it), so this
    /// one is built by hand rather than captured.
    fn synthetic_server_hello() -> Vec<u8> {
        let cert = [0x30, 0x82, 0x00, 0x03, 1, 2, 3];
        let mut body = vec![MSG_SERVER_HELLO, 0, 1, 0x00, 0x02];
        body.extend_from_slice(&(cert.len() as u16).to_be_bytes());
        body.extend_from_slice(&[0, 9, 0, 16]);
        body.extend_from_slice(&cert);
        body.extend_from_slice(&[0x07, 0x00, 0xc0, 0x01, 0x00, 0x80, 0x02, 0x00, 0x80]);
        body.extend_from_slice(&[0xab; 16]);
        let mut out = Vec::new();
        encode_record(&body, &mut out).unwrap();
        out
    }

    #[test]
    fn exact_bytes_of_the_client_hello() {
        let wire = Sslv2ClientHello::new([2; 16]).to_record().unwrap();
        let mut expected = vec![0x80, 46, MSG_CLIENT_HELLO, 0, 2, 0, 21, 0, 0, 0, 16];
        expected.extend([
            1, 0, 0x80, 2, 0, 0x80, 3, 0, 0x80, 4, 0, 0x80, 5, 0, 0x80, 6, 0, 0x40, 7, 0, 0xc0,
        ]);
        expected.extend([2; 16]);
        assert_eq!(wire, expected);
    }

    #[test]
    fn can_round_trip_client_hello_with_tls_suites() {
        let hello = Sslv2ClientHello::new([9; 16]).with_tls_suites([CipherSuite(0xc02f), CipherSuite(0x000a)]);
        let wire = hello.to_record().unwrap();
        let body = read_record(&mut Reader::new(&wire)).unwrap();
        assert_eq!(read_message(body), Ok(Sslv2Message::ClientHello(hello.clone())));
        assert_eq!(hello.cipher_specs[7].as_tls(), Some(CipherSuite(0xc02f)));
        assert_eq!(hello.cipher_specs[0].as_tls(), None);
        assert_eq!(
            format!("{:?}", hello.cipher_specs[7]),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
        assert_eq!(format!("{:?}", Sslv2CipherSpec(0x0f0f0f)), "Sslv2CipherSpec(0x0f0f0f)");
    }

    #[test]
    fn reads_a_server_hello_through_the_deframer() {
        let mut d = Deframer::new();
        d.feed(&synthetic_server_hello()).unwrap();
        let Ok(Some(Event::Sslv2(body))) = d.next_event() else {
            panic!("no SSLv2 message")
        };
        assert!(d.is_sslv2());
        let Ok(Sslv2Message::ServerHello(sh)) = read_message(&body) else {
            panic!("not a SERVER-HELLO")
        };
        assert_eq!(sh.version, ProtocolVersion::SSLv2);
        assert!(!sh.session_id_hit);
        assert_eq!(sh.certificate_type, 1);
        assert_eq!(sh.certificate, [0x30, 0x82, 0x00, 0x03, 1, 2, 3]);
        assert_eq!(
            sh.cipher_specs,
            [
                Sslv2CipherSpec::DES_192_EDE3_CBC_WITH_MD5,
                Sslv2CipherSpec::RC4_128_WITH_MD5,
                Sslv2CipherSpec::RC4_128_EXPORT40_WITH_MD5
            ]
        );
        assert!(sh.cipher_specs[2].export());
        assert_eq!(sh.connection_id.len(), 16);
        assert_eq!(Sslv2Message::ServerHello(sh).to_bytes(), body);
    }

    #[test]
    fn any_nonzero_session_id_hit_reads_as_a_hit() {
        // Found by the `sslv2` fuzz target: the byte is a boolean on the
        // wire, so `2` reads as `true` and re-encodes as `1`.
        let msg = read_message(&[4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let Sslv2Message::ServerHello(ref sh) = msg else {
            panic!("{msg:?}")
        };
        assert!(sh.session_id_hit);
        assert_eq!(msg.to_bytes(), [4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(read_message(&msg.to_bytes()), Ok(msg));
    }

    #[test]
    fn every_prefix_of_a_server_hello_is_incomplete() {
        let wire = synthetic_server_hello();
        for n in 0..wire.len() {
            let err = read_record(&mut Reader::new(&wire[..n])).unwrap_err();
            assert!(err.is_incomplete(), "prefix {n}: {err}");
        }
    }

    #[test]
    fn reads_three_byte_headers_and_errors() {
        // 3-byte header: length 5 including 2 bytes of padding.
        let wire = [0x00, 0x05, 0x02, MSG_ERROR, 0x00, 0x01, 0xee, 0xee];
        let body = read_record(&mut Reader::new(&wire)).unwrap();
        assert_eq!(read_message(body), Ok(Sslv2Message::Error(NO_CIPHER_ERROR)));
        assert_eq!(
            read_record(&mut Reader::new(&[0x00, 0x01, 0x02, 0xee])),
            Err(WireError::Invalid("SSLv2 record padding"))
        );
    }

    #[test]
    fn rejects_malformed_server_hellos() {
        let wire = synthetic_server_hello();
        let body = read_record(&mut Reader::new(&wire)).unwrap().to_vec();
        // Cipher-spec length not a multiple of 3.
        let mut bad = body.clone();
        bad[8] = 8;
        assert!(matches!(read_message(&bad), Err(WireError::Invalid(_))));
        // Certificate length beyond the message.
        let mut bad = body.clone();
        bad[5] = 0x7f;
        assert!(matches!(read_message(&bad), Err(WireError::Truncated { .. })));
        // Trailing bytes.
        let mut bad = body;
        bad.push(0);
        assert!(matches!(read_message(&bad), Err(WireError::TrailingBytes { .. })));
        assert!(
            Sslv2ClientHello {
                challenge: vec![0; 8],
                ..Sslv2ClientHello::new([0; 16])
            }
            .to_record()
            .is_err()
        );
        assert!(encode_record(&[0; MAX_RECORD_2 + 1], &mut Vec::new()).is_err());
    }
}
