//! Reporting upstream: what a sensor sends, how it is batched, and how it is
//! delivered without losing or doubling anything.
//!
//! The flow: the daemon turns each run's changes (and, periodically, the
//! whole inventory) into [`wire::Event`]s and [`enqueue`]s them into the
//! durable [`crate::outbox`] *before* anything else happens to them; the
//! [`delivery`] loop takes batches from the outbox, wraps them in a
//! [`wire::Report`] (the batch id doubles as the idempotency key), POSTs them
//! gzip'd over HTTPS, and deletes them only on upstream's 2xx. The wire
//! format is published as `docs/schema/report.schema.json`; see
//! `docs/reporting.md`.

pub mod delivery;
pub mod wire;

use crate::inventory::{Change, Key};
use crate::outbox::{Class, Outbox, OutboxError, Storage};
use crate::record::EndpointRecord;
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
pub fn decode_batch(batch: &crate::outbox::Batch) -> Result<Vec<Event>, serde_json::Error> {
    let mut events = Vec::new();
    for r in &batch.records {
        let mut chunk: Vec<Event> = serde_json::from_slice(&r.payload)?;
        events.append(&mut chunk);
    }
    Ok(events)
}
