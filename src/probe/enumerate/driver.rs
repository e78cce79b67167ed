//! Everything a server accepts, learnt with hand-built ClientHellos.
//!
//! rustls offers nine modern suites; a sensor must find the servers that
//! still take SSLv3, RC4, export or NULL suites, so this layer speaks the
//! handshake itself (through `wire`) and reads only what the server sends in
//! the clear: ServerHello, Certificate, ServerKeyExchange, alerts. No key is
//! ever computed. The strategy (what to offer, what an answer means) is the
//! pure `crate::probe::enumerate::strategy`; this module runs it against a socket address,
//! many hellos at once but never more than `per_host` connections to one
//! server, and gives up on a server that stalls instead of waiting out every
//! probe's deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::pq::{self, PostQuantum};
use super::result::{Accepted, Enumeration, Sslv2Result, group_name};
use super::strategy::{self, Elimination, Pick, Version};
use crate::model::record::Features;
use crate::probe::hello::{self, Ended, Flight, Preamble, Until};
use crate::wire::hello::{TLS_FALLBACK_SCSV, TLS12_GROUPS, TLS12_SIGNATURE_SCHEMES, TLS13_GROUPS};
use crate::wire::{
    AlertDescription, CipherSuite, ClientHelloBuilder, Compression, HeartbeatMode, NamedGroup, ProtocolVersion,
    SignatureScheme, Sslv2ClientHello,
};

#[derive(Clone, Debug)]
pub struct EnumConfig {
    /// Deadline of one hello exchange.
    pub deadline: Duration,
    /// Connections to the server at once.
    pub per_host: usize,
    /// Suites per ClientHello.
    pub suites_per_hello: usize,
    /// After this many timed-out exchanges the server is deemed stalling and
    /// the rest of the enumeration is skipped.
    pub max_timeouts: usize,
    /// Try each group and signature algorithm alone.
    pub groups_and_signatures: bool,
    /// The STARTTLS dialogue every connection needs first, when the endpoint upgrades.
    pub preamble: Option<Preamble>,
    /// Pause after a throttling answer (SMTP 421), times the number seen so far.
    pub throttle_backoff: Duration,
    /// After this many throttling answers the enumeration stops: a server
    /// that says "later" is not hammered.
    pub max_throttles: usize,
    /// The endpoint's connection cap, shared with the stages that run beside
    /// the enumeration (the `GET /`, the active checks); `None`: a cap of
    /// `per_host` of its own.
    pub slots: Option<Arc<Semaphore>>,
}

impl Default for EnumConfig {
    fn default() -> Self {
        EnumConfig {
            deadline: Duration::from_secs(5),
            per_host: 4,
            suites_per_hello: 128,
            max_timeouts: 3,
            groups_and_signatures: true,
            preamble: None,
            throttle_backoff: Duration::from_secs(1),
            max_throttles: 4,
            slots: None,
        }
    }
}

/// One chunk's elimination: its version, accepted suites, and a chain if one was seen.
type ChunkResult = (Option<Version>, Vec<Accepted>, Vec<Vec<u8>>);

/// Shared state of one endpoint's enumeration.
struct Ctx {
    addr: SocketAddr,
    sni: Option<String>,
    cfg: EnumConfig,
    slots: Arc<Semaphore>,
    connections: AtomicUsize,
    timeouts: AtomicUsize,
    throttles: AtomicUsize,
    stalled: AtomicBool,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    fn note(&self, e: String) {
        if let Ok(mut errors) = self.errors.lock()
            && errors.len() < 32
            && !errors.contains(&e)
        {
            errors.push(e);
        }
    }

    /// One exchange under the per-host cap; `None` once the server is deemed stalling.
    async fn send(&self, hello: &ClientHelloBuilder, until: Until) -> Option<Flight> {
        let bytes = match hello.build() {
            Ok(b) => b,
            Err(e) => {
                self.note(format!("cannot build a ClientHello: {e}"));
                return None;
            }
        };
        self.send_bytes(&bytes, until).await
    }

