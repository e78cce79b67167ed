//! The judgement on one endpoint as data: grade, caps, findings, chain
//! verdicts, vulnerability verdicts, cipher classes and the upstream's
//! `security_rating_info`. `grade` computes these values and the record
//! carries them; defining them here lets the record embed the judgement
//! without the record and the grading logic importing each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// One thing a security team should know, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub severity: Severity,
    pub title: String,
    pub evidence: String,
}

// ---- The letter and its caps ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Letter {
    #[serde(rename = "A+")]
    APlus,
    A,
    #[serde(rename = "A-")]
    AMinus,
    B,
    C,
    D,
    E,
    F,
    /// Not trusted.
    T,
    /// Certificate name mismatch.
    M,
}

impl Letter {
    pub fn as_str(self) -> &'static str {
        match self {
            Letter::APlus => "A+",
            Letter::A => "A",
            Letter::AMinus => "A-",
            Letter::B => "B",
            Letter::C => "C",
            Letter::D => "D",
            Letter::E => "E",
            Letter::F => "F",
            Letter::T => "T",
            Letter::M => "M",
        }
    }

    /// Position from best (A+ = 0) to worst (F = 7); T and M rank below F.
    pub fn rank(self) -> u8 {
        match self {
            Letter::APlus => 0,
            Letter::A => 1,
            Letter::AMinus => 2,
            Letter::B => 3,
            Letter::C => 4,
            Letter::D => 5,
            Letter::E => 6,
            Letter::F => 7,
            Letter::T => 8,
            Letter::M => 9,
        }
    }

    /// Reads `A+`, `a`, `B`…, as written on the command line.
    pub fn parse(s: &str) -> Option<Letter> {
        let all = [
            Letter::APlus,
            Letter::A,
            Letter::AMinus,
            Letter::B,
            Letter::C,
            Letter::D,
            Letter::E,
            Letter::F,
            Letter::T,
            Letter::M,
        ];
        all.into_iter().find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Strictly worse than `other` (T and M are worse than F).
    pub fn is_below(self, other: Letter) -> bool {
        self.rank() > other.rank()
    }

    /// The worse of two score letters (A+ … F).
    pub fn worst(self, other: Letter) -> Letter {
        if other.rank() > self.rank() { other } else { self }
    }

    /// The letter a numeric score earns before any cap.
    pub fn from_score(score: u8) -> Letter {
        match score {
            80.. => Letter::A,
            65.. => Letter::B,
            50.. => Letter::C,
            35.. => Letter::D,
            20.. => Letter::E,
            _ => Letter::F,
        }
    }
}

impl std::fmt::Display for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cap is about; the protocol/cipher level reads only the first three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    Protocol,
    Cipher,
    KeyExchange,
    Certificate,
    Vulnerability,
}

/// A limit on the letter, with the evidence that triggered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    pub letter: Letter,
    /// Stable id: `sslv2`, `rc4`, `expired`, `hostname_mismatch`, …
    pub id: String,
    pub area: Area,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grade {
    pub letter: Letter,
    pub score: u8,
    pub protocol_score: u8,
    pub key_exchange_score: u8,
    pub cipher_score: u8,
    pub caps: Vec<Cap>,
    /// Warnings that turn an A into A− (and keep A+ away).
    pub warnings: Vec<String>,
    /// When the letter is T or M: the letter with trust and name ignored
    /// (SSL Labs' "if trust issues are ignored").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_trusted: Option<Letter>,
    /// Limits of the observation behind this grade (what was not seen).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

// ---- The chain's verdicts ----

/// Revocation status from a stapled OCSP response (the probe checks the
/// response; grading takes its verdict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcspStatus {
    Good,
    Revoked,
    Unknown,
}

/// One named problem with the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainIssue {
    /// Stable id: `expired`, `hostname_mismatch`, `incomplete_chain`, …
    pub id: String,
    /// Index in the presented chain (0 = leaf); `None` for the chain as a whole.
    pub certificate_index: Option<usize>,
    pub severity: Severity,
    /// A browser would refuse the chain for this (the rating caps at T).
    pub breaks_trust: bool,
    pub detail: String,
}

