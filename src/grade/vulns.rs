//! Vulnerability verdicts: the probes' results passed through, and the ones
//! inferred from the enumeration (which suites and protocols are accepted).
//!
//! Inference rules: POODLE = SSLv3 with a CBC suite; BEAST = SSLv3 or TLS 1.0
//! with a CBC suite (mitigated in clients, reported for completeness);
//! SWEET32 = any 64-bit block cipher (3DES, DES, IDEA, RC2); FREAK = an RSA
//! export suite; Logjam = a DHE export suite or finite-field DH under 1024
//! bits; DROWN = SSLv2 accepted (the cross-server variant, a key shared with
//! another host's SSLv2, is not visible from one endpoint); CRIME = TLS
//! compression accepted; RC4 = any RC4 suite. A rule whose inputs were not
//! observed says `not_tested`, never `not_vulnerable`.

use super::Severity;
use super::strength::{self, KexParams};
pub use crate::model::assessment::{VulnStatus, VulnerabilityVerdict};
pub use crate::model::observed::Vulnerabilities;
use crate::model::record::{CipherEntry, EndpointRecord};

/// Every verdict, probes first, in a fixed order.
pub fn evaluate(record: &EndpointRecord, probes: &Vulnerabilities) -> Vec<VulnerabilityVerdict> {
    let mut out = Vec::new();
    let probed: [(&str, &str, Option<bool>, Severity, &str); 5] = [
        (
            "heartbleed",
            "Heartbleed (CVE-2014-0160)",
            probes.heartbleed,
            Severity::Critical,
            "a heartbeat request with an overlong payload length",
        ),
        (
            "ccs_injection",
            "CCS injection (CVE-2014-0224)",
            probes.ccs_injection,
            Severity::High,
            "an early ChangeCipherSpec",
        ),
        (
            "ticketbleed",
            "Ticketbleed (CVE-2016-9244)",
            probes.ticketbleed,
            Severity::High,
            "a session ticket resumed with a 1-byte session id",
        ),
        (
            "robot",
            "ROBOT (Bleichenbacher oracle)",
            probes.robot,
            Severity::High,
            "malformed RSA ClientKeyExchange messages on static-RSA suites",
        ),
        (
            "insecure_renegotiation",
            "Insecure client-initiated renegotiation",
            probes.insecure_renegotiation,
            Severity::High,
            "a client-initiated renegotiation without RFC 5746 protection",
        ),
    ];
    for (id, name, result, severity, check) in probed {
        let (status, evidence) = match result {
            None => (VulnStatus::NotTested, "not probed".to_string()),
            Some(true) => (VulnStatus::Vulnerable, format!("probe: the server mishandled {check}")),
            Some(false) => (
                VulnStatus::NotVulnerable,
                format!("probe: the server handled {check} safely"),
            ),
        };
        out.push(VulnerabilityVerdict {
            id: id.into(),
            name: name.into(),
            status,
            inferred: false,
            severity,
            evidence,
        });
    }
    let obs = Enumerated::new(record);
    let mut push = |id: &str, name: &str, severity: Severity, v: (VulnStatus, String)| {
        out.push(VulnerabilityVerdict {
            id: id.into(),
            name: name.into(),
            status: v.0,
            inferred: true,
            severity,
            evidence: v.1,
        })
    };
    push(
        "poodle",
        "POODLE (SSLv3 CBC)",
        Severity::High,
        obs.suites_on(&["SSLv3"], strength::is_cbc, "CBC"),
    );
    push(
        "beast",
        "BEAST (CBC on SSLv3/TLS 1.0)",
        Severity::Low,
        obs.suites_on(&["SSLv3", "TLSv1.0"], strength::is_cbc, "CBC"),
    );
    push(
        "sweet32",
        "SWEET32 (64-bit block ciphers)",
        Severity::Low,
        obs.any_suite(strength::is_64bit_block, "64-bit block"),
    );
    push(
        "freak",
        "FREAK (RSA export)",
        Severity::High,
        obs.any_suite(|e| e.export && e.kex_info.starts_with("RSA"), "RSA export"),
    );
    push("logjam", "Logjam (DHE export, DH < 1024)", Severity::High, obs.logjam());
    push("drown", "DROWN (SSLv2)", Severity::Critical, obs.drown());
    push("crime", "CRIME (TLS compression)", Severity::High, obs.crime());
    push("rc4", "RC4", Severity::High, obs.any_suite(strength::is_rc4, "RC4"));
    out
}

/// The enumeration's view of the endpoint, with "not observed" kept apart.
struct Enumerated<'a> {
    record: &'a EndpointRecord,
}

impl<'a> Enumerated<'a> {
    fn new(record: &'a EndpointRecord) -> Self {
        Enumerated { record }
    }

    /// `Some(true/false)` when the protocol's support is known.
    fn supports(&self, protocol: &str) -> Option<bool> {
        let listed = self.record.protocol_ciphers.iter().any(|p| p.protocol == protocol);
        match &self.record.protocols {
            Some(map) => Some(map.get(protocol).copied().unwrap_or(false) || listed),
            None => listed.then_some(true),
        }
    }

