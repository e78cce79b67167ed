//! One run of one profile, end to end: the job, then the inventory, then
//! the outbox, then the saved progress; said last.
//!
//! The order is the reporting guarantee (ARCHITECTURE.md, invariants): a
//! change is in the outbox, fsync'd, before it is logged or sent. [`store`]
//! is the only way to obtain a run's changes (a [`Recorded`]), and it puts
//! them in the outbox under the inventory's lock before returning them, so
//! nothing downstream (the log, the status, delivery) can speak of a change
//! that is not durable yet, and no other run's changes interleave.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use time::OffsetDateTime;

use crate::appliance::job::{self, JobError, Outcome};
use crate::appliance::profile::Profile;
use crate::appliance::resume::{self, Paused};
use crate::appliance::state::Shared;
use crate::discover::connect::Progress;
use crate::discover::targets;
use crate::model::timestamp::rfc3339;
use crate::report::reporter::Reporter;
use crate::scan::{self, ScanOptions};
use crate::store::inventory::{Change, DiffPolicy, Inventory, InventoryError, Run};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("inventory lock poisoned")]
    Poisoned,
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error("saved progress does not serialise: {0}")]
    State(#[from] serde_json::Error),
}

/// A run's changes once they are in the inventory and, when the sensor
/// reports upstream, in the outbox. Only [`store`] makes one.
#[derive(Debug)]
pub struct Recorded {
    changes: Vec<Change>,
    endpoints: usize,
}

impl Recorded {
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Endpoints the run (all its parts, when complete) found.
    pub fn endpoints(&self) -> usize {
        self.endpoints
    }
}

/// Records `run` in `inv`, puts its changes in `reporter`'s outbox, and
/// saves `paused` as the profile's progress (or clears it when the run is
/// complete), in that order. Blocking (SQLite, fsync): call it off the
/// runtime's workers.
pub fn store(
    inv: &mut Inventory,
    reporter: Option<&Reporter>,
    run: &Run<'_>,
    policy: &DiffPolicy,
    paused: Option<&Paused>,
) -> Result<Recorded, StoreError> {
    let changes = inv.record_run(run, policy)?;
    if let Some(r) = reporter {
        r.enqueue_run(inv, &changes);
    }
    let state = paused.map(serde_json::to_string).transpose()?;
    inv.set_scan_state(run.profile, state.as_deref())?;
    Ok(Recorded {
        changes,
        endpoints: run.records.len(),
    })
}

/// One log line per change (after [`store`], so after the outbox).
pub fn log_changes(profile: &str, recorded: &Recorded) {
    for c in recorded.changes() {
        match c {
            Change::New { key } => tracing::info!(profile, "`{profile}`: new {}:{} {}", key.address, key.port, key.sni),
            Change::Changed { key, reasons } => tracing::info!(
                profile,
                "`{profile}`: changed {}:{} {}: {}",
                key.address,
                key.port,
                key.sni,
                reasons.join("; ")
            ),
            Change::Gone { key, missed_runs } => tracing::info!(
                profile,
                "`{profile}`: gone {}:{} {} (not seen in {missed_runs} runs)",
                key.address,
                key.port,
                key.sni
            ),
        }
    }
}

