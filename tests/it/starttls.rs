//! STARTTLS end to end: for every protocol, the same rustls configuration is
//! served behind the protocol's upgrade and as implicit TLS; the scan must
//! find the upgrade, read the chain and enumerate exactly what it enumerates
//! over implicit TLS. The same service without the upgrade is an unsecured
//! endpoint named for its protocol. SMTP 421 throttling is respected.

#[path = "starttls_servers.rs"]
mod servers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netsensor::model::record::{Category, EndpointRecord, Transport};
use netsensor::probe::starttls::dialogue::{Starttls, StarttlsMode};
use netsensor::scan::ScanOptions;
use rustls::ServerConfig;
use testbed::{self, KeyKind};
use tokio::net::TcpListener;

use crate::support::{find, quick, scan};
use servers::{Script, Step};

fn options(mode: StarttlsMode) -> ScanOptions {
    let mut o = quick();
    o.starttls = mode;
    o.vulnerabilities = false;
    o.http_headers = false;
    o
}

async fn listen() -> (TcpListener, SocketAddr) {
    let l = testbed::bind_loopback("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn config(tag: &str) -> (Arc<ServerConfig>, Vec<Vec<u8>>) {
    let chain = testbed::issue_chain(tag, &["mx.test"], KeyKind::EcdsaP256).unwrap();
    let (cfg, _) = testbed::rustls_config(
        chain.presented(),
        &chain.leaf_key,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    )
    .unwrap();
    (cfg, chain.presented())
}

/// What the enumeration found, in a form two records can be compared by.
fn enumeration_of(r: &EndpointRecord) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}",
        r.protocols, r.protocol_ciphers, r.key_exchange, r.features
    )
}

/// Serve `steps` with and without TLS and as implicit TLS; scan all three.
async fn check(proto: Starttls, steps: fn(bool) -> Vec<Step>, mode: StarttlsMode) {
    let (cfg, presented) = config(&format!("it starttls {proto}"));
    let (ls, up) = listen().await;
    let (lp, plain) = listen().await;
    let (li, implicit) = listen().await;
    let script = |offer| Script {
        steps: steps(offer),
        tls: offer.then(|| cfg.clone()),
        throttle_from: None,
        hang_up_first: 0,
    };
    let (s1, _) = servers::serve(ls, script(true));
    let (s2, _) = servers::serve(lp, script(false));
    let s3 = testbed::serve_tls(li, cfg.clone());
    let _guard = Abort(vec![s1, s2, s3]);

    let ports = format!("{},{}", up.port(), plain.port());
    let implicit_port = implicit.port().to_string();
    let (records, implicit_records) = tokio::join!(
        scan(&["127.0.0.1"], &[], &ports, options(mode)),
        scan(&["127.0.0.1"], &[], &implicit_port, options(StarttlsMode::Off)),
    );

    let r = find(&records, up);
    assert_eq!(r.category, Category::Discovered, "{proto}: {r:#?}");
    assert_eq!(r.transport, proto.transport(), "{proto}");
    assert_eq!(r.service.as_deref(), Some(proto.service()));
    let json = serde_json::to_value(r).unwrap();
    assert_eq!(json["transport"], format!("starttls-{}", proto.name()));
    let h = r.handshake.as_ref().unwrap();
    assert!(h.error.is_none(), "{proto}: {h:?}");
    let thumbs: Vec<_> = r.chain.iter().map(|c| c.thumbprint.clone()).collect();
    let want: Vec<_> = presented
        .iter()
        .map(|d| netsensor::model::cert::thumbprint(d))
        .collect();
    assert_eq!(thumbs, want, "{proto}: the chain read through the upgrade");
    assert!(r.grade.is_some(), "{proto}: graded");

    let i = find(&implicit_records, implicit);
    assert_eq!(i.transport, Transport::Tls);
    assert!(r.protocols.is_some(), "{proto}: enumerated");
    assert_eq!(
        enumeration_of(r),
        enumeration_of(i),
        "{proto}: the enumeration through STARTTLS equals the implicit-TLS one"
    );
    assert!(r.enumeration_errors.is_empty(), "{proto}: {:?}", r.enumeration_errors);

    let p = find(&records, plain);
    assert_eq!(p.category, Category::Unsecured, "{proto}: {p:#?}");
    assert_eq!(p.transport, Transport::Plain, "{proto}");
    assert_eq!(p.service.as_deref(), Some(proto.service()), "{proto}");
    assert!(p.chain.is_empty());
}

