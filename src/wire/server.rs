//! What a server answers, read without any cryptography.
//!
//! Enumeration only needs to know what the server *chose*: the version,
//! suite, group and extensions in its ServerHello, the chain in its
//! Certificate, the DH or ECDH parameters in its ServerKeyExchange. All of it
//! is in plaintext before the first ChangeCipherSpec (TLS 1.3 hides the chain,
//! which the rustls handshake records instead), so these parsers read it and
//! never verify a signature: a scanner observes, it does not trust.
//!
//! Servers in the field are sloppy, so one malformed optional extension does
//! not discard the suite the server picked: it is kept as
//! [`ServerExtension::Malformed`] with the reason. Only extensions that change
//! what the rest of the message means (supported_versions, key_share) are
//! fatal when malformed.

use super::codec::{Codec, LengthPrefix, Reader, WireError, put_bytes, put_list, read_bytes, read_list, with_length};
use super::enums::{
    CertificateStatusType, Compression, EcCurveType, EcPointFormat, ExtensionType, HeartbeatMode, NamedGroup,
    ProtocolVersion, SignatureScheme,
};
use super::hello::{KeyShareEntry, Random, read_session_id, reject_duplicates};
use super::suites::{CipherSuite, SuiteInfo};

/// The fixed random that marks a ServerHello as a HelloRetryRequest
/// (RFC 8446 §4.1.3): SHA-256 of "HelloRetryRequest".
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// The last 8 bytes of a TLS 1.3 server's random when it negotiates TLS 1.2
/// (RFC 8446 §4.1.3 downgrade protection).
pub const DOWNGRADE_TLS12: [u8; 8] = *b"DOWNGRD\x01";
/// … and when it negotiates TLS 1.1 or below.
pub const DOWNGRADE_TLS11: [u8; 8] = *b"DOWNGRD\x00";

/// An extension in a ServerHello or HelloRetryRequest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerExtension {
    /// An empty server_name: the server used the name we sent.
    ServerNameAck,
    MaxFragmentLength(u8),
    /// An empty status_request: a CertificateStatus (OCSP staple) follows.
    StatusRequest,
    EcPointFormats(Vec<EcPointFormat>),
    Heartbeat(HeartbeatMode),
    /// The one protocol the server selected.
    Alpn(Vec<u8>),
    EncryptThenMac,
    ExtendedMasterSecret,
    /// An empty session_ticket: the server will issue a ticket.
    SessionTicket,
    SupportedVersion(ProtocolVersion),
    /// The server's share in a ServerHello.
    KeyShare(KeyShareEntry),
    /// The group a HelloRetryRequest asks for.
    HrrKeyShare(NamedGroup),
    Cookie(Vec<u8>),
    /// Secure renegotiation (RFC 5746); empty on an initial handshake.
    RenegotiationInfo(Vec<u8>),
    /// A known extension whose body did not parse; kept with the reason.
    Malformed {
        typ: ExtensionType,
        body: Vec<u8>,
        error: WireError,
    },
    Unknown {
        typ: ExtensionType,
        body: Vec<u8>,
    },
}

impl ServerExtension {
    pub fn typ(&self) -> ExtensionType {
        match self {
            ServerExtension::ServerNameAck => ExtensionType::ServerName,
            ServerExtension::MaxFragmentLength(_) => ExtensionType::MaxFragmentLength,
            ServerExtension::StatusRequest => ExtensionType::StatusRequest,
            ServerExtension::EcPointFormats(_) => ExtensionType::EcPointFormats,
            ServerExtension::Heartbeat(_) => ExtensionType::Heartbeat,
            ServerExtension::Alpn(_) => ExtensionType::ApplicationLayerProtocolNegotiation,
            ServerExtension::EncryptThenMac => ExtensionType::EncryptThenMac,
            ServerExtension::ExtendedMasterSecret => ExtensionType::ExtendedMasterSecret,
            ServerExtension::SessionTicket => ExtensionType::SessionTicket,
            ServerExtension::SupportedVersion(_) => ExtensionType::SupportedVersions,
            ServerExtension::KeyShare(_) | ServerExtension::HrrKeyShare(_) => ExtensionType::KeyShare,
            ServerExtension::Cookie(_) => ExtensionType::Cookie,
            ServerExtension::RenegotiationInfo(_) => ExtensionType::RenegotiationInfo,
            ServerExtension::Malformed { typ, .. } | ServerExtension::Unknown { typ, .. } => *typ,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            ServerExtension::ServerNameAck
            | ServerExtension::StatusRequest
            | ServerExtension::EncryptThenMac
            | ServerExtension::ExtendedMasterSecret
            | ServerExtension::SessionTicket => {}
            ServerExtension::MaxFragmentLength(v) => out.push(*v),
            ServerExtension::EcPointFormats(f) => put_list(out, LengthPrefix::U8, f),
            ServerExtension::Heartbeat(m) => m.encode(out),
            ServerExtension::Alpn(p) => {
                with_length(out, LengthPrefix::U16, |out| put_bytes(out, LengthPrefix::U8, p));
            }
            ServerExtension::SupportedVersion(v) => v.encode(out),
            ServerExtension::KeyShare(k) => k.encode(out),
            ServerExtension::HrrKeyShare(g) => g.encode(out),
            ServerExtension::Cookie(c) => put_bytes(out, LengthPrefix::U16, c),
            ServerExtension::RenegotiationInfo(i) => put_bytes(out, LengthPrefix::U8, i),
            ServerExtension::Malformed { body, .. } | ServerExtension::Unknown { body, .. } => {
                out.extend_from_slice(body)
            }
        }
    }

    fn read_body(typ: ExtensionType, body: &[u8], hrr: bool) -> Result<Self, WireError> {
        let mut r = Reader::complete(body, "extension");
        let parsed = match typ {
            ExtensionType::ServerName => Ok(ServerExtension::ServerNameAck),
            ExtensionType::MaxFragmentLength => r.u8().map(ServerExtension::MaxFragmentLength),
            ExtensionType::StatusRequest => Ok(ServerExtension::StatusRequest),
            ExtensionType::EcPointFormats => {
                read_list(&mut r, LengthPrefix::U8, "ec_point_formats").map(ServerExtension::EcPointFormats)
            }
            ExtensionType::Heartbeat => HeartbeatMode::read(&mut r).map(ServerExtension::Heartbeat),
            ExtensionType::ApplicationLayerProtocolNegotiation => read_alpn(&mut r).map(ServerExtension::Alpn),
            ExtensionType::EncryptThenMac => Ok(ServerExtension::EncryptThenMac),
            ExtensionType::ExtendedMasterSecret => Ok(ServerExtension::ExtendedMasterSecret),
            ExtensionType::SessionTicket => Ok(ServerExtension::SessionTicket),
            ExtensionType::SupportedVersions => ProtocolVersion::read(&mut r).map(ServerExtension::SupportedVersion),
            ExtensionType::KeyShare if hrr => NamedGroup::read(&mut r).map(ServerExtension::HrrKeyShare),
            ExtensionType::KeyShare => KeyShareEntry::read(&mut r).map(ServerExtension::KeyShare),
            ExtensionType::Cookie => read_bytes(&mut r, LengthPrefix::U16, "cookie")
                .and_then(|c| match c.is_empty() {
                    true => Err(WireError::Empty("cookie")),
                    false => Ok(c.to_vec()),
                })
                .map(ServerExtension::Cookie),
            ExtensionType::RenegotiationInfo => read_bytes(&mut r, LengthPrefix::U8, "renegotiation_info")
                .map(|i| ServerExtension::RenegotiationInfo(i.to_vec())),
            _ => {
                r.rest();
                Ok(ServerExtension::Unknown {
                    typ,
                    body: body.to_vec(),
                })
            }
        };
        let parsed = parsed.and_then(|ext| r.expect_end().map(|()| ext));
        match parsed {
            Ok(ext) => Ok(ext),
            // These change what the rest of the message means: no guessing.
            Err(e) if matches!(typ, ExtensionType::SupportedVersions | ExtensionType::KeyShare) => Err(e),
            Err(error) => Ok(ServerExtension::Malformed {
                typ,
                body: body.to_vec(),
                error,
            }),
        }
    }

