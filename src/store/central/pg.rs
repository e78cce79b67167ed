//! The central inventory in PostgreSQL: connecting, its schema, and
//! [`CentralStore`] over [`crate::store::exec`].

use std::sync::Mutex;

use postgres::{Client, NoTls};

use super::pg_exec::{Pg, describe};
use super::{CentralStore, poisoned};
use crate::model::record::EndpointRecord;
use crate::store::endpoint::Stored;
use crate::store::exec;
use crate::store::fleet::Tx;
use crate::store::inventory::InventoryError;
use crate::store::merge::{Applied, EventKind};
use crate::store::query::{self, Counts, Filter};

/// Schema steps, as for SQLite: never edit a released one, add one.
const PG_MIGRATIONS: [&str; 2] = [
    "CREATE TABLE endpoints (
        address TEXT NOT NULL, port INTEGER NOT NULL, sni TEXT NOT NULL, sensor TEXT NOT NULL,
        profile TEXT NOT NULL, category TEXT NOT NULL,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
        missed_runs INTEGER NOT NULL DEFAULT 0, gone_at TEXT,
        tags TEXT NOT NULL DEFAULT '[]', record TEXT NOT NULL,
        PRIMARY KEY (address, port, sni, sensor));
     CREATE INDEX endpoints_sensor ON endpoints(sensor);
     CREATE TABLE batches (batch_id TEXT PRIMARY KEY, sensor TEXT NOT NULL,
        applied_at TEXT NOT NULL, events INTEGER NOT NULL);",
    // 2 (issue 19's step 3 once the digest step lands before it): the fleet.
    crate::store::sql::FLEET_TABLES,
];

/// The central inventory in PostgreSQL.
pub struct PgInventory {
    /// `Option` only so that [`Drop`] can move it to a plain thread.
    client: Mutex<Option<Client>>,
    /// The URL without its password, for errors.
    shown: String,
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl PgInventory {
    /// Connects (blocking: call it from a blocking thread) and brings the
    /// schema up to date, one step per transaction under an advisory lock
    /// so that central sensors starting together migrate once.
    pub fn connect(url: &str) -> Result<Self, InventoryError> {
        let shown = redact(url);
        let err = |e: postgres::Error| InventoryError::Store(format!("{shown}: {}", describe(&e)));
        let mut client = Client::connect(url, NoTls).map_err(err)?;
        // Even the version table is created under the lock: concurrent
        // `CREATE TABLE IF NOT EXISTS` can fail in PostgreSQL.
        let mut tx = client.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock(48999)", &[]).map_err(err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS netsensor_schema (version INTEGER NOT NULL);
             INSERT INTO netsensor_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM netsensor_schema);",
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        loop {
            let mut tx = client.transaction().map_err(err)?;
            tx.execute("SELECT pg_advisory_xact_lock(48999)", &[]).map_err(err)?;
            let version: i32 = tx
                .query_one("SELECT version FROM netsensor_schema", &[])
                .map_err(err)?
                .get(0);
            let Some(step) = PG_MIGRATIONS.get(version.max(0) as usize) else {
                if version as usize > PG_MIGRATIONS.len() {
                    return Err(InventoryError::Store(format!(
                        "{shown}: schema {version} is newer than this sensor understands ({}); upgrade the sensor",
                        PG_MIGRATIONS.len()
                    )));
                }
                tx.commit().map_err(err)?;
                break;
            };
            tx.batch_execute(step).map_err(err)?;
            tx.execute("UPDATE netsensor_schema SET version = $1", &[&(version + 1)])
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(PgInventory {
            client: Mutex::new(Some(client)),
            shown,
        })
    }

    /// Connects from a plain thread: the synchronous client runs its own
    /// runtime, which may be neither started nor dropped inside an async one.
    pub fn connect_off_runtime(url: &str) -> Result<Self, InventoryError> {
        let url = url.to_string();
        std::thread::spawn(move || PgInventory::connect(&url))
            .join()
            .unwrap_or_else(|_| Err(InventoryError::Store("PostgreSQL connect panicked".into())))
    }

    fn client(&self) -> Result<std::sync::MutexGuard<'_, Option<Client>>, InventoryError> {
        self.client.lock().map_err(|_| poisoned())
    }

    fn err(&self) -> impl Fn(postgres::Error) -> InventoryError + '_ {
        move |e| InventoryError::Store(format!("{}: {}", self.shown, describe(&e)))
    }
}

impl Drop for PgInventory {
    /// The client owns a runtime; dropping one on an async worker panics.
    fn drop(&mut self) {
        let client = self.client.get_mut().ok().and_then(Option::take);
        if let Some(c) = client {
            let _ = std::thread::spawn(move || drop(c)).join();
        }
    }
}

fn gone() -> InventoryError {
    InventoryError::Store("PostgreSQL client closed".into())
}

impl CentralStore for PgInventory {
    fn apply_report(
        &self,
        sensor: &str,
        batch_id: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError> {
        let err = self.err();
        let mut guard = self.client()?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let mut tx = client.transaction().map_err(&err)?;
        let applied = exec::apply_report(
            &mut Pg::new(&mut tx, &self.shown),
            sensor,
            batch_id,
            received_at,
            events,
        )?;
        tx.commit().map_err(&err)?;
        Ok(applied)
    }

    fn query(&self, filter: &Filter) -> Result<Vec<Stored>, InventoryError> {
        let mut guard = self.client()?;
        let client = guard.as_mut().ok_or_else(gone)?;
        exec::query(&mut Pg::new(client, &self.shown), filter)
    }

    fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError> {
        Ok(query::find(self.query(&Filter::default())?, id))
    }

    fn counts(&self) -> Result<Counts, InventoryError> {
        let mut guard = self.client()?;
        let client = guard.as_mut().ok_or_else(gone)?;
        exec::counts(&mut Pg::new(client, &self.shown))
    }

    fn transact(&self, f: &mut dyn FnMut(&mut Tx<'_>) -> Result<(), InventoryError>) -> Result<(), InventoryError> {
        let err = self.err();
        let mut guard = self.client()?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let mut tx = client.transaction().map_err(&err)?;
        f(&mut Pg::new(&mut tx, &self.shown))?;
        tx.commit().map_err(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(redact("postgres://u:s3cret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(redact("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(redact("host=db user=u"), "host=db user=u");
    }
}
