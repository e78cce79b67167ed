//! Snapshots: the whole of this sensor's inventory sent upstream, at start
//! and then periodically, and as the resync owed after a full outbox.
//!
//! Change events alone cannot bring upstream level after a crash between
//! the inventory's commit and the outbox's fsync, or after the outbox
//! refused events for lack of room: a snapshot (active endpoints as
//! `snapshot`, gone ones as `gone`) can, and upstream converges on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::model::timestamp::rfc3339;
use crate::report::outbox::{Class, OutboxError};
use crate::report::reporter::Reporter;
use crate::report::{Event, EventKind};
use crate::store::inventory::{Filter, Inventory, InventoryError};

/// How often the loop looks whether a resync is owed.
const RESYNC_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{0} lock poisoned")]
    Poisoned(&'static str),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("the snapshot did not fit in the outbox; tried again later")]
    NoRoom,
}

/// Enqueues the whole of this sensor's inventory as `snapshot` events (gone
/// endpoints as `gone`, as last seen). With `only_if_room`, does nothing
/// until the outbox is below half its cap (a resync after a full outbox).
pub fn enqueue(reporter: &Reporter, inventory: &Mutex<Inventory>, only_if_room: bool) -> Result<(), SnapshotError> {
    if only_if_room {
        let st = reporter.status().ok_or(SnapshotError::Poisoned("outbox"))?;
        if st.records * 2 >= st.max_records || st.bytes * 2 >= st.max_bytes {
            return Ok(());
        }
    }
    let rows = inventory
        .lock()
        .map_err(|_| SnapshotError::Poisoned("inventory"))?
        .query(&Filter {
            sensor: Some(String::new()),
            ..Filter::default()
        })?;
    let at = rfc3339(OffsetDateTime::now_utc());
    let events: Vec<Event> = rows
        .into_iter()
        .map(|s| match s.gone_at {
            None => Event::new(EventKind::Snapshot, &at, Vec::new(), s.record),
            Some(g) => Event::new(
                EventKind::Gone,
                &at,
                vec![format!("gone since {g} (snapshot)")],
                s.record,
            ),
        })
        .collect();
    let n = events.len();
    if !reporter.store(Class::Snapshot, &events) {
        return Err(SnapshotError::NoRoom);
    }
    reporter
        .with_outbox(|ob| if ob.resync_needed() { ob.clear_resync() } else { Ok(()) })
        .ok_or(SnapshotError::Poisoned("outbox"))??;
    tracing::info!(endpoints = n, "snapshot enqueued");
    Ok(())
}

/// A snapshot now, then every `every`, and a resync whenever one is owed,
/// until `shutdown` fires. A snapshot being written when it fires is
/// finished first (it is one bounded blocking step), so the outbox is never
/// left with half of one.
pub async fn run(
    reporter: Arc<Reporter>,
    inventory: Arc<Mutex<Inventory>>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut last = None::<tokio::time::Instant>;
    loop {
        let due = last.is_none_or(|t| t.elapsed() >= every);
        // The outbox lock may be held by a write in progress (fsync): ask off the runtime.
        let r = reporter.clone();
        let owed = tokio::task::spawn_blocking(move || r.with_outbox(|ob| ob.resync_needed()).unwrap_or(false))
            .await
            .unwrap_or(false);
        if due || owed {
            let (r, inv) = (reporter.clone(), inventory.clone());
            let done = tokio::task::spawn_blocking(move || enqueue(&r, &inv, owed && !due)).await;
            match done {
                Ok(Ok(())) => last = Some(tokio::time::Instant::now()),
                Ok(Err(e)) => tracing::error!("snapshot not enqueued: {e}"),
                Err(e) => tracing::error!("snapshot task: {e}"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RESYNC_POLL.min(every)) => {}
        }
    }
}
