//! How a scan's [`EndpointRecord`] prints: the flat columns CSV and the
//! table share, sorted by address and port, with a count of what was found.

use std::cmp::Ordering;

use super::expiry::Expiry;
use super::human::plural;
use super::{Column, Context, Printable, Style};
use crate::model::record::EndpointRecord;

/// The flat columns shared by CSV and the table.
fn columns(r: &EndpointRecord) -> [String; 13] {
    let h = r.handshake.as_ref();
    let c = r.certificate.as_ref();
    let detail = match (&r.plain, h.and_then(|h| h.error.clone())) {
        (Some(p), _) => p.server.clone().or_else(|| p.banner.clone()).unwrap_or_default(),
        (None, Some(e)) => e,
        _ => String::new(),
    };
    [
        r.address.to_string(),
        r.port.to_string(),
        r.hostname.clone().unwrap_or_default(),
        r.category.as_str().to_string(),
        r.service.clone().unwrap_or_default(),
        h.and_then(|h| h.protocol.clone()).unwrap_or_default(),
        h.and_then(|h| h.cipher_suite.as_ref().map(|s| s.name.clone()))
            .unwrap_or_default(),
        h.and_then(|h| h.group.clone()).unwrap_or_default(),
        c.and_then(|c| c.common_name.clone()).unwrap_or_default(),
        c.map(|c| c.valid_to.clone()).unwrap_or_default(),
        c.map(|c| {
            format!(
                "{} {}",
                c.key_algorithm,
                c.key_size.map(|b| b.to_string()).unwrap_or_default()
            )
        })
        .unwrap_or_default()
        .trim()
        .to_string(),
        detail,
        r.grade.as_ref().map(|g| g.letter.to_string()).unwrap_or_default(),
    ]
}

/// Scripts read these columns by name and by position: an interface.
/// (`not_after` is there for days to expiry.)
const HEADER: [&str; 13] = [
    "address",
    "port",
    "hostname",
    "category",
    "service",
    "protocol",
    "cipher_suite",
    "group",
    "subject_cn",
    "not_after",
    "key",
    "detail",
    "grade",
];

/// Which of [`columns`] the table shows, in its order; [`EXPIRES`] and
/// [`DAYS`] are the table's own.
const PICK: [usize; 11] = [0, 1, 3, 12, 4, 5, 6, 8, EXPIRES, DAYS, 11];
const EXPIRES: usize = 100;
const DAYS: usize = 101;
/// Where the grade and the days are in the table, for their colours.
const GRADE_AT: usize = 3;
const DAYS_AT: usize = 9;

const TABLE: [Column; 11] = [
    Column::fit("ADDRESS"),
    Column::fit("PORT"),
    Column::fit("CATEGORY"),
    Column::fit("GRADE"),
    Column::fit("SERVICE"),
    Column::fit("PROTOCOL"),
    Column::fit("CIPHER"),
    Column::fit("SUBJECT CN"),
    Column::fit("EXPIRES"),
    Column::fit("DAYS"),
    Column::fit("DETAIL"),
];

