//! The Overview's numbers: active endpoints by category, by rating level
//! and by grade, certificates by time to expiry, and the fleet's sensors.
//! Pure (the clock is an argument); the charts draw these counts and the
//! browser test reads them back from the SVG.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::assessment::{Letter, Level};
use crate::model::record::Category;
use crate::output::expiry::Expiry;
use crate::store::endpoint::Stored;

/// The grade chart's bars, best first; `none` for ungraded TLS endpoints.
pub const GRADES: [&str; 11] = ["A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M", "none"];
/// The expiry timeline's buckets, most urgent first (disjoint).
pub const EXPIRY: [(&str, &str); 4] = [
    ("expired", "Expired"),
    ("7d", "Within 7 days"),
    ("30d", "8 to 30 days"),
    ("90d", "31 to 90 days"),
];
pub const LEVELS: [Level; 4] = [Level::VerySecure, Level::Secure, Level::AtRisk, Level::NotSecure];

pub fn level_name(l: Level) -> &'static str {
    match l {
        Level::VerySecure => "Very secure",
        Level::Secure => "Secure",
        Level::AtRisk => "At risk",
        Level::NotSecure => "Not secure",
    }
}

/// Counts over the active (not gone) endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub active: u64,
    pub gone: u64,
    pub by_category: BTreeMap<&'static str, u64>,
    pub by_level: BTreeMap<&'static str, u64>,
    /// Keyed by [`GRADES`]; only TLS endpoints (discovered, automatable).
    pub by_grade: BTreeMap<&'static str, u64>,
    /// Keyed by [`EXPIRY`]'s ids, one count per distinct certificate.
    pub by_expiry: BTreeMap<&'static str, u64>,
}

fn category_name(c: Category) -> &'static str {
    c.as_str()
}

fn grade_key(l: Option<Letter>) -> &'static str {
    match l {
        None => "none",
        Some(l) => GRADES.iter().copied().find(|g| *g == l.as_str()).unwrap_or("none"),
    }
}

impl Summary {
    pub fn of(rows: &[Stored], now: OffsetDateTime) -> Summary {
        let mut s = Summary::default();
        let mut certs = std::collections::BTreeSet::new();
        for r in rows {
            if r.gone_at.is_some() {
                s.gone += 1;
                continue;
            }
            s.active += 1;
            *s.by_category.entry(category_name(r.category)).or_default() += 1;
            let letter = r.record.grade.as_ref().map(|g| g.letter);
            if matches!(r.category, Category::Discovered | Category::Automatable) {
                *s.by_grade.entry(grade_key(letter)).or_default() += 1;
            }
            if let Some(l) = letter {
                *s.by_level.entry(level_name(Level::of(l))).or_default() += 1;
            }
            if let Some(c) = &r.record.certificate
                && certs.insert(c.thumbprint.clone())
                && let Some(e) = Expiry::at(&c.valid_to, now)
                && e.bucket() != "later"
            {
                *s.by_expiry.entry(e.bucket()).or_default() += 1;
            }
        }
        s
    }

    pub fn count(map: &BTreeMap<&'static str, u64>, key: &str) -> u64 {
        map.get(key).copied().unwrap_or(0)
    }
}

/// A sensor of the fleet as the central inventory knows it: the newest
/// `last_seen` among the endpoints it reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensorRow {
    pub name: String,
    pub endpoints: u64,
    pub gone: u64,
    pub last_report: String,
    pub online: bool,
}

/// A sensor that reported within this long is online.
pub const ONLINE_WITHIN: time::Duration = time::Duration::hours(24);

/// Every other sensor that reported endpoints here, by name.
pub fn sensors(rows: &[Stored], now: OffsetDateTime) -> Vec<SensorRow> {
    let mut by: BTreeMap<&str, SensorRow> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.key.sensor.is_empty()) {
        let e = by.entry(r.key.sensor.as_str()).or_insert_with(|| SensorRow {
            name: r.key.sensor.clone(),
            endpoints: 0,
            gone: 0,
            last_report: String::new(),
            online: false,
        });
        if r.gone_at.is_some() {
            e.gone += 1;
        } else {
            e.endpoints += 1;
        }
        if r.last_seen > e.last_report {
            e.last_report = r.last_seen.clone();
        }
    }
    by.into_values()
        .map(|mut s| {
            s.online = OffsetDateTime::parse(&s.last_report, &Rfc3339).is_ok_and(|t| now - t <= ONLINE_WITHIN);
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::fixtures::{endpoint, now};

    #[test]
    fn counts_by_category_level_grade_and_expiry() {
        let mut rows = vec![
            endpoint("10.0.0.1", 443, Category::Discovered, Some(Letter::A), 3),
            endpoint("10.0.0.2", 443, Category::Discovered, Some(Letter::A), 20),
            endpoint("10.0.0.3", 443, Category::Discovered, Some(Letter::F), -1),
            endpoint("10.0.0.4", 443, Category::Discovered, None, 400),
            endpoint("10.0.0.5", 25, Category::Unsecured, None, 0),
            endpoint("10.0.0.6", 443, Category::Discovered, Some(Letter::B), 60),
        ];
        rows[5].gone_at = Some("2026-05-01T00:00:00Z".into());
        let s = Summary::of(&rows, now());
        assert_eq!((s.active, s.gone), (5, 1));
        assert_eq!(Summary::count(&s.by_category, "discovered"), 4);
        assert_eq!(Summary::count(&s.by_category, "unsecured"), 1);
        assert_eq!(Summary::count(&s.by_grade, "A"), 2);
        assert_eq!(Summary::count(&s.by_grade, "F"), 1);
        assert_eq!(
            Summary::count(&s.by_grade, "none"),
            1,
            "the plaintext one has no grade bar"
        );
        assert_eq!(Summary::count(&s.by_level, "Very secure"), 2);
        assert_eq!(Summary::count(&s.by_level, "Not secure"), 1);
        assert_eq!(Summary::count(&s.by_expiry, "expired"), 1);
        assert_eq!(Summary::count(&s.by_expiry, "7d"), 1);
        assert_eq!(Summary::count(&s.by_expiry, "30d"), 1);
        assert_eq!(Summary::count(&s.by_expiry, "90d"), 0, "the gone one is not counted");
    }

    #[test]
    fn a_certificate_on_two_endpoints_expires_once() {
        let a = endpoint("10.0.0.1", 443, Category::Discovered, None, 3);
        let mut b = endpoint("10.0.0.1", 8443, Category::Discovered, None, 3);
        b.record.certificate = a.record.certificate.clone();
        assert_eq!(Summary::count(&Summary::of(&[a, b], now()).by_expiry, "7d"), 1);
    }

    #[test]
    fn sensors_online_by_their_last_report() {
        let mut a = endpoint("10.0.0.1", 443, Category::Discovered, None, 100);
        a.key.sensor = "seg-a".into();
        let mut b = endpoint("10.0.0.2", 443, Category::Discovered, None, 100);
        b.key.sensor = "seg-b".into();
        b.last_seen = "2026-05-01T00:00:00Z".into();
        let own = endpoint("10.0.0.3", 443, Category::Discovered, None, 100);
        let s = sensors(&[a, b, own], now());
        assert_eq!(s.len(), 2, "this sensor's own rows are not a fleet member");
        assert!(s[0].online && !s[1].online);
        assert_eq!(s[0].endpoints, 1);
    }
}