    fn suites<'s>(&self, protocols: Option<&'s [&'s str]>) -> impl Iterator<Item = (&'a str, &'a CipherEntry)> + 's
    where
        'a: 's,
    {
        self.record
            .protocol_ciphers
            .iter()
            .filter(move |p| protocols.is_none_or(|ps| ps.contains(&p.protocol.as_str())))
            .flat_map(|p| p.ciphers.iter().map(move |c| (p.protocol.as_str(), c)))
    }

    fn enumerated(&self) -> bool {
        !self.record.protocol_ciphers.is_empty()
    }

    /// Vulnerable when one of `protocols` accepts a suite matching `pred`.
    fn suites_on(&self, protocols: &[&str], pred: fn(&CipherEntry) -> bool, what: &str) -> (VulnStatus, String) {
        let hits = list(self.suites(Some(protocols)).filter(|(_, e)| pred(e)));
        if !hits.is_empty() {
            return (VulnStatus::Vulnerable, format!("{what} suites accepted: {hits}"));
        }
        let support: Vec<Option<bool>> = protocols.iter().map(|p| self.supports(p)).collect();
        let names = protocols.join("/");
        if support.iter().all(|s| *s == Some(false)) {
            (VulnStatus::NotVulnerable, format!("{names} not supported"))
        } else if support.contains(&Some(true)) && !self.enumerated() {
            (
                VulnStatus::NotTested,
                format!("{names} accepted but its suites were not enumerated"),
            )
        } else if support.contains(&None) {
            (VulnStatus::NotTested, "protocol support not enumerated".to_string())
        } else {
            (
                VulnStatus::NotVulnerable,
                format!("no {what} suite accepted on {names}"),
            )
        }
    }

    fn any_suite(&self, pred: impl Fn(&CipherEntry) -> bool, what: &str) -> (VulnStatus, String) {
        if !self.enumerated() {
            return (VulnStatus::NotTested, "cipher suites not enumerated".to_string());
        }
        let hits = list(self.suites(None).filter(|(_, e)| pred(e)));
        if hits.is_empty() {
            (VulnStatus::NotVulnerable, format!("no {what} suite accepted"))
        } else {
            (VulnStatus::Vulnerable, format!("{what} suites accepted: {hits}"))
        }
    }

    fn logjam(&self) -> (VulnStatus, String) {
        let mut hits: Vec<String> = Vec::new();
        for (p, e) in self.suites(None) {
            let dhe = e.kex_info.starts_with("DH");
            match strength::kex_params(&e.kex_info) {
                KexParams::Dh(bits) if bits < 1024 => hits.push(format!("{} ({p}, DH {bits}-bit)", e.name)),
                _ if dhe && e.export => hits.push(format!("{} ({p}, DHE export)", e.name)),
                _ => {}
            }
        }
        let dh_min = self.record.key_exchange.as_ref().and_then(|k| k.dh_min_bits);
        if let Some(bits) = dh_min.filter(|b| *b < 1024) {
            hits.push(format!("smallest DH prime {bits} bits"));
        }
        if !hits.is_empty() {
            (VulnStatus::Vulnerable, hits.join(", "))
        } else if self.enumerated() {
            (
                VulnStatus::NotVulnerable,
                "no DHE export suite and no DH group under 1024 bits".to_string(),
            )
        } else {
            (VulnStatus::NotTested, "cipher suites not enumerated".to_string())
        }
    }

    fn drown(&self) -> (VulnStatus, String) {
        match self.supports("SSLv2") {
            Some(true) => (VulnStatus::Vulnerable, "SSLv2 accepted".to_string()),
            Some(false) => (VulnStatus::NotVulnerable, "SSLv2 not supported".to_string()),
            None => (VulnStatus::NotTested, "protocol support not enumerated".to_string()),
        }
    }

    fn crime(&self) -> (VulnStatus, String) {
        let mut known = false;
        let mut methods: Vec<String> = Vec::new();
        if let Some(f) = &self.record.features {
            known |= !f.compression.is_empty();
            methods.extend(f.compression.iter().cloned());
        }
        for p in &self.record.protocol_ciphers {
            if !p.compressors.trim().is_empty() {
                known = true;
                methods.extend(p.compressors.split([',', ' ']).map(str::to_string));
            }
        }
        let mut real: Vec<String> = methods
            .into_iter()
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("NULL") && !m.eq_ignore_ascii_case("none"))
            .collect();
        real.sort();
        real.dedup();
        if !real.is_empty() {
            (
                VulnStatus::Vulnerable,
                format!("TLS compression accepted: {}", real.join(", ")),
            )
        } else if known {
            (VulnStatus::NotVulnerable, "only NULL compression accepted".to_string())
        } else {
            (VulnStatus::NotTested, "compression not enumerated".to_string())
        }
    }
}

/// `NAME (protocol), …`, at most eight names then a count.
pub(crate) fn list<'a>(hits: impl Iterator<Item = (&'a str, &'a CipherEntry)>) -> String {
    let all: Vec<String> = hits.map(|(p, e)| format!("{} ({p})", e.name)).collect();
    if all.len() > 8 {
        format!("{} and {} more", all[..8].join(", "), all.len() - 8)
    } else {
        all.join(", ")
    }
}
