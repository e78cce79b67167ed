//! `sensor scan`: targets once, records printed as they come (table, JSON,
//! NDJSON, CSV), with a progress bar on a terminal and checkpoints to resume.
//! Also the scan set-up `sensor demo` and `sensor grade` share (trust stores).
//!
//! A checkpointed scan keeps its records beside the checkpoint
//! ([`crate::parts`]), so the part that finishes a resumed scan prints the
//! whole result, not only what it found itself.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::discover::checkpoint::{Checkpoint, Tracker};
use netsensor::discover::connect::{self, PortscanConfig, Progress};
use netsensor::discover::hosts::HostDiscovery;
use netsensor::discover::pacing::Rate;
use netsensor::discover::syn::ScanType;
use netsensor::discover::targets::{self, PortSet, ScanPlan, Shard, TargetSet, TargetSpec};
use netsensor::grade::{Policy, TrustConfig, TrustStores};
use netsensor::model::record::EndpointRecord;
use netsensor::output::{self, Format, ScanMeta};
use netsensor::probe::starttls::dialogue::StarttlsMode;
use netsensor::scan::trust::TrustLater;
use netsensor::scan::{self, ScanOptions};

use crate::bar;
use crate::cli::usage;
use crate::parts::{self, Parts};

#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    /// Addresses, CIDRs (127.0.0.0/24, ::1), ranges (127.0.2.1-127.0.2.9 or 127.0.2.1-9) and host names.
    pub targets: Vec<String>,
    /// Read more targets from FILE, one or more per line, `#` comments (also `-iL FILE`).
    #[arg(long = "input-list", value_name = "FILE")]
    pub input_list: Vec<PathBuf>,
    /// Ports: 443, 1-1024, `default` (25,110,143,389,443,465,587,636,993,995,3389,8443), `all`, or a comma list.
    #[arg(short, long, default_value = "default")]
    pub ports: String,
    /// Addresses, CIDRs or ranges never to probe (repeatable, comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Read exclusions from FILE.
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Vec<PathBuf>,
    /// More blocklists (exclusion syntax); /etc/sensor/blocklist is always applied when it exists.
    #[arg(long, value_name = "FILE")]
    pub blocklist: Vec<PathBuf>,
    /// Discovery engine: `syn` (half-open probes over raw sockets; needs root or CAP_NET_RAW),
    /// `connect` (the kernel's connect, no privilege), or `auto` (syn when permitted, else connect).
    #[arg(long, default_value = "auto", value_name = "syn|connect|auto")]
    pub scan_type: ScanType,
    /// Probes per second across the scan (SYN: packets per second, retries included): `auto` learns
    /// it (starts high, grows while answers keep up, backs off on loss); a number is a hard ceiling;
    /// 0 removes the limit.
    #[arg(long, default_value = "auto", value_name = "auto|N")]
    pub rate: Rate,
    /// Probe every address's ports, without asking first which hosts are up (also `-Pn`, nmap's
    /// name). By default host discovery runs on ranges of more than 256 addresses whose port list
    /// is longer than the liveness probes (SYN to 443,80,22,3389 and ICMP echo; connects without
    /// raw sockets): a host that answers none of them is reported down and its ports not probed.
    #[arg(long)]
    pub no_host_discovery: bool,
    /// Per-host probe budget (SYN): at most N probes per second to any one address; 0 = none.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub host_rate: u32,
    /// Connections in flight at once (capped by the open-file limit).
    #[arg(long, default_value_t = PortscanConfig::default().max_in_flight)]
    pub max_in_flight: usize,
    /// Deadline for one TCP connect, in milliseconds.
    #[arg(long, default_value_t = 1500, value_name = "MS")]
    pub connect_timeout: u64,
    /// Deadline for one TLS handshake, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub timeout: u64,
    /// Extra attempts for ports that do not answer (SYN: extra copies of each probe).
    #[arg(long, default_value_t = 0)]
    pub retries: u8,
    /// Connect-engine threads (event loops); 0 means one per core.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Seed of the pseudo-random scan order (same seed, same order).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Scan only shard I of N (1-based), e.g. 2/4; shards are disjoint and together cover the scan.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Save progress to FILE every 2 s and when the scan stops (Ctrl-C included), atomically.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Continue the scan saved in FILE: nothing done is probed again, nothing left is skipped.
    /// Needs the same targets, ports, exclusions and --shard (the seed is taken from FILE);
    /// progress is saved back to FILE unless --checkpoint names another.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Also list closed and filtered ports.
    #[arg(long)]
    pub show_closed: bool,
    /// Trust this PEM bundle of private CAs too when validating chains (repeatable).
    #[arg(long = "ca-bundle", value_name = "FILE")]
    pub ca_bundles: Vec<PathBuf>,
    /// Report certificates that expire within this many days.
    #[arg(long, default_value_t = 30, value_name = "DAYS")]
    pub expiry_warning_days: u32,
    /// Discovery and handshake only: no cipher enumeration (much faster on large ranges).
    #[arg(long)]
    pub no_enum: bool,
    /// Do not grade (no chain validation, rating or findings).
    #[arg(long)]
    pub no_grade: bool,
    /// Skip the active vulnerability checks (Heartbleed, CCS injection, ROBOT, Ticketbleed, renegotiation).
    #[arg(long)]
    pub no_vulns: bool,
    /// Skip the TLS extras (client authentication, resumption, early data, certificate compression,
    /// TLS 1.3 signature schemes, every certificate deployment): ~17 fewer handshakes per endpoint.
    #[arg(long)]
    pub no_tls_extras: bool,
    /// Time budget of one endpoint's examination (enumeration, `GET /`, active checks, extras), e.g.
    /// `60s`, `500ms`, `5m` (at most 1h), or `none`; what is not finished then is named in the
    /// record's `not_probed` (`vulnerabilities: budget`).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub endpoint_budget: String,
    #[command(flatten)]
    pub revocation: RevocationFlags,
    /// STARTTLS: `auto` (by port, then by banner), a protocol for every port (smtp, imap, pop3, ftp,
    /// ldap, postgres, xmpp, xmpp-server, mysql, rdp), or `none` (implicit TLS only).
    #[arg(long, default_value = "auto", value_name = "auto|PROTO|none")]
    pub starttls: StarttlsMode,
    /// Also send each name in FILE (one per line, `#` comments) as SNI to every TLS endpoint found:
    /// one more record per (address, port, name).
    #[arg(long, value_name = "FILE")]
    pub sni_list: Option<PathBuf>,
    /// Also send each DNS name of the first certificate's SANs as SNI (one record per virtual host).
    #[arg(long)]
    pub sni_from_sans: bool,
    /// Only print endpoints whose certificate expires within DAYS days, or has expired.
    #[arg(long, value_name = "DAYS")]
    pub expiring_within: Option<u32>,
    /// Output format: table, json, ndjson, csv, html (one self-contained report file).
    #[arg(short = 'o', long = "output", default_value = "table")]
    pub format: String,
    /// Write results to FILE instead of standard output (CSV sorted like the table).
    #[arg(long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// Everything a scan needs, validated before any packet is sent.
