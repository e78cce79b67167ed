//! The durable outbox: what must reach upstream, on disk until upstream said
//! it has it.
//!
//! Why a directory of small files and not a queue in memory or in the
//! inventory database: a report must survive SIGKILL, power loss and an
//! upstream that is down for days, and deleting it must be tied to upstream's
//! acknowledgement of the *batch* it went out in, not to our send. So:
//!
//! - every record is written to a temporary file, fsync'd, renamed into place
//!   and the directory fsync'd before [`Outbox::enqueue`] returns; nothing is
//!   acknowledged to anyone before that;
//! - every record carries a SHA-256 of its header and payload, so a damaged
//!   file is recognised, set aside and reported rather than sent as garbage;
//! - a batch is written down (its id and the records in it) *before* it is
//!   sent, so after a crash the same records go out again under the same id
//!   and upstream recognises the re-send (idempotency key);
//! - records are deleted only in [`Outbox::ack`], after upstream acknowledged
//!   the batch; a batch file whose records are partly gone was acknowledged
//!   (we delete only after an ack), so recovery finishes the deletion;
//! - a batch upstream refused for good is *parked*: kept on disk, out of the
//!   delivery loop, visible in `sensor outbox status`;
//! - the size cap has one explicit policy ([`Limits`]): pending snapshot
//!   records (superseded by the next snapshot) are evicted oldest first; when
//!   only change events are left, the new record is refused with
//!   [`OutboxError::Full`] and a durable *resync* marker is set, so the next
//!   full snapshot re-covers whatever was refused. Nothing disappears
//!   silently.
//!
//! The file operations go through [`Storage`] so the property test can crash
//! the outbox between any two write steps ([`Storage`] for a real directory
//! is [`DirStorage`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io;

mod frame;
mod storage;

use frame::{frame, record_name, unframe};
pub use storage::{DirStorage, Storage};

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"NSOB";
const VERSION: u8 = 1;
const HEADER: usize = 16 + 32;
const RECORD_PREFIX: &str = "r-";
const BATCH_PREFIX: &str = "b-";
const PARKED_PREFIX: &str = "p-";
const CORRUPT_PREFIX: &str = "corrupt-";
const TMP_SUFFIX: &str = ".tmp";
const RESYNC: &str = "resync-needed";
const LAST_ERROR: &str = "last-error";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox {dir}: {op}: {source}")]
    Io {
        dir: String,
        op: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "outbox full ({records} records, {bytes} bytes; cap {max_records} records, {max_bytes} bytes): record refused, resync marked"
    )]
    Full {
        records: usize,
        bytes: u64,
        max_records: usize,
        max_bytes: u64,
    },
    #[error("outbox record larger than the outbox cap ({len} bytes > {max_bytes})")]
    TooLarge { len: usize, max_bytes: u64 },
    #[error("no batch {0} in flight")]
    UnknownBatch(String),
}

/// What a record is, for the cap policy: snapshots may be evicted (the next
/// snapshot supersedes them), change events may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Change,
    Snapshot,
}

impl Class {
    fn byte(self) -> u8 {
        match self {
            Class::Change => 0,
            Class::Snapshot => 1,
        }
    }
    fn from_byte(b: u8) -> Option<Class> {
        match b {
            0 => Some(Class::Change),
            1 => Some(Class::Snapshot),
            _ => None,
        }
    }
}

/// The outbox's size cap.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_records: usize,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_records: 100_000,
            max_bytes: 1 << 30,
        }
    }
}

/// One stored record, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub class: Class,
    /// How many upstream events the payload holds (for batch caps).
    pub count: u32,
    pub payload: Vec<u8>,
}

/// A batch in flight: the same id and records until acknowledged or parked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: String,
    pub records: Vec<Record>,
}

#[derive(Serialize, Deserialize)]
struct BatchFile {
    id: String,
    seqs: Vec<u64>,
    #[serde(default)]
    reason: Option<String>,
}

/// What `open` found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Half-written temporary files removed.
    pub temporaries: usize,
    /// Batches found acknowledged-but-not-cleaned and finished.
    pub finished_batches: usize,
    /// Records whose checksum failed, set aside as `corrupt-*`.
    pub corrupt: usize,
    /// A batch that was in flight and will be re-sent under its id.
    pub in_flight: Option<String>,
}

