//! The HTML report: one self-contained file (`sensor scan -o html`,
//! `sensor inventory export -o html`) with the overview, the table and a
//! detail section per endpoint. Inline CSS and SVG, no script, no link to
//! anything outside the file: it opens offline, from an e-mail or an
//! archive, years later.

use std::io::Write;

use maud::{Markup, html};
use time::OffsetDateTime;

use crate::console::cells::Links;
use crate::console::summary::Summary;
use crate::console::view::{Query, View};
use crate::console::{certificates, detail, endpoints, layout, overview};
use crate::model::record::{Category, EndpointRecord};
use crate::model::timestamp::rfc3339;
use crate::output::Sink;
use crate::store::endpoint::{Key, Stored};
use crate::store::inventory::Event;

/// A scan's records as rows (first and last seen: when probed). Closed and
/// filtered ports are left out, as the inventory leaves them out.
pub fn rows_of(records: &[EndpointRecord], profile: &str) -> Vec<Stored> {
    records
        .iter()
        .filter(|r| !matches!(r.category, Category::Closed | Category::Filtered))
        .map(|r| {
            let key = Key::of(r);
            Stored {
                id: key.id(),
                key,
                profile: profile.to_string(),
                category: r.category,
                first_seen: r.scanned_at.clone(),
                last_seen: r.scanned_at.clone(),
                missed_runs: 0,
                gone_at: None,
                tags: Vec::new(),
                record: r.clone(),
            }
        })
        .collect()
}

/// The whole document. `history` may be empty (a scan has none); each
/// endpoint's detail shows the events whose key is its own.
pub fn render(title: &str, rows: &[Stored], history: &[Event], now: OffsetDateTime) -> Markup {
    let summary = Summary::of(rows, now);
    let all = Query {
        view: View::All,
        per_page: usize::MAX,
        ..Query::default()
    };
    let selected = all.select(rows, now);
    let mut recent: Vec<Event> = history.to_vec();
    recent.sort_by(|a, b| b.at.cmp(&a.at));
    recent.truncate(overview::RECENT);
    layout::document(
        title,
        html! {
            p.muted { "Generated " (rfc3339(now)) " · " (selected.len()) " endpoints" }
            section id="overview" { (overview::body(&summary, &recent, &crate::console::summary::sensors(rows, now))) }
            section id="table" { h1 { "Endpoints" } (endpoints::table(&selected, Links::Report, None, now)) }
            section id="certs" { (certificates::body(rows, Links::Report, now)) }
            section id="details" {
                @for s in &selected {
                    @let own: Vec<Event> = history.iter().filter(|e| e.key == s.key).cloned().collect();
                    (detail::section(s, &own, now, true))
                }
            }
        },
    )
}

/// A sink that keeps a scan's (or an inventory's) rows and writes the
/// report at `finish`, so `-o html` goes through the same path as every
/// other format.
pub struct Report<W: Write> {
    out: W,
    title: String,
    now: OffsetDateTime,
    records: Vec<EndpointRecord>,
    rows: Vec<Stored>,
    history: Vec<Event>,
}

impl<W: Write> Report<W> {
    pub fn new(out: W, title: &str, now: OffsetDateTime) -> Report<W> {
        Report {
            out,
            title: title.to_string(),
            now,
            records: Vec::new(),
            rows: Vec::new(),
            history: Vec::new(),
        }
    }

    /// The endpoints' history, for the detail sections (an inventory export).
    pub fn with_history(mut self, history: Vec<Event>) -> Report<W> {
        self.history = history;
        self
    }

    fn write(&mut self) -> std::io::Result<()> {
        let mut rows = std::mem::take(&mut self.rows);
        rows.extend(rows_of(&self.records, ""));
        let html = render(&self.title, &rows, &self.history, self.now).into_string();
        self.out.write_all(html.as_bytes())?;
        self.out.flush()
    }
}

impl<W: Write> Sink<EndpointRecord> for Report<W> {
    fn record(&mut self, r: &EndpointRecord) -> std::io::Result<()> {
        self.records.push(r.clone());
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.write()
    }
}

impl<W: Write> Sink<Stored> for Report<W> {
    fn record(&mut self, r: &Stored) -> std::io::Result<()> {
        self.rows.push(r.clone());
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::{endpoint, now};
    use crate::model::assessment::{Letter, SecurityRatingInfo};
    use crate::model::record::ServiceInfo;

    const SCRIPT: &str = "<script>window.pwned=1;document.title='pwned'</script>";
    const IMG: &str = "\"><img src=x onerror=\"window.pwned=1\">";

    fn hostile() -> Vec<Stored> {
        let mut tls = endpoint("127.0.0.1", 443, Category::Discovered, Some(Letter::A), 30);
        if let Some(c) = tls.record.certificate.as_mut() {
            c.common_name = Some(SCRIPT.into());
            c.subject_dn = format!("CN={SCRIPT}");
            c.issuer_dn = format!("CN={IMG}");
            c.san = vec![SCRIPT.into(), IMG.into()];
        }
        tls.key.sni = IMG.into();
        tls.record.security_rating_info = Some(SecurityRatingInfo {
            protocol_ciphers: Vec::new(),
            handshake_protocols: Vec::new(),
            certificate_chain: crate::model::assessment::CertificateChain {
                cert_chain_details: Vec::new(),
            },
            security_headers: [("content-security-policy".to_string(), SCRIPT.to_string())]
                .into_iter()
                .collect(),
            http_response_headers: [("server".to_string(), IMG.to_string())].into_iter().collect(),
            security_rating_score: None,
            certificate_chain_score: None,
            protocol_cipher_score: crate::model::assessment::ProtocolCipherScore {
                protocols: Vec::new(),
                score: None,
            },
            security_rating: None,
        });
        let mut plain = endpoint("127.0.0.1", 80, Category::Unsecured, None, 0);
        plain.record.plain = Some(ServiceInfo {
            name: "http".into(),
            banner: Some(SCRIPT.into()),
            server: Some(IMG.into()),
            product: None,
            version: None,
        });
        plain.tags = vec![SCRIPT.into()];
        vec![tls, plain]
    }

    #[test]
    fn network_values_are_escaped_everywhere() {
        let html = render("report <b>", &hostile(), &[], now()).into_string();
        assert!(!html.contains("<script"), "no script element at all");
        assert!(!html.contains("<img"), "no injected element");
        assert!(html.contains("&lt;script&gt;window.pwned=1;document.title='pwned'&lt;/script&gt;"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;"));
        assert!(html.contains("report &lt;b&gt;"));
    }

    #[test]
    fn the_report_stands_alone() {
        let rows = vec![
            endpoint("10.0.0.1", 443, Category::Discovered, Some(Letter::A), 3),
            endpoint("10.0.0.2", 443, Category::Discovered, Some(Letter::F), 200),
        ];
        let html = render("Scan", &rows, &[], now()).into_string();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<style>"), "CSS inline");
        for outside in ["<link", "src=\"http", "href=\"http", "<script", "@import", "url("] {
            assert!(!html.contains(outside), "{outside} would reach outside the file");
        }
        // Overview, table and one detail per endpoint, linked by anchor.
        assert!(html.contains("id=\"grade-chart\""));
        assert!(html.contains("data-label=\"A\" data-count=\"1\""));
        assert!(html.contains("data-label=\"F\" data-count=\"1\""));
        for s in &rows {
            assert!(html.contains(&format!("href=\"#ep-{}\"", s.id)));
            assert!(html.contains(&format!("id=\"ep-{}\"", s.id)));
        }
    }
}