/// Runs `profile` once (continuing its paused run if there is one) until
/// it ends or `stop` is set, then stores, reports and logs what it found.
/// Failures are counted and logged; they end this run only.
pub async fn run_profile(
    mut profile: Profile,
    base: ScanOptions,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    policy: DiffPolicy,
) {
    // The operator's blocklist applies to every run, read afresh each time; a
    // broken one stops the run rather than being ignored.
    match targets::read_blocklist(Path::new(targets::SYSTEM_BLOCKLIST)) {
        Ok(blocked) => profile.exclude.extend(blocked),
        Err(e) => {
            shared.error("scan");
            tracing::error!(profile = %profile.name, "blocklist {}: {e}; run not started", targets::SYSTEM_BLOCKLIST);
            return;
        }
    }
    let mut paused = resume::load(&shared.inventory, &profile.name).await;
    let progress = Arc::new(Progress::default());
    shared.scan_started(&profile.name, progress.clone());
    let now = rfc3339(OffsetDateTime::now_utc());
    shared.profile(&profile.name, |s| {
        s.running = true;
        s.runs += 1;
        s.last_started = Some(now.clone());
        s.paused_because = None;
    });
    let result = scan_part(&profile, &base, &progress, &stop, &mut paused).await;
    shared.scan_ended(&profile.name);
    let probes = progress.probed.load(Ordering::Relaxed);
    let finish = |outcome: String, endpoints: usize, changes: usize| {
        shared.profile(&profile.name, |s| {
            s.running = false;
            s.last_finished = Some(rfc3339(OffsetDateTime::now_utc()));
            // Why it was stopped, kept only when it did stop part-way.
            if outcome != "paused" {
                s.paused_because = None;
            }
            s.last_outcome = Some(outcome);
            s.last_endpoints = endpoints;
            s.last_changes = changes;
        });
    };
    let (seed, outcome) = match result {
        Ok(r) => r,
        Err(e) => {
            shared.error("scan");
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
    let (name, tags) = (profile.name.clone(), profile.tags.clone());
    let s = shared.clone();
    let part = outcome.records;
    let stored = tokio::task::spawn_blocking(move || {
        let mut inv = s.inventory.lock().map_err(|_| StoreError::Poisoned)?;
        let run = Run {
            profile: &name,
            started_at: &started,
            finished_at: &finished,
            records: if complete { &all } else { &part },
            tags: &tags,
            complete,
        };
        store(&mut inv, s.reporter.as_deref(), &run, &policy, save.as_ref())
    })
    .await;
    match stored {
        Ok(Ok(recorded)) => {
            if let Some(alerts) = shared.alerts() {
                alerts.wake();
            }
            log_changes(&profile.name, &recorded);
            let (n, changes) = (recorded.endpoints(), recorded.changes().len());
            let how = if complete {
                "finished"
            } else {
                "paused (resumes from its checkpoint)"
            };
            tracing::info!(
                profile = %profile.name,
                endpoints = n,
                changes,
                probes,
                "`{}`: run {how}: {n} endpoint(s), {changes} change(s), {probes} probe(s) in this part",
                profile.name,
            );
            finish(if complete { "finished" } else { "paused" }.to_string(), n, changes);
        }
        Ok(Err(e)) => {
            shared.error("inventory");
            tracing::error!(profile = %profile.name, "cannot store the run: {e}");
            finish(format!("failed: {e}"), 0, 0);
        }
        Err(e) => {
            shared.error("internal");
            tracing::error!(profile = %profile.name, "{e}");
            finish(format!("failed: {e}"), 0, 0);
        }
    }
}

/// The scan of this part: the paused run's walk continued, or a new one.
/// A checkpoint that no longer fits the profile (it changed since) is
/// dropped and the run starts afresh. Returns the seed with the outcome.
async fn scan_part(
    profile: &Profile,
    base: &ScanOptions,
    progress: &Arc<Progress>,
    stop: &Arc<AtomicBool>,
    paused: &mut Option<Paused>,
) -> Result<(u64, Outcome), String> {
    loop {
        let (seed, resume) = match paused.as_ref() {
            Some(p) => {
                tracing::info!(profile = %profile.name, "run resumed from its checkpoint (started {})", p.started_at);
                (p.seed, Some(&p.checkpoint))
            }
            None => {
                tracing::info!(profile = %profile.name, "run started");
                (
                    job::shard_seed(profile).unwrap_or_else(crate::model::ids::random_u64),
                    None,
                )
            }
        };
        match job::run(
            profile,
            base,
            seed,
            progress.clone(),
            stop.clone(),
            scan::resolve,
            resume,
        )
        .await
        {
            Err(JobError::Checkpoint { source, .. }) if paused.is_some() => {
                tracing::warn!(profile = %profile.name, "saved progress no longer matches the profile ({source}); starting afresh");
                *paused = None;
            }
            r => return r.map(|o| (seed, o)).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::model::record::{Category, EndpointRecord};
    use crate::report::outbox::Limits;

    fn record(port: u16) -> EndpointRecord {
        let mut r = EndpointRecord::new(
            IpAddr::from([127, 0, 0, 1]),
            port,
            None,
            Category::Discovered,
            "2026-11-24T12:00:00Z".into(),
        );
        r.port_reason = "syn-ack".into();
        r
    }

    #[test]
    fn a_runs_changes_are_in_the_outbox_when_they_are_handed_out() {
        let d = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&d.path().join("inventory.sqlite")).unwrap();
        let reporter = Reporter::open(d.path(), Limits::default()).unwrap();
        let records = [record(8443), record(8080)];
        let run = Run {
            profile: "lab",
            started_at: "2026-11-24T12:00:00Z",
            finished_at: "2026-11-24T12:00:01Z",
            records: &records,
            tags: &[],
            complete: true,
        };
        let recorded = store(&mut inv, Some(&reporter), &run, &DiffPolicy::default(), None).unwrap();
        assert_eq!(recorded.changes().len(), 2);
        assert_eq!(recorded.endpoints(), 2);
        let st = reporter.status().unwrap();
        assert_eq!(
            st.events, 2,
            "both `new` events are durable before anyone hears of them"
        );
        assert!(
            !inv.has_scan_state("lab").unwrap(),
            "a complete run leaves no progress behind"
        );
        // The same run again: nothing changed, nothing more in the outbox.
        let again = store(&mut inv, Some(&reporter), &run, &DiffPolicy::default(), None).unwrap();
        assert!(again.changes().is_empty());
        assert_eq!(reporter.status().unwrap().events, 2);
    }
}
