//! Charts as SVG drawn on the server: no script, no external asset, so
//! they show in an air-gapped segment, in an e-mailed report and under a
//! Content-Security-Policy that allows no script at all.
//!
//! Every bar carries its label and count as `data-` attributes, and a
//! `<title>` a screen reader (and the browser test) can read.

use maud::{Markup, html};

/// One bar: its label, its count and the CSS class that colours it.
pub struct Bar<'a> {
    pub label: &'a str,
    pub count: u64,
    pub class: &'a str,
}

const WIDTH: u64 = 560;
const HEIGHT: u64 = 180;
const LABELS: u64 = 34;

/// A vertical bar chart; `id` names the `<svg>` for links and tests.
pub fn bars(id: &str, title: &str, bars: &[Bar<'_>]) -> Markup {
    let max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let n = bars.len().max(1) as u64;
    let slot = WIDTH / n;
    let bar_w = slot.saturating_sub(8).max(4);
    let plot = HEIGHT - LABELS;
    html! {
        svg id=(id) class="chart" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) aria-label=(title) {
            title { (title) }
            @for (i, b) in bars.iter().enumerate() {
                @let h = if b.count == 0 { 0 } else { (b.count * (plot - 16) / max).max(2) };
                @let x = i as u64 * slot + 4;
                @let y = plot - h;
                g class="bar" data-label=(b.label) data-count=(b.count) {
                    title { (b.label) ": " (b.count) }
                    rect class=(b.class) x=(x) y=(y) width=(bar_w) height=(h) {}
                    text class="count" x=(x + bar_w / 2) y=(y.saturating_sub(3).max(10)) text-anchor="middle" { (b.count) }
                    text class="label" x=(x + bar_w / 2) y=(HEIGHT - 12) text-anchor="middle" { (b.label) }
                }
            }
            line class="axis" x1="0" y1=(plot) x2=(WIDTH) y2=(plot) {}
        }
    }
}

/// A certificate's validity as a bar: how much of its life has passed and
/// where today is. `spent` is between 0 and 1; `expired` draws it red.
pub fn validity(spent: f64, expired: bool, soon: bool) -> Markup {
    let w = 400.0;
    let filled = (spent.clamp(0.0, 1.0) * w).round();
    let class = if expired {
        "bad"
    } else if soon {
        "warn"
    } else {
        "good"
    };
    html! {
        svg class="validity" xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 400 14" width="400" height="14"
            aria-label=(format!("{:.0}% of its validity has passed", spent.clamp(0.0, 1.0) * 100.0)) {
            rect class="track" x="0" y="2" width="400" height="10" {}
            rect class=(class) x="0" y="2" width=(filled) height="10" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_bar_with_its_count() {
        let svg = bars(
            "grades",
            "Grades",
            &[
                Bar {
                    label: "A",
                    count: 3,
                    class: "good",
                },
                Bar {
                    label: "F",
                    count: 0,
                    class: "bad",
                },
            ],
        )
        .into_string();
        assert_eq!(svg.matches("<g class=\"bar\"").count(), 2);
        assert!(svg.contains("data-label=\"A\" data-count=\"3\""));
        assert!(svg.contains("data-label=\"F\" data-count=\"0\""));
        assert!(svg.contains("height=\"0\""), "an empty bar is flat");
        assert!(!svg.contains("<rect class=\"good\" x=\"4\" y=\"130\" width=\"272\" height=\"130\">"));
        assert!(svg.contains("</rect>"), "SVG in HTML: every element closed");
    }

    #[test]
    fn validity_bar_fills_with_time() {
        let half = validity(0.5, false, false).into_string();
        assert!(half.contains("class=\"good\" x=\"0\" y=\"2\" width=\"200\""));
        let over = validity(1.7, true, false).into_string();
        assert!(over.contains("class=\"bad\" x=\"0\" y=\"2\" width=\"400\""));
    }
}
