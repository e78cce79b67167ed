//! One run of one scan profile: the profile's targets, ports and analyses
//! turned into a scan, and its records collected.
//!
//! The appliance runs profiles unattended; this is the seam between what an
//! operator configured (`profile`) and what the engine does (`scan`), kept
//! free of scheduling, storage and signals so it can be driven by the daemon,
//! by tests, or once from the command line.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::mpsc;

use crate::appliance::profile::Profile;
use crate::discover::checkpoint::{Checkpoint, CheckpointError, Tracker};
use crate::discover::connect::Progress;
use crate::discover::targets::{ScanPlan, TargetError, TargetSet};
use crate::model::record::EndpointRecord;
use crate::scan::{self, ScanError, ScanOptions};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("profile `{profile}`: {source}")]
    Targets {
        profile: String,
        #[source]
        source: TargetError,
    },
    #[error("profile `{profile}`: {source}")]
    Scan {
        profile: String,
        #[source]
        source: ScanError,
    },
    #[error("profile `{profile}`: {source}")]
    Checkpoint {
        profile: String,
        #[source]
        source: CheckpointError,
    },
}

/// What one run (or one part of a resumed run) produced.
#[derive(Debug)]
pub struct Outcome {
    pub records: Vec<EndpointRecord>,
    /// Where the walk stands: `None` when every position of the plan is
    /// done, else the checkpoint to resume from (same seed).
    pub remaining: Option<Checkpoint>,
}

/// The scan options a profile asks for, on top of the sensor's `base`.
pub fn options(profile: &Profile, base: &ScanOptions) -> ScanOptions {
    let mut o = base.clone();
    if let Some(r) = profile.rate {
        o.portscan.rate = r;
    }
    if let Some(t) = profile.scan_type {
        o.scan_type = t;
    }
    if let Some(c) = profile.max_concurrency {
        o.portscan.max_in_flight = c;
    }
    if let Some(t) = profile.connect_timeout {
        o.portscan.connect_timeout = t;
    }
    if let Some(t) = profile.handshake_timeout {
        o.handshake_timeout = t;
    }
    if let Some(p) = profile.per_host_connections {
        o.per_host = p;
    }
    let a = profile.analyses;
    o.enumerate = a.enumeration;
    o.vulnerabilities = a.vulnerabilities;
    o.http_headers = a.http_headers;
    o.grade = a.grade;
    o
}

/// Run `profile` once to the end (or until `stop`), returning every record.
/// `resolve` turns host names into addresses (the only I/O before the scan).
/// With `resume`, the walk continues a run that was stopped: positions done
/// before are skipped, so no target is probed twice and none is left out
/// (the checkpoint must come from the same profile and `seed`).
pub async fn run<R>(
    profile: &Profile,
    base: &ScanOptions,
    seed: u64,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    resolve: R,
    resume: Option<&Checkpoint>,
) -> Result<Outcome, JobError>
where
    R: FnMut(&str) -> Result<Vec<std::net::IpAddr>, String>,
{
    let name = profile.name.clone();
    let targets = TargetSet::new(&profile.targets, &profile.exclude, resolve).map_err(|source| JobError::Targets {
        profile: name.clone(),
        source,
    })?;
    let plan = ScanPlan::new(targets, profile.ports.clone(), seed)
        .map_err(|source| JobError::Targets {
            profile: name.clone(),
            source,
        })?
        .with_shard(profile.shard);
    let tracker = match resume {
        None => Tracker::new(&plan),
        Some(cp) => Tracker::resume(&plan, cp, std::path::Path::new("(saved scan state)")).map_err(|source| {
            JobError::Checkpoint {
                profile: name.clone(),
                source,
            }
        })?,
    };
    let tracker = Arc::new(tracker);
    let (tx, mut rx) = mpsc::channel(256);
    let opts = options(profile, base);
    let job = tokio::spawn(scan::run_tracked(
        Arc::new(plan),
        opts,
        progress,
        stop,
        tracker.clone(),
        tx,
    ));
    let mut records = Vec::new();
    while let Some(r) = rx.recv().await {
        records.push(r);
    }
    match job.await {
        Ok(Ok(())) => Ok(Outcome {
            records,
            remaining: (!tracker.is_complete()).then(|| tracker.snapshot()),
        }),
        Ok(Err(source)) => Err(JobError::Scan { profile: name, source }),
        Err(e) => Err(JobError::Scan {
            profile: name,
            source: ScanError::Engine(e.to_string()),
        }),
    }
}
