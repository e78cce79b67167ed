//! `sensor inventory`: read (and export) the inventory of a state directory.
//!
//! Opens the store read-mostly while the daemon may be writing it: SQLite in
//! WAL mode lets a reader see the last committed run without blocking it.
//! Prints through the same sinks as `sensor scan` (the columns are
//! `netsensor::store::print`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use netsensor::grade::Letter;
use netsensor::model::record::Category;
use netsensor::output::{self, Format};
use netsensor::store::inventory::{Filter, Inventory, Stored};

use crate::cli::UsageError;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InventoryArgs {
    #[command(subcommand)]
    pub command: Option<InventoryCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Subcommand, Debug)]
pub enum InventoryCommand {
    /// Write the whole inventory (every endpoint with its full record, gone ones too).
    Export {
        #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
        state_dir: PathBuf,
        /// ndjson (one endpoint per line), json or csv.
        #[arg(short = 'o', long = "output", default_value = "ndjson")]
        format: String,
        /// Write here instead of standard output (written whole, then renamed into place).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Only this category: discovered, unsecured, automatable.
    #[arg(long)]
    pub category: Option<String>,
    /// Only endpoints graded worse than this letter (A+, A, A-, B … F; T and M rank below F).
    #[arg(long, value_name = "GRADE")]
    pub grade_below: Option<String>,
    /// Only endpoints carrying this tag (from the profile, or `sensor:ID` for reported ones).
    #[arg(long)]
    pub tag: Option<String>,
    /// Only endpoints reported by this sensor (`local` for this sensor's own scans).
    #[arg(long)]
    pub sensor: Option<String>,
    /// Leave out endpoints reported gone.
    #[arg(long)]
    pub active: bool,
    /// table, json or csv.
    #[arg(short = 'o', long = "output", default_value = "table")]
    pub format: String,
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

fn open(state_dir: &Path) -> anyhow::Result<Inventory> {
    let db = state_dir.join("inventory.sqlite");
    if !db.exists() {
        return Err(usage(format!(
            "no inventory in {}: run `sensor run --state-dir {}` first",
            state_dir.display(),
            state_dir.display()
        )));
    }
    Ok(Inventory::open(&db)?)
}

pub fn run(args: InventoryArgs) -> anyhow::Result<()> {
    match args.command {
        Some(InventoryCommand::Export { state_dir, format, out }) => export(&state_dir, &format, out.as_deref()),
        None => list(args.list),
    }
}

fn filter(a: &ListArgs) -> anyhow::Result<Filter> {
    let category = match a.category.as_deref() {
        None => None,
        Some("discovered") => Some(Category::Discovered),
        Some("unsecured") => Some(Category::Unsecured),
        Some("automatable") => Some(Category::Automatable),
        Some(other) => {
            return Err(usage(format!(
                "--category `{other}`: use discovered, unsecured or automatable"
            )));
        }
    };
    let grade_below = match a.grade_below.as_deref() {
        None => None,
        Some(g) => Some(Letter::parse(g).ok_or_else(|| {
            usage(format!(
                "--grade-below `{g}`: use a grade letter: A+, A, A-, B, C, D, E, F, T or M"
            ))
        })?),
    };
    Ok(Filter {
        category,
        grade_below,
        tag: a.tag.clone(),
        sensor: a
            .sensor
            .as_ref()
            .map(|s| if s == "local" { String::new() } else { s.clone() }),
        active_only: a.active,
    })
}

fn list(a: ListArgs) -> anyhow::Result<()> {
    let f = filter(&a)?;
    if !matches!(a.format.as_str(), "table" | "json" | "csv") {
        return Err(usage(format!("-o `{}`: use table, json or csv", a.format)));
    }
    let rows = open(&a.state_dir)?.query(&f)?;
    print(&a.format, std::io::stdout().lock(), &rows)
}

/// Writes `rows` through the output sinks (`format` already checked).
fn print(format: &str, w: impl Write, rows: &[Stored]) -> anyhow::Result<()> {
    let format: Format = format.parse().map_err(usage)?;
    let mut sink = output::sink_of(format, w, None);
    for r in rows {
        sink.record(r)?;
    }
    sink.finish()?;
    Ok(())
}

fn export(state_dir: &Path, format: &str, out: Option<&Path>) -> anyhow::Result<()> {
    if !matches!(format, "ndjson" | "json" | "csv") {
        return Err(usage(format!("-o `{format}`: use ndjson, json or csv")));
    }
    let rows = open(state_dir)?.query(&Filter::default())?;
    let mut buf = Vec::new();
    print(format, &mut buf, &rows)?;
    match out {
        None => std::io::stdout().lock().write_all(&buf)?,
        Some(path) => {
            // Whole or nothing: a reader never sees half an export.
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, &buf).with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("sensor: exported {} endpoint(s) to {}", rows.len(), path.display());
        }
    }
    Ok(())
}