    /// Reads one extension; `hrr` selects the HelloRetryRequest form of key_share.
    pub fn read(r: &mut Reader<'_>, hrr: bool) -> Result<Self, WireError> {
        let typ = ExtensionType::read(r)?;
        let body = read_bytes(r, LengthPrefix::U16, "extension")?;
        Self::read_body(typ, body, hrr)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        self.typ().encode(out);
        with_length(out, LengthPrefix::U16, |out| self.encode_body(out));
    }
}

fn read_alpn(r: &mut Reader<'_>) -> Result<Vec<u8>, WireError> {
    let mut list = r.sub_u16("ALPN list")?;
    let protocol = read_bytes(&mut list, LengthPrefix::U8, "ALPN protocol name")?;
    if protocol.is_empty() {
        return Err(WireError::Empty("ALPN protocol name"));
    }
    list.expect_end()?;
    Ok(protocol.to_vec())
}

/// A ServerHello, or a HelloRetryRequest (same message, fixed random).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// `legacy_version`; TLS 1.3 servers put TLS 1.2 here. See [`ServerHello::version`].
    pub legacy_version: ProtocolVersion,
    pub random: Random,
    pub session_id: Vec<u8>,
    pub cipher_suite: CipherSuite,
    pub compression: Compression,
    pub extensions: Vec<ServerExtension>,
}

impl ServerHello {
    pub fn is_hello_retry_request(&self) -> bool {
        self.random.0 == HELLO_RETRY_REQUEST_RANDOM
    }

    /// The negotiated version: supported_versions if present (TLS 1.3),
    /// else `legacy_version`.
    pub fn version(&self) -> ProtocolVersion {
        self.extensions
            .iter()
            .find_map(|e| match e {
                ServerExtension::SupportedVersion(v) => Some(*v),
                _ => None,
            })
            .unwrap_or(self.legacy_version)
    }

    pub fn suite_info(&self) -> Option<&'static SuiteInfo> {
        self.cipher_suite.info()
    }

    pub fn extension(&self, typ: ExtensionType) -> Option<&ServerExtension> {
        self.extensions.iter().find(|e| e.typ() == typ)
    }

    pub fn has_extension(&self, typ: ExtensionType) -> bool {
        self.extension(typ).is_some()
    }

    /// The server's key share (TLS 1.3 ServerHello).
    pub fn key_share(&self) -> Option<&KeyShareEntry> {
        self.extensions.iter().find_map(|e| match e {
            ServerExtension::KeyShare(k) => Some(k),
            _ => None,
        })
    }

    /// The group chosen: from the key share of a ServerHello or the
    /// selected group of a HelloRetryRequest (TLS 1.3 only; TLS 1.2 names its
    /// curve in the ServerKeyExchange).
    pub fn selected_group(&self) -> Option<NamedGroup> {
        self.extensions.iter().find_map(|e| match e {
            ServerExtension::KeyShare(k) => Some(k.group),
            ServerExtension::HrrKeyShare(g) => Some(*g),
            _ => None,
        })
    }

    /// renegotiation_info's content; `Some(&[])` on an initial handshake
    /// means the server supports secure renegotiation.
    pub fn renegotiation_info(&self) -> Option<&[u8]> {
        self.extensions.iter().find_map(|e| match e {
            ServerExtension::RenegotiationInfo(i) => Some(i.as_slice()),
            _ => None,
        })
    }

    pub fn extended_master_secret(&self) -> bool {
        self.has_extension(ExtensionType::ExtendedMasterSecret)
    }

    pub fn encrypt_then_mac(&self) -> bool {
        self.has_extension(ExtensionType::EncryptThenMac)
    }

    pub fn heartbeat(&self) -> Option<HeartbeatMode> {
        self.extensions.iter().find_map(|e| match e {
            ServerExtension::Heartbeat(m) => Some(*m),
            _ => None,
        })
    }

    /// The server will staple an OCSP response (TLS 1.2).
    pub fn status_request(&self) -> bool {
        self.has_extension(ExtensionType::StatusRequest)
    }

    pub fn alpn(&self) -> Option<&[u8]> {
        self.extensions.iter().find_map(|e| match e {
            ServerExtension::Alpn(p) => Some(p.as_slice()),
            _ => None,
        })
    }

    /// The server will issue a session ticket (TLS 1.2).
    pub fn session_ticket(&self) -> bool {
        self.has_extension(ExtensionType::SessionTicket)
    }

    pub fn ec_point_formats(&self) -> Option<&[EcPointFormat]> {
        self.extensions.iter().find_map(|e| match e {
            ServerExtension::EcPointFormats(f) => Some(f.as_slice()),
            _ => None,
        })
    }

    /// The HelloRetryRequest cookie.
    pub fn cookie(&self) -> Option<&[u8]> {
        self.extensions.iter().find_map(|e| match e {
            ServerExtension::Cookie(c) => Some(c.as_slice()),
            _ => None,
        })
    }

    /// Extensions that did not parse.
    pub fn malformed_extensions(&self) -> impl Iterator<Item = (ExtensionType, &WireError)> {
        self.extensions.iter().filter_map(|e| match e {
            ServerExtension::Malformed { typ, error, .. } => Some((*typ, error)),
            _ => None,
        })
    }

    /// A TLS 1.3-capable server negotiating lower marks its random; this
    /// says which mark: TLS 1.2, or TLS 1.1 for "1.1 or below".
    pub fn downgrade_sentinel(&self) -> Option<ProtocolVersion> {
        match self.random.0.get(24..) {
            Some(tail) if tail == DOWNGRADE_TLS12 => Some(ProtocolVersion::TLSv1_2),
            Some(tail) if tail == DOWNGRADE_TLS11 => Some(ProtocolVersion::TLSv1_1),
            _ => None,
        }
    }
}

