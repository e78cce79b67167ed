//! The Endpoints page: views as tabs, the filter form, a sortable table,
//! pages and the export links of the current view.

use maud::{Markup, html};
use time::OffsetDateTime;

use crate::console::cells::{self, Links};
use crate::console::view::{self, Query, Sort, View};
use crate::model::record::PROTOCOL_NAMES;
use crate::store::endpoint::Stored;

/// What the filter form offers besides free text.
#[derive(Clone, Debug, Default)]
pub struct Choices {
    pub tags: Vec<String>,
    pub sensors: Vec<String>,
}

impl Choices {
    pub fn of(rows: &[Stored]) -> Choices {
        let mut tags: Vec<String> = rows.iter().flat_map(|s| s.tags.iter().cloned()).collect();
        tags.sort();
        tags.dedup();
        let mut sensors: Vec<String> = rows
            .iter()
            .filter(|s| !s.key.sensor.is_empty())
            .map(|s| s.key.sensor.clone())
            .collect();
        sensors.sort();
        sensors.dedup();
        Choices { tags, sensors }
    }
}

const GRADES: [&str; 10] = ["A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M"];

/// The whole page body.
pub fn body(q: &Query, selected: &[&Stored], choices: &Choices, now: OffsetDateTime) -> Markup {
    let (rows, pages) = q.page_of(selected);
    let page = q.page.min(pages);
    let at = |p: usize| Query { page: p, ..q.clone() }.href("/endpoints");
    html! {
        h1 { "Endpoints" }
        nav.tabs {
            @for v in View::ALL {
                a href=(Query { view: v, page: 1, ..q.clone() }.href("/endpoints"))
                  class=[(v == q.view).then_some("active")] data-view=(v.as_str()) { (v.title()) }
            }
        }
        (filters(q, choices))
        p.muted {
            span id="total" data-count=(selected.len()) { (selected.len()) } " endpoints · "
            a id="export-csv" href=(Query { page: 1, ..q.clone() }.href("/endpoints/export.csv")) { "Export CSV" } " · "
            a id="export-json" href=(Query { page: 1, ..q.clone() }.href("/endpoints/export.json")) { "Export JSON" }
        }
        (table(rows, Links::Console, Some(q), now))
        div.pager {
            @if page > 1 { a id="prev" href=(at(page - 1)) { "← Previous" } }
            span { "Page " (page) " of " (pages) }
            @if page < pages { a id="next" href=(at(page + 1)) { "Next →" } }
        }
    }
}

fn filters(q: &Query, c: &Choices) -> Markup {
    html! {
        form.filters method="get" action="/endpoints" {
            input type="hidden" name="view" value=(q.view.as_str());
            label { "Search" input type="search" name="q" value=[q.text.as_deref()] placeholder="address, name, subject, issuer"; }
            label { "Grade at most"
                select name="grade" {
                    option value="" { "any" }
                    @for g in GRADES {
                        option value=(g) selected[q.grade_at_most.is_some_and(|l| l.as_str() == g)] { (g) }
                    }
                }
            }
            label { "Protocol offered"
                select name="protocol" {
                    option value="" { "any" }
                    @for p in PROTOCOL_NAMES {
                        option value=(p) selected[q.protocol.as_deref() == Some(p)] { (p) }
                    }
                }
            }
            label { "Tag"
                select name="tag" {
                    option value="" { "any" }
                    @for t in &c.tags { option value=(t) selected[q.tag.as_ref() == Some(t)] { (t) } }
                }
            }
            @if !c.sensors.is_empty() {
                label { "Sensor"
                    select name="sensor" {
                        option value="" { "any" }
                        option value=(view::LOCAL) selected[q.sensor.as_deref() == Some(view::LOCAL)] { "this sensor" }
                        @for s in &c.sensors { option value=(s) selected[q.sensor.as_ref() == Some(s)] { (s) } }
                    }
                }
            }
            button type="submit" id="apply" { "Apply" }
        }
    }
}

/// A column header: a link that sorts by it (again: the other way).
fn sort_head(q: Option<&Query>, sort: Sort, title: &str) -> Markup {
    match q {
        None => html! { th { (title) } },
        Some(q) => {
            let descending = q.sort == sort && !q.descending;
            let href = Query {
                sort,
                descending,
                page: 1,
                ..q.clone()
            }
            .href("/endpoints");
            let mark = match (q.sort == sort, q.descending) {
                (true, false) => " ▲",
                (true, true) => " ▼",
                _ => "",
            };
            html! { th { a href=(href) data-sort=(sort.as_str()) { (title) (mark) } } }
        }
    }
}

/// The endpoints table; `q` makes the headers sort links (the console).
pub fn table(rows: &[&Stored], links: Links, q: Option<&Query>, now: OffsetDateTime) -> Markup {
    html! {
        table id="endpoints" {
            thead { tr {
                (sort_head(q, Sort::Address, "Address"))
                (sort_head(q, Sort::Name, "Name"))
                th { "Category" }
                (sort_head(q, Sort::Grade, "Grade"))
                th { "Subject" }
                th { "Issuer" }
                (sort_head(q, Sort::Expires, "Expires"))
                th { "Service" }
                (sort_head(q, Sort::Sensor, "Sensor"))
                (sort_head(q, Sort::LastSeen, "Last seen"))
            } }
            tbody {
                @for s in rows {
                    @let cert = s.record.certificate.as_ref();
                    tr data-id=(s.id) {
                        td { a.mono href=(links.endpoint(s)) { (cells::address(s)) } }
                        td { (view::name_of(s)) }
                        td { (s.category.as_str()) @if s.gone_at.is_some() { " " span.muted { "(gone)" } } }
                        td { (cells::grade(s.record.grade.as_ref().map(|g| g.letter))) }
                        td { (cert.map(|c| c.subject_dn.as_str()).unwrap_or("")) }
                        td { (cert.map(|c| c.issuer_dn.as_str()).unwrap_or("")) }
                        td { (cells::expires(s, now)) }
                        td { (service(s)) }
                        td { @if s.key.sensor.is_empty() { span.muted { "this sensor" } } @else { (s.key.sensor) } }
                        td { (s.last_seen.get(..16).unwrap_or(&s.last_seen)) }
                    }
                }
                @if rows.is_empty() {
                    tr { td colspan="10" class="muted" { "No endpoint in this view." } }
                }
            }
        }
    }
}

/// What runs there: the service, the plaintext product, the HTTP server.
pub fn service(s: &Stored) -> String {
    let r = &s.record;
    let mut parts: Vec<&str> = Vec::new();
    if let Some(svc) = &r.service {
        parts.push(svc);
    }
    if let Some(p) = &r.plain {
        if let Some(prod) = &p.product {
            parts.push(prod);
        }
        if let Some(server) = &p.server {
            parts.push(server);
        }
    }
    if let Some(server) = r
        .security_rating_info
        .as_ref()
        .and_then(|i| {
            i.http_response_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("server"))
        })
        .map(|(_, v)| v.as_str())
    {
        parts.push(server);
    }
    parts.join(" · ")
}
