//! Applying other sensors' report batches to the SQLite inventory (a
//! central sensor without PostgreSQL), in one transaction;
//! [`crate::store::merge`] decides.

use rusqlite::TransactionBehavior;

use super::sqlite::Sqlite;
use super::{Inventory, InventoryError, db_error};
use crate::model::record::EndpointRecord;
use crate::store::exec;
use crate::store::merge::{Applied, EventKind};

impl Inventory {
    /// Applies one report batch from another sensor, at most once: a
    /// `batch_id` seen before is acknowledged and not applied again. One
    /// transaction: a batch is applied whole or not at all.
    pub fn apply_report(
        &mut self,
        sensor: &str,
        batch_id: &str,
        digest: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError> {
        let db = db_error(&self.path);
        // The write lock from the start: a deferred transaction that reads
        // first may find another process's write in the way of its own.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&db)?;
        let mut store = Sqlite {
            conn: &tx,
            path: &self.path,
        };
        let applied = exec::apply_report(&mut store, sensor, batch_id, digest, received_at, events)?;
        tx.commit().map_err(&db)?;
        Ok(applied)
    }
}
