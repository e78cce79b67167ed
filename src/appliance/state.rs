//! What the running daemon knows about itself, shared between the
//! scheduler, the runs and the service routes (status, metrics).
//!
//! Everything here is cheap to read at scrape time: per-profile counters
//! under a mutex held for a copy, live scan progress as atomics, and the
//! inventory and outbox handles the routes query. A poisoned mutex is read
//! through (the data are counters, never half-updated invariants).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Notify;

use crate::discover::connect::Progress;
use crate::report::reporter::Reporter;
use crate::serve::proxy::Counters;
use crate::store::inventory::Inventory;

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
    /// Why the last run paused, when it did (`outside window 22:00-06:00
    /// UTC`, `the sensor stopped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_because: Option<String>,
    pub last_endpoints: usize,
    pub last_changes: usize,
    /// When the next run starts (RFC 3339), `now`, or absent when none is scheduled.
    pub next_run: Option<String>,
    /// Why it waits for `next_run` (its window, interval or cron slot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// The run going now, as far as it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<RunProgress>,
}

/// How far the run of a profile has got: what `sensor status` shows while
/// it goes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RunProgress {
    /// Positions of the walk done, of `total` (this part of the run).
    pub probes: u64,
    pub total: u64,
    /// Open ports found so far.
    pub open: u64,
    /// Open ports whose examination (handshake, enumeration, checks) finished.
    pub examined: u64,
    /// Examinations going now.
    pub examining: u64,
    /// Probes per second since the run started.
    pub rate: f64,
    pub elapsed_seconds: u64,
    /// Seconds until the last probe, at this rate (absent before the
    /// first probe and once they are all done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
}

impl RunProgress {
    /// The figures of `p`, `elapsed` after the run started.
    pub fn of(p: &Progress, elapsed: std::time::Duration) -> RunProgress {
        let probes = p.walked.load(Ordering::Relaxed);
        let total = p.total.load(Ordering::Relaxed).max(probes);
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { probes as f64 / secs } else { 0.0 };
        let left = total - probes;
        RunProgress {
            probes,
            total,
            open: p.open.load(Ordering::Relaxed),
            examined: p.examining.done(),
            examining: p.examining.in_flight(),
            rate: (rate * 10.0).round() / 10.0,
            elapsed_seconds: elapsed.as_secs(),
            eta_seconds: (left > 0 && rate > 0.0).then(|| (left as f64 / rate).ceil() as u64),
        }
    }
}

/// What became of a request to run a profile now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunNow {
    /// Queued: the scheduler starts it within a tick.
    Queued,
    /// No profile of that name is loaded.
    Unknown,
    /// It is running already.
    Running,
}

/// The daemon's state shared with the service routes.
pub struct Shared {
    pub sensor_id: String,
    pub sensor_name: Option<String>,
    pub started_at: String,
    pub state_dir: PathBuf,
    pub inventory: Arc<Mutex<Inventory>>,
    pub proxy: Arc<Counters>,
    /// Reporting upstream, when an upstream is configured.
    pub reporter: Option<Arc<Reporter>>,
    listen: Mutex<Option<SocketAddr>>,
    profiles: Mutex<BTreeMap<String, ProfileStatus>>,
    live: Mutex<HashMap<String, (Arc<Progress>, Instant)>>,
    /// Profiles asked to run now (`POST /api/v1/profiles/{name}/run-now`).
    run_now: Mutex<Vec<String>>,
    run_now_asked: Notify,
    probes_done: AtomicU64,
    open_done: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    alerts: OnceLock<Arc<crate::alert::Alerts>>,
    /// A central's enrolled sensors by status (online, offline, suspended,
    /// voided), as its last liveness pass counted them.
    fleet: Mutex<Option<Vec<(&'static str, usize)>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn new(
        sensor_id: String,
        sensor_name: Option<String>,
        started_at: String,
        state_dir: PathBuf,
        inventory: Arc<Mutex<Inventory>>,
        reporter: Option<Arc<Reporter>>,
    ) -> Shared {
        Shared {
            sensor_id,
            sensor_name,
            started_at,
            state_dir,
            inventory,
            proxy: Arc::new(Counters::default()),
            reporter,
            listen: Mutex::new(None),
            profiles: Mutex::new(BTreeMap::new()),
            live: Mutex::new(HashMap::new()),
            run_now: Mutex::new(Vec::new()),
            run_now_asked: Notify::new(),
            probes_done: AtomicU64::new(0),
            open_done: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            alerts: OnceLock::new(),
            fleet: Mutex::new(None),
        }
    }

