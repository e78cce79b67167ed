//! The endpoint inventory: what the sensor has seen, since when, and what
//! changed.
//!
//! Upstream wants changes, not scans: a new endpoint, a replaced
//! certificate, a grade that dropped, an endpoint that disappeared. So each
//! run is compared with what is stored and the differences become events.
//! The comparison ([`diff`]) is pure; the store is SQLite in WAL mode with
//! `synchronous=FULL`, so a kill at any moment leaves the last committed run
//! intact. The schema is versioned and migrated forward on open.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::model::record::{Category, EndpointRecord};

/// Current schema version; `migrate` brings older stores up to it.
pub const SCHEMA: i64 = MIGRATIONS.len() as i64;

/// Each step takes the store from version `i` to `i + 1`, in one
/// transaction. Never edit a released step: add one.
const MIGRATIONS: [&str; 2] = [
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
];

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

/// The identity of an endpoint: (address, port, SNI).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub address: String,
    pub port: u16,
    pub sni: String,
    /// The sensor that reported it; empty for this sensor's own scans.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sensor: String,
}

impl Key {
    /// The key of one of this sensor's own records.
    pub fn of(r: &EndpointRecord) -> Key {
        Key {
            address: r.address.to_string(),
            port: r.port,
            sni: r.hostname.clone().unwrap_or_default(),
            sensor: String::new(),
        }
    }

    /// A stable identifier for the API: hex of the first 16 bytes of
    /// SHA-256 over the key's parts, so ids survive restarts and merges.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            self.sensor.as_str(),
            self.address.as_str(),
            &self.port.to_string(),
            self.sni.as_str(),
        ] {
            h.update((part.len() as u32).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One stored endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// [`Key::id`].
    pub id: String,
    pub key: Key,
    pub profile: String,
    pub category: Category,
    pub first_seen: String,
    pub last_seen: String,
    /// Consecutive runs of its profile that did not see it.
    pub missed_runs: u32,
    /// When it was reported gone (still kept, until seen again).
    pub gone_at: Option<String>,
    pub tags: Vec<String>,
    pub record: EndpointRecord,
}

/// What a run changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Change {
    New { key: Key },
    Changed { key: Key, reasons: Vec<String> },
    Gone { key: Key, missed_runs: u32 },
}

/// Why `now` differs from `before` in ways upstream cares about (empty: no change).
/// `expiry_warning_days` flags a certificate that entered the warning window.
pub fn diff(before: &EndpointRecord, now: &EndpointRecord, now_rfc3339: &str, expiry_warning_days: i64) -> Vec<String> {
    let mut reasons = Vec::new();
    if before.category != now.category {
        reasons.push(format!(
            "category {} -> {}",
            before.category.as_str(),
            now.category.as_str()
        ));
    }
    let thumb = |r: &EndpointRecord| r.certificate.as_ref().map(|c| c.thumbprint.clone());
    if thumb(before) != thumb(now) {
        reasons.push("certificate replaced".into());
    }
    let letter = |r: &EndpointRecord| r.grade.as_ref().map(|g| g.letter.to_string());
    if letter(before) != letter(now) {
        reasons.push(format!(
            "grade {} -> {}",
            letter(before).unwrap_or_else(|| "-".into()),
            letter(now).unwrap_or_else(|| "-".into())
        ));
    }
    if before.protocols != now.protocols {
        reasons.push("protocols changed".into());
    }
    let suites = |r: &EndpointRecord| -> Vec<(String, Vec<u32>)> {
        r.protocol_ciphers
            .iter()
            .map(|p| (p.protocol.clone(), p.ciphers.iter().map(|c| c.code).collect()))
            .collect()
    };
    if suites(before) != suites(now) {
        reasons.push("cipher suites changed".into());
    }
    if let Some(c) = now.certificate.as_ref() {
        let within = |at: &str| days_between(at, &c.valid_to).is_some_and(|d| d <= expiry_warning_days);
        let was_within = before.certificate.as_ref().is_some_and(|b| {
            b.thumbprint == c.thumbprint
                && days_between(&before.scanned_at, &b.valid_to).is_some_and(|d| d <= expiry_warning_days)
        });
        if within(now_rfc3339) && !was_within {
            reasons.push(format!(
                "certificate expires within {expiry_warning_days} days ({})",
                c.valid_to
            ));
        }
    }
    reasons
}

