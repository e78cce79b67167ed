//! How another sensor's report changes the central inventory: the rules
//! both stores (SQLite and PostgreSQL) follow, decided here once and only
//! executed by them.
//!
//! A batch is applied at most once (its `batch_id` is claimed first, in the
//! same transaction) and whole (the store commits only after every event).
//! Each event turns the stored row, if any, into the row to write; the
//! stores only load and save rows, and do it a batch at a time: one read
//! of every row the batch names, the events applied in order in memory,
//! one write of every row that changed (per event, a central on
//! PostgreSQL spent two round trips: docs/fleet.md, "Scale, measured"). Events may arrive in any order (a
//! snapshot after a newer change, a `gone` before its `new`) and the
//! inventory still converges: `last_seen` only moves forward, and a `gone`
//! for an endpoint never seen is stored as gone.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::model::record::EndpointRecord;
use crate::store::endpoint::Key;
use crate::store::row::Row;

/// What a report event says of an endpoint (the wire format's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    New,
    Changed,
    Gone,
    /// Part of a full snapshot of the reporting sensor's inventory.
    Snapshot,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::New => "new",
            EventKind::Changed => "changed",
            EventKind::Gone => "gone",
            EventKind::Snapshot => "snapshot",
        }
    }
}

/// The outcome of applying a report batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// False when the batch had been applied before (nothing changed now).
    pub applied: bool,
    pub events: usize,
    /// True when the batch id had been applied with other content (refused).
    pub conflict: bool,
}

/// One event as the merge reads it.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// The reporting sensor.
    pub sensor: &'a str,
    /// When the batch arrived (RFC 3339): the `gone_at` of a gone event.
    pub received_at: &'a str,
    pub kind: EventKind,
    pub record: &'a EndpointRecord,
}

impl Event<'_> {
    /// The row the event is about.
    pub fn key(&self) -> Key {
        Key {
            sensor: self.sensor.to_string(),
            ..Key::of(self.record)
        }
    }
}

/// The tags a reported endpoint is stored with.
pub fn sensor_tags(sensor: &str) -> Vec<String> {
    vec![format!("sensor:{sensor}")]
}

/// The row to write after `event`, given the stored one; `None` when the
/// stored row stays as it is.
///
/// - seen (`new`, `changed`, `snapshot`): the record and category are
///   replaced, `last_seen` moves forward only, and the endpoint is no
///   longer missing or gone; `first_seen`, the profile and tags stay;
/// - `gone`: a known endpoint is marked gone once (the first `gone_at`
///   stays); an unknown one is stored as last seen when scanned, gone.
pub fn merge(stored: Option<Row>, event: &Event<'_>) -> Result<Option<Row>, serde_json::Error> {
    let r = event.record;
    let gone = event.kind == EventKind::Gone;
    let Some(mut row) = stored else {
        return Ok(Some(Row {
            key: event.key(),
            profile: String::new(),
            category: r.category.as_str().to_string(),
            first_seen: r.scanned_at.clone(),
            last_seen: r.scanned_at.clone(),
            missed_runs: 0,
            gone_at: gone.then(|| event.received_at.to_string()),
            tags: serde_json::to_string(&sensor_tags(event.sensor))?,
            record: serde_json::to_string(r)?,
        }));
    };
    if gone {
        if row.gone_at.is_some() {
            return Ok(None);
        }
        row.gone_at = Some(event.received_at.to_string());
        return Ok(Some(row));
    }
    row.category = r.category.as_str().to_string();
    if r.scanned_at > row.last_seen {
        row.last_seen = r.scanned_at.clone();
    }
    row.missed_runs = 0;
    row.gone_at = None;
    row.record = serde_json::to_string(r)?;
    Ok(Some(row))
}

/// What a store does inside the one transaction that applies a batch
/// ([`crate::store::exec`] does it for both stores).
pub trait BatchTx {
    type Error: From<serde_json::Error>;
    /// Records `batch_id` with its content's `digest` as applied, or says
    /// how it was applied before (then nothing else is done). A concurrent
    /// claim of the same batch must wait for this transaction and then see it.
    fn claim(
        &mut self,
        batch_id: &str,
        digest: &str,
        sensor: &str,
        received_at: &str,
        events: usize,
    ) -> Result<Claim, Self::Error>;
    /// The stored rows among `keys` (distinct), in any order; a key with no
    /// row is left out.
    fn load_many(&mut self, keys: &[Key]) -> Result<Vec<Row>, Self::Error>;
    /// Inserts each row, or replaces the one with its key (keys distinct).
    fn save_many(&mut self, rows: &[Row]) -> Result<(), Self::Error>;
}

/// What claiming a batch id found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time: apply it.
    New,
    /// Applied before with the same content (or before digests were kept).
    Same,
    /// Applied before with other content: refuse.
    Different,
}

