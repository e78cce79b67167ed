//! Certificate agents seen through the proxy: their hosts' discovered TLS
//! endpoints read `automatable` (see [`crate::store::sql::select`]).

use rusqlite::params;

use super::{Inventory, InventoryError, db_error};

impl Inventory {
    /// Notes that a certificate agent on `address` used the proxy at `at`:
    /// its host's TLS endpoints become `automatable`.
    pub fn mark_agent(&mut self, address: &str, at: &str) -> Result<(), InventoryError> {
        self.conn
            .execute(
                "INSERT INTO agents(address, first_seen, last_seen, tunnels) VALUES (?1, ?2, ?2, 1)
                 ON CONFLICT(address) DO UPDATE SET last_seen = ?2, tunnels = tunnels + 1",
                params![address, at],
            )
            .map_err(db_error(&self.path))?;
        Ok(())
    }
}
