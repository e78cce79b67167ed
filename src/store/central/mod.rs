//! The merged inventory of a central sensor: where reports from other
//! sensors are applied and what the endpoints API reads.
//!
//! A handful of segment sensors fit the embedded SQLite store every sensor
//! has. A fleet reporting to one central sensor outgrows one file on one
//! disk, so the central store can be PostgreSQL instead
//! (`[inventory] url = "postgres://…"`). Both implement [`CentralStore`]
//! with the same rules, decided in [`crate::store::merge`] and run through
//! the same code ([`crate::store::exec`]): a batch is applied whole or
//! not at all, and a `batch_id` seen before is acknowledged without being
//! applied again (the batch row is inserted first, so two deliveries of one
//! batch racing on two connections still apply it once).

use std::sync::Mutex;

use crate::model::record::EndpointRecord;
use crate::store::endpoint::Stored;
use crate::store::fleet::Tx;
use crate::store::inventory::{Inventory, InventoryError};
use crate::store::merge::{Applied, EventKind};
use crate::store::query::{Counts, Filter};

mod pg;
mod pg_exec;

pub use pg::{PgInventory, redact};

/// What the intake and the endpoints API need of a store.
pub trait CentralStore: Send + Sync {
    fn apply_report(
        &self,
        sensor: &str,
        batch_id: &str,
        digest: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError>;
    fn query(&self, filter: &Filter) -> Result<Vec<Stored>, InventoryError>;
    fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError>;
    fn counts(&self) -> Result<Counts, InventoryError>;
    /// Runs `f` in one transaction (committed when it returns `Ok`): the
    /// fleet's reads and writes ([`crate::store::fleet`]).
    fn transact(&self, f: &mut dyn FnMut(&mut Tx<'_>) -> Result<(), InventoryError>) -> Result<(), InventoryError>;
}

/// [`CentralStore::transact`] with a result.
pub fn transaction<T>(
    store: &dyn CentralStore,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, InventoryError>,
) -> Result<T, InventoryError> {
    let mut f = Some(f);
    let mut out = None;
    store.transact(&mut |tx| {
        let f = f
            .take()
            .ok_or_else(|| InventoryError::Store("transaction body ran twice".into()))?;
        out = Some(f(tx)?);
        Ok(())
    })?;
    out.ok_or_else(|| InventoryError::Store("transaction ended without an answer".into()))
}

fn poisoned() -> InventoryError {
    InventoryError::Store("inventory lock poisoned".into())
}

impl CentralStore for Mutex<Inventory> {
    fn apply_report(
        &self,
        sensor: &str,
        batch_id: &str,
        digest: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError> {
        self.lock()
            .map_err(|_| poisoned())?
            .apply_report(sensor, batch_id, digest, received_at, events)
    }

    fn query(&self, filter: &Filter) -> Result<Vec<Stored>, InventoryError> {
        self.lock().map_err(|_| poisoned())?.query(filter)
    }

    fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError> {
        self.lock().map_err(|_| poisoned())?.get(id)
    }

    fn counts(&self) -> Result<Counts, InventoryError> {
        self.lock().map_err(|_| poisoned())?.counts()
    }

    fn transact(&self, f: &mut dyn FnMut(&mut Tx<'_>) -> Result<(), InventoryError>) -> Result<(), InventoryError> {
        self.lock().map_err(|_| poisoned())?.transact(f)
    }
}
