//! CSV: the header, then one line per record as it arrives (a header alone
//! when there is none), for scripts; or, for a file a person opens in a
//! spreadsheet, every line at the end in the table's order.

use std::io::{self, Write};

use super::{Options, Printable, Sink, sort};

pub(super) struct Csv<W: Write, R> {
    w: ::csv::Writer<W>,
    header: bool,
    options: Options,
    /// Held for the end when sorting.
    rows: Vec<R>,
}

impl<W: Write, R> Csv<W, R> {
    pub fn new(w: W, options: Options) -> Self {
        Csv {
            w: ::csv::Writer::from_writer(w),
            header: false,
            options,
            rows: Vec::new(),
        }
    }

    fn header(&mut self, names: &[&str]) -> io::Result<()> {
        if !self.header {
            self.w.write_record(names)?;
            self.header = true;
        }
        Ok(())
    }
}

impl<W: Write, R: Printable> Sink<R> for Csv<W, R> {
    fn record(&mut self, r: &R) -> io::Result<()> {
        if self.options.sorted {
            self.rows.push(r.clone());
            return Ok(());
        }
        self.header(R::CSV_HEADER)?;
        self.w.write_record(r.csv_row(&self.options.context))?;
        self.w.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        self.header(R::CSV_HEADER)?;
        sort(&mut self.rows);
        for r in std::mem::take(&mut self.rows) {
            self.w.write_record(r.csv_row(&self.options.context))?;
        }
        self.w.flush()
    }
}
