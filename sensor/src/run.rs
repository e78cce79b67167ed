//! `sensor run`: the appliance. Runs every profile on its schedule, keeps the
//! inventory, reloads profiles on SIGHUP, drains on SIGTERM.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::inventory::{Change, DiffPolicy, Inventory, Run};
use netsensor::profile::{self, Profile};
use netsensor::record::rfc3339;
use netsensor::scan::{self, ScanOptions};
use netsensor::schedule::{self, Due};
use time::OffsetDateTime;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A scan profile (TOML); repeatable. Without any, every `*.toml` in --profiles-dir.
    #[arg(long = "profile", value_name = "FILE")]
    pub profiles: Vec<PathBuf>,
    /// Where profiles live when no --profile is given.
    #[arg(long, default_value = "/etc/sensor/profiles.d", value_name = "DIR")]
    pub profiles_dir: PathBuf,
    /// The sensor's state: the inventory database.
    #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Trust this PEM bundle of private CAs too (repeatable).
    #[arg(long = "ca-bundle", value_name = "FILE")]
    pub ca_bundles: Vec<PathBuf>,
    /// Consecutive complete runs without an endpoint before it is reported gone.
    #[arg(long, default_value_t = 3)]
    pub gone_after: u32,
    /// Seconds to let running scans finish after SIGTERM.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// Every profile, validated; one bad profile refuses them all.
fn load_profiles(args: &RunArgs) -> anyhow::Result<Vec<Profile>> {
    let paths: Vec<PathBuf> = if args.profiles.is_empty() {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&args.profiles_dir)
            .with_context(|| format!("cannot read the profiles directory {}", args.profiles_dir.display()))
            .map_err(usage)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        found.sort();
        found
    } else {
        args.profiles.clone()
    };
    if paths.is_empty() {
        return Err(usage(format!(
            "no scan profiles: give --profile FILE or put *.toml profiles in {}",
            args.profiles_dir.display()
        )));
    }
    let mut profiles = Vec::new();
    let mut errors = Vec::new();
    for p in &paths {
        match profile::load(p) {
            Ok(prof) => profiles.push(prof),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(usage(errors.join("\n")));
    }
    let mut names = std::collections::HashSet::new();
    if let Some(dup) = profiles.iter().find(|p| !names.insert(p.name.clone())) {
        return Err(usage(format!(
            "two profiles are named `{}`: names must be unique",
            dup.name
        )));
    }
    Ok(profiles)
}

struct Running {
    handle: JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut profiles = load_profiles(&args)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create the state directory {}", args.state_dir.display()))?;
    let db_path = args.state_dir.join("inventory.sqlite");
    let inventory = Arc::new(Mutex::new(Inventory::open(&db_path)?));
    let trust = Arc::new(crate::cli::load_trust(&args.ca_bundles)?);
    let base = ScanOptions {
        trust,
        ..ScanOptions::default()
    };
    let policy = DiffPolicy {
        gone_after: args.gone_after.max(1),
        ..DiffPolicy::default()
    };
    netsensor::portscan::raise_fd_limit();

    eprintln!(
        "sensor {} running: state {}",
        env!("CARGO_PKG_VERSION"),
        args.state_dir.display()
    );
    for p in &profiles {
        eprintln!("  profile {}", p.summary());
    }

    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    // Profiles without a schedule run once per process start.
    let mut ran_once: std::collections::HashSet<String> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => {
                match load_profiles(&args) {
                    Ok(new) => {
                        eprintln!("sensor: SIGHUP: {} profile(s) reloaded (running scans continue)", new.len());
                        for p in &new {
                            eprintln!("  profile {}", p.summary());
                        }
                        profiles = new;
                    }
                    Err(e) => eprintln!("sensor: SIGHUP: profiles not reloaded, keeping the previous ones:\n{e:#}"),
                }
            }
        }
        running.retain(|_, r| !r.handle.is_finished());
        let now = OffsetDateTime::now_utc();
        for p in &profiles {
            if let Some(r) = running.get(&p.name) {
                // A run still going when its window closes stops here and starts again in the next window.
                if p.schedule.as_ref().is_some_and(|s| !schedule::may_run(s, now)) && !r.stop.load(Ordering::Relaxed) {
                    eprintln!("sensor: profile `{}`: window closed, stopping the run", p.name);
                    r.stop.store(true, Ordering::Relaxed);
                }
                continue;
            }
            let due = match &p.schedule {
                None if ran_once.contains(&p.name) => Due::Never,
                None => Due::Now,
                Some(s) => {
                    let last = inventory
                        .lock()
                        .ok()
                        .and_then(|inv| inv.last_run(&p.name).ok().flatten())
                        .and_then(|t| OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok());
                    schedule::due(s, last, now)
                }
            };
            if due != Due::Now {
                continue;
            }
            ran_once.insert(p.name.clone());
            let stop = Arc::new(AtomicBool::new(false));
            let handle = tokio::spawn(run_profile(
                p.clone(),
                base.clone(),
                stop.clone(),
                inventory.clone(),
                policy,
            ));
            running.insert(p.name.clone(), Running { handle, stop });
        }
    }

    eprintln!(
        "sensor: stopping: {} scan(s) running, up to {}s to finish",
        running.len(),
        args.grace
    );
    for r in running.values() {
        r.stop.store(true, Ordering::Relaxed);
    }
    let drain = async {
        for (_, r) in running {
            let _ = r.handle.await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(args.grace), drain)
        .await
        .is_err()
    {
        eprintln!("sensor: grace period over; exiting with scans unfinished");
    }
    Ok(())
}

