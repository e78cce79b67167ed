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

use serde::Serialize;

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
    pub last_endpoints: usize,
    pub last_changes: usize,
    /// When the next run starts (RFC 3339), `now`, or absent when none is scheduled.
    pub next_run: Option<String>,
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
    live: Mutex<HashMap<String, Arc<Progress>>>,
    probes_done: AtomicU64,
    open_done: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    alerts: OnceLock<Arc<crate::alert::Alerts>>,
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
            probes_done: AtomicU64::new(0),
            open_done: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            alerts: OnceLock::new(),
        }
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

    pub fn listen(&self) -> Option<SocketAddr> {
        *lock(&self.listen)
    }

    pub fn set_listen(&self, addr: SocketAddr) {
        *lock(&self.listen) = Some(addr);
    }

    /// A run of `profile` started: its progress counts live until [`Shared::scan_ended`].
    pub fn scan_started(&self, profile: &str, progress: Arc<Progress>) {
        lock(&self.live).insert(profile.to_string(), progress);
    }

    /// The run of `profile` ended: its probes join the totals.
    pub fn scan_ended(&self, profile: &str) {
        if let Some(p) = lock(&self.live).remove(profile) {
            self.probes_done
                .fetch_add(p.probed.load(Ordering::Relaxed), Ordering::Relaxed);
            self.open_done
                .fetch_add(p.open.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Probes finished and open ports found since start, running scans included.
    pub fn probes(&self) -> (u64, u64) {
        let (mut probes, mut open) = (
            self.probes_done.load(Ordering::Relaxed),
            self.open_done.load(Ordering::Relaxed),
        );
        for p in lock(&self.live).values() {
            probes += p.probed.load(Ordering::Relaxed);
            open += p.open.load(Ordering::Relaxed);
        }
        (probes, open)
    }
}
