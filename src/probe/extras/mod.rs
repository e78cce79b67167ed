//! The checks today's TLS needs beyond the enumeration (issue 22), done with
//! real rustls handshakes because TLS 1.3 hides them behind the key
//! exchange: client authentication (the CertificateRequest), real session
//! resumption (a second handshake that resumes, by TLS 1.3 ticket and by
//! TLS 1.2 session ID), early data (the ticket's `max_early_data_size`, and
//! whether 0-RTT data is accepted), certificate compression (RFC 8879), the
//! TLS 1.3 signature schemes, and every certificate the server holds (one
//! handshake per signature-scheme family).
//!
//! Cost: about 17 handshakes per endpoint, run concurrently under the
//! enumeration's per-host cap; `ScanOptions::tls_extras` (`--no-tls-extras`,
//! the `tls_extras` analysis) turns them off. [`hooks`] records what rustls
//! saw; [`judge`] (pure) reads it.

pub mod hooks;
pub mod judge;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use self::hooks::{RecordChain, RecordRequest, RecordTickets, Requested};
use self::judge::Ending;
use crate::model::cert::parse_lossy;
use crate::model::record::{CertificateDeployment, ClientAuth, Resumption as ResumptionSeen, Tls13Extras};

/// TLS 1.3 CertificateVerify schemes, each offered alone.
pub const TLS13_SCHEMES: [SignatureScheme; 8] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::ED25519,
    SignatureScheme::ED448,
];

#[derive(Clone, Debug)]
pub struct ExtrasConfig {
    /// Deadline of one handshake.
    pub deadline: Duration,
    /// Handshakes to the server at once.
    pub per_host: usize,
    /// How long to wait after a TLS 1.3 handshake for the server's tickets or
    /// its certificate_required alert.
    pub linger: Duration,
    /// The endpoint's connection cap, shared with the other stages; `None`:
    /// a cap of `per_host` of its own.
    pub slots: Option<Arc<Semaphore>>,
}

impl Default for ExtrasConfig {
    fn default() -> Self {
        ExtrasConfig {
            deadline: Duration::from_secs(5),
            per_host: 4,
            linger: Duration::from_millis(1000),
            slots: None,
        }
    }
}

/// What the extras found; the scan copies it into the record.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    pub client_auth: Option<ClientAuth>,
    pub resumption: Option<ResumptionSeen>,
    pub tls13: Option<Tls13Extras>,
    pub deployments: Vec<CertificateDeployment>,
}

/// Which versions to probe (from the enumeration or the default handshake).
#[derive(Clone, Copy, Debug)]
pub struct Spoken {
    pub tls12: bool,
    pub tls13: bool,
}

/// One handshake's outcome.
struct Outcome {
    ending: Ending,
    /// The handshake failed because our decompressor refused (see [`compression`]).
    compression_refused: bool,
    kind: Option<HandshakeKind>,
    early_data_accepted: bool,
}

/// Run every extra against `addr` (implicit TLS only).
pub async fn probe(addr: SocketAddr, sni: Option<&str>, spoken: Spoken, cfg: &ExtrasConfig) -> Extras {
    let slots = cfg
        .slots
        .clone()
        .unwrap_or_else(|| Arc::new(Semaphore::new(cfg.per_host.max(1))));
    let ctx = Ctx {
        addr,
        name: server_name(addr, sni),
        cfg: cfg.clone(),
        slots,
    };
    let (t13, t12, compression, schemes, deploy12) = tokio::join!(
        tls13_session(&ctx, spoken.tls13),
        tls12_session(&ctx, spoken.tls12),
        compression(&ctx, spoken.tls13),
        tls13_schemes(&ctx, spoken.tls13),
        tls12_deployments(&ctx, spoken.tls12),
    );
    let mut out = Extras::default();
    // Client authentication: TLS 1.3's answer when it was spoken.
    let auth = t13
        .as_ref()
        .and_then(|s| s.auth.clone())
        .or(t12.as_ref().and_then(|s| s.auth.clone()));
    out.client_auth = auth;
    if spoken.tls12 || spoken.tls13 {
        out.resumption = Some(ResumptionSeen {
            tls13_ticket: t13.as_ref().and_then(|s| s.resumed),
            tls12_session_id: t12.as_ref().and_then(|s| s.resumed),
        });
    }
    let mut seen: Seen = Vec::new();
    if spoken.tls13 {
        let (accepted, chains): (Vec<_>, Vec<_>) = schemes.into_iter().unzip();
        seen.extend(chains.into_iter().flatten());
        out.tls13 = Some(Tls13Extras {
            max_early_data_size: t13.as_ref().and_then(|s| s.max_early_data_size),
            early_data_accepted: t13.as_ref().and_then(|s| s.early_data_accepted),
            certificate_compression: compression,
            signature_algorithms: accepted.into_iter().flatten().collect(),
            ech: None,
        });
    }
    seen.extend(deploy12);
    out.deployments = judge::deployments(&seen);
    out
}

