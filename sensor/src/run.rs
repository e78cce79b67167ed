//! `sensor run`: the appliance. Runs every profile on its schedule, keeps the
//! inventory, serves port 48999 (agent proxy, health, metrics, status),
//! reloads profiles on SIGHUP, drains on SIGTERM.
//!
//! Settings come from the configuration file and are overridden by flags, so
//! the packaged service (`--config /etc/sensor/sensor.toml`) and a quick
//! start from flags alone run the same code. Everything is validated before
//! the first port is bound or the first probe is sent.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use netsensor::appliance::config::{self, Config, LogFormat};
use netsensor::appliance::metrics::{Exposition, Kind};
use netsensor::appliance::profile::{self, Profile};
use netsensor::appliance::schedule::{self, Due};
use netsensor::discover::checkpoint::Checkpoint;
use netsensor::discover::connect::Progress;
use netsensor::model::record::EndpointRecord;
use netsensor::model::timestamp::rfc3339;
use netsensor::scan::{self, ScanOptions};
use netsensor::serve::proxy::{self as engine_proxy, Allowlist, Counters, ProxyConfig};
use netsensor::serve::{self, Response, Router};
use netsensor::store::inventory::{Change, DiffPolicy, Inventory, Run};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::cli::UsageError;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Configuration file (TOML); flags override it. Default: /etc/sensor/sensor.toml when it exists and no --profile is given.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A scan profile (TOML); repeatable. Without any, every `*.toml` in the profiles directory.
    #[arg(long = "profile", value_name = "FILE")]
    pub profiles: Vec<PathBuf>,
    /// Where profiles live when no --profile is given [default: /etc/sensor/profiles.d].
    #[arg(long, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// The sensor's state: the inventory database [default: /var/lib/sensor].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Trust this PEM bundle of private CAs too (repeatable; added to the config's).
    #[arg(long = "ca-bundle", value_name = "FILE")]
    pub ca_bundles: Vec<PathBuf>,
    /// Consecutive complete runs without an endpoint before it is reported gone [default: 3].
    #[arg(long, value_name = "N")]
    pub gone_after: Option<u32>,
    /// Seconds to let running scans finish after SIGTERM [default: 30].
    #[arg(long, value_name = "S")]
    pub grace: Option<u64>,
    /// Serve port 48999's services here: agent proxy, /healthz, /metrics, status, report intake.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Proxy destination agents may reach: HOST:PORT, *.DOMAIN:PORT, IP:PORT (repeatable; added to the config's).
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Require `Proxy-Authorization` with this token from agents.
    #[arg(long, value_name = "T", env = "SENSOR_PROXY_TOKEN", hide_env_values = true)]
    pub proxy_auth_token: Option<String>,
    /// Also forward plain-HTTP requests (`GET http://host/…`) to allowlisted destinations.
    #[arg(long)]
    pub forward_http: bool,
    /// Answer NAME with ADDR before DNS for proxy destinations (repeatable).
    #[arg(long, value_name = "NAME=ADDR")]
    pub resolve: Vec<String>,
    /// Service certificate chain (PEM): TLS on the service port, told apart from plain by the first byte.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Report changes to this upstream (`https://…`; `http://` only for closed segments and tests).
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Bearer token presented to the upstream.
    #[arg(long, value_name = "T", env = "SENSOR_UPSTREAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Accept reports from sensors presenting this bearer token (repeatable).
    #[arg(long = "accept-token", value_name = "T")]
    pub accept_tokens: Vec<String>,
    /// This sensor's id in reports [default: derived from /etc/machine-id].
    #[arg(long, value_name = "ID")]
    pub sensor_id: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// What the daemon runs with: the configuration with the flags applied.
pub struct Settings {
    pub config: Config,
    pub config_file: Option<PathBuf>,
    /// Explicit `--profile` files (else the profiles directory).
    pub profile_files: Vec<PathBuf>,
    pub sensor_id: String,
}