/// For `sensor outbox status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub records: usize,
    pub events: u64,
    pub bytes: u64,
    pub oldest_seq: Option<u64>,
    pub in_flight: Option<String>,
    pub parked_batches: Vec<ParkedBatch>,
    pub corrupt: usize,
    pub resync_needed: bool,
    pub last_error: Option<String>,
    pub max_records: usize,
    pub max_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedBatch {
    pub id: String,
    pub records: usize,
    pub reason: Option<String>,
}

/// The outbox over some storage.
pub struct Outbox<S: Storage> {
    storage: S,
    limits: Limits,
    next_seq: u64,
    /// seq -> (class, count, file size) of every record on disk.
    index: BTreeMap<u64, (Class, u32, u64)>,
    in_flight: Option<(String, Vec<u64>)>,
    /// The in-flight batch's file is durable. False only after writing it
    /// failed: the same id is then written again before it is sent, so one
    /// formation never goes out under two ids.
    in_flight_written: bool,
    parked: BTreeMap<String, (Vec<u64>, Option<String>)>,
    corrupt: usize,
}

impl<S: Storage> Outbox<S> {
    /// Opens the outbox, finishing what a crash interrupted (see [`Recovery`]).
    pub fn open(storage: S, limits: Limits) -> Result<(Self, Recovery), OutboxError> {
        Self::open_inner(storage, limits, true)
    }

    /// Reads the outbox without repairing anything (for `sensor outbox
    /// status` next to a running daemon, whose temporaries must not vanish).
    pub fn inspect(storage: S, limits: Limits) -> Result<Self, OutboxError> {
        Self::open_inner(storage, limits, false).map(|(ob, _)| ob)
    }

    fn open_inner(storage: S, limits: Limits, repair: bool) -> Result<(Self, Recovery), OutboxError> {
        let mut ob = Outbox {
            storage,
            limits,
            next_seq: 0,
            index: BTreeMap::new(),
            in_flight: None,
            in_flight_written: true,
            parked: BTreeMap::new(),
            corrupt: 0,
        };
        let mut rec = Recovery::default();
        let names = ob.storage.list().map_err(|e| ob.io("list", e))?;
        let mut batches = Vec::new();
        let mut max_seq = None::<u64>;
        for name in &names {
            if name.ends_with(TMP_SUFFIX) {
                if !repair {
                    continue;
                }
                ob.storage.remove(name).map_err(|e| ob.io("remove temporary", e))?;
                rec.temporaries += 1;
            } else if let Some(seq) = name.strip_prefix(RECORD_PREFIX) {
                let Ok(seq) = seq.parse::<u64>() else { continue };
                let bytes = ob.storage.read(name).map_err(|e| ob.io("read", e))?;
                match unframe(&bytes) {
                    Some((class, count, _)) => {
                        ob.index.insert(seq, (class, count, bytes.len() as u64));
                    }
                    None if !repair => rec.corrupt += 1,
                    None => {
                        tracing::error!(file = %name, "outbox record fails its checksum; set aside");
                        ob.storage
                            .rename(name, &format!("{CORRUPT_PREFIX}{name}"))
                            .map_err(|e| ob.io("set aside", e))?;
                        rec.corrupt += 1;
                    }
                }
                max_seq = max_seq.max(Some(seq));
            } else if name.starts_with(BATCH_PREFIX) || name.starts_with(PARKED_PREFIX) {
                batches.push(name.clone());
            } else if name.starts_with(CORRUPT_PREFIX) {
                ob.corrupt += 1;
            }
        }
        ob.corrupt += rec.corrupt;
        for name in batches {
            let bytes = ob.storage.read(&name).map_err(|e| ob.io("read batch", e))?;
            let parsed = unframe(&bytes).and_then(|(_, _, p)| serde_json::from_slice::<BatchFile>(&p).ok());
            let Some(b) = parsed else {
                if !repair {
                    continue;
                }
                // Batch files are written whole before anything is sent, so an
                // unreadable one was never sent: forget it, its records go out again.
                ob.storage.remove(&name).map_err(|e| ob.io("remove batch", e))?;
                continue;
            };
            for s in &b.seqs {
                max_seq = max_seq.max(Some(*s));
            }
            let all_there = b.seqs.iter().all(|s| ob.index.contains_key(s));
            if name.starts_with(BATCH_PREFIX) && names.contains(&format!("{PARKED_PREFIX}{}", b.id)) {
                // A crash while parking: the parked file is durable, so the park stands.
                if repair {
                    ob.storage.remove(&name).map_err(|e| ob.io("remove batch", e))?;
                }
                continue;
            }
            if name.starts_with(PARKED_PREFIX) {
                // Only the records still there (an operator may have removed some).
                let seqs: Vec<u64> = b.seqs.into_iter().filter(|s| ob.index.contains_key(s)).collect();
                if seqs.is_empty() {
                    if repair {
                        ob.storage.remove(&name).map_err(|e| ob.io("remove parked batch", e))?;
                    }
                    continue;
                }
                ob.parked.insert(b.id, (seqs, b.reason));
            } else if !all_there && !repair {
                continue;
            } else if !all_there {
                // Records are deleted only after upstream's ack: finish the deletion.
                for s in &b.seqs {
                    ob.storage.remove(&record_name(*s)).map_err(|e| ob.io("remove", e))?;
                    ob.index.remove(s);
                }
                ob.storage.remove(&name).map_err(|e| ob.io("remove batch", e))?;
                rec.finished_batches += 1;
            } else if ob.in_flight.is_none() {
                rec.in_flight = Some(b.id.clone());
                ob.in_flight = Some((b.id, b.seqs));
            } else if repair {
                // Only one batch is ever in flight; a second one cannot have been sent.
                ob.storage.remove(&name).map_err(|e| ob.io("remove batch", e))?;
            }
        }
        if repair && (rec.temporaries > 0 || rec.finished_batches > 0 || rec.corrupt > 0) {
            ob.storage.sync_dir().map_err(|e| ob.io("sync directory", e))?;
        }
        ob.next_seq = max_seq.map_or(0, |s| s + 1);
        Ok((ob, rec))
    }

