//! rustls hooks that record what a server did in the encrypted part of a
//! TLS 1.3 handshake (where a hand-built hello cannot look): the
//! CertificateRequest (through the client-certificate resolver), the
//! NewSessionTicket (through the session store), the certificate's signature
//! scheme and chain (through the verifier), the compression algorithm
//! (through a decompressor that refuses). Observation only: every hook
//! accepts what it is shown, as [`crate::probe::danger`] does.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, ResolvesClientCert, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::compress::{CertDecompressor, DecompressionFailed};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateCompressionAlgorithm, DigitallySignedStruct, NamedGroup, SignatureScheme};

/// A CertificateRequest as the resolver saw it.
#[derive(Clone, Debug, Default)]
pub struct Requested {
    /// DER of each acceptable CA's distinguished name, without its outer SEQUENCE.
    pub ca_names: Vec<Vec<u8>>,
    pub schemes: Vec<SignatureScheme>,
}

/// Remembers the CertificateRequest and answers it with no certificate.
#[derive(Debug, Default)]
pub struct RecordRequest {
    pub seen: Mutex<Option<Requested>>,
}

impl ResolvesClientCert for RecordRequest {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(Requested {
                ca_names: root_hint_subjects.iter().map(|n| n.to_vec()).collect(),
                schemes: sigschemes.to_vec(),
            });
        }
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// An in-memory session store that also remembers the TLS 1.3 tickets' early-data limit.
#[derive(Debug)]
pub struct RecordTickets {
    inner: ClientSessionMemoryCache,
    pub tls13_tickets: Mutex<Vec<u32>>,
}

impl RecordTickets {
    pub fn new() -> Self {
        RecordTickets {
            inner: ClientSessionMemoryCache::new(8),
            tls13_tickets: Mutex::new(Vec::new()),
        }
    }

    /// `max_early_data_size` of every TLS 1.3 ticket received so far.
    pub fn tickets(&self) -> Vec<u32> {
        self.tls13_tickets.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Default for RecordTickets {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientSessionStore for RecordTickets {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group)
    }
    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(server_name)
    }
    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.inner.set_tls12_session(server_name, value)
    }
    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.inner.tls12_session(server_name)
    }
    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name)
    }
    fn insert_tls13_ticket(&self, server_name: ServerName<'static>, value: Tls13ClientSessionValue) {
        if let Ok(mut t) = self.tls13_tickets.lock() {
            t.push(value.max_early_data_size());
        }
        self.inner.insert_tls13_ticket(server_name, value)
    }
    fn take_tls13_ticket(&self, server_name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(server_name)
    }
}

/// What the verifier was shown.
#[derive(Clone, Debug, Default)]
pub struct Shown {
    pub chain: Vec<Vec<u8>>,
    pub tls13_scheme: Option<SignatureScheme>,
}

/// Accepts any chain, offers only `schemes`, and remembers the chain and the
/// TLS 1.3 CertificateVerify scheme.
#[derive(Debug)]
pub struct RecordChain {
    schemes: Vec<SignatureScheme>,
    pub shown: Mutex<Shown>,
}

impl RecordChain {
    pub fn new(schemes: Vec<SignatureScheme>) -> Self {
        RecordChain {
            schemes,
            shown: Mutex::new(Shown::default()),
        }
    }

    pub fn shown(&self) -> Shown {
        self.shown.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl ServerCertVerifier for RecordChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut s) = self.shown.lock() {
            s.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.as_ref().to_vec())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if let Ok(mut s) = self.shown.lock() {
            s.tls13_scheme = Some(dss.scheme);
        }
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// A decompressor that offers one algorithm and refuses to decompress: a
/// handshake that fails with `InvalidCertCompression` shows the server used it.
#[derive(Debug)]
pub struct Refuse(pub CertificateCompressionAlgorithm);

impl CertDecompressor for Refuse {
    fn decompress(&self, _input: &[u8], _output: &mut [u8]) -> Result<(), DecompressionFailed> {
        Err(DecompressionFailed)
    }
    fn algorithm(&self) -> CertificateCompressionAlgorithm {
        self.0
    }
}

pub static REFUSE_ZLIB: Refuse = Refuse(CertificateCompressionAlgorithm::Zlib);
pub static REFUSE_BROTLI: Refuse = Refuse(CertificateCompressionAlgorithm::Brotli);
pub static REFUSE_ZSTD: Refuse = Refuse(CertificateCompressionAlgorithm::Zstd);
