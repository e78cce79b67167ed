//! The endpoint record: the one data shape every stage after the port scan
//! fills in and every output (table, JSON, upstream report) reads.
//!
//! It is a contract: `docs/schema/endpoint.schema.json` describes it, tests
//! validate real output against that schema, and `SCHEMA_VERSION` changes
//! when a field changes meaning. Fields added by later stages are optional so
//! that a record from a quick discovery scan is still a valid record.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::cert::CertInfo;
use crate::wire::CipherSuite;
use crate::wire::suites::SuiteInfo;

pub const SCHEMA_VERSION: &str = "2";

/// What kind of endpoint this is, in the upstream inventory's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Speaks TLS (a handshake completed or the server answered in TLS).
    Discovered,
    /// Open, but no TLS: a plaintext service, or one whose TLS never completes.
    Unsecured,
    /// Reserved for hosts where a certificate agent was seen through the proxy.
    Automatable,
    /// The port refused the connection (only with `--show-closed`).
    Closed,
    /// No answer within the deadline (only with `--show-closed`).
    Filtered,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Discovered => "discovered",
            Category::Unsecured => "unsecured",
            Category::Automatable => "automatable",
            Category::Closed => "closed",
            Category::Filtered => "filtered",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tls,
    Plain,
    /// The port is open but said nothing we could classify.
    Unknown,
    /// Nothing was reached (closed or filtered ports).
    None,
    /// TLS after an in-band upgrade (`starttls-smtp` …).
    #[serde(rename = "starttls-smtp")]
    StarttlsSmtp,
    #[serde(rename = "starttls-imap")]
    StarttlsImap,
    #[serde(rename = "starttls-pop3")]
    StarttlsPop3,
    #[serde(rename = "starttls-ftp")]
    StarttlsFtp,
    #[serde(rename = "starttls-ldap")]
    StarttlsLdap,
    #[serde(rename = "starttls-postgres")]
    StarttlsPostgres,
    #[serde(rename = "starttls-xmpp")]
    StarttlsXmpp,
    #[serde(rename = "starttls-xmpp-server")]
    StarttlsXmppServer,
    #[serde(rename = "starttls-mysql")]
    StarttlsMysql,
    #[serde(rename = "starttls-rdp")]
    StarttlsRdp,
}

impl Transport {
    /// TLS, implicit or after an upgrade.
    pub fn is_tls(self) -> bool {
        !matches!(self, Transport::Plain | Transport::Unknown | Transport::None)
    }
}

/// A cipher suite by its IANA value and name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteRef {
    pub code: u16,
    pub name: String,
}

impl From<crate::wire::CipherSuite> for SuiteRef {
    fn from(s: crate::wire::CipherSuite) -> Self {
        SuiteRef {
            code: s.0,
            name: s.name(),
        }
    }
}

/// What one real handshake negotiated, or why it failed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handshake {
    /// `SSLv2`, `SSLv3`, `TLSv1.0` … `TLSv1.3`.
    pub protocol: Option<String>,
    pub cipher_suite: Option<SuiteRef>,
    /// Key-exchange group, e.g. `x25519`, `secp256r1`, `X25519MLKEM768`.
    pub group: Option<String>,
    pub alpn: Option<String>,
    /// Set when the handshake did not complete: what went wrong, for a person.
    pub error: Option<String>,
    /// The same failure as a stable machine-readable kind.
    pub error_kind: Option<FailureKind>,
    /// Milliseconds from connect to handshake end (or failure).
    pub duration_ms: u64,
}

/// Why a probe did not produce a handshake. Stable strings for scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The server answered in TLS but refused us (an alert, usually a
    /// protocol or cipher mismatch).
    TlsAlert,
    /// The server sent TLS we could not accept (malformed or unexpected).
    TlsError,
    /// The server answered in something that is not TLS.
    NotTls,
    /// The server closed the connection without answering.
    Closed,
    /// The connection was reset.
    Reset,
    /// No answer before the deadline.
    Timeout,
    /// Connecting again for the handshake failed.
    Connect,
}

/// A plaintext service identified on an open port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceInfo {
    /// `http`, `ssh`, `smtp`, `ftp`, `pop3`, `imap`, … or `unknown`.
    pub name: String,
    /// The first line the service sent, printable characters only.
    pub banner: Option<String>,
    /// The HTTP `Server` header, when the service is HTTP.
    pub server: Option<String>,
    /// The software, when the banner names it (`Postfix`, `OpenSSH`, `nginx`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub product: Option<String>,
    /// Its version, when the banner says it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<String>,
}

