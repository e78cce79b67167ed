//! One endpoint as a person wants it: what and where it is, the grade with
//! each cap and its reason, the four-level rating, the certificate chain
//! with every issue named and a validity bar, protocols × cipher suites in
//! classes, vulnerabilities, HTTP security headers, and its history.
//!
//! Every value here came from the network or from a report (names, DNs,
//! SANs, banners, headers): maud escapes every splice, and nothing is ever
//! written through `PreEscaped`.

use maud::{Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::console::cells;
use crate::console::chart;
use crate::console::summary::level_name;
use crate::console::view::name_of;
use crate::model::assessment::{CipherClass, Level, SeedCipher, Severity, VulnStatus};
use crate::model::cert::CertInfo;
use crate::output::expiry::Expiry;
use crate::store::endpoint::Stored;
use crate::store::inventory::Event;

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "sev-critical",
        Severity::High => "sev-high",
        Severity::Medium => "sev-medium",
        Severity::Low | Severity::Info => "muted",
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

fn level(l: Option<Level>) -> Markup {
    let (class, text) = match l {
        Some(Level::VerySecure) => ("good-text", level_name(Level::VerySecure)),
        Some(Level::Secure) => ("good-text", level_name(Level::Secure)),
        Some(Level::AtRisk) => ("warn-text", level_name(Level::AtRisk)),
        Some(Level::NotSecure) => ("bad-text", level_name(Level::NotSecure)),
        None => ("muted", "not rated"),
    };
    html! { span class=(class) { (text) } }
}

/// The share of a certificate's life that has passed at `now`.
fn spent(c: &CertInfo, now: OffsetDateTime) -> Option<f64> {
    let from = OffsetDateTime::parse(&c.valid_from, &Rfc3339).ok()?;
    let to = OffsetDateTime::parse(&c.valid_to, &Rfc3339).ok()?;
    let life = (to - from).as_seconds_f64();
    (life > 0.0).then(|| (now - from).as_seconds_f64() / life)
}

/// The detail section of endpoint `s`; `anchor` gives it an id (the report).
pub fn section(s: &Stored, history: &[Event], now: OffsetDateTime, anchor: bool) -> Markup {
    let r = &s.record;
    let letter = r.grade.as_ref().map(|g| g.letter);
    html! {
        article.endpoint id=[anchor.then(|| format!("ep-{}", s.id))] {
            h1 { (cells::grade(letter)) " " span.mono { (cells::address(s)) } @let n = name_of(s); @if !n.is_empty() { " · " (n) } }
            div.card {
                dl.kv {
                    dt { "Category" } dd id="category" { (s.category.as_str()) @if let Some(g) = &s.gone_at { " (gone since " (g) ")" } }
                    dt { "Service" } dd { (crate::console::endpoints::service(s)) }
                    @if let Some(h) = &r.handshake {
                        dt { "Negotiated" } dd {
                            (h.protocol.as_deref().unwrap_or("–")) " "
                            (h.cipher_suite.as_ref().map_or("", |c| c.name.as_str())) " "
                            (h.group.as_deref().unwrap_or(""))
                            @if let Some(e) = &h.error { span.bad-text { " " (e) } }
                        }
                    }
                    @if let Some(p) = &r.plain {
                        dt { "Banner" } dd.mono { (p.banner.as_deref().unwrap_or("")) }
                    }
                    dt { "Sensor" } dd { @if s.key.sensor.is_empty() { "this sensor" } @else { (s.key.sensor) } }
                    dt { "Profile" } dd { (s.profile) }
                    dt { "Tags" } dd { (s.tags.join(", ")) }
                    dt { "First seen" } dd { (s.first_seen) }
                    dt { "Last seen" } dd { (s.last_seen) }
                }
            }
            (rating(s))
            (chain(s, now))
            (protocols(s))
            (vulnerabilities(s))
            (headers(s))
            (timeline(history))
        }
    }
}

fn rating(s: &Stored) -> Markup {
    let r = &s.record;
    let info = r.security_rating_info.as_ref();
    html! {
        h2 { "Rating" }
        div.card {
            @match &r.grade {
                None => p.muted { "Not graded." },
                Some(g) => {
                    p { "Grade " (cells::grade(Some(g.letter))) " — score " (g.score)
                        " (protocol " (g.protocol_score) ", key exchange " (g.key_exchange_score) ", cipher " (g.cipher_score) ")"
                        @if let Some(t) = g.if_trusted { " · " (t.as_str()) " if trust issues are ignored" } }
                    @if !g.caps.is_empty() {
                        table id="caps" { thead { tr { th { "Cap" } th { "Limits to" } th { "Reason" } } }
                            tbody { @for c in &g.caps { tr { td.mono { (c.id) } td { (cells::grade(Some(c.letter))) } td { (c.reason) } } } } }
                    }
                    @if !g.warnings.is_empty() { p { "Warnings:" } ul.plain { @for w in &g.warnings { li { (w) } } } }
                    @if !g.notes.is_empty() { p.muted { "Not seen: " (g.notes.join("; ")) } }
                }
            }
            dl.kv {
                dt { "Security rating" } dd { (level(info.and_then(|i| i.security_rating_score))) }
                dt { "Certificate chain" } dd { (level(info.and_then(|i| i.certificate_chain_score))) }
                dt { "Protocols and ciphers" } dd { (level(info.and_then(|i| i.protocol_cipher_score.score))) }
                dt { "Grade level" } dd { (level(r.grade.as_ref().map(|g| Level::of(g.letter)))) }
            }
            @if !r.findings.is_empty() {
                h2 { "Findings" }
                ul.plain { @for f in &r.findings {
                    li { span class=(severity_class(f.severity)) { (severity(f.severity)) } " " (f.title) " — " span.muted { (f.evidence) } }
                } }
            }
        }
    }
}

fn chain(s: &Stored, now: OffsetDateTime) -> Markup {
    let r = &s.record;
    let report = r.chain_report.as_ref();
    let certs: Vec<&CertInfo> = if r.chain.is_empty() {
        r.certificate.iter().collect()
    } else {
        r.chain.iter().collect()
    };
    if certs.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Certificate chain" }
        div.card {
            @if let Some(rep) = report {
                p { "Trust: "
                    @match rep.trusted { Some(true) => span.good-text { "trusted" }, Some(false) => span.bad-text { "not trusted" }, None => span.muted { "unknown" } }
                    @if !rep.trusted_by.is_empty() { " by " (rep.trusted_by.join(", ")) }
                    " · name check: " (format!("{:?}", rep.name_check.status).to_lowercase())
                    @if let Some(e) = &rep.name_check.expected { " for " span.mono { (e) } }
                }
                @let whole: Vec<_> = rep.chain_issues.iter().filter(|i| i.certificate_index.is_none()).collect();
                @if !whole.is_empty() { ul.plain { @for i in whole {
                    li { span class=(severity_class(i.severity)) { (i.id) } " " (i.detail) }
                } } }
            }
            @for (i, c) in certs.iter().enumerate() {
                div.card.cert data-index=(i) {
                    p { strong { @if i == 0 { "Leaf" } @else { "#" (i) } } " " span.mono { (c.subject_dn) } }
                    dl.kv {
                        dt { "Issuer" } dd.mono { (c.issuer_dn) }
                        dt { "Valid" } dd { (c.valid_from) " → " (c.valid_to)
                            @if let Some(e) = Expiry::at(&c.valid_to, now) { " (" (e.label()) @if !e.expired { " days left" } ")" } }
                        @if let Some(sp) = spent(c, now) {
                            @let e = Expiry::at(&c.valid_to, now);
                            dt { "Validity" } dd { (chart::validity(sp, e.is_some_and(|e| e.expired), e.is_some_and(|e| e.within(30)))) }
                        }
                        dt { "Key" } dd { (c.key_algorithm) " " (c.key_size.map(|b| b.to_string()).unwrap_or_default()) " " (c.key_curve.as_deref().unwrap_or("")) }
                        dt { "Signature" } dd { (c.signature_algorithm) }
                        dt { "Serial" } dd.mono { (c.serial_number) }
                        dt { "SHA-256" } dd.mono { (c.thumbprint) }
                        @if !c.san.is_empty() { dt { "SANs" } dd.mono id="sans" { (c.san.join(", ")) } }
                    }
                    @if let Some(rep) = report {
                        ul.plain { @for issue in rep.issues_on(i) {
                            li { span class=(severity_class(issue.severity)) { (issue.id) } " " (issue.detail)
                                @if issue.breaks_trust { span.bad-text { " (breaks trust)" } } }
                        } }
                    }
                }
            }
        }
    }
}