struct Ctx {
    addr: SocketAddr,
    name: ServerName<'static>,
    cfg: ExtrasConfig,
    slots: Arc<Semaphore>,
}

fn server_name(addr: SocketAddr, sni: Option<&str>) -> ServerName<'static> {
    // An address target sends no SNI: rustls sends none for an IP name.
    sni.and_then(|s| ServerName::try_from(s.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
}

fn base(
    versions: &[&'static rustls::SupportedProtocolVersion],
    provider: rustls::crypto::CryptoProvider,
    verifier: Arc<RecordChain>,
) -> Option<ClientConfig> {
    let mut c = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    c.resumption = Resumption::disabled();
    Some(c)
}

fn all_schemes() -> Vec<SignatureScheme> {
    rustls::crypto::aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .supported_schemes()
}

impl Ctx {
    /// One handshake under the per-host cap; after a completed TLS 1.3
    /// handshake, wait up to `linger` for tickets (until `enough` says so)
    /// or an alert. `early`: 0-RTT data to send.
    async fn handshake(
        &self,
        config: Arc<ClientConfig>,
        linger: bool,
        enough: &(dyn Fn() -> bool + Sync),
        early: Option<&[u8]>,
    ) -> Outcome {
        let Ok(_permit) = self.slots.acquire().await else {
            return failed();
        };
        let fut = async {
            let tcp = TcpStream::connect(self.addr).await.ok()?;
            let connector = TlsConnector::from(config).early_data(early.is_some());
            Some(connector.connect(self.name.clone(), tcp).await)
        };
        let mut tls: TlsStream<TcpStream> = match tokio::time::timeout(self.cfg.deadline, fut).await {
            Ok(Some(Ok(t))) => t,
            Ok(Some(Err(e))) => return ended_by(&e),
            _ => return failed(),
        };
        if let Some(data) = early {
            let _ = tls.write_all(data).await;
            let _ = tls.flush().await;
        }
        let mut ending = Ending::Completed;
        let tls13 = tls.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
        if linger && tls13 || early.is_some() {
            let until = tokio::time::Instant::now() + self.cfg.linger;
            let mut buf = [0u8; 512];
            while tokio::time::Instant::now() < until && !enough() {
                match tokio::time::timeout(Duration::from_millis(50), tls.read(&mut buf)).await {
                    Err(_) => continue,
                    Ok(Ok(0)) => break,
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => {
                        ending = ended_by(&e).ending;
                        break;
                    }
                }
            }
        }
        let conn = tls.get_ref().1;
        let outcome = Outcome {
            ending,
            compression_refused: false,
            kind: conn.handshake_kind(),
            early_data_accepted: conn.is_early_data_accepted(),
        };
        // close_notify: OpenSSL drops a session from its cache when the
        // connection ends without one, and the resumption check needs it.
        let _ = tokio::time::timeout(Duration::from_millis(200), tls.shutdown()).await;
        outcome
    }
}

fn failed() -> Outcome {
    Outcome {
        ending: Ending::Failed,
        compression_refused: false,
        kind: None,
        early_data_accepted: false,
    }
}

fn ended_by(e: &std::io::Error) -> Outcome {
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let ending = match tls {
        Some(rustls::Error::AlertReceived(a)) => Ending::Alert(u8::from(*a)),
        _ => Ending::Failed,
    };
    Outcome {
        ending,
        compression_refused: matches!(
            tls,
            Some(rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::InvalidCertCompression
            ))
        ),
        kind: None,
        early_data_accepted: false,
    }
}

/// What a session pair (first handshake, then a resuming one) showed.
struct Session {
    auth: Option<ClientAuth>,
    resumed: Option<bool>,
    max_early_data_size: Option<u32>,
    early_data_accepted: Option<bool>,
}

fn auth_from(req: Option<Requested>, ending: Ending, protocol: &str) -> Option<ClientAuth> {
    let mode = judge::client_auth(req.is_some(), ending)?;
    let req = req.unwrap_or_default();
    Some(ClientAuth {
        mode,
        ca_names: req.ca_names.iter().map(|n| dn_text(n)).collect(),
        signature_algorithms: req.schemes.iter().map(|s| scheme_name(*s)).collect(),
        protocol: Some(protocol.to_string()),
    })
}

/// A DistinguishedName as RFC 4514 text (hex when it does not parse).
/// rustls hands the Name with its SEQUENCE; be lenient about one without.
fn dn_text(inner: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    if let Ok((rest, name)) = x509_parser::x509::X509Name::from_der(inner)
        && rest.is_empty()
    {
        return name.to_string();
    }
    let mut der = vec![0x30];
    let len = inner.len();
    if len < 0x80 {
        der.push(len as u8);
    } else if len < 0x100 {
        der.extend([0x81, len as u8]);
    } else {
        der.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    der.extend_from_slice(inner);
    match x509_parser::x509::X509Name::from_der(&der) {
        Ok((_, name)) => name.to_string(),
        Err(_) => crate::model::ids::hex(inner),
    }
}

pub fn scheme_name(s: SignatureScheme) -> String {
    crate::wire::SignatureScheme(u16::from(s))
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:#06x}", u16::from(s)))
}

/// The request the server makes of a client that will send HTTP; harmless
/// to most others. Sent as 0-RTT data only when the ticket allows it.
const EARLY: &[u8] = b"HEAD / HTTP/1.1\r\nHost: netsensor\r\nConnection: close\r\n\r\n";

async fn tls13_session(ctx: &Ctx, on: bool) -> Option<Session> {
    if !on {
        return None;
    }
    let request = Arc::new(RecordRequest::default());
    let store = Arc::new(RecordTickets::new());
    let mut c = base(
        &[&rustls::version::TLS13],
        rustls::crypto::aws_lc_rs::default_provider(),
        Arc::new(RecordChain::new(all_schemes())),
    )?;
    c.client_auth_cert_resolver = request.clone();
    c.resumption = Resumption::store(store.clone());
    c.enable_early_data = true;
    let c = Arc::new(c);
    let has_ticket = || !store.tickets().is_empty();
    let first = ctx.handshake(c.clone(), true, &has_ticket, None).await;
    let requested = request.seen.lock().ok().and_then(|s| s.clone());
    let auth = auth_from(requested, first.ending, "TLSv1.3");
    let tickets = store.tickets();
    let max_early = tickets.iter().copied().max();
    let (resumed, early_data_accepted) = if tickets.is_empty() || first.ending != Ending::Completed {
        (None, None)
    } else {
        let early = max_early.filter(|&m| m as usize >= EARLY.len()).map(|_| EARLY);
        let never = || false;
        let second = ctx.handshake(c, early.is_some(), &never, early).await;
        (
            Some(second.kind == Some(HandshakeKind::Resumed)),
            early.map(|_| second.early_data_accepted),
        )
    };
    Some(Session {
        auth,
        resumed,
        max_early_data_size: max_early,
        early_data_accepted,
    })
}

async fn tls12_session(ctx: &Ctx, on: bool) -> Option<Session> {
    if !on {
        return None;
    }
    let request = Arc::new(RecordRequest::default());
    let mut c = base(
        &[&rustls::version::TLS12],
        rustls::crypto::aws_lc_rs::default_provider(),
        Arc::new(RecordChain::new(all_schemes())),
    )?;
    c.client_auth_cert_resolver = request.clone();
    c.resumption = Resumption::in_memory_sessions(4).tls12_resumption(Tls12Resumption::SessionIdOnly);
    let c = Arc::new(c);
    let never = || false;
    let first = ctx.handshake(c.clone(), false, &never, None).await;
    let requested = request.seen.lock().ok().and_then(|s| s.clone());
    let auth = auth_from(requested, first.ending, "TLSv1.2");
    let resumed = if first.ending == Ending::Completed {
        let second = ctx.handshake(c, false, &never, None).await;
        (second.ending == Ending::Completed).then_some(second.kind == Some(HandshakeKind::Resumed))
    } else {
        None
    };
    Some(Session {
        auth,
        resumed,
        max_early_data_size: None,
        early_data_accepted: None,
    })
}

/// RFC 8879: offer one algorithm at a time with a decompressor that refuses;
/// the handshake fails exactly when the server compressed with it.
async fn compression(ctx: &Ctx, on: bool) -> Vec<String> {
    if !on {
        return Vec::new();
    }
    let algorithms: [(&'static hooks::Refuse, &str); 3] = [
        (&hooks::REFUSE_ZLIB, "zlib"),
        (&hooks::REFUSE_BROTLI, "brotli"),
        (&hooks::REFUSE_ZSTD, "zstd"),
    ];
    let tries = algorithms.iter().map(|(d, name)| async move {
        let mut c = base(
            &[&rustls::version::TLS13],
            rustls::crypto::aws_lc_rs::default_provider(),
            Arc::new(RecordChain::new(all_schemes())),
        )?;
        c.cert_decompressors = vec![*d];
        let never = || false;
        let o = ctx.handshake(Arc::new(c), false, &never, None).await;
        o.compression_refused.then(|| name.to_string())
    });
    futures_join(tries).await.into_iter().flatten().collect()
}

/// Every offer that got a certificate.
type Seen = Vec<judge::Got>;

/// Each TLS 1.3 scheme alone: accepted when the server signs with it; the
/// chain it sent for it.
async fn tls13_schemes(ctx: &Ctx, on: bool) -> Vec<(Option<String>, Seen)> {
    if !on {
        return Vec::new();
    }
    let tries = TLS13_SCHEMES.iter().map(|&s| async move {
        let verifier = Arc::new(RecordChain::new(vec![s]));
        let Some(c) = base(
            &[&rustls::version::TLS13],
            rustls::crypto::aws_lc_rs::default_provider(),
            verifier.clone(),
        ) else {
            return (None, Vec::new());
        };
        let never = || false;
        let _ = ctx.handshake(Arc::new(c), false, &never, None).await;
        let shown = verifier.shown();
        if shown.tls13_scheme != Some(s) || shown.chain.is_empty() {
            return (None, Vec::new());
        }
        let name = scheme_name(s);
        let chain = shown.chain.iter().map(|d| parse_lossy(d)).collect();
        (
            Some(name.clone()),
            vec![(format!("TLSv1.3 {name}"), chain, shown.chain)],
        )
    });
    futures_join(tries).await
}

/// TLS 1.2 with only ECDHE-ECDSA, then only ECDHE-RSA suites: the certificate for each.
async fn tls12_deployments(ctx: &Ctx, on: bool) -> Seen {
    if !on {
        return Vec::new();
    }
    let kinds = [("ECDSA", "ECDHE_ECDSA"), ("RSA", "ECDHE_RSA")];
    let tries = kinds.iter().map(|&(label, prefix)| async move {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider
            .cipher_suites
            .retain(|s| format!("{:?}", s.suite()).starts_with(&format!("TLS_{prefix}_")));
        let verifier = Arc::new(RecordChain::new(all_schemes()));
        let c = base(&[&rustls::version::TLS12], provider, verifier.clone())?;
        let never = || false;
        let _ = ctx.handshake(Arc::new(c), false, &never, None).await;
        let shown = verifier.shown();
        (!shown.chain.is_empty()).then(|| {
            (
                format!("TLSv1.2 {label}"),
                shown.chain.iter().map(|d| parse_lossy(d)).collect(),
                shown.chain.clone(),
            )
        })
    });
    futures_join(tries).await.into_iter().flatten().collect()
}

/// Run futures concurrently (the per-host semaphore bounds them) and keep their order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    // join_all without a new dependency: poll every pending future on each wake.
    let mut pending: Vec<_> = futs.map(Box::pin).enumerate().collect();
    let mut done: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|(i, f)| match f.as_mut().poll(cx) {
            std::task::Poll::Ready(v) => {
                done[*i] = Some(v);
                false
            }
            std::task::Poll::Pending => true,
        });
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
