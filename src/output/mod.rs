//! Printing records: table, JSON, NDJSON and CSV.
//!
//! Producing results is separate from showing them (ripgrep's sink idea):
//! a command sends records, a [`Sink`] writes them. NDJSON and CSV stream
//! in arrival order (the scan order is pseudo-random) unless asked to sort
//! (a CSV file, read by a person in a spreadsheet); table and JSON wait
//! for the end and sort. Every command that prints a list prints it through
//! these sinks: what a kind of record shows in each format is its
//! [`Printable`] implementation (a scan's [`EndpointRecord`] here, the
//! inventory's stored endpoint and its history in `store`).

use std::cmp::Ordering;
use std::io::Write;

use serde::Serialize;

use crate::model::record::EndpointRecord;

mod csv;
mod detail;
mod endpoint;
pub mod expiry;
pub mod human;
mod json;
mod ndjson;
pub mod style;
mod table;

pub use detail::detail;
pub use style::Style;
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

/// What the columns of a line may depend on besides the record: the clock
/// (days to expiry) and what counts as soon.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    pub now: time::OffsetDateTime,
    /// A certificate expiring within this many days is "soon" (coloured).
    pub soon_days: i64,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            now: time::OffsetDateTime::now_utc(),
            soon_days: expiry::SOON_DAYS,
        }
    }
}

/// How a sink prints, beyond its format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub context: Context,
    /// Colour the table (a terminal that wants it: [`style::wanted`]).
    pub colour: bool,
    /// Sort CSV like the table, written at the end (a file rather than a
    /// stream someone watches).
    pub sorted: bool,
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
    fn csv_row(&self, cx: &Context) -> Vec<String>;
    /// The table's columns.
    const TABLE: &'static [Column];
    /// One table line, as many cells as [`Self::TABLE`].
    fn table_row(&self, cx: &Context) -> Vec<String>;
    /// The colour of each cell of [`Self::table_row`] (plain when shorter).
    fn table_styles(&self, _cx: &Context) -> Vec<Style> {
        Vec::new()
    }
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
    sink_with(format, w, scan, Options::default())
}

/// [`sink_of`] with [`Options`] (colour, sorted CSV, the clock).
pub fn sink_with<'a, R: Printable + 'a, W: Write + 'a>(
    format: Format,
    w: W,
    scan: Option<ScanMeta>,
    options: Options,
) -> Box<dyn Sink<R> + 'a> {
    match format {
        Format::Table => Box::new(table::Table::new(w, options)),
        Format::Json => Box::new(json::Json::new(w, scan)),
        Format::Ndjson => Box::new(ndjson::Ndjson::new(w)),
        Format::Csv => Box::new(csv::Csv::new(w, options)),
    }
}

/// Sorts for the sinks that wait for the end (stable: equal stays in
/// arrival order).
fn sort<R: Printable>(rows: &mut [R]) {
    rows.sort_by(R::order);
}