    fn io(&self, op: &str, source: io::Error) -> OutboxError {
        OutboxError::Io {
            dir: self.storage.describe(),
            op: op.to_string(),
            source,
        }
    }

    /// Writes `bytes` as `name` durably: temporary, fsync, rename, fsync dir.
    fn write_durable(&mut self, name: &str, bytes: &[u8]) -> Result<(), OutboxError> {
        let tmp = format!("{name}{TMP_SUFFIX}");
        self.storage.write_new(&tmp, bytes).map_err(|e| self.io("write", e))?;
        self.storage.sync_file(&tmp).map_err(|e| self.io("fsync", e))?;
        self.storage.rename(&tmp, name).map_err(|e| self.io("rename", e))?;
        self.storage.sync_dir().map_err(|e| self.io("fsync directory", e))
    }

    fn busy(&self) -> BTreeSet<u64> {
        let mut s: BTreeSet<u64> = self.parked.values().flat_map(|(v, _)| v.iter().copied()).collect();
        if let Some((_, v)) = &self.in_flight {
            s.extend(v.iter().copied());
        }
        s
    }

    fn bytes(&self) -> u64 {
        self.index.values().map(|(_, _, b)| *b).sum()
    }

    /// Stores one record durably; returns its sequence number once it is on
    /// disk. Over the cap, see the module docs.
    pub fn enqueue(&mut self, class: Class, count: u32, payload: &[u8]) -> Result<u64, OutboxError> {
        let framed = frame(class, count, payload);
        let len = framed.len() as u64;
        if len > self.limits.max_bytes {
            return Err(OutboxError::TooLarge {
                len: framed.len(),
                max_bytes: self.limits.max_bytes,
            });
        }
        let fits = |ob: &Self| ob.index.len() < ob.limits.max_records && ob.bytes() + len <= ob.limits.max_bytes;
        if !fits(self) {
            let busy = self.busy();
            let evictable: Vec<u64> = self
                .index
                .iter()
                .filter(|(s, (c, _, _))| *c == Class::Snapshot && !busy.contains(s))
                .map(|(s, _)| *s)
                .collect();
            let mut evicted = 0;
            for s in evictable {
                if fits(self) {
                    break;
                }
                self.storage.remove(&record_name(s)).map_err(|e| self.io("evict", e))?;
                self.index.remove(&s);
                evicted += 1;
            }
            if evicted > 0 {
                tracing::warn!(evicted, "outbox at its cap: oldest pending snapshot records evicted");
                self.storage.sync_dir().map_err(|e| self.io("fsync directory", e))?;
            }
            if !fits(self) {
                self.write_durable(RESYNC, b"1")?;
                return Err(OutboxError::Full {
                    records: self.index.len(),
                    bytes: self.bytes(),
                    max_records: self.limits.max_records,
                    max_bytes: self.limits.max_bytes,
                });
            }
            if evicted > 0 {
                // The snapshot is now incomplete upstream: send a full one again.
                self.write_durable(RESYNC, b"1")?;
            }
        }
        let seq = self.next_seq;
        self.write_durable(&record_name(seq), &framed)?;
        self.next_seq += 1;
        self.index.insert(seq, (class, count, len));
        Ok(seq)
    }

