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

use crate::record::{Category, EndpointRecord};

/// Current schema version; `migrate` brings older stores up to it.
pub const SCHEMA: i64 = 1;

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
}

/// The identity of an endpoint: (address, port, SNI).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub address: String,
    pub port: u16,
    pub sni: String,
}

impl Key {
    pub fn of(r: &EndpointRecord) -> Key {
        Key {
            address: r.address.to_string(),
            port: r.port,
            sni: r.hostname.clone().unwrap_or_default(),
        }
    }
}

/// One stored endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub key: Key,
    pub profile: String,
    pub category: Category,
    pub first_seen: String,
    pub last_seen: String,
    /// Consecutive runs of its profile that did not see it.
    pub missed_runs: u32,
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

    fn migrate(&mut self) -> Result<(), InventoryError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.db())?;
        if version > SCHEMA {
            return Err(InventoryError::TooNew {
                path: self.path.clone(),
                found: version,
            });
        }
        if version < 1 {
            let tx = self.conn.transaction().map_err(|source| InventoryError::Db {
                path: self.path.clone(),
                source,
            })?;
            tx.execute_batch(
                "CREATE TABLE endpoints (
                    address TEXT NOT NULL, port INTEGER NOT NULL, sni TEXT NOT NULL,
                    profile TEXT NOT NULL, category TEXT NOT NULL,
                    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
                    missed_runs INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]',
                    record TEXT NOT NULL,
                    PRIMARY KEY (address, port, sni));
                 CREATE INDEX endpoints_category ON endpoints(category);
                 CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, profile TEXT NOT NULL,
                    started_at TEXT NOT NULL, finished_at TEXT);
                 PRAGMA user_version = 1;",
            )
            .map_err(|source| InventoryError::Db {
                path: self.path.clone(),
                source,
            })?;
            tx.commit().map_err(|source| InventoryError::Db {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
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
            let before: Option<String> = tx
                .query_row(
                    "SELECT record FROM endpoints WHERE address = ?1 AND port = ?2 AND sni = ?3",
                    params![key.address, key.port, key.sni],
                    |row| row.get(0),
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
                Some(old) => {
                    let reasons = match serde_json::from_str::<EndpointRecord>(&old) {
                        Ok(old) => diff(&old, r, &r.scanned_at, expiry_warning_days),
                        Err(_) => vec!["stored record unreadable; replaced".into()],
                    };
                    tx.execute(
                        "UPDATE endpoints SET profile = ?4, category = ?5, last_seen = ?6, missed_runs = 0, tags = ?7, record = ?8
                         WHERE address = ?1 AND port = ?2 AND sni = ?3",
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
            .prepare("SELECT address, port, sni, missed_runs FROM endpoints WHERE profile = ?1")
            .map_err(&db)?;
        let missing: Vec<(Key, u32)> = stmt
            .query_map(params![profile], |row| {
                Ok((
                    Key {
                        address: row.get(0)?,
                        port: row.get(1)?,
                        sni: row.get(2)?,
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
                "UPDATE endpoints SET missed_runs = ?4 WHERE address = ?1 AND port = ?2 AND sni = ?3",
                params![key.address, key.port, key.sni, missed],
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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT address, port, sni, profile, first_seen, last_seen, missed_runs, tags, record
                 FROM endpoints WHERE (?1 IS NULL OR category = ?1) ORDER BY address, port, sni",
            )
            .map_err(self.db())?;
        let rows = stmt
            .query_map(params![category.map(Category::as_str)], |row| {
                Ok((
                    Key {
                        address: row.get(0)?,
                        port: row.get(1)?,
                        sni: row.get(2)?,
                    },
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, u32>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                ))
            })
            .map_err(self.db())?;
        let mut out = Vec::new();
        for row in rows {
            let (key, profile, first_seen, last_seen, missed_runs, tags, record) = row.map_err(self.db())?;
            let record: EndpointRecord = serde_json::from_str(&record)?;
            out.push(Stored {
                key,
                profile,
                category: record.category,
                first_seen,
                last_seen,
                missed_runs,
                tags: serde_json::from_str(&tags).unwrap_or_default(),
                record,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::CertInfo;

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
}