/// Reads the configuration (if any) and applies the flags over it.
pub fn settings(args: &RunArgs) -> anyhow::Result<Settings> {
    // A bare `sensor run` is the installed appliance and reads its file; a
    // run from `--profile` flags is self-contained and reads none unless told.
    let config_file = match &args.config {
        Some(p) => Some(p.clone()),
        None if args.profiles.is_empty() => {
            let default = PathBuf::from(config::DEFAULT_PATH);
            default.exists().then_some(default)
        }
        None => None,
    };
    let mut c = match &config_file {
        Some(p) => config::load(p).map_err(usage)?,
        None => Config::default(),
    };
    if let Some(d) = &args.profiles_dir {
        c.sensor.profiles_dir = d.clone();
    }
    if let Some(d) = &args.state_dir {
        c.sensor.state_dir = d.clone();
    }
    c.sensor.ca_bundles.extend(args.ca_bundles.iter().cloned());
    if let Some(n) = args.gone_after {
        if n == 0 {
            return Err(usage("--gone-after: give 1 or more complete runs"));
        }
        c.sensor.gone_after = n;
    }
    if let Some(g) = args.grace {
        c.sensor.grace = Duration::from_secs(g);
    }
    if let Some(l) = &args.listen {
        c.service.listen = Some(
            l.parse()
                .map_err(|_| usage(format!("--listen `{l}`: write ADDR:PORT, e.g. 127.0.0.1:48999")))?,
        );
    }
    if args.tls_cert.is_some() {
        c.service.tls_cert = args.tls_cert.clone();
        c.service.tls_key = args.tls_key.clone();
    }
    c.proxy.allow.extend(args.allow.iter().cloned());
    Allowlist::parse(&c.proxy.allow).map_err(|e| usage(format!("--allow: {e}")))?;
    if let Some(t) = &args.proxy_auth_token {
        c.proxy.auth_token = Some(t.clone());
        c.proxy.auth_token_file = None;
    }
    c.proxy.resolve.extend(args.resolve.iter().cloned());
    c.proxy.forward_plain_http |= args.forward_http;
    if let Some(url) = &args.upstream {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(usage(format!("--upstream `{url}`: write an https:// URL")));
        }
        let snapshot_every = c
            .upstream
            .as_ref()
            .map_or(Duration::from_secs(6 * 3600), |u| u.snapshot_every);
        let mut up = c.upstream.take().unwrap_or(config::Upstream {
            url: url.clone(),
            token: None,
            token_file: None,
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            snapshot_every,
            outbox_max_records: None,
            outbox_max_bytes: None,
        });
        up.url = url.clone();
        c.upstream = Some(up);
    }
    if let Some(t) = &args.token {
        let Some(up) = c.upstream.as_mut() else {
            return Err(usage(
                "--token: give --upstream URL too (or [upstream] url in the config)",
            ));
        };
        up.token = Some(t.clone());
        up.token_file = None;
    }
    for (i, t) in args.accept_tokens.iter().enumerate() {
        if t.len() < 16 {
            return Err(usage("--accept-token: use a token of 16 characters or more"));
        }
        // Flag tokens are not tied to one sensor id: the report names its sensor.
        c.intake.tokens.insert(format!("*{i}"), t.clone());
    }
    if let Some(f) = &args.log_format {
        c.log.format = match f.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(usage(format!("--log-format `{other}`: use text or json"))),
        };
    }
    if let Some(id) = &args.sensor_id {
        c.sensor.id = Some(id.clone());
    }
    let sensor_id = c.sensor.id.clone().unwrap_or_else(derived_sensor_id);
    Ok(Settings {
        config: c,
        config_file,
        profile_files: args.profiles.clone(),
        sensor_id,
    })
}

