//! The appliance daemon: every profile on its schedule, the inventory, the
//! service port and reporting, until it is told to stop.
//!
//! Shaped like mini-redis's `run(listener, shutdown)`: the caller (the
//! binary) owns the signals and hands in a shutdown token and a reload
//! notification, so the daemon runs the same under a test as under
//! systemd. [`Daemon::start`] validates, opens and binds everything before
//! any task runs: a bad setting leaves nothing half-started. Shutdown
//! drains in order: no new run starts; running scans are asked to stop at a
//! checkpoint and given the grace period to store what they saw; then the
//! background tasks (service listener, agent marker, delivery, snapshots),
//! which serve status and take agents' tunnels until then, are cancelled
//! through a token of their own and awaited, bounded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::appliance::member::{self, Assigned, Member};
use crate::appliance::pipeline;
use crate::appliance::preflight::{self, Problems};
use crate::appliance::profile::Profile;
use crate::appliance::profile_set::{self, ProfileSetError};
use crate::appliance::schedule::{self, Due};
use crate::appliance::service::{self, Service, ServiceError};
use crate::appliance::settings::Settings;
use crate::appliance::state::Shared;
use crate::appliance::tick::{self, Facts, Plan};
use crate::appliance::upstream::{self, Reporting, UpstreamError};
use crate::grade::{TrustConfig, TrustError, TrustStores};
use crate::model::timestamp::rfc3339;
use crate::report::delivery::{Client, DeliveryError};
use crate::report::reporter::{Reporter, ReporterError};
use crate::scan::ScanOptions;
use crate::store::inventory::{DiffPolicy, Inventory, InventoryError};