    fn load(&self, seq: u64) -> Result<Record, OutboxError> {
        let bytes = self.storage.read(&record_name(seq)).map_err(|e| self.io("read", e))?;
        let (class, count, payload) = unframe(&bytes).ok_or_else(|| {
            self.io(
                "read",
                io::Error::new(io::ErrorKind::InvalidData, format!("record {seq} fails its checksum")),
            )
        })?;
        Ok(Record {
            seq,
            class,
            count,
            payload,
        })
    }

    /// The batch to send: the one in flight if any (same id, same records),
    /// else a new one of the oldest free records, at most `max_events` events
    /// and `max_bytes` of payload (always at least one record), written down
    /// before it is returned. None when there is nothing to send.
    pub fn next_batch(
        &mut self,
        max_events: u32,
        max_bytes: u64,
        new_id: impl FnOnce() -> String,
    ) -> Result<Option<Batch>, OutboxError> {
        if let Some((id, seqs)) = self.in_flight.clone() {
            if seqs.iter().all(|s| self.index.contains_key(s)) {
                if !self.in_flight_written {
                    self.write_batch_file(&id, &seqs)?;
                    self.in_flight_written = true;
                }
                let records = seqs.iter().map(|s| self.load(*s)).collect::<Result<Vec<_>, _>>()?;
                return Ok(Some(Batch { id, records }));
            }
            // An ack that failed half-way (a disk error): finish it.
            self.ack(&id)?;
        }
        let busy = self.busy();
        let mut seqs = Vec::new();
        let (mut events, mut bytes) = (0u32, 0u64);
        for (s, (_, count, size)) in &self.index {
            if busy.contains(s) {
                continue;
            }
            if !seqs.is_empty() && (events + count > max_events || bytes + size > max_bytes) {
                break;
            }
            seqs.push(*s);
            events += count;
            bytes += size;
        }
        if seqs.is_empty() {
            return Ok(None);
        }
        let id = new_id();
        self.in_flight = Some((id.clone(), seqs.clone()));
        self.in_flight_written = false;
        self.write_batch_file(&id, &seqs)?;
        self.in_flight_written = true;
        let records = seqs.iter().map(|s| self.load(*s)).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Batch { id, records }))
    }

    fn write_batch_file(&mut self, id: &str, seqs: &[u64]) -> Result<(), OutboxError> {
        let body = serde_json::to_vec(&BatchFile {
            id: id.to_string(),
            seqs: seqs.to_vec(),
            reason: None,
        })
        .map_err(|e| self.io("encode batch", io::Error::other(e)))?;
        self.write_durable(&format!("{BATCH_PREFIX}{id}"), &frame(Class::Change, 0, &body))
    }

    /// Upstream acknowledged batch `id`: its records go.
    pub fn ack(&mut self, id: &str) -> Result<(), OutboxError> {
        let Some((fid, seqs)) = self.in_flight.clone() else {
            return Err(OutboxError::UnknownBatch(id.to_string()));
        };
        if fid != id {
            return Err(OutboxError::UnknownBatch(id.to_string()));
        }
        for s in &seqs {
            self.storage
                .remove(&record_name(*s))
                .map_err(|e| self.io("remove", e))?;
            self.index.remove(s);
        }
        self.storage
            .remove(&format!("{BATCH_PREFIX}{id}"))
            .map_err(|e| self.io("remove batch", e))?;
        self.storage.sync_dir().map_err(|e| self.io("fsync directory", e))?;
        self.in_flight = None;
        Ok(())
    }

    /// Upstream refused batch `id` for good: keep it on disk, out of delivery.
    pub fn park(&mut self, id: &str, reason: &str) -> Result<(), OutboxError> {
        let Some((fid, seqs)) = self.in_flight.clone() else {
            return Err(OutboxError::UnknownBatch(id.to_string()));
        };
        if fid != id {
            return Err(OutboxError::UnknownBatch(id.to_string()));
        }
        let body = serde_json::to_vec(&BatchFile {
            id: id.to_string(),
            seqs: seqs.clone(),
            reason: Some(reason.to_string()),
        })
        .map_err(|e| self.io("encode batch", io::Error::other(e)))?;
        self.write_durable(&format!("{PARKED_PREFIX}{id}"), &frame(Class::Change, 0, &body))?;
        self.storage
            .remove(&format!("{BATCH_PREFIX}{id}"))
            .map_err(|e| self.io("remove batch", e))?;
        self.storage.sync_dir().map_err(|e| self.io("fsync directory", e))?;
        self.in_flight = None;
        self.parked.insert(id.to_string(), (seqs, Some(reason.to_string())));
        Ok(())
    }

    /// Remembers the last delivery error for `status` (best effort, durable).
    pub fn set_last_error(&mut self, msg: Option<&str>) -> Result<(), OutboxError> {
        match msg {
            Some(m) => self.write_durable(LAST_ERROR, m.as_bytes()),
            None => {
                self.storage.remove(LAST_ERROR).map_err(|e| self.io("remove", e))?;
                Ok(())
            }
        }
    }

    /// A record was refused or snapshot records evicted: a full snapshot is owed.
    pub fn resync_needed(&self) -> bool {
        self.storage.read(RESYNC).is_ok()
    }

    /// Owes upstream a full snapshot (something could not be reported).
    pub fn mark_resync(&mut self) -> Result<(), OutboxError> {
        self.write_durable(RESYNC, b"1")
    }

    /// A full snapshot has been enqueued.
    pub fn clear_resync(&mut self) -> Result<(), OutboxError> {
        self.storage.remove(RESYNC).map_err(|e| self.io("remove", e))?;
        self.storage.sync_dir().map_err(|e| self.io("fsync directory", e))
    }

    /// Records not in a parked batch (what delivery still has to do).
    pub fn pending(&self) -> usize {
        let parked: BTreeSet<u64> = self.parked.values().flat_map(|(v, _)| v.iter().copied()).collect();
        self.index.keys().filter(|s| !parked.contains(s)).count()
    }

    pub fn status(&self) -> Status {
        let last_error = self
            .storage
            .read(LAST_ERROR)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Status {
            records: self.index.len(),
            events: self.index.values().map(|(_, c, _)| u64::from(*c)).sum(),
            bytes: self.bytes(),
            oldest_seq: self.index.keys().next().copied(),
            in_flight: self.in_flight.as_ref().map(|(id, _)| id.clone()),
            parked_batches: self
                .parked
                .iter()
                .map(|(id, (seqs, reason))| ParkedBatch {
                    id: id.clone(),
                    records: seqs.len(),
                    reason: reason.clone(),
                })
                .collect(),
            corrupt: self.corrupt,
            resync_needed: self.resync_needed(),
            last_error,
            max_records: self.limits.max_records,
            max_bytes: self.limits.max_bytes,
        }
    }

    /// The oldest record (for `status`: its age).
    pub fn oldest(&self) -> Result<Option<Record>, OutboxError> {
        match self.index.keys().next() {
            Some(s) => self.load(*s).map(Some),
            None => Ok(None),
        }
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }
}