/// `sensor-` and the first 12 characters of the machine id, else the host name.
fn derived_sensor_id() -> String {
    if let Ok(id) = std::fs::read_to_string("/etc/machine-id") {
        let id: String = id.trim().chars().filter(char::is_ascii_alphanumeric).take(12).collect();
        if !id.is_empty() {
            return format!("sensor-{id}");
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(56)
        .collect();
    if host.is_empty() {
        "sensor".into()
    } else {
        format!("sensor-{host}")
    }
}

/// The daemon's logging: text or JSON lines on stderr (journald keeps them).
fn init_logging(c: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SENSOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{},rustls=error", c.log.level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match c.log.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
}

/// Every profile, validated; one bad profile refuses them all. An empty
/// profiles directory is not an error: a freshly installed sensor waits
/// for profiles (added, then SIGHUP).
fn load_profiles(s: &Settings) -> anyhow::Result<Vec<Profile>> {
    let dir = &s.config.sensor.profiles_dir;
    let paths: Vec<PathBuf> = if s.profile_files.is_empty() {
        let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && s.config_file.is_some() => Vec::new(),
            Err(e) => {
                return Err(usage(format!(
                    "cannot read the profiles directory {}: {e} (give --profile FILE or --profiles-dir DIR)",
                    dir.display()
                )));
            }
        };
        found.sort();
        found
    } else {
        s.profile_files.clone()
    };
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

/// What `/api/v1/status` and `sensor status` show of one profile.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProfileStatus {
    pub name: String,
    pub summary: String,
    pub running: bool,
    pub runs: u64,
    pub skipped: u64,
    pub last_started: Option<String>,
    pub last_finished: Option<String>,
    pub last_outcome: Option<String>,
    pub last_endpoints: usize,
    pub last_changes: usize,
    /// When the next run starts (RFC 3339), `now`, or absent when none is scheduled.
    pub next_run: Option<String>,
}

/// The daemon's state shared with the service routes.
struct Daemon {
    sensor_id: String,
    sensor_name: Option<String>,
    started_at: String,
    state_dir: PathBuf,
    listen: Mutex<Option<SocketAddr>>,
    inventory: Arc<Mutex<Inventory>>,
    profiles: Mutex<BTreeMap<String, ProfileStatus>>,
    live: Mutex<HashMap<String, Arc<Progress>>>,
    probes_done: AtomicU64,
    open_done: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    proxy: Arc<Counters>,
    /// Reporting upstream (issue 7), when an upstream is configured.
    reporter: Option<Arc<crate::reporting::Reporter>>,
}

impl Daemon {
    fn error(&self, kind: &'static str) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        *e.entry(kind).or_default() += 1;
    }

    fn profile<R>(&self, name: &str, f: impl FnOnce(&mut ProfileStatus) -> R) -> R {
        let mut map = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(name.to_string()).or_insert_with(|| ProfileStatus {
            name: name.to_string(),
            ..ProfileStatus::default()
        }))
    }

    fn status(&self) -> serde_json::Value {
        let profiles: Vec<ProfileStatus> = self
            .profiles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let counts = self
            .inventory
            .lock()
            .ok()
            .and_then(|i| i.counts().ok())
            .unwrap_or_default();
        serde_json::json!({
            "sensor": {"id": self.sensor_id, "name": self.sensor_name, "version": env!("CARGO_PKG_VERSION")},
            "started_at": self.started_at,
            "state_dir": self.state_dir,
            "listen": *self.listen.lock().unwrap_or_else(|p| p.into_inner()),
            "scans_running": profiles.iter().filter(|p| p.running).count(),
            "profiles": profiles,
            "inventory": counts.by_category,
            "reporting": self.reporter.as_ref().map(|r| r.summary()),
        })
    }

    fn metrics(&self) -> String {
        let mut e = Exposition::new();
        e.family("netsensor_build_info", Kind::Gauge, "The sensor's version.")
            .sample(
                "netsensor_build_info",
                &[("version", env!("CARGO_PKG_VERSION")), ("sensor", &self.sensor_id)],
                1.0,
            );
        let profiles: Vec<ProfileStatus> = self
            .profiles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        e.single(
            "netsensor_scans_running",
            Kind::Gauge,
            "Profile runs in progress.",
            profiles.iter().filter(|p| p.running).count() as f64,
        );
        e.family("netsensor_runs_total", Kind::Counter, "Profile runs started.");
        for p in &profiles {
            e.sample("netsensor_runs_total", &[("profile", &p.name)], p.runs as f64);
        }
        e.family(
            "netsensor_runs_skipped_total",
            Kind::Counter,
            "Runs that came due while the previous run of the profile was still going.",
        );
        for p in &profiles {
            e.sample(
                "netsensor_runs_skipped_total",
                &[("profile", &p.name)],
                p.skipped as f64,
            );
        }
        let (mut probes, mut open) = (
            self.probes_done.load(Ordering::Relaxed),
            self.open_done.load(Ordering::Relaxed),
        );
        for p in self.live.lock().unwrap_or_else(|p| p.into_inner()).values() {
            probes += p.probed.load(Ordering::Relaxed);
            open += p.open.load(Ordering::Relaxed);
        }
        e.single(
            "netsensor_probes_total",
            Kind::Counter,
            "Connect probes finished (rate() gives probes/s).",
            probes as f64,
        );
        e.single(
            "netsensor_open_ports_total",
            Kind::Counter,
            "Open ports found.",
            open as f64,
        );
        let counts = self
            .inventory
            .lock()
            .ok()
            .and_then(|i| i.counts().ok())
            .unwrap_or_default();
        e.family(
            "netsensor_endpoints",
            Kind::Gauge,
            "Endpoints in the inventory by category (gone left out).",
        );
        for c in ["discovered", "unsecured", "automatable"] {
            let n = counts.by_category.get(c).copied().unwrap_or(0);
            e.sample("netsensor_endpoints", &[("category", c)], n as f64);
        }
        e.family(
            "netsensor_endpoints_by_grade",
            Kind::Gauge,
            "Endpoints in the inventory by grade.",
        );
        for (g, n) in &counts.by_grade {
            e.sample("netsensor_endpoints_by_grade", &[("grade", g)], *n as f64);
        }
        e.family("netsensor_errors_total", Kind::Counter, "Errors by kind.");
        for (k, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            e.sample("netsensor_errors_total", &[("kind", k)], *n as f64);
        }
        let s = self.proxy.snapshot();
        e.single(
            "netsensor_proxy_tunnels_open",
            Kind::Gauge,
            "Agent tunnels open.",
            s.tunnels_open as f64,
        );
        e.single(
            "netsensor_proxy_tunnels_total",
            Kind::Counter,
            "Agent tunnels established.",
            s.tunnels_total as f64,
        );
        e.family(
            "netsensor_proxy_bytes_total",
            Kind::Counter,
            "Bytes carried by agent tunnels.",
        )
        .sample("netsensor_proxy_bytes_total", &[("direction", "up")], s.bytes_up as f64)
        .sample(
            "netsensor_proxy_bytes_total",
            &[("direction", "down")],
            s.bytes_down as f64,
        );
        e.family(
            "netsensor_proxy_refused_total",
            Kind::Counter,
            "Proxy requests refused by reason.",
        );
        for (why, n) in [
            ("bad_request", s.refused_bad_request),
            ("too_large", s.refused_too_large),
            ("head_timeout", s.refused_head_timeout),
            ("method", s.refused_method),
            ("auth", s.refused_auth),
            ("not_allowed", s.refused_not_allowed),
            ("agent_limit", s.refused_agent_limit),
            ("unreachable", s.refused_unreachable),
        ] {
            e.sample("netsensor_proxy_refused_total", &[("reason", why)], n as f64);
        }
        if let Some(r) = &self.reporter {
            r.metrics(&mut e);
        }
        e.finish()
    }
}

