//! Each endpoint's timeline: the changes its runs found (new, changed,
//! gone, seen again), each with what the endpoint looked like then, for
//! `sensor inventory history`.
//!
//! The changes are written in the run's transaction ([`Inventory::record_run`]),
//! so the history and the endpoints never disagree. What an endpoint looked
//! like is kept small ([`Seen`]: category, grade, certificate, protocols),
//! not the whole record: the timeline answers "what changed, when", the
//! endpoint row keeps the full last record.

use rusqlite::{Transaction, params, params_from_iter};
use serde::{Deserialize, Serialize};

use super::diff::Change;
use super::{Inventory, InventoryError, db_error};
use crate::model::record::EndpointRecord;
use crate::store::endpoint::Key;

/// What an endpoint looked like when a change was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub category: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_cn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// SHA-256 of the leaf certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbprint: Option<String>,
    /// Protocol versions offered (when enumerated).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub protocols: Vec<String>,
}

impl Seen {
    pub fn of(r: &EndpointRecord) -> Seen {
        let cert = r.certificate.as_ref();
        Seen {
            category: r.category.as_str().to_string(),
            grade: r.grade.as_ref().map(|g| g.letter.to_string()),
            subject_cn: cert.and_then(|c| c.common_name.clone()),
            not_after: cert.map(|c| c.valid_to.clone()),
            thumbprint: cert.map(|c| c.thumbprint.clone()),
            protocols: r
                .protocols
                .as_ref()
                .map(|p| {
                    crate::model::record::PROTOCOL_NAMES
                        .iter()
                        .filter(|n| p.get(**n).copied().unwrap_or(false))
                        .map(|n| n.to_string())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// One event of an endpoint's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When the run saw it (RFC 3339).
    pub at: String,
    pub key: Key,
    /// The profile whose run saw it.
    pub profile: String,
    /// `new`, `changed`, `seen_again`, `gone`, or `first_seen` for an
    /// endpoint found before history was kept.
    pub kind: String,
    /// What changed (`certificate replaced`, `grade A -> B`, …).
    pub reasons: Vec<String>,
    /// What the endpoint looked like then (none for `gone`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
}

/// Which endpoints' history to read: by address, port and SNI; `None`
/// leaves that part open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Which {
    pub address: Option<String>,
    pub port: Option<u16>,
    pub sni: Option<String>,
}

/// The kind of a change as the timeline names it.
fn kind(c: &Change) -> &'static str {
    match c {
        Change::New { .. } => "new",
        Change::Changed { reasons, .. } if reasons.first().is_some_and(|r| r.starts_with("seen again")) => "seen_again",
        Change::Changed { .. } => "changed",
        Change::Gone { .. } => "gone",
    }
}

/// Writes a run's changes in its transaction. `records` are the run's
/// records, for what each changed endpoint looks like now.
pub(super) fn record(
    tx: &Transaction<'_>,
    path: &str,
    run: i64,
    profile: &str,
    finished_at: &str,
    changes: &[Change],
    records: &[EndpointRecord],
) -> Result<(), InventoryError> {
    let db = db_error(path);
    for c in changes {
        let (key, reasons, missed) = match c {
            Change::New { key } => (key, Vec::new(), None),
            Change::Changed { key, reasons } => (key, reasons.clone(), None),
            Change::Gone { key, missed_runs } => (key, Vec::new(), Some(*missed_runs)),
        };
        let record = records.iter().find(|r| Key::of(r) == *key);
        let at = record.map_or(finished_at, |r| r.scanned_at.as_str());
        let reasons = match missed {
            Some(n) => vec![format!("not seen in {n} runs")],
            None => reasons,
        };
        let seen = record.map(Seen::of).map(|s| serde_json::to_string(&s)).transpose()?;
        tx.execute(
            "INSERT INTO changes(run, profile, at, address, port, sni, sensor, kind, reasons, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                run,
                profile,
                at,
                key.address,
                key.port,
                key.sni,
                key.sensor,
                kind(c),
                serde_json::to_string(&reasons)?,
                seen
            ],
        )
        .map_err(&db)?;
    }
    Ok(())
}

impl Inventory {
    /// The timeline of the endpoints `which` names, oldest first, endpoint
    /// by endpoint. An endpoint found before history was kept starts with
    /// a `first_seen` event from its row.
    pub fn history(&self, which: &Which) -> Result<Vec<Event>, InventoryError> {
        let db = db_error(&self.path);
        let mut clauses = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        for (column, value) in [
            ("address", which.address.clone().map(rusqlite::types::Value::Text)),
            (
                "port",
                which.port.map(|p| rusqlite::types::Value::Integer(i64::from(p))),
            ),
            ("sni", which.sni.clone().map(rusqlite::types::Value::Text)),
        ] {
            if let Some(v) = value {
                values.push(v);
                clauses.push(format!("{column} = ?{}", values.len()));
            }
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let mut events: Vec<Event> = Vec::new();
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT at, address, port, sni, sensor, profile, kind, reasons, state FROM changes {filter} ORDER BY id"
            ))
            .map_err(&db)?;
        let rows = stmt
            .query_map(params_from_iter(values.iter()), |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Key {
                        address: row.get(1)?,
                        port: row.get(2)?,
                        sni: row.get(3)?,
                        sensor: row.get(4)?,
                    },
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, Option<String>>(8)?,
                ))
            })
            .map_err(&db)?;
        for row in rows {
            let (at, key, profile, kind, reasons, state) = row.map_err(&db)?;
            events.push(Event {
                at,
                key,
                profile,
                kind,
                reasons: serde_json::from_str(&reasons).unwrap_or_default(),
                seen: state.and_then(|s| serde_json::from_str(&s).ok()),
            });
        }
        drop(stmt);
        // Endpoints older than the history: their first sighting from the row.
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT first_seen, address, port, sni, sensor, profile, record FROM endpoints {filter}"
            ))
            .map_err(&db)?;
        let rows = stmt
            .query_map(params_from_iter(values.iter()), |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Key {
                        address: row.get(1)?,
                        port: row.get(2)?,
                        sni: row.get(3)?,
                        sensor: row.get(4)?,
                    },
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            })
            .map_err(&db)?;
        for row in rows {
            let (first_seen, key, profile, record) = row.map_err(&db)?;
            if events.iter().any(|e| e.key == key && e.kind == "new") {
                continue;
            }
            let seen = serde_json::from_str::<EndpointRecord>(&record)
                .ok()
                .map(|r| Seen::of(&r));
            events.push(Event {
                at: first_seen,
                key,
                profile,
                kind: "first_seen".into(),
                reasons: vec!["found before this inventory kept history".into()],
                seen,
            });
        }
        // Endpoint by endpoint, each oldest first (a stable sort keeps
        // the order changes were written within one timestamp).
        events.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.at.cmp(&b.at)));
        Ok(events)
    }
}

impl Inventory {
    /// The newest `limit` changes of any endpoint, newest first (the
    /// console's Overview).
    pub fn recent_changes(&self, limit: usize) -> Result<Vec<Event>, InventoryError> {
        let db = db_error(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at, address, port, sni, sensor, profile, kind, reasons, state FROM changes
                 ORDER BY id DESC LIMIT ?1",
            )
            .map_err(&db)?;
        let rows = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok(Event {
                    at: row.get(0)?,
                    key: Key {
                        address: row.get(1)?,
                        port: row.get(2)?,
                        sni: row.get(3)?,
                        sensor: row.get(4)?,
                    },
                    profile: row.get(5)?,
                    kind: row.get(6)?,
                    reasons: serde_json::from_str(&row.get::<_, String>(7)?).unwrap_or_default(),
                    seen: row
                        .get::<_, Option<String>>(8)?
                        .and_then(|s| serde_json::from_str(&s).ok()),
                })
            })
            .map_err(&db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&db)
    }
}