/// Applies one report batch through `tx`; the caller commits on `Ok`.
pub fn apply<T: BatchTx>(
    tx: &mut T,
    sensor: &str,
    batch_id: &str,
    digest: &str,
    received_at: &str,
    events: &[(EventKind, EndpointRecord)],
) -> Result<Applied, T::Error> {
    match tx.claim(batch_id, digest, sensor, received_at, events.len())? {
        Claim::New => {}
        claim => {
            return Ok(Applied {
                applied: false,
                events: 0,
                conflict: claim == Claim::Different,
            });
        }
    }
    let batch: Vec<Event<'_>> = events
        .iter()
        .map(|(kind, record)| Event {
            sensor,
            received_at,
            kind: *kind,
            record,
        })
        .collect();
    let keys: Vec<Key> = batch.iter().map(Event::key).collect();
    let mut seen = HashSet::new();
    let distinct: Vec<Key> = keys.iter().filter(|k| seen.insert(*k)).cloned().collect();
    let mut rows: HashMap<Key, Row> = tx
        .load_many(&distinct)?
        .into_iter()
        .map(|r| (r.key.clone(), r))
        .collect();
    // Events on one key apply in their order, each to the row the one
    // before it left: as if each had been loaded and saved on its own.
    let mut changed: Vec<&Key> = Vec::new();
    let mut dirty = HashSet::new();
    for (event, key) in batch.iter().zip(&keys) {
        if let Some(row) = merge(rows.get(key).cloned(), event)? {
            rows.insert(key.clone(), row);
            if dirty.insert(key) {
                changed.push(key);
            }
        }
    }
    let writes: Vec<Row> = changed.into_iter().filter_map(|k| rows.remove(k)).collect();
    if !writes.is_empty() {
        tx.save_many(&writes)?;
    }
    Ok(Applied {
        applied: true,
        events: events.len(),
        conflict: false,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::record::Category;

    fn rec(addr: &str, at: &str, category: Category) -> EndpointRecord {
        EndpointRecord::new(addr.parse().unwrap(), 443, None, category, at.into())
    }

    fn event<'a>(kind: EventKind, r: &'a EndpointRecord) -> Event<'a> {
        Event {
            sensor: "seg-a",
            received_at: "2026-11-30T00:00:00Z",
            kind,
            record: r,
        }
    }

    #[test]
    fn a_new_endpoint_is_stored_with_the_sensors_tag() {
        let r = rec("10.0.0.1", "2026-11-24T00:00:00Z", Category::Discovered);
        let row = merge(None, &event(EventKind::New, &r)).unwrap().unwrap();
        assert_eq!(row.key.sensor, "seg-a");
        assert_eq!(row.first_seen, r.scanned_at);
        assert_eq!(row.last_seen, r.scanned_at);
        assert_eq!(row.tags, r#"["sensor:seg-a"]"#);
        assert_eq!(row.gone_at, None);
        assert_eq!(row.profile, "");
    }

    #[test]
    fn seen_again_replaces_the_record_and_never_moves_last_seen_back() {
        let old = rec("10.0.0.1", "2026-11-24T00:00:00Z", Category::Discovered);
        let stored = Row {
            missed_runs: 2,
            gone_at: Some("2026-11-25T00:00:00Z".into()),
            tags: r#"["kept"]"#.into(),
            ..merge(None, &event(EventKind::New, &old)).unwrap().unwrap()
        };
        let late = rec("10.0.0.1", "2026-11-20T00:00:00Z", Category::Unsecured);
        let row = merge(Some(stored.clone()), &event(EventKind::Snapshot, &late))
            .unwrap()
            .unwrap();
        assert_eq!(row.category, "unsecured");
        assert_eq!(
            row.last_seen, "2026-11-24T00:00:00Z",
            "an older snapshot does not go back"
        );
        assert_eq!((row.missed_runs, row.gone_at.as_deref()), (0, None));
        assert_eq!(row.tags, stored.tags);
        assert_eq!(row.first_seen, stored.first_seen);
        assert_eq!(row.record, serde_json::to_string(&late).unwrap());
        let newer = rec("10.0.0.1", "2026-11-26T00:00:00Z", Category::Discovered);
        let row = merge(Some(stored), &event(EventKind::Changed, &newer))
            .unwrap()
            .unwrap();
        assert_eq!(row.last_seen, "2026-11-26T00:00:00Z");
    }

    #[test]
    fn gone_marks_once_and_stores_the_unknown_as_gone() {
        let r = rec("10.0.0.1", "2026-11-24T00:00:00Z", Category::Discovered);
        let unknown = merge(None, &event(EventKind::Gone, &r)).unwrap().unwrap();
        assert_eq!(unknown.gone_at.as_deref(), Some("2026-11-30T00:00:00Z"));
        assert_eq!(unknown.last_seen, r.scanned_at);
        assert_eq!(merge(Some(unknown), &event(EventKind::Gone, &r)).unwrap(), None);
        let known = merge(None, &event(EventKind::New, &r)).unwrap().unwrap();
        let gone = merge(Some(known.clone()), &event(EventKind::Gone, &r))
            .unwrap()
            .unwrap();
        assert_eq!(
            gone,
            Row {
                gone_at: Some("2026-11-30T00:00:00Z".into()),
                ..known
            }
        );
    }

    /// A store in memory, to check the batch rules on their own.
    #[derive(Default)]
    struct Memory {
        batches: BTreeMap<String, String>,
        rows: BTreeMap<Key, Row>,
        /// Calls of `load_many` and `save_many`.
        loads: usize,
        saves: usize,
    }

    impl BatchTx for Memory {
        type Error = serde_json::Error;
        fn claim(&mut self, batch_id: &str, digest: &str, _: &str, _: &str, _: usize) -> Result<Claim, Self::Error> {
            Ok(match self.batches.get(batch_id) {
                None => {
                    self.batches.insert(batch_id.into(), digest.into());
                    Claim::New
                }
                Some(d) if d == digest => Claim::Same,
                Some(_) => Claim::Different,
            })
        }
        fn load_many(&mut self, keys: &[Key]) -> Result<Vec<Row>, Self::Error> {
            self.loads += 1;
            Ok(keys.iter().filter_map(|k| self.rows.get(k).cloned()).collect())
        }
        fn save_many(&mut self, rows: &[Row]) -> Result<(), Self::Error> {
            self.saves += 1;
            let keys: HashSet<_> = rows.iter().map(|r| &r.key).collect();
            assert_eq!(keys.len(), rows.len(), "one write per key");
            for row in rows {
                self.rows.insert(row.key.clone(), row.clone());
            }
            Ok(())
        }
    }

    #[test]
    fn a_batch_applies_once_and_events_in_it_apply_in_order() {
        let mut m = Memory::default();
        let t = "2026-11-24T00:00:00Z";
        let events = vec![
            (EventKind::New, rec("10.0.0.1", t, Category::Discovered)),
            (EventKind::Gone, rec("10.0.0.1", t, Category::Discovered)),
            (EventKind::Snapshot, rec("10.0.0.2", t, Category::Unsecured)),
        ];
        let a = apply(&mut m, "seg-a", "b-1", "d-1", "2026-11-25T00:00:00Z", &events).unwrap();
        assert_eq!(
            a,
            Applied {
                applied: true,
                events: 3,
                conflict: false,
            }
        );
        assert_eq!(m.rows.len(), 2);
        assert_eq!((m.loads, m.saves), (1, 1), "one read and one write per batch");
        let gone: Vec<_> = m.rows.values().filter(|r| r.gone_at.is_some()).collect();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].key.address, "10.0.0.1");
        let again = apply(&mut m, "seg-a", "b-1", "d-1", t, &events).unwrap();
        assert!(!again.applied && again.events == 0 && !again.conflict);
        let other = apply(&mut m, "seg-a", "b-1", "d-2", t, &events[..1]).unwrap();
        assert!(!other.applied && other.conflict, "same id, other content: refused");
        assert_eq!(m.rows.values().filter(|r| r.gone_at.is_some()).count(), 1);
    }

    #[test]
    fn a_batch_read_and_written_at_once_ends_as_one_event_at_a_time() {
        let t = |d: u8| format!("2026-11-{d:02}T00:00:00Z");
        let events = vec![
            (EventKind::New, rec("10.0.0.1", &t(20), Category::Discovered)),
            (EventKind::Changed, rec("10.0.0.1", &t(22), Category::Unsecured)),
            (EventKind::Gone, rec("10.0.0.1", &t(22), Category::Unsecured)),
            (EventKind::Snapshot, rec("10.0.0.1", &t(21), Category::Discovered)),
            (EventKind::Gone, rec("10.0.0.2", &t(20), Category::Discovered)),
            (EventKind::Gone, rec("10.0.0.2", &t(20), Category::Discovered)),
            (EventKind::Snapshot, rec("10.0.0.3", &t(23), Category::Discovered)),
            (EventKind::Changed, rec("10.0.0.3", &t(19), Category::Unsecured)),
            (EventKind::Gone, rec("10.0.0.4", &t(20), Category::Discovered)),
        ];
        let stored = |addr: &str, gone: bool| Row {
            gone_at: gone.then(|| t(10)),
            tags: r#"["kept"]"#.into(),
            missed_runs: 3,
            ..merge(None, &event(EventKind::New, &rec(addr, &t(1), Category::Discovered)))
                .unwrap()
                .unwrap()
        };
        let before: BTreeMap<Key, Row> = [stored("10.0.0.3", false), stored("10.0.0.4", true)]
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect();
        // One event at a time: load, merge, save.
        let mut one = before.clone();
        for (kind, r) in &events {
            let e = event(*kind, r);
            if let Some(row) = merge(one.get(&e.key()).cloned(), &e).unwrap() {
                one.insert(row.key.clone(), row);
            }
        }
        let mut m = Memory {
            rows: before,
            ..Memory::default()
        };
        apply(&mut m, "seg-a", "b-1", "d-1", "2026-11-30T00:00:00Z", &events).unwrap();
        assert_eq!(m.rows, one);
        assert_eq!((m.loads, m.saves), (1, 1));
        let gone = |a: &str| m.rows.values().find(|r| r.key.address == a).unwrap().gone_at.clone();
        assert_eq!(gone("10.0.0.1"), None, "seen again after gone");
        assert_eq!(gone("10.0.0.4"), Some(t(10)), "the first gone_at stays");
    }
}