/// One trust store's verdict on the chain (the name is checked separately).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreVerdict {
    pub store: String,
    pub trusted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// `Some(true)` when a store accepts the chain and nothing breaks trust;
    /// `None` when there is no certificate, or no DER to verify and no
    /// trust-breaking issue either.
    pub trusted: Option<bool>,
    /// Accepted by the bundled Mozilla roots.
    pub publicly_trusted: bool,
    /// Names of the stores that accept the chain.
    pub trusted_by: Vec<String>,
    pub stores: Vec<StoreVerdict>,
    pub name_check: NameCheck,
    /// Indices of the presented certificates on the path from the leaf up.
    pub path: Vec<usize>,
    pub chain_issues: Vec<ChainIssue>,
}

impl ChainReport {
    pub fn trust_breaking(&self) -> impl Iterator<Item = &ChainIssue> {
        self.chain_issues.iter().filter(|i| i.breaks_trust)
    }

    pub fn issues_on(&self, index: usize) -> impl Iterator<Item = &ChainIssue> {
        self.chain_issues
            .iter()
            .filter(move |i| i.certificate_index == Some(index))
    }
}

/// `certificate_chain` as the upstream schema has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateChain {
    pub cert_chain_details: Vec<CertChainDetail>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertChainDetail {
    pub cert_chain_id: u32,
    /// `Valid`, `Invalid`, or `Unknown` (no DER to verify, nothing wrong found).
    pub overall_status: String,
    pub is_additional_cert_chain: bool,
    pub is_valid_chain: bool,
    pub cert_details: Vec<CertDetail>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertDetail {
    /// `Active`, `Expired`, `Not yet valid` or `Revoked`.
    pub status: String,
    /// notAfter, epoch milliseconds.
    pub expiration_date: Option<i64>,
    pub key_algorithm: String,
    /// The signature's hash: `SHA256`, `SHA1`, …
    pub algorithm_type: String,
    /// notBefore, epoch milliseconds.
    pub issue_date: Option<i64>,
    #[serde(rename = "issuer_DN")]
    pub issuer_dn: String,
    pub subject: String,
    /// The details of every issue concerning this certificate.
    pub errors: Vec<String>,
}

// ---- The name check ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameStatus {
    Match,
    Mismatch,
    NotChecked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameCheck {
    pub status: NameStatus,
    /// The name checked: the hostname (SNI), or the address for an address target.
    pub expected: Option<String>,
    /// The names the leaf covers (its SANs).
    pub names: Vec<String>,
}

// ---- Cipher classes ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CipherClass {
    Safe,
    Weak,
    Insecure,
}

/// One accepted suite, classed, with every rule it tripped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifiedCipher {
    /// IANA value; for SSLv2 cipher kinds their 24-bit value.
    pub code: u32,
    pub name: String,
    pub kex_info: String,
    pub forward_secrecy: bool,
    pub class: CipherClass,
    /// 1 when `insecure`, else 0 (the seed's `unsafe`).
    #[serde(rename = "unsafe")]
    pub unsafe_flag: u8,
    /// Why it is not `safe`, e.g. `CBC mode`, `RC4`. Empty when safe.
    pub reasons: Vec<String>,
}

/// The suites of one protocol version, classed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifiedProtocol {
    pub protocol: String,
    pub cipher_pref_order: Option<String>,
    pub compressors: String,
    /// In the enumeration's order (the server's preference when it has one).
    pub ciphers: Vec<ClassifiedCipher>,
}

// ---- Vulnerability verdicts ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VulnStatus {
    Vulnerable,
    NotVulnerable,
    NotTested,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnerabilityVerdict {
    /// Stable id: `heartbleed`, `poodle`, `sweet32`, …
    pub id: String,
    pub name: String,
    pub status: VulnStatus,
    /// Deduced from the enumeration rather than probed.
    pub inferred: bool,
    /// Severity when vulnerable.
    pub severity: Severity,
    pub evidence: String,
}

impl VulnerabilityVerdict {
    pub fn is_vulnerable(&self) -> bool {
        self.status == VulnStatus::Vulnerable
    }
}

// ---- The upstream's `security_rating_info` and the four levels ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "Very secure")]
    VerySecure,
    #[serde(rename = "Secure")]
    Secure,
    #[serde(rename = "At risk")]
    AtRisk,
    #[serde(rename = "Not secure")]
    NotSecure,
}

