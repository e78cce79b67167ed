//! Paused runs' saved state, per profile, so a run cut short by its window
//! or a shutdown resumes where it stopped (see the daemon's checkpoints).

use rusqlite::{OptionalExtension, params};

use super::{Inventory, InventoryError, db_error};

impl Inventory {
    /// The saved resume state of `profile`.
    pub fn scan_state(&self, profile: &str) -> Result<Option<String>, InventoryError> {
        self.conn
            .query_row(
                "SELECT state FROM scan_state WHERE profile = ?1",
                params![profile],
                |row| row.get(0),
            )
            .optional()
            .map_err(db_error(&self.path))
    }

    /// Whether `profile` has a saved resume state (without reading it).
    pub fn has_scan_state(&self, profile: &str) -> Result<bool, InventoryError> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM scan_state WHERE profile = ?1)",
                params![profile],
                |row| row.get(0),
            )
            .map_err(db_error(&self.path))
    }

    /// Saves (`Some`) or clears (`None`) the resume state of `profile`.
    pub fn set_scan_state(&mut self, profile: &str, state: Option<&str>) -> Result<(), InventoryError> {
        match state {
            Some(st) => self.conn.execute(
                "INSERT INTO scan_state(profile, state) VALUES (?1, ?2)
                 ON CONFLICT(profile) DO UPDATE SET state = ?2",
                params![profile, st],
            ),
            None => self
                .conn
                .execute("DELETE FROM scan_state WHERE profile = ?1", params![profile]),
        }
        .map_err(db_error(&self.path))?;
        Ok(())
    }
}