/// One endpoint: (address, port, SNI) and everything learnt about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub schema_version: String,
    pub address: IpAddr,
    pub port: u16,
    /// The name sent as SNI, or null when the target was an address.
    pub hostname: Option<String>,
    pub category: Category,
    pub transport: Transport,
    /// Service name: `https`-like TLS services are `tls`; plaintext services
    /// carry what was identified.
    pub service: Option<String>,
    /// RFC 3339 UTC time the endpoint was probed.
    pub scanned_at: String,
    /// How the port answered the connect: `syn-ack`, `conn-refused`, `no-response`, …
    pub port_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake: Option<Handshake>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertInfo>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub chain: Vec<CertInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain: Option<ServiceInfo>,
    /// Which protocol versions the server accepts (`SSLv2` … `TLSv1.3`);
    /// present once the enumeration has run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocols: Option<BTreeMap<String, bool>>,
    /// Every accepted suite per protocol, from the enumeration.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub protocol_ciphers: Vec<ProtocolCiphers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_exchange: Option<KeyExchange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
    /// Problems met while enumerating (a server that lied, stalled, reset).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub enumeration_errors: Vec<String>,
    /// Connections the enumeration made to this endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enumeration_connections: Option<u32>,
    /// The SSL Labs-method rating, with every cap and its reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<crate::model::assessment::Grade>,
    /// Chain problems, vulnerabilities and header issues, worst first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub findings: Vec<crate::model::assessment::Finding>,
    /// Trust verdict per store, the name check and every chain issue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_report: Option<crate::model::assessment::ChainReport>,
    /// Vulnerability verdicts (probed and inferred), each with its evidence.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub vulnerabilities: Vec<crate::model::assessment::VulnerabilityVerdict>,
    /// The upstream's shape: classed ciphers, chain, headers, the four-level scores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_rating_info: Option<crate::model::assessment::SecurityRatingInfo>,
    /// On a record made for an extra SNI name (`--sni-list`, SANs): whether
    /// the certificate differs from the one presented for the target itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sni_certificate_differs: Option<bool>,
    /// Whether the server asks for a client certificate, and what for.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_auth: Option<ClientAuth>,
    /// Whether a second handshake really resumed the first one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resumption: Option<Resumption>,
    /// TLS 1.3 extras: early data, certificate compression, signature
    /// algorithms, ECH.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tls13: Option<Tls13Extras>,
    /// Every certificate the server presents, one per key type, found by
    /// offering only RSA, only ECDSA (per curve) or only EdDSA signature
    /// algorithms; present when the extras ran.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub certificate_deployments: Vec<CertificateDeployment>,
    /// Stages of the analysis that did not finish, each `stage: why`
    /// (`vulnerabilities: budget` when the endpoint's time budget,
    /// `--endpoint-budget`, ran out first): what is missing from this record
    /// is named here, never silently dropped.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub not_probed: Vec<String>,
    /// The live revocation check of the leaf (`--revocation`, profile key
    /// `revocation`): OCSP to the AIA responder, else the CRL from the CDP.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub revocation: Option<Revocation>,
}

/// What a live revocation check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationStatus {
    /// The responder or the CRL says the leaf is not revoked.
    Good,
    /// Revoked, with the evidence in `source`, `url`, `revoked_at`, `reason`.
    Revoked,
    /// The responder does not know the certificate, or nothing could be
    /// concluded (no responder, no CRL, no issuer presented).
    Unknown,
    /// Nothing was fetched: the operator's allowlist does not cover the
    /// responder (or the URL is not HTTP(S)).
    NotChecked,
    /// A fetch or a check failed: deadline, size cap, bad signature, HTTP error.
    Error,
}

impl RevocationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationStatus::Good => "good",
            RevocationStatus::Revoked => "revoked",
            RevocationStatus::Unknown => "unknown",
            RevocationStatus::NotChecked => "not_checked",
            RevocationStatus::Error => "error",
        }
    }
}

/// The leaf's revocation status from a live OCSP or CRL check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub status: RevocationStatus,
    /// `ocsp` or `crl`: where the answer came from (null when nothing answered).
    #[serde(default)]
    pub source: Option<String>,
    /// The responder's or the CRL's URL the answer came from (or was refused for).
    #[serde(default)]
    pub url: Option<String>,
    /// RFC 3339 UTC revocation time, when revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// RFC 5280 CRLReason (`keyCompromise`, `superseded`, …), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was tried and why it ended so, in words.
    #[serde(default)]
    pub detail: String,
}

