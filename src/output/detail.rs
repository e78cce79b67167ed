//! The one-endpoint deep view of `sensor grade`: every fact about one
//! record for a person, where the sinks print one line per record.

use crate::model::record::EndpointRecord;

/// The one-endpoint deep view of `sensor grade`, for a person.
pub fn detail(r: &EndpointRecord) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let name = r.hostname.as_deref().map(|h| format!(" ({h})")).unwrap_or_default();
    let _ = writeln!(s, "Endpoint      {}:{}{name}", r.address, r.port);
    let _ = writeln!(
        s,
        "Category      {} / {} / {}",
        r.category.as_str(),
        serde_json::to_value(r.transport)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        r.service.as_deref().unwrap_or("-")
    );
    if let Some(h) = &r.handshake {
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
        let _ = writeln!(
            s,
            "Rating        {}",
            serde_json::to_value(levels)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        );
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
    }
    if let Some(f) = &r.features {
        let _ = writeln!(s, "\nFeatures");
        let yn = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not tested",
        };
        for (name, v) in [
            ("secure renegotiation", f.secure_renegotiation),
            ("TLS_FALLBACK_SCSV", f.fallback_scsv),
            ("extended master secret", f.extended_master_secret),
            ("encrypt-then-MAC", f.encrypt_then_mac),
            ("heartbeat extension", f.heartbeat),
            ("OCSP stapling", f.ocsp_stapling),
            ("session IDs", f.session_id),
            ("session tickets", f.session_ticket),
            ("HelloRetryRequest", f.hello_retry_request),
        ] {
            let _ = writeln!(s, "  {name:<24} {}", yn(v));
        }
        let _ = writeln!(s, "  {:<24} {}", "ALPN", f.alpn.join(", "));
        let _ = writeln!(s, "  {:<24} {}", "compression", f.compression.join(", "));
    }
    for e in &r.enumeration_errors {
        let _ = writeln!(s, "\nnote: {e}");
    }
    s
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}
