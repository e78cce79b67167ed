//! The daemon's reporting side: the outbox in the state directory, the
//! delivery task, the snapshots, and the intake route for sensors that
//! report to this one.
//!
//! Kept apart from `run.rs` so the daemon calls three things: [`Reporter::start`]
//! once, [`Reporter::enqueue_run`] right after each `record_run` (with the
//! inventory lock still held, so no other run's changes interleave), and
//! [`intake`] when building the service routes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use netsensor::model::timestamp::rfc3339;
use netsensor::report::delivery::{self, Client, Stats, UpstreamConfig};
use netsensor::report::intake::{Intake, IntakeConfig};
use netsensor::report::outbox::{Class, DirStorage, Limits, Outbox, OutboxError};
use netsensor::report::{self, Event, EventKind, SensorInfo};
use netsensor::serve::Handler;
use netsensor::store::inventory::{Change, Filter, Inventory, Key};
use time::OffsetDateTime;
use tokio::sync::Notify;

/// The outbox's directory inside the state directory.
pub const OUTBOX_DIR: &str = "outbox";

pub struct Reporter {
    outbox: Arc<Mutex<Outbox<DirStorage>>>,
    wake: Arc<Notify>,
    pub stats: Arc<Stats>,
}

/// Opens the outbox of `state_dir`, logging what recovery repaired.
pub fn open_outbox(state_dir: &Path, limits: Limits) -> anyhow::Result<Outbox<DirStorage>> {
    let dir = state_dir.join(OUTBOX_DIR);
    let storage = DirStorage::open(&dir).with_context(|| format!("cannot open the outbox {}", dir.display()))?;
    let (ob, rec) = Outbox::open(storage, limits)?;
    if rec.temporaries + rec.finished_batches + rec.corrupt > 0 || rec.in_flight.is_some() {
        tracing::warn!(
            temporaries = rec.temporaries,
            finished_batches = rec.finished_batches,
            corrupt = rec.corrupt,
            in_flight = rec.in_flight.as_deref().unwrap_or("-"),
            "outbox recovered after an unclean stop"
        );
    }
    Ok(ob)
}

impl Reporter {
    /// Opens the outbox, builds the HTTPS client (a bad URL, CA or identity
    /// is an error now, not at the first report), starts delivery and the
    /// snapshot timer (a snapshot now, then every `snapshot_every`).
    pub fn start(
        state_dir: &Path,
        cfg: UpstreamConfig,
        sensor: SensorInfo,
        inventory: Arc<Mutex<Inventory>>,
        snapshot_every: Duration,
        limits: Limits,
    ) -> anyhow::Result<Arc<Reporter>> {
        let client = Client::new(&cfg)?;
        let outbox = Arc::new(Mutex::new(open_outbox(state_dir, limits)?));
        let wake = Arc::new(Notify::new());
        let stats = Arc::new(Stats::default());
        tracing::info!(endpoint = %client.endpoint(), sensor = %sensor.id, "reporting upstream");
        tokio::spawn(delivery::run(
            outbox.clone(),
            client,
            sensor,
            cfg,
            wake.clone(),
            stats.clone(),
        ));
        let reporter = Arc::new(Reporter { outbox, wake, stats });
        let r = reporter.clone();
        tokio::spawn(async move {
            let mut last = None::<tokio::time::Instant>;
            loop {
                let due = last.is_none_or(|t| t.elapsed() >= snapshot_every);
                // The outbox lock may be held by a write in progress (fsync): ask off the runtime.
                let r3 = r.clone();
                let owed =
                    tokio::task::spawn_blocking(move || r3.outbox.lock().map(|ob| ob.resync_needed()).unwrap_or(false))
                        .await
                        .unwrap_or(false);
                if due || owed {
                    let (r2, inv) = (r.clone(), inventory.clone());
                    let done = tokio::task::spawn_blocking(move || r2.enqueue_snapshot(&inv, owed && !due)).await;
                    match done {
                        Ok(Ok(())) => last = Some(tokio::time::Instant::now()),
                        Ok(Err(e)) => tracing::error!("snapshot not enqueued: {e:#}"),
                        Err(e) => tracing::error!("snapshot task: {e}"),
                    }
                }
                tokio::time::sleep(Duration::from_secs(5).min(snapshot_every)).await;
            }
        });
        Ok(reporter)
    }

