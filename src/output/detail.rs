//! The one-endpoint deep view of `sensor grade`: every fact about one
//! record for a person, where the sinks print one line per record.

use crate::model::assessment::Letter;
use crate::model::record::{Category, EndpointRecord};

/// The one-endpoint deep view of `sensor grade`, for a person.
pub fn detail(r: &EndpointRecord) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let name = r.hostname.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
    let _ = writeln!(s, "Endpoint      {}:{}{name}", r.address, r.port);
    let _ = writeln!(s, "Category      {}", category(r));
    if let Some(p) = r.plain.as_ref().filter(|_| r.category == Category::Unsecured) {
        // rustls's words for a plaintext answer (`received corrupt message
        // of type InvalidContentType`) say nothing to a person.
        let _ = writeln!(
            s,
            "Handshake     none: the port answered in plaintext ({}), not TLS",
            p.name
        );
    } else if let Some(h) = &r.handshake {
        if let Some(p) = &h.protocol {
            let suite = h
                .cipher_suite
                .as_ref()
                .map(|c| format!("{} ({:#06x})", c.name, c.code))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "Handshake     {p} {suite} group {} alpn {}",
                opt(&h.group),
                opt(&h.alpn)
            );
        }
        if let Some(e) = &h.error {
            let _ = writeln!(s, "Handshake     failed: {e}");
        }
    }
    if let Some(p) = &r.plain {
        let _ = writeln!(
            s,
            "Service       {} {}",
            p.name,
            p.server.as_deref().or(p.banner.as_deref()).unwrap_or("")
        );
    }
    if let Some(g) = &r.grade {
        let _ = writeln!(
            s,
            "Grade         {}  (score {}: protocol {}, key exchange {}, cipher {})",
            g.letter, g.score, g.protocol_score, g.key_exchange_score, g.cipher_score
        );
        if let Some(t) = g.if_trusted {
            let _ = writeln!(s, "              {t} if trust issues are ignored");
        }
        for c in &g.caps {
            let _ = writeln!(s, "  cap {:<3} {}", c.letter.to_string(), c.reason);
        }
        for w in &g.warnings {
            let _ = writeln!(s, "  warning  {w}");
        }
        for n in &g.notes {
            let _ = writeln!(s, "  note     {n}");
        }
    }
    if let Some(levels) = r.security_rating_info.as_ref().and_then(|i| i.security_rating_score) {
        let level = serde_json::to_value(levels)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "Rating        {level}{}",
            r.grade.as_ref().map(why_rated).unwrap_or_default()
        );
    }
    if let Some(v) = &r.revocation {
        let _ = writeln!(s, "Revocation    {}", revocation(v));
    }
    if let Some(sr) = r.security_rating_info.as_ref().and_then(|i| i.security_rating.as_ref()) {
        let _ = writeln!(s, "\nRating criteria");
        for c in sr.criteria() {
            let verdict = if c.rating.value {
                "pass".to_string()
            } else {
                format!("FAIL  {}", c.rating.issue)
            };
            let _ = writeln!(s, "  {:<30} {:<36} {verdict}", c.criteria_name, c.value);
        }
    }
    if !r.findings.is_empty() {
        let _ = writeln!(s, "\nFindings");
        for f in &r.findings {
            let sev = serde_json::to_value(f.severity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(s, "  {sev:<8} {:<28} {}", f.id, f.evidence);
        }
    }
    if !r.chain.is_empty() {
        let _ = writeln!(s, "\nCertificate chain (as sent)");
        for (i, c) in r.chain.iter().enumerate() {
            let key = format!(
                "{} {}",
                c.key_algorithm,
                c.key_size.map(|b| b.to_string()).unwrap_or_default()
            );
            let _ = writeln!(s, "  #{i} {}", c.subject_dn);
            let _ = writeln!(s, "     issuer  {}", c.issuer_dn);
            let _ = writeln!(s, "     valid   {} .. {}", c.valid_from, c.valid_to);
            let _ = writeln!(
                s,
                "     key     {}  sig {}  serial {}",
                key.trim(),
                c.signature_algorithm,
                c.serial_number
            );
            if !c.san.is_empty() {
                let _ = writeln!(s, "     SAN     {}", c.san.join(", "));
            }
            let _ = writeln!(s, "     sha256  {}", c.thumbprint);
        }
    }
    if let Some(protocols) = &r.protocols {
        let _ = writeln!(s, "\nProtocols");
        for p in crate::model::record::PROTOCOL_NAMES {
            let on = protocols.get(p).copied().unwrap_or(false);
            let _ = writeln!(s, "  {p:<8} {}", if on { "offered" } else { "not offered" });
        }
    }
    for pc in &r.protocol_ciphers {
        let order = pc.cipher_pref_order.as_deref().unwrap_or("n/a");
        let _ = writeln!(
            s,
            "\n{} cipher suites ({} preference, compression {})",
            pc.protocol, order, pc.compressors
        );
        for c in &pc.ciphers {
            let _ = writeln!(
                s,
                "  {:#06x}  {:<48} {:<16} {:>3} bits",
                c.code, c.name, c.kex_info, c.bits
            );
        }
    }
    if let Some(k) = &r.key_exchange {
        let _ = writeln!(s, "\nKey exchange");
        let _ = writeln!(s, "  groups      {}", k.groups.join(", "));
        let _ = writeln!(s, "  preferred   {}", opt(&k.default_group));
        if let (Some(lo), Some(hi)) = (k.dh_min_bits, k.dh_max_bits) {
            let _ = writeln!(s, "  DH params   {lo}..{hi} bits");
        }
        if !k.signature_algorithms.is_empty() {
            let _ = writeln!(s, "  signatures  {}", k.signature_algorithms.join(", "));
        }
        if let Some(pq) = k.post_quantum {
            let kinds: Vec<String> = k.pq_hybrids.iter().chain(&k.pq_ml_kem).cloned().collect();
            let line = match (pq, k.pq_only == Some(true)) {
                (false, _) => "no".to_string(),
                (true, only) => format!(
                    "yes: {}{}{}",
                    kinds.join(", "),
                    k.pq_preference
                        .as_deref()
                        .map(|p| format!("; preference {p}"))
                        .unwrap_or_default(),
                    if only { "; PQ only" } else { "" }
                ),
            };
            let _ = writeln!(s, "  post-quantum {line}");
        }
    }
    if let Some(f) = &r.features {
        let _ = writeln!(s, "\nFeatures");
        // Features of TLS 1.2 and older cannot be tested on a server that
        // speaks only TLS 1.3: "not tested" would suggest a gap.
        let legacy = legacy_tls(r);
        let yn = |v: Option<bool>, tls12_only: bool| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None if tls12_only && !legacy => "n/a (no TLS 1.2)",
            None => "not tested",
        };
        for (name, v, tls12_only) in [
            ("secure renegotiation", f.secure_renegotiation, true),
            ("TLS_FALLBACK_SCSV", f.fallback_scsv, true),
            ("extended master secret", f.extended_master_secret, true),
            ("encrypt-then-MAC", f.encrypt_then_mac, true),
            ("heartbeat extension", f.heartbeat, true),
            ("OCSP stapling", f.ocsp_stapling, false),
            ("session IDs", f.session_id, true),
            ("session tickets", f.session_ticket, false),
            ("HelloRetryRequest", f.hello_retry_request, false),
        ] {
            let _ = writeln!(s, "  {name:<24} {}", yn(v, tls12_only));
        }
        let alpn = if f.alpn.is_empty() {
            "none".to_string()
        } else {
            f.alpn.join(", ")
        };
        let _ = writeln!(s, "  {:<24} {alpn}", "ALPN");
        let compression = match (f.compression.is_empty(), legacy) {
            (false, _) => f.compression.join(", "),
            (true, false) => "n/a (no TLS 1.2)".to_string(),
            (true, true) => "not tested".to_string(),
        };
        let _ = writeln!(s, "  {:<24} {compression}", "compression");
    }
    extras(&mut s, r);
    for e in &r.enumeration_errors {
        let _ = writeln!(s, "\nnote: {e}");
    }
    for line in not_probed(&r.not_probed) {
        let _ = writeln!(s, "\n{line}");
    }
    s
}

