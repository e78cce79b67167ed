//! Insecure (legacy) client-initiated renegotiation (CVE-2009-3555).
//!
//! SSL Labs caps at F a server that accepts a client-initiated
//! renegotiation from a client that did not negotiate RFC 5746: a man in the
//! middle can then splice a victim's handshake into its own session and
//! prefix the victim's first request with its own bytes. RFC 5746 support
//! alone does not settle it (a server may still accept legacy clients in
//! "compatibility" mode), and neither does its absence (a server that never
//! renegotiates is not exposed): only a renegotiation attempt does.
//!
//! A renegotiation is a new ClientHello sent inside a completed, encrypted
//! session, so this check completes one real TLS 1.2 handshake as a legacy
//! client: no renegotiation_info extension, no renegotiation SCSV, no
//! extended master secret, no tickets. The cryptography is rustls's, used
//! through its public provider interface (the same primitives a custom
//! `CryptoProvider` implements): ECDHE from its key-exchange groups, the
//! TLS 1.2 PRF, and its AEAD record protection. The messages are ours, built
//! with `wire`:
//!
//! 1. ClientHello (ECDHE + AEAD suites the server accepts), the server's
//!    flight to ServerHelloDone;
//! 2. ClientKeyExchange, ChangeCipherSpec, encrypted Finished; the server's
//!    ChangeCipherSpec and Finished, decrypted and verified — the session is
//!    real;
//! 3. a second ClientHello (still no renegotiation_info), encrypted, and the
//!    server's next record, decrypted:
//!    - a ServerHello: the legacy renegotiation was accepted — vulnerable;
//!    - an alert (`no_renegotiation`, `handshake_failure`, …) or a close:
//!      refused — not vulnerable;
//!    - silence within the wait: no ServerHello came — not vulnerable, said so.
//!
//! rustls's public AEAD constructors take 32-byte keys only, so the check
//! runs on the ECDHE suites with AES-256-GCM or ChaCha20-Poly1305; a server
//! that accepts neither at TLS 1.2 is not tested, and says why. A server
//! that does not even complete the legacy handshake is not tested either.
//! Nothing is sent after the renegotiation answer: no application data.

