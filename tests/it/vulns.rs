//! The active vulnerability checks against vulnerable and safe servers.
//!
//! Each check is asserted vulnerable on its purpose-built vulnerable
//! responder (`vuln_servers`, each reproducing the published flaw) and not
//! vulnerable on real, patched servers: `openssl s_server` (OpenSSL 3, TLS
//! 1.2, static RSA and ECDHE suites) and rustls. Everything runs on
//! 127.0.0.1 within bounded time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netsensor::probe::enumerate::strategy::Version;
use netsensor::probe::enumerate::{self, EnumConfig, Enumeration};
use netsensor::probe::vulns::{self, VulnConfig, VulnReport};
use netsensor::wire::CipherSuite;
use testbed::{self, Chain, KeyKind};

use crate::support;

#[path = "vuln_servers.rs"]
mod vuln_servers;
use vuln_servers::CcsMode;

/// Short waits: loopback servers answer in milliseconds.
fn quick() -> VulnConfig {
    VulnConfig {
        deadline: Duration::from_secs(5),
        reply_wait: Duration::from_millis(1500),
        robot_deadline: Duration::from_secs(30),
        ..VulnConfig::default()
    }
}

/// Only the check named `id`.
fn only(id: &str) -> VulnConfig {
    VulnConfig {
        heartbleed: id == "heartbleed",
        ccs_injection: id == "ccs_injection",
        robot: id == "robot",
        ticketbleed: id == "ticketbleed",
        insecure_renegotiation: id == "insecure_renegotiation",
        ..quick()
    }
}

/// What an enumeration of a responder serving `suites` at TLS 1.2 finds.
fn tls12(suites: &[u16]) -> Enumeration {
    let suites: Vec<CipherSuite> = suites.iter().map(|&s| CipherSuite(s)).collect();
    Enumeration::accepting(Version::Tls12, &suites)
}

fn rsa_chain(tag: &str) -> Chain {
    testbed::issue_chain(tag, &["vulns.test"], KeyKind::Rsa2048).expect("chain")
}

async fn run(addr: SocketAddr, e: &Enumeration, cfg: &VulnConfig) -> (VulnReport, Duration) {
    let started = Instant::now();
    let report = vulns::check(addr, None, e, cfg).await;
    let took = started.elapsed();
    eprintln!("{addr}: {took:?}, {} connections", report.connections);
    for (id, ev) in &report.evidence {
        eprintln!("  {id}: {ev}");
    }
    (report, took)
}

fn evidence<'a>(r: &'a VulnReport, id: &str) -> &'a str {
    r.evidence(id).unwrap_or_else(|| panic!("no evidence for {id}: {r:#?}"))
}