struct Running {
    handle: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    /// A due run was already counted as skipped while this one runs.
    skip_noted: bool,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let settings = settings(&args)?;
    init_logging(&settings.config);
    let mut profiles = load_profiles(&settings)?;
    let c = settings.config.clone();
    if profiles.is_empty() && c.service.listen.is_none() && settings.config_file.is_none() {
        return Err(usage(format!(
            "nothing to do: no scan profiles (give --profile FILE or put *.toml profiles in {}) and no --listen",
            c.sensor.profiles_dir.display()
        )));
    }
    std::fs::create_dir_all(&c.sensor.state_dir)
        .with_context(|| format!("cannot create the state directory {}", c.sensor.state_dir.display()))?;
    let db_path = c.sensor.state_dir.join("inventory.sqlite");
    let inventory = Arc::new(Mutex::new(Inventory::open(&db_path)?));
    let trust = Arc::new(crate::cli::load_trust(&c.sensor.ca_bundles)?);
    let base = ScanOptions {
        trust,
        ..ScanOptions::default()
    };
    let policy = DiffPolicy {
        gone_after: c.sensor.gone_after.max(1),
        ..DiffPolicy::default()
    };
    let reporter = match &c.upstream {
        Some(up) => Some(crate::reporting::start_from_config(
            up,
            &c.sensor.state_dir,
            &settings.sensor_id,
            c.sensor.name.as_deref(),
            inventory.clone(),
        )?),
        None => None,
    };
    let daemon = Arc::new(Daemon {
        sensor_id: settings.sensor_id.clone(),
        sensor_name: c.sensor.name.clone(),
        started_at: rfc3339(OffsetDateTime::now_utc()),
        state_dir: c.sensor.state_dir.clone(),
        listen: Mutex::new(None),
        inventory: inventory.clone(),
        profiles: Mutex::new(BTreeMap::new()),
        live: Mutex::new(HashMap::new()),
        probes_done: AtomicU64::new(0),
        open_done: AtomicU64::new(0),
        errors: Mutex::new(BTreeMap::new()),
        proxy: Arc::new(Counters::default()),
        reporter,
    });
    netsensor::discover::connect::raise_fd_limit();

