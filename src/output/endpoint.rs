//! How a scan's [`EndpointRecord`] prints: the flat columns CSV and the
//! table share, sorted by address and port, with a count of what was found.

use std::cmp::Ordering;

use super::{Column, Printable};
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

/// Which of [`columns`] the table shows, in its order.
const PICK: [usize; 10] = [0, 1, 3, 12, 4, 5, 6, 8, 9, 11];

const TABLE: [Column; 10] = [
    Column::fit("ADDRESS"),
    Column::fit("PORT"),
    Column::fit("CATEGORY"),
    Column::fit("GRADE"),
    Column::fit("SERVICE"),
    Column::fit("PROTOCOL"),
    Column::fit("CIPHER"),
    Column::fit("SUBJECT CN"),
    Column::fit("EXPIRES"),
    Column::fit("DETAIL"),
];

impl Printable for EndpointRecord {
    const CSV_HEADER: &'static [&'static str] = &HEADER;

    fn csv_row(&self) -> Vec<String> {
        columns(self).to_vec()
    }

    const TABLE: &'static [Column] = &TABLE;

    fn table_row(&self) -> Vec<String> {
        let cols = columns(self);
        let address = match &self.hostname {
            Some(h) => format!("{} ({h})", cols[0]),
            None => cols[0].clone(),
        };
        PICK.iter()
            .map(|&i| {
                if i == 0 {
                    address.clone()
                } else {
                    truncate(&cols[i], 60)
                }
            })
            .collect()
    }

    fn table_footer(rows: &[Self]) -> Option<String> {
        let count = |cat: &str| rows.iter().filter(|r| r.category.as_str() == cat).count();
        Some(format!(
            "\n{} endpoints: {} discovered (TLS), {} unsecured",
            rows.len(),
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
    use crate::model::record::{Category, EndpointRecord};
    use crate::output::{Format, ScanMeta, sink};

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

    #[test]
    fn the_table_sorts_fits_and_counts() {
        assert_eq!(
            print(Format::Table, &records()),
            "ADDRESS             PORT  CATEGORY    GRADE  SERVICE  PROTOCOL  CIPHER  SUBJECT CN  EXPIRES  DETAIL\n\
             127.0.0.1 (a.test)  443   discovered\n\
             127.0.0.2           80    unsecured          http\n\
             \n\
             2 endpoints: 1 discovered (TLS), 1 unsecured\n"
        );
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
}
