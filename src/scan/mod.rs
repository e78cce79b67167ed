//! The scan pipeline for one job: targets → connect → TLS or plaintext → records.
//!
//! Each (address, port) is one task holding one in-flight slot: connect, and
//! on an open port, a rustls handshake on the same socket; if the answer was
//! not TLS, identify the plaintext service. Every outcome is a record sent to
//! the caller's channel as soon as it exists, so output streams and nothing
//! accumulates here.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

use budget::{Budget, Stage};
use tokio::task::JoinSet;

pub mod after_syn;
pub mod budget;
mod extras;
pub mod revocation;
pub mod trust;

use crate::cpu;
use crate::discover::checkpoint::Tracker;
use crate::discover::connect::{self, Connect, PortState, PortscanConfig, Progress};
use crate::discover::hosts::{self, HostDiscovery};
use crate::discover::syn::{self, ScanType, SynConfig, SynError, SynHit};
use crate::discover::targets::{ScanPlan, Target};
use crate::grade::{self, HttpHeaders, Observation, Policy, TrustStores};
use crate::model::cert;
use crate::model::record::{Category, EndpointRecord, FailureKind, Handshake, ServiceInfo, Transport};
use crate::model::timestamp::rfc3339;
use crate::probe::detect::{self, Answer};
use crate::probe::enumerate::{self, EnumConfig, Enumeration};
use crate::probe::hello::Preamble;
use crate::probe::starttls::dialogue::{Starttls, StarttlsError, StarttlsMode};
use crate::probe::tls::{self, TlsProber};
use crate::probe::vulns::{self, VulnConfig, VulnReport};
use crate::probe::{http, plain, sensor_port, starttls};

#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub portscan: PortscanConfig,
    /// The discovery engine. `Auto` picks SYN when raw sockets can be opened;
    /// the SYN engine takes its rate, retries and final wait (the connect
    /// timeout) from `portscan`. The library default is `Connect` (no
    /// privilege, no surprise for embedders); `sensor scan` defaults to `Auto`.
    pub scan_type: ScanType,
    /// Per-host probe budget of the SYN engine: probes per second to any one
    /// address (0: none). The connect engine does not apply it yet.
    pub per_host_rate: u32,
    /// Deadline for one TLS handshake, from ClientHello to Finished.
    pub handshake_timeout: Duration,
    /// How long to wait for a server-speaks-first banner on the plaintext probe.
    pub banner_wait: Duration,
    /// Emit records for closed and filtered ports too.
    pub show_closed: bool,
    /// Open ports examined (TLS handshake, banner) at once.
    pub max_examine: usize,
    /// Keep the certificate chain of TLS endpoints and judge it. Without
    /// it a TLS record says only what the endpoint speaks (transport,
    /// service, the one handshake's version, suite, group and ALPN): no
    /// `certificate`, `chain`, grade, findings or vulnerability verdicts,
    /// whatever `grade` says, since grading judges the chain.
    pub certificates: bool,
    /// Enumerate every protocol, suite, group and feature of TLS endpoints.
    pub enumerate: bool,
    /// Connections to one endpoint at once during enumeration.
    pub per_host: usize,
    /// Grade TLS endpoints (chain validation, rating, findings).
    pub grade: bool,
    /// One `GET /` over TLS for the security headers (only when grading:
    /// the headers are judged there).
    pub http_headers: bool,
    /// Active checks: Heartbleed, CCS injection, ROBOT, Ticketbleed, insecure
    /// renegotiation (only when enumerating and grading: the verdicts are
    /// part of the grade).
    pub vulnerabilities: bool,
    /// Trust anchors for chain validation (web roots, system, private CAs).
    pub trust: Arc<TrustStores>,
    /// Trust stores still being loaded ([`trust::TrustLater`], what the
    /// binary uses so the load runs beside discovery): when set, grading
    /// waits for them and uses them instead of `trust`.
    pub trust_later: Option<trust::TrustLater>,
    pub policy: Policy,
    /// Which in-band upgrades (STARTTLS) to try.
    pub starttls: StarttlsMode,
    /// More names to send as SNI to every TLS endpoint found (`--sni-list`):
    /// one more record per (address, port, name).
    pub sni_names: Vec<String>,
    /// Also try every DNS name in the first certificate's SANs.
    pub sni_from_sans: bool,
    /// The extras of today's TLS (`probe::extras`): client authentication,
    /// resumption, early data, certificate compression, TLS 1.3 signature
    /// schemes, every certificate deployment. About 17 more handshakes per
    /// implicit-TLS endpoint (with `certificates`).
    pub tls_extras: bool,
    /// Ask which addresses are alive before probing the port list
    /// ([`crate::discover::hosts`]): `Auto` (the default) on large ranges
    /// where it saves probes, `Off` for `-Pn`.
    pub host_discovery: HostDiscovery,
    /// The time budget of one endpoint's examination, from its start
    /// (`--endpoint-budget`, profile key `endpoint_budget`): the stages
    /// still running then are dropped and named in the record's
    /// `not_probed` ([`budget`]). `None`: no budget.
    pub endpoint_budget: Option<Duration>,
    /// The live revocation check of each graded leaf (OCSP, then CRL), with
    /// its allowlist and caches: one [`revocation::Checker`] for the scan's
    /// life. `None`: not checked (the default for one-shot scans).
    pub revocation: Option<Arc<revocation::Checker>>,
}

