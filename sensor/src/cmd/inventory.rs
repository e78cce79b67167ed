//! `sensor inventory`: read (and export) the inventory of a state directory.
//!
//! Opens the store read-mostly while the daemon may be writing it: SQLite in
//! WAL mode lets a reader see the last committed run without blocking it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use netsensor::grade::Letter;
use netsensor::model::record::Category;
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
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match a.format.as_str() {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        "csv" => write_csv(&mut out, &rows)?,
        _ => table(&mut out, &rows)?,
    }
    Ok(())
}

fn grade(s: &Stored) -> String {
    s.record
        .grade
        .as_ref()
        .map(|g| g.letter.as_str().to_string())
        .unwrap_or_default()
}

fn table(out: &mut impl Write, rows: &[Stored]) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<40} {:>5}  {:<24} {:<11} {:<5} {:<20} LAST SEEN",
        "ADDRESS", "PORT", "SNI", "CATEGORY", "GRADE", "PROFILE"
    )?;
    for r in rows {
        let source = if r.key.sensor.is_empty() {
            r.profile.clone()
        } else {
            format!("sensor:{}", r.key.sensor)
        };
        let note = match (&r.gone_at, r.missed_runs) {
            (Some(at), _) => format!(" (gone since {at})"),
            (None, n) if n > 0 => format!(" (missed {n} runs)"),
            _ => String::new(),
        };
        writeln!(
            out,
            "{:<40} {:>5}  {:<24} {:<11} {:<5} {:<20} {}{}",
            r.key.address,
            r.key.port,
            r.key.sni,
            r.category.as_str(),
            grade(r),
            source,
            r.last_seen,
            note
        )?;
    }
    Ok(())
}

const CSV_HEADER: [&str; 16] = [
    "id",
    "sensor",
    "address",
    "port",
    "sni",
    "category",
    "grade",
    "profile",
    "first_seen",
    "last_seen",
    "gone_at",
    "tags",
    "service",
    "protocol",
    "subject_cn",
    "expires",
];

fn write_csv(out: &mut impl Write, rows: &[Stored]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for r in rows {
        let cert = r.record.certificate.as_ref();
        w.write_record([
            r.id.as_str(),
            &r.key.sensor,
            &r.key.address,
            &r.key.port.to_string(),
            &r.key.sni,
            r.category.as_str(),
            &grade(r),
            &r.profile,
            &r.first_seen,
            &r.last_seen,
            r.gone_at.as_deref().unwrap_or(""),
            &r.tags.join(";"),
            r.record.service.as_deref().unwrap_or(""),
            r.record
                .handshake
                .as_ref()
                .and_then(|t| t.protocol.as_deref())
                .unwrap_or(""),
            cert.and_then(|c| c.common_name.as_deref()).unwrap_or(""),
            cert.map(|c| c.valid_to.as_str()).unwrap_or(""),
        ])?;
    }
    w.flush()?;
    Ok(())
}

fn export(state_dir: &Path, format: &str, out: Option<&Path>) -> anyhow::Result<()> {
    if !matches!(format, "ndjson" | "json" | "csv") {
        return Err(usage(format!("-o `{format}`: use ndjson, json or csv")));
    }
    let rows = open(state_dir)?.query(&Filter::default())?;
    let mut buf = Vec::new();
    match format {
        "json" => writeln!(buf, "{}", serde_json::to_string_pretty(&rows)?)?,
        "csv" => write_csv(&mut buf, &rows)?,
        _ => {
            for r in &rows {
                writeln!(buf, "{}", serde_json::to_string(r)?)?;
            }
        }
    }
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