fn days_between(from: &str, to: &str) -> Option<i64> {
    let fmt = time::format_description::well_known::Rfc3339;
    let a = time::OffsetDateTime::parse(from, &fmt).ok()?;
    let b = time::OffsetDateTime::parse(to, &fmt).ok()?;
    Some((b - a).whole_days())
}

/// One finished run of a profile.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    pub profile: &'a str,
    pub started_at: &'a str,
    pub finished_at: &'a str,
    pub records: &'a [EndpointRecord],
    /// The profile's tags, attached to every endpoint it found.
    pub tags: &'a [String],
    /// The run walked all its targets. A run cut short (shutdown, window
    /// closed) updates what it saw but counts nobody as missing.
    pub complete: bool,
}

/// When a difference is worth an event.
#[derive(Clone, Copy, Debug)]
pub struct DiffPolicy {
    /// Consecutive runs without an endpoint before it is reported gone.
    pub gone_after: u32,
    /// A certificate entering this many days before expiry is a change.
    pub expiry_warning_days: i64,
}

impl Default for DiffPolicy {
    fn default() -> Self {
        DiffPolicy {
            gone_after: 3,
            expiry_warning_days: 30,
        }
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
        let db = |source| InventoryError::Db {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        // The daemon writes while `sensor inventory` reads (or, on a fresh
        // store, migrates): wait for the other's lock instead of failing.
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        let mut inv = Inventory { conn, path: shown };
        inv.migrate()?;
        Ok(inv)
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> InventoryError + '_ {
        |source| InventoryError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Brings the store to [`SCHEMA`], one step per transaction. Each step
    /// takes the write lock before it reads the version, so two processes
    /// opening a fresh store at once (the daemon and `sensor inventory`)
    /// apply every step exactly once between them.
    fn migrate(&mut self) -> Result<(), InventoryError> {
        let path = self.path.clone();
        let db = move |source| InventoryError::Db {
            path: path.clone(),
            source,
        };
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

    /// Store one finished run and return what changed. Endpoints of the run's
    /// profile not seen for `policy.gone_after` consecutive runs are reported
    /// gone once (and kept, marked, until seen again). One transaction: a run
    /// is stored whole or not at all.
    pub fn record_run(&mut self, run: &Run<'_>, policy: &DiffPolicy) -> Result<Vec<Change>, InventoryError> {
        let Run {
            profile,
            started_at,
            finished_at,
            records,
            tags,
            complete,
        } = *run;
        let DiffPolicy {
            gone_after,
            expiry_warning_days,
        } = *policy;
        let path = self.path.clone();
        let db = move |source| InventoryError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&db)?;
        tx.execute(
            "INSERT INTO runs(profile, started_at, finished_at) VALUES (?1, ?2, ?3)",
            params![profile, started_at, finished_at],
        )
        .map_err(&db)?;
        let tags_json = serde_json::to_string(tags)?;
        let mut changes = Vec::new();
        let mut seen = HashSet::new();
        for r in records
            .iter()
            .filter(|r| !matches!(r.category, Category::Closed | Category::Filtered))
        {
            let key = Key::of(r);
            seen.insert(key.clone());
            let before: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT record, gone_at FROM endpoints WHERE address = ?1 AND port = ?2 AND sni = ?3 AND sensor = ''",
                    params![key.address, key.port, key.sni],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(&db)?;
            let json = serde_json::to_string(r)?;
            match before {
                None => {
                    tx.execute(
                        "INSERT INTO endpoints(address, port, sni, profile, category, first_seen, last_seen, missed_runs, tags, record)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, ?7, ?8)",
                        params![key.address, key.port, key.sni, profile, r.category.as_str(), r.scanned_at, tags_json, json],
                    )
                    .map_err(&db)?;
                    changes.push(Change::New { key });
                }
                Some((old, gone_at)) => {
                    let mut reasons = match serde_json::from_str::<EndpointRecord>(&old) {
                        Ok(old) => diff(&old, r, &r.scanned_at, expiry_warning_days),
                        Err(_) => vec!["stored record unreadable; replaced".into()],
                    };
                    // Back after being reported gone: upstream must hear it
                    // even when nothing else changed.
                    if let Some(g) = gone_at {
                        reasons.insert(0, format!("seen again (reported gone at {g})"));
                    }
                    tx.execute(
                        "UPDATE endpoints SET profile = ?4, category = ?5, last_seen = ?6, missed_runs = 0, gone_at = NULL,
                         tags = ?7, record = ?8 WHERE address = ?1 AND port = ?2 AND sni = ?3 AND sensor = ''",
                        params![key.address, key.port, key.sni, profile, r.category.as_str(), r.scanned_at, tags_json, json],
                    )
                    .map_err(&db)?;
                    if !reasons.is_empty() {
                        changes.push(Change::Changed { key, reasons });
                    }
                }
            }
        }
        if !complete {
            tx.commit().map_err(&db)?;
            return Ok(changes);
        }
        // Everything of this profile not seen this run is one run more missing.
        let mut stmt = tx
            .prepare("SELECT address, port, sni, missed_runs FROM endpoints WHERE profile = ?1 AND sensor = ''")
            .map_err(&db)?;
        let missing: Vec<(Key, u32)> = stmt
            .query_map(params![profile], |row| {
                Ok((
                    Key {
                        address: row.get(0)?,
                        port: row.get(1)?,
                        sni: row.get(2)?,
                        sensor: String::new(),
                    },
                    row.get::<_, u32>(3)?,
                ))
            })
            .map_err(&db)?
            .filter_map(Result::ok)
            .filter(|(k, _)| !seen.contains(k))
            .collect();
        drop(stmt);
        for (key, missed) in missing {
            let missed = missed.saturating_add(1);
            tx.execute(
                "UPDATE endpoints SET missed_runs = ?4,
                    gone_at = CASE WHEN ?4 >= ?5 THEN coalesce(gone_at, ?6) END
                 WHERE address = ?1 AND port = ?2 AND sni = ?3 AND sensor = ''",
                params![key.address, key.port, key.sni, missed, gone_after, finished_at],
            )
            .map_err(&db)?;
            if missed == gone_after {
                changes.push(Change::Gone {
                    key,
                    missed_runs: missed,
                });
            }
        }
        tx.commit().map_err(&db)?;
        Ok(changes)
    }

    /// When the last recorded run of `profile` started (RFC 3339).
    pub fn last_run(&self, profile: &str) -> Result<Option<String>, InventoryError> {
        self.conn
            .query_row(
                "SELECT started_at FROM runs WHERE profile = ?1 ORDER BY id DESC LIMIT 1",
                params![profile],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.db())
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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.address, e.port, e.sni, e.sensor, e.profile, e.first_seen, e.last_seen, e.missed_runs,
                        e.gone_at, e.tags, e.record, a.address IS NOT NULL
                 FROM endpoints e LEFT JOIN agents a ON a.address = e.address AND e.sensor = ''
                 WHERE (?1 IS NULL OR e.sensor = ?1)
                 ORDER BY e.sensor, e.address, e.port, e.sni",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map(params![filter.sensor], |row| {
                Ok((
                    Key {
                        address: row.get(0)?,
                        port: row.get(1)?,
                        sni: row.get(2)?,
                        sensor: row.get(3)?,
                    },
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, u32>(7)?,
                    row.get::<_, Option<String>>(8)?,
                    row.get::<_, String>(9)?,
                    row.get::<_, String>(10)?,
                    row.get::<_, bool>(11)?,
                ))
            })
            .map_err(self.db())?;
        let mut out = Vec::new();
        for row in rows {
            let (key, profile, first_seen, last_seen, missed_runs, gone_at, tags, record, agent) =
                row.map_err(self.db())?;
            let record: EndpointRecord = serde_json::from_str(&record)?;
            let category = if agent && record.category == Category::Discovered {
                Category::Automatable
            } else {
                record.category
            };
            let stored = Stored {
                id: key.id(),
                key,
                profile,
                category,
                first_seen,
                last_seen,
                missed_runs,
                gone_at,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                record,
            };
            if filter.matches(&stored) {
                out.push(stored);
            }
        }
        Ok(out)
    }