    // The service port: validated and bound before any scan starts.
    let (service_stop, service_stopped) = tokio::sync::oneshot::channel::<()>();
    let service_task = match c.service.listen {
        None => None,
        Some(listen) => {
            let proxy_config = proxy_config(&settings, daemon.clone())?;
            let listener = crate::proxy::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
            let local = listener.local_addr().context("listener address")?;
            *daemon.listen.lock().unwrap_or_else(|p| p.into_inner()) = Some(local);
            let counters = daemon.proxy.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = engine_proxy::run(listener, proxy_config, counters, async {
                    let _ = service_stopped.await;
                })
                .await
                {
                    tracing::error!(error = %e, "service listener failed");
                }
            }))
        }
    };

    let listening = daemon
        .listen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .map_or("no service port".to_string(), |a| format!("serving {a}"));
    tracing::info!(
        "sensor {} ({}) running: state {}, {listening}, proxy allows {} destination(s), {} profile(s){}",
        env!("CARGO_PKG_VERSION"),
        daemon.sensor_id,
        c.sensor.state_dir.display(),
        c.proxy.allow.len(),
        profiles.len(),
        settings
            .config_file
            .as_ref()
            .map(|p| format!(", config {}", p.display()))
            .unwrap_or_default()
    );
    if profiles.is_empty() {
        tracing::warn!(
            "no scan profiles in {}: nothing will be scanned until profiles are added and the sensor is reloaded (SIGHUP)",
            c.sensor.profiles_dir.display()
        );
    }
    let now = OffsetDateTime::now_utc();
    let facts = schedule_facts(&inventory, &profiles).await;
    for p in &profiles {
        let last = facts.get(&p.name).and_then(|f| f.0);
        let next = match p.schedule.as_ref().map(|s| schedule::due(s, last, now)) {
            None | Some(Due::Now) => "now".to_string(),
            Some(Due::At(t)) => rfc3339(t),
            Some(Due::Never) => "never (the cron expression has no next time)".to_string(),
        };
        tracing::info!("profile {}; next run {next}", p.summary());
        daemon.profile(&p.name, |s| s.summary = p.summary());
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
                match load_profiles(&settings) {
                    Ok(new) => {
                        tracing::info!("SIGHUP: {} profile(s) reloaded (running scans continue)", new.len());
                        for p in &new {
                            tracing::info!("profile {}", p.summary());
                            daemon.profile(&p.name, |s| s.summary = p.summary());
                        }
                        profiles = new;
                    }
                    Err(e) => {
                        daemon.error("reload");
                        tracing::error!("SIGHUP: profiles not reloaded, keeping the previous ones:\n{e:#}");
                    }
                }
            }
        }
        running.retain(|_, r| !r.handle.is_finished());
        let now = OffsetDateTime::now_utc();
        let facts = schedule_facts(&inventory, &profiles).await;
        for p in &profiles {
            let (last, paused) = facts.get(&p.name).copied().unwrap_or((None, false));
            if let Some(r) = running.get_mut(&p.name) {
                // A run still going when its window closes stops here and starts again in the next window.
                if p.schedule.as_ref().is_some_and(|s| !schedule::may_run(s, now)) && !r.stop.load(Ordering::Relaxed) {
                    tracing::info!("profile `{}`: window closed, stopping the run", p.name);
                    r.stop.store(true, Ordering::Relaxed);
                }
                if !r.skip_noted
                    && let Some(s) = &p.schedule
                    && schedule::due(s, last, now) == Due::Now
                {
                    r.skip_noted = true;
                    daemon.profile(&p.name, |st| st.skipped += 1);
                    tracing::warn!(
                        "profile `{}`: a run is due but the previous one is still going; skipped",
                        p.name
                    );
                }
                continue;
            }
            let due = match &p.schedule {
                // A run stopped part-way (SIGTERM, window closed) goes on as soon as it may.
                Some(s) if paused => {
                    if schedule::may_run(s, now) {
                        Due::Now
                    } else {
                        Due::Never
                    }
                }
                None if paused => Due::Now,
                None if ran_once.contains(&p.name) => Due::Never,
                None => Due::Now,
                Some(s) => schedule::due(s, last, now),
            };
            let next = match due {
                Due::Now => Some("now".to_string()),
                Due::At(t) => Some(rfc3339(t)),
                Due::Never => None,
            };
            daemon.profile(&p.name, |st| st.next_run = next);
            if due != Due::Now {
                continue;
            }
            ran_once.insert(p.name.clone());
            let stop = Arc::new(AtomicBool::new(false));
            let handle = tokio::spawn(run_profile(
                p.clone(),
                base.clone(),
                stop.clone(),
                daemon.clone(),
                policy,
            ));
            running.insert(
                p.name.clone(),
                Running {
                    handle,
                    stop,
                    skip_noted: false,
                },
            );
        }
    }

    tracing::info!(
        "stopping: {} scan(s) running, up to {}s to finish",
        running.len(),
        c.sensor.grace.as_secs()
    );
    for r in running.values() {
        r.stop.store(true, Ordering::Relaxed);
    }
    let drain = async {
        for (_, r) in running {
            let _ = r.handle.await;
        }
    };
    if tokio::time::timeout(c.sensor.grace, drain).await.is_err() {
        tracing::warn!("grace period over; exiting with scans unfinished");
    }
    let _ = service_stop.send(());
    if let Some(t) = service_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    Ok(())
}

