//! How long a certificate has left, as the tables, CSV and
//! `--expiring-within` read it.
//!
//! The record keeps `valid_to` as RFC 3339; what a person asks is "how many
//! days, and is it already over". Counted in whole days at a given `now`, so
//! a table and a filter printed together agree, and tests pin the clock.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::record::EndpointRecord;

/// Days left before a certificate's `notAfter`, at some `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// Whole days until `notAfter`; negative once it has passed.
    pub days: i64,
    /// `notAfter` is in the past.
    pub expired: bool,
}

/// Default for "soon" (the scan's `--expiry-warning-days` default).
pub const SOON_DAYS: i64 = 30;

impl Expiry {
    /// The expiry of `valid_to` (RFC 3339) at `now`; `None` when it does
    /// not parse.
    pub fn at(valid_to: &str, now: OffsetDateTime) -> Option<Expiry> {
        let to = OffsetDateTime::parse(valid_to, &Rfc3339).ok()?;
        Some(Expiry {
            days: (to - now).whole_days(),
            expired: to <= now,
        })
    }

    /// The expiry of a record's leaf certificate at `now`.
    pub fn of(r: &EndpointRecord, now: OffsetDateTime) -> Option<Expiry> {
        Expiry::at(&r.certificate.as_ref()?.valid_to, now)
    }

    /// Expired, or expiring within `days`.
    pub fn within(&self, days: i64) -> bool {
        self.expired || self.days <= days
    }

    /// The table's cell: days left, or `expired` (the date beside it
    /// says since when).
    pub fn label(&self) -> String {
        if self.expired {
            "expired".into()
        } else {
            self.days.to_string()
        }
    }

    /// Coarse classes for colours and counts: `expired`, `7d`, `30d`,
    /// `90d`, `later` (each bucket holds what is not in an earlier one).
    pub fn bucket(&self) -> &'static str {
        match self.days {
            _ if self.expired => "expired",
            ..=7 => "7d",
            8..=30 => "30d",
            31..=90 => "90d",
            _ => "later",
        }
    }
}

/// `--expiring-within DAYS`: keeps records whose leaf certificate expires
/// within `days` of `now` or has expired; records without one are left out.
pub fn expiring_within(r: &EndpointRecord, days: i64, now: OffsetDateTime) -> bool {
    Expiry::of(r, now).is_some_and(|e| e.within(days))
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    #[test]
    fn days_left_and_expired_read_as_such() {
        let e = Expiry::at("2027-02-22T13:59:52Z", NOW).unwrap();
        assert_eq!((e.days, e.expired, e.label()), (90, false, "90".to_string()));
        assert_eq!(e.bucket(), "90d");
        let e = Expiry::at("2026-11-21T00:00:00Z", NOW).unwrap();
        assert_eq!((e.days, e.expired), (-3, true));
        assert_eq!(e.label(), "expired");
        assert_eq!(e.bucket(), "expired");
        let e = Expiry::at("2026-11-24T11:00:00Z", NOW).unwrap();
        assert_eq!((e.label(), e.bucket()), ("expired".to_string(), "expired"));
        let e = Expiry::at("2026-11-24T13:00:00Z", NOW).unwrap();
        assert_eq!(
            (e.label(), e.bucket()),
            ("0".to_string(), "7d"),
            "hours left: not yet expired"
        );
        assert!(Expiry::at("tomorrow", NOW).is_none());
    }

    #[test]
    fn buckets_and_within() {
        let days = |d: i64| Expiry {
            days: d,
            expired: false,
        };
        assert_eq!(days(7).bucket(), "7d");
        assert_eq!(days(8).bucket(), "30d");
        assert_eq!(days(30).bucket(), "30d");
        assert_eq!(days(31).bucket(), "90d");
        assert_eq!(days(91).bucket(), "later");
        assert!(days(30).within(30));
        assert!(!days(31).within(30));
        assert!(
            Expiry {
                days: -400,
                expired: true
            }
            .within(0)
        );
    }

    #[test]
    fn the_filter_keeps_expiring_and_expired_certificates_only() {
        use crate::model::cert::CertInfo;
        use crate::model::record::Category;
        let with = |to: Option<&str>| {
            let mut r = EndpointRecord::new(
                "127.0.0.1".parse().unwrap(),
                443,
                None,
                Category::Discovered,
                "t".into(),
            );
            r.certificate = to.map(|t| CertInfo {
                valid_to: t.into(),
                ..CertInfo::default()
            });
            r
        };
        assert!(expiring_within(&with(Some("2026-12-01T00:00:00Z")), 30, NOW));
        assert!(expiring_within(&with(Some("2020-01-01T00:00:00Z")), 30, NOW));
        assert!(!expiring_within(&with(Some("2027-12-01T00:00:00Z")), 30, NOW));
        assert!(!expiring_within(&with(None), 30, NOW));
    }
}
