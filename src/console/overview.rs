//! The Overview: counts by category and rating level, the grade chart, the
//! expiry timeline, the newest changes, and the fleet's sensors when this
//! sensor is central.

use maud::{Markup, html};

use crate::console::cells;
use crate::console::chart::{self, Bar};
use crate::console::summary::{self, EXPIRY, GRADES, LEVELS, SensorRow, Summary, level_name};
use crate::store::inventory::Event;

/// How many of the newest changes the Overview lists.
pub const RECENT: usize = 15;

pub fn body(s: &Summary, recent: &[Event], sensors: &[SensorRow]) -> Markup {
    let grades: Vec<Bar<'_>> = GRADES
        .iter()
        .map(|g| Bar {
            label: g,
            count: Summary::count(&s.by_grade, g),
            class: cells::grade_bar_class(g),
        })
        .collect();
    let expiry: Vec<Bar<'_>> = EXPIRY
        .iter()
        .map(|(id, name)| Bar {
            label: name,
            count: Summary::count(&s.by_expiry, id),
            class: match *id {
                "expired" => "bad",
                "7d" => "bad",
                "30d" => "warn",
                _ => "info",
            },
        })
        .collect();
    html! {
        h1 { "Overview" }
        div.cards {
            div.stat { span.n id="active" data-count=(s.active) { (s.active) } span.what { "active endpoints" } }
            @for c in ["discovered", "unsecured", "automatable"] {
                div.stat { span.n data-category=(c) data-count=(Summary::count(&s.by_category, c)) { (Summary::count(&s.by_category, c)) } span.what { (c) } }
            }
            div.stat { span.n id="gone" data-count=(s.gone) { (s.gone) } span.what { "gone" } }
        }
        div.cards {
            @for l in LEVELS {
                @let n = Summary::count(&s.by_level, level_name(l));
                div.stat { span.n data-level=(level_name(l)) data-count=(n) { (n) } span.what { (level_name(l)) } }
            }
        }
        div.grid2 {
            section.card { h2 { "Grades" } (chart::bars("grade-chart", "Endpoints by grade", &grades)) }
            section.card { h2 { "Certificates expiring" } (chart::bars("expiry-chart", "Certificates by time to expiry", &expiry)) }
        }
        @if !sensors.is_empty() {
            section.card {
                h2 { "Sensors" }
                p { span.online id="online" { (sensors.iter().filter(|x| x.online).count()) " online" } " · "
                    span.offline id="offline" { (sensors.iter().filter(|x| !x.online).count()) " offline" } }
            }
        }
        section.card {
            h2 { "Newest changes" }
            (changes(recent))
        }
    }
}

/// A list of changes, newest first.
pub fn changes(events: &[Event]) -> Markup {
    html! {
        table id="changes" { thead { tr { th { "When" } th { "Endpoint" } th { "What" } th { "Details" } } }
            tbody {
                @for e in events {
                    tr data-kind=(e.kind) {
                        td { (e.at) }
                        td.mono { (e.key.address) ":" (e.key.port) @if !e.key.sni.is_empty() { " (" (e.key.sni) ")" } }
                        td { (e.kind.replace('_', " ")) }
                        td { (e.reasons.join("; ")) }
                    }
                }
                @if events.is_empty() { tr { td colspan="4" class="muted" { "No change recorded yet." } } }
            } }
    }
}

/// The Sensors page.
pub fn sensors(rows: &[SensorRow]) -> Markup {
    html! {
        h1 { "Sensors" }
        @if rows.is_empty() {
            p.muted { "No other sensor has reported to this one. A central sensor lists here every sensor whose reports it receives." }
        } @else {
            table id="sensors" { thead { tr { th { "Sensor" } th { "State" } th.num { "Endpoints" } th.num { "Gone" } th { "Last report" } } }
                tbody { @for s in rows {
                    tr { td { a href=(format!("/endpoints?view=all&sensor={}", crate::console::view::encode(&s.name))) { (s.name) } }
                        td { @if s.online { span.online { "online" } } @else { span.offline { "offline" } } }
                        td.num { (s.endpoints) } td.num { (s.gone) } td { (s.last_report) } }
                } } }
            p.muted { "Online: reported within " (summary::ONLINE_WITHIN.whole_hours()) " hours." }
        }
    }
}