    async fn send_bytes(&self, bytes: &[u8], until: Until) -> Option<Flight> {
        if self.stalled.load(Ordering::Relaxed) {
            return None;
        }
        let _permit = self.slots.acquire().await.ok()?;
        if self.stalled.load(Ordering::Relaxed) {
            return None;
        }
        let flight = loop {
            self.connections.fetch_add(1, Ordering::Relaxed);
            let preamble = self.cfg.preamble.as_ref();
            let flight = hello::exchange_via(self.addr, preamble, bytes, until, self.cfg.deadline).await;
            let Ended::Throttled(why) = &flight.ended else {
                break flight;
            };
            let n = self.throttles.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= self.cfg.max_throttles {
                if !self.stalled.swap(true, Ordering::Relaxed) {
                    self.note(format!(
                        "the server throttled the enumeration {n} times ({why}); stopped, enumeration is incomplete"
                    ));
                }
                return None;
            }
            self.note(format!("throttled, backing off: {why}"));
            // Hold the slot while waiting: fewer connections is the point.
            tokio::time::sleep(self.cfg.throttle_backoff * n as u32).await;
            if self.stalled.load(Ordering::Relaxed) {
                return None;
            }
        };
        match &flight.ended {
            Ended::Timeout => {
                let n = self.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if n == self.cfg.max_timeouts {
                    self.stalled.store(true, Ordering::Relaxed);
                    self.note(format!(
                        "the server stopped answering ({n} probes timed out after {} ms); enumeration is incomplete",
                        self.cfg.deadline.as_millis()
                    ));
                }
            }
            Ended::Malformed(e) => self.note(format!("malformed answer: {e}")),
            Ended::Connect(e) => self.note(format!("connect failed during enumeration: {e}")),
            _ => {}
        }
        Some(flight)
    }

    fn builder(&self, v: Version) -> ClientHelloBuilder {
        let mut b = ClientHelloBuilder::for_version(ProtocolVersion(v.wire()), random());
        if let Some(h) = &self.sni {
            b = b.server_name(h);
        }
        b
    }
}

fn random() -> [u8; 32] {
    let mut r = [0u8; 32];
    // Any 32 bytes do; the provider's RNG is simply the one at hand.
    let _ = rustls::crypto::aws_lc_rs::default_provider().secure_random.fill(&mut r);
    r
}

/// What a flight says about the suite question at `v`.
fn pick(flight: &Flight, v: Version) -> Pick {
    match &flight.server_hello {
        Some(sh) if sh.is_hello_retry_request() && v == Version::Tls13 => Pick::Chose(sh.cipher_suite),
        Some(sh) if sh.version() == ProtocolVersion(v.wire()) => Pick::Chose(sh.cipher_suite),
        _ => Pick::Refused,
    }
}

/// The key exchange a flight showed, for the record's `kex_info`.
fn kex_of(flight: &Flight) -> (Option<String>, Option<u32>) {
    let Some(sh) = &flight.server_hello else {
        return (None, None);
    };
    if sh.version() >= ProtocolVersion::TLSv1_3 || sh.is_hello_retry_request() {
        let g = sh.selected_group();
        return (g.map(|g| format!("ECDH {}", group_name(g))), None);
    }
    match &flight.key_exchange {
        Some(ske) => {
            if let Some(bits) = ske.dh_bits() {
                return (Some(format!("DH {bits}")), Some(bits as u32));
            }
            if let Some(g) = ske.ecdh_group() {
                return (Some(format!("ECDH {}", group_name(g))), None);
            }
            (None, None)
        }
        None => match sh.suite_info().map(|i| i.kx) {
            Some("RSA") => (Some("RSA".into()), None),
            _ => (None, None),
        },
    }
}

