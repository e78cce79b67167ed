//! The Scans page: what ran when, for how long, and what it found.

use maud::{Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::inventory::RunSummary;

fn took(r: &RunSummary) -> String {
    let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    match (parse(&r.started_at), r.finished_at.as_deref().and_then(parse)) {
        (Some(a), Some(b)) => crate::output::human::duration((b - a).try_into().unwrap_or_default()),
        _ => "–".into(),
    }
}

pub fn body(runs: &[RunSummary]) -> Markup {
    html! {
        h1 { "Scans" }
        table id="scans" {
            thead { tr { th { "Run" } th { "Profile" } th { "Started" } th { "Took" } th.num { "New" } th.num { "Changed" } th.num { "Gone" } } }
            tbody {
                @for r in runs {
                    tr { td { (r.id) } td { (r.profile) } td { (r.started_at) } td { (took(r)) }
                        td.num { (r.new) } td.num { (r.changed) } td.num { (r.gone) } }
                }
                @if runs.is_empty() { tr { td colspan="7" class="muted" { "No run recorded yet." } } }
            }
        }
    }
}