async fn run_profile(
    profile: Profile,
    base: ScanOptions,
    stop: Arc<AtomicBool>,
    inventory: Arc<Mutex<Inventory>>,
    policy: DiffPolicy,
) {
    let started = rfc3339(OffsetDateTime::now_utc());
    let seed = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    tracing::info!(profile = %profile.name, "run started");
    let records = match netsensor::job::run(&profile, &base, seed, stop.clone(), scan::resolve).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sensor: {e}");
            return;
        }
    };
    let complete = !stop.load(Ordering::Relaxed);
    let finished = rfc3339(OffsetDateTime::now_utc());
    let name = profile.name.clone();
    let tags = profile.tags.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut inv = inventory
            .lock()
            .map_err(|_| anyhow::anyhow!("inventory lock poisoned"))?;
        let run = Run {
            profile: &name,
            started_at: &started,
            finished_at: &finished,
            records: &records,
            tags: &tags,
            complete,
        };
        let changes = inv.record_run(&run, &policy)?;
        Ok::<_, anyhow::Error>((changes, records.len()))
    })
    .await;
    match outcome {
        Ok(Ok((changes, n))) => {
            for c in &changes {
                match c {
                    Change::New { key } => eprintln!(
                        "sensor: `{}`: new {}:{} {}",
                        profile.name, key.address, key.port, key.sni
                    ),
                    Change::Changed { key, reasons } => eprintln!(
                        "sensor: `{}`: changed {}:{} {}: {}",
                        profile.name,
                        key.address,
                        key.port,
                        key.sni,
                        reasons.join("; ")
                    ),
                    Change::Gone { key, missed_runs } => eprintln!(
                        "sensor: `{}`: gone {}:{} {} (not seen in {missed_runs} runs)",
                        profile.name, key.address, key.port, key.sni
                    ),
                }
            }
            eprintln!(
                "sensor: `{}`: run {}: {n} endpoint(s), {} change(s)",
                profile.name,
                if complete { "finished" } else { "stopped early" },
                changes.len()
            );
        }
        Ok(Err(e)) => eprintln!("sensor: `{}`: cannot store the run: {e:#}", profile.name),
        Err(e) => eprintln!("sensor: `{}`: {e}", profile.name),
    }
}

/// `sensor inventory`: read the inventory of a state directory.
#[derive(Args, Debug)]
pub struct InventoryArgs {
    #[arg(long, default_value = "/var/lib/sensor", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Only this category: discovered, unsecured, automatable.
    #[arg(long)]
    pub category: Option<String>,
    /// table or json.
    #[arg(short = 'o', long = "output", default_value = "table")]
    pub format: String,
}

pub fn inventory(args: InventoryArgs) -> anyhow::Result<()> {
    use netsensor::record::Category;
    let category = match args.category.as_deref() {
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
    let db = args.state_dir.join("inventory.sqlite");
    if !Path::new(&db).exists() {
        return Err(usage(format!(
            "no inventory in {}: run `sensor run --state-dir {}` first",
            args.state_dir.display(),
            args.state_dir.display()
        )));
    }
    let inv = Inventory::open(&db)?;
    let rows = inv.list(category)?;
    match args.format.as_str() {
        "json" => println!("{}", serde_json::to_string_pretty(&rows)?),
        "table" => {
            println!(
                "{:<40} {:>5}  {:<24} {:<11} {:<5} {:<20} LAST SEEN",
                "ADDRESS", "PORT", "SNI", "CATEGORY", "GRADE", "PROFILE"
            );
            for r in &rows {
                let grade = r
                    .record
                    .grade
                    .as_ref()
                    .map(|g| g.letter.to_string())
                    .unwrap_or_default();
                println!(
                    "{:<40} {:>5}  {:<24} {:<11} {:<5} {:<20} {}{}",
                    r.key.address,
                    r.key.port,
                    r.key.sni,
                    r.category.as_str(),
                    grade,
                    r.profile,
                    r.last_seen,
                    if r.missed_runs > 0 {
                        format!(" (missed {} runs)", r.missed_runs)
                    } else {
                        String::new()
                    }
                );
            }
        }
        other => return Err(usage(format!("unknown output format `{other}`: use table or json"))),
    }
    Ok(())
}
