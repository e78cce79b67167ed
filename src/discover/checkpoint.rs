//! Checkpoint and resume: continue an interrupted scan without probing any
//! target twice and without skipping one.
//!
//! A plan numbers its (address, port) pairs and walks them in a seeded order
//! ([`crate::discover::targets::ScanPlan`]), so progress is a set of positions. The
//! engines finish positions out of order (several event loops, probes of
//! different speeds), so the set is kept as a *watermark* (every position
//! below it is done) plus the done positions above it, a set the size of the
//! probes in flight rather than of the range. A position is done when its
//! outcome has reached the output: for an open port that is after the TLS
//! stages, so a crash never loses an endpoint whose port scan had finished.
//!
//! [`Tracker`] is the live state the scan updates; [`Checkpoint`] is its
//! serialisable snapshot, bound to one plan by a fingerprint of its targets,
//! ports, exclusions, seed and shard, and written atomically (temporary file,
//! fsync, rename) so a crash mid-write leaves the previous one intact.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::discover::targets::ScanPlan;

const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {path} is not a netsensor checkpoint: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error(
        "checkpoint {path} was written for another scan ({what}: checkpoint has {saved}, this scan has {now}); \
         resume with the same targets, ports, exclusions, --seed and --shard, or start afresh"
    )]
    Mismatch {
        path: PathBuf,
        what: &'static str,
        saved: String,
        now: String,
    },
}

/// A scan's progress on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// [`ScanPlan::fingerprint`] of the plan it belongs to.
    pub fingerprint: String,
    pub seed: u64,
    /// `i/n`, or absent for an unsharded scan.
    pub shard: Option<String>,
    /// The port list, for error messages.
    pub ports: String,
    /// Positions in the plan (decimal: they can exceed 2^64).
    pub positions: String,
    /// Every position below this one is done.
    pub watermark: String,
    /// Done positions at or above the watermark, ascending.
    pub done: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint of `plan` with nothing done.
    pub fn empty(plan: &ScanPlan) -> Self {
        Checkpoint {
            version: VERSION,
            fingerprint: plan.fingerprint(),
            seed: plan.seed(),
            shard: plan.shard().map(|s| s.to_string()),
            ports: plan.ports().to_string(),
            positions: plan.len().to_string(),
            watermark: "0".into(),
            done: Vec::new(),
        }
    }

    /// Whether every position of the plan is done.
    pub fn is_complete(&self) -> bool {
        self.watermark == self.positions
    }

    fn parsed(&self, path: &Path) -> Result<(u128, BTreeSet<u128>), CheckpointError> {
        let bad = |reason: String| CheckpointError::Parse {
            path: path.to_path_buf(),
            reason,
        };
        let num = |s: &str| s.parse::<u128>().map_err(|_| bad(format!("`{s}` is not a position")));
        let watermark = num(&self.watermark)?;
        let done = self.done.iter().map(|s| num(s)).collect::<Result<BTreeSet<_>, _>>()?;
        Ok((watermark, done))
    }

    /// Refuse to resume `plan` from a checkpoint of another scan.
    pub fn check_matches(&self, plan: &ScanPlan, path: &Path) -> Result<(), CheckpointError> {
        let mismatch = |what, saved: String, now: String| {
            Err(CheckpointError::Mismatch {
                path: path.to_path_buf(),
                what,
                saved,
                now,
            })
        };
        if self.version != VERSION {
            return mismatch("format version", self.version.to_string(), VERSION.to_string());
        }
        if self.seed != plan.seed() {
            return mismatch("seed", self.seed.to_string(), plan.seed().to_string());
        }
        let shard = plan.shard().map(|s| s.to_string());
        if self.shard != shard {
            let show = |s: &Option<String>| s.clone().unwrap_or_else(|| "no shard".into());
            return mismatch("shard", show(&self.shard), show(&shard));
        }
        if self.ports != plan.ports().to_string() {
            return mismatch("ports", self.ports.clone(), plan.ports().to_string());
        }
        if self.positions != plan.len().to_string() || self.fingerprint != plan.fingerprint() {
            return mismatch(
                "targets or exclusions",
                format!("{} positions", self.positions),
                format!("{} positions", plan.len()),
            );
        }
        Ok(())
    }

    /// Read a checkpoint file.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cp: Checkpoint = serde_json::from_str(&text).map_err(|e| CheckpointError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        cp.parsed(path)?;
        Ok(cp)
    }

    /// Write atomically: a temporary file beside `path`, fsync, rename, fsync
    /// of the directory. Readers see the old checkpoint or the new one.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let json = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct State {
    watermark: u128,
    /// Done positions above the watermark.
    above: BTreeSet<u128>,
    /// Examinations under way whose position is not known exactly (the SYN
    /// engine reports ports by address): the engine watermark when each was
    /// handed over. A snapshot never claims positions at or above them.
    floors: BTreeMap<u64, u128>,
    next_hold: u64,
}