pub struct Prepared {
    pub plan: Arc<ScanPlan>,
    /// Checkpointing: the live progress and where to save it.
    pub checkpoint: Option<(Arc<Tracker>, PathBuf)>,
    pub options: ScanOptions,
    pub format: Format,
    /// `-o html`: the self-contained HTML report instead of `format`.
    pub html: bool,
    pub meta: ScanMeta,
    /// How the sink prints (colour, sorted CSV, what expires soon).
    pub print: output::Options,
    /// `--expiring-within`: only records whose certificate expires within these days.
    pub expiring_within: Option<i64>,
    /// A checkpointed scan's records, kept beside the checkpoint (with the
    /// earlier parts' when resumed).
    pub parts: Option<Parts>,
    /// `Some`: keep every record here too, returned by [`run_scan`]
    /// (`sensor demo --serve` shows them in its console).
    pub kept: Option<Vec<EndpointRecord>>,
}

pub fn prepare(args: &ScanArgs) -> anyhow::Result<Prepared> {
    let html = args.format == "html";
    let format: Format = if html {
        Format::Json
    } else {
        args.format.parse().map_err(|e| usage(format!("{e} (or html)")))?
    };
    let mut specs: Vec<TargetSpec> = Vec::new();
    for t in &args.targets {
        for token in t.split(',').filter(|s| !s.is_empty()) {
            specs.push(token.parse().map_err(usage)?);
        }
    }
    for file in &args.input_list {
        specs.extend(targets::read_target_file(file).map_err(usage)?);
    }
    let mut exclude: Vec<TargetSpec> = Vec::new();
    for t in args.exclude.iter().filter(|s| !s.is_empty()) {
        exclude.push(t.parse().map_err(usage)?);
    }
    for file in &args.exclude_file {
        exclude.extend(targets::read_target_file(file).map_err(usage)?);
    }
    exclude.extend(targets::read_blocklist(std::path::Path::new(targets::SYSTEM_BLOCKLIST)).map_err(usage)?);
    for file in &args.blocklist {
        exclude.extend(targets::read_target_file(file).map_err(usage)?);
    }
    let ports: PortSet = args.ports.parse().map_err(usage)?;
    let shard: Option<Shard> = args.shard.as_deref().map(str::parse).transpose().map_err(usage)?;
    if args.max_in_flight == 0 {
        return Err(usage("--max-in-flight must be at least 1"));
    }
    if args.connect_timeout == 0 || args.timeout == 0 {
        return Err(usage("--connect-timeout and --timeout must be above 0 ms"));
    }
    let set = TargetSet::new(&specs, &exclude, scan::resolve).map_err(usage)?;
    let resumed = match &args.resume {
        Some(path) => Some(Checkpoint::load(path).map_err(usage)?),
        None => None,
    };
    let seed = args
        .seed
        .or(resumed.as_ref().map(|cp| cp.seed))
        .unwrap_or_else(netsensor::model::ids::random_u64);
    let meta = ScanMeta {
        started_at: netsensor::model::timestamp::rfc3339(time_now()),
        targets: specs.iter().map(spec_text).collect(),
        ports: ports.to_string(),
        finished_at: None,
    };
    let plan = ScanPlan::new(set, ports, seed).map_err(usage)?.with_shard(shard);
    let checkpoint = match (&resumed, &args.resume, &args.checkpoint) {
        (Some(cp), Some(from), to) => {
            let tracker = Tracker::resume(&plan, cp, from).map_err(usage)?;
            Some((Arc::new(tracker), to.clone().unwrap_or_else(|| from.clone())))
        }
        (_, _, Some(to)) => Some((Arc::new(Tracker::new(&plan)), to.clone())),
        _ => None,
    };
    let parts = match &checkpoint {
        Some((_, to)) => Some(Parts::open(args.resume.as_deref(), to)?),
        None => None,
    };
    let options = ScanOptions {
        portscan: PortscanConfig {
            rate: args.rate,
            max_in_flight: args.max_in_flight,
            connect_timeout: Duration::from_millis(args.connect_timeout),
            retries: args.retries,
            threads: args.threads,
        },
        scan_type: args.scan_type,
        per_host_rate: args.host_rate,
        handshake_timeout: Duration::from_millis(args.timeout),
        show_closed: args.show_closed,
        enumerate: !args.no_enum,
        grade: !args.no_grade,
        vulnerabilities: !args.no_vulns,
        tls_extras: !args.no_tls_extras,
        host_discovery: if args.no_host_discovery {
            HostDiscovery::Off
        } else {
            HostDiscovery::Auto
        },
        endpoint_budget: endpoint_budget(&args.endpoint_budget)?,
        starttls: args.starttls,
        sni_names: match &args.sni_list {
            Some(file) => read_sni_list(file)?,
            None => Vec::new(),
        },
        sni_from_sans: args.sni_from_sans,
        // Loaded beside the port scan; grading waits for it.
        trust: Arc::new(TrustStores::empty()),
        trust_later: Some(trust_later(&args.ca_bundles)?),
        revocation: args.revocation.checker()?,
        policy: Policy {
            expiry_warning_days: args.expiry_warning_days,
            ..Policy::default()
        },
        ..ScanOptions::default()
    };
    let print = crate::print::options(args.out.is_none(), i64::from(args.expiry_warning_days));
    Ok(Prepared {
        plan: Arc::new(plan),
        checkpoint,
        options,
        format,
        html,
        meta,
        print,
        expiring_within: args.expiring_within.map(i64::from),
        parts,
        kept: None,
    })
}

