//! The records of a checkpointed scan, kept beside its checkpoint
//! (`FILE.records`, one JSON record per line), so that the part that
//! finishes a resumed scan can print the whole result.
//!
//! The checkpoint says which positions are done, not what they found; a
//! person who pressed Ctrl-C and resumed wants the scan's result, not the
//! last part's. Each record is appended (and flushed) as it arrives; a
//! resumed scan reads the earlier parts' records, prints them first, and
//! keeps them in the file of the checkpoint it saves to.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use netsensor::model::record::EndpointRecord;

/// Where a checkpoint's records are kept.
pub fn records_path(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.as_os_str().to_owned();
    name.push(".records");
    PathBuf::from(name)
}

/// The record file of the scan being run.
pub struct Parts {
    path: PathBuf,
    file: BufWriter<File>,
    earlier: Vec<EndpointRecord>,
    earlier_count: usize,
    /// A write failed: warned once, and the file no longer counted on.
    broken: bool,
}

impl Parts {
    /// Opens the record file of checkpoint `to`. Resuming from `from`, the
    /// earlier parts' records are read first (a missing file: none, as
    /// with checkpoints written before records were kept) and written to
    /// `to`'s file too; a fresh scan starts an empty file.
    pub fn open(from: Option<&Path>, to: &Path) -> anyhow::Result<Parts> {
        let earlier = match from {
            Some(from) => read(&records_path(from))?,
            None => Vec::new(),
        };
        let path = records_path(to);
        // Resuming in place appends: the earlier records are already there.
        let in_place = from.is_some_and(|f| records_path(f) == path);
        let file = if in_place {
            std::fs::OpenOptions::new().create(true).append(true).open(&path)
        } else {
            File::create(&path)
        }
        .with_context(|| format!("cannot write {}", path.display()))?;
        let mut parts = Parts {
            path,
            file: BufWriter::new(file),
            earlier_count: earlier.len(),
            earlier: Vec::new(),
            broken: false,
        };
        if !in_place {
            for r in &earlier {
                parts.keep(r);
            }
        }
        parts.earlier = earlier;
        Ok(parts)
    }

    /// How many records the earlier parts found.
    pub fn earlier(&self) -> usize {
        self.earlier_count
    }

    /// The earlier parts' records (once).
    pub fn take_earlier(&mut self) -> Vec<EndpointRecord> {
        std::mem::take(&mut self.earlier)
    }

    /// Keeps one record of this part.
    pub fn keep(&mut self, r: &EndpointRecord) {
        if self.broken {
            return;
        }
        let written = serde_json::to_writer(&mut self.file, r)
            .map_err(std::io::Error::other)
            .and_then(|()| self.file.write_all(b"\n"))
            .and_then(|()| self.file.flush());
        if let Err(e) = written {
            self.broken = true;
            tracing::warn!(
                "cannot keep records in {}: {e}; a resumed scan will print only its own part",
                self.path.display()
            );
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The records of a record file; a missing file has none.
fn read(path: &Path) -> anyhow::Result<Vec<EndpointRecord>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut records = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(r) => records.push(r),
            // A line cut short by a kill: the records before it stand.
            Err(e) => tracing::warn!("{}:{}: skipped an unreadable record ({e})", path.display(), n + 1),
        }
    }
    Ok(records)
}

/// One line on standard error about the parts of a resumed scan.
pub fn say(parts: &Parts, earlier: usize, complete: bool) {
    if earlier == 0 {
        return;
    }
    let whole = if complete {
        "the whole scan"
    } else {
        "every part so far"
    };
    eprintln!(
        "sensor: printed {whole}: {earlier} record(s) from earlier part(s) with this part's; all kept in {}",
        parts.path().display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use netsensor::model::record::Category;

    fn record(port: u16) -> EndpointRecord {
        EndpointRecord::new(
            "127.0.0.1".parse().unwrap(),
            port,
            None,
            Category::Unsecured,
            "t".into(),
        )
    }

    #[test]
    fn a_resumed_scan_carries_the_earlier_records_forward() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.ckpt"), dir.path().join("b.ckpt"));
        let mut first = Parts::open(None, &a).unwrap();
        assert_eq!(first.earlier(), 0);
        first.keep(&record(1));
        first.keep(&record(2));
        drop(first);
        // A line cut short by a kill is skipped, not fatal.
        let mut f = std::fs::OpenOptions::new().append(true).open(records_path(&a)).unwrap();
        f.write_all(b"{\"addr").unwrap();
        drop(f);
        let mut second = Parts::open(Some(&a), &b).unwrap();
        assert_eq!(second.earlier(), 2);
        let earlier: Vec<u16> = second.take_earlier().iter().map(|r| r.port).collect();
        assert_eq!(earlier, [1, 2]);
        assert!(second.take_earlier().is_empty(), "once");
        second.keep(&record(3));
        drop(second);
        let all: Vec<u16> = read(&records_path(&b)).unwrap().iter().map(|r| r.port).collect();
        assert_eq!(all, [1, 2, 3], "the new checkpoint's file has every part");
        // Resuming in place appends to what is there.
        let mut again = Parts::open(Some(&b), &b).unwrap();
        assert_eq!(again.earlier(), 3);
        again.keep(&record(4));
        drop(again);
        assert_eq!(read(&records_path(&b)).unwrap().len(), 4);
        assert_eq!(read(&dir.path().join("none.records")).unwrap().len(), 0);
    }
}
