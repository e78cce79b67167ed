//! The Certificates page: one row per certificate (by SHA-256 thumbprint)
//! with every endpoint where it is deployed, the question before a renewal
//! ("where is this certificate installed?").

use std::collections::BTreeMap;

use maud::{Markup, html};
use time::OffsetDateTime;

use crate::console::cells::{self, Links};
use crate::model::cert::CertInfo;
use crate::store::endpoint::Stored;

/// One certificate and where it is.
pub struct Deployed<'a> {
    pub cert: &'a CertInfo,
    pub endpoints: Vec<&'a Stored>,
}

/// Active endpoints' leaf certificates grouped by thumbprint, soonest
/// expiry first.
pub fn group(rows: &[Stored]) -> Vec<Deployed<'_>> {
    let mut by: BTreeMap<&str, Deployed<'_>> = BTreeMap::new();
    for s in rows.iter().filter(|s| s.gone_at.is_none()) {
        if let Some(c) = &s.record.certificate {
            by.entry(c.thumbprint.as_str())
                .or_insert_with(|| Deployed {
                    cert: c,
                    endpoints: Vec::new(),
                })
                .endpoints
                .push(s);
        }
    }
    let mut out: Vec<Deployed<'_>> = by.into_values().collect();
    out.sort_by(|a, b| {
        a.cert
            .valid_to
            .cmp(&b.cert.valid_to)
            .then(a.cert.thumbprint.cmp(&b.cert.thumbprint))
    });
    out
}

pub fn body(rows: &[Stored], links: Links, now: OffsetDateTime) -> Markup {
    let groups = group(rows);
    html! {
        h1 { "Certificates" }
        p.muted { (groups.len()) " certificates on active endpoints, soonest expiry first." }
        table id="certificates" {
            thead { tr { th { "Subject" } th { "Issuer" } th { "Expires" } th { "Key" } th { "SHA-256" } th { "Deployed at" } } }
            tbody { @for g in &groups {
                tr data-thumbprint=(g.cert.thumbprint) {
                    td { (g.cert.common_name.as_deref().unwrap_or(&g.cert.subject_dn)) }
                    td { (g.cert.issuer_dn) }
                    td { (cells::expires(g.endpoints[0], now)) }
                    td { (g.cert.key_algorithm) " " (g.cert.key_size.map(|b| b.to_string()).unwrap_or_default()) }
                    td.mono { (g.cert.thumbprint.get(..16).unwrap_or(&g.cert.thumbprint)) "…" }
                    td { ul.plain { @for s in &g.endpoints {
                        li { a.mono href=(links.endpoint(s)) { (cells::address(s)) } @if !s.key.sni.is_empty() { " " (s.key.sni) }
                            @if !s.key.sensor.is_empty() { span.muted { " via " (s.key.sensor) } } }
                    } } }
                }
            } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::endpoint;
    use crate::model::record::Category;

    #[test]
    fn one_row_per_thumbprint_with_every_endpoint() {
        let a = endpoint("10.0.0.1", 443, Category::Discovered, None, 50);
        let mut b = endpoint("10.0.0.2", 8443, Category::Discovered, None, 50);
        b.record.certificate = a.record.certificate.clone();
        let c = endpoint("10.0.0.3", 443, Category::Discovered, None, 5);
        let rows = [a, b, c];
        let g = group(&rows);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].endpoints.len(), 1, "soonest expiry first");
        assert_eq!(g[1].endpoints.len(), 2);
    }
}
