//! Printing records: table, JSON, NDJSON and CSV.
//!
//! Producing results is separate from showing them (ripgrep's sink idea):
//! a command sends records, a [`Sink`] writes them. NDJSON and CSV stream
//! in arrival order (the scan order is pseudo-random); table and JSON wait
//! for the end and sort. Every command that prints a list prints it through
//! these sinks: what a kind of record shows in each format is its
//! [`Printable`] implementation (a scan's [`EndpointRecord`] here, the
//! inventory's stored endpoint in `store`).

use std::cmp::Ordering;
use std::io::Write;

use serde::Serialize;

use crate::model::record::EndpointRecord;

mod csv;
mod detail;
mod endpoint;
mod json;
mod ndjson;
mod table;

pub use detail::detail;
pub use table::{Align, Column, Width};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Ndjson,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "ndjson" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            other => Err(format!(
                "unknown output format `{other}`: use table, json, ndjson or csv"
            )),
        }
    }
}

/// Where records go, one at a time, then `finish` once.
pub trait Sink<R = EndpointRecord> {
    fn record(&mut self, r: &R) -> std::io::Result<()>;
    fn finish(&mut self) -> std::io::Result<()>;
}

/// What the sinks need of a kind of record. JSON and NDJSON print its
/// serde form; CSV and the table print the columns it names.
pub trait Printable: Serialize + Clone {
    /// The CSV header.
    const CSV_HEADER: &'static [&'static str];
    /// One CSV line, as many cells as [`Self::CSV_HEADER`].
    fn csv_row(&self) -> Vec<String>;
    /// The table's columns.
    const TABLE: &'static [Column];
    /// One table line, as many cells as [`Self::TABLE`].
    fn table_row(&self) -> Vec<String>;
    /// Printed after the table, if anything.
    fn table_footer(_rows: &[Self]) -> Option<String> {
        None
    }
    /// The order of the table and the JSON document (which wait for the
    /// end); equal keeps the order they arrived in.
    fn order(&self, _other: &Self) -> Ordering {
        Ordering::Equal
    }
}

/// What the JSON document says about the scan itself.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScanMeta {
    pub started_at: String,
    pub targets: Vec<String>,
    pub ports: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// The sink for a scan's records; its JSON document carries `meta`.
pub fn sink<'a, W: Write + 'a>(format: Format, w: W, meta: ScanMeta) -> Box<dyn Sink + 'a> {
    sink_of(format, w, Some(meta))
}

/// The sink for any [`Printable`] records. JSON is a document about the
/// scan `scan` when given, else a bare array of the records.
pub fn sink_of<'a, R: Printable + 'a, W: Write + 'a>(
    format: Format,
    w: W,
    scan: Option<ScanMeta>,
) -> Box<dyn Sink<R> + 'a> {
    match format {
        Format::Table => Box::new(table::Table::new(w)),
        Format::Json => Box::new(json::Json::new(w, scan)),
        Format::Ndjson => Box::new(ndjson::Ndjson::new(w)),
        Format::Csv => Box::new(csv::Csv::new(w)),
    }
}

/// Sorts for the sinks that wait for the end (stable: equal stays in
/// arrival order).
fn sort<R: Printable>(rows: &mut [R]) {
    rows.sort_by(R::order);
}
