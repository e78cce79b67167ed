//! The endpoint inventory: what the sensor has seen, since when, and what
//! changed.
//!
//! Upstream wants changes, not scans: a new endpoint, a replaced
//! certificate, a grade that dropped, an endpoint that disappeared. So each
//! run is compared with what is stored and the differences become events.
//! The comparison ([`diff`]) is pure; the store is SQLite in WAL mode with
//! `synchronous=FULL`, so a kill at any moment leaves the last committed run
//! intact. The schema is versioned and migrated forward on open.
//!
//! A central sensor without PostgreSQL keeps the reports of other sensors
//! here too, under the same rules as [`crate::store::central::PgInventory`]
//! ([`crate::store::merge`], [`crate::store::sql`]).

use std::path::Path;

use rusqlite::Connection;

mod agents;
mod diff;
mod history;
mod migrate;
mod query;
mod reports;
mod runs;
mod scan_state;
mod sqlite;
#[cfg(test)]
mod tests;

pub use diff::{Change, DiffPolicy, Run, diff};
pub use history::{Event, Seen, Which};
pub use migrate::SCHEMA;
pub use runs::{LastRun, RunSummary};

pub use crate::store::endpoint::{Key, Stored};
pub use crate::store::merge::{Applied, EventKind};
pub use crate::store::query::{Counts, Filter};
use crate::store::row::Malformed;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory database {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "inventory database {path} has schema {found}, newer than this sensor understands ({SCHEMA}); upgrade the sensor"
    )]
    TooNew { path: String, found: i64 },
    #[error("inventory record does not serialise: {0}")]
    Json(#[from] serde_json::Error),
    /// The central store (PostgreSQL), or a lock around a store.
    #[error("inventory {0}")]
    Store(String),
}

impl From<Malformed> for InventoryError {
    fn from(e: Malformed) -> Self {
        InventoryError::Store(format!("row unreadable: {e}"))
    }
}

/// Names the store's file in a SQLite error.
fn db_error(path: &str) -> impl Fn(rusqlite::Error) -> InventoryError + use<> {
    let path = path.to_string();
    move |source| InventoryError::Db {
        path: path.clone(),
        source,
    }
}

/// The SQLite-backed store.
pub struct Inventory {
    conn: Connection,
    path: String,
}

impl Inventory {
    /// Open (creating if needed) the inventory at `path`, migrating it forward.
    pub fn open(path: &Path) -> Result<Self, InventoryError> {
        let shown = path.display().to_string();
        let db = db_error(&shown);
        let conn = Connection::open(path).map_err(&db)?;
        // The daemon writes while `sensor inventory` reads (or, on a fresh
        // store, migrates): wait for the other's lock instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(&db)?;
        wal_mode(&conn).map_err(&db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(&db)?;
        let mut inv = Inventory { conn, path: shown };
        inv.migrate()?;
        Ok(inv)
    }
}

/// Switching a fresh file to WAL takes an exclusive lock, and SQLite answers
/// a second opener doing the same at the same instant with SQLITE_BUSY
/// without consulting the busy handler; so the switch is retried, bounded in
/// count and time (about 10 s, as the busy timeout).
fn wal_mode(conn: &Connection) -> rusqlite::Result<()> {
    let mut attempts = 0u32;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && attempts < 200 =>
            {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}
