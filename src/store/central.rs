//! The merged inventory of a central sensor: where reports from other
//! sensors are applied and what the endpoints API reads.
//!
//! A handful of segment sensors fit the embedded SQLite store every sensor
//! has. A fleet reporting to one central sensor outgrows one file on one
//! disk, so the central store can be PostgreSQL instead
//! (`[inventory] url = "postgres://…"`). Both implement [`CentralStore`]
//! with the same rules: a batch is applied whole or not at all, and a
//! `batch_id` seen before is acknowledged without being applied again (in
//! PostgreSQL the batch row is inserted first, so two deliveries of one
//! batch racing on two connections still apply it once).

use std::sync::Mutex;

use postgres::{Client, NoTls};

use crate::model::record::EndpointRecord;
use crate::store::inventory::{Applied, Counts, EventKind, Filter, Inventory, InventoryError, Key, Stored};

/// What the intake and the endpoints API need of a store.
pub trait CentralStore: Send + Sync {
    fn apply_report(
        &self,
        sensor: &str,
        batch_id: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError>;
    fn query(&self, filter: &Filter) -> Result<Vec<Stored>, InventoryError>;
    fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError>;
    fn counts(&self) -> Result<Counts, InventoryError>;
}

fn poisoned() -> InventoryError {
    InventoryError::Store("inventory lock poisoned".into())
}

impl CentralStore for Mutex<Inventory> {
    fn apply_report(
        &self,
        sensor: &str,
        batch_id: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError> {
        self.lock()
            .map_err(|_| poisoned())?
            .apply_report(sensor, batch_id, received_at, events)
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
}

/// Schema steps, as for SQLite: never edit a released one, add one.
const PG_MIGRATIONS: [&str; 1] = ["CREATE TABLE endpoints (
        address TEXT NOT NULL, port INTEGER NOT NULL, sni TEXT NOT NULL, sensor TEXT NOT NULL,
        profile TEXT NOT NULL, category TEXT NOT NULL,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
        missed_runs INTEGER NOT NULL DEFAULT 0, gone_at TEXT,
        tags TEXT NOT NULL DEFAULT '[]', record TEXT NOT NULL,
        PRIMARY KEY (address, port, sni, sensor));
     CREATE INDEX endpoints_sensor ON endpoints(sensor);
     CREATE TABLE batches (batch_id TEXT PRIMARY KEY, sensor TEXT NOT NULL,
        applied_at TEXT NOT NULL, events INTEGER NOT NULL);"];

/// The central inventory in PostgreSQL.
pub struct PgInventory {
    /// `Option` only so that [`Drop`] can move it to a plain thread.
    client: Mutex<Option<Client>>,
    /// The URL without its password, for errors.
    shown: String,
}

/// The server's own words when it sent any (`db error` alone says nothing).
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
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
        // The batch row first: a concurrent delivery of the same batch waits
        // here for this transaction and then finds it applied.
        let n = tx
            .execute(
                "INSERT INTO batches(batch_id, sensor, applied_at, events) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (batch_id) DO NOTHING",
                &[&batch_id, &sensor, &received_at, &(events.len() as i32)],
            )
            .map_err(&err)?;
        if n == 0 {
            return Ok(Applied {
                applied: false,
                events: 0,
            });
        }
        let tags = serde_json::to_string(&[format!("sensor:{sensor}")])?;
        for (kind, r) in events {
            let key = Key {
                sensor: sensor.to_string(),
                ..Key::of(r)
            };
            let port = i32::from(key.port);
            match kind {
                EventKind::Gone => {
                    // A gone endpoint never seen here is stored as gone, so
                    // upstream converges whatever order events arrive in.
                    let json = serde_json::to_string(r)?;
                    tx.execute(
                        "INSERT INTO endpoints(address, port, sni, sensor, profile, category, first_seen, last_seen,
                            missed_runs, gone_at, tags, record)
                         VALUES ($1, $2, $3, $4, '', $5, $6, $6, 0, $7, $8, $9)
                         ON CONFLICT (address, port, sni, sensor) DO UPDATE
                            SET gone_at = coalesce(endpoints.gone_at, $7)",
                        &[
                            &key.address,
                            &port,
                            &key.sni,
                            &key.sensor,
                            &r.category.as_str(),
                            &r.scanned_at,
                            &received_at,
                            &tags,
                            &json,
                        ],
                    )
                    .map_err(&err)?;
                }
                EventKind::New | EventKind::Changed | EventKind::Snapshot => {
                    let json = serde_json::to_string(r)?;
                    tx.execute(
                        "INSERT INTO endpoints(address, port, sni, sensor, profile, category, first_seen, last_seen,
                            missed_runs, gone_at, tags, record)
                         VALUES ($1, $2, $3, $4, '', $5, $6, $6, 0, NULL, $7, $8)
                         ON CONFLICT (address, port, sni, sensor) DO UPDATE SET category = $5,
                            last_seen = greatest(endpoints.last_seen, $6), missed_runs = 0, gone_at = NULL,
                            record = $8",
                        &[
                            &key.address,
                            &port,
                            &key.sni,
                            &key.sensor,
                            &r.category.as_str(),
                            &r.scanned_at,
                            &tags,
                            &json,
                        ],
                    )
                    .map_err(&err)?;
                }
            }
        }
        tx.commit().map_err(&err)?;
        Ok(Applied {
            applied: true,
            events: events.len(),
        })
    }

    fn query(&self, filter: &Filter) -> Result<Vec<Stored>, InventoryError> {
        let err = self.err();
        let mut guard = self.client()?;
        let client = guard.as_mut().ok_or_else(gone)?;
        let rows = client
            .query(
                "SELECT address, port, sni, sensor, profile, first_seen, last_seen, missed_runs, gone_at, tags, record
                 FROM endpoints WHERE ($1::TEXT IS NULL OR sensor = $1)
                 ORDER BY sensor, address, port, sni",
                &[&filter.sensor],
            )
            .map_err(&err)?;
        let mut out = Vec::new();
        for row in rows {
            let port: i32 = row.get(1);
            let key = Key {
                address: row.get(0),
                port: u16::try_from(port).unwrap_or(0),
                sni: row.get(2),
                sensor: row.get(3),
            };
            let record: EndpointRecord = serde_json::from_str(row.get::<_, &str>(10))?;
            let missed: i32 = row.get(7);
            let stored = Stored {
                id: key.id(),
                key,
                profile: row.get(4),
                category: record.category,
                first_seen: row.get(5),
                last_seen: row.get(6),
                missed_runs: u32::try_from(missed).unwrap_or(0),
                gone_at: row.get(8),
                tags: serde_json::from_str(row.get::<_, &str>(9)).unwrap_or_default(),
                record,
            };
            if filter.matches(&stored) {
                out.push(stored);
            }
        }
        Ok(out)
    }

    fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError> {
        Ok(self.query(&Filter::default())?.into_iter().find(|s| s.id == id))
    }

    fn counts(&self) -> Result<Counts, InventoryError> {
        let mut counts = Counts::default();
        for s in self.query(&Filter {
            active_only: true,
            ..Filter::default()
        })? {
            *counts.by_category.entry(s.category.as_str().to_string()).or_default() += 1;
            let grade = s.record.grade.as_ref().map_or("none", |g| g.letter.as_str());
            *counts.by_grade.entry(grade.to_string()).or_default() += 1;
        }
        Ok(counts)
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
