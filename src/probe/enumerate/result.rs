//! What an enumeration found, and the record fields made from it. Pure: the
//! driver fills an [`Enumeration`]; [`apply`] turns it into the record's
//! protocol, cipher, key-exchange and feature fields.

use std::collections::BTreeMap;

use super::strategy::Version;
use crate::model::record::{
    CipherEntry, EndpointRecord, Features, KeyExchange, PROTOCOL_NAMES, ProtocolCiphers, cipher_entry,
};
use crate::wire::{CipherSuite, NamedGroup, SignatureScheme};

/// One accepted suite and the key exchange its ServerKeyExchange showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub suite: CipherSuite,
    /// `ECDH x25519`, `DH 2048`, `RSA` …; `None` when nothing was seen.
    pub kex: Option<String>,
    pub dh_bits: Option<u32>,
}

#[derive(Clone, Debug, Default)]
pub struct VersionResult {
    /// Accepted suites; in the server's order when `preference` is `server`.
    pub accepted: Vec<Accepted>,
    pub preference: Option<&'static str>,
    /// Compression methods the server picked when offered DEFLATE and NULL.
    pub compression: Vec<String>,
}

/// SSLv2 findings: the cipher kinds the server listed.
#[derive(Clone, Debug, Default)]
pub struct Sslv2Result {
    pub supported: bool,
    pub cipher_specs: Vec<(u32, String)>,
}

/// Everything the enumeration learnt about one endpoint.
#[derive(Clone, Debug, Default)]
pub struct Enumeration {
    pub sslv2: Sslv2Result,
    pub versions: BTreeMap<Version, VersionResult>,
    /// Groups accepted (TLS 1.3 and TLS 1.2 ECDHE), in registry order.
    pub groups: Vec<NamedGroup>,
    pub signature_algorithms: Vec<SignatureScheme>,
    /// Post-quantum key exchange in TLS 1.3; `None` when TLS 1.3 groups were not probed.
    pub post_quantum: Option<super::pq::PostQuantum>,
    /// Handshake features, as the record has them (compression is filled in by `apply`).
    pub features: Features,
    /// The stapled OCSP response (DER), when the server sent one.
    pub ocsp_response: Option<Vec<u8>>,
    /// The chain from a TLS ≤ 1.2 Certificate message (for servers rustls cannot talk to).
    pub chain: Vec<Vec<u8>>,
    /// Problems met: stalls, malformed answers, suites never offered.
    pub errors: Vec<String>,
    /// Connections made.
    pub connections: usize,
    /// The server stopped answering and the enumeration gave up early.
    pub stalled: bool,
}

impl Enumeration {
    /// An enumeration that found exactly `suites` at `version` (and nothing
    /// else): what the checks that build on an enumeration start from.
    pub fn accepting(version: Version, suites: &[CipherSuite]) -> Self {
        let accepted = suites
            .iter()
            .map(|&suite| Accepted {
                suite,
                kex: None,
                dh_bits: None,
            })
            .collect();
        Enumeration {
            versions: BTreeMap::from([(
                version,
                VersionResult {
                    accepted,
                    ..VersionResult::default()
                },
            )]),
            ..Enumeration::default()
        }
    }

    pub fn supports(&self, v: Version) -> bool {
        self.versions.get(&v).is_some_and(|r| !r.accepted.is_empty())
    }
}

pub fn group_name(g: NamedGroup) -> String {
    g.name().map(str::to_string).unwrap_or_else(|| format!("{:#06x}", g.0))
}