    /// One endpoint by [`Key::id`].
    pub fn get(&self, id: &str) -> Result<Option<Stored>, InventoryError> {
        Ok(self.query(&Filter::default())?.into_iter().find(|s| s.id == id))
    }

    /// Notes that a certificate agent on `address` used the proxy at `at`:
    /// its host's TLS endpoints become `automatable`.
    pub fn mark_agent(&mut self, address: &str, at: &str) -> Result<(), InventoryError> {
        self.conn
            .execute(
                "INSERT INTO agents(address, first_seen, last_seen, tunnels) VALUES (?1, ?2, ?2, 1)
                 ON CONFLICT(address) DO UPDATE SET last_seen = ?2, tunnels = tunnels + 1",
                params![address, at],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// Applies one report batch from another sensor, at most once: a
    /// `batch_id` seen before is acknowledged and not applied again. One
    /// transaction: a batch is applied whole or not at all.
    pub fn apply_report(
        &mut self,
        sensor: &str,
        batch_id: &str,
        received_at: &str,
        events: &[(EventKind, EndpointRecord)],
    ) -> Result<Applied, InventoryError> {
        let path = self.path.clone();
        let db = move |source| InventoryError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(&db)?;
        let seen: Option<String> = tx
            .query_row(
                "SELECT sensor FROM batches WHERE batch_id = ?1",
                params![batch_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(&db)?;
        if seen.is_some() {
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
            match kind {
                EventKind::Gone => {
                    // Known: marked gone once. Unknown (its `new` was never
                    // received, e.g. it reached us only through a snapshot):
                    // stored as last seen, gone.
                    let json = serde_json::to_string(r)?;
                    tx.execute(
                        "INSERT INTO endpoints(address, port, sni, sensor, profile, category, first_seen, last_seen,
                            missed_runs, gone_at, tags, record)
                         VALUES (?1, ?2, ?3, ?4, '', ?6, ?7, ?7, 0, ?5, ?8, ?9)
                         ON CONFLICT(address, port, sni, sensor) DO UPDATE SET gone_at = coalesce(gone_at, ?5)",
                        params![
                            key.address,
                            key.port,
                            key.sni,
                            key.sensor,
                            received_at,
                            r.category.as_str(),
                            r.scanned_at,
                            tags,
                            json
                        ],
                    )
                    .map_err(&db)?;
                }
                EventKind::New | EventKind::Changed | EventKind::Snapshot => {
                    let json = serde_json::to_string(r)?;
                    tx.execute(
                        "INSERT INTO endpoints(address, port, sni, sensor, profile, category, first_seen, last_seen,
                            missed_runs, gone_at, tags, record)
                         VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, ?6, 0, NULL, ?7, ?8)
                         ON CONFLICT(address, port, sni, sensor) DO UPDATE SET category = ?5,
                            last_seen = max(last_seen, ?6), missed_runs = 0, gone_at = NULL, record = ?8",
                        params![
                            key.address,
                            key.port,
                            key.sni,
                            key.sensor,
                            r.category.as_str(),
                            r.scanned_at,
                            tags,
                            json
                        ],
                    )
                    .map_err(&db)?;
                }
            }
        }
        tx.execute(
            "INSERT INTO batches(batch_id, sensor, applied_at, events) VALUES (?1, ?2, ?3, ?4)",
            params![batch_id, sensor, received_at, events.len() as i64],
        )
        .map_err(&db)?;
        tx.commit().map_err(&db)?;
        Ok(Applied {
            applied: true,
            events: events.len(),
        })
    }

    /// Endpoints by category and by grade letter (`none` when ungraded),
    /// counted in SQL for the metrics scrape; gone endpoints are left out.
    pub fn counts(&self) -> Result<Counts, InventoryError> {
        let mut counts = Counts::default();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT CASE WHEN a.address IS NOT NULL AND e.category = 'discovered' THEN 'automatable'
                        ELSE e.category END,
                        coalesce(json_extract(e.record, '$.grade.letter'), 'none'), count(*)
                 FROM endpoints e LEFT JOIN agents a ON a.address = e.address AND e.sensor = ''
                 WHERE e.gone_at IS NULL GROUP BY 1, 2",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .map_err(self.db())?;
        for row in rows {
            let (category, grade, n) = row.map_err(self.db())?;
            let n = n.max(0) as u64;
            *counts.by_category.entry(category).or_default() += n;
            *counts.by_grade.entry(grade).or_default() += n;
        }
        Ok(counts)
    }

    /// Batches applied so far, for tests and metrics.
    pub fn batches_applied(&self) -> Result<u64, InventoryError> {
        self.conn
            .query_row("SELECT count(*) FROM batches", [], |row| row.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(self.db())
    }

    /// The saved resume state of `profile` (see the daemon's checkpoints).
    pub fn scan_state(&self, profile: &str) -> Result<Option<String>, InventoryError> {
        self.conn
            .query_row(
                "SELECT state FROM scan_state WHERE profile = ?1",
                params![profile],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.db())
    }

    /// Whether `profile` has a saved resume state (without reading it).
    pub fn has_scan_state(&self, profile: &str) -> Result<bool, InventoryError> {
        self.conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM scan_state WHERE profile = ?1)",
                params![profile],
                |row| row.get(0),
            )
            .map_err(self.db())
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
        .map_err(self.db())?;
        Ok(())
    }
}