/// The record's `not_probed` (`stage: why`) as lines grouped by why:
/// `not probed: budget (vulnerabilities, tls_extras)`.
pub fn not_probed(entries: &[String]) -> Vec<String> {
    let mut by_why: Vec<(&str, Vec<&str>)> = Vec::new();
    for e in entries {
        let (stage, why) = e.split_once(": ").unwrap_or((e.as_str(), "not finished"));
        match by_why.iter_mut().find(|(w, _)| *w == why) {
            Some((_, stages)) => stages.push(stage),
            None => by_why.push((why, vec![stage])),
        }
    }
    by_why
        .into_iter()
        .map(|(why, stages)| format!("not probed: {why} ({})", stages.join(", ")))
        .collect()
}

/// Client authentication, resumption, TLS 1.3 extras, certificate deployments.
fn extras(s: &mut String, r: &EndpointRecord) {
    use std::fmt::Write as _;
    if r.client_auth.is_none() && r.resumption.is_none() && r.tls13.is_none() && r.certificate_deployments.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nClient certificates and sessions");
    let yn = |v: Option<bool>| match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "n/a",
    };
    if let Some(a) = &r.client_auth {
        let mode = match a.mode {
            crate::model::record::ClientAuthMode::None => "none",
            crate::model::record::ClientAuthMode::Optional => "optional",
            crate::model::record::ClientAuthMode::Required => "required",
        };
        let _ = writeln!(s, "  {:<24} {mode}", "client certificate");
        for ca in &a.ca_names {
            let _ = writeln!(s, "    CA  {ca}");
        }
        if !a.signature_algorithms.is_empty() {
            let _ = writeln!(s, "    signatures  {}", a.signature_algorithms.join(", "));
        }
    }
    if let Some(x) = &r.resumption {
        let _ = writeln!(s, "  {:<24} {}", "resumes by TLS 1.3 ticket", yn(x.tls13_ticket));
        let _ = writeln!(s, "  {:<24} {}", "resumes by session ID", yn(x.tls12_session_id));
    }
    if let Some(t) = &r.tls13 {
        let early = match (t.max_early_data_size, t.early_data_accepted) {
            (Some(0), _) => "no".to_string(),
            (Some(n), Some(true)) => format!("yes, up to {n} bytes, 0-RTT data accepted (replayable)"),
            (Some(n), _) => format!("allowed up to {n} bytes"),
            (None, _) => "n/a (no ticket)".to_string(),
        };
        let _ = writeln!(s, "  {:<24} {early}", "0-RTT early data");
        let compression = if t.certificate_compression.is_empty() {
            "none".to_string()
        } else {
            t.certificate_compression.join(", ")
        };
        let _ = writeln!(s, "  {:<24} {compression}", "certificate compression");
        let _ = writeln!(
            s,
            "  {:<24} {}",
            "TLS 1.3 signatures",
            t.signature_algorithms.join(", ")
        );
        if let Some(e) = &t.ech {
            let _ = writeln!(
                s,
                "  {:<24} {}",
                "ECH",
                if e.retry_configs {
                    format!("supported (public name {})", e.public_name.as_deref().unwrap_or("-"))
                } else {
                    "not supported".to_string()
                }
            );
            for c in &e.configs {
                let _ = writeln!(
                    s,
                    "    config {:<3} {}  {}  {}",
                    c.config_id,
                    c.public_name,
                    c.kem,
                    c.cipher_suites.join(", ")
                );
            }
        }
    }
    if !r.certificate_deployments.is_empty() {
        let _ = writeln!(s, "\nCertificate deployments");
        for d in &r.certificate_deployments {
            let subject = d.chain.first().map(|c| c.subject_dn.as_str()).unwrap_or("");
            let grade = d.grade.map(|l| format!("grade {}  ", l.as_str())).unwrap_or_default();
            let _ = writeln!(s, "  {:<16} {grade}{subject}", d.key);
            let _ = writeln!(s, "     sha256  {}", d.thumbprint);
            let _ = writeln!(s, "     offers  {}", d.offers.join(", "));
        }
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// `discovered / tls`, `discovered / starttls-smtp / smtp`, `unsecured /
/// plain / http`: category, transport and service, each word once.
fn category(r: &EndpointRecord) -> String {
    let transport = serde_json::to_value(r.transport)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut parts: Vec<&str> = vec![r.category.as_str()];
    for p in [transport.as_str(), r.service.as_deref().unwrap_or("-")] {
        if !p.is_empty() && !parts.contains(&p) {
            parts.push(p);
        }
    }
    parts.join(" / ")
}

/// The endpoint offers TLS 1.2 or older (or nobody enumerated it).
fn legacy_tls(r: &EndpointRecord) -> bool {
    r.protocols.as_ref().is_none_or(|p| {
        ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2"]
            .iter()
            .any(|v| p.get(*v).copied().unwrap_or(false))
    })
}

/// The live revocation check in one line: `revoked (crl http://…): since …, keyCompromise`.
fn revocation(v: &crate::model::record::Revocation) -> String {
    use crate::model::record::RevocationStatus as S;
    let from = match (&v.source, &v.url) {
        (Some(src), Some(url)) => format!(" ({src} {url})"),
        _ => String::new(),
    };
    match v.status {
        S::Good => format!("good{from}"),
        S::Revoked => {
            let mut out = format!("REVOKED{from}");
            let when: Vec<&str> = [v.revoked_at.as_deref(), v.reason.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if !when.is_empty() {
                out.push_str(&format!(": since {}", when.join(", ")));
            }
            out
        }
        S::NotChecked => format!("not checked ({})", v.detail),
        S::Unknown => format!("unknown: {}", v.detail),
        S::Error => format!("error: {}", v.detail),
    }
}

/// Why a T or M grade rates as it does, in one clause after the level:
/// `: untrusted root (not in any trust store); A if trusted`.
fn why_rated(g: &crate::model::assessment::Grade) -> String {
    let cap = |letter: Letter| g.caps.iter().find(|c| c.letter == letter);
    let (cap, ignored) = match g.letter {
        Letter::T => (cap(Letter::T), "if trusted"),
        Letter::M => (cap(Letter::M), "if the name matched"),
        _ => return String::new(),
    };
    let Some(cap) = cap else { return String::new() };
    let cause = match cap.id.as_str() {
        "unknown_issuer" => "untrusted root (not in any trust store)".to_string(),
        "incomplete_chain" => "incomplete chain (an intermediate is missing)".to_string(),
        "self_signed" => "self-signed certificate".to_string(),
        "expired" => "expired certificate".to_string(),
        "not_yet_valid" => "certificate not yet valid".to_string(),
        "revoked" => "revoked certificate".to_string(),
        "untrusted" => "no trust store accepts the chain".to_string(),
        "hostname_mismatch" => "the certificate does not cover the name".to_string(),
        other => other.replace('_', " "),
    };
    match g.if_trusted {
        Some(l) => format!(": {cause}; {l} {ignored}"),
        None => format!(": {cause}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::assessment::Grade;
    use crate::model::record::{Features, Handshake, ServiceInfo, Transport};

    fn grade(letter: &str, caps: serde_json::Value, if_trusted: Option<&str>) -> Grade {
        serde_json::from_value(serde_json::json!({
            "letter": letter, "score": 93, "protocol_score": 100, "key_exchange_score": 90,
            "cipher_score": 90, "caps": caps, "warnings": [], "if_trusted": if_trusted,
        }))
        .unwrap()
    }

    /// A TLS 1.3-only server behind a private root nobody trusts.
    fn tls13_only() -> EndpointRecord {
        let mut r = EndpointRecord::new(
            "127.0.2.1".parse().unwrap(),
            8443,
            None,
            Category::Discovered,
            "t".into(),
        );
        r.transport = Transport::Tls;
        r.service = Some("tls".into());
        r.handshake = Some(Handshake {
            protocol: Some("TLSv1.3".into()),
            alpn: Some("h2".into()),
            group: Some("x25519".into()),
            ..Handshake::default()
        });
        r.grade = Some(grade(
            "T",
            serde_json::json!([{"letter": "T", "id": "unknown_issuer", "area": "certificate",
                "reason": "untrusted root (not in any trust store): the issuer 'CN=demo root CA' …"}]),
            Some("A"),
        ));
        let mut protocols = BTreeMap::new();
        for p in crate::model::record::PROTOCOL_NAMES {
            protocols.insert(p.to_string(), p == "TLSv1.3");
        }
        r.protocols = Some(protocols);
        r.features = Some(Features {
            hello_retry_request: Some(true),
            alpn: vec!["h2".into()],
            ..Features::default()
        });
        r
    }

    #[test]
    fn stages_the_budget_cut_read_not_probed_budget() {
        let lines = not_probed(&[
            "vulnerabilities: budget".into(),
            "tls_extras: budget".into(),
            "odd".into(),
        ]);
        assert_eq!(
            lines,
            [
                "not probed: budget (vulnerabilities, tls_extras)",
                "not probed: not finished (odd)"
            ]
        );
        let mut r = tls13_only();
        r.not_probed = vec!["http_headers: budget".into()];
        assert!(detail(&r).contains("\nnot probed: budget (http_headers)\n"));
        assert!(!detail(&tls13_only()).contains("not probed"));
    }

    #[test]
    fn a_tls13_only_server_reads_na_for_tls12_features_and_each_word_once() {
        insta::assert_snapshot!("detail_tls13_only", detail(&tls13_only()));
    }

    #[test]
    fn a_plaintext_port_says_so_instead_of_a_tls_error() {
        let mut r = EndpointRecord::new(
            "127.0.2.3".parse().unwrap(),
            8080,
            None,
            Category::Unsecured,
            "t".into(),
        );
        r.transport = Transport::Plain;
        r.service = Some("http".into());
        r.handshake = Some(Handshake {
            error: Some("received corrupt message of type InvalidContentType".into()),
            ..Handshake::default()
        });
        r.plain = Some(ServiceInfo {
            name: "http".into(),
            banner: Some("HTTP/1.1 200 OK".into()),
            server: Some("netsensor-testbed".into()),
            product: None,
            version: None,
        });
        insta::assert_snapshot!("detail_plaintext", detail(&r));
    }

    #[test]
    fn revocation_reads_as_one_line() {
        use crate::model::record::{Revocation, RevocationStatus as S};
        let v = |status, detail: &str| Revocation {
            status,
            source: (status == S::Revoked).then(|| "ocsp".into()),
            url: Some("http://127.0.0.1:9/".into()),
            revoked_at: (status == S::Revoked).then(|| "2026-11-01T00:00:00Z".into()),
            reason: (status == S::Revoked).then(|| "keyCompromise".into()),
            detail: detail.into(),
        };
        assert_eq!(
            revocation(&v(S::Revoked, "")),
            "REVOKED (ocsp http://127.0.0.1:9/): since 2026-11-01T00:00:00Z, keyCompromise"
        );
        assert_eq!(
            revocation(&v(S::NotChecked, "not allowed: 127.0.0.1")),
            "not checked (not allowed: 127.0.0.1)"
        );
        let mut r = tls13_only();
        r.revocation = Some(v(S::Error, "crl http://x/: HTTP 404"));
        assert!(
            detail(&r).contains("Revocation    error: crl http://x/: HTTP 404\n"),
            "{}",
            detail(&r)
        );
    }

    #[test]
    fn t_and_m_say_why_in_one_clause() {
        let t = grade(
            "T",
            serde_json::json!([{"letter": "T", "id": "incomplete_chain", "area": "certificate", "reason": "…"}]),
            Some("A"),
        );
        assert_eq!(
            why_rated(&t),
            ": incomplete chain (an intermediate is missing); A if trusted"
        );
        let m = grade(
            "M",
            serde_json::json!([{"letter": "M", "id": "hostname_mismatch", "area": "certificate", "reason": "…"}]),
            Some("B"),
        );
        assert_eq!(
            why_rated(&m),
            ": the certificate does not cover the name; B if the name matched"
        );
        assert_eq!(why_rated(&grade("A", serde_json::json!([]), None)), "");
    }
}
