//! Active vulnerability checks: Heartbleed, CCS injection, ROBOT, Ticketbleed
//! and insecure renegotiation.
//!
//! Some flaws cannot be read off the enumeration: they show only in how a
//! server reacts to a message it should refuse. Each check here is one short,
//! scripted conversation built on `wire` (hand-built hello, the server's clear
//! flight through the [`Deframer`](crate::wire::Deframer), then one or a few
//! crafted records) and a verdict drawn from the answer:
//!
//! - `heartbleed`: an over-long heartbeat request;
//! - `ccs`: an early ChangeCipherSpec (CCS injection);
//! - `robot`: five RSA key exchanges with good and bad PKCS#1 padding;
//! - `ticketbleed`: a genuine session ticket resumed with a 1-byte session id;
//! - `reneg`: a legacy renegotiation inside a completed TLS 1.2 session.
//!
//! Their module docs cite the flaw, the published check each follows, and
//! how each possible answer is judged. The grader (`grade::vulns`) turns the
//! verdicts into findings and caps; the inferred checks (POODLE, BEAST,
//! SWEET32, FREAK, Logjam, DROWN, CRIME, RC4) are the grader's, from the
//! enumeration, and are not repeated here.
//!
//! # Safe and non-destructive
//!
//! These are the checks sslyze, nmap and testssl.sh run against production
//! servers, and they are run the same careful way:
//!
//! - No check sends application data, and every connection is dropped as
//!   soon as the answer is in. Only the renegotiation check completes a
//!   handshake (a genuine one, with its own ECDHE keys, as any client does);
//!   the others stop inside the handshake.
//! - The Heartbleed probe asks for a short over-read (4 KiB by default, not
//!   the 16 KiB exploits use), and leaked bytes are counted, never stored.
//! - By default checks run one after another. Given the endpoint's
//!   connection cap ([`VulnConfig::slots`], as the scan does) they run side
//!   by side, each holding one of its slots for its whole conversation, so
//!   the server never sees more connections than the cap the enumeration
//!   already kept to. A single-threaded server serves one connection to the
//!   end before it accepts the next: a check waiting in its backlog has not
//!   sent its probe yet, so no reply wait is spent there and no verdict
//!   changes (the checks' deadlines start at the connect, and are seconds).
//! - Every check has its own deadline ([`VulnConfig`]) and every wait for an
//!   answer is bounded; every buffer filled from the network is the
//!   deframer's, which is capped.
//!
//! # Verdicts
//!
//! Each check yields `Some(true)` (vulnerable), `Some(false)` (tested, not
//! vulnerable) or `None` (not tested, or inconclusive), and always one
//! evidence line saying what was sent and what came back, under the grader's
//! id (`heartbleed`, `ccs_injection`, `robot`, `ticketbleed`,
//! `insecure_renegotiation`). An answer that does not settle the question is
//! `None` with the reason, never a guess.

mod ccs;
mod conversation;
mod heartbleed;
mod reneg;
mod robot;
mod ticketbleed;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::model::observed::Vulnerabilities;
use crate::probe::enumerate::Enumeration;
use crate::probe::enumerate::strategy::Version;
use crate::wire::{CipherSuite, ClientHelloBuilder, ProtocolVersion};

pub use robot::Padding as RobotPadding;

/// Deadlines and sizes of the active checks.
#[derive(Clone, Debug)]
pub struct VulnConfig {
    /// Deadline of one connection of a check: connect, hello, probe, answer.
    pub deadline: Duration,
    /// How long to wait for the server's answer to a probe record before
    /// silence is taken as the answer.
    pub reply_wait: Duration,
    /// The payload_length claimed by the Heartbleed request (we send 16
    /// bytes). Anything above 16 tells; 4 KiB answers fit one record.
    pub heartbeat_length: u16,
    /// Deadline of the whole ROBOT check (5 connections, 10 when an oracle
    /// shows and is re-run to confirm).
    pub robot_deadline: Duration,
    /// Which checks run (all by default); a check switched off reports
    /// `None`, "disabled in the configuration".
    pub heartbleed: bool,
    pub ccs_injection: bool,
    pub robot: bool,
    pub ticketbleed: bool,
    pub insecure_renegotiation: bool,
    /// The endpoint's connection cap shared with the scan's other stages:
    /// with it the checks run side by side, one slot each; `None`, one
    /// after another.
    pub slots: Option<Arc<Semaphore>>,
}

impl Default for VulnConfig {
    fn default() -> Self {
        VulnConfig {
            deadline: Duration::from_secs(10),
            reply_wait: Duration::from_secs(3),
            heartbeat_length: 0x1000,
            robot_deadline: Duration::from_secs(60),
            heartbleed: true,
            ccs_injection: true,
            robot: true,
            ticketbleed: true,
            insecure_renegotiation: true,
            slots: None,
        }
    }
}

/// What the active checks found.
#[derive(Clone, Debug, Default)]
pub struct VulnReport {
    pub vulnerabilities: Vulnerabilities,
    /// `(id, evidence)`, one per check, ids as the grader names them.
    pub evidence: Vec<(String, String)>,
    /// Connections made.
    pub connections: usize,
}

impl VulnReport {
    /// The evidence line for `id`.
    pub fn evidence(&self, id: &str) -> Option<&str> {
        self.evidence.iter().find(|(i, _)| i == id).map(|(_, e)| e.as_str())
    }
}

/// One check's result.
#[derive(Clone, Debug)]
pub(crate) struct Verdict {
    pub result: Option<bool>,
    pub evidence: String,
    pub connections: usize,
}

impl Verdict {
    pub fn vulnerable(evidence: String, connections: usize) -> Self {
        Verdict {
            result: Some(true),
            evidence: format!("vulnerable: {evidence}"),
            connections,
        }
    }