fn suites(list: &[SeedCipher], class: CipherClass) -> Markup {
    let name = match class {
        CipherClass::Safe => "safe",
        CipherClass::Weak => "weak",
        CipherClass::Insecure => "insecure",
    };
    html! {
        @for c in list {
            tr { td.mono { (c.name) } td { (c.kex_info) } td { @if c.forward_secrecy { "yes" } @else { "no" } } td class=(name) { (name) } }
        }
    }
}

fn protocols(s: &Stored) -> Markup {
    let r = &s.record;
    let Some(p) = &r.protocols else {
        return html! {};
    };
    let classed = r
        .security_rating_info
        .as_ref()
        .map(|i| i.protocol_ciphers.as_slice())
        .unwrap_or(&[]);
    html! {
        h2 { "Protocols and cipher suites" }
        div.card {
            p { @for name in crate::model::record::PROTOCOL_NAMES {
                @let on = p.get(name).copied().unwrap_or(false);
                span class=(if on && (name.starts_with("SSL") || name == "TLSv1.0" || name == "TLSv1.1") { "bad-text" } else if on { "good-text" } else { "muted" }) {
                    (name) ": " @if on { "yes" } @else { "no" }
                } " · "
            } }
            @for pc in classed {
                h2.mono { (pc.protocol) @if let Some(o) = &pc.cipher_pref_order { span.muted { " (" (o) " order)" } } }
                table.suites { thead { tr { th { "Suite" } th { "Key exchange" } th { "Forward secrecy" } th { "Class" } } }
                    tbody {
                        (suites(&pc.insecure_ciphers, CipherClass::Insecure))
                        (suites(&pc.weak_ciphers, CipherClass::Weak))
                        (suites(&pc.safe_ciphers, CipherClass::Safe))
                    } }
                @if !pc.warnings.is_empty() { p.warn-text { (pc.warnings) } }
            }
        }
    }
}

