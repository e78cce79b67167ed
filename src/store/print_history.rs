//! How an endpoint's history prints in `sensor inventory history` (table
//! and CSV; JSON and NDJSON are the events' serde form): when, which
//! endpoint, what happened, and what it looked like then.

use crate::output::{Column, Context, Printable, Style};
use crate::store::inventory::Event;

const CSV_HEADER: [&str; 13] = [
    "at",
    "address",
    "port",
    "sni",
    "sensor",
    "profile",
    "event",
    "grade",
    "subject_cn",
    "not_after",
    "thumbprint",
    "protocols",
    "what_changed",
];

const TABLE: [Column; 8] = [
    Column::fit("WHEN"),
    Column::fit("ENDPOINT"),
    Column::fit("EVENT"),
    Column::fit("GRADE"),
    Column::fit("CERTIFICATE"),
    Column::fit("EXPIRES"),
    Column::fit("PROTOCOLS"),
    Column::fit("WHAT CHANGED"),
];

const GRADE_AT: usize = 3;

/// `127.0.0.1:443`, `[::1]:443 www.example`, `… (sensor seg-a)`.
fn endpoint(e: &Event) -> String {
    let k = &e.key;
    let mut s = if k.address.contains(':') {
        format!("[{}]:{}", k.address, k.port)
    } else {
        format!("{}:{}", k.address, k.port)
    };
    if !k.sni.is_empty() {
        s.push(' ');
        s.push_str(&k.sni);
    }
    if !k.sensor.is_empty() {
        s.push_str(&format!(" (sensor {})", k.sensor));
    }
    s
}

/// `new`, `seen again`, `first seen`: the kind as words.
fn event(e: &Event) -> String {
    e.kind.replace('_', " ")
}

impl Printable for Event {
    const CSV_HEADER: &'static [&'static str] = &CSV_HEADER;

    fn csv_row(&self, _cx: &Context) -> Vec<String> {
        let s = self.seen.clone().unwrap_or_default();
        vec![
            self.at.clone(),
            self.key.address.clone(),
            self.key.port.to_string(),
            self.key.sni.clone(),
            self.key.sensor.clone(),
            self.profile.clone(),
            self.kind.clone(),
            s.grade.unwrap_or_default(),
            s.subject_cn.unwrap_or_default(),
            s.not_after.unwrap_or_default(),
            s.thumbprint.unwrap_or_default(),
            s.protocols.join(" "),
            self.reasons.join("; "),
        ]
    }

    const TABLE: &'static [Column] = &TABLE;

    fn table_row(&self, _cx: &Context) -> Vec<String> {
        let s = self.seen.clone().unwrap_or_default();
        let certificate = match (&s.subject_cn, &s.thumbprint) {
            (Some(cn), Some(t)) => format!("{cn} ({})", t.get(..8).unwrap_or(t)),
            (None, Some(t)) => t.get(..8).unwrap_or(t).to_string(),
            (Some(cn), None) => cn.clone(),
            (None, None) => String::new(),
        };
        vec![
            self.at.replacen('T', " ", 1).trim_end_matches('Z').to_string(),
            endpoint(self),
            event(self),
            s.grade.unwrap_or_default(),
            certificate,
            s.not_after
                .map(|t| t.split('T').next().unwrap_or_default().to_string())
                .unwrap_or_default(),
            s.protocols.join(" "),
            self.reasons.join("; "),
        ]
    }

    fn table_styles(&self, _cx: &Context) -> Vec<Style> {
        let mut styles = vec![Style::Plain; TABLE.len()];
        if let Some(g) = self.seen.as_ref().and_then(|s| s.grade.as_deref()) {
            styles[GRADE_AT] = Style::grade(g);
        }
        styles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Format, sink_of};
    use crate::store::endpoint::Key;
    use crate::store::inventory::Seen;

    fn events() -> Vec<Event> {
        let key = Key {
            address: "127.0.0.1".into(),
            port: 443,
            sni: String::new(),
            sensor: String::new(),
        };
        let seen = |grade: &str, thumb: &str| Seen {
            category: "discovered".into(),
            grade: Some(grade.into()),
            subject_cn: Some("www.test".into()),
            not_after: Some("2027-06-01T00:00:00Z".into()),
            thumbprint: Some(thumb.into()),
            protocols: vec!["TLSv1.2".into(), "TLSv1.3".into()],
        };
        vec![
            Event {
                at: "2026-11-01T00:00:00Z".into(),
                key: key.clone(),
                profile: "lab".into(),
                kind: "new".into(),
                reasons: Vec::new(),
                seen: Some(seen("A", "aaaaaaaaaaaaaaaa")),
            },
            Event {
                at: "2026-11-02T06:00:00Z".into(),
                key: key.clone(),
                profile: "lab".into(),
                kind: "changed".into(),
                reasons: vec!["certificate replaced".into(), "grade A -> B".into()],
                seen: Some(seen("B", "bbbbbbbbbbbbbbbb")),
            },
            Event {
                at: "2026-11-05T00:00:00Z".into(),
                key: Key {
                    address: "::1".into(),
                    sni: "v6.test".into(),
                    ..key
                },
                profile: "lab".into(),
                kind: "gone".into(),
                reasons: vec!["not seen in 3 runs".into()],
                seen: None,
            },
        ]
    }

    fn print(format: Format) -> String {
        let mut buf = Vec::new();
        {
            let mut s = sink_of(format, &mut buf, None);
            for e in events() {
                s.record(&e).unwrap();
            }
            s.finish().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn the_timeline_table_says_when_what_and_how_it_looked() {
        insta::assert_snapshot!("history_table", print(Format::Table));
    }

    #[test]
    fn csv_and_json_carry_every_field() {
        let csv = print(Format::Csv);
        assert_eq!(
            csv.lines().nth(2),
            Some(
                "2026-11-02T06:00:00Z,127.0.0.1,443,,,lab,changed,B,www.test,2027-06-01T00:00:00Z,bbbbbbbbbbbbbbbb,TLSv1.2 TLSv1.3,certificate replaced; grade A -> B"
            )
        );
        let json: serde_json::Value = serde_json::from_str(&print(Format::Json)).unwrap();
        assert_eq!(json[1]["reasons"][1], "grade A -> B");
        assert_eq!(json[2]["kind"], "gone");
        assert!(json[2].get("seen").is_none());
    }
}