    /// A central's sensors by status (the liveness pass sets it).
    pub fn set_fleet(&self, counts: Vec<(&'static str, usize)>) {
        *lock(&self.fleet) = Some(counts);
    }

    pub fn fleet(&self) -> Option<Vec<(&'static str, usize)>> {
        lock(&self.fleet).clone()
    }

    /// Alerting, when `[alerts]` configures it (set once, at start).
    pub fn alerts(&self) -> Option<&Arc<crate::alert::Alerts>> {
        self.alerts.get()
    }

    pub fn set_alerts(&self, alerts: Arc<crate::alert::Alerts>) {
        let _ = self.alerts.set(alerts);
    }

    /// Counts one error of `kind` (`scan`, `inventory`, `reload`, `internal`).
    pub fn error(&self, kind: &'static str) {
        *lock(&self.errors).entry(kind).or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.errors).clone()
    }

    /// Updates the status of profile `name` (created on first use).
    pub fn profile<R>(&self, name: &str, f: impl FnOnce(&mut ProfileStatus) -> R) -> R {
        let mut map = lock(&self.profiles);
        f(map.entry(name.to_string()).or_insert_with(|| ProfileStatus {
            name: name.to_string(),
            ..ProfileStatus::default()
        }))
    }

    /// Every profile's status, by name.
    pub fn profiles(&self) -> Vec<ProfileStatus> {
        lock(&self.profiles).values().cloned().collect()
    }

    /// Every profile's status with the progress of the runs going now.
    pub fn profiles_with_progress(&self) -> Vec<ProfileStatus> {
        let live = lock(&self.live);
        let mut all = self.profiles();
        for p in all.iter_mut().filter(|p| p.running) {
            p.progress = live.get(&p.name).map(|(pr, at)| RunProgress::of(pr, at.elapsed()));
        }
        all
    }

    /// Asks for a run of `profile` now, outside its schedule and window
    /// (the scheduler starts it at its next tick).
    pub fn request_run(&self, profile: &str) -> RunNow {
        let state = lock(&self.profiles).get(profile).map(|p| p.running);
        match state {
            None => RunNow::Unknown,
            Some(true) => RunNow::Running,
            Some(false) => {
                let mut queue = lock(&self.run_now);
                if !queue.iter().any(|p| p == profile) {
                    queue.push(profile.to_string());
                }
                drop(queue);
                self.run_now_asked.notify_one();
                RunNow::Queued
            }
        }
    }

    /// The profiles asked to run now, in the order asked (once each).
    pub fn take_run_requests(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.run_now))
    }

    /// Resolves when a run is asked for.
    pub async fn run_requested(&self) {
        self.run_now_asked.notified().await;
    }

    pub fn listen(&self) -> Option<SocketAddr> {
        *lock(&self.listen)
    }

    pub fn set_listen(&self, addr: SocketAddr) {
        *lock(&self.listen) = Some(addr);
    }

    /// A run of `profile` started: its progress counts live until [`Shared::scan_ended`].
    pub fn scan_started(&self, profile: &str, progress: Arc<Progress>) {
        lock(&self.live).insert(profile.to_string(), (progress, Instant::now()));
    }

    /// The run of `profile` ended: its probes join the totals.
    pub fn scan_ended(&self, profile: &str) {
        if let Some((p, _)) = lock(&self.live).remove(profile) {
            self.probes_done
                .fetch_add(p.probed.load(Ordering::Relaxed), Ordering::Relaxed);
            self.open_done
                .fetch_add(p.open.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// The pacing rate in force of each running scan, by profile name
    /// ([`Progress::probe_rate`]: `Some(0)` before its engine started, `None`
    /// when it runs unlimited), sorted by name.
    pub fn probe_rates(&self) -> Vec<(String, Option<u64>)> {
        let mut v: Vec<(String, Option<u64>)> = lock(&self.live)
            .iter()
            .map(|(name, (p, _))| (name.clone(), p.probe_rate()))
            .collect();
        v.sort();
        v
    }

    /// Probes finished and open ports found since start, running scans included.
    pub fn probes(&self) -> (u64, u64) {
        let (mut probes, mut open) = (
            self.probes_done.load(Ordering::Relaxed),
            self.open_done.load(Ordering::Relaxed),
        );
        for (p, _) in lock(&self.live).values() {
            probes += p.probed.load(Ordering::Relaxed);
            open += p.open.load(Ordering::Relaxed);
        }
        (probes, open)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn progress_says_how_far_and_how_long_is_left() {
        let p = Progress::default();
        p.total.store(1000, Ordering::Relaxed);
        p.walked.store(250, Ordering::Relaxed);
        p.open.store(3, Ordering::Relaxed);
        let busy = p.examining.begin();
        drop(p.examining.begin());
        let r = RunProgress::of(&p, Duration::from_secs(5));
        assert_eq!(
            r,
            RunProgress {
                probes: 250,
                total: 1000,
                open: 3,
                examined: 1,
                examining: 1,
                rate: 50.0,
                elapsed_seconds: 5,
                eta_seconds: Some(15),
            }
        );
        drop(busy);
        p.walked.store(1000, Ordering::Relaxed);
        assert_eq!(
            RunProgress::of(&p, Duration::from_secs(10)).eta_seconds,
            None,
            "all probes done"
        );
        assert_eq!(RunProgress::of(&Progress::default(), Duration::ZERO).eta_seconds, None);
    }
}