/// `none`, `optional` (a CertificateRequest, and the handshake goes on
/// without a certificate) or `required` (refused without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthMode {
    None,
    Optional,
    Required,
}

/// The server's CertificateRequest, as far as it was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAuth {
    pub mode: ClientAuthMode,
    /// Distinguished names of the CAs the server accepts (RFC 4514), as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_names: Vec<String>,
    /// Signature algorithms the server accepts for the client's certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signature_algorithms: Vec<String>,
    /// The protocol the request was seen in.
    pub protocol: Option<String>,
}

/// A second handshake offering what the first one left: did it resume?
/// `None` where the version was not spoken or nothing was issued.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumption {
    /// TLS 1.3: a NewSessionTicket was issued and a PSK handshake with it resumed.
    pub tls13_ticket: Option<bool>,
    /// TLS 1.2: a session ID handshake (no ticket offered) resumed.
    pub tls12_session_id: Option<bool>,
}

/// What a TLS 1.3 server says beyond the handshake the enumeration reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tls13Extras {
    /// `max_early_data_size` of the NewSessionTicket (0: no 0-RTT); null when no ticket came.
    pub max_early_data_size: Option<u32>,
    /// 0-RTT data sent on a resumed handshake was accepted (replayable requests).
    pub early_data_accepted: Option<bool>,
    /// RFC 8879 algorithms the server compresses its certificate with: `zlib`, `brotli`, `zstd`.
    pub certificate_compression: Vec<String>,
    /// Signature schemes the server signs its TLS 1.3 CertificateVerify with, each offered alone.
    pub signature_algorithms: Vec<String>,
    /// An ECH extension the server cannot decrypt: did it answer with retry configs?
    pub ech: Option<Ech>,
}

/// The answer to an ECH offer the server cannot decrypt (a made-up config).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ech {
    /// The server sent retry_configs: it supports ECH.
    pub retry_configs: bool,
    /// The public name in the first retry config.
    pub public_name: Option<String>,
    /// Every retry config the server sent (version 0xfe0d), decoded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<EchConfigInfo>,
}

/// One ECHConfig from the server's retry_configs (RFC 9849 §4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchConfigInfo {
    pub config_id: u8,
    /// The HPKE KEM: `DHKEM(X25519, HKDF-SHA256)`, …
    pub kem: String,
    /// HPKE KDF/AEAD pairs: `HKDF-SHA256/AES-128-GCM`, …
    pub cipher_suites: Vec<String>,
    /// The name clients put in the outer ClientHello.
    pub public_name: String,
    pub maximum_name_length: u8,
}

/// One certificate the server holds, and the offers that got it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateDeployment {
    /// `RSA 2048`, `ECDSA P-256`, `Ed25519`, …
    pub key: String,
    pub thumbprint: String,
    /// The offers that got this certificate: `TLSv1.3 ecdsa_secp256r1_sha256`, `TLSv1.2 ECDSA`, …
    pub offers: Vec<String>,
    /// The chain as sent, leaf first.
    pub chain: Vec<CertInfo>,
    /// This certificate's own grade (each certificate is assessed; the
    /// endpoint's `grade` is the worst of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<crate::model::assessment::Letter>,
    /// A trust store accepts this chain and nothing breaks trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
    /// The chain's DER, for grading; not part of the record.
    #[serde(skip)]
    pub der: Vec<Vec<u8>>,
}

/// The record's protocol names, oldest first.
pub const PROTOCOL_NAMES: [&str; 6] = ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/// The suites one protocol version accepts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolCiphers {
    pub protocol: String,
    /// `server` when the server imposes its order (then `ciphers` is in that
    /// order), `client` when it follows ours, null when it cannot be told
    /// (fewer than two suites).
    pub cipher_pref_order: Option<String>,
    /// Compression methods accepted: `NULL`, `DEFLATE`.
    pub compressors: String,
    pub ciphers: Vec<CipherEntry>,
}

/// One accepted cipher suite with what it needs for grading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CipherEntry {
    /// The IANA 16-bit value; for SSLv2 cipher kinds their 24-bit value.
    pub code: u32,
    pub name: String,
    /// Key exchange as observed: `ECDH x25519`, `DH 2048`, `RSA`, `ECDH secp256r1`, …
    pub kex_info: String,
    pub forward_secrecy: bool,
    /// Symmetric key strength in bits.
    pub bits: u16,
    pub export: bool,
    pub anonymous: bool,
    pub aead: bool,
    /// Bulk cipher and mode, e.g. `AES-GCM`, `3DES-CBC`, `RC4`, `NULL`.
    pub encryption: String,
}