struct Abort(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Abort {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

// Server-speaks-first protocols are found by their banner on any port.
#[tokio::test]
async fn smtp_upgrades_by_banner() {
    check(Starttls::Smtp, servers::smtp, StarttlsMode::Auto).await;
}

#[tokio::test]
async fn imap_upgrades_by_banner() {
    check(Starttls::Imap, servers::imap, StarttlsMode::Auto).await;
}

#[tokio::test]
async fn pop3_upgrades_by_banner() {
    check(Starttls::Pop3, servers::pop3, StarttlsMode::Auto).await;
}

#[tokio::test]
async fn ftp_upgrades_by_banner() {
    check(Starttls::Ftp, servers::ftp, StarttlsMode::Auto).await;
}

#[tokio::test]
async fn mysql_upgrades_by_greeting() {
    check(Starttls::Mysql, servers::mysql, StarttlsMode::Auto).await;
}

// Client-speaks-first protocols are chosen by port (not bindable here) or `--starttls PROTO`.
#[tokio::test]
async fn ldap_upgrades() {
    check(Starttls::Ldap, servers::ldap, StarttlsMode::Only(Starttls::Ldap)).await;
}

#[tokio::test]
async fn postgres_upgrades() {
    check(
        Starttls::Postgres,
        servers::postgres,
        StarttlsMode::Only(Starttls::Postgres),
    )
    .await;
}

#[tokio::test]
async fn xmpp_upgrades() {
    check(
        Starttls::XmppClient,
        servers::xmpp,
        StarttlsMode::Only(Starttls::XmppClient),
    )
    .await;
}

#[tokio::test]
async fn xmpp_server_to_server_upgrades() {
    check(
        Starttls::XmppServer,
        servers::xmpp_server,
        StarttlsMode::Only(Starttls::XmppServer),
    )
    .await;
}

#[tokio::test]
async fn rdp_upgrades() {
    check(Starttls::Rdp, servers::rdp, StarttlsMode::Only(Starttls::Rdp)).await;
}

#[tokio::test]
async fn smtp_banner_names_the_product() {
    let (l, a) = listen().await;
    let (s, _) = servers::serve(
        l,
        Script {
            steps: servers::smtp(false),
            tls: None,
            throttle_from: None,
            hang_up_first: 0,
        },
    );
    let _g = Abort(vec![s]);
    let records = scan(&["127.0.0.1"], &[], &a.port().to_string(), options(StarttlsMode::Auto)).await;
    let p = find(&records, a).plain.clone().unwrap();
    assert_eq!(p.name, "smtp");
    assert_eq!(p.product.as_deref(), Some("Postfix"));
}

#[tokio::test]
async fn a_server_that_hangs_up_on_tls_and_then_greets_in_smtp_is_upgraded() {
    let (cfg, presented) = config("it starttls hang-up");
    let (l, a) = listen().await;
    let (s, _) = servers::serve(
        l,
        Script {
            steps: servers::smtp(true),
            tls: Some(cfg),
            throttle_from: None,
            hang_up_first: 1,
        },
    );
    let _g = Abort(vec![s]);
    let records = scan(&["127.0.0.1"], &[], &a.port().to_string(), options(StarttlsMode::Auto)).await;
    let r = find(&records, a);
    assert_eq!(r.transport, Transport::StarttlsSmtp, "{r:#?}");
    assert_eq!(r.chain.len(), presented.len());
}

#[tokio::test]
async fn smtp_421_throttling_stops_the_enumeration() {
    let (cfg, _) = config("it starttls 421");
    let (l, a) = listen().await;
    // The first three connections are served; every later one gets 421.
    let (s, counter) = servers::serve(
        l,
        Script {
            steps: servers::smtp(true),
            tls: Some(cfg),
            throttle_from: Some(3),
            hang_up_first: 0,
        },
    );
    let _g = Abort(vec![s]);
    let started = Instant::now();
    let records = scan(&["127.0.0.1"], &[], &a.port().to_string(), options(StarttlsMode::Auto)).await;
    let took = started.elapsed();
    let r = find(&records, a);
    assert_eq!(r.transport, Transport::StarttlsSmtp, "{r:#?}");
    assert!(!r.chain.is_empty(), "the chain from the first upgrade");
    assert!(
        r.enumeration_errors
            .iter()
            .any(|e| e.contains("421") && e.contains("throttled")),
        "{:?}",
        r.enumeration_errors
    );
    // Backed off and stopped: a handful of connections, not hundreds.
    let per_host = quick().per_host;
    assert!(counter.get() <= 3 + per_host + 4, "{} connections", counter.get());
    assert!(took < Duration::from_secs(20), "took {took:?}");

    // A server that throttles from the first connection is unsecured for now, with the reason.
    let (l, a) = listen().await;
    let (s, _) = servers::serve(
        l,
        Script {
            steps: servers::smtp(true),
            tls: None,
            throttle_from: Some(0),
            hang_up_first: 0,
        },
    );
    let _g2 = Abort(vec![s]);
    let records = scan(
        &["127.0.0.1"],
        &[],
        &a.port().to_string(),
        options(StarttlsMode::Only(Starttls::Smtp)),
    )
    .await;
    let r = find(&records, a);
    assert_eq!(r.service.as_deref(), Some("smtp"));
    let err = r.handshake.as_ref().unwrap().error.clone().unwrap();
    assert!(err.contains("421") && err.contains("throttling"), "{err}");
}

/// A real PostgreSQL (Debian's, started from a fresh `initdb` in a scratch
/// directory, listening on 127.0.0.1 only), with `ssl = on` and with `ssl = off`.
#[tokio::test]
async fn real_postgresql_upgrades_and_without_ssl_is_unsecured() {
    let Some(bin) = postgres_bin() else {
        eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let chain = testbed::issue_chain("it postgres", &["db.test"], KeyKind::EcdsaP256).unwrap();
    let (mut with_tls, a) = postgres(&bin, Some(&chain)).await;
    let (mut without, b) = postgres(&bin, None).await;
    crate::support::wait_listening(a, &mut with_tls.0).await;
    crate::support::wait_listening(b, &mut without.0).await;

    let ports = format!("{},{}", a.port(), b.port());
    let records = scan(
        &["127.0.0.1"],
        &[],
        &ports,
        options(StarttlsMode::Only(Starttls::Postgres)),
    )
    .await;
    let r = find(&records, a);
    assert_eq!(r.transport, Transport::StarttlsPostgres, "{r:#?}");
    assert_eq!(r.service.as_deref(), Some("postgresql"));
    let thumbs: Vec<_> = r.chain.iter().map(|c| c.thumbprint.clone()).collect();
    let want: Vec<_> = chain
        .presented()
        .iter()
        .map(|d| netsensor::model::cert::thumbprint(d))
        .collect();
    assert_eq!(thumbs, want);
    let protocols = r.protocols.as_ref().expect("enumerated");
    assert_eq!(protocols.get("TLSv1.2"), Some(&true), "{protocols:?}");
    assert_eq!(protocols.get("TLSv1.0"), Some(&false), "{protocols:?}");
    assert!(!r.protocol_ciphers.is_empty());
    assert!(r.enumeration_errors.is_empty(), "{:?}", r.enumeration_errors);

    let p = find(&records, b);
    assert_eq!(p.category, Category::Unsecured, "{p:#?}");
    assert_eq!(p.transport, Transport::Plain);
    assert_eq!(p.service.as_deref(), Some("postgresql"));
}

fn postgres_bin() -> Option<std::path::PathBuf> {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists() && p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// As root the server must run as `postgres` (it refuses root); `setpriv`
/// execs in place, so the process we stop is the server itself.
fn as_server_user(program: &std::path::Path) -> std::process::Command {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"])
            .arg(program);
        c
    } else {
        std::process::Command::new(program)
    }
}

/// A scratch cluster serving 127.0.0.1 on a free port; TLS with `chain` when given.
async fn postgres(
    bin: &std::path::Path,
    chain: Option<&testbed::Chain>,
) -> ((crate::support::Proc, tempfile::TempDir), SocketAddr) {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let owner = std::fs::metadata("/var/lib/postgresql")
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    let chown = |p: &std::path::Path| {
        if let Some(uid) = owner {
            let gid = std::fs::metadata("/var/lib/postgresql")
                .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
                .ok();
            let _ = std::os::unix::fs::chown(p, Some(uid), gid);
        }
    };
    chown(root);
    let data = root.join("data");
    let status = as_server_user(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "--no-sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run initdb");
    assert!(status.success(), "initdb failed");
    let port = crate::support::free_port("127.0.0.1".parse().unwrap());
    let mut cmd = as_server_user(&bin.join("postgres"));
    cmd.arg("-D")
        .arg(&data)
        .args(["-c", "listen_addresses=127.0.0.1", "-c", &format!("port={port}")])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", root.display()))
        .args(["-c", "fsync=off"]);
    if let Some(chain) = chain {
        let cert = crate::support::write(root, "server.crt", &chain.chain_pem());
        let key = crate::support::write(root, "server.key", &chain.leaf_key_pem);
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        chown(&cert);
        chown(&key);
        cmd.args(["-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()));
    } else {
        cmd.args(["-c", "ssl=off"]);
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start postgres");
    let proc_ = crate::support::Proc {
        child,
        name: "postgres",
    };
    ((proc_, dir), SocketAddr::new("127.0.0.1".parse().unwrap(), port))
}

/// Issue 17, defect 5: on a port chosen by its banner (`--starttls auto`),
/// an SMTP server answering EHLO with `421` is throttling, as `--starttls
/// smtp` says, not "no upgrade offered"; a dialogue that goes wrong keeps
/// the plaintext record and says why in `enumeration_errors`.
#[tokio::test]
async fn auto_mode_reports_smtp_throttling_and_malformed_dialogues() {
    let greeting = servers::Step::Send(b"220 mx.test ESMTP Postfix (Debian/GNU)\r\n".to_vec());
    let throttling = vec![
        greeting.clone(),
        Step::Line,
        Step::Send(b"421 4.7.0 mx.test Too many connections, try again later\r\n".to_vec()),
    ];
    let malformed = vec![greeting, Step::Line, Step::Send(b"hello there\r\n".to_vec())];
    let (l1, throttled) = listen().await;
    let (l2, broken) = listen().await;
    let script = |steps| Script {
        steps,
        tls: None,
        throttle_from: None,
        hang_up_first: 0,
    };
    let (s1, _) = servers::serve(l1, script(throttling));
    let (s2, _) = servers::serve(l2, script(malformed));
    let _g = Abort(vec![s1, s2]);
    let ports = format!("{},{}", throttled.port(), broken.port());
    let records = scan(&["127.0.0.1"], &[], &ports, options(StarttlsMode::Auto)).await;

    let r = find(&records, throttled);
    assert_eq!(r.category, Category::Unsecured, "{r:#?}");
    assert_eq!(r.service.as_deref(), Some("smtp"), "{r:#?}");
    let err = r.handshake.as_ref().and_then(|h| h.error.clone()).unwrap_or_default();
    assert!(err.contains("421") && err.contains("throttling"), "{r:#?}");
    assert!(!err.contains("not offer"), "{err}");
    assert!(
        r.enumeration_errors
            .iter()
            .any(|e| e.contains("421") && e.contains("throttling")),
        "{:?}",
        r.enumeration_errors
    );

    let r = find(&records, broken);
    assert_eq!(r.category, Category::Unsecured, "{r:#?}");
    assert_eq!(r.transport, Transport::Plain, "{r:#?}");
    assert_eq!(r.service.as_deref(), Some("smtp"), "{r:#?}");
    assert!(
        r.enumeration_errors
            .iter()
            .any(|e| e.contains("STARTTLS") && e.contains("unexpected answer")),
        "{:?}",
        r.enumeration_errors
    );
}
