//! Reading the SQLite inventory: endpoints by [`Filter`], one by id, and
//! the counts for metrics ([`crate::store::exec`] does it for both stores).

use super::sqlite::Sqlite;
use super::{Inventory, InventoryError, db_error};
use crate::model::record::Category;
use crate::store::endpoint::Stored;
use crate::store::exec;
use crate::store::query::{self, Counts, Filter};

impl Inventory {
    fn reader(&self) -> Sqlite<'_> {
        Sqlite {
            conn: &self.conn,
            path: &self.path,
        }
    }

    /// Stored endpoints, optionally of one category, ordered by address and port.
    pub fn list(&self, category: Option<Category>) -> Result<Vec<Stored>, InventoryError> {
        self.query(&Filter {
            category,
            ..Filter::default()
        })
    }

    /// Stored endpoints matching `filter`, ordered by sensor, address, port
    /// and SNI. An endpoint of a host where a certificate agent was seen
    /// through the proxy is `automatable` (if its TLS was discovered).
    pub fn query(&self, filter: &Filter) -> Result<Vec<Stored>, InventoryError> {
        exec::query(&mut self.reader(), filter)
    }

    /// One endpoint by [`crate::store::endpoint::Key::id`].
    pub fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError> {
        Ok(query::find(self.query(&Filter::default())?, id))
    }

    /// Endpoints by category and by grade letter (`none` when ungraded),
    /// counted in SQL for the metrics scrape; gone endpoints are left out.
    pub fn counts(&self) -> Result<Counts, InventoryError> {
        exec::counts(&mut self.reader())
    }

    /// Batches applied so far, for tests and metrics.
    pub fn batches_applied(&self) -> Result<u64, InventoryError> {
        self.conn
            .query_row("SELECT count(*) FROM batches", [], |row| row.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(db_error(&self.path))
    }
}
