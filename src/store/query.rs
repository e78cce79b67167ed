//! Which stored endpoints a reader asked for, and the counts the metrics
//! scrape reads: one definition for the CLI, the API and both stores.
//!
//! A store narrows by the plain columns in SQL ([`crate::store::sql::select`])
//! and then keeps the rows [`Filter::matches`]: the category (which may
//! depend on an agent seen on the host), the grade and the tags are only
//! known once the row is decoded.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::record::Category;
use crate::store::endpoint::Stored;

/// Which stored endpoints a query returns.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub category: Option<Category>,
    /// Only endpoints graded strictly worse than this (ungraded never match).
    pub grade_below: Option<crate::grade::Letter>,
    /// Only endpoints carrying this tag.
    pub tag: Option<String>,
    /// Only endpoints reported by this sensor (`""`: this sensor's own).
    pub sensor: Option<String>,
    /// Leave out endpoints reported gone.
    pub active_only: bool,
}

impl Filter {
    /// The whole rule, for a decoded row.
    pub fn matches(&self, s: &Stored) -> bool {
        self.matches_columns(s) && self.matches_decoded(s)
    }

    /// The part a store's SQL decides too (`sql::where_clause`).
    fn matches_columns(&self, s: &Stored) -> bool {
        if self.sensor.as_ref().is_some_and(|x| *x != s.key.sensor) {
            return false;
        }
        !(self.active_only && s.gone_at.is_some())
    }

    fn matches_decoded(&self, s: &Stored) -> bool {
        if self.category.is_some_and(|c| c != s.category) {
            return false;
        }
        if let Some(bar) = self.grade_below {
            match &s.record.grade {
                Some(g) if g.letter.is_below(bar) => {}
                _ => return false,
            }
        }
        self.tag.as_ref().is_none_or(|t| s.tags.contains(t))
    }
}

/// The one endpoint with `id` ([`crate::store::endpoint::Key::id`]) among `rows`.
pub fn find(rows: Vec<Stored>, id: &str) -> Option<Stored> {
    rows.into_iter().find(|s| s.id == id)
}

/// Active endpoints counted by category and by grade letter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub by_category: BTreeMap<String, u64>,
    pub by_grade: BTreeMap<String, u64>,
}

impl Counts {
    /// Adds `n` endpoints of `category` graded `grade` (`none`: ungraded),
    /// one group of [`crate::store::sql::counts`].
    pub fn add(&mut self, category: String, grade: String, n: i64) {
        let n = n.max(0) as u64;
        *self.by_category.entry(category).or_default() += n;
        *self.by_grade.entry(grade).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::record::EndpointRecord;
    use crate::store::endpoint::Key;

    fn stored(sensor: &str, gone: bool, tags: &[&str]) -> Stored {
        let record = EndpointRecord::new("10.0.0.1".parse().unwrap(), 443, None, Category::Discovered, "t".into());
        let key = Key {
            sensor: sensor.into(),
            ..Key::of(&record)
        };
        Stored {
            id: key.id(),
            key,
            profile: String::new(),
            category: Category::Discovered,
            first_seen: "t".into(),
            last_seen: "t".into(),
            missed_runs: 0,
            gone_at: gone.then(|| "t".to_string()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            record,
        }
    }

    #[test]
    fn every_part_of_a_filter_must_hold() {
        let s = stored("seg-a", true, &["dmz"]);
        assert!(Filter::default().matches(&s));
        let f = |f: Filter| f.matches(&s);
        assert!(f(Filter {
            sensor: Some("seg-a".into()),
            tag: Some("dmz".into()),
            category: Some(Category::Discovered),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            sensor: Some(String::new()),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            active_only: true,
            ..Filter::default()
        }));
        assert!(!f(Filter {
            tag: Some("lab".into()),
            ..Filter::default()
        }));
        assert!(!f(Filter {
            category: Some(Category::Unsecured),
            ..Filter::default()
        }));
        assert!(
            !f(Filter {
                grade_below: Some(crate::grade::Letter::M),
                ..Filter::default()
            }),
            "ungraded never matches"
        );
        let own = Filter {
            sensor: Some(String::new()),
            active_only: true,
            ..Filter::default()
        };
        assert!(own.matches(&stored("", false, &[])));
    }

    #[test]
    fn counts_add_up_by_category_and_grade() {
        let mut c = Counts::default();
        c.add("discovered".into(), "A".into(), 2);
        c.add("discovered".into(), "none".into(), 1);
        c.add("unsecured".into(), "none".into(), 3);
        assert_eq!(c.by_category.get("discovered"), Some(&3));
        assert_eq!(c.by_grade.get("none"), Some(&4));
        assert_eq!(c.by_grade.get("A"), Some(&2));
    }
}