#[tokio::test]
async fn heartbleed_responder_is_vulnerable() {
    let chain = rsa_chain("heartbleed");
    let server = vuln_servers::heartbleed(chain.presented()).await;
    let (r, took) = run(server.addr, &tls12(&[0x002f]), &only("heartbleed")).await;
    assert_eq!(r.vulnerabilities.heartbleed, Some(true), "{r:#?}");
    let ev = evidence(&r, "heartbleed");
    assert!(
        ev.starts_with("vulnerable: the server negotiated the heartbeat extension"),
        "{ev}"
    );
    assert!(ev.contains("claiming 4096 bytes carried 19"), "{ev}");
    assert_eq!(r.connections, 1);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn heartbleed_full_16k_answer_split_in_records_is_recognised() {
    let chain = rsa_chain("heartbleed 16k");
    let server = vuln_servers::heartbleed(chain.presented()).await;
    let cfg = VulnConfig {
        heartbeat_length: 0x4000,
        ..only("heartbleed")
    };
    let (r, _) = run(server.addr, &tls12(&[0x002f]), &cfg).await;
    assert_eq!(r.vulnerabilities.heartbleed, Some(true), "{r:#?}");
}

#[tokio::test]
async fn ccs_injection_responders_are_vulnerable() {
    let chain = rsa_chain("ccs");
    for (mode, expect) in [
        (CcsMode::OpenSsl101g, "bad_record_mac"),
        (CcsMode::Silent, "drew no alert within 1500 ms"),
    ] {
        let server = vuln_servers::ccs_injection(chain.presented(), mode).await;
        let (r, took) = run(server.addr, &tls12(&[0x002f]), &only("ccs_injection")).await;
        assert_eq!(r.vulnerabilities.ccs_injection, Some(true), "{mode:?}: {r:#?}");
        let ev = evidence(&r, "ccs_injection");
        assert!(ev.starts_with("vulnerable: ") && ev.contains(expect), "{mode:?}: {ev}");
        assert!(took < Duration::from_secs(4), "{mode:?}: {took:?}");
    }
}

#[tokio::test]
async fn robot_oracle_responder_is_vulnerable() {
    let chain = rsa_chain("robot");
    let key = vuln_servers::rsa_key(&chain.leaf_key);
    let server = vuln_servers::robot_oracle(chain.presented(), key).await;
    let (r, took) = run(server.addr, &tls12(&[0x002f]), &only("robot")).await;
    assert_eq!(r.vulnerabilities.robot, Some(true), "{r:#?}");
    let ev = evidence(&r, "robot");
    assert!(ev.contains("the same in two runs"), "{ev}");
    assert!(
        ev.contains("correct padding → a fatal bad_record_mac alert, then closed"),
        "{ev}"
    );
    assert!(
        ev.contains("wrong first bytes (41 17) → a fatal handshake_failure alert, then closed"),
        "{ev}"
    );
    // Five variants, re-run once to confirm.
    assert_eq!(r.connections, 10);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn ticketbleed_responder_is_vulnerable_and_rustls_with_tickets_is_not() {
    let chain = rsa_chain("ticketbleed");
    let upstream = vuln_servers::rustls_with_tickets(&chain).await;
    let e = tls12(&[0xc02f]);

    let (r, _) = run(upstream.addr, &e, &only("ticketbleed")).await;
    assert_eq!(r.vulnerabilities.ticketbleed, Some(false), "{r:#?}");
    assert!(
        evidence(&r, "ticketbleed").contains("was resumed, and the session id echoed is exactly ours"),
        "{r:#?}"
    );

    let proxy = vuln_servers::ticketbleed(upstream.addr).await;
    let (r, took) = run(proxy.addr, &e, &only("ticketbleed")).await;
    assert_eq!(r.vulnerabilities.ticketbleed, Some(true), "{r:#?}");
    let ev = evidence(&r, "ticketbleed");
    assert!(
        ev.contains("resumed with a 32-byte session id starting with ours: 31 bytes"),
        "{ev}"
    );
    assert_eq!(r.connections, 2);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// OpenSSL 3 is patched against all of them; its answers are the reference
/// "safe" behaviour.
#[tokio::test]
async fn openssl_is_not_vulnerable() {
    let dir = tempfile::tempdir().unwrap();
    let chain = rsa_chain("vulns openssl");
    let args = ["-tls1_2", "-cipher", "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256"];
    let (_p, addr) = support::openssl_server(&chain, dir.path(), &args).await;
    let e = enumerate::enumerate(addr, None, EnumConfig::default()).await;
    assert!(e.supports(Version::Tls12), "{e:#?}");
    let (r, took) = run(addr, &e, &quick()).await;
    let v = r.vulnerabilities;
    assert_eq!(v.heartbleed, Some(false), "{r:#?}");
    assert_eq!(v.ccs_injection, Some(false), "{r:#?}");
    assert_eq!(v.robot, Some(false), "{r:#?}");
    assert_eq!(v.ticketbleed, Some(false), "{r:#?}");
    assert_eq!(v.insecure_renegotiation, None, "{r:#?}");
    assert!(
        evidence(&r, "ccs_injection").contains("refused with a fatal unexpected_message alert"),
        "{r:#?}"
    );
    assert!(evidence(&r, "robot").contains("were all answered alike"), "{r:#?}");
    assert!(evidence(&r, "robot").contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{r:#?}");
    assert!(evidence(&r, "ticketbleed").contains("echoed is exactly ours"), "{r:#?}");
    assert!(
        evidence(&r, "insecure_renegotiation").contains("accepts no TLS 1.2 ECDHE suite with AES-256-GCM"),
        "{r:#?}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[tokio::test]
async fn rustls_is_not_vulnerable() {
    let chain = rsa_chain("vulns rustls");
    let versions: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
    let (config, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, versions).unwrap();
    let listener = testbed::bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = AbortOnDrop(testbed::serve_tls(listener, config));
    let e = enumerate::enumerate(addr, None, EnumConfig::default()).await;
    assert!(e.supports(Version::Tls12) && e.supports(Version::Tls13), "{e:#?}");
    let (r, took) = run(addr, &e, &quick()).await;
    let v = r.vulnerabilities;
    assert_eq!(v.heartbleed, Some(false), "{r:#?}");
    assert_eq!(v.ccs_injection, Some(false), "{r:#?}");
    assert_eq!(v.robot, Some(false), "{r:#?}");
    assert!(evidence(&r, "robot").contains("no static-RSA key exchange"), "{r:#?}");
    // This rustls server keeps sessions by id and issues no tickets.
    assert_eq!(v.ticketbleed, Some(false), "{r:#?}");
    assert!(
        evidence(&r, "ticketbleed").contains("issues no session tickets"),
        "{r:#?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    drop(server);
}

#[tokio::test]
async fn tls13_only_server_is_not_tested_for_tls12_flaws() {
    let chain = rsa_chain("vulns tls13");
    let (config, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).unwrap();
    let listener = testbed::bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = AbortOnDrop(testbed::serve_tls(listener, config));
    let e = enumerate::enumerate(addr, None, EnumConfig::default()).await;
    let (r, _) = run(addr, &e, &quick()).await;
    let v = r.vulnerabilities;
    assert_eq!(
        (v.heartbleed, v.ccs_injection, v.ticketbleed),
        (None, None, None),
        "{r:#?}"
    );
    assert_eq!(v.robot, Some(false), "TLS 1.3 has no RSA key transport: {r:#?}");
    assert!(
        evidence(&r, "heartbleed").contains("no TLS version up to 1.2"),
        "{r:#?}"
    );
    assert_eq!(r.connections, 0);
}

/// OpenSSL refuses a client-initiated renegotiation by default, and a
/// legacy (pre-RFC 5746) one even with client renegotiation allowed; with
/// `-legacy_renegotiation` it accepts it: the CVE-2009-3555 exposure.
#[tokio::test]
async fn insecure_renegotiation_on_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let chain = rsa_chain("vulns reneg");
    let base = ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384:AES128-SHA"];
    let cases: [(&[&str], Option<bool>, &str); 3] = [
        (&[], Some(false), "refused with a warning no_renegotiation alert"),
        (
            &["-client_renegotiation"],
            Some(false),
            "refused with a warning no_renegotiation alert",
        ),
        (
            &["-client_renegotiation", "-legacy_renegotiation"],
            Some(true),
            "the server answered with a ServerHello",
        ),
    ];
    for (extra, expect, says) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (_p, addr) = support::openssl_server(&chain, dir.path(), &args).await;
        let mut e = tls12(&[0xc030, 0x002f]);
        e.features.secure_renegotiation = Some(true);
        let (r, took) = run(addr, &e, &only("insecure_renegotiation")).await;
        assert_eq!(r.vulnerabilities.insecure_renegotiation, expect, "{extra:?}: {r:#?}");
        let ev = evidence(&r, "insecure_renegotiation");
        assert!(ev.contains(says), "{extra:?}: {ev}");
        assert!(ev.contains("the server supports RFC 5746"), "{extra:?}: {ev}");
        assert!(took < Duration::from_secs(3), "{extra:?}: {took:?}");
    }
}

#[tokio::test]
async fn rustls_refuses_renegotiation() {
    let chain = rsa_chain("vulns reneg rustls");
    let (config, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS12]).unwrap();
    let listener = testbed::bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = AbortOnDrop(testbed::serve_tls(listener, config));
    let (r, _) = run(addr, &tls12(&[0xc030, 0xcca8]), &only("insecure_renegotiation")).await;
    assert_eq!(r.vulnerabilities.insecure_renegotiation, Some(false), "{r:#?}");
    // rustls neither answers nor alerts: no ServerHello comes.
    assert!(
        evidence(&r, "insecure_renegotiation").contains("no ServerHello within 1500 ms"),
        "{r:#?}"
    );
}

/// Servers that answer garbage, stall or reset never make a verdict up.
#[tokio::test]
async fn hostile_servers_leave_every_check_untested_in_bounded_time() {
    let e = tls12(&[0x002f, 0xc02f]);
    let garbage = testbed::bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    let _g = AbortOnDrop(testbed::serve_bytes(garbage, b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()));
    let stall = testbed::bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let stall_addr = stall.local_addr().unwrap();
    let _s = AbortOnDrop(testbed::serve_stall(stall));
    let cfg = VulnConfig {
        deadline: Duration::from_secs(1),
        ..quick()
    };
    for addr in [garbage_addr, stall_addr] {
        let (r, took) = run(addr, &e, &cfg).await;
        let v = r.vulnerabilities;
        assert_eq!(
            (
                v.heartbleed,
                v.ccs_injection,
                v.robot,
                v.ticketbleed,
                v.insecure_renegotiation
            ),
            (None, None, None, None, None),
            "{r:#?}"
        );
        assert!(took < Duration::from_secs(8), "{took:?}");
    }
}

#[tokio::test]
async fn disabled_checks_say_so() {
    let cfg = VulnConfig {
        heartbleed: false,
        ccs_injection: false,
        robot: false,
        ticketbleed: false,
        insecure_renegotiation: false,
        ..quick()
    };
    let r = vulns::check("127.0.0.1:9".parse().unwrap(), None, &tls12(&[0x002f]), &cfg).await;
    assert_eq!(r.connections, 0);
    assert_eq!(evidence(&r, "robot"), "not tested: disabled in the configuration");
    assert_eq!(r.evidence.len(), 5);
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
