//! One real TLS handshake with rustls, recording what the server presented.
//!
//! This is the "what would a modern client get" view: the negotiated
//! version, suite, group and ALPN, and the chain exactly as sent. Servers
//! that only speak what rustls refuses (TLS 1.0, CBC, RSA key exchange …)
//! still show up here as TLS, through the bytes they answered with; listing
//! what they accept is the enumeration engine's job.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ProtocolVersion};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::model::record::{FailureKind, Handshake, SuiteRef};
use crate::probe::danger::AcceptAnyChain;
use crate::wire::CipherSuite;

/// How many of the server's first bytes are kept for detection and banners.
pub const FIRST_BYTES_CAP: usize = 2048;

/// Pay the crypto library's one-time costs now, on a thread of its own, so
/// that they run beside whatever the process does first (argument parsing,
/// the trust stores, the port scan) instead of inside the first handshake:
/// aws-lc seeds its random generator on first use (with its CPU-jitter
/// entropy source, tens of milliseconds of CPU; see `.cargo/config.toml`)
/// and sets up each key-exchange group's tables. Once per process; later
/// calls return at once. Results never depend on it: a handshake that
/// comes first simply waits for the same initialisation.
pub fn warm_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let spawned = std::thread::Builder::new().name("netsensor-warmup".into()).spawn(|| {
            let provider = rustls::crypto::aws_lc_rs::default_provider();
            let mut seed = [0u8; 32];
            let _ = provider.secure_random.fill(&mut seed);
            for group in provider.kx_groups {
                let _ = group.start();
            }
        });
        if let Err(e) = spawned {
            tracing::debug!("no warm-up thread ({e}): the first handshake initialises the crypto library");
        }
    });
}

/// A rustls client configured for observation; build once, use for every probe.
#[derive(Clone)]
pub struct TlsProber {
    connector: TlsConnector,
}

impl TlsProber {
    pub fn new() -> Result<Self, rustls::Error> {
        let config = observer_config(vec![b"h2".to_vec(), b"http/1.1".to_vec()])?;
        Ok(TlsProber {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }
}

/// A TLS 1.2/1.3 client that accepts any chain (see `danger`), offers `alpn`
/// and never resumes: every probe must see the server's full handshake.
pub fn observer_config(alpn: Vec<Vec<u8>>) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(AcceptAnyChain::new(&provider));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// What one handshake attempt produced.
#[derive(Debug, Default)]
pub struct TlsAttempt {
    pub handshake: Handshake,
    /// DER certificates in the order the server sent them (leaf first).
    pub chain: Vec<Vec<u8>>,
    /// The first bytes the server sent, up to [`FIRST_BYTES_CAP`].
    pub first_bytes: Vec<u8>,
}

impl TlsAttempt {
    pub fn completed(&self) -> bool {
        self.handshake.error.is_none()
    }
}

/// Run a handshake on a connected socket. `sni` is sent when given; for an
/// address target no SNI is sent (an IP literal in SNI is forbidden by RFC 6066).
pub async fn handshake(prober: &TlsProber, stream: TcpStream, sni: Option<&str>, deadline: Duration) -> TlsAttempt {
    let started = Instant::now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peer = stream.peer_addr().ok();
    let name = match sni.and_then(|s| ServerName::try_from(s.to_string()).ok()) {
        Some(n) => n,
        None => match peer {
            Some(p) => ServerName::IpAddress(p.ip().into()),
            None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        },
    };
    let tap = Tap::new(stream, seen.clone(), FIRST_BYTES_CAP);
    let result = tokio::time::timeout(deadline, prober.connector.connect(name, tap).into_fallible()).await;
    let mut attempt = TlsAttempt::default();
    match result {
        Ok(Ok(tls)) => {
            let (_, conn) = tls.get_ref();
            let h = &mut attempt.handshake;
            h.protocol = conn.protocol_version().map(|v| protocol_name(v).to_string());
            h.cipher_suite = conn
                .negotiated_cipher_suite()
                .map(|s| SuiteRef::from(CipherSuite(u16::from(s.suite()))));
            h.group = conn.negotiated_key_exchange_group().map(|g| group_name(g.name()));
            h.alpn = conn.alpn_protocol().map(|a| String::from_utf8_lossy(a).into_owned());
            attempt.chain = conn
                .peer_certificates()
                .map(|c| c.iter().map(|d| d.as_ref().to_vec()).collect())
                .unwrap_or_default();
        }
        Ok(Err((e, _))) => {
            let (kind, text) = describe_error(&e);
            attempt.handshake.error = Some(text);
            attempt.handshake.error_kind = Some(kind);
        }
        Err(_) => {
            attempt.handshake.error = Some(format!("no TLS answer within {} ms", deadline.as_millis()));
            attempt.handshake.error_kind = Some(FailureKind::Timeout);
        }
    }
    attempt.handshake.duration_ms = started.elapsed().as_millis() as u64;
    attempt.first_bytes = seen.lock().map(|v| v.clone()).unwrap_or_default();
    attempt
}

fn describe_error(e: &std::io::Error) -> (FailureKind, String) {
    use std::io::ErrorKind;
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::AlertReceived(alert) => (FailureKind::TlsAlert, format!("server sent alert {alert:?}")),
            other => (FailureKind::TlsError, other.to_string()),
        };
    }
    match e.kind() {
        ErrorKind::UnexpectedEof => (
            FailureKind::Closed,
            "server closed the connection during the handshake".into(),
        ),
        ErrorKind::ConnectionReset => (FailureKind::Reset, "connection reset during the handshake".into()),
        _ => (FailureKind::TlsError, e.to_string()),
    }
}

/// The record's protocol names: exactly `SSLv2` … `TLSv1.3`.
pub fn protocol_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::SSLv2 => "SSLv2",
        ProtocolVersion::SSLv3 => "SSLv3",
        ProtocolVersion::TLSv1_0 => "TLSv1.0",
        ProtocolVersion::TLSv1_1 => "TLSv1.1",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        _ => "unknown",
    }
}

/// IANA TLS Supported Groups names.
fn group_name(g: rustls::NamedGroup) -> String {
    use rustls::NamedGroup as G;
    match g {
        G::X25519 => "x25519".into(),
        G::X448 => "x448".into(),
        G::secp256r1 => "secp256r1".into(),
        G::secp384r1 => "secp384r1".into(),
        G::secp521r1 => "secp521r1".into(),
        G::X25519MLKEM768 => "X25519MLKEM768".into(),
        G::FFDHE2048 => "ffdhe2048".into(),
        G::FFDHE3072 => "ffdhe3072".into(),
        G::FFDHE4096 => "ffdhe4096".into(),
        other => format!("{:#06x}", u16::from(other)),
    }
}

/// A transparent stream wrapper that keeps a copy of the first `cap` bytes
/// read, shared so the copy survives a handshake that consumes the stream.
pub(crate) struct Tap {
    inner: TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
    cap: usize,
}

impl Tap {
    pub(crate) fn new(inner: TcpStream, seen: Arc<Mutex<Vec<u8>>>, cap: usize) -> Self {
        Tap { inner, seen, cap }
    }
}

impl AsyncRead for Tap {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res
            && let Some(new) = buf.filled().get(before..)
            && let Ok(mut seen) = self.seen.lock()
        {
            let room = self.cap.saturating_sub(seen.len());
            seen.extend(new.iter().take(room));
        }
        res
    }
}

impl AsyncWrite for Tap {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
