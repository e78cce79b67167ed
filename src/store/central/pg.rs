//! The central inventory in PostgreSQL: connecting, its schema, and
//! [`CentralStore`] over [`crate::store::exec`].

use std::sync::Mutex;

use postgres::{Client, NoTls};

use super::pg_exec::{Pg, Prepared, describe};
use super::{CentralStore, poisoned};
use crate::model::record::EndpointRecord;
use crate::store::endpoint::Stored;
use crate::store::exec;
use crate::store::fleet::Tx;
use crate::store::inventory::InventoryError;
use crate::store::merge::{Applied, EventKind};
use crate::store::query::{self, Counts, Filter};

/// Schema steps, as for SQLite: never edit a released one, add one.
const PG_MIGRATIONS: [&str; 3] = [
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
    // 2: the fleet.
    crate::store::sql::FLEET_TABLES,
    // 3: each applied batch's content digest (a replayed batch_id with
    // other content is refused); NULL for batches applied before.
    "ALTER TABLE batches ADD COLUMN digest TEXT;",
];

/// Connections per central process: the intake applies this many batches
/// at once (figures in docs/fleet.md, "Scale, measured").
const POOL: usize = 4;

/// The central inventory in PostgreSQL.
pub struct PgInventory {
    /// A few connections, so batches of different sensors are applied side
    /// by side (one sensor's batches still queue on its advisory lock).
    /// `Option` only so that [`Drop`] can move them to a plain thread.
    clients: Vec<Mutex<Option<Conn>>>,
    /// Where the next caller starts looking for a free connection.
    next: std::sync::atomic::AtomicUsize,
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
        // Statements stay prepared on each connection, but are planned for
        // each execution's values: after five runs PostgreSQL would switch
        // to one generic plan, and the generic plan of a batch's read (a
        // sensor and 500 addresses, all parameters) walked the wrong index
        // (one central's burst fell from 20,000 to 7,900 events/s).
        let custom = |mut c: Client| -> Result<Client, postgres::Error> {
            c.batch_execute("SET plan_cache_mode = force_custom_plan")?;
            Ok(c)
        };
        let mut clients = vec![Mutex::new(Conn::new(custom(client).map_err(err)?))];
        for _ in 1..POOL {
            let c = Client::connect(url, NoTls).and_then(custom).map_err(err)?;
            clients.push(Mutex::new(Conn::new(c)));
        }
        Ok(PgInventory {
            clients,
            next: std::sync::atomic::AtomicUsize::new(0),
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

    /// A free connection, else (all busy) the next one's turn.
    fn client(&self) -> Result<std::sync::MutexGuard<'_, Option<Conn>>, InventoryError> {
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = self.clients.len();
        for i in 0..n {
            match self.clients[(start + i) % n].try_lock() {
                Ok(g) => return Ok(g),
                Err(std::sync::TryLockError::WouldBlock) => {}
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned()),
            }
        }
        self.clients[start % n].lock().map_err(|_| poisoned())
    }

    fn err(&self) -> impl Fn(postgres::Error) -> InventoryError + '_ {
        move |e| InventoryError::Store(format!("{}: {}", self.shown, describe(&e)))
    }
}

impl Drop for PgInventory {
    /// The client owns a runtime; dropping one on an async worker panics.
    fn drop(&mut self) {
        let clients: Vec<Conn> = self
            .clients
            .iter_mut()
            .filter_map(|m| m.get_mut().ok().and_then(Option::take))
            .collect();
        if !clients.is_empty() {
            let _ = std::thread::spawn(move || drop(clients)).join();
        }
    }
}

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    prepared: Prepared,
}

impl Conn {
    fn new(client: Client) -> Option<Conn> {
        Some(Conn {
            client,
            prepared: Prepared::default(),
        })
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
        digest: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError> {
        let err = self.err();
        let mut guard = self.client()?;
        let conn = guard.as_mut().ok_or_else(gone)?;
        let mut tx = conn.client.transaction().map_err(&err)?;
        let applied = exec::apply_report(
            &mut Pg::new(&mut tx, &mut conn.prepared, &self.shown),
            sensor,
            batch_id,
            digest,
            received_at,
            events,
        )?;
        tx.commit().map_err(&err)?;
        Ok(applied)
    }

    fn query(&self, filter: &Filter) -> Result<Vec<Stored>, InventoryError> {
        let mut guard = self.client()?;
        let conn = guard.as_mut().ok_or_else(gone)?;
        exec::query(&mut Pg::new(&mut conn.client, &mut conn.prepared, &self.shown), filter)
    }

    fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError> {
        Ok(query::find(self.query(&Filter::default())?, id))
    }

    fn counts(&self) -> Result<Counts, InventoryError> {
        let mut guard = self.client()?;
        let conn = guard.as_mut().ok_or_else(gone)?;
        exec::counts(&mut Pg::new(&mut conn.client, &mut conn.prepared, &self.shown))
    }

    fn transact(&self, f: &mut dyn FnMut(&mut Tx<'_>) -> Result<(), InventoryError>) -> Result<(), InventoryError> {
        let err = self.err();
        let mut guard = self.client()?;
        let conn = guard.as_mut().ok_or_else(gone)?;
        let mut tx = conn.client.transaction().map_err(&err)?;
        f(&mut Pg::new(&mut tx, &mut conn.prepared, &self.shown))?;
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
