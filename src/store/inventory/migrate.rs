//! The inventory's schema, versioned and migrated forward on open.

use super::{Inventory, InventoryError, db_error};

/// Current schema version; `migrate` brings older stores up to it.
pub const SCHEMA: i64 = MIGRATIONS.len() as i64;

/// Each step takes the store from version `i` to `i + 1`, in one
/// transaction. Never edit a released step: add one.
pub(super) const MIGRATIONS: [&str; 6] = [
    // 1: endpoints keyed by (address, port, SNI), and the run log.
    "CREATE TABLE endpoints (
        address TEXT NOT NULL, port INTEGER NOT NULL, sni TEXT NOT NULL,
        profile TEXT NOT NULL, category TEXT NOT NULL,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
        missed_runs INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]',
        record TEXT NOT NULL,
        PRIMARY KEY (address, port, sni));
     CREATE INDEX endpoints_category ON endpoints(category);
     CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, profile TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT);",
    // 2: the reporting sensor joins the key (a central sensor merges
    // segments whose private addresses may overlap); `gone_at` marks an
    // endpoint reported gone (set for rows already missing three runs, the
    // old default); agents seen through the proxy; applied report batches;
    // per-profile resume state.
    "CREATE TABLE endpoints2 (
        address TEXT NOT NULL, port INTEGER NOT NULL, sni TEXT NOT NULL,
        sensor TEXT NOT NULL DEFAULT '',
        profile TEXT NOT NULL, category TEXT NOT NULL,
        first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
        missed_runs INTEGER NOT NULL DEFAULT 0, gone_at TEXT,
        tags TEXT NOT NULL DEFAULT '[]', record TEXT NOT NULL,
        PRIMARY KEY (address, port, sni, sensor));
     INSERT INTO endpoints2(address, port, sni, sensor, profile, category, first_seen, last_seen,
        missed_runs, gone_at, tags, record)
        SELECT address, port, sni, '', profile, category, first_seen, last_seen, missed_runs,
            CASE WHEN missed_runs >= 3 THEN last_seen END, tags, record FROM endpoints;
     DROP TABLE endpoints;
     ALTER TABLE endpoints2 RENAME TO endpoints;
     CREATE INDEX endpoints_category ON endpoints(category);
     CREATE INDEX endpoints_profile ON endpoints(sensor, profile);
     CREATE TABLE agents (address TEXT PRIMARY KEY, first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL, tunnels INTEGER NOT NULL DEFAULT 0);
     CREATE TABLE batches (batch_id TEXT PRIMARY KEY, sensor TEXT NOT NULL,
        applied_at TEXT NOT NULL, events INTEGER NOT NULL);
     CREATE TABLE scan_state (profile TEXT PRIMARY KEY, state TEXT NOT NULL);",
    // 3: every change a run found (new, changed, gone, seen again), with
    // what the endpoint looked like then, for `sensor inventory history`;
    // before this only the log had them.
    "CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER, profile TEXT NOT NULL, at TEXT NOT NULL,
        address TEXT NOT NULL, port INTEGER NOT NULL, sni TEXT NOT NULL, sensor TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL, reasons TEXT NOT NULL DEFAULT '[]', state TEXT);
     CREATE INDEX changes_endpoint ON changes(address, port, sni, sensor);",
    // 4: alert notices (one row per idempotency key, kept after delivery:
    // the memory of what was told), their delivery per channel (waiting,
    // sent, parked; the digest they went out in), and what the alerts saw
    // of each endpoint at the last pass. Read and written by `crate::alert::queue`.
    "CREATE TABLE alert_notices (key TEXT PRIMARY KEY, id TEXT NOT NULL, rule TEXT NOT NULL,
        subject TEXT NOT NULL, threshold TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL);
     CREATE INDEX alert_notices_subject ON alert_notices(rule, subject);
     CREATE TABLE alert_deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
        channel TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'waiting', attempts INTEGER NOT NULL DEFAULT 0,
        batch TEXT, last_error TEXT, answer TEXT, sent_at TEXT, UNIQUE (key, channel));
     CREATE INDEX alert_deliveries_waiting ON alert_deliveries(channel, state, seq);
     CREATE TABLE alert_seen (endpoint TEXT PRIMARY KEY, grade TEXT, trusted INTEGER,
        gone INTEGER NOT NULL DEFAULT 0);",
    // 5: the fleet of a central sensor (`crate::store::fleet`).
    crate::store::sql::FLEET_TABLES,
    // 6: the content digest of each applied report batch, so that a
    // replayed batch_id with other content is refused (409) instead of
    // acknowledged; NULL for batches applied before.
    "ALTER TABLE batches ADD COLUMN digest TEXT;",
];

impl Inventory {
    /// Brings the store to [`SCHEMA`], one step per transaction. Each step
    /// takes the write lock before it reads the version, so two processes
    /// opening a fresh store at once (the daemon and `sensor inventory`)
    /// apply every step exactly once between them.
    pub(super) fn migrate(&mut self) -> Result<(), InventoryError> {
        let db = db_error(&self.path);
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(&db)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(&db)?;
            if version > SCHEMA {
                return Err(InventoryError::TooNew {
                    path: self.path.clone(),
                    found: version,
                });
            }
            let Some(step) = MIGRATIONS.get(version.max(0) as usize) else {
                tx.commit().map_err(&db)?;
                return Ok(());
            };
            tx.execute_batch(step).map_err(&db)?;
            tx.pragma_update(None, "user_version", version.max(0) + 1)
                .map_err(&db)?;
            tx.commit().map_err(&db)?;
        }
    }
}