use rustls::crypto::cipher::OutboundPlainMessage;
use rustls::crypto::cipher::{AeadKey, InboundOpaqueMessage, MessageDecrypter, MessageEncrypter, OutboundChunks};
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::{SupportedCipherSuite, Tls12CipherSuite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::probe::enumerate::Enumeration;
use crate::probe::enumerate::strategy::Version;
use crate::wire::record::{MAX_CIPHERTEXT, RECORD_HEADER_LEN, encode_records};
use crate::wire::server::EcdhParams;
use crate::wire::{
    Alert, CipherSuite, Codec, ContentType, ExtensionType, HandshakeMessage, HandshakeType, KeyExchangeParams,
    NamedGroup, ProtocolVersion, Reader, RecordHeader, ServerKeyExchange,
};

use super::conversation::{Conversation, ServerFlight, describe_alert};
use super::{Target, Verdict, VulnConfig, ms, random};

/// What the legacy handshake needs from rustls for one suite.
struct Suite {
    id: CipherSuite,
    rustls: &'static Tls12CipherSuite,
}

/// The TLS 1.2 suites the server accepts that this check can run: ECDHE key
/// exchange and an AEAD with a 32-byte key.
fn usable_suites(e: &Enumeration, provider: &CryptoProvider) -> Vec<Suite> {
    let Some(r12) = e.versions.get(&Version::Tls12) else {
        return Vec::new();
    };
    r12.accepted
        .iter()
        .filter_map(|a| {
            let rustls = provider.cipher_suites.iter().find_map(|s| match s {
                SupportedCipherSuite::Tls12(s) if u16::from(s.common.suite) == a.suite.0 => Some(*s),
                _ => None,
            })?;
            let ecdhe = a.suite.info().is_some_and(|i| i.kx == "ECDHE");
            (ecdhe && rustls.aead_alg.key_block_shape().enc_key_len == 32).then_some(Suite { id: a.suite, rustls })
        })
        .collect()
}

/// The groups rustls can compute with, offered in the hello.
const GROUPS: [NamedGroup; 3] = [NamedGroup::X25519, NamedGroup::SECP256R1, NamedGroup::SECP384R1];

pub(super) async fn check(t: &Target, e: &Enumeration, cfg: &VulnConfig) -> Verdict {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let suites = usable_suites(e, &provider);
    if suites.is_empty() {
        let why = match e.versions.contains_key(&Version::Tls12) {
            true => {
                "the server accepts no TLS 1.2 ECDHE suite with AES-256-GCM or ChaCha20-Poly1305, the only \
                     ones this check can complete a handshake with"
            }
            false => "the check completes a TLS 1.2 handshake, and the server accepts no TLS 1.2",
        };
        return Verdict::untested(why.into(), 0);
    }
    let deadline = Instant::now() + cfg.deadline;
    match renegotiate(t, e, cfg, &provider, &suites, deadline).await {
        Ok(v) => v,
        Err(why) => Verdict::untested(why, 1),
    }
}

/// A legacy hello: no renegotiation_info, SCSV, extended master secret,
/// encrypt-then-MAC or ticket, so the session is one a pre-RFC 5746 client makes.
fn legacy_hello(t: &Target, suites: &[Suite]) -> Result<HandshakeMessage, String> {
    t.builder(ProtocolVersion::TLSv1_2)
        .cipher_suites(suites.iter().map(|s| s.id))
        .supported_groups(&GROUPS)
        .without_extension(ExtensionType::RenegotiationInfo)
        .without_extension(ExtensionType::ExtendedMasterSecret)
        .without_extension(ExtensionType::EncryptThenMac)
        .without_extension(ExtensionType::SessionTicket)
        .build_handshake()
        .map_err(|e| format!("cannot build the ClientHello: {e}"))
}

async fn renegotiate(
    t: &Target,
    e: &Enumeration,
    cfg: &VulnConfig,
    provider: &CryptoProvider,
    suites: &[Suite],
    deadline: Instant,
) -> Result<Verdict, String> {
    let hello = legacy_hello(t, suites)?;
    let client_random = hello.body.get(2..34).map(<[u8]>::to_vec).unwrap_or_default();
    let mut conv = Conversation::open(t, deadline).await?;
    let flight = conv
        .hello(&hello.to_records(ProtocolVersion::TLSv1_0))
        .await
        .map_err(|why| format!("the legacy handshake: {why}"))?;
    let sh = &flight.server_hello;
    if sh.version() != ProtocolVersion::TLSv1_2 {
        return Err(format!("the server answered {} to a TLS 1.2 hello", sh.version()));
    }
    let suite = suites
        .iter()
        .find(|s| s.id == sh.cipher_suite)
        .ok_or_else(|| format!("the server chose {}, which was not offered", sh.cipher_suite.name()))?;
    if flight.certificate_request {
        return Err("the server asks for a client certificate".into());
    }
    let keys = key_exchange(provider, suite, &flight, &client_random)?;

    // ClientKeyExchange, ChangeCipherSpec, Finished.
    let mut transcript = hello.to_bytes();
    for m in &flight.messages {
        m.encode(&mut transcript);
    }
    let cke = HandshakeMessage {
        typ: HandshakeType::ClientKeyExchange,
        body: keys.client_key_exchange,
    };
    cke.encode(&mut transcript);
    let v12 = ProtocolVersion::TLSv1_2;
    let mut out = cke.to_records(v12);
    encode_records(ContentType::ChangeCipherSpec, v12, &[1], &mut out);
    let finished = HandshakeMessage {
        typ: HandshakeType::Finished,
        body: verify_data(suite, &keys.master, b"client finished", &transcript),
    };
    finished.encode(&mut transcript);
    let mut protection = keys.protection;
    out.extend(protection.seal(ContentType::Handshake, &finished.to_bytes())?);

    let mut records = Records::new(conv.into_stream(), deadline);
    records.send(&out).await?;
    // The server's ChangeCipherSpec and Finished.
    match records.next(deadline).await {
        Next::Record(ContentType::ChangeCipherSpec, _) => {}
        Next::Record(ContentType::Alert, a) => return Err(format!("the legacy handshake: {}", alert_text(&a))),
        Next::Record(ct, _) => return Err(format!("the legacy handshake: a {ct} record, not ChangeCipherSpec")),
        other => {
            return Err(format!(
                "the legacy handshake: {} instead of ChangeCipherSpec",
                other.describe()
            ));
        }
    }
    let (ct, mut sealed) = match records.next(deadline).await {
        Next::Record(ct, payload) => (ct, payload),
        other => {
            return Err(format!(
                "the legacy handshake: {} instead of Finished",
                other.describe()
            ));
        }
    };
    let server_finished = protection.open(ct, &mut sealed)?;
    let expected = HandshakeMessage {
        typ: HandshakeType::Finished,
        body: verify_data(suite, &keys.master, b"server finished", &transcript),
    };
    if server_finished.1 != expected.to_bytes() {
        return Err("the legacy handshake: the server's Finished does not verify".into());
    }

    // The renegotiation: a second legacy ClientHello, under the session's keys.
    let again = legacy_hello(t, suites)?;
    let sealed_hello = protection.seal(ContentType::Handshake, &again.to_bytes())?;
    records.send(&sealed_hello).await?;
    let session = format!(
        "a completed {} session as a legacy client (no renegotiation_info, no SCSV{}), then a second \
         ClientHello inside it",
        suite.id.name(),
        // A server answers renegotiation_info only to a client that sent
        // it, so RFC 5746 support is the enumeration's finding.
        match e.features.secure_renegotiation {
            Some(true) => "; the server supports RFC 5746",
            Some(false) => "; the server does not support RFC 5746",
            None => "",
        }
    );
    let answer = match records.next(Instant::now() + cfg.reply_wait).await {
        Next::Record(ct, mut sealed) => match protection.open(ct, &mut sealed) {
            Ok(plain) => plain,
            Err(why) => return Ok(Verdict::inconclusive(format!("{session}: {why}"), 1)),
        },
        Next::Timeout => {
            return Ok(Verdict::safe(
                format!(
                    "{session}: no ServerHello within {} ms (the renegotiation was not taken up)",
                    ms(cfg.reply_wait)
                ),
                1,
            ));
        }
        Next::Failed(why) => return Ok(Verdict::inconclusive(format!("{session}: {why}"), 1)),
        closed => return Ok(Verdict::safe(format!("{session}: {} (refused)", closed.describe()), 1)),
    };
    Ok(match answer {
        (ContentType::Handshake, body) if body.first() == Some(&HandshakeType::ServerHello.0) => Verdict::vulnerable(
            format!("{session}: the server answered with a ServerHello, accepting an unprotected renegotiation"),
            1,
        ),
        (ContentType::Alert, a) => Verdict::safe(format!("{session}: refused with {}", alert_text(&a)), 1),
        (ct, _) => Verdict::safe(format!("{session}: answered with a {ct} record, not a ServerHello"), 1),
    })
}

fn alert_text(bytes: &[u8]) -> String {
    match bytes.get(..2).map(Alert::from_bytes) {
        Some(Ok(a)) => describe_alert(&a),
        _ => "an unreadable alert".into(),
    }
}

/// Keys and the ClientKeyExchange body of the session.
struct Keys {
    client_key_exchange: Vec<u8>,
    master: Vec<u8>,
    protection: Protection,
}

fn key_exchange(
    provider: &CryptoProvider,
    suite: &Suite,
    flight: &ServerFlight,
    client_random: &[u8],
) -> Result<Keys, String> {
    let ske = flight
        .messages
        .iter()
        .find(|m| m.typ == HandshakeType::ServerKeyExchange)
        .ok_or("no ServerKeyExchange in an ECDHE handshake")?;
    let ske = ServerKeyExchange::read(&ske.body, suite.id, ProtocolVersion::TLSv1_2)
        .map_err(|e| format!("ServerKeyExchange: {e}"))?;
    let KeyExchangeParams::Ecdh(EcdhParams::Named { group, point }) = ske.params else {
        return Err("the ServerKeyExchange has no named-curve ECDHE parameters".into());
    };
    let kx_group: &dyn SupportedKxGroup = *provider
        .kx_groups
        .iter()
        .find(|g| u16::from(g.name()) == group.0)
        .ok_or_else(|| format!("the server chose the group {group}, which this check cannot compute with"))?;
    let kx = kx_group.start().map_err(|e| format!("key exchange: {e}"))?;
    let public = kx.pub_key().to_vec();
    let shared = kx.complete(&point).map_err(|e| format!("key exchange: {e}"))?;
    let Ok(public_len) = u8::try_from(public.len()) else {
        return Err("key share too long".into());
    };
    let mut client_key_exchange = vec![public_len];
    client_key_exchange.extend_from_slice(&public);

    let server_random = flight.server_hello.random.0;
    let prf = suite.rustls.prf_provider;
    let mut master = vec![0u8; 48];
    prf.for_secret(
        &mut master,
        shared.secret_bytes(),
        b"master secret",
        &[client_random, &server_random].concat(),
    );
    let shape = suite.rustls.aead_alg.key_block_shape();
    let (k, iv) = (shape.enc_key_len, shape.fixed_iv_len);
    let mut block = vec![0u8; 2 * (k + iv)];
    prf.for_secret(
        &mut block,
        &master,
        b"key expansion",
        &[&server_random[..], client_random].concat(),
    );
    let key = |range: std::ops::Range<usize>| -> Result<AeadKey, String> {
        let bytes: [u8; 32] = block
            .get(range)
            .and_then(|b| b.try_into().ok())
            .ok_or("the key block is too short")?;
        Ok(AeadKey::from(bytes))
    };
    let client_key = key(0..k)?;
    let server_key = key(k..2 * k)?;
    let client_iv = block.get(2 * k..2 * k + iv).unwrap_or_default();
    let server_iv = block.get(2 * k + iv..2 * (k + iv)).unwrap_or_default();
    let explicit = random();
    let explicit = explicit.get(..shape.explicit_nonce_len).unwrap_or_default();
    Ok(Keys {
        client_key_exchange,
        master,
        protection: Protection {
            seal: suite.rustls.aead_alg.encrypter(client_key, client_iv, explicit),
            open: suite.rustls.aead_alg.decrypter(server_key, server_iv),
            sent: 0,
            received: 0,
        },
    })
}

/// `PRF(master, label, Hash(transcript))[..12]` as a Finished body.
fn verify_data(suite: &Suite, master: &[u8], label: &[u8], transcript: &[u8]) -> Vec<u8> {
    let hash = suite.rustls.common.hash_provider.hash(transcript);
    let mut out = vec![0u8; 12];
    suite
        .rustls
        .prf_provider
        .for_secret(&mut out, master, label, hash.as_ref());
    out
}

/// Record protection in both directions, with their sequence numbers.
struct Protection {
    seal: Box<dyn MessageEncrypter>,
    open: Box<dyn MessageDecrypter>,
    sent: u64,
    received: u64,
}

impl Protection {
    fn seal(&mut self, ct: ContentType, plain: &[u8]) -> Result<Vec<u8>, String> {
        let msg = OutboundPlainMessage {
            typ: rustls::ContentType::from(ct.0),
            version: rustls::ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(plain),
        };
        let sealed = self.seal.encrypt(msg, self.sent).map_err(|e| format!("encrypt: {e}"))?;
        self.sent += 1;
        Ok(sealed.encode())
    }

    fn open(&mut self, ct: ContentType, payload: &mut [u8]) -> Result<(ContentType, Vec<u8>), String> {
        let msg = InboundOpaqueMessage::new(
            rustls::ContentType::from(ct.0),
            rustls::ProtocolVersion::TLSv1_2,
            payload,
        );
        let plain = self
            .open
            .decrypt(msg, self.received)
            .map_err(|e| format!("a record that does not decrypt ({e})"))?;
        self.received += 1;
        Ok((ContentType(u8::from(plain.typ)), plain.payload.to_vec()))
    }
}

/// What [`Records::next`] read.
enum Next {
    Record(ContentType, Vec<u8>),
    Closed,
    Reset,
    Timeout,
    Failed(String),
}

impl Next {
    fn describe(&self) -> String {
        match self {
            Next::Record(ct, payload) => format!("a {}-byte {ct} record", payload.len()),
            Next::Closed => "the connection closed".into(),
            Next::Reset => "the connection reset".into(),
            Next::Timeout => "no answer".into(),
            Next::Failed(why) => why.clone(),
        }
    }
}

/// Whole records off the socket, protected or not (the deframer keeps only
/// the length of protected ones).
struct Records {
    stream: TcpStream,
    buf: Vec<u8>,
    deadline: Instant,
}

impl Records {
    fn new(stream: TcpStream, deadline: Instant) -> Self {
        Records {
            stream,
            buf: Vec::new(),
            deadline,
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout_at(self.deadline, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("cannot send: {e}")),
            Err(_) => Err("cannot send: timed out".into()),
        }
    }

    /// The next record, or how the connection ended.
    async fn next(&mut self, until: Instant) -> Next {
        let until = until.min(self.deadline);
        let mut chunk = [0u8; 4096];
        loop {
            if self.buf.len() >= RECORD_HEADER_LEN {
                let header = match RecordHeader::read(&mut Reader::new(&self.buf)) {
                    Ok(h) => h,
                    Err(e) => return Next::Failed(format!("an unreadable record ({e})")),
                };
                let total = RECORD_HEADER_LEN + usize::from(header.len);
                if let Some(payload) = self.buf.get(RECORD_HEADER_LEN..total) {
                    let payload = payload.to_vec();
                    self.buf.drain(..total);
                    return Next::Record(header.content_type, payload);
                }
            }
            if self.buf.len() > RECORD_HEADER_LEN + MAX_CIPHERTEXT {
                return Next::Failed("an oversized record".into());
            }
            match tokio::time::timeout_at(until, self.stream.read(&mut chunk)).await {
                Err(_) => return Next::Timeout,
                Ok(Ok(0)) => return Next::Closed,
                Ok(Ok(n)) => self.buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return Next::Reset,
                Ok(Err(e)) => return Next::Failed(format!("I/O error: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn tls12(suites: &[u16]) -> Enumeration {
        let suites: Vec<CipherSuite> = suites.iter().map(|&s| CipherSuite(s)).collect();
        Enumeration::accepting(Version::Tls12, &suites)
    }

    #[test]
    fn runs_on_ecdhe_suites_with_32_byte_keys_only() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let offered = [0xc02f, 0xc030, 0xcca8, 0xc02c, 0x009d, 0x002f, 0xc014];
        let usable: Vec<u16> = usable_suites(&tls12(&offered), &provider)
            .iter()
            .map(|s| s.id.0)
            .collect();
        // ECDHE with AES-256-GCM or ChaCha20; not AES-128-GCM, static RSA or CBC.
        assert_eq!(usable, vec![0xc030, 0xcca8, 0xc02c]);
        assert!(usable_suites(&Enumeration::default(), &provider).is_empty());
    }
}
