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
/// Every field of [`Profile`] is either used here, used by [`plan`], or
/// belongs to the scheduler and the inventory; the tests below keep it so.
pub fn options(profile: &Profile, base: &ScanOptions) -> ScanOptions {
    let mut o = base.clone();
    if let Some(r) = profile.rate {
        o.portscan.rate = crate::discover::pacing::Rate::from(r);
    }
    if let Some(t) = profile.scan_type {
        o.scan_type = t;
    }
    if let Some(h) = profile.host_discovery {
        o.host_discovery = crate::discover::hosts::HostDiscovery::from_setting(Some(h));
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
    if let Some(b) = profile.endpoint_budget {
        o.endpoint_budget = Some(b);
    }
    o.starttls = profile.starttls;
    o.sni_names.extend(profile.sni.iter().cloned());
    let a = profile.analyses;
    o.certificates = a.certificates;
    o.enumerate = a.enumeration;
    o.vulnerabilities = a.vulnerabilities;
    o.http_headers = a.http_headers;
    o.grade = a.grade;
    o.tls_extras = a.tls_extras;
    // A checker per run: its caches live as long as the scan.
    o.revocation = profile.revocation.then(|| {
        std::sync::Arc::new(crate::scan::revocation::Checker::new(
            profile.revocation_allow.clone(),
            crate::scan::revocation::Limits::default(),
        ))
    });
    o
}

/// The seed of a sharded profile's walk. Shards are disjoint only within
/// one walk order: every sensor that shares a plan (a fleet's split, or
/// local profiles with `shard = "i/n"`) must walk it with the same seed, so
/// it comes from what the plan is (targets, exclusions, ports), not from
/// chance. `None` for an unsharded profile (a fresh random order each run).
pub fn shard_seed(profile: &Profile) -> Option<u64> {
    use crate::discover::targets::TargetSpec;
    use sha2::{Digest, Sha256};
    profile.shard?;
    let mut h = Sha256::new();
    for (tag, list) in [(b't', &profile.targets), (b'x', &profile.exclude)] {
        for t in list {
            let text = match t {
                TargetSpec::Net(n) => n.to_string(),
                TargetSpec::Range { first, last } => format!("{first}-{last}"),
                TargetSpec::Host(name) => name.to_ascii_lowercase(),
            };
            h.update([tag]);
            h.update(text.as_bytes());
            h.update([0]);
        }
    }
    h.update(profile.ports.to_string().as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    Some(u64::from_be_bytes(b))
}

/// The walk a profile asks for: its targets less its exclusions, its ports,
/// its shard, in the order `seed` gives.
pub fn plan<R>(profile: &Profile, seed: u64, resolve: R) -> Result<ScanPlan, JobError>
where
    R: FnMut(&str) -> Result<Vec<std::net::IpAddr>, String>,
{
    let err = |source| JobError::Targets {
        profile: profile.name.clone(),
        source,
    };
    let targets = TargetSet::new(&profile.targets, &profile.exclude, resolve).map_err(err)?;
    Ok(ScanPlan::new(targets, profile.ports.clone(), seed)
        .map_err(err)?
        .with_shard(profile.shard))
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
    let plan = plan(profile, seed, resolve)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appliance::profile::{self, Analyses};
    use crate::probe::starttls::dialogue::{Starttls, StarttlsMode};

    const PLAIN: &str = "name = \"p\"\ntargets = [\"127.0.0.1\"]\nports = \"443\"\n";

    #[test]
    fn sharded_profiles_share_one_walk_and_cover_it_once() {
        let mut p = plain();
        assert_eq!(shard_seed(&p), None, "unsharded: a random order per run");
        let resolve = |_: &str| -> Result<Vec<std::net::IpAddr>, String> { Ok(Vec::new()) };
        p.targets = vec!["127.0.0.0/29".parse().unwrap()];
        p.ports = "1-5".parse().unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for i in 1..=3 {
            let mut q = p.clone();
            q.shard = Some(format!("{i}/3").parse().unwrap());
            let seed = shard_seed(&q).unwrap();
            let plan = plan(&q, seed, resolve).unwrap();
            for pos in 0..plan.len() {
                if let Some(t) = plan.at(pos) {
                    *seen.entry((t.addr, t.port)).or_insert(0) += 1;
                }
            }
        }
        assert_eq!(seen.len(), 40, "every (address, port) of the plan");
        assert!(seen.values().all(|n| *n == 1), "each by one shard");
    }

    fn plain() -> Profile {
        profile::parse(PLAIN, "p.toml").unwrap()
    }

    fn with(extra: &str) -> ScanOptions {
        let p = profile::parse(&format!("{PLAIN}{extra}\n"), "p.toml").unwrap_or_else(|e| panic!("{e}"));
        options(&p, &ScanOptions::default())
    }

    /// What giving one profile field another value must change.
    enum Effect {
        /// A scan option: `set` changes the field, `seen` shows the option it reaches.
        Scan {
            set: fn(&mut Profile),
            seen: fn(&ScanOptions) -> String,
        },
        /// What the walk visits: [`plan`]'s fingerprint.
        Plan { set: fn(&mut Profile) },
        /// Its own table of effects (`analyses`).
        Nested,
        /// Not a scan option: who uses it instead.
        Elsewhere(&'static str),
    }
    use Effect::{Elsewhere, Nested, Plan, Scan};

    /// The table of `field => effect`, checked against the struct by an
    /// exhaustive pattern (no `..`): a field added to it fails to compile
    /// here until it is listed with what it does.
    macro_rules! effects {
        ($value:expr, $ty:ident { $($field:ident => $effect:expr),* $(,)? }) => {{
            let $ty { $($field: _),* } = $value;
            vec![$((stringify!($field), $effect)),*]
        }};
    }

    fn profile_effects() -> Vec<(&'static str, Effect)> {
        effects!(plain(), Profile {
            name => Elsewhere("the scheduler, the inventory and the logs"),
            targets => Plan { set: |p| p.targets = vec!["127.0.0.2".parse().unwrap()] },
            exclude => Plan { set: |p| p.exclude = vec!["127.0.0.1".parse().unwrap()] },
            ports => Plan { set: |p| p.ports = "8443".parse().unwrap() },
            sni => Scan { set: |p| p.sni = vec!["intranet.example".into()], seen: |o| format!("{:?}", o.sni_names) },
            starttls => Scan { set: |p| p.starttls = StarttlsMode::Off, seen: |o| format!("{:?}", o.starttls) },
            rate => Scan { set: |p| p.rate = Some(7), seen: |o| o.portscan.rate.to_string() },
            scan_type => Scan {
                set: |p| p.scan_type = Some(crate::discover::syn::ScanType::Syn),
                seen: |o| format!("{:?}", o.scan_type),
            },
            host_discovery => Scan {
                set: |p| p.host_discovery = Some(false),
                seen: |o| format!("{:?}", o.host_discovery),
            },
            max_concurrency => Scan { set: |p| p.max_concurrency = Some(3), seen: |o| o.portscan.max_in_flight.to_string() },
            per_host_connections => Scan { set: |p| p.per_host_connections = Some(9), seen: |o| o.per_host.to_string() },
            connect_timeout => Scan {
                set: |p| p.connect_timeout = Some(std::time::Duration::from_millis(123)),
                seen: |o| format!("{:?}", o.portscan.connect_timeout),
            },
            handshake_timeout => Scan {
                set: |p| p.handshake_timeout = Some(std::time::Duration::from_millis(77)),
                seen: |o| format!("{:?}", o.handshake_timeout),
            },
            endpoint_budget => Scan {
                set: |p| p.endpoint_budget = Some(std::time::Duration::from_secs(7)),
                seen: |o| format!("{:?}", o.endpoint_budget),
            },
            analyses => Nested,
            schedule => Elsewhere("the scheduler: when a run starts and stops"),
            shard => Plan { set: |p| p.shard = Some("2/2".parse().unwrap()) },
            tags => Elsewhere("the inventory: attached to every endpoint found"),
            revocation => Scan { set: |p| p.revocation = true, seen: |o| format!("{:?}", o.revocation.is_some()) },
            revocation_allow => Scan {
                set: |p| {
                    p.revocation = true;
                    p.revocation_allow = crate::grade::revocation::Allowlist::parse(&["127.0.0.0/8"]).unwrap();
                },
                seen: |o| format!("{:?}", o.revocation.as_ref().map(|c| c.allowlist().clone())),
            },
        })
    }

    fn analyses_effects() -> Vec<(&'static str, Effect)> {
        effects!(Analyses::FULL, Analyses {
            certificates => Scan { set: |p| p.analyses.certificates = false, seen: |o| o.certificates.to_string() },
            enumeration => Scan { set: |p| p.analyses.enumeration = false, seen: |o| o.enumerate.to_string() },
            vulnerabilities => Scan { set: |p| p.analyses.vulnerabilities = false, seen: |o| o.vulnerabilities.to_string() },
            http_headers => Scan { set: |p| p.analyses.http_headers = false, seen: |o| o.http_headers.to_string() },
            grade => Scan { set: |p| p.analyses.grade = false, seen: |o| o.grade.to_string() },
            tls_extras => Scan { set: |p| p.analyses.tls_extras = false, seen: |o| o.tls_extras.to_string() },
        })
    }

    fn fingerprint(p: &Profile) -> String {
        let loopback = |_: &str| Ok(vec![std::net::IpAddr::from([127, 0, 0, 1])]);
        plan(p, 1, loopback).unwrap().fingerprint()
    }

    #[test]
    fn every_profile_field_reaches_the_scan_or_says_who_uses_it() {
        let base = ScanOptions::default();
        let before = options(&plain(), &base);
        let table: Vec<_> = profile_effects().into_iter().chain(analyses_effects()).collect();
        for (field, effect) in table {
            let mut p = plain();
            match effect {
                Scan { set, seen } => {
                    set(&mut p);
                    assert_ne!(
                        seen(&options(&p, &base)),
                        seen(&before),
                        "`{field}` does not reach the scan options"
                    );
                }
                Plan { set } => {
                    set(&mut p);
                    assert_ne!(
                        fingerprint(&p),
                        fingerprint(&plain()),
                        "`{field}` does not change the walk"
                    );
                }
                Nested => assert_eq!(field, "analyses"),
                Elsewhere(who) => assert!(!who.is_empty(), "`{field}`"),
            }
        }
    }

    #[test]
    fn revocation_is_off_unless_the_profile_asks_and_the_allowlist_needs_it_on() {
        assert!(with("").revocation.is_none());
        let o = with("revocation = true\nrevocation_allow = [\"127.0.0.0/8\", \"ocsp.pki.internal\"]");
        let allow = o.revocation.as_ref().unwrap().allowlist().clone();
        assert_eq!(
            allow,
            crate::grade::revocation::Allowlist::parse(&["127.0.0.0/8", "ocsp.pki.internal"]).unwrap()
        );
        // Each run gets its own checker (caches live as long as one scan).
        let p = profile::parse(&format!("{PLAIN}revocation = true\n"), "p.toml").unwrap();
        let (a, b) = (
            options(&p, &ScanOptions::default()),
            options(&p, &ScanOptions::default()),
        );
        assert!(!std::sync::Arc::ptr_eq(
            a.revocation.as_ref().unwrap(),
            b.revocation.as_ref().unwrap()
        ));
        let e = profile::parse(&format!("{PLAIN}revocation_allow = [\"10.0.0.0/8\"]\n"), "p.toml").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("revocation_allow"));
        assert!(e.to_string().contains("revocation = true"), "{e}");
        let e = profile::parse(
            &format!("{PLAIN}revocation = true\nrevocation_allow = [\"10.0.0.0/33\"]\n"),
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("revocation_allow"));
        assert!(e.to_string().contains("`10.0.0.0/33`"), "{e}");
    }

    #[test]
    fn starttls_from_the_profile_is_the_scan_mode() {
        assert_eq!(with("").starttls, StarttlsMode::Auto);
        assert_eq!(with("starttls = \"none\"").starttls, StarttlsMode::Off);
        assert_eq!(with("starttls = \"smtp\"").starttls, StarttlsMode::Only(Starttls::Smtp));
        // The profile decides, whatever the sensor's base said.
        let base = ScanOptions {
            starttls: StarttlsMode::Off,
            ..ScanOptions::default()
        };
        assert_eq!(options(&plain(), &base).starttls, StarttlsMode::Auto);
    }

    #[test]
    fn sni_names_from_the_profile_are_sent_besides_the_sensors() {
        assert!(with("").sni_names.is_empty());
        assert_eq!(with("sni = [\"intranet.example\"]").sni_names, ["intranet.example"]);
        let base = ScanOptions {
            sni_names: vec!["base.example".into()],
            ..ScanOptions::default()
        };
        let p = profile::parse(&format!("{PLAIN}sni = [\"a.example\"]\n"), "p.toml").unwrap();
        assert_eq!(options(&p, &base).sni_names, ["base.example", "a.example"]);
    }

    fn analyses(o: &ScanOptions) -> [bool; 5] {
        [o.certificates, o.enumerate, o.vulnerabilities, o.http_headers, o.grade]
    }

    #[test]
    fn tls_extras_only_with_full_or_by_name() {
        assert!(with("").tls_extras);
        assert!(!with("analyses = [\"grade\"]").tls_extras);
        let o = with("analyses = [\"tls_extras\"]");
        assert!(o.tls_extras && o.certificates && !o.enumerate);
    }

    #[test]
    fn analyses_from_the_profile_are_the_scan_stages() {
        assert_eq!(analyses(&with("")), [true; 5]);
        assert_eq!(analyses(&with("analyses = [\"full\"]")), [true; 5]);
        assert_eq!(analyses(&with("analyses = [\"discovery_only\"]")), [false; 5]);
        assert_eq!(
            analyses(&with("analyses = [\"certificates\"]")),
            [true, false, false, false, false]
        );
        assert_eq!(
            analyses(&with("analyses = [\"enumeration\"]")),
            [true, true, false, false, false]
        );
        assert_eq!(
            analyses(&with("analyses = [\"grade\"]")),
            [true, false, false, false, true]
        );
        // The scan runs the checks and the GET only when it grades.
        assert_eq!(
            analyses(&with("analyses = [\"vulnerabilities\"]")),
            [true, true, true, false, true]
        );
        assert_eq!(
            analyses(&with("analyses = [\"http_headers\"]")),
            [true, false, false, true, true]
        );
    }
}
