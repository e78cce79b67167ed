//! Reporting upstream: what a sensor sends, how it is batched, and how it is
//! delivered without losing or doubling anything.
//!
//! The flow: the daemon turns each run's changes (and, periodically, the
//! whole inventory) into [`wire::Event`]s and [`enqueue`]s them into the
//! durable [`crate::report::outbox`] *before* anything else happens to them; the
//! [`delivery`] loop takes batches from the outbox, wraps them in a
//! [`wire::Report`] (the batch id doubles as the idempotency key), POSTs them
//! gzip'd over HTTPS, and deletes them only on upstream's 2xx. The wire
//! format is published as `docs/schema/report.schema.json`; see
//! `docs/reporting.md`.

pub mod check;
pub mod delivery;
pub mod intake;
pub mod outbox;
pub mod reporter;
pub mod snapshot;
pub mod wire;

use crate::model::record::EndpointRecord;
use crate::report::outbox::{Class, Outbox, OutboxError, Storage};
use crate::store::inventory::{Change, Key};
pub use wire::{Event, EventKind, Report, SensorInfo};

/// Events per outbox record: small enough for any batch cap, large enough
/// that a big snapshot is not one fsync per endpoint.
pub const EVENTS_PER_RECORD: usize = 100;

/// The events of one run's changes. `record_of` finds the stored record of a
/// key (the one just stored; for a gone endpoint, the last one seen); a change
/// whose record cannot be found is skipped with a warning (it can only happen
/// if the endpoint was deleted in between).
pub fn events_from_changes(
    changes: &[Change],
    occurred_at: &str,
    mut record_of: impl FnMut(&Key) -> Option<EndpointRecord>,
) -> Vec<Event> {
    let mut out = Vec::new();
    for c in changes {
        let (kind, key, reasons) = match c {
            Change::New { key } => (EventKind::New, key, Vec::new()),
            Change::Changed { key, reasons } => (EventKind::Changed, key, reasons.clone()),
            Change::Gone { key, missed_runs } => (
                EventKind::Gone,
                key,
                vec![format!("not seen in {missed_runs} consecutive runs")],
            ),
        };
        match record_of(key) {
            Some(endpoint) => out.push(Event::new(kind, occurred_at, reasons, endpoint)),
            None => {
                tracing::warn!(address = %key.address, port = key.port, "change without a stored record; not reported")
            }
        }
    }
    out
}

/// Stores `events` durably in the outbox, [`EVENTS_PER_RECORD`] per record.
/// Returns how many were stored; on error the ones before it are stored (and
/// will be delivered), the rest are not.
pub fn enqueue<S: Storage>(outbox: &mut Outbox<S>, class: Class, events: &[Event]) -> Result<usize, OutboxError> {
    let mut stored = 0;
    for chunk in events.chunks(EVENTS_PER_RECORD) {
        let payload = serde_json::to_vec(chunk).map_err(|e| OutboxError::Io {
            dir: outbox.storage().describe(),
            op: "encode events".into(),
            source: std::io::Error::other(e),
        })?;
        outbox.enqueue(class, chunk.len() as u32, &payload)?;
        stored += chunk.len();
    }
    Ok(stored)
}

/// The event ids in an outbox batch's payloads, decoded.
pub fn decode_batch(batch: &crate::report::outbox::Batch) -> Result<Vec<Event>, serde_json::Error> {
    let mut events = Vec::new();
    for r in &batch.records {
        let mut chunk: Vec<Event> = serde_json::from_slice(&r.payload)?;
        events.append(&mut chunk);
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::model::record::{Category, EndpointRecord};
    use crate::report::outbox::{DirStorage, Limits};

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut r = EndpointRecord::new(
                    std::net::IpAddr::from([127, 1, (i / 250) as u8, (i % 250) as u8]),
                    443,
                    None,
                    Category::Discovered,
                    "2026-11-24T12:00:00Z".into(),
                );
                r.port_reason = "syn-ack".into();
                Event::new(EventKind::Snapshot, "2026-11-24T12:00:00Z", Vec::new(), r)
            })
            .collect()
    }

    #[test]
    fn events_are_chunked_batched_and_decoded_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open(DirStorage::open(dir.path()).unwrap(), Limits::default()).unwrap();
        let ev = events(250);
        assert_eq!(enqueue(&mut ob, Class::Snapshot, &ev).unwrap(), 250);
        assert_eq!(ob.status().records, 3, "100 events per record");
        let b = ob.next_batch(200, 1 << 30, || "a".repeat(32)).unwrap().unwrap();
        let got = decode_batch(&b).unwrap();
        assert_eq!(got.len(), 200, "the event cap takes whole records");
        assert_eq!(got[0].event_id, ev[0].event_id);
        assert_eq!(got[199].event_id, ev[199].event_id);
    }

    /// Not a unit test: `cargo test -p netsensor --lib -- --ignored outbox_throughput --nocapture`.
    #[test]
    #[ignore = "measurement"]
    fn outbox_throughput() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open(DirStorage::open(dir.path()).unwrap(), Limits::default()).unwrap();
        let ev = events(10_000);
        let t = Instant::now();
        for e in ev.chunks(1) {
            enqueue(&mut ob, Class::Change, e).unwrap();
        }
        let single = t.elapsed();
        let (mut ob2, _) = Outbox::open(DirStorage::open(&dir.path().join("b")).unwrap(), Limits::default()).unwrap();
        let t = Instant::now();
        enqueue(&mut ob2, Class::Snapshot, &ev).unwrap();
        let chunked = t.elapsed();
        let inv_dir = tempfile::tempdir().unwrap();
        let mut inv = crate::store::inventory::Inventory::open(&inv_dir.path().join("i.sqlite")).unwrap();
        let t = Instant::now();
        let mut batches = 0;
        let mut bytes = 0;
        while let Some(b) = ob2.next_batch(500, 4 << 20, crate::report::outbox::random_id).unwrap() {
            let events = decode_batch(&b).unwrap();
            let report = Report::new(
                SensorInfo {
                    id: "s".into(),
                    name: "s".into(),
                    version: "0".into(),
                },
                b.id.clone(),
                "2026-11-24T12:00:00Z".into(),
                events,
            );
            bytes += delivery::encode(&report).unwrap().len();
            let ev: Vec<_> = report
                .events
                .into_iter()
                .map(|e| (crate::store::inventory::EventKind::Snapshot, e.endpoint))
                .collect();
            inv.apply_report("s", &b.id, "d", "2026-11-24T12:00:00Z", &ev).unwrap();
            ob2.ack(&b.id).unwrap();
            batches += 1;
        }
        let drained = t.elapsed();
        eprintln!(
            "10000 events: one record each {single:?} ({:.0}/s); 100 per record {chunked:?}; \
             drained in {batches} batches ({bytes} gzip bytes) through apply_report in {drained:?}",
            10_000.0 / single.as_secs_f64()
        );
    }
}
