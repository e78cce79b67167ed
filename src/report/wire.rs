//! The report wire format: what `POST {upstream}/api/v1/reports` carries.
//!
//! A contract like the endpoint record: `docs/schema/report.schema.json`
//! describes it, tests validate what the sensor really sends against it, and
//! [`SCHEMA_VERSION`] changes when a field changes meaning. `batch_id` is the
//! idempotency key (also sent as the `Idempotency-Key` header): a batch
//! re-sent after a crash or a lost answer carries the same id, so upstream
//! applies it once. `event_id` names each event for the same reason.

use serde::{Deserialize, Serialize};

use crate::model::record::EndpointRecord;

pub const SCHEMA_VERSION: &str = "1";

/// The path a report is POSTed to, below the upstream base URL.
pub const REPORTS_PATH: &str = "/api/v1/reports";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorInfo {
    /// Stable across restarts (kept in the state directory).
    pub id: String,
    pub name: String,
    pub version: String,
}

/// The event kinds of the wire format are the inventory's: one type, so a
/// kind added to one cannot be forgotten in the other.
pub use crate::store::inventory::EventKind;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Random, unique per event (128 bits, hex).
    pub event_id: String,
    pub kind: EventKind,
    /// When the sensor stored the change (RFC 3339 UTC).
    pub occurred_at: String,
    /// Why a `changed` (or `gone`) event happened, for a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    pub endpoint: EndpointRecord,
}

impl Event {
    pub fn new(kind: EventKind, occurred_at: &str, reasons: Vec<String>, endpoint: EndpointRecord) -> Event {
        Event {
            event_id: crate::report::outbox::random_id(),
            kind,
            occurred_at: occurred_at.to_string(),
            reasons,
            endpoint,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: String,
    pub sensor: SensorInfo,
    pub batch_id: String,
    /// When this attempt was sent (a re-send has a later one, the same batch_id).
    pub sent_at: String,
    pub events: Vec<Event>,
}

impl Report {
    pub fn new(sensor: SensorInfo, batch_id: String, sent_at: String, events: Vec<Event>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION.to_string(),
            sensor,
            batch_id,
            sent_at,
            events,
        }
    }
}