/// Enumerate `addr`. `sni` is sent when it is a DNS name.
pub async fn enumerate(addr: SocketAddr, sni: Option<&str>, cfg: EnumConfig) -> Enumeration {
    let ctx = Arc::new(Ctx {
        addr,
        sni: sni.map(str::to_string),
        slots: cfg
            .slots
            .clone()
            .unwrap_or_else(|| Arc::new(Semaphore::new(cfg.per_host.max(1)))),
        cfg,
        connections: AtomicUsize::new(0),
        timeouts: AtomicUsize::new(0),
        throttles: AtomicUsize::new(0),
        stalled: AtomicBool::new(false),
        errors: std::sync::Mutex::new(Vec::new()),
    });
    let mut out = Enumeration::default();

    // 1. Every version's suites, and SSLv2, all at once.
    let mut jobs: JoinSet<ChunkResult> = JoinSet::new();
    for v in Version::ALL {
        for chunk in strategy::chunks(&strategy::candidates(v), ctx.cfg.suites_per_hello) {
            let ctx = ctx.clone();
            jobs.spawn(async move {
                let (accepted, chain) = eliminate(&ctx, v, chunk).await;
                (Some(v), accepted, chain)
            });
        }
    }
    let sslv2 = {
        let ctx = ctx.clone();
        tokio::spawn(async move { probe_sslv2(&ctx).await })
    };
    let mut chains: BTreeMap<Version, Vec<Vec<u8>>> = BTreeMap::new();
    while let Some(done) = jobs.join_next().await {
        let Ok((Some(v), accepted, chain)) = done else { continue };
        let entry = out.versions.entry(v).or_default();
        entry.accepted.extend(accepted);
        if !chain.is_empty() {
            chains.entry(v).or_insert(chain);
        }
    }
    out.versions.retain(|_, r| !r.accepted.is_empty());
    out.sslv2 = sslv2.await.unwrap_or_default();
    // The chain from the newest version that showed one.
    out.chain = chains.into_iter().next_back().map(|(_, c)| c).unwrap_or_default();
    // Keep registry order until a server order is known.
    for r in out.versions.values_mut() {
        r.accepted.sort_by_key(|a| catalogue_position(a.suite));
    }

    // 2. Preference and the server's order, per version.
    let mut prefs: JoinSet<(Version, Option<&'static str>, Vec<CipherSuite>)> = JoinSet::new();
    for (&v, r) in &out.versions {
        let suites: Vec<CipherSuite> = r.accepted.iter().map(|a| a.suite).collect();
        if suites.len() >= 2 {
            let ctx = ctx.clone();
            prefs.spawn(async move {
                let (pref, order) = preference(&ctx, v, suites).await;
                (v, pref, order)
            });
        }
    }
    while let Some(done) = prefs.join_next().await {
        let Ok((v, pref, order)) = done else { continue };
        if let Some(r) = out.versions.get_mut(&v) {
            r.preference = pref;
            if pref == Some("server") && order.len() == r.accepted.len() {
                let mut sorted = Vec::with_capacity(order.len());
                for s in order {
                    if let Some(a) = r.accepted.iter().find(|a| a.suite == s) {
                        sorted.push(a.clone());
                    }
                }
                r.accepted = sorted;
            }
        }
    }

    // 3. Groups, signature algorithms, features and compression.
    let ((groups, post_quantum), sigs, features, compression) = tokio::join!(
        probe_groups(&ctx, &out),
        probe_signatures(&ctx, &out),
        probe_features(&ctx, &out),
        probe_compression(&ctx, &out)
    );
    out.groups = groups;
    out.post_quantum = post_quantum;
    out.signature_algorithms = sigs;
    (out.features, out.ocsp_response) = features;
    for (v, methods) in compression {
        if let Some(r) = out.versions.get_mut(&v) {
            r.compression = methods;
        }
    }
    out.versions.retain(|_, r| !r.accepted.is_empty());
    out.connections = ctx.connections.load(Ordering::Relaxed);
    out.stalled = ctx.stalled.load(Ordering::Relaxed);
    out.errors = ctx.errors.lock().map(|e| e.clone()).unwrap_or_default();
    out
}

fn catalogue_position(s: CipherSuite) -> usize {
    crate::wire::suites::all()
        .iter()
        .position(|i| i.id == s.0)
        .unwrap_or(usize::MAX)
}

/// Elimination over one chunk at one version; also returns the first chain seen.
async fn eliminate(ctx: &Ctx, v: Version, chunk: Vec<CipherSuite>) -> (Vec<Accepted>, Vec<Vec<u8>>) {
    let mut e = Elimination::new(chunk);
    let mut accepted = Vec::new();
    let mut chain = Vec::new();
    let until = if v == Version::Tls13 {
        Until::ServerHello
    } else {
        Until::HelloDone
    };
    while let Some(offer) = e.next_offer() {
        let mut b = ctx.builder(v).cipher_suites(offer.iter().copied());
        if v == Version::Ssl3 {
            // SSLv3 has no extensions: ask for secure renegotiation by SCSV.
            b = b.cipher_suites(
                offer
                    .iter()
                    .copied()
                    .chain([crate::wire::hello::TLS_EMPTY_RENEGOTIATION_INFO_SCSV]),
            );
        }
        let Some(flight) = ctx.send(&b, until).await else { break };
        let p = pick(&flight, v);
        if let Pick::Chose(s) = p {
            let (kex, dh_bits) = kex_of(&flight);
            if offer.contains(&s) {
                accepted.push(Accepted { suite: s, kex, dh_bits });
            }
            if chain.is_empty() && !flight.chain.is_empty() {
                chain = flight.chain.clone();
            }
        }
        e.answer(p);
        if let Some(bad) = e.lied {
            ctx.note(format!(
                "{}: the server chose {} which was not offered",
                v.name(),
                bad.name()
            ));
        }
    }
    (accepted, chain)
}

/// Server or client preference from two opposite orders, and the server's
/// full order when it has one.
async fn preference(ctx: &Ctx, v: Version, suites: Vec<CipherSuite>) -> (Option<&'static str>, Vec<CipherSuite>) {
    let until = Until::ServerHello;
    let forward = ctx
        .send(&ctx.builder(v).cipher_suites(suites.iter().copied()), until)
        .await;
    let reverse = ctx
        .send(&ctx.builder(v).cipher_suites(suites.iter().rev().copied()), until)
        .await;
    let (Some(f), Some(r)) = (forward, reverse) else {
        return (None, Vec::new());
    };
    let (Pick::Chose(fp), Pick::Chose(rp)) = (pick(&f, v), pick(&r, v)) else {
        return (None, Vec::new());
    };
    let pref = strategy::preference(fp, rp, &suites);
    if pref != Some("server") {
        return (pref, Vec::new());
    }
    // The server's order: its first pick, then elimination over the rest.
    let mut order = vec![fp];
    let mut rest: Vec<CipherSuite> = suites.iter().copied().filter(|&s| s != fp).collect();
    while rest.len() > 1 {
        let Some(flight) = ctx
            .send(&ctx.builder(v).cipher_suites(rest.iter().copied()), until)
            .await
        else {
            return (pref, Vec::new());
        };
        match pick(&flight, v) {
            Pick::Chose(s) if rest.contains(&s) => {
                order.push(s);
                rest.retain(|&x| x != s);
            }
            _ => return (pref, Vec::new()),
        }
    }
    order.extend(rest);
    (pref, order)
}

async fn probe_sslv2(ctx: &Ctx) -> Sslv2Result {
    let mut challenge = [0u8; 16];
    challenge.copy_from_slice(&random()[..16]);
    let Ok(bytes) = Sslv2ClientHello::new(challenge).to_record() else {
        return Sslv2Result::default();
    };
    let Some(flight) = ctx.send_bytes(&bytes, Until::ServerHello).await else {
        return Sslv2Result::default();
    };
    match flight.sslv2 {
        Some(sh) if !sh.cipher_specs.is_empty() => Sslv2Result {
            supported: true,
            cipher_specs: sh
                .cipher_specs
                .iter()
                .map(|c| {
                    (
                        c.0,
                        c.name().map(str::to_string).unwrap_or_else(|| format!("{:#08x}", c.0)),
                    )
                })
                .collect(),
        },
        _ => Sslv2Result::default(),
    }
}

/// Groups, each offered alone: TLS 1.3 with an empty key_share (the server
/// answers HelloRetryRequest naming the group it accepts), TLS 1.2 with the
/// accepted ECDHE suites (the ServerKeyExchange names the curve). Then,
/// when TLS 1.3 accepts both post-quantum and classical groups, which kind
/// the server prefers (see [`pq`]).
async fn probe_groups(ctx: &Arc<Ctx>, e: &Enumeration) -> (Vec<NamedGroup>, Option<PostQuantum>) {
    if !ctx.cfg.groups_and_signatures {
        return (Vec::new(), None);
    }
    // (group, accepted in TLS 1.3)
    let mut jobs: JoinSet<Option<(NamedGroup, bool)>> = JoinSet::new();
    let suites13: Option<Vec<CipherSuite>> = e
        .versions
        .get(&Version::Tls13)
        .filter(|r| !r.accepted.is_empty())
        .map(|r| r.accepted.iter().map(|a| a.suite).collect());
    if let Some(suites) = &suites13 {
        for &g in TLS13_GROUPS {
            let (c, suites) = (ctx.clone(), suites.clone());
            jobs.spawn(async move {
                let sh = hrr(&c, suites, &[g]).await?;
                (sh == g).then_some((g, true))
            });
        }
    }
    let ecdhe12 = [Version::Tls12, Version::Tls11, Version::Tls10]
        .into_iter()
        .find_map(|v| {
            let suites: Vec<CipherSuite> = e
                .versions
                .get(&v)?
                .accepted
                .iter()
                .filter(|a| a.suite.info().is_some_and(|i| i.kx == "ECDHE"))
                .map(|a| a.suite)
                .collect();
            (!suites.is_empty()).then_some((v, suites))
        });
    if let Some((v, suites)) = ecdhe12 {
        for &g in TLS12_GROUPS.iter().filter(|g| !is_ffdhe(**g)) {
            let (c, suites) = (ctx.clone(), suites.clone());
            jobs.spawn(async move {
                let b = c.builder(v).cipher_suites(suites).supported_groups(&[g]);
                let f = c.send(&b, Until::HelloDone).await?;
                (pick(&f, v) != Pick::Refused && f.key_exchange.as_ref()?.ecdh_group() == Some(g)).then_some((g, false))
            });
        }
    }
    let mut groups = Vec::new();
    let mut groups13 = Vec::new();
    while let Some(done) = jobs.join_next().await {
        if let Ok(Some((g, tls13))) = done {
            if tls13 {
                groups13.push(g);
            }
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    let post_quantum = match suites13 {
        Some(suites) => {
            groups13.sort_by_key(|g| TLS13_GROUPS.iter().position(|x| x == g).unwrap_or(usize::MAX));
            let (a, b) = match pq::preference_offers(&groups13) {
                Some((classical_first, pq_first)) => {
                    tokio::join!(hrr(ctx, suites.clone(), &classical_first), hrr(ctx, suites, &pq_first))
                }
                None => (None, None),
            };
            Some(pq::judge(&groups13, a, b))
        }
        None => None,
    };
    groups.sort_by_key(|g| {
        TLS13_GROUPS
            .iter()
            .chain(TLS12_GROUPS)
            .position(|x| x == g)
            .unwrap_or(usize::MAX)
    });
    (groups, post_quantum)
}

/// The group a TLS 1.3 server names when offered `groups` without key
/// shares (its HelloRetryRequest), or the group of a ServerHello.
async fn hrr(ctx: &Ctx, suites: Vec<CipherSuite>, groups: &[NamedGroup]) -> Option<NamedGroup> {
    let b = ctx
        .builder(Version::Tls13)
        .cipher_suites(suites)
        .supported_groups(groups)
        .key_shares(Vec::new());
    let sh = ctx.send(&b, Until::ServerHello).await?.server_hello?;
    if sh.version() < ProtocolVersion::TLSv1_3 {
        return None;
    }
    sh.selected_group().filter(|g| groups.contains(g))
}

fn is_ffdhe(g: NamedGroup) -> bool {
    (0x0100..=0x01ff).contains(&g.0)
}

/// TLS 1.2 signature algorithms, each offered alone with the accepted
/// forward-secret suites: accepted when the server signs with it.
async fn probe_signatures(ctx: &Arc<Ctx>, e: &Enumeration) -> Vec<SignatureScheme> {
    if !ctx.cfg.groups_and_signatures {
        return Vec::new();
    }
    let Some(r12) = e.versions.get(&Version::Tls12) else {
        return Vec::new();
    };
    let suites: Vec<CipherSuite> = r12
        .accepted
        .iter()
        .filter(|a| {
            a.suite
                .info()
                .is_some_and(|i| matches!(i.kx, "ECDHE" | "DHE") && i.auth != "NULL")
        })
        .map(|a| a.suite)
        .collect();
    if suites.is_empty() {
        return Vec::new();
    }
    let mut jobs: JoinSet<Option<SignatureScheme>> = JoinSet::new();
    for &s in TLS12_SIGNATURE_SCHEMES {
        let (c, suites) = (ctx.clone(), suites.clone());
        jobs.spawn(async move {
            let b = c
                .builder(Version::Tls12)
                .cipher_suites(suites)
                .signature_algorithms(&[s]);
            let f = c.send(&b, Until::HelloDone).await?;
            let used = f.key_exchange.as_ref()?.signature.as_ref()?.scheme;
            (pick(&f, Version::Tls12) != Pick::Refused && used == Some(s)).then_some(s)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = jobs.join_next().await {
        if let Ok(Some(s)) = done {
            out.push(s);
        }
    }
    out.sort_by_key(|s| {
        TLS12_SIGNATURE_SCHEMES
            .iter()
            .position(|x| x == s)
            .unwrap_or(usize::MAX)
    });
    out
}

/// Per TLS ≤ 1.2 version: offered DEFLATE and NULL, what did it pick?
async fn probe_compression(ctx: &Ctx, e: &Enumeration) -> Vec<(Version, Vec<String>)> {
    let mut out = Vec::new();
    for (&v, r) in &e.versions {
        if v == Version::Tls13 || r.accepted.is_empty() {
            continue;
        }
        let b = ctx
            .builder(v)
            .cipher_suites(r.accepted.iter().map(|a| a.suite))
            .compression(&[Compression::Deflate, Compression::Null]);
        let methods = match ctx.send(&b, Until::ServerHello).await.and_then(|f| f.server_hello) {
            Some(sh) if sh.compression != Compression::Null => {
                vec![
                    sh.compression.name().unwrap_or("unknown").to_string(),
                    "NULL".to_string(),
                ]
            }
            Some(_) => vec!["NULL".to_string()],
            None => Vec::new(),
        };
        out.push((v, methods));
    }
    out
}

/// Extensions the server answers, fallback protection, tickets, HRR.
async fn probe_features(ctx: &Ctx, e: &Enumeration) -> (Features, Option<Vec<u8>>) {
    let mut f = Features::default();
    let mut ocsp = None;
    let legacy: Vec<Version> = e.versions.keys().copied().filter(|&v| v != Version::Tls13).collect();
    if let Some(&best) = legacy.last() {
        let suites: Vec<CipherSuite> = e.versions[&best].accepted.iter().map(|a| a.suite).collect();
        let b = ctx
            .builder(best)
            .cipher_suites(suites.iter().copied())
            .status_request()
            .heartbeat(HeartbeatMode::PeerAllowedToSend)
            .alpn(&[b"h2", b"http/1.1"]);
        if let Some(flight) = ctx.send(&b, Until::HelloDone).await
            && let Some(sh) = flight
                .server_hello
                .as_ref()
                .filter(|_| pick(&flight, best) != Pick::Refused)
        {
            let cbc = sh.suite_info().is_some_and(|i| i.mode == "CBC");
            f.secure_renegotiation = Some(sh.renegotiation_info().is_some());
            f.extended_master_secret = Some(sh.extended_master_secret());
            f.encrypt_then_mac = cbc.then_some(sh.encrypt_then_mac());
            f.heartbeat = Some(sh.heartbeat().is_some());
            f.ocsp_stapling = Some(sh.status_request() && flight.ocsp_response.is_some());
            ocsp = flight.ocsp_response.clone();
            f.session_ticket = Some(sh.has_extension(crate::wire::ExtensionType::SessionTicket));
            f.session_id = Some(!sh.session_id.is_empty());
            if let Some(p) = sh.alpn() {
                f.alpn.push(String::from_utf8_lossy(p).into_owned());
            }
        }
        // encrypt_then_mac only means something with a CBC suite.
        let cbc: Vec<CipherSuite> = suites
            .iter()
            .copied()
            .filter(|s| s.info().is_some_and(|i| i.mode == "CBC"))
            .collect();
        if f.encrypt_then_mac.is_none()
            && !cbc.is_empty()
            && best != Version::Ssl3
            && let Some(flight) = ctx
                .send(&ctx.builder(best).cipher_suites(cbc), Until::ServerHello)
                .await
            && let Some(sh) = flight
                .server_hello
                .as_ref()
                .filter(|_| pick(&flight, best) != Pick::Refused)
        {
            f.encrypt_then_mac = Some(sh.encrypt_then_mac());
        }
        // The other ALPN protocol, alone.
        if let Some(first) = f.alpn.first().cloned() {
            let other: &[u8] = if first == "h2" { b"http/1.1" } else { b"h2" };
            let b = ctx.builder(best).cipher_suites(suites.iter().copied()).alpn(&[other]);
            if let Some(flight) = ctx.send(&b, Until::ServerHello).await
                && let Some(p) = flight.server_hello.as_ref().and_then(|sh| sh.alpn())
                && p == other
            {
                f.alpn.push(String::from_utf8_lossy(p).into_owned());
            }
        }
    }
    // TLS_FALLBACK_SCSV: a hello below the best version, flagged as a fallback,
    // must be refused with inappropriate_fallback.
    let supported: Vec<Version> = e.versions.keys().copied().collect();
    if supported.len() >= 2
        && let Some(&lower) = legacy.iter().rev().find(|&&v| Some(&v) != supported.last())
    {
        let suites: Vec<CipherSuite> = e.versions[&lower].accepted.iter().map(|a| a.suite).collect();
        let b = ctx
            .builder(lower)
            .cipher_suites(suites.into_iter().chain([TLS_FALLBACK_SCSV]));
        if let Some(flight) = ctx.send(&b, Until::ServerHello).await {
            f.fallback_scsv = match (&flight.alert, pick(&flight, lower)) {
                (Some(a), _) if a.description == AlertDescription::InappropriateFallback => Some(true),
                (_, Pick::Chose(_)) => Some(false),
                _ => None,
            };
        }
    }
    // HelloRetryRequest: TLS 1.3 with a key share the server may not prefer.
    if let Some(r13) = e.versions.get(&Version::Tls13) {
        let b = ctx
            .builder(Version::Tls13)
            .cipher_suites(r13.accepted.iter().map(|a| a.suite))
            .supported_groups(&[NamedGroup::X25519, NamedGroup::SECP256R1, NamedGroup::SECP384R1])
            .key_shares(Vec::new());
        if let Some(flight) = ctx.send(&b, Until::ServerHello).await {
            f.hello_retry_request = flight.server_hello.as_ref().map(|sh| sh.is_hello_retry_request());
        }
    }
    (f, ocsp)
}