/// The endpoint budget when nothing says otherwise: a full analysis of a
/// healthy server takes well under a second, of a single-threaded legacy
/// one a few seconds; a minute is a server that should not hold a scan.
pub const DEFAULT_ENDPOINT_BUDGET: Duration = Duration::from_secs(60);

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            portscan: PortscanConfig::default(),
            scan_type: ScanType::Connect,
            per_host_rate: 0,
            handshake_timeout: Duration::from_secs(5),
            banner_wait: Duration::from_millis(800),
            show_closed: false,
            max_examine: 256,
            certificates: true,
            enumerate: true,
            per_host: 4,
            grade: true,
            http_headers: true,
            vulnerabilities: true,
            trust: Arc::new(TrustStores::web_roots()),
            trust_later: None,
            policy: Policy::default(),
            starttls: StarttlsMode::Auto,
            sni_names: Vec::new(),
            sni_from_sans: false,
            tls_extras: true,
            host_discovery: HostDiscovery::Auto,
            endpoint_budget: Some(DEFAULT_ENDPOINT_BUDGET),
            revocation: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot set up the TLS client: {0}")]
    Tls(#[from] rustls::Error),
    #[error("the connect engine failed: {0}")]
    Engine(String),
    #[error(transparent)]
    Syn(#[from] SynError),
    #[error(transparent)]
    Hosts(#[from] hosts::HostsError),
}

/// The engine a scan type means on this host: `Auto` tries the raw sockets
/// and, without the privilege, says once why it falls back to connect.
pub fn resolve_scan_type(requested: ScanType) -> Result<ScanType, SynError> {
    match requested {
        ScanType::Connect => Ok(ScanType::Connect),
        ScanType::Syn => syn::raw_sockets_available().map(|()| ScanType::Syn),
        ScanType::Auto => match syn::raw_sockets_available() {
            Ok(()) => Ok(ScanType::Syn),
            Err(e) => {
                tracing::warn!("scan type auto: using connect scan, SYN scan is not available: {e}");
                Ok(ScanType::Connect)
            }
        },
    }
}

/// What an engine hands to the examination stage.
enum Found {
    /// The connect engine's outcome (an open port with its connected socket).
    Connect(Connect),
    /// The SYN engine saw a SYN-ACK: connect before examining.
    SynOpen,
}

/// What finishing an examination means for the checkpoint.
#[derive(Clone, Copy)]
enum Mark {
    Position(u128),
    Hold(u64),
    Nothing,
}

impl Mark {
    fn finish(self, tracker: Option<&Tracker>) {
        match (self, tracker) {
            (Mark::Position(i), Some(t)) => t.done(i),
            (Mark::Hold(id), Some(t)) => t.release(id),
            _ => {}
        }
    }
}

/// Resolve a host name with the system resolver (`/etc/hosts`, then DNS).
pub fn resolve(host: &str) -> Result<Vec<IpAddr>, String> {
    (host, 0u16)
        .to_socket_addrs()
        .map(|it| it.map(|a| a.ip()).collect())
        .map_err(|e| e.to_string())
}

/// Run the whole plan from position `start`, sending each endpoint record to
/// `out` as soon as it is known. Returns when every probe has finished, or,
/// once `stop` is set, when the probes in flight have.
pub async fn run(
    plan: Arc<ScanPlan>,
    start: u128,
    opts: ScanOptions,
    progress: Arc<Progress>,
    out: mpsc::Sender<EndpointRecord>,
) -> Result<(), ScanError> {
    run_until(plan, start, opts, progress, Arc::new(AtomicBool::new(false)), out).await
}

/// [`run`] with a stop flag the caller can set (Ctrl-C, shutdown).
pub async fn run_until(
    plan: Arc<ScanPlan>,
    start: u128,
    opts: ScanOptions,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    out: mpsc::Sender<EndpointRecord>,
) -> Result<(), ScanError> {
    run_inner(plan, start, opts, progress, stop, None, out).await
}

/// [`run_until`] with checkpoints: the walk starts where `tracker` says and
/// skips what it says was done; each position is marked done in it once its
/// records have been sent to `out`. The caller snapshots the tracker
/// ([`Tracker::snapshot`]) whenever it likes, and after this returns.
pub async fn run_tracked(
    plan: Arc<ScanPlan>,
    opts: ScanOptions,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    tracker: Arc<Tracker>,
    out: mpsc::Sender<EndpointRecord>,
) -> Result<(), ScanError> {
    let start = tracker.start();
    run_inner(plan, start, opts, progress, stop, Some(tracker), out).await
}

async fn run_inner(
    plan: Arc<ScanPlan>,
    start: u128,
    opts: ScanOptions,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    tracker: Option<Arc<Tracker>>,
    out: mpsc::Sender<EndpointRecord>,
) -> Result<(), ScanError> {
    let engine_type = resolve_scan_type(opts.scan_type)?;
    let positions = u64::try_from(plan.len().saturating_sub(start)).unwrap_or(u64::MAX);
    progress.total.store(positions, std::sync::atomic::Ordering::Relaxed);
    // The crypto library's one-time set-up runs while the port scan does
    // (at once when the binary already started it), not when the first open
    // port is waiting for its ClientHello.
    tls::warm_up();
    let prober = TlsProber::new()?;
    let opts = Arc::new(opts);
    // The connect engine runs on its own threads and hands over outcomes
    // worth examining; a full channel slows it down rather than buffering.
    let (tx, mut rx) = mpsc::channel::<(Target, Found, Mark)>(1024);
    let engine = {
        let (plan, opts, progress, stop) = (plan.clone(), opts.clone(), progress.clone(), stop.clone());
        let tracker = tracker.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ScanError> {
            let show_closed = opts.show_closed;
            let tracker = tracker.as_deref();
            let plan = only_live_hosts(plan, &opts, engine_type, &progress, &stop)?;
            match engine_type {
                ScanType::Syn => {
                    let cfg = SynConfig {
                        rate: opts.portscan.rate,
                        retries: opts.portscan.retries,
                        per_host_rate: opts.per_host_rate,
                        wait: opts.portscan.connect_timeout,
                        report_unanswered: show_closed,
                        ..SynConfig::default()
                    };
                    syn::run_blocking(&plan, start, &cfg, &progress, &stop, tracker, |hit: SynHit| {
                        let SynHit {
                            target,
                            state,
                            reason,
                            hold,
                        } = hit;
                        let mark = hold.map_or(Mark::Nothing, Mark::Hold);
                        let found = match state {
                            PortState::Open => Found::SynOpen,
                            PortState::Closed => Found::Connect(Connect::Closed { reason }),
                            PortState::Filtered => Found::Connect(Connect::Filtered { reason }),
                        };
                        if tx.blocking_send((target, found, mark)).is_err() {
                            mark.finish(tracker);
                        }
                    })?;
                }
                _ => {
                    let report = |index: u128, target: Target, connect: Connect| {
                        if show_closed || connect.state() == PortState::Open {
                            let found = (target, Found::Connect(connect), Mark::Position(index));
                            if tx.blocking_send(found).is_err() {
                                Mark::Position(index).finish(tracker);
                            }
                        } else {
                            Mark::Position(index).finish(tracker);
                        }
                    };
                    connect::run_tracked(&plan, start, &opts.portscan, &progress, &stop, tracker, report)
                        .map_err(|e| ScanError::Engine(e.to_string()))?;
                }
            }
            Ok(())
        })
    };
    let slots = Arc::new(Semaphore::new(opts.max_examine.max(1)));
    let mut tasks = JoinSet::new();
    while let Some((target, found, mark)) = rx.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (prober, opts, out, tracker) = (prober.clone(), opts.clone(), out.clone(), tracker.clone());
        let progress = progress.clone();
        tasks.spawn(async move {
            let _examining = progress.examining.begin();
            let connect = match found {
                Found::Connect(c) => c,
                Found::SynOpen => {
                    after_syn::connect(&target, opts.portscan.connect_timeout.max(opts.handshake_timeout)).await
                }
            };
            if let Some(record) = examine(&prober, &opts, target.clone(), connect).await {
                let names = virtual_hosts(&opts, target.hostname.as_deref(), &record);
                let default = record.certificate.as_ref().map(|c| c.thumbprint.clone());
                // A closed receiver means the caller stopped listening.
                let _ = out.send(record).await;
                for name in names {
                    if let Some(mut r) = examine_name(&prober, &opts, &target, &name).await {
                        let seen = r.certificate.as_ref().map(|c| c.thumbprint.clone());
                        r.sni_certificate_differs = opts.certificates.then(|| seen.is_some() && seen != default);
                        let _ = out.send(r).await;
                    }
                }
            }
            mark.finish(tracker.as_deref());
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    engine.await.map_err(|e| ScanError::Engine(e.to_string()))??;
    Ok(())
}

/// Host discovery before the port list, when the rule says so
/// ([`hosts::decide`]): the plan with only the live addresses' positions.
fn only_live_hosts(
    plan: Arc<ScanPlan>,
    opts: &ScanOptions,
    engine: ScanType,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Arc<ScanPlan>, ScanError> {
    use std::sync::atomic::Ordering;
    let cfg = hosts::LivenessConfig {
        engine: if engine == ScanType::Syn {
            hosts::Engine::Syn
        } else {
            hosts::Engine::Connect
        },
        rate: opts.portscan.rate,
        timeout: opts.portscan.connect_timeout,
        retries: opts.portscan.retries,
        per_host_rate: opts.per_host_rate,
        max_in_flight: opts.portscan.max_in_flight,
        threads: opts.portscan.threads,
        seed: plan.seed(),
    };
    let shards = plan.shard().map_or(1, |s| s.count);
    let decision = hosts::decide(
        opts.host_discovery,
        plan.targets().probed_len(),
        hosts::rule::port_probes(plan.ports().len(), shards),
        cfg.probes_per_address(),
    );
    tracing::debug!(on = decision.on, why = decision.why, "host discovery");
    if !decision.on {
        return Ok(plan);
    }
    progress.discovering_hosts.store(true, Ordering::Relaxed);
    let census = hosts::run_blocking(plan.targets(), &cfg, progress, stop);
    progress.discovering_hosts.store(false, Ordering::Relaxed);
    let census = census?;
    tracing::info!(
        up = census.up,
        down = census.down,
        probes = census.probes,
        took_ms = census.took.as_millis() as u64,
        "host discovery: {} up, {} down (-Pn probes every address)",
        census.up,
        census.down
    );
    Ok(Arc::new((*plan).clone().with_live(Some(Arc::new(census.live)))))
}

/// Run the hand-built-hello enumeration on a TLS endpoint, when asked to.
async fn enumerate_into(
    record: &mut EndpointRecord,
    opts: &ScanOptions,
    target: &Target,
    upgrade: Option<Starttls>,
    slots: &Arc<Semaphore>,
) -> Option<Enumeration> {
    if !opts.enumerate {
        return None;
    }
    let cfg = EnumConfig {
        deadline: opts.handshake_timeout,
        per_host: opts.per_host,
        preamble: upgrade.map(|proto| Preamble {
            proto,
            host: target.hostname.as_deref().map(str::to_string),
        }),
        slots: Some(slots.clone()),
        ..EnumConfig::default()
    };
    let addr = SocketAddr::new(target.addr, target.port);
    let e = enumerate::enumerate(addr, target.hostname.as_deref(), cfg).await;
    crate::probe::enumerate::apply(record, &e);
    if !opts.certificates {
        // The enumeration fills in a chain rustls could not read.
        record.certificate = None;
        record.chain.clear();
    }
    Some(e)
}

/// The active vulnerability checks, on servers that answered the enumeration.
async fn vulnerabilities(
    opts: &ScanOptions,
    target: &Target,
    e: Option<&Enumeration>,
    slots: &Arc<Semaphore>,
) -> Option<VulnReport> {
    let e = e.filter(|e| opts.vulnerabilities && grading(opts) && !e.stalled && !e.versions.is_empty())?;
    let addr = SocketAddr::new(target.addr, target.port);
    let cfg = VulnConfig {
        deadline: opts.handshake_timeout,
        slots: Some(slots.clone()),
        ..VulnConfig::default()
    };
    Some(vulns::check(addr, target.hostname.as_deref(), e, &cfg).await)
}

/// `GET /` over TLS; `None` when the endpoint does not answer in HTTP.
async fn http_headers(opts: &ScanOptions, target: &Target, slots: &Semaphore) -> Option<HttpHeaders> {
    let connector = http::client().ok()?;
    let _permit = slots.acquire().await.ok()?;
    let addr = SocketAddr::new(target.addr, target.port);
    http::get_head(&connector, addr, target.hostname.as_deref(), opts.handshake_timeout)
        .await
        .ok()
}

/// Whether TLS endpoints are judged: grading needs the chain.
fn grading(opts: &ScanOptions) -> bool {
    opts.grade && opts.certificates
}

/// The live revocation check, when asked for and the chain is graded.
async fn check_revocation(record: &mut EndpointRecord, opts: &ScanOptions, der: &[Vec<u8>]) {
    if let Some(checker) = &opts.revocation
        && grading(opts)
        && !der.is_empty()
    {
        record.revocation = Some(checker.check(der).await);
    }
}

/// Judge what was observed: chain, rating, findings, the upstream's shape.
/// The judging is pure computation (signature checks against every trust
/// store) and runs on the CPU pool ([`cpu`]), not on a runtime worker that
/// other endpoints' handshakes and deadlines wait on.
async fn grade_into(
    record: &mut EndpointRecord,
    opts: &ScanOptions,
    der: &[Vec<u8>],
    ocsp: Option<&[u8]>,
    http: Option<&HttpHeaders>,
    vulns: Option<&VulnReport>,
) {
    if !grading(opts) {
        return;
    }
    // The pool needs owned inputs; a copy of the record (not the record
    // itself) goes, so a failure there leaves the probes' findings intact.
    let seen = record.clone();
    let (der, ocsp, http) = (der.to_vec(), ocsp.map(<[u8]>::to_vec), http.cloned());
    let vulnerabilities = vulns.map(|v| v.vulnerabilities).unwrap_or_default();
    let trust = match &opts.trust_later {
        Some(later) => later.get().await.unwrap_or_else(|| opts.trust.clone()),
        None => opts.trust.clone(),
    };
    let policy = opts.policy.clone();
    let now = time::OffsetDateTime::now_utc();
    let judged = cpu::run(move || {
        let obs = Observation {
            record: &seen,
            chain_der: &der,
            ocsp: ocsp.as_deref().and_then(|d| crate::grade::ocsp::status(d).ok()),
            vulnerabilities,
            http: http.as_ref(),
        };
        let mut a = grade::assess(&obs, &trust, &policy, now);
        let (each, worse) = grade::deployments::assess_each(&obs, &a, &trust, &policy, now);
        if let Some((g, finding)) = worse {
            a.grade = Some(g);
            a.findings.push(finding);
            a.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        }
        // The seed's criteria read each deployment's own grade and trust.
        let mut seen = seen;
        for d in &mut seen.certificate_deployments {
            if let Some(j) = each.iter().find(|j| j.thumbprint == d.thumbprint) {
                (d.grade, d.trusted) = (j.letter, j.trusted);
            }
        }
        let info = grade::security_rating_info(&seen, &a);
        (a, info, each)
    })
    .await;
    let (a, info, each) = match judged {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(addr = %record.address, port = record.port, "endpoint not graded: {e}");
            return;
        }
    };
    record.security_rating_info = Some(info);
    for d in &mut record.certificate_deployments {
        if let Some(j) = each.iter().find(|j| j.thumbprint == d.thumbprint) {
            (d.grade, d.trusted) = (j.letter, j.trusted);
        }
    }
    record.grade = a.grade;
    record.findings = a.findings;
    record.chain_report = Some(a.chain);
    record.vulnerabilities = a.vulnerabilities;
    // The probes' own evidence says what was sent and what came back.
    if let Some(v) = vulns {
        for verdict in record.vulnerabilities.iter_mut().filter(|x| !x.inferred) {
            if let Some(line) = v.evidence(&verdict.id) {
                verdict.evidence = line.to_string();
            }
        }
        for f in &mut record.findings {
            if let Some(line) = v.evidence(&f.id) {
                f.evidence = line.to_string();
            }
        }
    }
}

/// Everything we do with one connect outcome.
pub async fn examine(
    prober: &TlsProber,
    opts: &ScanOptions,
    target: Target,
    connect: Connect,
) -> Option<EndpointRecord> {
    let now = rfc3339(time::OffsetDateTime::now_utc());
    let budget = Budget::start(opts.endpoint_budget);
    let hostname = target.hostname.as_deref().map(str::to_string);
    let reason = connect.reason();
    let connect = match connect {
        // Open, but reset before it could be used: one more connection
        // examines it as any open port (it resets that too, most likely, and
        // the record says so); without one, the record says it now.
        Connect::Reset { reason } => match reconnect(opts, &target).await.map(|s| s.into_std()) {
            Some(Ok(s)) => Connect::Open(s),
            _ => {
                let mut r = EndpointRecord::new(target.addr, target.port, hostname, Category::Unsecured, now);
                r.port_reason = reason.to_string();
                r.transport = Transport::Unknown;
                r.service = Some("unknown".into());
                r.handshake = Some(Handshake {
                    error: Some("the connection was reset before the handshake".into()),
                    error_kind: Some(FailureKind::Reset),
                    ..Handshake::default()
                });
                return Some(r);
            }
        },
        c => c,
    };
    let stream = match connect {
        Connect::Reset { .. } => return None,
        Connect::Open(s) => match tokio::net::TcpStream::from_std(s) {
            Ok(s) => s,
            Err(e) => {
                let mut r = EndpointRecord::new(target.addr, target.port, hostname, Category::Unsecured, now);
                r.port_reason = reason.to_string();
                r.handshake = Some(Handshake {
                    error: Some(format!("cannot use the connected socket: {e}")),
                    error_kind: Some(FailureKind::Connect),
                    ..Handshake::default()
                });
                return Some(r);
            }
        },
        Connect::Closed { .. } | Connect::Filtered { .. } => {
            if !opts.show_closed {
                return None;
            }
            let category = if matches!(connect, Connect::Closed { .. }) {
                Category::Closed
            } else {
                Category::Filtered
            };
            let mut r = EndpointRecord::new(target.addr, target.port, hostname, category, now);
            r.port_reason = reason.to_string();
            return Some(r);
        }
    };
    let mut record = EndpointRecord::new(target.addr, target.port, hostname, Category::Discovered, now);
    record.port_reason = reason.to_string();
    let mut stream = stream;
    if let Some(proto) = opts.starttls.for_port(target.port) {
        let upgrade = try_starttls(prober, opts, &target, stream, proto, &mut record, &budget).await;
        match upgrade {
            Upgrade::Done => return Some(record),
            Upgrade::Fallback(e) => match reconnect(opts, &target).await {
                Some(s) => {
                    tracing::debug!(%e, addr = %target.addr, port = target.port, "no STARTTLS; trying implicit TLS");
                    stream = s;
                }
                None => {
                    record.category = Category::Unsecured;
                    record.transport = Transport::Unknown;
                    record.service = Some("unknown".into());
                    return Some(record);
                }
            },
        }
    }
    let attempt = tls::handshake(prober, stream, target.hostname.as_deref(), opts.handshake_timeout).await;
    if attempt.completed() {
        tls_endpoint(&mut record, opts, &target, attempt, None, &budget).await;
        return Some(record);
    }
    let mut handshake: Handshake = attempt.handshake;
    match detect::classify(&attempt.first_bytes) {
        Answer::Tls | Answer::Sslv2 => {
            // It speaks TLS, just not anything rustls accepts: still a TLS endpoint.
            record.transport = Transport::Tls;
            record.service = Some("tls".into());
            if detect::classify(&attempt.first_bytes) == Answer::Sslv2 {
                handshake.protocol = Some("SSLv2".into());
            }
            record.handshake = Some(handshake);
            refused_tls_endpoint(&mut record, opts, &target, None, &budget).await;
            return Some(record);
        }
        Answer::Plain => {
            record.category = Category::Unsecured;
            record.transport = Transport::Plain;
            handshake.error_kind = Some(FailureKind::NotTls);
            let info = detect::identify(&attempt.first_bytes);
            if let Some(upgraded) = upgrade_by_banner(prober, opts, &target, &mut record, &info.name, &budget).await {
                return Some(upgraded);
            }
            record.service = Some(info.name.clone());
            record.plain = Some(info);
        }
        Answer::Silent => {
            record.category = Category::Unsecured;
            record.transport = Transport::Unknown;
            record.service = Some("unknown".into());
            // A server that hung up on our hello may still talk plaintext;
            // one that stalled has already cost its deadline.
            if handshake.error_kind != Some(FailureKind::Timeout) {
                let addr = SocketAddr::new(target.addr, target.port);
                let bytes = plain::banner(
                    addr,
                    target.hostname.as_deref(),
                    opts.banner_wait,
                    opts.handshake_timeout,
                )
                .await;
                if !bytes.is_empty() && detect::classify(&bytes) == Answer::Plain {
                    let info = detect::identify(&bytes);
                    if let Some(upgraded) =
                        upgrade_by_banner(prober, opts, &target, &mut record, &info.name, &budget).await
                    {
                        return Some(upgraded);
                    }
                    record.transport = Transport::Plain;
                    record.service = Some(info.name.clone());
                    record.plain = Some(info);
                }
            }
            if target.port == sensor_port::PORT && record.service.as_deref() == Some("unknown") {
                let addr = SocketAddr::new(target.addr, target.port);
                if let Some(info) = sensor_port::identify(addr, opts.handshake_timeout).await {
                    record.transport = Transport::Plain;
                    record.service = Some(info.name.clone());
                    record.plain = Some(info);
                }
            }
        }
    }
    record.handshake = Some(handshake);
    Some(record)
}

/// How a STARTTLS attempt ended.
enum Upgrade {
    /// The record is complete (TLS endpoint, or a service without TLS).
    Done,
    /// The port did not speak the protocol: try implicit TLS instead.
    Fallback(StarttlsError),
}

/// A mail, file or database server on an unusual port may still upgrade:
/// the record of that upgrade when it led to TLS, or when the service
/// throttled us (as `--starttls PROTO` reports it); when the dialogue went
/// wrong otherwise, the plaintext record with the reason in
/// `enumeration_errors` (issue 17, defect 5: nothing the dialogue said is
/// dropped).
async fn upgrade_by_banner(
    prober: &TlsProber,
    opts: &ScanOptions,
    target: &Target,
    record: &mut EndpointRecord,
    service: &str,
    budget: &Budget,
) -> Option<EndpointRecord> {
    let proto = Starttls::for_service(service).filter(|_| opts.starttls == StarttlsMode::Auto)?;
    let Some(stream) = reconnect(opts, target).await else {
        record
            .enumeration_errors
            .push(format!("STARTTLS {proto}: cannot connect again for the upgrade"));
        return None;
    };
    let mut upgraded = record.clone();
    match try_starttls(prober, opts, target, stream, proto, &mut upgraded, budget).await {
        Upgrade::Done if upgraded.transport.is_tls() => Some(upgraded),
        Upgrade::Done => match upgraded.handshake.as_ref().and_then(|h| h.error.clone()) {
            // Throttled: the service said who it is and to come back later.
            Some(e) if upgraded.transport == Transport::Unknown => {
                upgraded.enumeration_errors.push(e);
                Some(upgraded)
            }
            // Not offered or refused: the plaintext record says so already.
            _ => None,
        },
        Upgrade::Fallback(e) => {
            record.enumeration_errors.push(format!("STARTTLS: {e}"));
            None
        }
    }
}

/// Most extra names tried per endpoint: SAN lists run to hundreds.
pub const MAX_VIRTUAL_HOSTS: usize = 32;

/// The names to send as SNI beyond the target's own, for a TLS endpoint:
/// the listed ones, then the first certificate's DNS SANs when asked
/// (wildcards and addresses cannot be sent), each once, at most
/// [`MAX_VIRTUAL_HOSTS`].
pub fn virtual_hosts(opts: &ScanOptions, own: Option<&str>, record: &EndpointRecord) -> Vec<String> {
    if record.category != Category::Discovered || !record.transport.is_tls() {
        return Vec::new();
    }
    let sans = match (opts.sni_from_sans, &record.certificate) {
        (true, Some(c)) => c.san.as_slice(),
        _ => &[],
    };
    let mut out: Vec<String> = Vec::new();
    for name in opts.sni_names.iter().chain(sans) {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let usable = !name.is_empty() && !name.contains('*') && name.parse::<IpAddr>().is_err();
        let own = own.is_some_and(|o| o.eq_ignore_ascii_case(&name));
        if usable && !own && !out.contains(&name) && out.len() < MAX_VIRTUAL_HOSTS {
            out.push(name);
        }
    }
    out
}

/// [`examine`] the same address and port again with `name` as SNI.
async fn examine_name(prober: &TlsProber, opts: &ScanOptions, target: &Target, name: &str) -> Option<EndpointRecord> {
    let stream = reconnect(opts, target).await?.into_std().ok()?;
    let named = Target {
        addr: target.addr,
        port: target.port,
        hostname: Some(Arc::from(name)),
    };
    examine(prober, opts, named, Connect::Open(stream)).await
}

/// A fresh connection to the target, within the connect deadline.
async fn reconnect(opts: &ScanOptions, target: &Target) -> Option<tokio::net::TcpStream> {
    let addr = SocketAddr::new(target.addr, target.port);
    let connect = tokio::net::TcpStream::connect(addr);
    tokio::time::timeout(opts.portscan.connect_timeout.max(opts.handshake_timeout), connect)
        .await
        .ok()?
        .ok()
}

/// The plaintext service a STARTTLS dialogue talked to.
fn service_info(proto: Starttls, greeting: Option<&str>) -> ServiceInfo {
    let banner = greeting.filter(|g| !g.is_empty()).map(str::to_string);
    let (product, version) = match (proto, banner.as_deref()) {
        (Starttls::Mysql, Some(b)) => detect::mysql_product(b),
        (_, Some(b)) => detect::product_version(b),
        _ => (None, None),
    };
    ServiceInfo {
        name: proto.service().to_string(),
        banner,
        server: None,
        product,
        version,
    }
}

/// Upgrade `stream` with `proto` and, when the server goes ahead, run the
/// whole TLS analysis through the upgrade.
async fn try_starttls(
    prober: &TlsProber,
    opts: &ScanOptions,
    target: &Target,
    stream: tokio::net::TcpStream,
    proto: Starttls,
    record: &mut EndpointRecord,
    budget: &Budget,
) -> Upgrade {
    let started = std::time::Instant::now();
    let host = target.hostname.as_deref();
    let up = match starttls::upgrade_with_greeting(stream, proto, host, opts.handshake_timeout).await {
        Ok(up) => up,
        Err(e) => {
            let (transport, kind) = match &e {
                StarttlsError::NotOffered { .. } | StarttlsError::Refused { .. } => {
                    (Transport::Plain, FailureKind::NotTls)
                }
                StarttlsError::Throttled { .. } => (Transport::Unknown, FailureKind::Closed),
                _ => return Upgrade::Fallback(e),
            };
            record.category = Category::Unsecured;
            record.transport = transport;
            record.service = Some(proto.service().to_string());
            record.plain = Some(service_info(proto, e.reply()));
            record.handshake = Some(Handshake {
                error: Some(format!("STARTTLS: {e}")),
                error_kind: Some(kind),
                duration_ms: started.elapsed().as_millis() as u64,
                ..Handshake::default()
            });
            return Upgrade::Done;
        }
    };
    record.category = Category::Discovered;
    record.transport = proto.transport();
    record.service = Some(proto.service().to_string());
    record.plain = Some(service_info(proto, up.greeting.as_deref()));
    let attempt = tls::handshake(prober, up.stream, host, opts.handshake_timeout).await;
    if attempt.completed() {
        tls_endpoint(record, opts, target, attempt, Some(proto), budget).await;
    } else {
        record.handshake = Some(attempt.handshake);
        refused_tls_endpoint(record, opts, target, Some(proto), budget).await;
    }
    Upgrade::Done
}

/// The analysis of an endpoint whose rustls handshake completed.
///
/// The `GET /` runs beside the enumeration; the active checks and the
/// extras, which need the enumeration's answer, beside each other after it.
/// All of them share one cap of `per_host` connections to the endpoint and
/// the endpoint's [`Budget`].
async fn tls_endpoint(
    record: &mut EndpointRecord,
    opts: &ScanOptions,
    target: &Target,
    attempt: tls::TlsAttempt,
    upgrade: Option<Starttls>,
    budget: &Budget,
) {
    if upgrade.is_none() {
        record.transport = Transport::Tls;
        record.service = Some("tls".into());
    }
    if opts.certificates {
        // Parsing stays here: ~20 us, less than a trip to the CPU pool costs
        // (docs/benchmarks.md, "Where CPU work runs").
        let chain: Vec<_> = attempt.chain.iter().map(|d| cert::parse_lossy(d)).collect();
        record.certificate = chain.first().cloned();
        record.chain = chain;
    }
    record.handshake = Some(attempt.handshake);
    let slots = Arc::new(Semaphore::new(opts.per_host.max(1)));
    let mut cuts = Vec::new();
    // The HTTP GET and the active checks speak implicit TLS only.
    let implicit = upgrade.is_none();
    let http = async {
        match implicit && opts.http_headers && grading(opts) {
            true => Some(budget.run(http_headers(opts, target, &slots)).await),
            false => None,
        }
    };
    let rest = async {
        let e = budget
            .run(Box::pin(enumerate_into(record, opts, target, upgrade, &slots)))
            .await;
        let Some(e) = e else {
            return (Err(()), None);
        };
        if !implicit {
            return (Ok(e), None);
        }
        let (vulns, x) = tokio::join!(
            budget.run(Box::pin(vulnerabilities(opts, target, e.as_ref(), &slots))),
            budget.run(Box::pin(extras::probe(opts, target, record, e.as_ref())))
        );
        (Ok(e), Some((vulns, x)))
    };
    let (http, (e, after)) = tokio::join!(Box::pin(http), Box::pin(rest));
    let http = match http {
        Some(None) => {
            cuts.push(Stage::HttpHeaders);
            None
        }
        Some(Some(h)) => h,
        None => None,
    };
    let e = match e {
        Ok(e) => e,
        Err(()) => {
            cuts.push(Stage::Enumeration);
            cuts.extend(later_stages(opts, upgrade));
            None
        }
    };
    let mut vulns = None;
    if let Some((v, x)) = after {
        match v {
            Some(v) => vulns = v,
            None => cuts.push(Stage::Vulnerabilities),
        }
        match x {
            Some(Some(x)) => extras::apply(record, x),
            Some(None) => {}
            None => cuts.push(Stage::TlsExtras),
        }
    }
    let der = match (&e, attempt.chain.is_empty()) {
        (Some(e), true) => e.chain.clone(),
        _ => attempt.chain,
    };
    let ocsp = e.as_ref().and_then(|e| e.ocsp_response.as_deref());
    check_revocation(record, opts, &der).await;
    grade_into(record, opts, &der, ocsp, http.as_ref(), vulns.as_ref()).await;
    note_starttls_limits(record, upgrade);
    note_cuts(record, &cuts);
}

/// The stages after the enumeration that would have run on this endpoint:
/// cut with it when the budget ran out during the enumeration.
fn later_stages(opts: &ScanOptions, upgrade: Option<Starttls>) -> Vec<Stage> {
    let mut v = Vec::new();
    if upgrade.is_none() && opts.enumerate && opts.vulnerabilities && grading(opts) {
        v.push(Stage::Vulnerabilities);
    }
    if upgrade.is_none() && opts.tls_extras && opts.certificates {
        v.push(Stage::TlsExtras);
    }
    v
}

/// Name the stages the budget cut, and say so on the verdicts they owed.
fn note_cuts(record: &mut EndpointRecord, cuts: &[Stage]) {
    if cuts.is_empty() {
        return;
    }
    budget::name_cuts(&mut record.not_probed, cuts);
    if cuts.contains(&Stage::Vulnerabilities) {
        for v in record.vulnerabilities.iter_mut().filter(|v| !v.inferred) {
            if v.status == grade::VulnStatus::NotTested {
                v.evidence = "not probed: the endpoint's time budget (--endpoint-budget) ran out first".into();
            }
        }
    }
    tracing::info!(
        addr = %record.address,
        port = record.port,
        cut = %record.not_probed.join(", "),
        "endpoint budget ran out"
    );
}

/// An endpoint that answers in TLS but not in anything rustls accepts.
async fn refused_tls_endpoint(
    record: &mut EndpointRecord,
    opts: &ScanOptions,
    target: &Target,
    upgrade: Option<Starttls>,
    budget: &Budget,
) {
    let slots = Arc::new(Semaphore::new(opts.per_host.max(1)));
    let mut cuts = Vec::new();
    let e = match budget.run(enumerate_into(record, opts, target, upgrade, &slots)).await {
        Some(e) => e,
        None => {
            cuts.push(Stage::Enumeration);
            if upgrade.is_none() && opts.enumerate && opts.vulnerabilities && grading(opts) {
                cuts.push(Stage::Vulnerabilities);
            }
            None
        }
    };
    let vulns = match (upgrade, cuts.is_empty()) {
        (None, true) => match budget.run(vulnerabilities(opts, target, e.as_ref(), &slots)).await {
            Some(v) => v,
            None => {
                cuts.push(Stage::Vulnerabilities);
                None
            }
        },
        _ => None,
    };
    let (der, ocsp) = match &e {
        Some(e) => (e.chain.as_slice(), e.ocsp_response.as_deref()),
        None => (&[][..], None),
    };
    check_revocation(record, opts, der).await;
    grade_into(record, opts, der, ocsp, None, vulns.as_ref()).await;
    note_starttls_limits(record, upgrade);
    note_cuts(record, &cuts);
}

/// Say why the active checks have no verdict on a STARTTLS endpoint.
fn note_starttls_limits(record: &mut EndpointRecord, upgrade: Option<Starttls>) {
    let Some(proto) = upgrade else { return };
    for v in record.vulnerabilities.iter_mut().filter(|v| !v.inferred) {
        if v.status == grade::VulnStatus::NotTested {
            v.evidence = format!("not probed: the active checks do not run through the {proto} STARTTLS upgrade");
        }
    }
}
