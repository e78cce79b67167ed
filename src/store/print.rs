//! How a stored endpoint prints in `sensor inventory` (table and CSV; JSON
//! and NDJSON are its serde form): where and what it is, its certificate
//! and how long it has left, where it came from, and since when.

use crate::output::expiry::Expiry;
use crate::output::{Align, Column, Context, Printable, Style, Width};
use crate::store::endpoint::Stored;

/// Scripts read these columns by name and by position: an interface.
/// (`expires` is there for days to expiry.)
const CSV_HEADER: [&str; 16] = [
    "id",
    "sensor",
    "address",
    "port",
    "sni",
    "category",
    "grade",
    "profile",
    "first_seen",
    "last_seen",
    "gone_at",
    "tags",
    "service",
    "protocol",
    "subject_cn",
    "expires",
];

/// Every column as wide as its widest cell: an IPv4 inventory is not
/// padded for IPv6 addresses it does not have.
const fn column(title: &'static str, align: Align) -> Column {
    Column {
        title,
        align,
        width: Width::Fit,
        gap: 2,
    }
}

const TABLE: [Column; 10] = [
    column("ADDRESS", Align::Left),
    column("PORT", Align::Right),
    column("SNI", Align::Left),
    column("CATEGORY", Align::Left),
    column("GRADE", Align::Left),
    column("SUBJECT CN", Align::Left),
    column("EXPIRES", Align::Left),
    column("DAYS", Align::Right),
    column("PROFILE", Align::Left),
    column("LAST SEEN", Align::Left),
];
/// Where the grade and the days are in the table, for their colours.
const GRADE_AT: usize = 4;
const DAYS_AT: usize = 7;

fn grade(s: &Stored) -> String {
    s.record
        .grade
        .as_ref()
        .map(|g| g.letter.as_str().to_string())
        .unwrap_or_default()
}

