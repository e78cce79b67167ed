//! `sensor outbox status`: what is waiting to reach upstream.
//!
//! Reads the outbox without repairing anything, so it is safe next to a
//! running daemon: depth, the oldest record's age, the batch in flight,
//! parked batches with upstream's reason, and the last delivery error.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use netsensor::appliance::upstream::{env_u64, outbox_limits};
use netsensor::report::outbox::{DirStorage, Outbox};
use netsensor::report::reporter::OUTBOX_DIR;
use serde::Serialize;

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct OutboxArgs {
    #[command(subcommand)]
    pub command: OutboxCommand,
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Depth, oldest record, batch in flight, parked batches, last error.
    Status(StatusArgs),
    /// Put parked batches back into delivery (after fixing what upstream
    /// refused); a running daemon picks them up at its next start.
    Requeue(RequeueArgs),
}

#[derive(Args, Debug)]
pub struct RequeueArgs {
    #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// The parked batch id (see `sensor outbox status`); repeatable.
    #[arg(long = "batch", value_name = "ID", required_unless_present = "all")]
    pub batches: Vec<String>,
    /// Every parked batch.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// text or json.
    #[arg(short = 'o', long = "output", default_value = "text")]
    pub format: String,
}

#[derive(Serialize)]
struct Shown {
    dir: String,
    #[serde(flatten)]
    status: netsensor::report::outbox::Status,
    /// When the oldest pending event was stored (RFC 3339).
    oldest_event_at: Option<String>,
}

pub fn run(args: OutboxArgs) -> anyhow::Result<()> {
    match args.command {
        OutboxCommand::Status(s) => status(s),
        OutboxCommand::Requeue(r) => requeue(r),
    }
}

fn requeue(args: RequeueArgs) -> anyhow::Result<()> {
    let dir = args.state_dir.join(OUTBOX_DIR);
    if !dir.is_dir() {
        return Err(UsageError(format!("no outbox in {}", args.state_dir.display())).into());
    }
    let mut storage = DirStorage::open(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let ids: Vec<String> = if args.all {
        Outbox::inspect(DirStorage::open(&dir)?, outbox_limits(None, env_u64))?
            .status()
            .parked_batches
            .into_iter()
            .map(|p| p.id)
            .collect()
    } else {
        args.batches
    };
    let mut missing = Vec::new();
    for id in &ids {
        if netsensor::report::outbox::unpark(&mut storage, id)? {
            println!("requeued {id}");
        } else {
            missing.push(id.clone());
        }
    }
    if !missing.is_empty() {
        return Err(UsageError(format!("no parked batch {}", missing.join(", "))).into());
    }
    Ok(())
}

fn status(args: StatusArgs) -> anyhow::Result<()> {
    let dir = args.state_dir.join(OUTBOX_DIR);
    if !dir.is_dir() {
        return Err(UsageError(format!(
            "no outbox in {}: it appears once `sensor run --upstream URL` has run with this state directory",
            args.state_dir.display()
        ))
        .into());
    }
    let storage = DirStorage::open(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let ob = Outbox::inspect(storage, outbox_limits(None, env_u64))?;
    let oldest_event_at = ob
        .oldest()
        .ok()
        .flatten()
        .and_then(|r| serde_json::from_slice::<Vec<netsensor::report::Event>>(&r.payload).ok())
        .and_then(|events| events.first().map(|e| e.occurred_at.clone()));
    let shown = Shown {
        dir: dir.display().to_string(),
        status: ob.status(),
        oldest_event_at,
    };
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&shown)?),
        "text" => {
            let s = &shown.status;
            println!("outbox {}", shown.dir);
            println!(
                "  depth:       {} record(s), {} event(s), {} bytes",
                s.records, s.events, s.bytes
            );
            let age = shown
                .oldest_event_at
                .as_deref()
                .and_then(|t| time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
                .map(|t| {
                    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
                    match secs {
                        0..=119 => format!(" ({secs} s ago)"),
                        120..=7199 => format!(" ({} min ago)", secs / 60),
                        _ => format!(" ({} h ago)", secs / 3600),
                    }
                })
                .unwrap_or_default();
            println!(
                "  oldest:      {}{age}",
                shown
                    .oldest_event_at
                    .as_deref()
                    .unwrap_or(if s.records == 0 { "-" } else { "unknown" })
            );
            println!("  in flight:   {}", s.in_flight.as_deref().unwrap_or("-"));
            println!("  parked:      {} batch(es)", s.parked_batches.len());
            for p in &s.parked_batches {
                println!(
                    "    {} ({} record(s)): {}",
                    p.id,
                    p.records,
                    p.reason.as_deref().unwrap_or("-")
                );
            }
            if s.corrupt > 0 {
                println!("  corrupt:     {} record(s) set aside (corrupt-* files)", s.corrupt);
            }
            println!("  resync owed: {}", if s.resync_needed { "yes" } else { "no" });
            println!("  last error:  {}", s.last_error.as_deref().unwrap_or("-"));
        }
        other => return Err(UsageError(format!("unknown output format `{other}`: use text or json")).into()),
    }
    Ok(())
}
