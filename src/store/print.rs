//! How a stored endpoint prints in `sensor inventory` (table and CSV; JSON
//! and NDJSON are its serde form): where and what it is, where it came
//! from, and since when.

use crate::output::{Align, Column, Printable, Width};
use crate::store::endpoint::Stored;

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

const fn column(title: &'static str, align: Align, width: usize, gap: usize) -> Column {
    Column {
        title,
        align,
        width: Width::AtLeast(width),
        gap,
    }
}

const TABLE: [Column; 7] = [
    column("ADDRESS", Align::Left, 40, 1),
    column("PORT", Align::Right, 5, 2),
    column("SNI", Align::Left, 24, 1),
    column("CATEGORY", Align::Left, 11, 1),
    column("GRADE", Align::Left, 5, 1),
    column("PROFILE", Align::Left, 20, 1),
    column("LAST SEEN", Align::Left, 0, 0),
];

fn grade(s: &Stored) -> String {
    s.record
        .grade
        .as_ref()
        .map(|g| g.letter.as_str().to_string())
        .unwrap_or_default()
}

impl Printable for Stored {
    const CSV_HEADER: &'static [&'static str] = &CSV_HEADER;

    fn csv_row(&self) -> Vec<String> {
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
    fn table_row(&self) -> Vec<String> {
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
        vec![
            self.key.address.clone(),
            self.key.port.to_string(),
            self.key.sni.clone(),
            self.category.as_str().to_string(),
            grade(self),
            source,
            format!("{}{note}", self.last_seen),
        ]
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
        assert_eq!(
            lines[0],
            format!(
                "{:<40} {:>5}  {:<24} {:<11} {:<5} {:<20} LAST SEEN",
                "ADDRESS", "PORT", "SNI", "CATEGORY", "GRADE", "PROFILE"
            )
        );
        assert_eq!(
            lines[1],
            format!(
                "{:<40} {:>5}  {:<24} {:<11} {:<5} {:<20} 2026-11-02 (gone since 2026-11-03)",
                "10.0.0.1", 443, "", "discovered", "", "lab"
            )
        );
        assert!(lines[2].contains(" sensor:seg-a ") && lines[2].ends_with("2026-11-02 (missed 2 runs)"));
        assert!(lines[3].ends_with("lab                  2026-11-02"), "{}", lines[3]);
        assert_eq!(lines.len(), 4, "no footer");
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