impl Codec for ServerHello {
    fn encode(&self, out: &mut Vec<u8>) {
        self.legacy_version.encode(out);
        self.random.encode(out);
        put_bytes(out, LengthPrefix::U8, &self.session_id);
        self.cipher_suite.encode(out);
        self.compression.encode(out);
        if !self.extensions.is_empty() {
            with_length(out, LengthPrefix::U16, |out| {
                self.extensions.iter().for_each(|e| e.encode(out))
            });
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let legacy_version = ProtocolVersion::read(r)?;
        let random = Random::read(r)?;
        let session_id = read_session_id(r)?;
        let cipher_suite = CipherSuite::read(r)?;
        let compression = Compression::read(r)?;
        let hrr = random.0 == HELLO_RETRY_REQUEST_RANDOM;
        let mut extensions = Vec::new();
        // Before TLS 1.2 the extension block is optional, and absent when empty.
        if r.any_left() {
            let mut list = r.sub_u16("extensions")?;
            while list.any_left() {
                extensions.push(ServerExtension::read(&mut list, hrr)?);
            }
            reject_duplicates(extensions.iter().map(ServerExtension::typ))?;
        }
        Ok(ServerHello {
            legacy_version,
            random,
            session_id,
            cipher_suite,
            compression,
            extensions,
        })
    }
}

/// The most certificates we keep from one Certificate message.
pub const MAX_CERTIFICATES: usize = 32;
/// The largest single certificate we accept (real ones are 1–8 KB).
pub const MAX_CERTIFICATE_LEN: usize = 64 * 1024;

fn read_cert(r: &mut Reader<'_>) -> Result<Vec<u8>, WireError> {
    let mut cert = r.sub_u24("certificate", MAX_CERTIFICATE_LEN)?;
    let der = cert.rest();
    if der.is_empty() {
        return Err(WireError::Empty("certificate"));
    }
    Ok(der.to_vec())
}

/// A Certificate message before TLS 1.3: the chain as DER, leaf first (as
/// sent; order is the server's and is itself graded).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CertificateChain {
    pub certificates: Vec<Vec<u8>>,
}

impl Codec for CertificateChain {
    fn encode(&self, out: &mut Vec<u8>) {
        with_length(out, LengthPrefix::U24, |out| {
            self.certificates
                .iter()
                .for_each(|c| put_bytes(out, LengthPrefix::U24, c));
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let mut list = r.sub_u24("certificate list", LengthPrefix::U24.max())?;
        let mut certificates = Vec::new();
        while list.any_left() {
            if certificates.len() == MAX_CERTIFICATES {
                return Err(WireError::TooMany {
                    what: "certificates",
                    max: MAX_CERTIFICATES,
                });
            }
            certificates.push(read_cert(&mut list)?);
        }
        Ok(CertificateChain { certificates })
    }
}

/// One entry of a TLS 1.3 Certificate message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateEntry {
    pub der: Vec<u8>,
    /// The entry's extensions (OCSP, SCTs), raw.
    pub extensions: Vec<u8>,
}

/// A TLS 1.3 Certificate message (read for completeness: in TLS 1.3 it is
/// encrypted, so only a decrypting caller ever has one).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Certificate13 {
    pub context: Vec<u8>,
    pub entries: Vec<CertificateEntry>,
}

impl Codec for Certificate13 {
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, LengthPrefix::U8, &self.context);
        with_length(out, LengthPrefix::U24, |out| {
            for e in &self.entries {
                put_bytes(out, LengthPrefix::U24, &e.der);
                put_bytes(out, LengthPrefix::U16, &e.extensions);
            }
        });
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let context = read_bytes(r, LengthPrefix::U8, "certificate request context")?.to_vec();
        let mut list = r.sub_u24("certificate list", LengthPrefix::U24.max())?;
        let mut entries = Vec::new();
        while list.any_left() {
            if entries.len() == MAX_CERTIFICATES {
                return Err(WireError::TooMany {
                    what: "certificates",
                    max: MAX_CERTIFICATES,
                });
            }
            let der = read_cert(&mut list)?;
            let extensions = read_bytes(&mut list, LengthPrefix::U16, "certificate extensions")?.to_vec();
            entries.push(CertificateEntry { der, extensions });
        }
        Ok(Certificate13 { context, entries })
    }
}

/// A CertificateStatus message: the stapled OCSP response (DER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateStatus {
    pub ocsp_response: Vec<u8>,
}

impl Codec for CertificateStatus {
    fn encode(&self, out: &mut Vec<u8>) {
        CertificateStatusType::Ocsp.encode(out);
        put_bytes(out, LengthPrefix::U24, &self.ocsp_response);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        if CertificateStatusType::read(r)? != CertificateStatusType::Ocsp {
            return Err(WireError::Invalid("certificate status type"));
        }
        let ocsp_response = read_bytes(r, LengthPrefix::U24, "OCSP response")?.to_vec();
        Ok(CertificateStatus { ocsp_response })
    }
}

/// The empty ServerHelloDone message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHelloDone;

impl Codec for ServerHelloDone {
    fn encode(&self, _out: &mut Vec<u8>) {}

    fn read(_r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(ServerHelloDone)
    }
}

/// Bits in a big-endian unsigned integer, leading zeros not counted.
pub fn bit_len(be: &[u8]) -> usize {
    let mut it = be.iter().skip_while(|&&b| b == 0);
    match it.next() {
        Some(&first) => (8 - first.leading_zeros() as usize) + 8 * it.count(),
        None => 0,
    }
}

fn read_nonempty<'a>(r: &mut Reader<'a>, prefix: LengthPrefix, what: &'static str) -> Result<&'a [u8], WireError> {
    let v = read_bytes(r, prefix, what)?;
    match v.is_empty() {
        true => Err(WireError::Empty(what)),
        false => Ok(v),
    }
}

/// Finite-field Diffie-Hellman parameters (big-endian integers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhParams {
    pub p: Vec<u8>,
    pub g: Vec<u8>,
    pub ys: Vec<u8>,
}

impl DhParams {
    /// The modulus size: what Logjam and the DH-strength caps grade.
    pub fn p_bits(&self) -> usize {
        bit_len(&self.p)
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        Ok(DhParams {
            p: read_nonempty(r, LengthPrefix::U16, "DH p")?.to_vec(),
            g: read_nonempty(r, LengthPrefix::U16, "DH g")?.to_vec(),
            ys: read_nonempty(r, LengthPrefix::U16, "DH Ys")?.to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, LengthPrefix::U16, &self.p);
        put_bytes(out, LengthPrefix::U16, &self.g);
        put_bytes(out, LengthPrefix::U16, &self.ys);
    }
}

/// Elliptic-curve Diffie-Hellman parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcdhParams {
    Named {
        group: NamedGroup,
        point: Vec<u8>,
    },
    /// Explicit curve parameters (long deprecated): the curve type and the
    /// unparsed rest of the message, signature included.
    Explicit {
        curve_type: EcCurveType,
        rest: Vec<u8>,
    },
}