/// Puts parked batch `id` back into delivery (its records go out again in a
/// new batch). Works on the directory alone, so it is safe next to a
/// running daemon, which sees the change at its next start.
pub fn unpark<S: Storage>(storage: &mut S, id: &str) -> Result<bool, OutboxError> {
    let name = format!("{PARKED_PREFIX}{id}");
    let io = |op: &str, source: io::Error, st: &S| OutboxError::Io {
        dir: st.describe(),
        op: op.to_string(),
        source,
    };
    let names = storage.list().map_err(|e| io("list", e, storage))?;
    if !names.contains(&name) {
        return Ok(false);
    }
    storage.remove(&name).map_err(|e| io("remove", e, storage))?;
    storage.sync_dir().map_err(|e| io("fsync directory", e, storage))?;
    Ok(true)
}

pub use crate::model::ids::random_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_reopen_and_a_damaged_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open(DirStorage::open(dir.path()).unwrap(), Limits::default()).unwrap();
        ob.enqueue(Class::Change, 1, b"one").unwrap();
        ob.enqueue(Class::Change, 1, b"two").unwrap();
        drop(ob);
        // Flip a payload byte of the second record.
        let p = dir.path().join(record_name(1));
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        std::fs::write(dir.path().join("r-00000000000000000009.tmp"), b"torn").unwrap();
        let (mut ob, rec) = Outbox::open(DirStorage::open(dir.path()).unwrap(), Limits::default()).unwrap();
        assert_eq!(rec.corrupt, 1);
        assert_eq!(rec.temporaries, 1);
        let b = ob.next_batch(100, 1 << 20, || "b1".into()).unwrap().unwrap();
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.records[0].payload, b"one");
        assert_eq!(ob.status().corrupt, 1);
    }

    #[test]
    fn the_cap_evicts_snapshots_then_refuses_and_marks_resync() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_records: 3,
            max_bytes: 1 << 20,
        };
        let (mut ob, _) = Outbox::open(DirStorage::open(dir.path()).unwrap(), limits).unwrap();
        ob.enqueue(Class::Snapshot, 1, b"s1").unwrap();
        ob.enqueue(Class::Change, 1, b"c1").unwrap();
        ob.enqueue(Class::Change, 1, b"c2").unwrap();
        assert!(!ob.resync_needed());
        // Full: the snapshot record goes, the change stays.
        ob.enqueue(Class::Change, 1, b"c3").unwrap();
        assert!(ob.resync_needed());
        assert_eq!(ob.status().records, 3);
        let err = ob.enqueue(Class::Change, 1, b"c4").unwrap_err();
        assert!(matches!(err, OutboxError::Full { .. }), "{err}");
        let b = ob.next_batch(100, 1 << 20, || "x".into()).unwrap().unwrap();
        let got: Vec<_> = b.records.iter().map(|r| r.payload.clone()).collect();
        assert_eq!(got, vec![b"c1".to_vec(), b"c2".to_vec(), b"c3".to_vec()]);
        ob.clear_resync().unwrap();
        assert!(!ob.resync_needed());
    }

    #[test]
    fn a_parked_batch_stays_on_disk_and_out_of_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ob, _) = Outbox::open(DirStorage::open(dir.path()).unwrap(), Limits::default()).unwrap();
        ob.enqueue(Class::Change, 1, b"bad").unwrap();
        let b = ob.next_batch(1, 1 << 20, || "b1".into()).unwrap().unwrap();
        ob.park(&b.id, "422 schema").unwrap();
        ob.enqueue(Class::Change, 1, b"good").unwrap();
        drop(ob);
        let (mut ob, _) = Outbox::open(DirStorage::open(dir.path()).unwrap(), Limits::default()).unwrap();
        let st = ob.status();
        assert_eq!(st.records, 2);
        assert_eq!(st.parked_batches.len(), 1);
        assert_eq!(st.parked_batches[0].reason.as_deref(), Some("422 schema"));
        let b = ob.next_batch(10, 1 << 20, || "b2".into()).unwrap().unwrap();
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.records[0].payload, b"good");
        assert_eq!(ob.pending(), 1);
    }
}