impl State {
    fn advance(&mut self) {
        while self.above.remove(&self.watermark) {
            self.watermark += 1;
        }
    }
}

/// The live progress of one scan, shared by the engine, the pipeline and the
/// checkpoint writer.
#[derive(Debug)]
pub struct Tracker {
    len: u128,
    state: Mutex<State>,
    /// Positions done before this run (from the checkpoint): the walk skips them.
    resumed: BTreeSet<u128>,
    base: Checkpoint,
}

impl Tracker {
    /// A fresh scan of `plan`.
    pub fn new(plan: &ScanPlan) -> Self {
        Tracker {
            len: plan.len(),
            state: Mutex::new(State::default()),
            resumed: BTreeSet::new(),
            base: Checkpoint::empty(plan),
        }
    }

    /// Continue `plan` from `cp` (which must match it).
    pub fn resume(plan: &ScanPlan, cp: &Checkpoint, path: &Path) -> Result<Self, CheckpointError> {
        cp.check_matches(plan, path)?;
        let (watermark, done) = cp.parsed(path)?;
        let watermark = watermark.min(plan.len());
        let done: BTreeSet<u128> = done.into_iter().filter(|&i| i >= watermark && i < plan.len()).collect();
        let mut state = State {
            watermark,
            above: done.clone(),
            ..State::default()
        };
        state.advance();
        Ok(Tracker {
            len: plan.len(),
            state: Mutex::new(state),
            resumed: done,
            base: Checkpoint::empty(plan),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the walk starts: the watermark.
    pub fn start(&self) -> u128 {
        self.lock().watermark
    }

    /// Whether position `i` was done before this run and must not be probed.
    pub fn skip(&self, i: u128) -> bool {
        self.resumed.contains(&i)
    }

    /// Position `i` is done (its outcome has reached the output, or it had no
    /// target in this shard).
    pub fn done(&self, i: u128) {
        let mut s = self.lock();
        if i >= s.watermark {
            s.above.insert(i);
            s.advance();
        }
    }

    /// Every position below `w` is done (an engine that walks in order).
    pub fn done_below(&self, w: u128) {
        let mut s = self.lock();
        if w > s.watermark {
            s.watermark = w.min(self.len);
            let w = s.watermark;
            s.above = s.above.split_off(&w);
            s.advance();
        }
    }

    /// An examination starts for a port found while the engine's watermark
    /// was `floor`; [`Tracker::release`] when its records are out.
    pub fn hold(&self, floor: u128) -> u64 {
        let mut s = self.lock();
        let id = s.next_hold;
        s.next_hold += 1;
        s.floors.insert(id, floor);
        id
    }

    pub fn release(&self, id: u64) {
        self.lock().floors.remove(&id);
    }

    /// The checkpoint to write now.
    pub fn snapshot(&self) -> Checkpoint {
        let s = self.lock();
        let floor = s.floors.values().copied().min().unwrap_or(u128::MAX);
        let watermark = s.watermark.min(floor);
        Checkpoint {
            watermark: watermark.to_string(),
            done: s
                .above
                .iter()
                .filter(|&&i| i >= watermark)
                .map(u128::to_string)
                .collect(),
            ..self.base.clone()
        }
    }

    pub fn is_complete(&self) -> bool {
        let s = self.lock();
        s.watermark >= self.len && s.floors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::targets::{PortSet, TargetSet, TargetSpec};

    fn plan(targets: &str, ports: &str, seed: u64) -> ScanPlan {
        let specs: Vec<TargetSpec> = vec![targets.parse().unwrap()];
        let set = TargetSet::new(&specs, &[], |_| Err("no dns".into())).unwrap();
        ScanPlan::new(set, ports.parse::<PortSet>().unwrap(), seed).unwrap()
    }

    #[test]
    fn the_watermark_advances_over_positions_done_in_any_order() {
        let p = plan("127.0.0.0/30", "1-5", 1);
        let t = Tracker::new(&p);
        for i in [2, 0, 5] {
            t.done(i);
        }
        let cp = t.snapshot();
        assert_eq!(cp.watermark, "1");
        assert_eq!(cp.done, vec!["2".to_string(), "5".to_string()]);
        t.done(1);
        assert_eq!(t.snapshot().watermark, "3");
        t.done_below(20);
        assert!(t.is_complete());
        assert!(t.snapshot().is_complete());
    }

    #[test]
    fn examinations_hold_the_watermark_back() {
        let p = plan("127.0.0.0/30", "1-5", 1);
        let t = Tracker::new(&p);
        let id = t.hold(4);
        t.done_below(10);
        assert_eq!(t.snapshot().watermark, "4");
        assert!(!t.is_complete());
        t.release(id);
        assert_eq!(t.snapshot().watermark, "10");
    }

    #[test]
    fn round_trips_through_a_file_and_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scan.ckpt");
        let p = plan("127.0.0.0/28", "1-4", 7);
        let t = Tracker::new(&p);
        for i in [0, 1, 2, 9, 11] {
            t.done(i);
        }
        t.snapshot().save(&path).unwrap();
        let cp = Checkpoint::load(&path).unwrap();
        let r = Tracker::resume(&p, &cp, &path).unwrap();
        assert_eq!(r.start(), 3);
        assert!(r.skip(9) && r.skip(11) && !r.skip(3) && !r.skip(10));
        // Only the temporary file's rename is visible: no stray files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_another_scans_checkpoint_naming_the_difference() {
        let path = Path::new("scan.ckpt");
        let p = plan("127.0.0.0/28", "1-4", 7);
        let cp = Tracker::new(&p).snapshot();
        for (other, what) in [
            (plan("127.0.0.0/28", "1-4", 8), "seed"),
            (plan("127.0.0.0/28", "1-5", 7), "ports"),
            (plan("127.0.1.0/28", "1-4", 7), "targets"),
            (p.clone().with_shard(Some("1/2".parse().unwrap())), "shard"),
        ] {
            let err = Tracker::resume(&other, &cp, path).unwrap_err().to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
        assert!(Tracker::resume(&p, &cp, path).is_ok());
    }

    #[test]
    fn rejects_files_that_are_not_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, "{\"version\":1}").unwrap();
        assert!(matches!(Checkpoint::load(&path), Err(CheckpointError::Parse { .. })));
        let p = plan("127.0.0.0/30", "1", 1);
        let mut cp = Checkpoint::empty(&p);
        cp.watermark = "x".into();
        std::fs::write(&path, serde_json::to_string(&cp).unwrap()).unwrap();
        assert!(matches!(Checkpoint::load(&path), Err(CheckpointError::Parse { .. })));
        assert!(matches!(
            Checkpoint::load(&dir.path().join("missing")),
            Err(CheckpointError::Io { .. })
        ));
    }
}