/// Active endpoints counted by category and by grade letter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub by_category: std::collections::BTreeMap<String, u64>,
    pub by_grade: std::collections::BTreeMap<String, u64>,
}

/// What a report event says of an endpoint (the wire format's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    New,
    Changed,
    Gone,
    /// Part of a full snapshot of the reporting sensor's inventory.
    Snapshot,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::New => "new",
            EventKind::Changed => "changed",
            EventKind::Gone => "gone",
            EventKind::Snapshot => "snapshot",
        }
    }
}

/// The outcome of [`Inventory::apply_report`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// False when the batch had been applied before (nothing changed now).
    pub applied: bool,
    pub events: usize,
}

/// Which stored endpoints [`Inventory::query`] returns.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub category: Option<Category>,
    /// Only endpoints graded strictly worse than this (ungraded never match).
    pub grade_below: Option<crate::grade::Letter>,
    /// Only endpoints carrying this tag.
    pub tag: Option<String>,
    /// Only endpoints reported by this sensor (`""`: this sensor's own).
    pub sensor: Option<String>,
    /// Leave out endpoints reported gone.
    pub active_only: bool,
}

impl Filter {
    pub fn matches(&self, s: &Stored) -> bool {
        if self.category.is_some_and(|c| c != s.category) {
            return false;
        }
        if let Some(bar) = self.grade_below {
            match &s.record.grade {
                Some(g) if g.letter.is_below(bar) => {}
                _ => return false,
            }
        }
        if self.tag.as_ref().is_some_and(|t| !s.tags.contains(t)) {
            return false;
        }
        !(self.active_only && s.gone_at.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cert::CertInfo;

    fn rec(addr: &str, port: u16, thumb: &str, at: &str) -> EndpointRecord {
        let mut r = EndpointRecord::new(addr.parse().unwrap(), port, None, Category::Discovered, at.into());
        r.certificate = Some(CertInfo {
            thumbprint: thumb.into(),
            valid_to: "2027-06-01T00:00:00Z".into(),
            ..CertInfo::default()
        });
        r
    }

    #[test]
    fn diff_names_what_changed() {
        let a = rec("127.0.0.1", 443, "AA", "2026-11-24T00:00:00Z");
        assert!(diff(&a, &a, "2026-11-24T00:00:00Z", 30).is_empty());
        let mut b = rec("127.0.0.1", 443, "BB", "2026-11-25T00:00:00Z");
        b.category = Category::Unsecured;
        let reasons = diff(&a, &b, "2026-11-25T00:00:00Z", 30);
        assert_eq!(
            reasons,
            vec!["category discovered -> unsecured", "certificate replaced"]
        );
        // The same certificate entering the 30-day window.
        let late = rec("127.0.0.1", 443, "AA", "2027-05-10T00:00:00Z");
        let reasons = diff(&a, &late, "2027-05-10T00:00:00Z", 30);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].starts_with("certificate expires within 30 days"));
        // Already inside the window last time: not reported again.
        let later = rec("127.0.0.1", 443, "AA", "2027-05-11T00:00:00Z");
        assert!(diff(&late, &later, "2027-05-11T00:00:00Z", 30).is_empty());
    }