/// The outbox against a model, with a simulated crash at every write step.
#[cfg(test)]
mod crash_tests {
    use std::cell::{Cell, RefCell};
    use std::collections::{BTreeMap, HashMap};
    use std::rc::Rc;

    use proptest::prelude::*;

    use super::*;

    /// A disk that keeps what was synced: file contents after `sync_file`,
    /// directory entries after `sync_dir`. A crash throws the rest away.
    #[derive(Clone, Default)]
    struct Disk {
        dir: BTreeMap<String, usize>,
        durable_dir: BTreeMap<String, usize>,
        /// (current, durable) contents per inode.
        inodes: Vec<(Vec<u8>, Vec<u8>)>,
    }

    impl Disk {
        fn reboot(&mut self) {
            self.dir = self.durable_dir.clone();
            for i in &mut self.inodes {
                i.0 = i.1.clone();
            }
        }
    }

    struct SimFs {
        disk: Rc<RefCell<Disk>>,
        steps: Rc<Cell<u64>>,
        crash_at: Option<u64>,
        crashed: Rc<Cell<bool>>,
        /// The failing step is an I/O error the process survives (no crash).
        transient: bool,
    }

    fn dead() -> io::Error {
        io::Error::other("crashed")
    }

    impl SimFs {
        fn step(&self) -> io::Result<()> {
            if self.crashed.get() {
                return Err(dead());
            }
            let n = self.steps.get();
            self.steps.set(n + 1);
            if self.crash_at == Some(n) {
                if !self.transient {
                    self.crashed.set(true);
                }
                return Err(dead());
            }
            Ok(())
        }
    }

