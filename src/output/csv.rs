//! CSV: the header, then one line per record as it arrives (a header alone
//! when there is none), for spreadsheets and scripts.

use std::io::{self, Write};

use super::{Printable, Sink};

pub(super) struct Csv<W: Write> {
    w: ::csv::Writer<W>,
    header: bool,
}

impl<W: Write> Csv<W> {
    pub fn new(w: W) -> Self {
        Csv {
            w: ::csv::Writer::from_writer(w),
            header: false,
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

impl<W: Write, R: Printable> Sink<R> for Csv<W> {
    fn record(&mut self, r: &R) -> io::Result<()> {
        self.header(R::CSV_HEADER)?;
        self.w.write_record(r.csv_row())?;
        self.w.flush()
    }
    fn finish(&mut self) -> io::Result<()> {
        self.header(R::CSV_HEADER)?;
        self.w.flush()
    }
}
