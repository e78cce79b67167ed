//! `sensor inventory`: read (and export) the inventory of a state directory.
//!
//! Opens the store read-mostly while the daemon may be writing it: SQLite in
//! WAL mode lets a reader see the last committed run without blocking it.
//! Prints through the same sinks as `sensor scan` (the columns are
//! `netsensor::store::print` and `print_history`), with the same `-o`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use netsensor::grade::Letter;
use netsensor::model::record::Category;
use netsensor::output::{self, Format, Printable};
use netsensor::store::inventory::{Filter, Inventory, Which};

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
        /// ndjson (one endpoint per line), json, csv, table or html (one self-contained report).
        #[arg(short = 'o', long = "output", default_value = "ndjson")]
        format: String,
        /// Write here instead of standard output (written whole, then renamed into place).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// What happened to an endpoint, run by run: found, certificate replaced,
    /// grade or protocols changed, gone, seen again.
    History {
        /// ADDRESS, ADDRESS:PORT, [IPv6]:PORT or an endpoint id (all endpoints when omitted).
        endpoint: Option<String>,
        /// Only the endpoint reached with this SNI (`--sni ''` for none).
        #[arg(long)]
        sni: Option<String>,
        #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
        state_dir: PathBuf,
        /// table, json, ndjson or csv.
        #[arg(short = 'o', long = "output", default_value = "table")]
        format: String,
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
    /// Only endpoints whose certificate expires within DAYS days, or has expired.
    #[arg(long, value_name = "DAYS")]
    pub expiring_within: Option<u32>,
    /// table, json, ndjson or csv.
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
        Some(InventoryCommand::History {
            endpoint,
            sni,
            state_dir,
            format,
        }) => history(&state_dir, endpoint.as_deref(), sni, &format),
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
    let format = crate::print::format(&a.format)?;
    let inv = open(&a.state_dir)?;
    let mut rows = inv.query(&f)?;
    let options = crate::print::options(true, output::expiry::SOON_DAYS);
    if let Some(days) = a.expiring_within {
        let now = options.context.now;
        rows.retain(|r| output::expiry::expiring_within(&r.record, i64::from(days), now));
    }
    if rows.is_empty() && format == Format::Table {
        println!("{}", empty(&inv, &a)?);
        return Ok(());
    }
    print(format, std::io::stdout().lock(), &rows, options)
}

/// What an empty table says instead of a header alone: why it is empty.
fn empty(inv: &Inventory, a: &ListArgs) -> anyhow::Result<String> {
    let filtered = a.category.is_some()
        || a.grade_below.is_some()
        || a.tag.is_some()
        || a.sensor.is_some()
        || a.active
        || a.expiring_within.is_some();
    let all = inv.query(&Filter::default())?.len();
    if filtered && all > 0 {
        return Ok(format!(
            "no endpoints match (the inventory has {})",
            netsensor::output::human::plural(all as u64, "endpoint")
        ));
    }
    Ok(match inv.latest_run()? {
        None => "no endpoints yet; no run has been stored (is `sensor run` running? `sensor status` asks it)".into(),
        Some(r) => {
            let when = match &r.finished_at {
                Some(f) => format!("started {}, finished {f}", r.started_at),
                None => format!("started {}, not finished", r.started_at),
            };
            format!(
                "no endpoints yet; last run: profile `{}` {when}, found nothing",
                r.profile
            )
        }
    })
}

/// Writes `rows` through the output sinks.
fn print<R: Printable>(format: Format, w: impl Write, rows: &[R], options: output::Options) -> anyhow::Result<()> {
    let mut sink = output::sink_with(format, w, None, options);
    for r in rows {
        sink.record(r)?;
    }
    sink.finish()?;
    Ok(())
}