/// How often the scheduler looks at the profiles.
const TICK: Duration = Duration::from_millis(500);
/// How long the background tasks get to end once cancelled.
const TASK_DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Invalid(#[from] Problems),
    #[error(transparent)]
    Profiles(#[from] ProfileSetError),
    #[error(
        "nothing to do: no scan profiles (give --profile FILE or put *.toml profiles in {}) and no --listen",
        .0.display()
    )]
    NothingToDo(PathBuf),
    #[error("cannot create the state directory {}: {source}", .dir.display())]
    StateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("CA bundles: {0}")]
    Trust(#[source] TrustError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("upstream: {0}")]
    Delivery(#[source] DeliveryError),
    #[error(transparent)]
    Outbox(#[from] ReporterError),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Alerts(#[from] crate::alert::AlertError),
    #[error(transparent)]
    Member(#[from] member::MemberError),
}

impl StartError {
    /// The settings, profiles or files they name are at fault (not the
    /// machine): the operator has something to fix, nothing was started.
    pub fn is_invalid(&self) -> bool {
        match self {
            StartError::Invalid(_)
            | StartError::Profiles(_)
            | StartError::NothingToDo(_)
            | StartError::Trust(_)
            | StartError::Upstream(_)
            | StartError::Delivery(_) => true,
            StartError::Service(e) => e.is_invalid(),
            StartError::Alerts(e) => e.is_invalid(),
            StartError::StateDir { .. } | StartError::Inventory(_) | StartError::Outbox(_) | StartError::Member(_) => {
                false
            }
        }
    }
}

/// How the daemon ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Scans still running when the grace period ran out (aborted).
    pub unfinished_runs: usize,
    /// Background tasks that did not end within [`TASK_DRAIN`] (aborted).
    pub late_tasks: Vec<&'static str>,
}

/// A daemon ready to run: everything validated, opened and bound.
pub struct Daemon {
    settings: Settings,
    shared: Arc<Shared>,
    /// The local profiles and the fleet's assignments, together.
    profiles: Vec<Profile>,
    /// The local profiles alone (the files).
    local: Vec<Profile>,
    /// The fleet's: enrolled with a central (HTTP client, credential).
    member: Option<(reqwest::Client, String)>,
    /// The fleet's assignments in force.
    remote: Vec<Profile>,
    base: ScanOptions,
    policy: DiffPolicy,
    service: Option<Service>,
    reporting: Option<(Client, Reporting)>,
    /// Run every profile once, now, then stop (`sensor run --once`).
    once: bool,
}

/// A run in progress.
struct Handle {
    task: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    view: tick::Running,
    /// Asked for (`run-now`): its profile's window does not stop it.
    requested: bool,
}

impl Daemon {
    /// Loads the profiles, opens the state directory, the inventory and the
    /// outbox, builds the upstream client, and binds the service port.
    /// Nothing runs until [`Daemon::run`].
    pub async fn start(settings: Settings) -> Result<Daemon, StartError> {
        let c = &settings.config;
        // The checks `sensor config check` runs, and nothing else refuses.
        let profiles = preflight::check(&settings)?.profiles;
        let dir = &c.sensor.state_dir;
        std::fs::create_dir_all(dir).map_err(|source| StartError::StateDir {
            dir: dir.clone(),
            source,
        })?;
        let inventory = Arc::new(Mutex::new(Inventory::open(&dir.join("inventory.sqlite"))?));
        let (trust, warnings) = TrustStores::load(&TrustConfig {
            ca_bundles: c.sensor.ca_bundles.clone(),
            ..TrustConfig::default()
        })
        .map_err(StartError::Trust)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let base = ScanOptions {
            trust: Arc::new(trust),
            ..ScanOptions::default()
        };
        let policy = DiffPolicy {
            gone_after: c.sensor.gone_after.max(1),
            ..DiffPolicy::default()
        };
        let mut member = None;
        let (reporter, reporting) = match &c.upstream {
            None => (None, None),
            Some(up) => {
                let mut up = up.clone();
                // A fleet member reports with its credential (enrolling first if it has none).
                if let Some(credential) = credential(&settings, &up).await? {
                    up.token = Some(credential);
                    up.token_file = None;
                }
                let mut r = upstream::reporting(&up, &settings.sensor_id, c.sensor.name.as_deref())?;
                // The fleet's other centrals: reports fail over too.
                r.upstream.fallback_urls = settings.fallback_urls.clone();
                // A bad URL, CA or identity is an error now, not at the first report.
                let client = Client::new(&r.upstream).map_err(StartError::Delivery)?;
                if member::read_credential(dir)?.is_some() {
                    member = Some((client.http().clone(), r.upstream.token.clone()));
                }
                let reporter = Reporter::open(dir, r.limits)?;
                (Some(reporter), Some((client, r)))
            }
        };
        let shared = Arc::new(Shared::new(
            settings.sensor_id.clone(),
            c.sensor.name.clone(),
            rfc3339(OffsetDateTime::now_utc()),
            dir.clone(),
            inventory,
            reporter,
        ));
        if !c.alerts.is_empty() {
            let sensor = crate::alert::notice::SensorRef {
                id: settings.sensor_id.clone(),
                name: c.sensor.name.clone(),
            };
            let alerts = crate::alert::Alerts::open(&c.alerts, &dir.join("inventory.sqlite"), sensor)?;
            shared.set_alerts(Arc::new(alerts));
        }
        crate::discover::connect::raise_fd_limit();
        // The service port: validated and bound before any scan starts.
        let service = service::prepare(&settings, &shared)?;
        Ok(Daemon {
            settings,
            shared,
            local: profiles.clone(),
            profiles,
            member,
            remote: Vec::new(),
            base,
            policy,
            service,
            reporting,
            once: false,
        })
    }

    /// Runs every profile once, at once (schedules and windows aside; a
    /// paused run continues), then stops as on shutdown, background tasks
    /// included: `sensor run --once`.
    pub fn once(mut self) -> Daemon {
        self.once = true;
        self
    }

    /// The state the service routes read (status, metrics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs every profile on its schedule until `shutdown` fires, reading
    /// the profiles again at each `reload` (a broken set keeps the old one);
    /// then drains (see the module's documentation).
    pub async fn run(mut self, shutdown: CancellationToken, reload: Arc<Notify>) -> Stopped {
        let background = CancellationToken::new();
        let mut tasks: Vec<(&'static str, JoinHandle<()>)> = Vec::new();
        if let Some(service) = self.service.take() {
            tasks.extend(service.spawn(&self.shared, &background));
        }
        let (assigned_tx, mut assigned) = tokio::sync::watch::channel(Assigned::default());
        if let (Some((http, credential)), Some(up)) = (self.member.take(), &self.settings.config.upstream) {
            let m = Member {
                http,
                urls: std::iter::once(up.url.clone())
                    .chain(self.settings.fallback_urls.iter().cloned())
                    .collect(),
                credential,
                poll_every: self.settings.config.fleet.poll_every,
                shared: self.shared.clone(),
                started: std::time::Instant::now(),
            };
            tasks.push(("fleet member", m.spawn(assigned_tx, &background)));
        }
        if let (Some((client, r)), Some(reporter)) = (self.reporting.take(), &self.shared.reporter) {
            let [delivery, snapshots] = reporter.spawn(
                client,
                r.sensor,
                r.upstream,
                self.shared.inventory.clone(),
                r.snapshot_every,
                &background,
            );
            tasks.extend([("delivery", delivery), ("snapshots", snapshots)]);
        }
        if let Some(alerts) = self.shared.alerts() {
            tasks.extend(alerts.spawn(self.shared.inventory.clone(), &background));
        }
        self.announce().await;

        let mut running: BTreeMap<String, Handle> = BTreeMap::new();
        let mut ran_once: HashSet<String> = HashSet::new();
        if self.once {
            for p in &self.profiles {
                ran_once.insert(p.name.clone());
                running.insert(p.name.clone(), self.launch(p));
            }
        }
        let mut ticks = tokio::time::interval(TICK);
        let shared = self.shared.clone();
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = reload.notified() => self.reload(),
                Ok(()) = assigned.changed() => {
                    let a = assigned.borrow_and_update().clone();
                    self.assigned(a);
                }
                () = shared.run_requested() => {}
                _ = ticks.tick() => {}
            }
            running.retain(|_, r| !r.task.is_finished());
            if self.once {
                if running.is_empty() {
                    tracing::info!("--once: every profile ran once; stopping");
                    break;
                }
                continue;
            }
            self.run_requested(&mut running, &mut ran_once);
            let now = OffsetDateTime::now_utc();
            let facts = facts(&self.shared.inventory, &self.profiles).await;
            for p in &self.profiles {
                let f = facts.get(&p.name).copied().unwrap_or_default();
                let view = running.get(&p.name).map(|r| r.view);
                match tick::plan(p, f, view, ran_once.contains(&p.name), now) {
                    Plan::Busy { stop, skipped } => {
                        let Some(r) = running.get_mut(&p.name) else { continue };
                        if stop && !r.requested {
                            let why = p
                                .schedule
                                .as_ref()
                                .and_then(|s| schedule::pause_reason(s, now))
                                .unwrap_or_else(|| "its window closed".into());
                            tracing::info!("profile `{}`: {why}, stopping the run", p.name);
                            self.shared.profile(&p.name, |st| st.paused_because = Some(why));
                            r.stop.store(true, Ordering::Relaxed);
                            r.view.stopping = true;
                        }
                        if skipped {
                            r.view.skip_noted = true;
                            self.shared.profile(&p.name, |st| st.skipped += 1);
                            tracing::warn!(
                                "profile `{}`: a run is due but the previous one is still going; skipped",
                                p.name
                            );
                        }
                    }
                    Plan::Idle(due) => {
                        let next = match due {
                            Due::Now => Some("now".to_string()),
                            Due::At(t) => Some(rfc3339(t)),
                            Due::Never => None,
                        };
                        let waiting = p
                            .schedule
                            .as_ref()
                            .and_then(|s| schedule::why_waiting(s, f.last, now))
                            .filter(|_| due != Due::Now);
                        self.shared.profile(&p.name, |st| {
                            st.next_run = next;
                            st.waiting = waiting;
                        });
                        if due == Due::Now {
                            ran_once.insert(p.name.clone());
                            running.insert(p.name.clone(), self.launch(p));
                        }
                    }
                }
            }
        }
        self.drain(running, background, tasks).await
    }

    /// Starts the runs asked for through the service port (`run-now`),
    /// outside their schedules and windows; one already going is left be.
    fn run_requested(&self, running: &mut BTreeMap<String, Handle>, ran_once: &mut HashSet<String>) {
        for name in self.shared.take_run_requests() {
            if running.contains_key(&name) {
                tracing::info!("profile `{name}`: run requested, but a run is already going");
                continue;
            }
            let Some(p) = self.profiles.iter().find(|p| p.name == name) else {
                tracing::warn!("profile `{name}`: run requested, but no such profile is loaded");
                continue;
            };
            tracing::info!("profile `{name}`: run requested through the service port; starting now");
            ran_once.insert(name.clone());
            let mut run = self.launch(p);
            run.requested = true;
            running.insert(name, run);
        }
    }

    fn launch(&self, profile: &Profile) -> Handle {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(pipeline::run_profile(
            profile.clone(),
            self.base.clone(),
            stop.clone(),
            self.shared.clone(),
            self.policy,
        ));
        Handle {
            task,
            stop,
            view: tick::Running::default(),
            requested: false,
        }
    }

    /// The startup line and each profile's next run.
    async fn announce(&self) {
        let c = &self.settings.config;
        let listening = self
            .shared
            .listen()
            .map_or("no service port".to_string(), |a| format!("serving {a}"));
        tracing::info!(
            "sensor {} ({}) running: state {}, {listening}, proxy allows {} destination(s), {} profile(s){}",
            env!("CARGO_PKG_VERSION"),
            self.shared.sensor_id,
            c.sensor.state_dir.display(),
            c.proxy.allow.len(),
            self.profiles.len(),
            self.settings
                .config_file
                .as_ref()
                .map(|p| format!(", config {}", p.display()))
                .unwrap_or_default()
        );
        if self.profiles.is_empty() {
            tracing::warn!(
                "no scan profiles in {}: nothing will be scanned until profiles are added and the sensor is reloaded (SIGHUP)",
                c.sensor.profiles_dir.display()
            );
        }
        let now = OffsetDateTime::now_utc();
        let facts = facts(&self.shared.inventory, &self.profiles).await;
        for p in &self.profiles {
            let last = facts.get(&p.name).and_then(|f| f.last);
            let next = if self.once {
                "now (--once)".to_string()
            } else {
                next_run_words(p, last, now)
            };
            tracing::info!("profile {}; next run {next}", p.summary());
            self.shared.profile(&p.name, |s| s.summary = p.summary());
        }
    }

    /// Reads the profiles again; running scans continue either way.
    fn reload(&mut self) {
        let c = &self.settings.config;
        match profile_set::load(
            &self.settings.profile_files,
            &c.sensor.profiles_dir,
            self.settings.config_file.is_some(),
        ) {
            Ok(new) => {
                tracing::info!("SIGHUP: {} profile(s) reloaded (running scans continue)", new.len());
                for p in &new {
                    tracing::info!("profile {}", p.summary());
                    self.shared.profile(&p.name, |s| s.summary = p.summary());
                }
                self.local = new;
                self.combine();
            }
            Err(e) => {
                self.shared.error("reload");
                tracing::error!("SIGHUP: profiles not reloaded, keeping the previous ones:\n{e}");
            }
        }
    }

    /// The fleet's assignments changed: they run beside the local profiles
    /// (a local profile keeps its name: a clash leaves the assignment out).
    fn assigned(&mut self, a: Assigned) {
        let names: Vec<&str> = a.profiles.iter().map(|p| p.name.as_str()).collect();
        tracing::info!(profiles = ?names, "fleet: assignments in force");
        for p in &a.profiles {
            self.shared.profile(&p.name, |s| s.summary = p.summary());
        }
        self.remote = a.profiles;
        self.combine();
    }

    fn combine(&mut self) {
        let mut all = self.local.clone();
        for p in &self.remote {
            if all.iter().any(|l| l.name == p.name) {
                tracing::warn!(profile = %p.name, "fleet: a local profile has this name; the assignment is left out");
                continue;
            }
            all.push(p.clone());
        }
        self.profiles = all;
    }

    /// Stops the runs (bounded by the grace period), then the background tasks.
    async fn drain(
        self,
        running: BTreeMap<String, Handle>,
        background: CancellationToken,
        tasks: Vec<(&'static str, JoinHandle<()>)>,
    ) -> Stopped {
        let grace = self.settings.config.sensor.grace;
        tracing::info!(
            "stopping: {} scan(s) running, up to {}s to finish",
            running.len(),
            grace.as_secs()
        );
        for (name, r) in &running {
            self.shared.profile(name, |st| {
                st.paused_because.get_or_insert_with(|| "the sensor stopped".into());
            });
            r.stop.store(true, Ordering::Relaxed);
        }
        let mut stopped = Stopped::default();
        let deadline = Instant::now() + grace;
        for (_, mut r) in running {
            if tokio::time::timeout_at(deadline, &mut r.task).await.is_err() {
                r.task.abort();
                stopped.unfinished_runs += 1;
            }
        }
        if stopped.unfinished_runs > 0 {
            tracing::warn!("grace period over; exiting with scans unfinished");
        }
        background.cancel();
        let deadline = Instant::now() + TASK_DRAIN;
        for (name, mut task) in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::warn!("{name} did not stop within {}s", TASK_DRAIN.as_secs());
                stopped.late_tasks.push(name);
            }
        }
        stopped
    }
}