impl Level {
    pub fn of(letter: Letter) -> Level {
        match letter {
            Letter::APlus | Letter::A => Level::VerySecure,
            Letter::AMinus | Letter::B => Level::Secure,
            Letter::C | Letter::D | Letter::E => Level::AtRisk,
            Letter::F | Letter::T | Letter::M => Level::NotSecure,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedCipher {
    pub code: u32,
    pub name: String,
    pub kex_info: String,
    pub forward_secrecy: bool,
    #[serde(rename = "unsafe")]
    pub unsafe_flag: u8,
}

impl From<&ClassifiedCipher> for SeedCipher {
    fn from(c: &ClassifiedCipher) -> Self {
        SeedCipher {
            code: c.code,
            name: c.name.clone(),
            kex_info: c.kex_info.clone(),
            forward_secrecy: c.forward_secrecy,
            unsafe_flag: c.unsafe_flag,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedProtocolCiphers {
    pub protocol: String,
    pub cipher_pref_order: Option<String>,
    pub compressors: String,
    pub safe_ciphers: Vec<SeedCipher>,
    pub weak_ciphers: Vec<SeedCipher>,
    pub insecure_ciphers: Vec<SeedCipher>,
    /// Short warnings joined with `; `, empty when none.
    pub warnings: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeProtocol {
    pub protocol: String,
    pub cipher_algorithm: String,
    /// Symmetric key bits of the negotiated suite.
    pub key_size: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolCipherScore {
    pub protocols: Vec<String>,
    pub score: Option<Level>,
}

/// `security_rating_info` in the seed's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityRatingInfo {
    pub protocol_ciphers: Vec<SeedProtocolCiphers>,
    pub handshake_protocols: Vec<HandshakeProtocol>,
    pub certificate_chain: CertificateChain,
    pub security_headers: BTreeMap<String, String>,
    pub http_response_headers: BTreeMap<String, String>,
    pub security_rating_score: Option<Level>,
    pub certificate_chain_score: Option<Level>,
    pub protocol_cipher_score: ProtocolCipherScore,
    /// The seed's `security_rating` criteria for what issue 22 checks:
    /// post-quantum key exchange, client authentication, certificate
    /// deployments, resumption and early data, ECH, embedded SCTs. Absent
    /// when none of them was observed (and on records from before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_rating: Option<SecurityRating>,
}

/// The seed's `security_rating` object: criteria grouped by category, each
/// `{category_name, criteria_name, value, rating: {value, issue}, data}`.
/// A category with nothing observed is left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityRating {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_exchange: Vec<RatingCriterion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<RatingCriterion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session: Vec<RatingCriterion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub privacy: Vec<RatingCriterion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transparency: Vec<RatingCriterion>,
}

impl SecurityRating {
    pub fn is_empty(&self) -> bool {
        self.key_exchange.is_empty()
            && self.authentication.is_empty()
            && self.session.is_empty()
            && self.privacy.is_empty()
            && self.transparency.is_empty()
    }

    /// Every criterion, category by category.
    pub fn criteria(&self) -> impl Iterator<Item = &RatingCriterion> {
        self.key_exchange
            .iter()
            .chain(&self.authentication)
            .chain(&self.session)
            .chain(&self.privacy)
            .chain(&self.transparency)
    }
}

/// One criterion in the seed's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingCriterion {
    /// `Key exchange`, `Authentication`, `Session`, `Privacy`, `Transparency`.
    pub category_name: String,
    /// `Post-quantum key exchange`, `Client certificate`, …
    pub criteria_name: String,
    /// What was seen, as a person reads it (`X25519MLKEM768`, `required`, `2 SCTs`).
    pub value: String,
    pub rating: CriterionRating,
    /// The record's fields behind `value`.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// `value`: the criterion passes; `issue`: why not (`None` when it passes,
/// as in the seed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriterionRating {
    pub value: bool,
    pub issue: String,
}

/// The four levels of one assessment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels {
    pub security_rating: Option<Level>,
    pub certificate_chain: Option<Level>,
    pub protocol_cipher: Option<Level>,
}
