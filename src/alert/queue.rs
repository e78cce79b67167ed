//! The durable queue of notices: on disk before anything is attempted,
//! deduplicated by idempotency key, kept after delivery as the memory of
//! what was told.
//!
//! Why tables in the inventory database rather than the reporting outbox:
//! "told once, ever, per (rule, subject, threshold)" needs a set of keys
//! that outlives delivery and is consulted before every insert, atomically
//! with it, together with what the alerts saw of each endpoint for the
//! change rules. The outbox is a FIFO of files deleted on acknowledgement,
//! with one batch in flight for one destination; here there are several
//! channels with their own pace, and a notice must be looked up by key
//! forever. SQLite gives the three in one transaction (`INSERT OR IGNORE`
//! on the key, the deliveries, the memory) with the inventory's durability
//! (WAL, `synchronous=FULL`), in the file the operator already backs up;
//! the schema is the inventory's migration 3. The queue opens a connection
//! of its own, so delivery never waits on the inventory's lock while a
//! run is being stored (SQLite's busy timeout arbitrates the writes).
//!
//! A delivery is `waiting` until the channel acknowledged it (`sent`, with
//! the answer) or refused it for good (`parked`, with the reason). A
//! digest's notices are written down under the digest's id before it is
//! sent, so a re-send after a crash carries the same id and notices.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::alert::notice::{Notice, digest_id};
use crate::alert::rules::{Notified, Pass, Seen};
use crate::store::inventory::{Inventory, InventoryError};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("alert queue {path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("alert notice does not (de)serialise: {0}")]
    Json(#[from] serde_json::Error),
}

/// What goes out in one attempt: one notice, or a digest of several.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    seqs: Vec<i64>,
    pub notices: Vec<Notice>,
    /// The digest's id (a digest channel), or `None` (one notice).
    pub digest: Option<String>,
    /// Notices of the channel still waiting besides these.
    pub more: u64,
}

/// One channel's deliveries by state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCounts {
    pub sent: u64,
    /// Refused for good and parked (not retried).
    pub failed: u64,
    pub waiting: u64,
    /// Of the waiting, those that failed at least once (being retried).
    pub retrying: u64,
    /// The latest failure of a notice not sent yet.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

/// A notice a channel refused for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    pub channel: String,
    pub notice: String,
    pub title: String,
    pub reason: String,
}

/// For `sensor status`, `sensor alerts status` and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    pub sent: u64,
    pub failed: u64,
    pub waiting: u64,
    pub channels: BTreeMap<String, ChannelCounts>,
    /// The most recent parked notices (at most 20).
    pub parked: Vec<Parked>,
}

pub struct Queue {
    conn: Connection,
    path: String,
}