    const POLICY: DiffPolicy = DiffPolicy {
        gone_after: 2,
        expiry_warning_days: 30,
    };

    fn run<'a>(at: &'a str, records: &'a [EndpointRecord]) -> Run<'a> {
        Run {
            profile: "lab",
            started_at: at,
            finished_at: at,
            records,
            tags: &[],
            complete: true,
        }
    }

    #[test]
    fn runs_become_new_changed_and_gone_events_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.sqlite");
        let t = |d: u32| format!("2026-11-{d:02}T00:00:00Z");
        let mut inv = Inventory::open(&path).unwrap();
        let run1 = vec![rec("127.0.0.1", 443, "AA", &t(1)), rec("127.0.0.2", 443, "CC", &t(1))];
        let c = inv.record_run(&run(&t(1), &run1), &POLICY).unwrap();
        assert_eq!(c.iter().filter(|c| matches!(c, Change::New { .. })).count(), 2);
        // Run 2: .1 got a new certificate, .2 is missing once.
        let c = inv
            .record_run(&run(&t(2), &[rec("127.0.0.1", 443, "BB", &t(2))]), &POLICY)
            .unwrap();
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(
            matches!(&c[0], Change::Changed { reasons, .. } if reasons == &vec!["certificate replaced".to_string()])
        );
        drop(inv);
        // Reopen: nothing lost; run 3: .2 missing twice -> gone, reported once.
        let mut inv = Inventory::open(&path).unwrap();
        let c = inv
            .record_run(&run(&t(3), &[rec("127.0.0.1", 443, "BB", &t(3))]), &POLICY)
            .unwrap();
        assert_eq!(
            c,
            vec![Change::Gone {
                key: Key::of(&run1[1]),
                missed_runs: 2
            }]
        );
        let c = inv
            .record_run(&run(&t(4), &[rec("127.0.0.1", 443, "BB", &t(4))]), &POLICY)
            .unwrap();
        assert!(c.is_empty(), "gone is reported once: {c:?}");
        let all = inv.list(None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].first_seen, t(1));
        assert_eq!(all[0].last_seen, t(4));
        assert_eq!(inv.list(Some(Category::Unsecured)).unwrap().len(), 0);
    }

    #[test]
    fn an_endpoint_back_after_gone_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let t = |d: u32| format!("2026-11-0{d}T00:00:00Z");
        let one = |d: u32| vec![rec("127.0.0.1", 443, "AA", &t(d))];
        assert_eq!(inv.record_run(&run(&t(1), &one(1)), &POLICY).unwrap().len(), 1);
        inv.record_run(&run(&t(2), &[]), &POLICY).unwrap();
        let c = inv.record_run(&run(&t(3), &[]), &POLICY).unwrap();
        assert!(matches!(c.as_slice(), [Change::Gone { .. }]), "{c:?}");
        // The same record again: not silent, or upstream would keep it gone.
        let c = inv.record_run(&run(&t(4), &one(4)), &POLICY).unwrap();
        assert!(
            matches!(c.as_slice(), [Change::Changed { reasons, .. }] if reasons[0].starts_with("seen again")),
            "{c:?}"
        );
        assert!(inv.record_run(&run(&t(5), &one(5)), &POLICY).unwrap().is_empty());
    }

    #[test]
    fn an_incomplete_run_counts_nobody_missing() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let t = "2026-11-01T00:00:00Z";
        inv.record_run(
            &run(t, &[rec("127.0.0.1", 443, "AA", t), rec("127.0.0.2", 443, "BB", t)]),
            &POLICY,
        )
        .unwrap();
        let cut = Run {
            complete: false,
            ..run(t, &[])
        };
        for _ in 0..3 {
            assert!(inv.record_run(&cut, &POLICY).unwrap().is_empty());
        }
        assert!(inv.list(None).unwrap().iter().all(|s| s.missed_runs == 0));
        assert_eq!(inv.last_run("lab").unwrap().as_deref(), Some(t));
    }

    #[test]
    fn a_newer_schema_is_refused_not_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.sqlite");
        drop(Inventory::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Inventory::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema 99") && err.contains("upgrade the sensor"), "{err}");
    }

    #[test]
    fn a_version_1_store_migrates_with_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.sqlite");
        let old = rec("127.0.0.1", 443, "AA", "2026-10-01T00:00:00Z");
        {
            // A store exactly as a version-1 sensor left it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            let json = serde_json::to_string(&old).unwrap();
            conn.execute(
                "INSERT INTO endpoints VALUES ('127.0.0.1', 443, '', 'lab', 'discovered', ?1, ?1, 0, '[\"dc1\"]', ?2)",
                params!["2026-10-01T00:00:00Z", json],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO endpoints VALUES ('127.0.0.9', 22, '', 'lab', 'unsecured', ?1, ?1, 4, '[]', ?2)",
                params!["2026-10-01T00:00:00Z", json.replace("127.0.0.1", "127.0.0.9")],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO runs(profile, started_at, finished_at) VALUES ('lab', '2026-10-01T00:00:00Z', NULL)",
                [],
            )
            .unwrap();
        }
        let mut inv = Inventory::open(&path).unwrap();
        let version: i64 = inv.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA);
        let all = inv.list(None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].key, Key::of(&old));
        assert_eq!(all[0].tags, vec!["dc1".to_string()]);
        assert_eq!(all[0].gone_at, None);
        assert_eq!(
            all[1].gone_at.as_deref(),
            Some("2026-10-01T00:00:00Z"),
            "missing 4 runs: gone"
        );
        assert_eq!(inv.last_run("lab").unwrap().as_deref(), Some("2026-10-01T00:00:00Z"));
        // The migrated store keeps working: the same endpoint is not new.
        let c = inv
            .record_run(
                &run(
                    "2026-10-02T00:00:00Z",
                    &[rec("127.0.0.1", 443, "AA", "2026-10-02T00:00:00Z")],
                ),
                &POLICY,
            )
            .unwrap();
        assert!(c.is_empty(), "{c:?}");
        // Opening again is a no-op.
        drop(inv);
        assert_eq!(Inventory::open(&path).unwrap().list(None).unwrap().len(), 2);
    }

    #[test]
    fn agents_make_their_hosts_automatable() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let t = "2026-11-01T00:00:00Z";
        let mut plain = rec("127.0.0.2", 80, "", t);
        plain.category = Category::Unsecured;
        inv.record_run(&run(t, &[rec("127.0.0.1", 443, "AA", t), plain]), &POLICY)
            .unwrap();
        inv.mark_agent("127.0.0.1", t).unwrap();
        inv.mark_agent("127.0.0.2", t).unwrap();
        let auto = inv.list(Some(Category::Automatable)).unwrap();
        assert_eq!(auto.len(), 1);
        assert_eq!(auto[0].key.address, "127.0.0.1");
        // A plaintext port stays unsecured: there is no certificate to automate.
        assert_eq!(inv.list(Some(Category::Unsecured)).unwrap().len(), 1);
        assert!(inv.list(Some(Category::Discovered)).unwrap().is_empty());
    }

    #[test]
    fn a_report_batch_applies_once_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let t = "2026-11-01T00:00:00Z";
        let local = rec("10.0.0.1", 443, "LOCAL", t);
        inv.record_run(&run(t, std::slice::from_ref(&local)), &POLICY).unwrap();
        // The same address in another segment is another endpoint.
        let events = vec![
            (EventKind::New, rec("10.0.0.1", 443, "REMOTE", t)),
            (EventKind::Snapshot, rec("10.0.0.2", 443, "R2", t)),
        ];
        let a = inv.apply_report("seg-a", "b-1", t, &events).unwrap();
        assert_eq!(
            a,
            Applied {
                applied: true,
                events: 2
            }
        );
        let again = inv.apply_report("seg-a", "b-1", t, &events).unwrap();
        assert!(!again.applied);
        assert_eq!(inv.batches_applied().unwrap(), 1);
        let all = inv.list(None).unwrap();
        assert_eq!(all.len(), 3);
        let remote: Vec<_> = all.iter().filter(|s| s.key.sensor == "seg-a").collect();
        assert_eq!(remote.len(), 2);
        assert!(remote.iter().all(|s| s.tags == vec!["sensor:seg-a".to_string()]));
        let ids: HashSet<_> = all.iter().map(|s| s.id.clone()).collect();
        assert_eq!(ids.len(), 3, "ids are distinct across sensors");
        assert_eq!(inv.get(&remote[0].id).unwrap().unwrap().key, remote[0].key);
        inv.apply_report(
            "seg-a",
            "b-2",
            "2026-11-02T00:00:00Z",
            &[(EventKind::Gone, rec("10.0.0.2", 443, "R2", t))],
        )
        .unwrap();
        let active = inv
            .query(&Filter {
                active_only: true,
                sensor: Some("seg-a".into()),
                ..Filter::default()
            })
            .unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].key.address, "10.0.0.1");
    }

    #[test]
    fn filters_by_grade_and_tag() {
        use crate::grade::{Grade, Letter};
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("i.sqlite")).unwrap();
        let t = "2026-11-01T00:00:00Z";
        let graded = |addr: &str, letter: Letter| {
            let mut r = rec(addr, 443, addr, t);
            r.grade = Some(Grade {
                letter,
                score: 0,
                protocol_score: 0,
                key_exchange_score: 0,
                cipher_score: 0,
                caps: Vec::new(),
                warnings: Vec::new(),
                if_trusted: None,
                notes: Vec::new(),
            });
            r
        };
        let records = [
            graded("127.0.0.1", Letter::A),
            graded("127.0.0.2", Letter::C),
            graded("127.0.0.3", Letter::T),
            rec("127.0.0.4", 443, "x", t),
        ];
        let tags = vec!["dmz".to_string()];
        inv.record_run(
            &Run {
                tags: &tags,
                ..run(t, &records)
            },
            &POLICY,
        )
        .unwrap();
        let below = |l| {
            inv.query(&Filter {
                grade_below: Some(l),
                ..Filter::default()
            })
            .unwrap()
            .into_iter()
            .map(|s| s.key.address)
            .collect::<Vec<_>>()
        };
        assert_eq!(below(Letter::B), vec!["127.0.0.2", "127.0.0.3"]);
        assert_eq!(below(Letter::APlus).len(), 3, "ungraded never matches");
        let tagged = |t: &str| {
            inv.query(&Filter {
                tag: Some(t.into()),
                ..Filter::default()
            })
            .unwrap()
            .len()
        };
        assert_eq!(tagged("dmz"), 4);
        let counts = inv.counts().unwrap();
        assert_eq!(counts.by_category.get("discovered"), Some(&4));
        assert_eq!(
            counts
                .by_grade
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            vec![("A", 1), ("C", 1), ("T", 1), ("none", 1)]
        );
        assert_eq!(tagged("lab"), 0);
    }

    #[test]
    fn two_openers_of_a_fresh_store_migrate_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.sqlite");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Inventory::open(&path).map(|_| ()))
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let inv = Inventory::open(&path).unwrap();
        let version: i64 = inv.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA);
    }
}