    pub fn safe(evidence: String, connections: usize) -> Self {
        Verdict {
            result: Some(false),
            evidence: format!("not vulnerable: {evidence}"),
            connections,
        }
    }

    pub fn untested(evidence: String, connections: usize) -> Self {
        Verdict {
            result: None,
            evidence: format!("not tested: {evidence}"),
            connections,
        }
    }

    pub fn inconclusive(evidence: String, connections: usize) -> Self {
        Verdict {
            result: None,
            evidence: format!("inconclusive: {evidence}"),
            connections,
        }
    }
}

/// Where the checks go and the name they send.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub addr: SocketAddr,
    pub sni: Option<String>,
}

impl Target {
    /// A hello for `v` with the default extensions and SNI (DNS names only).
    pub fn builder(&self, v: ProtocolVersion) -> ClientHelloBuilder {
        let b = ClientHelloBuilder::for_version(v, random());
        match &self.sni {
            Some(name) => b.server_name(name),
            None => b,
        }
    }
}

/// Run the active checks against `addr` (one after another, or side by side
/// under [`VulnConfig::slots`]), using what the enumeration `e` learnt
/// (versions and suites the server accepts) to build hellos it will answer.
/// `sni` is sent when it is a DNS name. The report lists the checks in the
/// same order either way.
pub async fn check(addr: SocketAddr, sni: Option<&str>, e: &Enumeration, cfg: &VulnConfig) -> VulnReport {
    let t = Target {
        addr,
        sni: sni.map(str::to_string),
    };
    let (hb, ccs, robot, tb, reneg) = match &cfg.slots {
        None => (
            one(None, cfg.heartbleed, heartbleed::check(&t, e, cfg)).await,
            one(None, cfg.ccs_injection, ccs::check(&t, e, cfg)).await,
            one(None, cfg.robot, robot::check(&t, e, cfg)).await,
            one(None, cfg.ticketbleed, ticketbleed::check(&t, e, cfg)).await,
            one(None, cfg.insecure_renegotiation, reneg::check(&t, e, cfg)).await,
        ),
        // Boxed: five conversations' state side by side is too big for a
        // worker's stack while the joined future is built.
        Some(slots) => tokio::join!(
            Box::pin(one(Some(slots), cfg.heartbleed, heartbleed::check(&t, e, cfg))),
            Box::pin(one(Some(slots), cfg.ccs_injection, ccs::check(&t, e, cfg))),
            Box::pin(one(Some(slots), cfg.robot, robot::check(&t, e, cfg))),
            Box::pin(one(Some(slots), cfg.ticketbleed, ticketbleed::check(&t, e, cfg))),
            Box::pin(one(Some(slots), cfg.insecure_renegotiation, reneg::check(&t, e, cfg))),
        ),
    };
    let mut report = VulnReport::default();
    report.vulnerabilities.heartbleed = record(&mut report, "heartbleed", hb);
    report.vulnerabilities.ccs_injection = record(&mut report, "ccs_injection", ccs);
    report.vulnerabilities.robot = record(&mut report, "robot", robot);
    report.vulnerabilities.ticketbleed = record(&mut report, "ticketbleed", tb);
    report.vulnerabilities.insecure_renegotiation = record(&mut report, "insecure_renegotiation", reneg);
    report
}

/// One check when it is switched on, holding one slot of the cap (when
/// there is one) from its first connection to its verdict.
async fn one(slots: Option<&Arc<Semaphore>>, on: bool, check: impl Future<Output = Verdict>) -> Verdict {
    if !on {
        return Verdict::untested("disabled in the configuration".into(), 0);
    }
    let _permit = match slots {
        Some(s) => match s.acquire().await {
            Ok(p) => Some(p),
            Err(_) => return Verdict::untested("the endpoint's connection slots were closed".into(), 0),
        },
        None => None,
    };
    check.await
}

fn record(report: &mut VulnReport, id: &str, v: Verdict) -> Option<bool> {
    report.connections += v.connections;
    report.evidence.push((id.to_string(), v.evidence));
    v.result
}

/// The newest version up to TLS 1.2 (from SSLv3 when `ssl3`, else from TLS
/// 1.0) at which the server accepted a suite that `keep` keeps, with those
/// suites in the enumeration's order.
pub(crate) fn legacy_offer(
    e: &Enumeration,
    ssl3: bool,
    keep: impl Fn(CipherSuite) -> bool,
) -> Option<(ProtocolVersion, Vec<CipherSuite>)> {
    let lowest = if ssl3 { Version::Ssl3 } else { Version::Tls10 };
    e.versions
        .iter()
        .rev()
        .filter(|(v, _)| (lowest..=Version::Tls12).contains(v))
        .find_map(|(v, r)| {
            let suites: Vec<CipherSuite> = r.accepted.iter().map(|a| a.suite).filter(|&s| keep(s)).collect();
            (!suites.is_empty()).then(|| (ProtocolVersion(v.wire()), suites))
        })
}

/// Why a check that needs TLS ≤ 1.2 did not run.
pub(crate) fn no_legacy_reason(e: &Enumeration) -> String {
    match e.versions.is_empty() {
        true => "the enumeration found no protocol version the server accepts".into(),
        false => "the server accepts no TLS version up to 1.2 (the flaw is in TLS ≤ 1.2 handshakes)".into(),
    }
}

pub(crate) fn random() -> [u8; 32] {
    let mut r = [0u8; 32];
    // Any unpredictable bytes do; the provider's RNG is the one at hand.
    let _ = rustls::crypto::aws_lc_rs::default_provider().secure_random.fill(&mut r);
    r
}

pub(crate) fn ms(d: Duration) -> u128 {
    d.as_millis()
}
