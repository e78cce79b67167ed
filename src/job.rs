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

use crate::portscan::Progress;
use crate::profile::Profile;
use crate::record::EndpointRecord;
use crate::scan::{self, ScanError, ScanOptions};
use crate::targets::{ScanPlan, TargetError, TargetSet};

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
pub async fn run<R>(
    profile: &Profile,
    base: &ScanOptions,
    seed: u64,
    stop: Arc<AtomicBool>,
    resolve: R,
) -> Result<Vec<EndpointRecord>, JobError>
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
    let (tx, mut rx) = mpsc::channel(256);
    let opts = options(profile, base);
    let job = tokio::spawn(scan::run_until(
        Arc::new(plan),
        0,
        opts,
        Arc::new(Progress::default()),
        stop,
        tx,
    ));
    let mut records = Vec::new();
    while let Some(r) = rx.recv().await {
        records.push(r);
    }
    match job.await {
        Ok(Ok(())) => Ok(records),
        Ok(Err(source)) => Err(JobError::Scan { profile: name, source }),
        Err(e) => Err(JobError::Scan {
            profile: name,
            source: ScanError::Engine(e.to_string()),
        }),
    }
}