/// `--endpoint-budget`: a duration up to an hour, or `none`.
pub fn endpoint_budget(text: &str) -> anyhow::Result<Option<Duration>> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    netsensor::appliance::profile::parse_duration_within(text, netsensor::appliance::profile::MAX_ENDPOINT_BUDGET)
        .map(Some)
        .map_err(|e| usage(format!("--endpoint-budget: {e}; write e.g. 60s, 500ms, 5m or none")))
}

/// [`load_trust`] on a thread of its own: the bundles are read (and refused)
/// now, the rest while the scan starts.
pub fn trust_later(ca_bundles: &[PathBuf]) -> anyhow::Result<TrustLater> {
    let config = TrustConfig {
        ca_bundles: ca_bundles.to_vec(),
        ..TrustConfig::default()
    };
    TrustLater::start(&config).map_err(|e| usage(format!("--ca-bundle: {e}")))
}

/// Web roots, the system store, and the user's private CA bundles.
/// The live revocation check's flags, shared by `sensor scan` and `sensor grade`.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RevocationFlags {
    /// Check each graded leaf's revocation live: OCSP to its AIA responder, else the CRL from its
    /// distribution point (5 s deadline; 64 KiB / 10 MiB caps; one fetch per issuer and URL). Only
    /// to responders `--revocation-allow` covers; anything else is reported as not checked.
    #[arg(long)]
    pub revocation: bool,
    /// Allow revocation fetches (HTTP(S) only) to this network, address or host name
    /// (repeatable): every address a responder's host resolves to must be allowed.
    #[arg(long = "revocation-allow", value_name = "CIDR_OR_HOST", requires = "revocation")]
    pub revocation_allow: Vec<String>,
}