impl Printable for Stored {
    const CSV_HEADER: &'static [&'static str] = &CSV_HEADER;

    fn csv_row(&self, _cx: &Context) -> Vec<String> {
        let cert = self.record.certificate.as_ref();
        vec![
            self.id.clone(),
            self.key.sensor.clone(),
            self.key.address.clone(),
            self.key.port.to_string(),
            self.key.sni.clone(),
            self.category.as_str().to_string(),
            grade(self),
            self.profile.clone(),
            self.first_seen.clone(),
            self.last_seen.clone(),
            self.gone_at.clone().unwrap_or_default(),
            self.tags.join(";"),
            self.record.service.clone().unwrap_or_default(),
            self.record
                .handshake
                .as_ref()
                .and_then(|t| t.protocol.clone())
                .unwrap_or_default(),
            cert.and_then(|c| c.common_name.clone()).unwrap_or_default(),
            cert.map(|c| c.valid_to.clone()).unwrap_or_default(),
        ]
    }

    const TABLE: &'static [Column] = &TABLE;

    /// The profile that found it, or the sensor that reported it; and
    /// whether it is missing or gone.
    fn table_row(&self, cx: &Context) -> Vec<String> {
        let source = if self.key.sensor.is_empty() {
            self.profile.clone()
        } else {
            format!("sensor:{}", self.key.sensor)
        };
        let note = match (&self.gone_at, self.missed_runs) {
            (Some(at), _) => format!(" (gone since {at})"),
            (None, n) if n > 0 => format!(" (missed {n} runs)"),
            _ => String::new(),
        };
        let cert = self.record.certificate.as_ref();
        vec![
            self.key.address.clone(),
            self.key.port.to_string(),
            self.key.sni.clone(),
            self.category.as_str().to_string(),
            grade(self),
            cert.and_then(|c| c.common_name.clone()).unwrap_or_default(),
            cert.map(|c| c.valid_to.split('T').next().unwrap_or_default().to_string())
                .unwrap_or_default(),
            Expiry::of(&self.record, cx.now).map(|e| e.label()).unwrap_or_default(),
            source,
            format!("{}{note}", self.last_seen),
        ]
    }

    fn table_styles(&self, cx: &Context) -> Vec<Style> {
        let mut styles = vec![Style::Plain; TABLE.len()];
        styles[GRADE_AT] = Style::grade(&grade(self));
        styles[DAYS_AT] = Style::expiry(Expiry::of(&self.record, cx.now), cx.soon_days);
        styles
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::{Category, EndpointRecord};
    use crate::output::{Format, sink_of};
    use crate::store::endpoint::Key;

    fn stored(sensor: &str, gone_at: Option<&str>, missed_runs: u32) -> Stored {
        let record = EndpointRecord::new("10.0.0.1".parse().unwrap(), 443, None, Category::Discovered, "t".into());
        let key = Key {
            sensor: sensor.into(),
            ..Key::of(&record)
        };
        Stored {
            id: "id1".into(),
            key,
            profile: "lab".into(),
            category: Category::Discovered,
            first_seen: "2026-11-01".into(),
            last_seen: "2026-11-02".into(),
            missed_runs,
            gone_at: gone_at.map(str::to_string),
            tags: vec!["dmz".into(), "a,b".into()],
            record,
        }
    }

    fn print(format: Format, rows: &[Stored]) -> String {
        let mut buf = Vec::new();
        {
            let mut s = sink_of(format, &mut buf, None);
            for r in rows {
                s.record(r).unwrap();
            }
            s.finish().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn the_table_says_where_it_came_from_and_whether_it_is_gone() {
        let rows = [
            stored("", Some("2026-11-03"), 3),
            stored("seg-a", None, 2),
            stored("", None, 0),
        ];
        let table = print(Format::Table, &rows);
        let lines: Vec<&str> = table.lines().collect();
        // Columns fit their content (an IPv4 address is not padded to 40).
        assert_eq!(
            lines[0],
            "ADDRESS   PORT  SNI  CATEGORY    GRADE  SUBJECT CN  EXPIRES  DAYS  PROFILE       LAST SEEN"
        );
        assert_eq!(
            lines[1],
            "10.0.0.1   443       discovered                                    lab           2026-11-02 (gone since 2026-11-03)"
        );
        assert!(lines[2].contains("  sensor:seg-a  ") && lines[2].ends_with("2026-11-02 (missed 2 runs)"));
        assert!(lines[3].ends_with("lab           2026-11-02"), "{}", lines[3]);
        assert_eq!(lines.len(), 4, "no footer");
    }

    #[test]
    fn the_table_shows_subject_and_days_to_expiry() {
        use time::macros::datetime;
        let mut soon = stored("", None, 0);
        soon.record.certificate = Some(crate::model::cert::CertInfo {
            common_name: Some("soon.test".into()),
            valid_to: "2026-12-04T12:00:00Z".into(),
            ..Default::default()
        });
        let mut expired = soon.clone();
        expired.key.address = "10.0.0.2".into();
        if let Some(c) = expired.record.certificate.as_mut() {
            c.common_name = Some("old.test".into());
            c.valid_to = "2026-11-01T00:00:00Z".into();
        }
        let options = crate::output::Options {
            context: crate::output::Context {
                now: datetime!(2026-11-24 12:00 UTC),
                soon_days: 30,
            },
            ..Default::default()
        };
        let mut buf = Vec::new();
        {
            let mut s = crate::output::sink_with(Format::Table, &mut buf, None, options);
            for r in [&soon, &expired] {
                s.record(r).unwrap();
            }
            s.finish().unwrap();
        }
        insta::assert_snapshot!("inventory_table", String::from_utf8(buf).unwrap());
        let mut buf = Vec::new();
        {
            let mut s = crate::output::sink_with(Format::Csv, &mut buf, None, options);
            s.record(&expired).unwrap();
            s.finish().unwrap();
        }
        let csv = String::from_utf8(buf).unwrap();
        assert!(
            csv.lines().nth(1).unwrap().ends_with(",old.test,2026-11-01T00:00:00Z"),
            "{csv}"
        );
    }

    #[test]
    fn csv_and_json_carry_every_field() {
        let rows = [stored("seg-a", None, 0)];
        let csv = print(Format::Csv, &rows);
        assert_eq!(
            csv.lines().nth(1),
            Some("id1,seg-a,10.0.0.1,443,,discovered,,lab,2026-11-01,2026-11-02,,\"dmz;a,b\",,,,")
        );
        let json: serde_json::Value = serde_json::from_str(&print(Format::Json, &rows)).unwrap();
        assert_eq!(json[0]["key"]["sensor"], "seg-a");
        assert_eq!(print(Format::Json, &[]), "[]\n");
        assert_eq!(print(Format::Ndjson, &rows).lines().count(), 1);
    }
}