impl EcdhParams {
    pub fn group(&self) -> Option<NamedGroup> {
        match self {
            EcdhParams::Named { group, .. } => Some(*group),
            EcdhParams::Explicit { .. } => None,
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let curve_type = EcCurveType::read(r)?;
        match curve_type {
            EcCurveType::NamedCurve => Ok(EcdhParams::Named {
                group: NamedGroup::read(r)?,
                point: read_nonempty(r, LengthPrefix::U8, "ECDH point")?.to_vec(),
            }),
            EcCurveType::ExplicitPrime | EcCurveType::ExplicitChar2 => Ok(EcdhParams::Explicit {
                curve_type,
                rest: r.rest().to_vec(),
            }),
            _ => Err(WireError::Invalid("EC curve type")),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            EcdhParams::Named { group, point } => {
                EcCurveType::NamedCurve.encode(out);
                group.encode(out);
                put_bytes(out, LengthPrefix::U8, point);
            }
            EcdhParams::Explicit { curve_type, rest } => {
                curve_type.encode(out);
                out.extend_from_slice(rest);
            }
        }
    }
}

/// Ephemeral RSA parameters (export suites: what FREAK exploits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaParams {
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

impl RsaParams {
    pub fn modulus_bits(&self) -> usize {
        bit_len(&self.modulus)
    }
}

/// SRP parameters (RFC 5054).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrpParams {
    pub n: Vec<u8>,
    pub g: Vec<u8>,
    pub salt: Vec<u8>,
    pub b: Vec<u8>,
}

impl SrpParams {
    pub fn n_bits(&self) -> usize {
        bit_len(&self.n)
    }
}

/// The key-exchange part of a ServerKeyExchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyExchangeParams {
    /// DHE and DH_anon (which, despite the name, is ephemeral).
    Dh(DhParams),
    /// ECDHE and ECDH_anon.
    Ecdh(EcdhParams),
    Rsa(RsaParams),
    Srp(SrpParams),
    /// PSK and RSA_PSK: the identity hint is all there is.
    PskHintOnly,
}

/// A signature over the parameters; kept, never checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigitallySigned {
    /// The scheme (TLS 1.2 only; earlier versions imply it from the suite).
    pub scheme: Option<SignatureScheme>,
    pub signature: Vec<u8>,
}

/// A ServerKeyExchange. Its layout depends on the suite's key exchange and
/// on the version, so it is read with both, not through [`Codec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKeyExchange {
    pub psk_identity_hint: Option<Vec<u8>>,
    pub params: KeyExchangeParams,
    pub signature: Option<DigitallySigned>,
}