impl Queue {
    /// Opens the queue in the inventory database at `path` (migrating it
    /// to the schema with the alert tables first).
    pub fn open(path: &Path) -> Result<Queue, QueueError> {
        drop(Inventory::open(path)?);
        let shown = path.display().to_string();
        let db = |source| QueueError::Db {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        Ok(Queue { conn, path: shown })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> QueueError + use<> {
        let path = self.path.clone();
        move |source| QueueError::Db {
            path: path.clone(),
            source,
        }
    }

    /// Every (rule, subject) → thresholds already notified.
    pub fn notified(&self) -> Result<Notified, QueueError> {
        let db = self.db();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT rule, subject, threshold FROM alert_notices")
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(&db)?;
        let mut out = Notified::new();
        for row in rows {
            let (rule, subject, threshold) = row.map_err(&db)?;
            out.entry((rule, subject)).or_default().insert(threshold);
        }
        Ok(out)
    }

    /// What the previous pass saw of each endpoint.
    pub fn memory(&self) -> Result<BTreeMap<String, Seen>, QueueError> {
        let db = self.db();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT endpoint, grade, trusted, gone FROM alert_seen")
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Seen {
                        grade: r.get(1)?,
                        trusted: r.get::<_, Option<bool>>(2)?,
                        gone: r.get(3)?,
                    },
                ))
            })
            .map_err(&db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    /// Stores a pass in one transaction: its notices (a key already there is
    /// left alone), a waiting delivery per channel of each new one, and the
    /// memory (`before` is what [`Queue::memory`] returned). Returns the
    /// notices that were new.
    pub fn commit(&mut self, pass: &Pass, before: &BTreeMap<String, Seen>) -> Result<Vec<Notice>, QueueError> {
        let db = self.db();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&db)?;
        let mut new = Vec::new();
        for p in &pass.planned {
            let n = &p.notice;
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO alert_notices(key, id, rule, subject, threshold, created_at, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        n.key(),
                        n.id,
                        n.rule,
                        n.subject,
                        n.threshold,
                        n.created_at,
                        serde_json::to_string(n)?
                    ],
                )
                .map_err(&db)?;
            if inserted == 0 {
                continue;
            }
            for c in &p.channels {
                tx.execute(
                    "INSERT OR IGNORE INTO alert_deliveries(key, channel) VALUES (?1, ?2)",
                    params![n.key(), c],
                )
                .map_err(&db)?;
            }
            new.push(n.clone());
        }
        for (id, seen) in &pass.memory {
            if before.get(id) != Some(seen) {
                tx.execute(
                    "INSERT OR REPLACE INTO alert_seen(endpoint, grade, trusted, gone) VALUES (?1, ?2, ?3, ?4)",
                    params![id, seen.grade, seen.trusted, seen.gone],
                )
                .map_err(&db)?;
            }
        }
        for id in before.keys().filter(|k| !pass.memory.contains_key(*k)) {
            tx.execute("DELETE FROM alert_seen WHERE endpoint = ?1", params![id])
                .map_err(&db)?;
        }
        tx.commit().map_err(&db)?;
        Ok(new)
    }

    /// The next thing to send through `channel`: the oldest waiting notice,
    /// or with `digest_max`, a digest: the one already formed and not yet
    /// acknowledged, else up to `digest_max` of the oldest waiting notices,
    /// written down under their digest's id before it is returned.
    pub fn next(&mut self, channel: &str, digest_max: Option<usize>) -> Result<Option<Outgoing>, QueueError> {
        let db = self.db();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&db)?;
        let pick = |sql: &str, limit: i64| -> Result<Vec<(i64, Option<String>, Notice)>, QueueError> {
            let mut stmt = tx.prepare_cached(sql).map_err(&db)?;
            let rows = stmt
                .query_map(params![channel, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(&db)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, batch, body) = row.map_err(&db)?;
                out.push((seq, batch, serde_json::from_str(&body)?));
            }
            Ok(out)
        };
        const WAITING: &str =
            "SELECT d.seq, d.batch, n.body FROM alert_deliveries d JOIN alert_notices n ON n.key = d.key
             WHERE d.channel = ?1 AND d.state = 'waiting'";
        let count_waiting = |tx: &rusqlite::Transaction<'_>| -> Result<u64, QueueError> {
            tx.query_row(
                "SELECT count(*) FROM alert_deliveries WHERE channel = ?1 AND state = 'waiting'",
                params![channel],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(&db)
        };
        let out = match digest_max {
            None => pick(&format!("{WAITING} ORDER BY d.seq LIMIT ?2"), 1)?
                .into_iter()
                .next()
                .map(|(seq, _, n)| Outgoing {
                    seqs: vec![seq],
                    notices: vec![n],
                    digest: None,
                    more: 0,
                }),
            Some(max) => {
                let formed = pick(
                    &format!("{WAITING} AND d.batch IS NOT NULL ORDER BY d.seq LIMIT ?2"),
                    -1,
                )?;
                let (rows, id) = match formed.first().and_then(|(_, b, _)| b.clone()) {
                    Some(id) => (
                        formed
                            .into_iter()
                            .filter(|(_, b, _)| b.as_deref() == Some(&id))
                            .collect(),
                        id,
                    ),
                    None => {
                        let rows = pick(&format!("{WAITING} ORDER BY d.seq LIMIT ?2"), max as i64)?;
                        let ids: Vec<String> = rows.iter().map(|(_, _, n)| n.id.clone()).collect();
                        let id = digest_id(channel, &ids);
                        for (seq, _, _) in &rows {
                            tx.execute(
                                "UPDATE alert_deliveries SET batch = ?1 WHERE seq = ?2",
                                params![id, seq],
                            )
                            .map_err(&db)?;
                        }
                        (rows, id)
                    }
                };
                if rows.is_empty() {
                    None
                } else {
                    let more = count_waiting(&tx)?.saturating_sub(rows.len() as u64);
                    Some(Outgoing {
                        seqs: rows.iter().map(|(s, _, _)| *s).collect(),
                        notices: rows.into_iter().map(|(_, _, n)| n).collect(),
                        digest: Some(id),
                        more,
                    })
                }
            }
        };
        tx.commit().map_err(&db)?;
        Ok(out)
    }

    fn update(&mut self, out: &Outgoing, sql: &str, extra: &[&dyn rusqlite::ToSql]) -> Result<(), QueueError> {
        let db = self.db();
        let tx = self.conn.transaction().map_err(&db)?;
        for seq in &out.seqs {
            let mut p: Vec<&dyn rusqlite::ToSql> = vec![seq];
            p.extend_from_slice(extra);
            tx.execute(sql, p.as_slice()).map_err(&db)?;
        }
        tx.commit().map_err(db)
    }

    /// The channel acknowledged `out`: it is never sent again.
    pub fn sent(&mut self, out: &Outgoing, answer: &str, at: &str) -> Result<(), QueueError> {
        self.update(
            out,
            "UPDATE alert_deliveries SET state = 'sent', answer = ?2, sent_at = ?3, last_error = NULL WHERE seq = ?1",
            &[&answer, &at],
        )
    }

    /// An attempt failed and will be retried.
    pub fn failed(&mut self, out: &Outgoing, reason: &str) -> Result<(), QueueError> {
        self.update(
            out,
            "UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ?2 WHERE seq = ?1",
            &[&reason],
        )
    }

    /// The channel refused `out` for good: kept, with the reason, never retried.
    pub fn park(&mut self, out: &Outgoing, reason: &str) -> Result<(), QueueError> {
        self.update(
            out,
            "UPDATE alert_deliveries SET state = 'parked', attempts = attempts + 1, last_error = ?2 WHERE seq = ?1",
            &[&reason],
        )
    }

    /// Deliveries by channel and state, and the latest parked notices.
    pub fn status(&self) -> Result<QueueStatus, QueueError> {
        let db = self.db();
        let mut st = QueueStatus::default();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT channel, state, count(*), sum(attempts > 0) FROM alert_deliveries GROUP BY channel, state",
            )
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .map_err(&db)?;
        for row in rows {
            let (channel, state, n, retried) = row.map_err(&db)?;
            let c = st.channels.entry(channel).or_default();
            let n = n.max(0) as u64;
            match state.as_str() {
                "sent" => c.sent += n,
                "parked" => c.failed += n,
                _ => {
                    c.waiting += n;
                    c.retrying += retried.unwrap_or(0).max(0) as u64;
                }
            }
        }
        let channels: Vec<String> = st.channels.keys().cloned().collect();
        for ch in channels {
            let last: Option<String> = self
                .conn
                .query_row(
                    "SELECT last_error FROM alert_deliveries WHERE channel = ?1 AND state != 'sent'
                     AND last_error IS NOT NULL ORDER BY seq DESC LIMIT 1",
                    params![ch],
                    |r| r.get(0),
                )
                .optional()
                .map_err(&db)?;
            if let Some(c) = st.channels.get_mut(&ch) {
                c.last_error = last;
            }
        }
        st.sent = st.channels.values().map(|c| c.sent).sum();
        st.failed = st.channels.values().map(|c| c.failed).sum();
        st.waiting = st.channels.values().map(|c| c.waiting).sum();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT d.channel, n.id, n.body, d.last_error FROM alert_deliveries d JOIN alert_notices n
                 ON n.key = d.key WHERE d.state = 'parked' ORDER BY d.seq DESC LIMIT 20",
            )
            .map_err(&db)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(&db)?;
        for row in rows {
            let (channel, notice, body, reason) = row.map_err(&db)?;
            let title = serde_json::from_str::<Notice>(&body)
                .map(|n| n.title)
                .unwrap_or_default();
            st.parked.push(Parked {
                channel,
                notice,
                title,
                reason: reason.unwrap_or_default(),
            });
        }
        Ok(st)
    }

    /// Every notice key ever stored (tests, `sensor alerts status`).
    pub fn keys(&self) -> Result<BTreeSet<String>, QueueError> {
        let db = self.db();
        let mut stmt = self.conn.prepare_cached("SELECT key FROM alert_notices").map_err(&db)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(&db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::config::RuleKind;
    use crate::alert::notice::{Severity, key, notice_id};
    use crate::alert::rules::Planned;

    fn planned(subject: &str, threshold: &str, channels: &[&str]) -> Planned {
        let k = key("expiring", subject, threshold);
        Planned {
            notice: Notice {
                id: notice_id(&k),
                rule: "expiring".into(),
                kind: RuleKind::Expiring,
                subject: subject.into(),
                threshold: threshold.into(),
                severity: Severity::Warning,
                title: format!("{subject} {threshold}"),
                created_at: "2026-11-24T12:00:00Z".into(),
                certificate: None,
                endpoints: Vec::new(),
                details: Default::default(),
            },
            channels: channels.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn pass(p: Vec<Planned>) -> Pass {
        Pass {
            planned: p,
            memory: BTreeMap::new(),
        }
    }

    #[test]
    fn a_key_is_stored_once_and_delivered_once_per_channel() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("inventory.sqlite");
        let mut q = Queue::open(&path).unwrap();
        let new = q
            .commit(&pass(vec![planned("aa", "7d", &["hook", "mail"])]), &BTreeMap::new())
            .unwrap();
        assert_eq!(new.len(), 1);
        let again = q
            .commit(&pass(vec![planned("aa", "7d", &["hook", "mail"])]), &BTreeMap::new())
            .unwrap();
        assert!(again.is_empty(), "the same key is not stored twice");
        assert_eq!(q.notified().unwrap()[&("expiring".into(), "aa".into())].len(), 1);

        let out = q.next("hook", None).unwrap().unwrap();
        assert_eq!(out.notices[0].threshold, "7d");
        q.failed(&out, "HTTP 500").unwrap();
        let st = q.status().unwrap();
        assert_eq!((st.waiting, st.channels["hook"].retrying), (2, 1));
        assert_eq!(st.channels["hook"].last_error.as_deref(), Some("HTTP 500"));
        let out = q.next("hook", None).unwrap().unwrap();
        q.sent(&out, "HTTP 200", "2026-11-24T12:00:01Z").unwrap();
        assert!(q.next("hook", None).unwrap().is_none(), "acknowledged: never again");
        // Reopened (a restart): the mail delivery is still waiting, the hook's is not.
        drop(q);
        let mut q = Queue::open(&path).unwrap();
        assert!(q.next("hook", None).unwrap().is_none());
        let out = q.next("mail", None).unwrap().unwrap();
        q.park(&out, "550 5.1.1 no such user").unwrap();
        let st = q.status().unwrap();
        assert_eq!((st.sent, st.failed, st.waiting), (1, 1, 0));
        assert_eq!(st.parked[0].reason, "550 5.1.1 no such user");
        assert!(q.next("mail", None).unwrap().is_none(), "parked: not retried");
    }

    #[test]
    fn a_digest_keeps_its_id_and_notices_until_acknowledged() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("inventory.sqlite");
        let mut q = Queue::open(&path).unwrap();
        let many: Vec<Planned> = (0..5).map(|i| planned(&format!("s{i}"), "30d", &["mail"])).collect();
        q.commit(&pass(many), &BTreeMap::new()).unwrap();
        let first = q.next("mail", Some(3)).unwrap().unwrap();
        assert_eq!((first.notices.len(), first.more), (3, 2));
        // More notices arrive, the process dies: the same digest goes out again.
        q.commit(&pass(vec![planned("s9", "30d", &["mail"])]), &BTreeMap::new())
            .unwrap();
        drop(q);
        let mut q = Queue::open(&path).unwrap();
        let again = q.next("mail", Some(3)).unwrap().unwrap();
        assert_eq!(again.digest, first.digest);
        assert_eq!(again.notices, first.notices);
        q.sent(&again, "250 OK", "t").unwrap();
        let rest = q.next("mail", Some(3)).unwrap().unwrap();
        assert_eq!((rest.notices.len(), rest.more), (3, 0));
        assert_ne!(rest.digest, first.digest);
    }

    #[test]
    fn memory_is_written_with_the_notices() {
        let d = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&d.path().join("inventory.sqlite")).unwrap();
        let seen = Seen {
            grade: Some("A".into()),
            trusted: Some(true),
            gone: false,
        };
        let mut p = pass(Vec::new());
        p.memory.insert("e1".into(), seen.clone());
        q.commit(&p, &BTreeMap::new()).unwrap();
        let before = q.memory().unwrap();
        assert_eq!(before["e1"], seen);
        q.commit(&pass(Vec::new()), &before).unwrap();
        assert!(q.memory().unwrap().is_empty());
    }
}