    /// Delivery counters and the outbox's depth, for `/api/v1/status`.
    pub fn summary(&self) -> serde_json::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let st = self.outbox.lock().map(|ob| ob.status()).ok();
        serde_json::json!({
            "delivered_batches": self.stats.delivered_batches.load(Relaxed),
            "delivered_events": self.stats.delivered_events.load(Relaxed),
            "retries": self.stats.retries.load(Relaxed),
            "parked_batches": self.stats.parked.load(Relaxed),
            "outbox_records": st.as_ref().map(|s| s.records),
            "outbox_events": st.as_ref().map(|s| s.events),
            "resync_owed": st.as_ref().map(|s| s.resync_needed),
        })
    }

    /// The reporting series of `/metrics`.
    pub fn metrics(&self, e: &mut netsensor::appliance::metrics::Exposition) {
        use netsensor::appliance::metrics::Kind;
        use std::sync::atomic::Ordering::Relaxed;
        let st = self.outbox.lock().map(|ob| ob.status()).unwrap_or_default();
        let counters = [
            (
                "netsensor_report_batches_delivered_total",
                "Report batches upstream acknowledged.",
                &self.stats.delivered_batches,
            ),
            (
                "netsensor_report_events_delivered_total",
                "Events in acknowledged batches.",
                &self.stats.delivered_events,
            ),
            (
                "netsensor_report_retries_total",
                "Delivery attempts that will be retried (errors, 408, 429, 5xx).",
                &self.stats.retries,
            ),
            (
                "netsensor_report_batches_parked_total",
                "Batches upstream refused for good (parked in the outbox).",
                &self.stats.parked,
            ),
        ];
        for (name, help, n) in counters {
            e.single(name, Kind::Counter, help, n.load(Relaxed) as f64);
        }
        e.single(
            "netsensor_outbox_records",
            Kind::Gauge,
            "Records in the outbox (pending and parked).",
            st.records as f64,
        );
        e.single(
            "netsensor_outbox_events",
            Kind::Gauge,
            "Events in the outbox.",
            st.events as f64,
        );
        e.single(
            "netsensor_outbox_bytes",
            Kind::Gauge,
            "Bytes of outbox records.",
            st.bytes as f64,
        );
        e.single(
            "netsensor_outbox_parked_batches",
            Kind::Gauge,
            "Parked batches waiting for `sensor outbox requeue`.",
            st.parked_batches.len() as f64,
        );
        e.single(
            "netsensor_outbox_resync_owed",
            Kind::Gauge,
            "1 while a full snapshot is owed upstream (the outbox was full).",
            if st.resync_needed { 1.0 } else { 0.0 },
        );
    }

    /// Stores one run's changes in the outbox (durably) before the daemon
    /// says anything about them. `inv` is the inventory the run was just
    /// recorded in (lock held by the caller). A full outbox is logged and
    /// owed as a resync (see `netsensor::report::outbox`).
    pub fn enqueue_run(&self, inv: &Inventory, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        let at = rfc3339(OffsetDateTime::now_utc());
        let mut by_key = BTreeMap::new();
        match inv.query(&Filter {
            sensor: Some(String::new()),
            ..Filter::default()
        }) {
            Ok(rows) => {
                for s in rows {
                    by_key.insert(s.key.clone(), s.record);
                }
            }
            Err(e) => {
                tracing::error!("cannot read the inventory for the report: {e}; a resync is owed");
                self.mark_resync();
                return;
            }
        }
        let events = report::events_from_changes(changes, &at, |k: &Key| by_key.get(k).cloned());
        if !self.store(Class::Change, &events) {
            self.mark_resync();
        }
    }

    fn store(&self, class: Class, events: &[Event]) -> bool {
        if events.is_empty() {
            return true;
        }
        let mut ob = match self.outbox.lock() {
            Ok(ob) => ob,
            Err(_) => {
                tracing::error!("outbox lock poisoned; events not stored");
                return false;
            }
        };
        let stored = report::enqueue(&mut ob, class, events);
        let ok = stored.is_ok();
        match stored {
            Ok(n) => {
                for e in events {
                    tracing::debug!(target: "sensor::reporting::events", event = %e.event_id, kind = e.kind.as_str(), "event stored");
                }
                tracing::info!(events = n, kind = ?class, "events stored in the outbox");
            }
            Err(e @ OutboxError::Full { .. }) => {
                tracing::error!("outbox full: {e}; a full snapshot will be sent when there is room again");
            }
            Err(e) => {
                tracing::error!("events not stored in the outbox: {e}");
            }
        }
        drop(ob);
        self.wake.notify_one();
        ok
    }

    fn mark_resync(&self) {
        if let Ok(mut ob) = self.outbox.lock()
            && let Err(e) = ob.mark_resync()
        {
            tracing::error!("cannot note the resync owed: {e}");
        }
    }

    /// Enqueues the whole of this sensor's active inventory as `snapshot`
    /// events. With `only_if_room`, waits until the outbox is below half its
    /// cap (a resync after a full outbox).
    fn enqueue_snapshot(&self, inventory: &Arc<Mutex<Inventory>>, only_if_room: bool) -> anyhow::Result<()> {
        if only_if_room {
            let ob = self
                .outbox
                .lock()
                .map_err(|_| anyhow::anyhow!("outbox lock poisoned"))?;
            let st = ob.status();
            if st.records * 2 >= st.max_records || st.bytes * 2 >= st.max_bytes {
                return Ok(());
            }
        }
        let rows = inventory
            .lock()
            .map_err(|_| anyhow::anyhow!("inventory lock poisoned"))?
            .query(&Filter {
                sensor: Some(String::new()),
                ..Filter::default()
            })?;
        let at = rfc3339(OffsetDateTime::now_utc());
        // Active endpoints as `snapshot`, gone ones as `gone` (as last seen):
        // upstream converges on the whole state, including a `gone` whose
        // event a crash between the inventory's commit and the outbox lost.
        let events: Vec<Event> = rows
            .into_iter()
            .map(|s| match s.gone_at {
                None => Event::new(EventKind::Snapshot, &at, Vec::new(), s.record),
                Some(g) => Event::new(
                    EventKind::Gone,
                    &at,
                    vec![format!("gone since {g} (snapshot)")],
                    s.record,
                ),
            })
            .collect();
        let n = events.len();
        if !self.store(Class::Snapshot, &events) {
            anyhow::bail!("the snapshot did not fit in the outbox; tried again later");
        }
        let mut ob = self
            .outbox
            .lock()
            .map_err(|_| anyhow::anyhow!("outbox lock poisoned"))?;
        if ob.resync_needed() {
            ob.clear_resync()?;
        }
        tracing::info!(endpoints = n, "snapshot enqueued");
        Ok(())
    }
}

