//! The SSL Labs SSL Server Rating Guide (2009r) as code.
//!
//! Score = 0.3 × protocol + 0.3 × key exchange + 0.4 × cipher strength,
//! rounded half up; letter A ≥ 80, B ≥ 65, C ≥ 50, D ≥ 35, E ≥ 20, else F.
//! Then every cap that applies lowers the letter (each kept with its reason),
//! A becomes A− when a warning remains or A+ with no warning and HSTS of at
//! least 180 days, and a trust problem shows as T (a name mismatch as M) with
//! the letter the server would otherwise have in `if_trusted`. The full table
//! is in `docs/grading.md`.

use std::collections::BTreeSet;

use super::chain::ChainReport;
use super::hsts::Hsts;
use super::strength::{self, KexParams};
use super::vulns::{self, VulnerabilityVerdict};
pub use crate::model::assessment::{Area, Cap, Grade, Letter};
use crate::model::cert::CertInfo;
use crate::model::record::cipher_entry;
use crate::model::record::{CipherEntry, EndpointRecord, PROTOCOL_NAMES};
use crate::wire::CipherSuite;

/// Everything the rating reads.
#[derive(Clone, Copy, Debug)]
pub struct RatingInput<'a> {
    pub record: &'a EndpointRecord,
    pub leaf: Option<&'a CertInfo>,
    pub chain: &'a ChainReport,
    pub vulnerabilities: &'a [VulnerabilityVerdict],
    /// `None` when the response had no STS header or there was no HTTP probe.
    pub hsts: Option<&'a Hsts>,
    /// An HTTP response was observed at all.
    pub http_observed: bool,
    /// A+ needs HSTS max-age at least this long (seconds).
    pub hsts_min_max_age: u64,
}

/// Protocol scores from the guide.
pub fn protocol_points(name: &str) -> Option<u8> {
    Some(match name {
        "SSLv2" => 0,
        "SSLv3" => 80,
        "TLSv1.0" => 90,
        "TLSv1.1" => 95,
        "TLSv1.2" | "TLSv1.3" => 100,
        _ => return None,
    })
}

/// Key-exchange band for an RSA-equivalent strength.
pub fn key_exchange_points(rsa_equivalent: u32) -> u8 {
    match rsa_equivalent {
        0..512 => 20,
        512..1024 => 40,
        1024..2048 => 80,
        2048..4096 => 90,
        _ => 100,
    }
}

/// Cipher-strength band for a symmetric strength in bits.
pub fn cipher_points(bits: u16) -> u8 {
    match bits {
        0 => 0,
        1..128 => 20,
        128..256 => 80,
        _ => 100,
    }
}

/// The suites the rating sees: the enumeration's, or the negotiated one.
struct Suites {
    entries: Vec<(String, CipherEntry)>,
    enumerated: bool,
}

impl Suites {
    fn new(record: &EndpointRecord) -> Self {
        let mut entries: Vec<(String, CipherEntry)> = record
            .protocol_ciphers
            .iter()
            .flat_map(|p| p.ciphers.iter().map(move |c| (p.protocol.clone(), c.clone())))
            .collect();
        let enumerated = !entries.is_empty();
        if !enumerated
            && let Some(h) = &record.handshake
            && let (Some(p), Some(s)) = (&h.protocol, &h.cipher_suite)
        {
            let kex = h.group.as_ref().map(|g| format!("ECDH {g}"));
            entries.push((p.clone(), cipher_entry(CipherSuite(s.code), kex.as_deref())));
        }
        Suites { entries, enumerated }
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &CipherEntry)> {
        self.entries.iter().map(|(p, c)| (p.as_str(), c))
    }

    /// Suites with strength data (unknown values carry none).
    fn known(&self) -> impl Iterator<Item = (&str, &CipherEntry)> {
        self.iter().filter(|(_, c)| strength::is_known(c))
    }

    fn listed(&self, pred: impl Fn(&str, &CipherEntry) -> bool) -> Option<String> {
        let hits = vulns::list(self.iter().filter(|(p, c)| pred(p, c)));
        (!hits.is_empty()).then_some(hits)
    }
}

fn supported_protocols(record: &EndpointRecord, notes: &mut Vec<String>) -> Vec<&'static str> {
    let mut set: BTreeSet<&str> = BTreeSet::new();
    if let Some(map) = &record.protocols {
        set.extend(map.iter().filter(|(_, on)| **on).map(|(p, _)| p.as_str()));
    }
    set.extend(record.protocol_ciphers.iter().map(|p| p.protocol.as_str()));
    if record.protocols.is_none()
        && let Some(p) = record.handshake.as_ref().and_then(|h| h.protocol.as_deref())
    {
        set.insert(p);
        notes.push(format!(
            "protocol support not enumerated: graded on the negotiated {p} only"
        ));
    }
    PROTOCOL_NAMES.iter().copied().filter(|p| set.contains(p)).collect()
}