/// Which endpoints a `history` argument names.
fn which(inv: &Inventory, endpoint: Option<&str>, sni: Option<String>) -> anyhow::Result<Which> {
    let mut w = match endpoint {
        None => Which::default(),
        Some(e) if e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit()) => {
            let found = inv
                .get(e)?
                .ok_or_else(|| usage(format!("no endpoint with id {e} in the inventory")))?;
            Which {
                address: Some(found.key.address),
                port: Some(found.key.port),
                sni: Some(found.key.sni),
            }
        }
        Some(e) => parse_endpoint(e).map_err(usage)?,
    };
    if sni.is_some() {
        w.sni = sni;
    }
    Ok(w)
}

/// `ADDRESS`, `ADDRESS:PORT`, `[IPv6]:PORT` or a bare IPv6 address.
fn parse_endpoint(e: &str) -> Result<Which, String> {
    let bad = || format!("`{e}`: write ADDRESS, ADDRESS:PORT, [IPv6]:PORT or an endpoint id");
    let port = |p: &str| p.parse::<u16>().map_err(|_| bad());
    let (address, port) = if let Some(rest) = e.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']').ok_or_else(bad)?;
        match tail {
            "" => (addr, None),
            t => (addr, Some(port(t.strip_prefix(':').ok_or_else(bad)?)?)),
        }
    } else {
        match e.matches(':').count() {
            0 => (e, None),
            1 => {
                let (a, p) = e.split_once(':').ok_or_else(bad)?;
                (a, Some(port(p)?))
            }
            _ => (e, None),
        }
    };
    let address: std::net::IpAddr = address.parse().map_err(|_| bad())?;
    Ok(Which {
        address: Some(address.to_string()),
        port,
        sni: None,
    })
}

fn history(state_dir: &Path, endpoint: Option<&str>, sni: Option<String>, format: &str) -> anyhow::Result<()> {
    let format = crate::print::format(format)?;
    let inv = open(state_dir)?;
    let w = which(&inv, endpoint, sni)?;
    let events = inv.history(&w)?;
    if events.is_empty() && format == Format::Table {
        match endpoint {
            Some(e) => println!("no history for {e} in the inventory"),
            None => println!("no history yet: no run has found anything"),
        }
        return Ok(());
    }
    let options = crate::print::options(true, output::expiry::SOON_DAYS);
    print(format, std::io::stdout().lock(), &events, options)
}

fn export(state_dir: &Path, format: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let inv = open(state_dir)?;
    let rows = inv.query(&Filter::default())?;
    let mut buf = Vec::new();
    if format == "html" {
        let history = inv.history(&Which::default())?;
        let title = format!("netsensor inventory of {}", state_dir.display());
        let now = time::OffsetDateTime::now_utc();
        let mut report = netsensor::console::report::Report::new(&mut buf, &title, now).with_history(history);
        for r in &rows {
            output::Sink::<netsensor::store::endpoint::Stored>::record(&mut report, r)?;
        }
        output::Sink::<netsensor::store::endpoint::Stored>::finish(&mut report)?;
    } else {
        let format = crate::print::format(format)?;
        print(
            format,
            &mut buf,
            &rows,
            crate::print::options(out.is_none(), output::expiry::SOON_DAYS),
        )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_takes_an_address_with_or_without_a_port() {
        let w = |a: Option<&str>, p: Option<u16>| Which {
            address: a.map(str::to_string),
            port: p,
            sni: None,
        };
        assert_eq!(parse_endpoint("127.0.0.1"), Ok(w(Some("127.0.0.1"), None)));
        assert_eq!(parse_endpoint("127.0.0.1:8443"), Ok(w(Some("127.0.0.1"), Some(8443))));
        assert_eq!(parse_endpoint("[::1]:443"), Ok(w(Some("::1"), Some(443))));
        assert_eq!(parse_endpoint("[::1]"), Ok(w(Some("::1"), None)));
        assert_eq!(parse_endpoint("::1"), Ok(w(Some("::1"), None)));
        for bad in ["host.example", "127.0.0.1:http", "[::1]443", "127.0.0.1:70000"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
