//! Where the console reads: the endpoints from the store the API reads
//! (this sensor's SQLite inventory, or PostgreSQL on a central sensor), the
//! history and the runs from this sensor's own inventory. Blocking calls,
//! made from `spawn_blocking` by the router.

use std::sync::{Arc, Mutex};

use crate::store::central::CentralStore;
use crate::store::endpoint::{Key, Stored};
use crate::store::inventory::{Event, Inventory, InventoryError, RunSummary, Which};
use crate::store::query::Filter;

/// How many runs the Scans page lists.
pub const RUNS: usize = 200;

/// What the pages read.
pub trait Source: Send + Sync {
    /// Every stored endpoint, gone ones included.
    fn endpoints(&self) -> Result<Vec<Stored>, InventoryError>;
    /// The timeline of one endpoint, oldest first.
    fn history(&self, key: &Key) -> Result<Vec<Event>, InventoryError>;
    /// The newest changes, newest first.
    fn recent(&self, limit: usize) -> Result<Vec<Event>, InventoryError>;
    /// The newest runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, InventoryError>;
}

/// The daemon's stores.
pub struct Stores {
    pub endpoints: Arc<dyn CentralStore>,
    pub own: Arc<Mutex<Inventory>>,
}

fn poisoned() -> InventoryError {
    InventoryError::Store("inventory lock poisoned".into())
}

impl Source for Stores {
    fn endpoints(&self) -> Result<Vec<Stored>, InventoryError> {
        self.endpoints.query(&Filter::default())
    }

    fn history(&self, key: &Key) -> Result<Vec<Event>, InventoryError> {
        let which = Which {
            address: Some(key.address.clone()),
            port: Some(key.port),
            sni: Some(key.sni.clone()),
        };
        let mut events = self.own.lock().map_err(|_| poisoned())?.history(&which)?;
        events.retain(|e| e.key == *key);
        Ok(events)
    }

    fn recent(&self, limit: usize) -> Result<Vec<Event>, InventoryError> {
        self.own.lock().map_err(|_| poisoned())?.recent_changes(limit)
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, InventoryError> {
        self.own.lock().map_err(|_| poisoned())?.runs(limit)
    }
}