/// The proxy and the service routes of port 48999, from the settings.
fn proxy_config(s: &Settings, daemon: Arc<Daemon>) -> anyhow::Result<ProxyConfig> {
    let p = &s.config.proxy;
    let auth_token = match (&p.auth_token, &p.auth_token_file) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(f)) => Some(config::read_secret(f, "proxy.auth_token_file").map_err(usage)?),
        (None, None) => None,
    };
    let mut pc = ProxyConfig {
        allow: Allowlist::parse(&p.allow).map_err(|e| usage(format!("proxy.allow: {e}")))?,
        auth_token,
        idle_timeout: p.idle_timeout,
        connect_timeout: p.connect_timeout,
        max_tunnels: p.max_tunnels,
        max_tunnels_per_agent: p.max_tunnels_per_agent,
        forward_http: p.forward_plain_http,
        ..ProxyConfig::default()
    };
    for r in &p.resolve {
        pc.add_resolve(r).map_err(|e| usage(format!("proxy.resolve: {e}")))?;
    }
    pc.validate().map_err(|e| usage(format!("proxy: {e}")))?;
    if let (Some(cert), Some(key)) = (&s.config.service.tls_cert, &s.config.service.tls_key) {
        pc.tls = Some(crate::proxy::tls_config(
            cert,
            key,
            "service.tls_cert",
            "service.tls_key",
        )?);
    }

    // An agent that used the proxy marks its host automatable; the store is
    // written off the proxy's path (a bounded queue, dropped when full).
    let (agents, mut agent_rx) = tokio::sync::mpsc::channel::<IpAddr>(1024);
    let marker = daemon.clone();
    tokio::spawn(async move {
        while let Some(ip) = agent_rx.recv().await {
            let d = marker.clone();
            let at = rfc3339(OffsetDateTime::now_utc());
            let r = tokio::task::spawn_blocking(move || {
                d.inventory
                    .lock()
                    .map_err(|_| anyhow::anyhow!("inventory lock poisoned"))
                    .and_then(|mut inv| Ok(inv.mark_agent(&ip.to_string(), &at)?))
            })
            .await;
            if !matches!(r, Ok(Ok(()))) {
                marker.error("inventory");
                tracing::warn!(agent = %ip, "cannot mark the agent's host automatable");
            }
        }
    });
    pc.on_agent = Some(Arc::new(move |ip| {
        let _ = agents.try_send(ip);
    }));

    // The merged inventory: the embedded store, or PostgreSQL for a fleet's central sensor.
    let central: Arc<dyn netsensor::store::central::CentralStore> = match &s.config.inventory.url {
        None => daemon.inventory.clone(),
        Some(url) => {
            let store = netsensor::store::central::PgInventory::connect_off_runtime(url)
                .map_err(|e| anyhow::anyhow!("inventory.url: {e}"))?;
            tracing::info!(
                "reports from other sensors go to {}",
                netsensor::store::central::redact(url)
            );
            Arc::new(store)
        }
    };
    let intake = crate::reporting::intake(central, crate::reporting::intake_tokens(&s.config.intake)?);
    let status = daemon.clone();
    let metrics = daemon;
    let mut router = Router::new()
        .with(serve::health())
        .with(serve::blocking_route("/api/v1/status", move || {
            Response::json(200, &status.status())
        }))
        .with(serve::blocking_route("/metrics", move || {
            Response::text(200, netsensor::appliance::metrics::CONTENT_TYPE, metrics.metrics())
        }));
    if let Some(h) = intake {
        router = router.with(h);
    }
    pc.service = Some(router);
    Ok(pc)
}

