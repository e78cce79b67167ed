//! NDJSON: one record per line, written and flushed as it arrives, so a
//! consumer sees results while the scan runs.

use std::io::{self, Write};

use super::{Printable, Sink};

pub(super) struct Ndjson<W> {
    w: W,
}

impl<W> Ndjson<W> {
    pub fn new(w: W) -> Self {
        Ndjson { w }
    }
}

impl<W: Write, R: Printable> Sink<R> for Ndjson<W> {
    fn record(&mut self, r: &R) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, r)?;
        self.w.write_all(b"\n")?;
        self.w.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