    impl Storage for SimFs {
        fn describe(&self) -> String {
            "sim".into()
        }
        fn list(&self) -> io::Result<Vec<String>> {
            if self.crashed.get() {
                return Err(dead());
            }
            Ok(self.disk.borrow().dir.keys().cloned().collect())
        }
        fn read(&self, name: &str) -> io::Result<Vec<u8>> {
            if self.crashed.get() {
                return Err(dead());
            }
            let d = self.disk.borrow();
            let i = d
                .dir
                .get(name)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            Ok(d.inodes[*i].0.clone())
        }
        fn write_new(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
            self.step()?;
            let mut d = self.disk.borrow_mut();
            d.inodes.push((bytes.to_vec(), Vec::new()));
            let i = d.inodes.len() - 1;
            d.dir.insert(name.to_string(), i);
            Ok(())
        }
        fn sync_file(&mut self, name: &str) -> io::Result<()> {
            self.step()?;
            let mut d = self.disk.borrow_mut();
            let i = *d
                .dir
                .get(name)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            d.inodes[i].1 = d.inodes[i].0.clone();
            Ok(())
        }
        fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
            self.step()?;
            let mut d = self.disk.borrow_mut();
            let i = d
                .dir
                .remove(from)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
            d.dir.insert(to.to_string(), i);
            Ok(())
        }
        fn remove(&mut self, name: &str) -> io::Result<()> {
            self.step()?;
            self.disk.borrow_mut().dir.remove(name);
            Ok(())
        }
        fn sync_dir(&mut self) -> io::Result<()> {
            self.step()?;
            let mut d = self.disk.borrow_mut();
            d.durable_dir = d.dir.clone();
            Ok(())
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Enqueue(Class),
        /// Form or re-send a batch of at most this many events; upstream
        /// applies it; `lost` = its answer never arrives.
        Deliver {
            max_events: u32,
            lost: bool,
        },
        /// Upstream refuses the next batch for good: it is parked.
        Refuse,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => prop_oneof![Just(Class::Change), Just(Class::Snapshot)].prop_map(Op::Enqueue),
            2 => (1u32..4, any::<bool>()).prop_map(|(max_events, lost)| Op::Deliver { max_events, lost }),
            1 => Just(Op::Refuse),
        ]
    }

    /// Upstream: applies a batch once per id (the idempotency key).
    #[derive(Default)]
    struct Upstream {
        batches: HashMap<String, Vec<Vec<u8>>>,
        /// Batches refused for good: refused again if re-sent (as a real
        /// upstream's 4xx would be).
        refused: std::collections::HashSet<String>,
    }

    impl Upstream {
        fn post(&mut self, b: &Batch) {
            self.batches
                .entry(b.id.clone())
                .or_insert_with(|| b.records.iter().map(|r| r.payload.clone()).collect());
        }
        fn applied(&self) -> HashMap<Vec<u8>, usize> {
            let mut n = HashMap::new();
            for p in self.batches.values().flatten() {
                *n.entry(p.clone()).or_insert(0) += 1;
            }
            n
        }
    }

    struct Outcome {
        parked: Vec<Vec<u8>>,
        steps: u64,
        confirmed: Vec<Vec<u8>>,
        maybe: Vec<Vec<u8>>,
        upstream: Upstream,
    }

    fn open(disk: &Rc<RefCell<Disk>>, steps: &Rc<Cell<u64>>, crash_at: Option<u64>, transient: bool) -> Outbox<SimFs> {
        let fs = SimFs {
            disk: disk.clone(),
            steps: steps.clone(),
            crash_at,
            crashed: Rc::new(Cell::new(false)),
            transient,
        };
        Outbox::open(fs, Limits::default()).expect("open").0
    }

    /// Runs `ops`, crashing at write step `crash_at` (then rebooting and going
    /// on), and finally drains the outbox with no crash.
    fn play(ops: &[Op], crash_at: Option<u64>, transient: bool) -> Outcome {
        let disk = Rc::new(RefCell::new(Disk::default()));
        let steps = Rc::new(Cell::new(0));
        let mut ob = open(&disk, &steps, crash_at, transient);
        let mut upstream = Upstream::default();
        let (mut confirmed, mut maybe) = (Vec::new(), Vec::new());
        let mut next_id = 0u32;
        let mut ids = 0u32;
        for op in ops {
            let failed = match op {
                Op::Enqueue(class) => {
                    next_id += 1;
                    let payload = next_id.to_le_bytes().to_vec();
                    match ob.enqueue(*class, 1, &payload) {
                        Ok(_) => {
                            confirmed.push(payload);
                            false
                        }
                        Err(_) => {
                            maybe.push(payload);
                            true
                        }
                    }
                }
                Op::Deliver { max_events, lost } => {
                    match ob.next_batch(*max_events, 1 << 20, || {
                        ids += 1;
                        format!("batch{ids}")
                    }) {
                        Ok(Some(b)) if upstream.refused.contains(&b.id) => ob.park(&b.id, "422").is_err(),
                        Ok(Some(b)) => {
                            upstream.post(&b);
                            !*lost && ob.ack(&b.id).is_err()
                        }
                        Ok(None) => false,
                        Err(_) => true,
                    }
                }
                Op::Refuse => match ob.next_batch(2, 1 << 20, || {
                    ids += 1;
                    format!("batch{ids}")
                }) {
                    // Upstream acknowledges a batch it applied before (idempotency) and refuses others.
                    Ok(Some(b)) if upstream.batches.contains_key(&b.id) => ob.ack(&b.id).is_err(),
                    Ok(Some(b)) => {
                        upstream.refused.insert(b.id.clone());
                        ob.park(&b.id, "422").is_err()
                    }
                    Ok(None) => false,
                    Err(_) => true,
                },
            };
            if failed && !transient {
                // The process died: reboot the disk and open again, no more crashes.
                disk.borrow_mut().reboot();
                ob = open(&disk, &steps, None, false);
            }
        }
        let total = steps.get();
        // A clean restart, no more crashes, then deliver everything.
        drop(ob);
        let mut ob = open(&disk, &steps, None, false);
        for _ in 0..1000 {
            match ob
                .next_batch(3, 1 << 20, || {
                    ids += 1;
                    format!("batch{ids}")
                })
                .expect("drain")
            {
                Some(b) if upstream.refused.contains(&b.id) => ob.park(&b.id, "422").expect("park"),
                Some(b) => {
                    upstream.post(&b);
                    ob.ack(&b.id).expect("ack");
                }
                None => break,
            }
        }
        let st = ob.status();
        let parked_records: usize = st.parked_batches.iter().map(|p| p.records).sum();
        assert_eq!(st.records, parked_records, "drained but for parked batches");
        let mut parked = Vec::new();
        for p in &st.parked_batches {
            let name = format!("{PARKED_PREFIX}{}", p.id);
            let bytes = ob.storage().read(&name).expect("parked batch file");
            let (_, _, body) = unframe(&bytes).expect("parked batch framed");
            let bf: BatchFile = serde_json::from_slice(&body).expect("parked batch json");
            for s in bf.seqs {
                parked.push(ob.load(s).expect("parked record").payload);
            }
        }
        Outcome {
            parked,
            steps: total,
            confirmed,
            maybe,
            upstream,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn nothing_confirmed_is_lost_or_applied_twice_whatever_step_crashes(ops in proptest::collection::vec(op(), 1..24)) {
            check(&ops, false)?;
        }

        #[test]
        fn nothing_confirmed_is_lost_or_applied_twice_whatever_step_fails(ops in proptest::collection::vec(op(), 1..24)) {
            // An I/O error the process survives (full disk, EIO) at any step.
            check(&ops, true)?;
        }
    }

    fn check(ops: &[Op], transient: bool) -> Result<(), TestCaseError> {
        {
            let clean = play(ops, None, false);
            for k in 0..=clean.steps {
                let o = play(ops, Some(k), transient);
                let applied = o.upstream.applied();
                for p in &o.parked {
                    prop_assert!(
                        !applied.contains_key(p),
                        "crash at step {}: a parked record was applied",
                        k
                    );
                }
                for p in o.confirmed.iter().filter(|p| !o.parked.contains(p)) {
                    prop_assert_eq!(
                        applied.get(p).copied(),
                        Some(1),
                        "crash at step {}: confirmed {:?} applied {:?} times",
                        k,
                        p,
                        applied.get(p)
                    );
                }
                for p in &o.maybe {
                    prop_assert!(
                        applied.get(p).copied().unwrap_or(0) <= 1,
                        "crash at step {}: in-flight record applied twice",
                        k
                    );
                }
                prop_assert_eq!(
                    applied.len() + o.parked.len(),
                    o.confirmed.len()
                        + o.maybe
                            .iter()
                            .filter(|p| applied.contains_key(*p) || o.parked.contains(*p))
                            .count(),
                    "crash at step {}: something applied that was never enqueued",
                    k
                );
            }
        }
        Ok(())
    }
}