/// Key-exchange groups and parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExchange {
    /// Every group the server accepted, each tried alone.
    pub groups: Vec<String>,
    /// The group the server picks from our full list (its preference).
    pub default_group: Option<String>,
    /// Smallest and largest DH prime seen in DHE ServerKeyExchange, in bits.
    pub dh_min_bits: Option<u32>,
    pub dh_max_bits: Option<u32>,
    /// Signature algorithms the server accepted (TLS 1.2, each tried alone).
    pub signature_algorithms: Vec<String>,
    /// Some TLS 1.3 group resting on ML-KEM is accepted (hybrid or alone);
    /// null when TLS 1.3 groups were not probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_quantum: Option<bool>,
    /// Hybrid groups accepted: `X25519MLKEM768`, `SecP256r1MLKEM768`, `SecP384r1MLKEM1024`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pq_hybrids: Vec<String>,
    /// ML-KEM alone: `MLKEM512`, `MLKEM768`, `MLKEM1024`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pq_ml_kem: Vec<String>,
    /// Offered both kinds in either order, the server picks: `pq`, `classical`,
    /// or `client` (follows our order); absent when there is no choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pq_preference: Option<String>,
    /// Only post-quantum groups are accepted: clients without ML-KEM cannot connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pq_only: Option<bool>,
}

/// Handshake features; `None` where the probe could not tell.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    /// RFC 5746 renegotiation_info answered.
    pub secure_renegotiation: Option<bool>,
    /// A downgraded hello with TLS_FALLBACK_SCSV was refused (RFC 7507).
    pub fallback_scsv: Option<bool>,
    pub extended_master_secret: Option<bool>,
    pub encrypt_then_mac: Option<bool>,
    pub heartbeat: Option<bool>,
    pub ocsp_stapling: Option<bool>,
    pub alpn: Vec<String>,
    pub session_id: Option<bool>,
    pub session_ticket: Option<bool>,
    pub hello_retry_request: Option<bool>,
    /// Compression methods accepted across versions.
    pub compression: Vec<String>,
}

impl EndpointRecord {
    pub fn new(address: IpAddr, port: u16, hostname: Option<String>, category: Category, scanned_at: String) -> Self {
        EndpointRecord {
            schema_version: SCHEMA_VERSION.to_string(),
            address,
            port,
            hostname,
            category,
            transport: Transport::None,
            service: None,
            scanned_at,
            port_reason: String::new(),
            handshake: None,
            certificate: None,
            chain: Vec::new(),
            plain: None,
            protocols: None,
            protocol_ciphers: Vec::new(),
            key_exchange: None,
            features: None,
            enumeration_errors: Vec::new(),
            enumeration_connections: None,
            grade: None,
            findings: Vec::new(),
            chain_report: None,
            vulnerabilities: Vec::new(),
            security_rating_info: None,
            sni_certificate_differs: None,
            client_auth: None,
            resumption: None,
            tls13: None,
            certificate_deployments: Vec::new(),
            not_probed: Vec::new(),
            revocation: None,
        }
    }
}

/// The record entry for an accepted suite, with the key exchange observed
/// (`ECDH x25519`, `DH 2048`) when the probe saw one.
pub fn cipher_entry(suite: CipherSuite, observed_kex: Option<&str>) -> CipherEntry {
    let info = suite.info();
    let kex_info = match (observed_kex, info) {
        (Some(k), _) => k.to_string(),
        (None, Some(i)) if i.is_tls13() => "ECDH".to_string(),
        (None, Some(i)) => match i.kx {
            "ECDHE" | "ECDH" => "ECDH".to_string(),
            "DHE" | "DH" => "DH".to_string(),
            other => other.to_string(),
        },
        (None, None) => "unknown".to_string(),
    };
    let encryption = info
        .map(|i| {
            let enc = match i.enc {
                "CHACHA20_POLY1305" => "CHACHA20-POLY1305",
                other => other,
            };
            if i.mode.is_empty() {
                enc.to_string()
            } else {
                format!("{enc}-{}", i.mode)
            }
        })
        .unwrap_or_else(|| "unknown".to_string());
    CipherEntry {
        code: u32::from(suite.0),
        name: suite.name(),
        kex_info,
        forward_secrecy: info.is_some_and(SuiteInfo::forward_secrecy),
        bits: info.map_or(0, |i| i.bits),
        export: info.is_some_and(|i| i.export),
        anonymous: info.is_some_and(SuiteInfo::anonymous),
        aead: info.is_some_and(SuiteInfo::aead),
        encryption,
    }
}