/// How a suite's ServerKeyExchange is laid out.
fn layout(info: &SuiteInfo) -> Option<(bool, KxKind, bool)> {
    let psk_hint = info.auth == "PSK" || info.kx == "PSK";
    let kind = match (info.kx, info.auth) {
        ("DHE", _) | ("DH", "NULL") => KxKind::Dh,
        ("ECDHE", _) | ("ECDH", "NULL") => KxKind::Ecdh,
        ("SRP", _) => KxKind::Srp,
        ("PSK", _) | ("RSA", "PSK") => KxKind::PskHintOnly,
        ("RSA", _) => KxKind::Rsa,
        _ => return None,
    };
    let signed = !matches!(info.auth, "NULL" | "PSK" | "SRP");
    Some((psk_hint, kind, signed))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KxKind {
    Dh,
    Ecdh,
    Srp,
    Rsa,
    PskHintOnly,
}

impl ServerKeyExchange {
    /// Reads the body of a ServerKeyExchange sent for `suite` in `version`.
    pub fn read(body: &[u8], suite: CipherSuite, version: ProtocolVersion) -> Result<Self, WireError> {
        let info = suite
            .info()
            .ok_or(WireError::Invalid("ServerKeyExchange for an unknown cipher suite"))?;
        let (psk_hint, kind, signed) =
            layout(info).ok_or(WireError::Invalid("ServerKeyExchange for a key exchange that has none"))?;
        let mut r = Reader::complete(body, "ServerKeyExchange");
        let psk_identity_hint = match psk_hint {
            true => Some(read_bytes(&mut r, LengthPrefix::U16, "PSK identity hint")?.to_vec()),
            false => None,
        };
        let params = match kind {
            KxKind::Dh => KeyExchangeParams::Dh(DhParams::read(&mut r)?),
            KxKind::Ecdh => KeyExchangeParams::Ecdh(EcdhParams::read(&mut r)?),
            KxKind::Rsa => KeyExchangeParams::Rsa(RsaParams {
                modulus: read_nonempty(&mut r, LengthPrefix::U16, "RSA modulus")?.to_vec(),
                exponent: read_nonempty(&mut r, LengthPrefix::U16, "RSA exponent")?.to_vec(),
            }),
            KxKind::Srp => KeyExchangeParams::Srp(SrpParams {
                n: read_nonempty(&mut r, LengthPrefix::U16, "SRP N")?.to_vec(),
                g: read_nonempty(&mut r, LengthPrefix::U16, "SRP g")?.to_vec(),
                salt: read_bytes(&mut r, LengthPrefix::U8, "SRP salt")?.to_vec(),
                b: read_nonempty(&mut r, LengthPrefix::U16, "SRP B")?.to_vec(),
            }),
            KxKind::PskHintOnly => KeyExchangeParams::PskHintOnly,
        };
        // Explicit curves swallow the rest: the signature is in there, unparsed.
        let signature = match signed && r.any_left() {
            true => Some(DigitallySigned {
                scheme: match version >= ProtocolVersion::TLSv1_2 {
                    true => Some(SignatureScheme::read(&mut r)?),
                    false => None,
                },
                signature: read_bytes(&mut r, LengthPrefix::U16, "signature")?.to_vec(),
            }),
            false => None,
        };
        if signed && signature.is_none() && !matches!(params, KeyExchangeParams::Ecdh(EcdhParams::Explicit { .. })) {
            return Err(WireError::Truncated {
                what: "ServerKeyExchange signature",
                need: 2,
                have: 0,
            });
        }
        r.expect_end()?;
        Ok(ServerKeyExchange {
            psk_identity_hint,
            params,
            signature,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(hint) = &self.psk_identity_hint {
            put_bytes(out, LengthPrefix::U16, hint);
        }
        match &self.params {
            KeyExchangeParams::Dh(p) => p.encode(out),
            KeyExchangeParams::Ecdh(p) => p.encode(out),
            KeyExchangeParams::Rsa(p) => {
                put_bytes(out, LengthPrefix::U16, &p.modulus);
                put_bytes(out, LengthPrefix::U16, &p.exponent);
            }
            KeyExchangeParams::Srp(p) => {
                put_bytes(out, LengthPrefix::U16, &p.n);
                put_bytes(out, LengthPrefix::U16, &p.g);
                put_bytes(out, LengthPrefix::U8, &p.salt);
                put_bytes(out, LengthPrefix::U16, &p.b);
            }
            KeyExchangeParams::PskHintOnly => {}
        }
        if let Some(sig) = &self.signature {
            if let Some(scheme) = sig.scheme {
                scheme.encode(out);
            }
            put_bytes(out, LengthPrefix::U16, &sig.signature);
        }
    }

    /// The DH modulus size, for DHE suites.
    pub fn dh_bits(&self) -> Option<usize> {
        match &self.params {
            KeyExchangeParams::Dh(p) => Some(p.p_bits()),
            _ => None,
        }
    }

    /// The curve, for ECDHE suites with a named curve.
    pub fn ecdh_group(&self) -> Option<NamedGroup> {
        match &self.params {
            KeyExchangeParams::Ecdh(p) => p.group(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::enums::{AlertDescription, AlertLevel, HandshakeType};
    use crate::wire::hello::ClientHello;
    use crate::wire::record::{Alert, Deframer, Event, HandshakeMessage, Record};

    fn capture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/wire/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn deframe(bytes: &[u8]) -> Vec<Event> {
        let mut d = Deframer::new();
        d.feed(bytes).unwrap();
        let mut events = Vec::new();
        while let Some(ev) = d.next_event().unwrap() {
            events.push(ev);
        }
        assert_eq!(d.buffered(), 0, "bytes left over");
        events
    }

    fn messages(events: &[Event]) -> Vec<&HandshakeMessage> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Handshake(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    fn types(events: &[Event]) -> Vec<HandshakeType> {
        messages(events).iter().map(|m| m.typ).collect()
    }

    fn server_hello(events: &[Event]) -> ServerHello {
        let m = messages(events)[0];
        assert_eq!(m.typ, HandshakeType::ServerHello);
        ServerHello::from_bytes(&m.body).unwrap()
    }

    fn find(events: &[Event], typ: HandshakeType) -> &[u8] {
        &messages(events).into_iter().find(|m| m.typ == typ).unwrap().body
    }

    fn localhost_cert(der: &[u8]) {
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        assert_eq!(cert.subject().to_string(), "CN=localhost");
    }

    const SERVER_CAPTURES: &[&str] = &[
        "tls12_ecdhe_rsa",
        "tls12_dhe_rsa_dh1024",
        "tls12_adh_dh1024",
        "tls12_alert_no_shared_cipher",
        "tls10_ecdhe_rsa",
        "tls13_x25519",
        "tls13_hrr_secp256r1",
        "tls13_secp256r1_placeholder",
        "tls13_secp384r1_placeholder",
        "tls13_secp521r1_placeholder",
        "tls13_x448_placeholder",
        "tls13_ffdhe2048_placeholder",
        "sslv2_hello_to_openssl3",
        "gnutls_tls12_heartbeat_3des",
    ];

    #[test]
    fn reads_openssl_tls12_ecdhe_flight() {
        let events = deframe(&capture("tls12_ecdhe_rsa.server.bin"));
        use HandshakeType as H;
        assert_eq!(
            types(&events),
            [H::ServerHello, H::Certificate, H::ServerKeyExchange, H::ServerHelloDone]
        );
        let sh = server_hello(&events);
        assert!(!sh.is_hello_retry_request());
        assert_eq!(sh.version(), ProtocolVersion::TLSv1_2);
        assert_eq!(sh.cipher_suite, CipherSuite(0xc02f));
        assert_eq!(sh.compression, Compression::Null);
        assert_eq!(sh.renegotiation_info(), Some(&[][..]));
        assert!(sh.extended_master_secret());
        assert!(!sh.encrypt_then_mac(), "no EtM for an AEAD suite");
        assert_eq!(sh.malformed_extensions().count(), 0);
        assert_eq!(sh.downgrade_sentinel(), None, "the server was limited to TLS 1.2");

        let chain = CertificateChain::from_bytes(find(&events, H::Certificate)).unwrap();
        assert_eq!(chain.certificates.len(), 1);
        localhost_cert(&chain.certificates[0]);

        let ske = ServerKeyExchange::read(find(&events, H::ServerKeyExchange), sh.cipher_suite, sh.version()).unwrap();
        assert_eq!(ske.ecdh_group(), Some(NamedGroup::X25519));
        match &ske.params {
            KeyExchangeParams::Ecdh(EcdhParams::Named { point, .. }) => assert_eq!(point.len(), 32),
            other => panic!("{other:?}"),
        }
        let sig = ske.signature.unwrap();
        assert_eq!(sig.scheme, Some(SignatureScheme::RSA_PSS_RSAE_SHA256));
        assert_eq!(sig.signature.len(), 256, "RSA-2048 signature");
        assert_eq!(
            ServerHelloDone::from_bytes(find(&events, H::ServerHelloDone)),
            Ok(ServerHelloDone)
        );
    }

    #[test]
    fn reads_dhe_parameters_and_their_size() {
        let events = deframe(&capture("tls12_dhe_rsa_dh1024.server.bin"));
        let sh = server_hello(&events);
        assert_eq!(sh.cipher_suite, CipherSuite(0x009e));
        let ske = ServerKeyExchange::read(
            find(&events, HandshakeType::ServerKeyExchange),
            sh.cipher_suite,
            sh.version(),
        )
        .unwrap();
        assert_eq!(ske.dh_bits(), Some(1024));
        match &ske.params {
            KeyExchangeParams::Dh(dh) => {
                assert_eq!(dh.g, [2]);
                assert!(dh.ys.len() <= 128);
            }
            other => panic!("{other:?}"),
        }
        assert!(ske.signature.is_some());
    }

    #[test]
    fn reads_anonymous_dh_without_certificate_or_signature() {
        let events = deframe(&capture("tls12_adh_dh1024.server.bin"));
        use HandshakeType as H;
        assert_eq!(
            types(&events),
            [H::ServerHello, H::ServerKeyExchange, H::ServerHelloDone]
        );
        let sh = server_hello(&events);
        assert_eq!(sh.cipher_suite, CipherSuite(0x0034));
        let ske = ServerKeyExchange::read(find(&events, H::ServerKeyExchange), sh.cipher_suite, sh.version()).unwrap();
        assert_eq!(ske.dh_bits(), Some(1024));
        assert_eq!(ske.signature, None);
    }

    #[test]
    fn reads_tls10_flight_with_unnamed_signature() {
        let events = deframe(&capture("tls10_ecdhe_rsa.server.bin"));
        let sh = server_hello(&events);
        assert_eq!(sh.version(), ProtocolVersion::TLSv1_0);
        assert_eq!(sh.cipher_suite, CipherSuite(0xc013));
        let ske = ServerKeyExchange::read(
            find(&events, HandshakeType::ServerKeyExchange),
            sh.cipher_suite,
            sh.version(),
        )
        .unwrap();
        assert_eq!(ske.signature.as_ref().map(|s| s.scheme), Some(None));
        // The same bytes read as TLS 1.2 misplace the signature: the version matters.
        assert!(
            ServerKeyExchange::read(
                find(&events, HandshakeType::ServerKeyExchange),
                sh.cipher_suite,
                ProtocolVersion::TLSv1_2
            )
            .is_err()
        );
    }

    #[test]
    fn reads_tls13_server_hello_then_protected_records() {
        let events = deframe(&capture("tls13_x25519.server.bin"));
        let sh = server_hello(&events);
        assert_eq!(sh.legacy_version, ProtocolVersion::TLSv1_2);
        assert_eq!(sh.version(), ProtocolVersion::TLSv1_3);
        assert_eq!(sh.cipher_suite, CipherSuite(0x1301));
        assert_eq!(sh.selected_group(), Some(NamedGroup::X25519));
        assert_eq!(sh.key_share().map(|k| k.key_exchange.len()), Some(32));
        assert_eq!(sh.downgrade_sentinel(), None);
        assert_eq!(events[1], Event::ChangeCipherSpec);
        assert!(events.len() > 2);
        assert!(events[2..].iter().all(|e| matches!(e, Event::Protected { .. })));
    }

    #[test]
    fn reads_hello_retry_request_naming_the_group() {
        let events = deframe(&capture("tls13_hrr_secp256r1.server.bin"));
        let sh = server_hello(&events);
        assert!(sh.is_hello_retry_request());
        assert_eq!(sh.version(), ProtocolVersion::TLSv1_3);
        assert_eq!(sh.selected_group(), Some(NamedGroup::SECP256R1));
        assert_eq!(sh.key_share(), None);
        assert_eq!(events[1], Event::ChangeCipherSpec);
    }

    #[test]
    fn placeholder_key_shares_are_accepted_by_openssl() {
        for (name, group) in [
            ("secp256r1", NamedGroup::SECP256R1),
            ("secp384r1", NamedGroup::SECP384R1),
            ("secp521r1", NamedGroup::SECP521R1),
            ("x448", NamedGroup::X448),
            ("ffdhe2048", NamedGroup::FFDHE2048),
        ] {
            let events = deframe(&capture(&format!("tls13_{name}_placeholder.server.bin")));
            let sh = server_hello(&events);
            assert!(!sh.is_hello_retry_request(), "{name}");
            assert_eq!(sh.version(), ProtocolVersion::TLSv1_3, "{name}");
            assert_eq!(sh.selected_group(), Some(group), "{name}");
            let ours = crate::wire::hello::KeyShareEntry::placeholder(group).unwrap();
            assert_eq!(
                sh.key_share().unwrap().key_exchange.len(),
                ours.key_exchange.len(),
                "{name}"
            );
        }
    }

    #[test]
    fn reads_alerts() {
        let fatal = |d| {
            Event::Alert(Alert {
                level: AlertLevel::Fatal,
                description: d,
            })
        };
        let events = deframe(&capture("tls12_alert_no_shared_cipher.server.bin"));
        assert_eq!(events, [fatal(AlertDescription::HandshakeFailure)]);
        // OpenSSL 3 answers an SSLv2 hello with a TLS alert, not SSLv2.
        let mut d = Deframer::new();
        d.feed(&capture("sslv2_hello_to_openssl3.server.bin")).unwrap();
        assert_eq!(d.next_event(), Ok(Some(fatal(AlertDescription::ProtocolVersion))));
        assert!(!d.is_sslv2());
    }

    #[test]
    fn reads_gnutls_extensions() {
        let events = deframe(&capture("gnutls_tls12_heartbeat_3des.server.bin"));
        let sh = server_hello(&events);
        assert_eq!(sh.cipher_suite, CipherSuite(0x000a));
        assert_eq!(sh.heartbeat(), Some(HeartbeatMode::PeerAllowedToSend));
        assert!(sh.encrypt_then_mac() && sh.extended_master_secret() && sh.session_ticket());
        assert_eq!(sh.renegotiation_info(), Some(&[][..]));
        assert_eq!(sh.downgrade_sentinel(), Some(ProtocolVersion::TLSv1_2));
        assert_eq!(sh.session_id.len(), 32);
        let chain = CertificateChain::from_bytes(find(&events, HandshakeType::Certificate)).unwrap();
        localhost_cert(&chain.certificates[0]);
        // Static RSA: no ServerKeyExchange.
        assert!(!types(&events).contains(&HandshakeType::ServerKeyExchange));
    }

    #[test]
    fn reads_and_reencodes_a_real_openssl_client_hello() {
        let bytes = capture("openssl_s_client_hello.bin");
        let mut r = Reader::new(&bytes);
        let rec = Record::read(&mut r).unwrap();
        let msg = HandshakeMessage::from_bytes(rec.payload).unwrap();
        let hello = ClientHello::from_bytes(&msg.body).unwrap();
        assert_eq!(hello.to_bytes(), msg.body, "lossless");
        use crate::wire::hello::ClientExtension as E;
        assert_eq!(
            hello.extension(ExtensionType::ServerName),
            Some(&E::ServerName(crate::wire::hello::DnsName::new("localhost").unwrap()))
        );
        assert!(matches!(
            hello.extension(ExtensionType::SupportedVersions),
            Some(E::SupportedVersions(v)) if v.contains(&ProtocolVersion::TLSv1_3)
        ));
        assert!(
            matches!(hello.extension(ExtensionType::KeyShare), Some(E::KeyShare(k)) if k[0].group == NamedGroup::X25519)
        );
        assert!(hello.cipher_suites.contains(&CipherSuite(0x1301)));
    }

    #[test]
    fn every_prefix_of_every_capture_is_incomplete_never_wrong() {
        for name in SERVER_CAPTURES {
            let bytes = capture(&format!("{name}.server.bin"));
            let full = deframe(&bytes);
            for n in 0..bytes.len() {
                let mut d = Deframer::new();
                d.feed(&bytes[..n]).unwrap();
                let mut got = Vec::new();
                loop {
                    match d.next_event() {
                        Ok(Some(ev)) => got.push(ev),
                        Ok(None) => break,
                        Err(e) => panic!("{name} prefix {n}: {e}"),
                    }
                }
                assert!(got.len() < full.len() || n == bytes.len(), "{name} prefix {n}");
                assert_eq!(got[..], full[..got.len()], "{name} prefix {n}");
            }
            // The first handshake message, framed, is incomplete at every prefix.
            if let Some(Event::Handshake(m)) = full.first() {
                let framed = m.to_bytes();
                for n in 0..framed.len() {
                    let err = HandshakeMessage::read(&mut Reader::new(&framed[..n])).unwrap_err();
                    assert!(err.is_incomplete(), "{name} prefix {n}: {err}");
                }
            }
        }
    }

    #[test]
    fn corrupted_captures_never_panic() {
        // A deterministic xorshift stream of mutations: flipped, inserted,
        // and deleted bytes in every captured flight, read by every parser.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for name in SERVER_CAPTURES {
            let original = capture(&format!("{name}.server.bin"));
            for _ in 0..300 {
                let mut bytes = original.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len().max(1);
                    match next() % 3 {
                        0 if !bytes.is_empty() => bytes[at] ^= 1 << (next() % 8),
                        1 => bytes.insert(at.min(bytes.len()), next() as u8),
                        _ if !bytes.is_empty() => {
                            bytes.remove(at);
                        }
                        _ => {}
                    }
                }
                let mut d = Deframer::new();
                let _ = d.feed(&bytes);
                while let Ok(Some(ev)) = d.next_event() {
                    if let Event::Handshake(m) = ev {
                        let _ = ServerHello::from_bytes(&m.body);
                        let _ = CertificateChain::from_bytes(&m.body);
                        let _ = Certificate13::from_bytes(&m.body);
                        let _ = CertificateStatus::from_bytes(&m.body);
                        for suite in [0xc02f, 0x009e, 0x0034, 0xc013, 0x0003, 0x00ae, 0xc01b] {
                            for v in [ProtocolVersion::TLSv1_0, ProtocolVersion::TLSv1_2] {
                                let _ = ServerKeyExchange::read(&m.body, CipherSuite(suite), v);
                            }
                        }
                    }
                }
            }
        }
    }

    fn sample_server_hello(hrr: bool) -> ServerHello {
        let mut extensions = vec![
            ServerExtension::SupportedVersion(ProtocolVersion::TLSv1_3),
            ServerExtension::RenegotiationInfo(vec![]),
            ServerExtension::ExtendedMasterSecret,
            ServerExtension::EncryptThenMac,
            ServerExtension::Heartbeat(HeartbeatMode::PeerNotAllowedToSend),
            ServerExtension::StatusRequest,
            ServerExtension::Alpn(b"h2".to_vec()),
            ServerExtension::SessionTicket,
            ServerExtension::EcPointFormats(vec![EcPointFormat::Uncompressed]),
            ServerExtension::ServerNameAck,
            ServerExtension::MaxFragmentLength(2),
            ServerExtension::Unknown {
                typ: ExtensionType(0x7777),
                body: vec![1, 2],
            },
        ];
        if hrr {
            extensions.push(ServerExtension::HrrKeyShare(NamedGroup::SECP384R1));
            extensions.push(ServerExtension::Cookie(vec![5; 40]));
        } else {
            extensions.push(ServerExtension::KeyShare(KeyShareEntry {
                group: NamedGroup::X25519,
                key_exchange: vec![1; 32],
            }));
        }
        ServerHello {
            legacy_version: ProtocolVersion::TLSv1_2,
            random: Random(if hrr { HELLO_RETRY_REQUEST_RANDOM } else { [3; 32] }),
            session_id: vec![4; 32],
            cipher_suite: CipherSuite(0x1301),
            compression: Compression::Null,
            extensions,
        }
    }

    #[test]
    fn can_round_trip_server_hello_and_hrr() {
        for hrr in [false, true] {
            let sh = sample_server_hello(hrr);
            let back = ServerHello::from_bytes(&sh.to_bytes()).unwrap();
            assert_eq!(back, sh);
            assert_eq!(back.is_hello_retry_request(), hrr);
            assert_eq!(back.alpn(), Some(&b"h2"[..]));
            assert_eq!(back.heartbeat(), Some(HeartbeatMode::PeerNotAllowedToSend));
            assert!(back.status_request() && back.session_ticket());
            assert_eq!(back.cookie().is_some(), hrr);
            let group = if hrr { NamedGroup::SECP384R1 } else { NamedGroup::X25519 };
            assert_eq!(back.selected_group(), Some(group));
        }
        // Without extensions the block is omitted, as SSLv3 servers do.
        let mut bare = sample_server_hello(false);
        bare.extensions.clear();
        assert_eq!(bare.to_bytes().len(), 2 + 32 + 1 + 32 + 2 + 1);
        assert_eq!(
            ServerHello::from_bytes(&bare.to_bytes()).unwrap().version(),
            ProtocolVersion::TLSv1_2
        );
    }

    #[test]
    fn rejects_malformed_server_hellos() {
        let good = sample_server_hello(false).to_bytes();
        let mut bad = good.clone();
        bad[34] = 33; // session id length
        assert!(ServerHello::from_bytes(&bad).is_err());
        let mut bad = good.clone();
        bad.truncate(good.len() - 1);
        assert!(matches!(
            ServerHello::from_bytes(&bad),
            Err(WireError::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad.push(0);
        assert!(ServerHello::from_bytes(&bad).is_err());
        // Duplicate extension.
        let mut dup = sample_server_hello(false);
        dup.extensions.push(ServerExtension::EncryptThenMac);
        assert_eq!(
            ServerHello::from_bytes(&dup.to_bytes()),
            Err(WireError::DuplicateExtension(ExtensionType::EncryptThenMac.0))
        );
        // A malformed supported_versions changes the meaning: fatal.
        let mut sv = sample_server_hello(false);
        sv.extensions[0] = ServerExtension::Unknown {
            typ: ExtensionType::SupportedVersions,
            body: vec![3],
        };
        assert!(ServerHello::from_bytes(&sv.to_bytes()).is_err());
        // A malformed key_share likewise.
        let mut ks = sample_server_hello(false);
        ks.extensions.pop();
        ks.extensions.push(ServerExtension::Unknown {
            typ: ExtensionType::KeyShare,
            body: vec![0, 29, 0, 5, 1],
        });
        assert!(ServerHello::from_bytes(&ks.to_bytes()).is_err());
    }

    #[test]
    fn keeps_a_malformed_optional_extension_with_the_suite() {
        let mut sh = sample_server_hello(false);
        sh.extensions[4] = ServerExtension::Unknown {
            typ: ExtensionType::Heartbeat,
            body: vec![],
        };
        let back = ServerHello::from_bytes(&sh.to_bytes()).unwrap();
        assert_eq!(back.cipher_suite, CipherSuite(0x1301));
        let bad: Vec<_> = back.malformed_extensions().collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, ExtensionType::Heartbeat);
        assert_eq!(
            back.to_bytes(),
            sh.to_bytes(),
            "malformed bodies are kept byte for byte"
        );
    }

    #[test]
    fn can_round_trip_certificates() {
        let chain = CertificateChain {
            certificates: vec![vec![0x30, 1, 2], vec![0x30; 5000]],
        };
        assert_eq!(CertificateChain::from_bytes(&chain.to_bytes()), Ok(chain));
        assert_eq!(
            CertificateChain::from_bytes(&[0, 0, 0]),
            Ok(CertificateChain::default())
        );
        let c13 = Certificate13 {
            context: vec![],
            entries: vec![CertificateEntry {
                der: vec![0x30, 9],
                extensions: vec![0, 5, 0, 0],
            }],
        };
        assert_eq!(Certificate13::from_bytes(&c13.to_bytes()), Ok(c13));
        let status = CertificateStatus {
            ocsp_response: vec![0x30, 3, 1, 1, 1],
        };
        assert_eq!(CertificateStatus::from_bytes(&status.to_bytes()), Ok(status));
    }

    #[test]
    fn rejects_malformed_certificates() {
        // A zero-length certificate.
        assert_eq!(
            CertificateChain::from_bytes(&[0, 0, 3, 0, 0, 0]),
            Err(WireError::Empty("certificate"))
        );
        // The list says more than the message holds.
        assert!(matches!(
            CertificateChain::from_bytes(&[0, 0, 9, 0, 0, 1, 1]),
            Err(WireError::Truncated { .. })
        ));
        // A certificate says more than the list holds.
        assert!(matches!(
            CertificateChain::from_bytes(&[0, 0, 4, 0, 0, 9, 1]),
            Err(WireError::Truncated {
                what: "certificate",
                need: 9,
                have: 1
            })
        ));
        // One certificate over the size cap, refused on its length.
        let mut huge = vec![0x01, 0x00, 0x04, 0x01, 0x00, 0x01];
        huge.resize(huge.len() + MAX_CERTIFICATE_LEN + 1, 0x30);
        assert!(matches!(
            CertificateChain::from_bytes(&huge),
            Err(WireError::TooLarge {
                what: "certificate",
                ..
            })
        ));
        // More certificates than the cap.
        let many = CertificateChain {
            certificates: vec![vec![0x30]; MAX_CERTIFICATES + 1],
        };
        assert_eq!(
            CertificateChain::from_bytes(&many.to_bytes()),
            Err(WireError::TooMany {
                what: "certificates",
                max: MAX_CERTIFICATES
            })
        );
        assert!(CertificateStatus::from_bytes(&[2, 0, 0, 1, 0]).is_err());
        assert!(ServerHelloDone::from_bytes(&[0]).is_err());
    }

    fn ske(
        params: KeyExchangeParams,
        hint: Option<Vec<u8>>,
        scheme: Option<SignatureScheme>,
        signed: bool,
    ) -> ServerKeyExchange {
        ServerKeyExchange {
            psk_identity_hint: hint,
            params,
            signature: signed.then(|| DigitallySigned {
                scheme,
                signature: vec![7; 64],
            }),
        }
    }

    #[test]
    fn can_round_trip_server_key_exchange_for_each_kind() {
        let dh = DhParams {
            p: vec![0xff; 256],
            g: vec![2],
            ys: vec![9; 256],
        };
        let ec = EcdhParams::Named {
            group: NamedGroup::SECP256R1,
            point: vec![4; 65],
        };
        let rsa = RsaParams {
            modulus: vec![0xc0; 64],
            exponent: vec![1, 0, 1],
        };
        let srp = SrpParams {
            n: vec![0xee; 128],
            g: vec![2],
            salt: vec![1; 16],
            b: vec![3; 128],
        };
        let v12 = ProtocolVersion::TLSv1_2;
        let cases = [
            (
                0x009e,
                ske(
                    KeyExchangeParams::Dh(dh.clone()),
                    None,
                    Some(SignatureScheme::RSA_PKCS1_SHA256),
                    true,
                ),
                v12,
            ),
            (0x0034, ske(KeyExchangeParams::Dh(dh.clone()), None, None, false), v12),
            (
                0xc02b,
                ske(
                    KeyExchangeParams::Ecdh(ec.clone()),
                    None,
                    Some(SignatureScheme::ED25519),
                    true,
                ),
                v12,
            ),
            (0xc018, ske(KeyExchangeParams::Ecdh(ec.clone()), None, None, false), v12),
            (
                0x0003,
                ske(KeyExchangeParams::Rsa(rsa.clone()), None, None, true),
                ProtocolVersion::TLSv1_0,
            ),
            (
                0x008e,
                ske(KeyExchangeParams::Dh(dh.clone()), Some(b"hint".to_vec()), None, false),
                v12,
            ),
            (0xc035, ske(KeyExchangeParams::Ecdh(ec), Some(vec![]), None, false), v12),
            (
                0x008c,
                ske(KeyExchangeParams::PskHintOnly, Some(b"id".to_vec()), None, false),
                v12,
            ),
            (
                0x0094,
                ske(KeyExchangeParams::PskHintOnly, Some(b"id".to_vec()), None, false),
                v12,
            ),
            (0xc01d, ske(KeyExchangeParams::Srp(srp.clone()), None, None, false), v12),
            (
                0xc021,
                ske(
                    KeyExchangeParams::Srp(srp),
                    None,
                    Some(SignatureScheme::RSA_PKCS1_SHA1),
                    true,
                ),
                v12,
            ),
        ];
        for (suite, value, version) in cases {
            let mut bytes = Vec::new();
            value.encode(&mut bytes);
            assert_eq!(
                ServerKeyExchange::read(&bytes, CipherSuite(suite), version),
                Ok(value),
                "{suite:#06x}"
            );
        }
        let mut bytes = Vec::new();
        ske(KeyExchangeParams::Rsa(rsa), None, None, true).encode(&mut bytes);
        let back = ServerKeyExchange::read(&bytes, CipherSuite(0x0003), ProtocolVersion::TLSv1_0).unwrap();
        assert!(matches!(back.params, KeyExchangeParams::Rsa(ref p) if p.modulus_bits() == 512));
    }

    #[test]
    fn rejects_malformed_server_key_exchange() {
        let v = ProtocolVersion::TLSv1_2;
        let ecdhe = CipherSuite(0xc02f);
        // Suites without a ServerKeyExchange, or unknown ones.
        assert!(ServerKeyExchange::read(&[3, 0, 23, 1, 4], CipherSuite(0x1301), v).is_err());
        assert!(ServerKeyExchange::read(&[3, 0, 23, 1, 4], CipherSuite(0xfefe), v).is_err());
        assert!(ServerKeyExchange::read(&[3, 0, 23, 1, 4], CipherSuite(0x000d), v).is_err());
        // Signed suite, signature missing.
        assert!(matches!(
            ServerKeyExchange::read(&[3, 0, 23, 1, 4], ecdhe, v),
            Err(WireError::Truncated { .. })
        ));
        // Empty point, bad curve type, trailing bytes after the signature.
        assert_eq!(
            ServerKeyExchange::read(&[3, 0, 23, 0], ecdhe, v),
            Err(WireError::Empty("ECDH point"))
        );
        assert_eq!(
            ServerKeyExchange::read(&[9, 0, 23, 1, 4], ecdhe, v),
            Err(WireError::Invalid("EC curve type"))
        );
        assert!(matches!(
            ServerKeyExchange::read(&[3, 0, 23, 1, 4, 4, 1, 0, 1, 7, 0], ecdhe, v),
            Err(WireError::TrailingBytes { .. })
        ));
        // Empty DH prime.
        assert_eq!(
            ServerKeyExchange::read(&[0, 0, 0, 1, 2, 0, 1, 5], CipherSuite(0x0034), v),
            Err(WireError::Empty("DH p"))
        );
        // Explicit curves are reported, not parsed.
        let explicit = ServerKeyExchange::read(&[1, 9, 9, 9], ecdhe, v).unwrap();
        assert!(matches!(
            explicit.params,
            KeyExchangeParams::Ecdh(EcdhParams::Explicit { .. })
        ));
        assert_eq!(explicit.ecdh_group(), None);
    }

    #[test]
    fn counts_bits() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0x7f; 128]), 1023);
    }
}
