//! The outbox's file operations as a trait, each one step a crash can fall
//! between, so the property test can crash the outbox between any two of
//! them; [`DirStorage`] is the real directory.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The file operations the outbox needs, each one step a crash can fall
/// between. Names are plain file names inside one directory.
pub trait Storage {
    fn describe(&self) -> String;
    fn list(&self) -> io::Result<Vec<String>>;
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Create `name` (truncating) with `bytes`; not yet durable.
    fn write_new(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Make the contents of `name` durable (fsync).
    fn sync_file(&mut self, name: &str) -> io::Result<()>;
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Make the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&mut self) -> io::Result<()>;
}

/// [`Storage`] on a real directory.
pub struct DirStorage {
    dir: PathBuf,
}

impl DirStorage {
    /// Opens (creating, and fsyncing its parent) the directory.
    pub fn open(dir: &Path) -> io::Result<DirStorage> {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)?;
            if let Some(parent) = dir.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
        }
        Ok(DirStorage { dir: dir.to_path_buf() })
    }
}

impl Storage for DirStorage {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if let Some(n) = e.file_name().to_str() {
                out.push(n.to_string());
            }
        }
        Ok(out)
    }
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }
    fn write_new(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let mut f = std::fs::File::create(self.dir.join(name))?;
        f.write_all(bytes)
    }
    fn sync_file(&mut self, name: &str) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(self.dir.join(name))?
            .sync_all()
    }
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }
    fn sync_dir(&mut self) -> io::Result<()> {
        std::fs::File::open(&self.dir)?.sync_all()
    }
}