/// [`Reporter::start`] from the daemon's configuration (`[upstream]` or
/// `--upstream`/`--token`).
pub fn start_from_config(
    up: &netsensor::appliance::config::Upstream,
    state_dir: &Path,
    sensor_id: &str,
    sensor_name: Option<&str>,
    inventory: Arc<Mutex<Inventory>>,
) -> anyhow::Result<Arc<Reporter>> {
    if !netsensor::report::intake::is_sensor_id(sensor_id) {
        return Err(crate::cli::UsageError(format!(
            "sensor id `{sensor_id}` cannot go into reports: use 1-64 letters, digits, `.`, `_` or `-` (--sensor-id or [sensor] id)"
        ))
        .into());
    }
    let token = match (&up.token, &up.token_file) {
        (Some(t), _) => t.clone(),
        (None, Some(f)) => netsensor::appliance::config::read_secret(f, "upstream.token_file")?,
        (None, None) => {
            return Err(crate::cli::UsageError(
                "an upstream needs a token: --token T (or [upstream] token / token_file)".into(),
            )
            .into());
        }
    };
    let mut cfg = UpstreamConfig::new(&up.url, &token);
    cfg.ca_file = up.ca_bundle.clone();
    cfg.client_cert = up.client_cert.clone();
    cfg.client_key = up.client_key.clone();
    // The longest wait between attempts (default 5 min); tests and labs shorten it.
    if let Some(ms) = std::env::var("SENSOR_UPSTREAM_BACKOFF_MAX_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        cfg.backoff_max = Duration::from_millis(ms.max(1));
        cfg.backoff_base = cfg.backoff_base.min(cfg.backoff_max);
    }
    let sensor = SensorInfo {
        id: sensor_id.to_string(),
        name: sensor_name.map_or_else(|| sensor_id.to_string(), str::to_string),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut limits = limits_from_env();
    // The configuration's cap, unless the environment set one (tests do).
    if std::env::var_os("SENSOR_OUTBOX_MAX_RECORDS").is_none()
        && let Some(n) = up.outbox_max_records
    {
        limits.max_records = usize::try_from(n).unwrap_or(usize::MAX).max(1);
    }
    if std::env::var_os("SENSOR_OUTBOX_MAX_BYTES").is_none()
        && let Some(n) = up.outbox_max_bytes
    {
        limits.max_bytes = n.max(4096);
    }
    Reporter::start(
        state_dir,
        cfg,
        sensor,
        inventory,
        up.snapshot_every.max(Duration::from_secs(1)),
        limits,
    )
    .map_err(|e| match e.downcast::<delivery::DeliveryError>() {
        Ok(d) => crate::cli::UsageError(format!("upstream: {d}")).into(),
        Err(e) => e,
    })
}

/// The outbox cap (default 100 000 records, 1 GiB), changed by
/// `SENSOR_OUTBOX_MAX_RECORDS` and `SENSOR_OUTBOX_MAX_BYTES`; see docs/reporting.md.
pub fn limits_from_env() -> Limits {
    let mut limits = Limits::default();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = env("SENSOR_OUTBOX_MAX_RECORDS") {
        limits.max_records = n.max(1) as usize;
    }
    if let Some(n) = env("SENSOR_OUTBOX_MAX_BYTES") {
        limits.max_bytes = n.max(4096);
    }
    limits
}

/// The tokens the intake accepts: the configuration's and flags', plus
/// `[intake] tokens_file` (TOML lines `sensor-id = "token"`).
pub fn intake_tokens(intake: &netsensor::appliance::config::Intake) -> anyhow::Result<BTreeMap<String, String>> {
    let mut tokens = intake.tokens.clone();
    if let Some(f) = &intake.tokens_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("intake.tokens_file {}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')));
            match parsed {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                    tokens.insert(k.trim_matches('"').to_string(), v.to_string());
                }
                _ => {
                    return Err(crate::cli::UsageError(format!(
                        "{}:{}: write `sensor-id = \"token\"`",
                        f.display(),
                        n + 1
                    ))
                    .into());
                }
            }
        }
    }
    Ok(tokens)
}

/// The intake and endpoints API for the service port, when tokens are set.
pub fn intake(
    inventory: Arc<dyn netsensor::store::central::CentralStore>,
    tokens: BTreeMap<String, String>,
) -> Option<Arc<dyn Handler>> {
    if tokens.is_empty() {
        return None;
    }
    Some(Arc::new(Intake::new(
        inventory,
        IntakeConfig {
            tokens,
            max_decoded: netsensor::report::intake::DEFAULT_MAX_DECODED,
        },
    )))
}