impl RevocationFlags {
    pub fn checker(&self) -> anyhow::Result<Option<Arc<netsensor::scan::revocation::Checker>>> {
        netsensor::scan::revocation::Checker::configured(self.revocation, &self.revocation_allow)
            .map_err(|e| usage(format!("--revocation-allow: {e}")))
    }
}

pub fn load_trust(ca_bundles: &[PathBuf]) -> anyhow::Result<TrustStores> {
    let config = TrustConfig {
        ca_bundles: ca_bundles.to_vec(),
        ..TrustConfig::default()
    };
    let (stores, warnings) = TrustStores::load(&config).map_err(|e| usage(format!("--ca-bundle: {e}")))?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(stores)
}

/// Names for `--sni-list`: one per line, `#` comments; a bad name is invalid input.
fn read_sni_list(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(file).map_err(|e| usage(format!("{}: {e}", file.display())))?;
    let mut names = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        let valid = name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid {
            return Err(usage(format!(
                "{}:{}: `{name}` is not a host name to send as SNI",
                file.display(),
                n + 1
            )));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn spec_text(s: &TargetSpec) -> String {
    match s {
        TargetSpec::Net(n) if n.prefix() == if n.is_ipv4() { 32 } else { 128 } => n.ip().to_string(),
        TargetSpec::Net(n) => n.to_string(),
        TargetSpec::Range { first, last } => format!("{first}-{last}"),
        TargetSpec::Host(h) => h.clone(),
    }
}

pub async fn run(args: ScanArgs) -> anyhow::Result<()> {
    let prepared = prepare(&args)?;
    let out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create output file {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    run_scan(prepared, out, !args.no_progress).await.map(drop)
}

/// Run a prepared scan, printing records through the chosen sink; the
/// records kept when `p.kept` asked for them.
pub async fn run_scan(
    mut p: Prepared,
    out: Box<dyn Write + Send>,
    progress_bar: bool,
) -> anyhow::Result<Vec<EndpointRecord>> {
    connect::raise_fd_limit();
    let progress = Arc::new(Progress::default());
    let bar = bar::start(p.plan.len(), progress_bar);
    let deadlines = bar::Deadlines {
        connect: p.options.portscan.connect_timeout,
        handshake: p.options.handshake_timeout,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    // Ctrl-C stops launching probes; what is in flight finishes and is printed.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("sensor: interrupted, finishing probes in flight (Ctrl-C again to quit now)");
                stop.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let mut saver = None;
    let scan_task = match &p.checkpoint {
        Some((tracker, path)) => {
            // Save every 2 s; the final save comes after the last record is written.
            let (saved, path) = (tracker.clone(), path.clone());
            saver = Some(tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(2));
                every.tick().await;
                loop {
                    every.tick().await;
                    let (cp, path) = (saved.snapshot(), path.clone());
                    match tokio::task::spawn_blocking(move || cp.save(&path)).await {
                        Ok(Err(e)) => tracing::warn!("{e}"),
                        Err(_) => return,
                        Ok(Ok(())) => {}
                    }
                }
            }));
            tokio::spawn(scan::run_tracked(
                p.plan.clone(),
                p.options.clone(),
                progress.clone(),
                stop,
                tracker.clone(),
                tx,
            ))
        }
        None => tokio::spawn(scan::run_until(
            p.plan.clone(),
            0,
            p.options.clone(),
            progress.clone(),
            stop,
            tx,
        )),
    };
    let mut sink: Box<dyn output::Sink + '_> = if p.html {
        let title = format!("netsensor scan of {}", p.meta.targets.join(", "));
        Box::new(netsensor::console::report::Report::new(
            out,
            &title,
            p.print.context.now,
        ))
    } else {
        output::sink_with(p.format, out, Some(p.meta.clone()), p.print)
    };
    let now = p.print.context.now;
    let shown = |r: &EndpointRecord| {
        p.expiring_within
            .is_none_or(|d| output::expiry::expiring_within(r, d, now))
    };
    // The earlier parts of a resumed scan first: the result is the whole scan.
    let earlier = p.parts.as_ref().map_or(0, Parts::earlier);
    if let Some(parts) = &mut p.parts {
        for r in parts.take_earlier() {
            if shown(&r) {
                sink.record(&r).context("cannot write results")?;
            }
        }
    }
    let mut found = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            rec = rx.recv() => match rec {
                Some(r) => {
                    found += 1;
                    if let Some(parts) = &mut p.parts {
                        parts.keep(&r);
                    }
                    if let Some(kept) = &mut p.kept {
                        kept.push(r.clone());
                    }
                    if shown(&r) {
                        sink.record(&r).context("cannot write results")?;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if let Some(bar) = &bar {
                    bar::update(bar, &progress, found, &deadlines);
                }
            }
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let result = scan_task.await.context("scan task failed")?;
    sink.finish().context("cannot write results")?;
    if let Some((tracker, path)) = &p.checkpoint {
        if let Some(saver) = saver {
            // An older snapshot must not land after the final one.
            saver.abort();
            let _ = saver.await;
        }
        tracker.snapshot().save(path)?;
        if let Some(parts) = &p.parts {
            parts::say(parts, earlier, tracker.is_complete());
        }
        if !tracker.is_complete() {
            eprintln!("sensor: progress saved; continue with --resume {}", path.display());
        }
    }
    result?;
    let (up, down) = (
        progress.hosts_up.load(Ordering::Relaxed),
        progress.hosts_down.load(Ordering::Relaxed),
    );
    if up + down > 0 {
        eprintln!(
            "sensor: host discovery: {} up, {} down (ports probed on hosts up only; -Pn probes every address)",
            netsensor::output::human::count(up),
            netsensor::output::human::count(down)
        );
    }
    tracing::info!(
        hosts_up = up,
        hosts_down = down,
        probed = progress.probed.load(Ordering::Relaxed),
        open = progress.open.load(Ordering::Relaxed),
        rate = %p.options.portscan.rate,
        paced_at = progress.probe_rate().map_or_else(|| "unlimited".to_string(), |r| format!("{r}/s")),
        "scan finished"
    );
    Ok(p.kept.take().unwrap_or_default())
}
