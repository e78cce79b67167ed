//! Both stores' reads and report writes, written once over the one thing
//! each store does itself: run a statement of [`crate::store::sql`] with
//! parameters ([`Exec`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::model::record::EndpointRecord;
use crate::store::endpoint::{Key, Stored};
use crate::store::merge::{self, Applied, BatchTx, Claim, EventKind};
use crate::store::query::{Counts, Filter};
use crate::store::row::{self, Malformed, Row, Value};
use crate::store::sql::{self, Dialect};

/// A connection or open transaction of one store.
pub trait Exec {
    type Error: From<serde_json::Error> + From<Malformed>;
    fn dialect(&self) -> Dialect;
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, Self::Error>;
    /// Runs a query; its rows, cell by cell.
    fn fetch(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, Self::Error>;
}

/// The row with `key`, if stored.
pub fn load<E: Exec>(e: &mut E, key: &Key) -> Result<Option<Row>, E::Error> {
    let rows = e.fetch(&sql::load(e.dialect()), &row::key_values(key))?;
    Ok(rows.first().map(|cells| Row::from_values(cells)).transpose()?)
}

/// Inserts `row`, or replaces the one with its key.
pub fn save<E: Exec>(e: &mut E, row: &Row) -> Result<(), E::Error> {
    e.execute(&sql::upsert(e.dialect()), &row.values())?;
    Ok(())
}

struct Batch<'a, E>(&'a mut E);

impl<E: Exec> BatchTx for Batch<'_, E> {
    type Error = E::Error;

    fn claim(
        &mut self,
        batch_id: &str,
        digest: &str,
        sensor: &str,
        received_at: &str,
        events: usize,
    ) -> Result<Claim, E::Error> {
        let d = self.0.dialect();
        let params = [
            Value::Text(batch_id.to_string()),
            Value::Text(sensor.to_string()),
            Value::Text(received_at.to_string()),
            Value::Int(i64::try_from(events).unwrap_or(i64::MAX)),
            Value::Text(digest.to_string()),
        ];
        if self.0.execute(&sql::claim_batch(d), &params)? == 0 {
            let found = self
                .0
                .fetch(&sql::batch_digest(d), &[Value::Text(batch_id.to_string())])?;
            return Ok(match found.first().and_then(|row| row.first()) {
                Some(Value::Text(stored)) if stored != digest => Claim::Different,
                // The same content, or applied before digests were kept.
                _ => Claim::Same,
            });
        }
        if let Some(lock) = sql::lock_sensor(d) {
            self.0.execute(&lock, &[Value::Int(sql::sensor_lock_key(sensor))])?;
        }
        Ok(Claim::New)
    }

    fn load_many(&mut self, keys: &[Key]) -> Result<Vec<Row>, E::Error> {
        load_many(self.0, keys)
    }

    fn save_many(&mut self, rows: &[Row]) -> Result<(), E::Error> {
        save_many(self.0, rows)
    }
}

/// The stored rows among `keys`: one statement per sensor and
/// [`sql::ROWS_PER_STATEMENT`] keys (a report batch: one).
pub fn load_many<E: Exec>(e: &mut E, keys: &[Key]) -> Result<Vec<Row>, E::Error> {
    let mut by_sensor: BTreeMap<&str, Vec<&Key>> = BTreeMap::new();
    for k in keys {
        by_sensor.entry(k.sensor.as_str()).or_default().push(k);
    }
    let mut out = Vec::with_capacity(keys.len());
    for (sensor, keys) in by_sensor {
        for chunk in keys.chunks(sql::ROWS_PER_STATEMENT) {
            let wanted: HashSet<&Key> = chunk.iter().copied().collect();
            let addresses: BTreeSet<&str> = chunk.iter().map(|k| k.address.as_str()).collect();
            let ports: BTreeSet<u16> = chunk.iter().map(|k| k.port).collect();
            let snis: BTreeSet<&str> = chunk.iter().map(|k| k.sni.as_str()).collect();
            let text = |s: &str| Value::Text(s.to_string());
            let params: Vec<Value> = std::iter::once(text(sensor))
                .chain(addresses.iter().map(|a| text(a)))
                .chain(ports.iter().map(|p| Value::Int(i64::from(*p))))
                .chain(snis.iter().map(|s| text(s)))
                .collect();
            let select = sql::load_many(e.dialect(), addresses.len(), ports.len(), snis.len());
            for cells in e.fetch(&select, &params)? {
                let row = Row::from_values(&cells)?;
                if wanted.contains(&row.key) {
                    out.push(row);
                }
            }
        }
    }
    Ok(out)
}

/// Inserts or replaces `rows` (distinct keys), in one statement per
/// [`sql::ROWS_PER_STATEMENT`] rows.
pub fn save_many<E: Exec>(e: &mut E, rows: &[Row]) -> Result<(), E::Error> {
    for chunk in rows.chunks(sql::ROWS_PER_STATEMENT) {
        let params: Vec<Value> = chunk.iter().flat_map(Row::values).collect();
        e.execute(&sql::upsert_many(e.dialect(), chunk.len()), &params)?;
    }
    Ok(())
}

/// Applies one report batch inside the transaction `tx` ([`merge::apply`]);
/// the caller commits on `Ok`.
pub fn apply_report<E: Exec>(
    tx: &mut E,
    sensor: &str,
    batch_id: &str,
    digest: &str,
    received_at: &str,
    events: &[(EventKind, EndpointRecord)],
) -> Result<Applied, E::Error> {
    merge::apply(&mut Batch(tx), sensor, batch_id, digest, received_at, events)
}

/// Stored endpoints matching `filter`, ordered by sensor, address, port and SNI.
pub fn query<E: Exec>(e: &mut E, filter: &Filter) -> Result<Vec<Stored>, E::Error> {
    let (select, params) = sql::select(e.dialect(), filter);
    let mut out = Vec::new();
    for cells in e.fetch(&select, &params)? {
        let agent = cells.get(sql::SELECTED_AGENT).is_some_and(Value::is_true);
        let stored = Row::from_values(&cells)?.into_stored(agent)?;
        if filter.matches(&stored) {
            out.push(stored);
        }
    }
    Ok(out)
}

/// Active endpoints by category and grade letter.
pub fn counts<E: Exec>(e: &mut E) -> Result<Counts, E::Error> {
    let mut counts = Counts::default();
    for cells in e.fetch(&sql::counts(e.dialect()), &[])? {
        match cells.as_slice() {
            [Value::Text(category), Value::Text(grade), Value::Int(n)] => {
                counts.add(category.clone(), grade.clone(), *n);
            }
            _ => {
                return Err(Malformed {
                    column: 0,
                    name: "counts",
                    expected: "category, grade, count",
                    found: format!("{cells:?}"),
                }
                .into());
            }
        }
    }
    Ok(counts)
}
