//! JSON: one document at the end, sorted. A scan's document says what was
//! scanned (`schema_version`, `scan`, `endpoints`); other lists are a bare
//! array.

use std::io::{self, Write};

use serde::Serialize;

use super::{Printable, ScanMeta, Sink, sort};
use crate::model::record::SCHEMA_VERSION;

pub(super) struct Json<W, R> {
    w: W,
    scan: Option<ScanMeta>,
    rows: Vec<R>,
}

impl<W, R> Json<W, R> {
    pub fn new(w: W, scan: Option<ScanMeta>) -> Self {
        Json {
            w,
            scan,
            rows: Vec::new(),
        }
    }
}

impl<W: Write, R: Printable> Sink<R> for Json<W, R> {
    fn record(&mut self, r: &R) -> io::Result<()> {
        self.rows.push(r.clone());
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        sort(&mut self.rows);
        match &mut self.scan {
            Some(meta) => {
                meta.finished_at = Some(crate::model::timestamp::rfc3339(time::OffsetDateTime::now_utc()));
                #[derive(Serialize)]
                struct Doc<'a, R> {
                    schema_version: &'static str,
                    scan: &'a ScanMeta,
                    endpoints: &'a [R],
                }
                let doc = Doc {
                    schema_version: SCHEMA_VERSION,
                    scan: meta,
                    endpoints: &self.rows,
                };
                serde_json::to_writer_pretty(&mut self.w, &doc)?;
            }
            None => serde_json::to_writer_pretty(&mut self.w, &self.rows)?,
        }
        self.w.write_all(b"\n")?;
        self.w.flush()
    }
}
