//! One row of the `endpoints` table as both stores hold it.
//!
//! The record and the tags stay JSON text here: the merge rules and the
//! writes never need them decoded, and a row that cannot be decoded is
//! still carried forward untouched. Decoding happens once, on the way out
//! ([`Row::into_stored`]). A store reads and binds a row as plain
//! [`Value`]s, so each store's code is only its driver's calls.

use crate::model::record::{Category, EndpointRecord};
use crate::store::endpoint::{Key, Stored};

/// The columns of `endpoints`, in the order every statement reads and
/// binds a [`Row`].
pub const COLUMNS: [&str; 12] = [
    "address",
    "port",
    "sni",
    "sensor",
    "profile",
    "category",
    "first_seen",
    "last_seen",
    "missed_runs",
    "gone_at",
    "tags",
    "record",
];

/// The columns making up the primary key.
pub const KEY_COLUMNS: [&str; 4] = ["address", "port", "sni", "sensor"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: Key,
    /// The profile whose run found it (empty for reported endpoints).
    pub profile: String,
    pub category: String,
    pub first_seen: String,
    pub last_seen: String,
    pub missed_runs: u32,
    pub gone_at: Option<String>,
    /// JSON array of strings.
    pub tags: String,
    /// JSON [`EndpointRecord`].
    pub record: String,
}

/// A statement parameter or a cell of a result, as both stores bind and
/// read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bool(bool),
}

impl Value {
    /// A truth value as either store returns it (SQLite has no booleans).
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Bool(true)) || matches!(self, Value::Int(n) if *n != 0)
    }

    fn text(cells: &[Value], i: usize) -> Result<String, Malformed> {
        match cells.get(i) {
            Some(Value::Text(s)) => Ok(s.clone()),
            other => Err(Malformed::new(i, "text", other)),
        }
    }

    fn maybe_text(cells: &[Value], i: usize) -> Result<Option<String>, Malformed> {
        match cells.get(i) {
            Some(Value::Null) => Ok(None),
            _ => Value::text(cells, i).map(Some),
        }
    }

    fn int<T: TryFrom<i64>>(cells: &[Value], i: usize) -> Result<T, Malformed> {
        match cells.get(i) {
            Some(Value::Int(n)) => T::try_from(*n).map_err(|_| Malformed::new(i, "a small integer", cells.get(i))),
            other => Err(Malformed::new(i, "an integer", other)),
        }
    }
}

/// A result row that is not the table's: a store's schema or statement
/// does not match this code.
#[derive(Debug, thiserror::Error)]
#[error("column {column} ({name}) is {found}, not {expected}")]
pub struct Malformed {
    pub column: usize,
    pub name: &'static str,
    pub expected: &'static str,
    pub found: String,
}

impl Malformed {
    fn new(column: usize, expected: &'static str, found: Option<&Value>) -> Malformed {
        Malformed {
            column,
            name: COLUMNS.get(column).copied().unwrap_or("?"),
            expected,
            found: found.map_or_else(|| "missing".to_string(), |v| format!("{v:?}")),
        }
    }
}

/// A key bound as [`KEY_COLUMNS`].
pub fn key_values(key: &Key) -> Vec<Value> {
    vec![
        Value::Text(key.address.clone()),
        Value::Int(i64::from(key.port)),
        Value::Text(key.sni.clone()),
        Value::Text(key.sensor.clone()),
    ]
}

impl Row {
    /// Reads the first [`COLUMNS`] of a result row.
    pub fn from_values(cells: &[Value]) -> Result<Row, Malformed> {
        Ok(Row {
            key: Key {
                address: Value::text(cells, 0)?,
                port: Value::int(cells, 1)?,
                sni: Value::text(cells, 2)?,
                sensor: Value::text(cells, 3)?,
            },
            profile: Value::text(cells, 4)?,
            category: Value::text(cells, 5)?,
            first_seen: Value::text(cells, 6)?,
            last_seen: Value::text(cells, 7)?,
            missed_runs: Value::int(cells, 8)?,
            gone_at: Value::maybe_text(cells, 9)?,
            tags: Value::text(cells, 10)?,
            record: Value::text(cells, 11)?,
        })
    }

    /// The row bound as [`COLUMNS`].
    pub fn values(&self) -> Vec<Value> {
        let mut v = key_values(&self.key);
        v.extend([
            Value::Text(self.profile.clone()),
            Value::Text(self.category.clone()),
            Value::Text(self.first_seen.clone()),
            Value::Text(self.last_seen.clone()),
            Value::Int(i64::from(self.missed_runs)),
            self.gone_at.clone().map_or(Value::Null, Value::Text),
            Value::Text(self.tags.clone()),
            Value::Text(self.record.clone()),
        ]);
        v
    }

    /// What callers see. `agent`: a certificate agent was seen on the
    /// endpoint's host, so a discovered TLS endpoint reads `automatable`.
    pub fn into_stored(self, agent: bool) -> Result<Stored, serde_json::Error> {
        let record: EndpointRecord = serde_json::from_str(&self.record)?;
        let category = if agent && record.category == Category::Discovered {
            Category::Automatable
        } else {
            record.category
        };
        Ok(Stored {
            id: self.key.id(),
            key: self.key,
            profile: self.profile,
            category,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            missed_runs: self.missed_runs,
            gone_at: self.gone_at,
            tags: serde_json::from_str(&self.tags).unwrap_or_default(),
            record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(record: String) -> Row {
        Row {
            key: Key {
                address: "10.0.0.1".into(),
                port: 443,
                sni: String::new(),
                sensor: "seg".into(),
            },
            profile: String::new(),
            category: "discovered".into(),
            first_seen: "t1".into(),
            last_seen: "t2".into(),
            missed_runs: 0,
            gone_at: None,
            tags: "not json".into(),
            record,
        }
    }

    #[test]
    fn a_discovered_endpoint_with_an_agent_reads_automatable() {
        let r = EndpointRecord::new(
            "10.0.0.1".parse().unwrap(),
            443,
            None,
            Category::Discovered,
            "t2".into(),
        );
        let json = serde_json::to_string(&r).unwrap();
        let plain = row(json.clone()).into_stored(false).unwrap();
        assert_eq!(plain.category, Category::Discovered);
        assert!(plain.tags.is_empty(), "unreadable tags read as none");
        assert_eq!(plain.id, plain.key.id());
        assert_eq!(row(json).into_stored(true).unwrap().category, Category::Automatable);
    }

    #[test]
    fn a_row_round_trips_through_values() {
        let r = Row {
            gone_at: Some("t3".into()),
            missed_runs: 4,
            ..row("{}".into())
        };
        assert_eq!(Row::from_values(&r.values()).unwrap(), r);
        assert_eq!(Row::from_values(&row("{}".into()).values()).unwrap().gone_at, None);
        let mut cells = r.values();
        cells[1] = Value::Int(70000);
        let e = Row::from_values(&cells).unwrap_err();
        assert_eq!((e.column, e.name), (1, "port"));
        assert!(Row::from_values(&cells[..5]).is_err(), "too few columns");
    }

    #[test]
    fn an_unreadable_record_is_an_error() {
        assert!(row("{".into()).into_stored(false).is_err());
    }
}