/// The weakest key exchange the server allows, for the key-exchange score.
struct KeyExchangeVerdict {
    points: u8,
    evidence: String,
}

fn key_exchange(
    record: &EndpointRecord,
    leaf: Option<&CertInfo>,
    suites: &Suites,
    notes: &mut Vec<String>,
) -> Option<KeyExchangeVerdict> {
    if let Some(anon) = suites.listed(|_, c| c.anonymous) {
        return Some(KeyExchangeVerdict {
            points: 0,
            evidence: format!("anonymous key exchange accepted: {anon}"),
        });
    }
    let mut weakest: Option<(u32, String)> = None;
    let mut consider = |eq: u32, what: String| {
        if weakest.as_ref().is_none_or(|(w, _)| eq < *w) {
            weakest = Some((eq, what));
        }
    };
    match leaf.and_then(strength::certificate_key) {
        Some(s) => consider(s.rsa_equivalent, s.evidence),
        None => notes.push("certificate key not observed: key exchange rated on its parameters only".to_string()),
    }
    for (p, c) in suites.iter() {
        match strength::kex_params(&c.kex_info) {
            KexParams::Dh(bits) => consider(bits, format!("DH {bits}-bit parameters ({}, {p})", c.name)),
            KexParams::Group(g) => match strength::group(&g) {
                Some(eq) => consider(eq, format!("key-exchange group {g} (≈ RSA {eq}; {}, {p})", c.name)),
                None => notes.push(format!("key-exchange group {g} has no known strength")),
            },
            KexParams::Unobserved | KexParams::None => {}
        }
    }
    if let Some(kx) = &record.key_exchange {
        for g in &kx.groups {
            match strength::group(g) {
                Some(eq) => consider(eq, format!("key-exchange group {g} (≈ RSA {eq})")),
                None => notes.push(format!("key-exchange group {g} has no known strength")),
            }
        }
        if let Some(bits) = kx.dh_min_bits {
            consider(bits, format!("DH {bits}-bit parameters"));
        }
    }
    if let Some(g) = record.handshake.as_ref().and_then(|h| h.group.as_deref())
        && let Some(eq) = strength::group(g)
    {
        consider(eq, format!("key-exchange group {g} (≈ RSA {eq})"));
    }
    let (eq, what) = weakest?;
    let mut points = key_exchange_points(eq);
    let mut evidence = format!("weakest: {what}");
    if let Some(export) = suites.listed(|_, c| c.export) {
        if points > 40 {
            points = 40;
        }
        evidence = format!("export key exchange accepted: {export}");
    }
    Some(KeyExchangeVerdict { points, evidence })
}

