//! Small pieces every table uses: a grade badge, days to expiry, a link to
//! an endpoint (a page in the console, an anchor in the report file).

use maud::{Markup, html};
use time::OffsetDateTime;

use crate::model::assessment::Letter;
use crate::output::expiry::Expiry;
use crate::store::endpoint::Stored;

/// Where an endpoint's detail lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// `/endpoints/{id}` on the service port.
    Console,
    /// `#ep-{id}` further down the same file.
    Report,
}

impl Links {
    pub fn endpoint(self, s: &Stored) -> String {
        match self {
            Links::Console => format!("/endpoints/{}", s.id),
            Links::Report => format!("#ep-{}", s.id),
        }
    }
}

/// The badge's colour class for a letter.
pub fn grade_class(l: Option<Letter>) -> &'static str {
    match l {
        Some(Letter::APlus | Letter::A) => "g-good",
        Some(Letter::AMinus | Letter::B) => "g-ok",
        Some(Letter::C | Letter::D | Letter::E) => "g-warn",
        Some(_) => "g-bad",
        None => "g-none",
    }
}

/// The chart's bar class for a grade label.
pub fn grade_bar_class(label: &str) -> &'static str {
    grade_class(Letter::parse(label)).trim_start_matches("g-")
}

pub fn grade(l: Option<Letter>) -> Markup {
    html! {
        span class=(format!("grade {}", grade_class(l))) { (l.map_or("–", Letter::as_str)) }
    }
}

/// `valid_to`'s date and the days left, coloured when soon or over.
pub fn expires(s: &Stored, now: OffsetDateTime) -> Markup {
    let Some(c) = &s.record.certificate else {
        return html! { span.muted { "–" } };
    };
    let e = Expiry::at(&c.valid_to, now);
    let class = match e {
        Some(e) if e.expired => "bad-text",
        Some(e) if e.within(30) => "warn-text",
        _ => "",
    };
    html! {
        span class=(class) title=(c.valid_to) {
            (c.valid_to.get(..10).unwrap_or(&c.valid_to))
            @if let Some(e) = e { " (" (e.label()) @if !e.expired { " d" } ")" }
        }
    }
}

/// `address:port` (IPv6 in brackets).
pub fn address(s: &Stored) -> String {
    if s.key.address.contains(':') {
        format!("[{}]:{}", s.key.address, s.key.port)
    } else {
        format!("{}:{}", s.key.address, s.key.port)
    }
}