fn vulnerabilities(s: &Stored) -> Markup {
    let v = &s.record.vulnerabilities;
    if v.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Vulnerabilities" }
        table id="vulnerabilities" { thead { tr { th { "Check" } th { "Verdict" } th { "How" } th { "Evidence" } } }
            tbody { @for x in v {
                tr { td { (x.name) }
                    td { @match x.status {
                        VulnStatus::Vulnerable => span class=(severity_class(x.severity)) { "vulnerable (" (severity(x.severity)) ")" },
                        VulnStatus::NotVulnerable => span.good-text { "not vulnerable" },
                        VulnStatus::NotTested => span.muted { "not tested" },
                    } }
                    td { @if x.inferred { "inferred" } @else { "probed" } }
                    td.muted { (x.evidence) } }
            } } }
    }
}

fn headers(s: &Stored) -> Markup {
    let Some(info) = &s.record.security_rating_info else {
        return html! {};
    };
    if info.security_headers.is_empty() && info.http_response_headers.is_empty() {
        return html! {};
    }
    html! {
        h2 { "HTTP security headers" }
        table id="headers" { thead { tr { th { "Header" } th { "Value" } } }
            tbody {
                @for (k, v) in &info.security_headers { tr { td.mono { (k) } td.mono { (v) } } }
                @for (k, v) in &info.http_response_headers { tr.muted { td.mono { (k) } td.mono { (v) } } }
            } }
    }
}

fn timeline(history: &[Event]) -> Markup {
    html! {
        h2 { "History" }
        table id="history" { thead { tr { th { "When" } th { "What" } th { "Details" } th { "Grade" } th { "Profile" } } }
            tbody {
                @for e in history.iter().rev() {
                    tr data-kind=(e.kind) { td { (e.at) } td { (e.kind.replace('_', " ")) } td { (e.reasons.join("; ")) }
                        td { (e.seen.as_ref().and_then(|s| s.grade.as_deref()).unwrap_or("")) } td { (e.profile) } }
                }
                @if history.is_empty() { tr { td colspan="5" class="muted" { "No change recorded." } } }
            } }
    }
}
