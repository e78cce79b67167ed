//! The daemon's handle on its outbox: the one place runs, the snapshot loop
//! and the delivery task meet.
//!
//! The rule "a change is in the outbox before it is logged or sent" needs a
//! single owner of the outbox and of the wake-up that starts delivery, so
//! that every writer goes through [`Reporter::enqueue_run`] or the snapshot
//! and every reader (status, metrics) sees the same state. Starting the
//! background tasks is separate from opening ([`Reporter::spawn`]) so the
//! daemon can validate everything before a task runs, and every task ends
//! with the daemon's shutdown token.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::timestamp::rfc3339;
use crate::report::delivery::{self, Client, Stats, UpstreamConfig};
use crate::report::outbox::{Class, DirStorage, Limits, Outbox, OutboxError, Status};
use crate::report::{self, Event, SensorInfo};
use crate::store::inventory::{Change, Filter, Inventory, Key};

/// The outbox's directory inside the state directory.
pub const OUTBOX_DIR: &str = "outbox";

#[derive(Debug, thiserror::Error)]
pub enum ReporterError {
    #[error("cannot open the outbox {dir}: {source}")]
    Open {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// The outbox of a state directory, opened for writing, with recovery
/// after an unclean stop logged.
pub fn open_outbox(state_dir: &Path, limits: Limits) -> Result<Outbox<DirStorage>, ReporterError> {
    let dir = state_dir.join(OUTBOX_DIR);
    let storage = DirStorage::open(&dir).map_err(|source| ReporterError::Open {
        dir: dir.display().to_string(),
        source,
    })?;
    let (ob, rec) = Outbox::open(storage, limits)?;
    if rec.temporaries + rec.finished_batches + rec.corrupt > 0 || rec.in_flight.is_some() {
        tracing::warn!(
            temporaries = rec.temporaries,
            finished_batches = rec.finished_batches,
            corrupt = rec.corrupt,
            in_flight = rec.in_flight.as_deref().unwrap_or("-"),
            "outbox recovered after an unclean stop"
        );
    }
    Ok(ob)
}

pub struct Reporter {
    outbox: Arc<Mutex<Outbox<DirStorage>>>,
    wake: Arc<Notify>,
    pub stats: Arc<Stats>,
}

impl Reporter {
    /// Opens (and recovers) the outbox of `state_dir`; nothing runs yet.
    pub fn open(state_dir: &Path, limits: Limits) -> Result<Arc<Reporter>, ReporterError> {
        Ok(Arc::new(Reporter {
            outbox: Arc::new(Mutex::new(open_outbox(state_dir, limits)?)),
            wake: Arc::new(Notify::new()),
            stats: Arc::new(Stats::default()),
        }))
    }

    /// Starts delivery and the snapshot loop (a snapshot now, then every
    /// `snapshot_every`); both end when `shutdown` fires.
    pub fn spawn(
        self: &Arc<Self>,
        client: Client,
        sensor: SensorInfo,
        cfg: UpstreamConfig,
        inventory: Arc<Mutex<Inventory>>,
        snapshot_every: Duration,
        shutdown: &CancellationToken,
    ) -> [JoinHandle<()>; 2] {
        tracing::info!(endpoint = %client.endpoints().join(", "), sensor = %sensor.id, "reporting upstream");
        let delivery = tokio::spawn(delivery::run(
            self.outbox.clone(),
            client,
            sensor,
            cfg,
            self.wake.clone(),
            self.stats.clone(),
            shutdown.clone(),
        ));
        let snapshots = tokio::spawn(report::snapshot::run(
            self.clone(),
            inventory,
            snapshot_every,
            shutdown.clone(),
        ));
        [delivery, snapshots]
    }

    /// The outbox's depth and flags (`None` if its lock was poisoned).
    pub fn status(&self) -> Option<Status> {
        self.outbox.lock().map(|ob| ob.status()).ok()
    }

    /// When the oldest event waiting in the outbox occurred (RFC 3339): the
    /// fleet heartbeat's "how far behind" (`None`: empty or unreadable).
    pub fn oldest_event_at(&self) -> Option<String> {
        let ob = self.outbox.lock().ok()?;
        let r = ob.oldest().ok().flatten()?;
        let events: Vec<crate::report::Event> = serde_json::from_slice(&r.payload).ok()?;
        events.first().map(|e| e.occurred_at.clone())
    }

    /// Delivery counters and the outbox's depth, for `/api/v1/status`.
    pub fn summary(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let st = self.status();
        serde_json::json!({
            "delivered_batches": self.stats.delivered_batches.load(Relaxed),
            "delivered_events": self.stats.delivered_events.load(Relaxed),
            "retries": self.stats.retries.load(Relaxed),
            "parked_batches": self.stats.parked.load(Relaxed),
            "outbox_records": st.as_ref().map(|s| s.records),
            "outbox_events": st.as_ref().map(|s| s.events),
            "resync_owed": st.as_ref().map(|s| s.resync_needed),
        })
    }

    /// Stores one run's changes in the outbox (durably). `inv` is the
    /// inventory the run was just recorded in, its lock held by the caller
    /// so no other run's changes interleave. A full outbox is logged and
    /// owed as a resync (see [`crate::report::outbox`]).
    pub fn enqueue_run(&self, inv: &Inventory, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let at = rfc3339(OffsetDateTime::now_utc());
        let mut by_key = BTreeMap::new();
        match inv.query(&Filter {
            sensor: Some(String::new()),
            ..Filter::default()
        }) {
            Ok(rows) => {
                for s in rows {
                    by_key.insert(s.key.clone(), s.record);
                }
            }
            Err(e) => {
                tracing::error!("cannot read the inventory for the report: {e}; a resync is owed");
                self.mark_resync();
                return;
            }
        }
        let events = report::events_from_changes(changes, &at, |k: &Key| by_key.get(k).cloned());
        if !self.store(Class::Change, &events) {
            self.mark_resync();
        }
    }

    /// Enqueues `events` and wakes delivery; false when they were not all stored.
    pub(crate) fn store(&self, class: Class, events: &[Event]) -> bool {
        if events.is_empty() {
            return true;
        }
        let mut ob = match self.outbox.lock() {
            Ok(ob) => ob,
            Err(_) => {
                tracing::error!("outbox lock poisoned; events not stored");
                return false;
            }
        };
        let stored = report::enqueue(&mut ob, class, events);
        let ok = stored.is_ok();
        match stored {
            Ok(n) => {
                for e in events {
                    // The target predates the move into the library: tests and operators filter on it.
                    tracing::debug!(target: "sensor::reporting::events", event = %e.event_id, kind = e.kind.as_str(), "event stored");
                }
                tracing::info!(events = n, kind = ?class, "events stored in the outbox");
            }
            Err(e @ OutboxError::Full { .. }) => {
                tracing::error!("outbox full: {e}; a full snapshot will be sent when there is room again");
            }
            Err(e) => {
                tracing::error!("events not stored in the outbox: {e}");
            }
        }
        drop(ob);
        self.wake.notify_one();
        ok
    }

    pub(crate) fn mark_resync(&self) {
        if let Ok(mut ob) = self.outbox.lock()
            && let Err(e) = ob.mark_resync()
        {
            tracing::error!("cannot note the resync owed: {e}");
        }
    }

    /// Runs `f` on the outbox under its lock (`None` if the lock was poisoned).
    pub(crate) fn with_outbox<R>(&self, f: impl FnOnce(&mut Outbox<DirStorage>) -> R) -> Option<R> {
        self.outbox.lock().ok().map(|mut ob| f(&mut ob))
    }
}