/// This sensor's fleet credential: the stored one, or a new one for
/// `[upstream] enroll_token` (`--enroll-token`), stored before it is used.
/// `None`: not a fleet member (a plain report token is used).
async fn credential(
    settings: &Settings,
    up: &crate::appliance::config::Upstream,
) -> Result<Option<String>, StartError> {
    let c = &settings.config;
    let dir = &c.sensor.state_dir;
    if let Some(stored) = member::read_credential(dir)? {
        if c.fleet.enroll_token.is_some() {
            tracing::info!("fleet: enrolled already; the enrollment token is not used again");
        }
        return Ok(Some(stored));
    }
    let Some(token) = &c.fleet.enroll_token else {
        return Ok(None);
    };
    let cfg = crate::report::delivery::UpstreamConfig {
        ca_file: up.ca_bundle.clone(),
        client_cert: up.client_cert.clone(),
        client_key: up.client_key.clone(),
        ..crate::report::delivery::UpstreamConfig::new(&up.url, token)
    };
    let client = Client::new(&cfg).map_err(StartError::Delivery)?;
    let name = c.sensor.name.clone().unwrap_or_else(|| settings.sensor_id.clone());
    let mut last = None;
    for url in std::iter::once(&up.url).chain(settings.fallback_urls.iter()) {
        match member::enroll(client.http(), url, token, &settings.sensor_id, &name).await {
            Ok(credential) => {
                member::write_credential(dir, &credential)?;
                tracing::info!(url = %url, name = %name, "fleet: enrolled; credential stored in the state directory");
                return Ok(Some(credential));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| StartError::NothingToDo(dir.clone()), StartError::Member))
}

/// When a profile runs next and, when that is not now, why, and how to
/// run it anyway: the startup line's words.
fn next_run_words(p: &Profile, last: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let Some(s) = p.schedule.as_ref() else {
        return "now".to_string();
    };
    let when = match schedule::due(s, last, now) {
        Due::Now => return "now".to_string(),
        Due::At(t) => {
            let wait = std::time::Duration::try_from(t - now).unwrap_or_default();
            format!("{} (in {})", rfc3339(t), crate::output::human::duration(wait))
        }
        Due::Never => "never".to_string(),
    };
    let why = schedule::why_waiting(s, last, now).unwrap_or_default();
    format!(
        "{when}: {why}; `sensor run --once` or `sensor scans run-now {}` runs it now",
        p.name
    )
}

/// What the scheduler needs of the store per profile, read in one go on a
/// blocking thread, so a long inventory write never stalls the daemon's loop.
async fn facts(inventory: &Arc<Mutex<Inventory>>, profiles: &[Profile]) -> HashMap<String, Facts> {
    let inventory = inventory.clone();
    let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let Ok(inv) = inventory.lock() else {
            return HashMap::new();
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
                (name, Facts { last, paused })
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::appliance::config::Config;

    /// A daemon on a temp state directory with a slow loopback profile, the
    /// service port and an upstream that never answers: every task is
    /// running when the signal fires, and all of them end promptly.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_daemon_shuts_down_cleanly_and_promptly_when_told() {
        let dir = tempfile::tempdir().unwrap();
        // Closed loopback ports a moment ago; 200 of them at 50 probes/s is a four-second walk.
        let ports: Vec<String> = (0..200)
            .map(|_| {
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
                    .to_string()
            })
            .collect();
        let profile = dir.path().join("lab.toml");
        std::fs::write(
            &profile,
            format!(
                "name = \"lab\"\ntargets = [\"127.0.0.1\"]\nports = \"{}\"\nrate = 50\nanalyses = [\"certificates\"]\n",
                ports.join(",")
            ),
        )
        .unwrap();
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = Config::default();
        config.sensor.state_dir = dir.path().join("state");
        config.sensor.grace = Duration::from_secs(5);
        config.service.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.upstream = Some(crate::appliance::config::Upstream {
            url: format!("http://{}", silent.local_addr().unwrap()),
            token: Some("t".into()),
            token_file: None,
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            snapshot_every: Duration::from_secs(3600),
            outbox_max_records: None,
            outbox_max_bytes: None,
        });
        let settings = Settings {
            config,
            config_file: None,
            profile_files: vec![profile],
            sensor_id: "test-sensor".into(),
            admin_tokens: Vec::new(),
            fallback_urls: Vec::new(),
            ca_bundle_flags: Vec::new(),
        };
        let daemon = Daemon::start(settings).await.unwrap();
        let shared = daemon.shared().clone();
        assert!(shared.listen().is_some_and(|a| a.port() != 0));
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(daemon.run(shutdown.clone(), Arc::new(Notify::new())));
        let started = Instant::now();
        while !shared.profiles().iter().any(|p| p.running) {
            assert!(started.elapsed() < Duration::from_secs(10), "the run did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;

        let fired = Instant::now();
        shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(15), run)
            .await
            .expect("the daemon did not stop within 15 s")
            .unwrap();
        assert_eq!(stopped, Stopped::default(), "every run and task ended by itself");
        assert!(fired.elapsed() < Duration::from_secs(5), "took {:?}", fired.elapsed());
        let lab = shared.profiles().into_iter().find(|p| p.name == "lab").unwrap();
        assert_eq!(lab.last_outcome.as_deref(), Some("paused"), "{lab:?}");
        assert_eq!(lab.paused_because.as_deref(), Some("the sensor stopped"), "{lab:?}");
        let inv = shared.inventory.lock().unwrap();
        assert!(
            inv.has_scan_state("lab").unwrap(),
            "the checkpoint is kept for the next start"
        );
    }
}