/// Fill the record's enumeration fields from what the probes learnt.
pub fn apply(record: &mut EndpointRecord, e: &Enumeration) {
    let mut protocols = BTreeMap::new();
    protocols.insert(PROTOCOL_NAMES[0].to_string(), e.sslv2.supported);
    for v in Version::ALL {
        protocols.insert(v.name().to_string(), e.supports(v));
    }
    record.protocols = Some(protocols);
    record.protocol_ciphers.clear();
    if e.sslv2.supported {
        record.protocol_ciphers.push(ProtocolCiphers {
            protocol: PROTOCOL_NAMES[0].to_string(),
            cipher_pref_order: None,
            compressors: "NULL".into(),
            ciphers: e
                .sslv2
                .cipher_specs
                .iter()
                .map(|(code, name)| sslv2_entry(*code, name))
                .collect(),
        });
    }
    for (v, r) in &e.versions {
        record.protocol_ciphers.push(ProtocolCiphers {
            protocol: v.name().to_string(),
            cipher_pref_order: r.preference.map(str::to_string),
            compressors: if r.compression.is_empty() {
                "NULL".to_string()
            } else {
                r.compression.join(",")
            },
            ciphers: r
                .accepted
                .iter()
                .map(|a| cipher_entry(a.suite, a.kex.as_deref()))
                .collect(),
        });
    }
    let dh: Vec<u32> = e
        .versions
        .values()
        .flat_map(|r| r.accepted.iter().filter_map(|a| a.dh_bits))
        .collect();
    record.key_exchange = Some(KeyExchange {
        groups: e.groups.iter().map(|&g| group_name(g)).collect(),
        default_group: record.handshake.as_ref().and_then(|h| h.group.clone()),
        dh_min_bits: dh.iter().min().copied(),
        dh_max_bits: dh.iter().max().copied(),
        signature_algorithms: e
            .signature_algorithms
            .iter()
            .map(|s| s.name().map(str::to_string).unwrap_or_else(|| format!("{:#06x}", s.0)))
            .collect(),
        post_quantum: e.post_quantum.as_ref().map(|p| p.supported),
        pq_hybrids: names(e.post_quantum.iter().flat_map(|p| &p.hybrids)),
        pq_ml_kem: names(e.post_quantum.iter().flat_map(|p| &p.ml_kem)),
        pq_preference: e.post_quantum.as_ref().and_then(|p| p.preference).map(str::to_string),
        pq_only: e.post_quantum.as_ref().map(|p| p.only),
    });
    let mut features = e.features.clone();
    let mut compression: Vec<String> = e
        .versions
        .values()
        .flat_map(|r| r.compression.iter().cloned())
        .collect();
    compression.sort();
    compression.dedup();
    features.compression = compression;
    if features.alpn.is_empty() {
        // TLS 1.3-only servers answer ALPN encrypted: keep what rustls negotiated.
        features.alpn = record
            .handshake
            .as_ref()
            .and_then(|h| h.alpn.clone())
            .into_iter()
            .collect();
    }
    record.features = Some(features);
    record.enumeration_errors = e.errors.clone();
    record.enumeration_connections = Some(e.connections.min(u32::MAX as usize) as u32);
    // A server rustls could not talk to still showed its chain in the clear.
    if record.chain.is_empty() && !e.chain.is_empty() {
        record.chain = e.chain.iter().map(|d| crate::model::cert::parse_lossy(d)).collect();
        record.certificate = record.chain.first().cloned();
    }
}

fn names<'a>(groups: impl Iterator<Item = &'a NamedGroup>) -> Vec<String> {
    groups.map(|&g| group_name(g)).collect()
}

fn sslv2_entry(code: u32, name: &str) -> CipherEntry {
    let export = name.contains("EXPORT");
    let bits = if export {
        40
    } else if name.contains("DES_64") {
        56
    } else if name.contains("EDE3") {
        112
    } else {
        128
    };
    let encryption = ["RC4", "RC2", "IDEA", "DES_192_EDE3", "DES"]
        .iter()
        .find(|e| name.contains(*e))
        .map(|e| if *e == "DES_192_EDE3" { "3DES-CBC" } else { e })
        .unwrap_or("unknown")
        .to_string();
    CipherEntry {
        code,
        name: name.to_string(),
        kex_info: "RSA".into(),
        forward_secrecy: false,
        bits,
        export,
        anonymous: false,
        aead: false,
        encryption,
    }
}
