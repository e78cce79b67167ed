//! Storing this sensor's own runs: each run's records against the stored
//! rows, in one transaction ([`super::diff`] decides).

use std::collections::HashSet;

use rusqlite::{OptionalExtension, params};

use super::diff::{self, Change, DiffPolicy, Run};
use super::history;
use super::sqlite::Sqlite;
use super::{Inventory, InventoryError, db_error};
use crate::model::record::Category;
use crate::store::endpoint::Key;
use crate::store::exec;

impl Inventory {
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
        let db = db_error(&self.path);
        let tx = self.conn.transaction().map_err(&db)?;
        tx.execute(
            "INSERT INTO runs(profile, started_at, finished_at) VALUES (?1, ?2, ?3)",
            params![profile, started_at, finished_at],
        )
        .map_err(&db)?;
        let run_id = tx.last_insert_rowid();
        let tags_json = serde_json::to_string(tags)?;
        let mut changes = Vec::new();
        let mut seen = HashSet::new();
        let mut store = Sqlite {
            conn: &tx,
            path: &self.path,
        };
        for r in records
            .iter()
            .filter(|r| !matches!(r.category, Category::Closed | Category::Filtered))
        {
            let key = Key::of(r);
            let before = exec::load(&mut store, &key)?;
            seen.insert(key);
            let (row, change) = diff::seen(before.as_ref(), r, profile, &tags_json, policy.expiry_warning_days)?;
            exec::save(&mut store, &row)?;
            changes.extend(change);
        }
        if !complete {
            history::record(&tx, &self.path, run_id, profile, finished_at, &changes, records)?;
            tx.commit().map_err(&db)?;
            return Ok(changes);
        }
        // Everything of this profile not seen this run is one run more missing.
        let mut stmt = tx
            .prepare(
                "SELECT address, port, sni, missed_runs, gone_at FROM endpoints WHERE profile = ?1 AND sensor = ''",
            )
            .map_err(&db)?;
        let missing: Vec<(Key, u32, Option<String>)> = stmt
            .query_map(params![profile], |row| {
                Ok((
                    Key {
                        address: row.get(0)?,
                        port: row.get(1)?,
                        sni: row.get(2)?,
                        sensor: String::new(),
                    },
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .map_err(&db)?
            .filter_map(Result::ok)
            .filter(|(k, _, _)| !seen.contains(k))
            .collect();
        drop(stmt);
        for (key, missed, gone_at) in missing {
            let (missed, gone_at, change) = diff::missed(key.clone(), missed, gone_at, policy.gone_after, finished_at);
            tx.execute(
                "UPDATE endpoints SET missed_runs = ?4, gone_at = ?5
                 WHERE address = ?1 AND port = ?2 AND sni = ?3 AND sensor = ''",
                params![key.address, key.port, key.sni, missed, gone_at],
            )
            .map_err(&db)?;
            changes.extend(change);
        }
        history::record(&tx, &self.path, run_id, profile, finished_at, &changes, records)?;
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
            .map_err(db_error(&self.path))
    }
}

/// The last run any profile started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastRun {
    pub profile: String,
    pub started_at: String,
    pub finished_at: Option<String>,
}

impl Inventory {
    /// The most recent run of any profile.
    pub fn latest_run(&self) -> Result<Option<LastRun>, InventoryError> {
        self.conn
            .query_row(
                "SELECT profile, started_at, finished_at FROM runs ORDER BY id DESC LIMIT 1",
                [],
                |row| {
                    Ok(LastRun {
                        profile: row.get(0)?,
                        started_at: row.get(1)?,
                        finished_at: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(db_error(&self.path))
    }
}

/// One recorded run and what it found, for the console's Scans page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    pub id: i64,
    pub profile: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub new: u64,
    pub changed: u64,
    pub gone: u64,
}

impl Inventory {
    /// The newest `limit` runs, newest first, with their changes counted
    /// by kind (`seen_again` counts as changed).
    pub fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, InventoryError> {
        let db = db_error(&self.path);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT r.id, r.profile, r.started_at, r.finished_at,
                    (SELECT count(*) FROM changes c WHERE c.run = r.id AND c.kind = 'new'),
                    (SELECT count(*) FROM changes c WHERE c.run = r.id AND c.kind IN ('changed', 'seen_again')),
                    (SELECT count(*) FROM changes c WHERE c.run = r.id AND c.kind = 'gone')
                 FROM runs r ORDER BY r.id DESC LIMIT ?1",
            )
            .map_err(&db)?;
        let rows = stmt
            .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok(RunSummary {
                    id: row.get(0)?,
                    profile: row.get(1)?,
                    started_at: row.get(2)?,
                    finished_at: row.get(3)?,
                    new: row.get::<_, i64>(4)?.max(0) as u64,
                    changed: row.get::<_, i64>(5)?.max(0) as u64,
                    gone: row.get::<_, i64>(6)?.max(0) as u64,
                })
            })
            .map_err(&db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&db)
    }
}