/// What the scheduler needs of the store per profile: when its last run
/// started and whether a paused run waits to be resumed. Read in one go on
/// a blocking thread, so a long inventory write never stalls the daemon's loop.
type Facts = HashMap<String, (Option<OffsetDateTime>, bool)>;

async fn schedule_facts(inventory: &Arc<Mutex<Inventory>>, profiles: &[Profile]) -> Facts {
    let inventory = inventory.clone();
    let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let Ok(inv) = inventory.lock() else {
            return Facts::new();
        };
        names
            .into_iter()
            .map(|name| {
                let last = inv
                    .last_run(&name)
                    .ok()
                    .flatten()
                    .and_then(|t| OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok());
                let paused = inv.has_scan_state(&name).unwrap_or(false);
                (name, (last, paused))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// A run stopped part-way, kept in the inventory's scan state so the next
/// start (or the next window) continues it with the same seed.
#[derive(Serialize, serde::Deserialize)]
struct Paused {
    seed: u64,
    started_at: String,
    checkpoint: Checkpoint,
    /// What the earlier parts found: the finished run is judged on all of it.
    records: Vec<EndpointRecord>,
}

async fn load_paused(daemon: &Daemon, profile: &str) -> Option<Paused> {
    let (inventory, name) = (daemon.inventory.clone(), profile.to_string());
    let text = tokio::task::spawn_blocking(move || inventory.lock().ok()?.scan_state(&name).ok().flatten())
        .await
        .ok()
        .flatten()?;
    match serde_json::from_str(&text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(profile, "saved progress unreadable ({e}); starting afresh");
            None
        }
    }
}

async fn run_profile(
    mut profile: Profile,
    base: ScanOptions,
    stop: Arc<AtomicBool>,
    daemon: Arc<Daemon>,
    policy: DiffPolicy,
) {
    // The operator's blocklist applies to every run, read afresh each time; a
    // broken one stops the run rather than being ignored.
    match netsensor::discover::targets::read_blocklist(std::path::Path::new(
        netsensor::discover::targets::SYSTEM_BLOCKLIST,
    )) {
        Ok(blocked) => profile.exclude.extend(blocked),
        Err(e) => {
            daemon.error("scan");
            tracing::error!(profile = %profile.name, "blocklist {}: {e}; run not started", netsensor::discover::targets::SYSTEM_BLOCKLIST);
            return;
        }
    }
    let mut paused = load_paused(&daemon, &profile.name).await;
    let progress = Arc::new(Progress::default());
    daemon
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(profile.name.clone(), progress.clone());
    let now = rfc3339(OffsetDateTime::now_utc());
    daemon.profile(&profile.name, |s| {
        s.running = true;
        s.runs += 1;
        s.last_started = Some(now.clone());
    });
    let mut result = Err(None);
    for _ in 0..2 {
        let (seed, resume) = match &paused {
            Some(p) => {
                tracing::info!(profile = %profile.name, "run resumed from its checkpoint (started {})", p.started_at);
                (p.seed, Some(&p.checkpoint))
            }
            None => {
                tracing::info!(profile = %profile.name, "run started");
                (OffsetDateTime::now_utc().unix_timestamp_nanos() as u64, None)
            }
        };
        match netsensor::appliance::job::run(
            &profile,
            &base,
            seed,
            progress.clone(),
            stop.clone(),
            scan::resolve,
            resume,
        )
        .await
        {
            Err(netsensor::appliance::job::JobError::Checkpoint { source, .. }) if paused.is_some() => {
                // The profile changed since: its old positions mean nothing now.
                tracing::warn!(profile = %profile.name, "saved progress no longer matches the profile ({source}); starting afresh");
                paused = None;
            }
            r => {
                result = r.map(|o| (seed, o)).map_err(Some);
                break;
            }
        }
    }
    daemon
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&profile.name);
    let probes = progress.probed.load(Ordering::Relaxed);
    daemon.probes_done.fetch_add(probes, Ordering::Relaxed);
    daemon
        .open_done
        .fetch_add(progress.open.load(Ordering::Relaxed), Ordering::Relaxed);
    let finish = |outcome: String, endpoints: usize, changes: usize| {
        daemon.profile(&profile.name, |s| {
            s.running = false;
            s.last_finished = Some(rfc3339(OffsetDateTime::now_utc()));
            s.last_outcome = Some(outcome);
            s.last_endpoints = endpoints;
            s.last_changes = changes;
        });
    };
    let (seed, outcome) = match result {
        Ok(r) => r,
        Err(e) => {
            daemon.error("scan");
            let e = e.map_or("internal error".to_string(), |e| e.to_string());
            tracing::error!(profile = %profile.name, "{e}");
            finish(format!("failed: {e}"), 0, 0);
            return;
        }
    };
    let started = paused.as_ref().map_or(now.clone(), |p| p.started_at.clone());
    let mut all = paused.map(|p| p.records).unwrap_or_default();
    all.extend(outcome.records.iter().cloned());
    // Stopped part-way: store what this part saw (it counts nobody missing)
    // and keep the checkpoint; the finished run is judged on all parts.
    if let Some(cp) = &outcome.remaining {
        tracing::debug!(profile = %profile.name, watermark = %cp.watermark, done = cp.done.len(), positions = %cp.positions, "checkpoint saved");
    }
    let save = outcome.remaining.map(|checkpoint| Paused {
        seed,
        started_at: started.clone(),
        checkpoint,
        records: all.clone(),
    });
    let complete = save.is_none();
    let finished = rfc3339(OffsetDateTime::now_utc());
    let name = profile.name.clone();
    let tags = profile.tags.clone();
    let inventory = daemon.inventory.clone();
    let reporter = daemon.reporter.clone();
    let part = outcome.records;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut inv = inventory
            .lock()
            .map_err(|_| anyhow::anyhow!("inventory lock poisoned"))?;
        let records = if complete { &all } else { &part };
        let run = Run {
            profile: &name,
            started_at: &started,
            finished_at: &finished,
            records,
            tags: &tags,
            complete,
        };
        let changes = inv.record_run(&run, &policy)?;
        // Into the durable outbox before anything else is said about them.
        if let Some(r) = &reporter {
            r.enqueue_run(&inv, &changes);
        }
        let state = save.as_ref().map(serde_json::to_string).transpose()?;
        inv.set_scan_state(&name, state.as_deref())?;
        Ok::<_, anyhow::Error>((changes, records.len()))
    })
    .await;
    match outcome {
        Ok(Ok((changes, n))) => {
            for c in &changes {
                match c {
                    Change::New { key } => tracing::info!(
                        profile = %profile.name,
                        "`{}`: new {}:{} {}", profile.name, key.address, key.port, key.sni
                    ),
                    Change::Changed { key, reasons } => tracing::info!(
                        profile = %profile.name,
                        "`{}`: changed {}:{} {}: {}",
                        profile.name,
                        key.address,
                        key.port,
                        key.sni,
                        reasons.join("; ")
                    ),
                    Change::Gone { key, missed_runs } => tracing::info!(
                        profile = %profile.name,
                        "`{}`: gone {}:{} {} (not seen in {missed_runs} runs)",
                        profile.name, key.address, key.port, key.sni
                    ),
                }
            }
            let how = if complete {
                "finished"
            } else {
                "paused (resumes from its checkpoint)"
            };
            tracing::info!(
                profile = %profile.name,
                endpoints = n,
                changes = changes.len(),
                probes,
                "`{}`: run {how}: {n} endpoint(s), {} change(s), {probes} probe(s) in this part",
                profile.name,
                changes.len()
            );
            finish(
                if complete { "finished" } else { "paused" }.to_string(),
                n,
                changes.len(),
            );
        }
        Ok(Err(e)) => {
            daemon.error("inventory");
            tracing::error!(profile = %profile.name, "cannot store the run: {e:#}");
            finish(format!("failed: {e:#}"), 0, 0);
        }
        Err(e) => {
            daemon.error("internal");
            tracing::error!(profile = %profile.name, "{e}");
            finish(format!("failed: {e}"), 0, 0);
        }
    }
}