impl Printable for EndpointRecord {
    const CSV_HEADER: &'static [&'static str] = &HEADER;

    fn csv_row(&self, _cx: &Context) -> Vec<String> {
        columns(self).to_vec()
    }

    const TABLE: &'static [Column] = &TABLE;

    fn table_row(&self, cx: &Context) -> Vec<String> {
        let cols = columns(self);
        let address = match &self.hostname {
            Some(h) => format!("{} ({h})", cols[0]),
            None => cols[0].clone(),
        };
        let expiry = Expiry::of(self, cx.now);
        PICK.iter()
            .map(|&i| match i {
                0 => address.clone(),
                // The date: the days column says how far off it is.
                EXPIRES => cols[9].split('T').next().unwrap_or_default().to_string(),
                DAYS => expiry.map(|e| e.label()).unwrap_or_default(),
                i => truncate(&cols[i], 60),
            })
            .collect()
    }

    fn table_styles(&self, cx: &Context) -> Vec<Style> {
        let mut styles = vec![Style::Plain; TABLE.len()];
        styles[GRADE_AT] = Style::grade(&self.grade.as_ref().map(|g| g.letter.to_string()).unwrap_or_default());
        styles[DAYS_AT] = Style::expiry(Expiry::of(self, cx.now), cx.soon_days);
        styles
    }

    fn table_footer(rows: &[Self]) -> Option<String> {
        let count = |cat: &str| rows.iter().filter(|r| r.category.as_str() == cat).count();
        Some(format!(
            "\n{}: {} discovered (TLS), {} unsecured",
            plural(rows.len() as u64, "endpoint"),
            count("discovered"),
            count("unsecured")
        ))
    }

    fn order(&self, other: &Self) -> Ordering {
        (self.address, self.port, &self.hostname).cmp(&(other.address, other.port, &other.hostname))
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use crate::grade::Letter;
    use crate::model::assessment::Grade;
    use crate::model::cert::CertInfo;
    use crate::model::record::{Category, EndpointRecord, Handshake};
    use crate::output::{Context, Format, Options, ScanMeta, sink, sink_with};

    fn print(format: Format, records: &[EndpointRecord]) -> String {
        let mut buf = Vec::new();
        {
            let mut s = sink(format, &mut buf, ScanMeta::default());
            for r in records {
                s.record(r).unwrap();
            }
            s.finish().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    fn print_with(format: Format, records: &[EndpointRecord], options: Options) -> String {
        let mut buf = Vec::new();
        {
            let mut s = sink_with(format, &mut buf, Some(ScanMeta::default()), options);
            for r in records {
                s.record(r).unwrap();
            }
            s.finish().unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    fn records() -> Vec<EndpointRecord> {
        let mut http = EndpointRecord::new("127.0.0.2".parse().unwrap(), 80, None, Category::Unsecured, "t".into());
        http.service = Some("http".into());
        let tls = EndpointRecord::new(
            "127.0.0.1".parse().unwrap(),
            443,
            Some("a.test".into()),
            Category::Discovered,
            "t".into(),
        );
        vec![http, tls]
    }

    const NOW: time::OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    fn options(colour: bool, sorted: bool) -> Options {
        Options {
            context: Context {
                now: NOW,
                soon_days: 30,
            },
            colour,
            sorted,
        }
    }

    fn grade(letter: Letter) -> Grade {
        serde_json::from_value(serde_json::json!({
            "letter": letter, "score": 90, "protocol_score": 100, "key_exchange_score": 90,
            "cipher_score": 90, "caps": [], "warnings": [],
        }))
        .unwrap()
    }

    /// TLS endpoints graded A, B and T, one certificate expired, one
    /// expiring in 10 days, one in a year; and a plaintext port.
    fn graded() -> Vec<EndpointRecord> {
        let tls = |ip: &str, port: u16, letter: Letter, cn: &str, valid_to: &str| {
            let mut r = EndpointRecord::new(ip.parse().unwrap(), port, None, Category::Discovered, "t".into());
            r.service = Some("tls".into());
            r.handshake = Some(Handshake {
                protocol: Some("TLSv1.3".into()),
                ..Handshake::default()
            });
            r.certificate = Some(CertInfo {
                common_name: Some(cn.into()),
                valid_to: valid_to.into(),
                key_algorithm: "EC".into(),
                key_size: Some(256),
                ..CertInfo::default()
            });
            r.grade = Some(grade(letter));
            r
        };
        let mut http = EndpointRecord::new(
            "127.0.0.9".parse().unwrap(),
            8080,
            None,
            Category::Unsecured,
            "t".into(),
        );
        http.service = Some("http".into());
        vec![
            tls("127.0.0.3", 8443, Letter::T, "old.test", "2026-11-01T00:00:00Z"),
            http,
            tls("127.0.0.1", 443, Letter::A, "www.test", "2027-11-24T12:00:00Z"),
            tls("127.0.0.2", 443, Letter::B, "soon.test", "2026-12-04T12:00:00Z"),
        ]
    }

    #[test]
    fn the_table_sorts_fits_and_counts() {
        assert_eq!(
            print(Format::Table, &records()),
            "ADDRESS             PORT  CATEGORY    GRADE  SERVICE  PROTOCOL  CIPHER  SUBJECT CN  EXPIRES  DAYS  DETAIL\n\
             127.0.0.1 (a.test)  443   discovered\n\
             127.0.0.2           80    unsecured          http\n\
             \n\
             2 endpoints: 1 discovered (TLS), 1 unsecured\n"
        );
        assert!(print(Format::Table, &records()[..1]).ends_with("\n1 endpoint: 0 discovered (TLS), 1 unsecured\n"));
    }

    #[test]
    fn the_table_shows_days_to_expiry_and_expired_as_such() {
        insta::assert_snapshot!(
            "scan_table",
            print_with(Format::Table, &graded(), options(false, false))
        );
    }

    #[test]
    fn the_terminal_table_colours_grades_and_expiry() {
        let table = print_with(Format::Table, &graded(), options(true, false));
        insta::assert_snapshot!("scan_table_colour", table.replace('\x1b', "<ESC>"));
    }

    #[test]
    fn csv_streams_in_arrival_order_under_one_header() {
        let csv = print(Format::Csv, &records());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "address,port,hostname,category,service,protocol,cipher_suite,group,subject_cn,not_after,key,detail,grade"
        );
        assert_eq!(lines[1], "127.0.0.2,80,,unsecured,http,,,,,,,,");
        assert_eq!(lines[2], "127.0.0.1,443,a.test,discovered,,,,,,,,,");
        assert_eq!(print(Format::Csv, &[]).lines().count(), 1, "a header alone");
    }

    #[test]
    fn a_csv_file_is_sorted_like_the_table() {
        insta::assert_snapshot!(
            "scan_csv_sorted",
            print_with(Format::Csv, &graded(), options(false, true))
        );
    }
}