/// Rate the endpoint; `Err` says why there is nothing to rate.
pub fn rate(input: &RatingInput<'_>) -> Result<Grade, String> {
    let record = input.record;
    let mut notes = Vec::new();
    let protocols = supported_protocols(record, &mut notes);
    if protocols.is_empty() {
        return Err("no TLS or SSL protocol observed".to_string());
    }
    let suites = Suites::new(record);
    if !suites.enumerated {
        notes.push("cipher suites not enumerated: graded on the negotiated suite only".to_string());
    }
    if suites.entries.is_empty() {
        return Err("no cipher suite observed".to_string());
    }

    // Protocol: (best + worst) / 2.
    let points: Vec<u8> = protocols.iter().filter_map(|p| protocol_points(p)).collect();
    let best = points.iter().copied().max().unwrap_or(0);
    let worst = points.iter().copied().min().unwrap_or(0);
    let protocol = (f64::from(best) + f64::from(worst)) / 2.0;

    // Cipher: (strongest + weakest) / 2 over the suites the registry knows.
    let bits: Vec<u16> = suites.known().map(|(_, c)| strength::cipher_bits(c)).collect();
    let cipher = match (bits.iter().max(), bits.iter().min()) {
        (Some(&hi), Some(&lo)) => (f64::from(cipher_points(hi)) + f64::from(cipher_points(lo))) / 2.0,
        _ => return Err("no cipher suite with known strength observed".to_string()),
    };

    // Key exchange: the weaker of certificate key and ephemeral parameters.
    let kx = key_exchange(record, input.leaf, &suites, &mut notes)
        .ok_or_else(|| "key exchange not observed: no certificate and no parameters".to_string())?;
    let key = f64::from(kx.points);

    let score = (0.3 * protocol + 0.3 * key + 0.4 * cipher + 0.5).floor() as u8;
    let mut caps = Vec::new();
    let mut cap = |letter: Letter, id: &str, area: Area, reason: String| {
        caps.push(Cap {
            letter,
            id: id.to_string(),
            area,
            reason,
        })
    };
    let has = |p: &str| protocols.contains(&p);

    // ---- F ----
    if protocol == 0.0 {
        cap(
            Letter::F,
            "protocol_score_zero",
            Area::Protocol,
            "protocol score is 0: only SSLv2 is supported".into(),
        );
    }
    if kx.points == 0 {
        cap(
            Letter::F,
            "key_exchange_score_zero",
            Area::KeyExchange,
            format!("key exchange score is 0: {}", kx.evidence),
        );
    }
    if cipher == 0.0 {
        let nulls = suites.listed(|_, c| strength::cipher_bits(c) == 0).unwrap_or_default();
        cap(
            Letter::F,
            "cipher_score_zero",
            Area::Cipher,
            format!("cipher strength score is 0: only NULL encryption ({nulls})"),
        );
    }
    if has("SSLv2") {
        cap(Letter::F, "sslv2", Area::Protocol, "SSLv2 is supported".into());
    }
    if protocols.last() == Some(&"SSLv3") {
        cap(
            Letter::F,
            "sslv3_best",
            Area::Protocol,
            "SSLv3 is the best protocol supported".into(),
        );
    }
    if let Some(list) = suites.listed(|_, c| c.export) {
        cap(
            Letter::F,
            "export_suites",
            Area::Cipher,
            format!("export cipher suites accepted: {list}"),
        );
    }
    if let Some(list) = suites.listed(|_, c| strength::is_known(c) && strength::cipher_bits(c) < 112) {
        cap(
            Letter::F,
            "cipher_under_112_bits",
            Area::Cipher,
            format!("cipher suites under 112 bits accepted: {list}"),
        );
    }
    if let Some(list) = suites.listed(|_, c| c.anonymous) {
        cap(
            Letter::F,
            "anonymous_key_exchange",
            Area::KeyExchange,
            format!("anonymous key exchange accepted: {list}"),
        );
    }
    if kx.points <= 40 && kx.points > 0 {
        cap(
            Letter::F,
            "key_exchange_weak",
            Area::KeyExchange,
            format!("key exchange score {} ≤ 40: {}", kx.points, kx.evidence),
        );
    }
    for i in input.chain.chain_issues.iter() {
        let on_path = i.certificate_index.is_some_and(|x| input.chain.path.contains(&x));
        match i.id.as_str() {
            "md5_signature" | "md2_signature" if on_path => cap(Letter::F, &i.id, Area::Certificate, i.detail.clone()),
            "rsa_exponent_1" => cap(Letter::F, &i.id, Area::Certificate, i.detail.clone()),
            // SSL Labs: a revoked certificate is an F, not a trust question
            // an operator's own trust store could answer.
            "revoked" => cap(Letter::F, &i.id, Area::Certificate, i.detail.clone()),
            _ => {}
        }
    }
    for v in input.vulnerabilities.iter().filter(|v| v.is_vulnerable()) {
        let letter = match v.id.as_str() {
            "insecure_renegotiation" | "heartbleed" | "ccs_injection" | "ticketbleed" | "robot" | "drown" => Letter::F,
            "poodle" | "crime" => Letter::C,
            _ => continue,
        };
        cap(
            letter,
            &v.id,
            Area::Vulnerability,
            format!("{}: {}", v.name, v.evidence),
        );
    }

    // ---- C ----
    if !has("TLSv1.2") && !has("TLSv1.3") {
        cap(
            Letter::C,
            "no_tls12",
            Area::Protocol,
            format!("TLS 1.2 is not supported (only {})", protocols.join(", ")),
        );
    }
    let modern = |p: &str| matches!(p, "TLSv1.1" | "TLSv1.2" | "TLSv1.3");
    if let Some(list) = suites.listed(|p, c| modern(p) && strength::is_rc4(c)) {
        cap(
            Letter::C,
            "rc4_with_modern_protocols",
            Area::Cipher,
            format!("RC4 with TLS 1.1 or later: {list}"),
        );
    }
    if let Some(list) = suites.listed(|p, c| modern(p) && strength::is_64bit_block(c)) {
        cap(
            Letter::C,
            "64bit_block_with_modern_protocols",
            Area::Cipher,
            format!("64-bit block ciphers with TLS 1.1 or later: {list}"),
        );
    }

    // ---- B ----
    let old: Vec<&str> = protocols
        .iter()
        .copied()
        .filter(|p| matches!(*p, "SSLv3" | "TLSv1.0" | "TLSv1.1"))
        .collect();
    if !old.is_empty() {
        cap(
            Letter::B,
            "old_protocols",
            Area::Protocol,
            format!("old protocols supported: {}", old.join(", ")),
        );
    }
    if let Some(list) = suites.listed(|_, c| strength::is_rc4(c)) {
        cap(Letter::B, "rc4", Area::Cipher, format!("RC4 suites accepted: {list}"));
    }
    if suites.iter().all(|(_, c)| !c.forward_secrecy) {
        cap(
            Letter::B,
            "no_forward_secrecy",
            Area::Cipher,
            "no suite with forward secrecy (ECDHE/DHE) is accepted".into(),
        );
    }
    if suites.iter().all(|(_, c)| !strength::is_aead(c)) {
        cap(
            Letter::B,
            "no_aead",
            Area::Cipher,
            "no AEAD suite (GCM, CCM, ChaCha20-Poly1305) is accepted".into(),
        );
    }
    if kx.points > 40 && kx.points <= 80 {
        cap(
            Letter::B,
            "key_exchange_80",
            Area::KeyExchange,
            format!("key exchange score {} ≤ 80: {}", kx.points, kx.evidence),
        );
    }

    // ---- T and M ----
    for i in input.chain.trust_breaking().filter(|i| i.id != "revoked") {
        cap(Letter::T, &i.id, Area::Certificate, i.detail.clone());
    }
    for i in input.chain.chain_issues.iter().filter(|i| i.id == "hostname_mismatch") {
        cap(Letter::M, &i.id, Area::Certificate, i.detail.clone());
    }

    // ---- Warnings (A−) ----
    let mut warnings = Vec::new();
    if !has("TLSv1.3") {
        warnings.push("TLS 1.3 is not supported".to_string());
    }
    let renegotiable = protocols.iter().any(|p| *p != "TLSv1.3");
    if renegotiable && record.features.as_ref().and_then(|f| f.secure_renegotiation) == Some(false) {
        warnings.push("secure renegotiation (RFC 5746) is not supported".to_string());
    }
    let min_days = input.hsts_min_max_age / 86_400;
    match input.hsts {
        Some(h) => match (&h.malformed, h.max_age) {
            (Some(why), _) => warnings.push(format!("HSTS header is malformed: {why} (`{}`)", h.raw)),
            (None, Some(age)) if age < input.hsts_min_max_age => warnings.push(format!(
                "HSTS max-age {age} s is shorter than {min_days} days ({} s)",
                input.hsts_min_max_age
            )),
            _ => {}
        },
        None if !input.http_observed => notes.push("HTTP not probed: HSTS unknown, so A+ is not possible".to_string()),
        None => {}
    }
    let untested: Vec<&str> = input
        .vulnerabilities
        .iter()
        .filter(|v| !v.inferred && v.status == vulns::VulnStatus::NotTested)
        .map(|v| v.id.as_str())
        .collect();
    if !untested.is_empty() {
        notes.push(format!("not probed: {}", untested.join(", ")));
    }

    // ---- The letter ----
    let mut letter = Letter::from_score(score);
    for c in caps.iter().filter(|c| !matches!(c.letter, Letter::T | Letter::M)) {
        letter = letter.worst(c.letter);
    }
    if letter == Letter::A {
        let hsts_long = input
            .hsts
            .is_some_and(|h| h.malformed.is_none() && h.max_age.is_some_and(|a| a >= input.hsts_min_max_age));
        letter = if !warnings.is_empty() {
            Letter::AMinus
        } else if hsts_long {
            Letter::APlus
        } else {
            Letter::A
        };
    }
    let (shown, if_trusted) = if caps.iter().any(|c| c.letter == Letter::T) {
        (Letter::T, Some(letter))
    } else if caps.iter().any(|c| c.letter == Letter::M) {
        (Letter::M, Some(letter))
    } else {
        (letter, None)
    };
    Ok(Grade {
        letter: shown,
        score,
        protocol_score: round(protocol),
        key_exchange_score: kx.points,
        cipher_score: round(cipher),
        caps,
        warnings,
        if_trusted,
        notes,
    })
}

fn round(x: f64) -> u8 {
    (x + 0.5).floor().clamp(0.0, 100.0) as u8
}

/// The letter for the protocol/cipher part alone: the score's letter under
/// the protocol, cipher and key-exchange caps (no trust, no vulnerabilities,
/// no A−/A+ adjustment).
pub fn protocol_cipher_letter(grade: &Grade) -> Letter {
    grade
        .caps
        .iter()
        .filter(|c| matches!(c.area, Area::Protocol | Area::Cipher | Area::KeyExchange))
        .fold(Letter::from_score(grade.score), |l, c| l.worst(c.letter))
}
