//! `sensor run` end to end with the real binary: two profiles against real
//! loopback servers, the inventory's categories, a certificate replaced
//! between runs (`changed`), a server stopped (`gone`), SIGHUP with a broken
//! profile (old kept), SIGTERM (drained, exit 0), `sensor profiles check`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netsensor::testbed::{self, KeyKind};
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket};

fn sensor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sensor"))
}

/// A listener on a fixed port that can be re-bound after the old one is gone.
fn bind_reusable(addr: SocketAddr) -> TcpListener {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind(addr).unwrap();
    s.listen(64).unwrap()
}

async fn tls_server(addr: SocketAddr, tag: &str) -> tokio::task::JoinHandle<()> {
    let chain = testbed::issue_chain(tag, &["appliance.test"], KeyKind::EcdsaP256).unwrap();
    let (cfg, _) = testbed::rustls_config(chain.presented(), &chain.leaf_key, &[&rustls::version::TLS13]).unwrap();
    testbed::serve_tls(bind_reusable(addr), cfg)
}

fn inventory(state: &Path) -> Vec<Value> {
    let out = sensor()
        .args(["inventory", "-o", "json", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    if !out.status.success() {
        return Vec::new();
    }
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap_or_default()
}

/// Wait (bounded) until `cond` holds.
async fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_appliance_runs_profiles_keeps_the_inventory_and_obeys_signals() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log_path = dir.path().join("sensor.log");
    let lo = "127.0.0.1";
    let (tls1, tls2, http) = (free_port(), free_port(), free_port());
    let tls1_addr: SocketAddr = format!("{lo}:{tls1}").parse().unwrap();
    let mut server1 = tls_server(tls1_addr, "appliance one").await;
    let _server2 = tls_server(format!("{lo}:{tls2}").parse().unwrap(), "appliance two").await;
    let http_server = testbed::serve_http(bind_reusable(format!("{lo}:{http}").parse().unwrap()));

    let a = dir.path().join("a.toml");
    let b = dir.path().join("b.toml");
    let profile_a = format!(
        "name = \"a\"\ntargets = [\"127.0.0.1\"]\nports = \"{tls1},{http}\"\nanalyses = [\"certificates\"]\n\n[schedule]\nevery = \"2s\"\n"
    );
    std::fs::write(&a, &profile_a).unwrap();
    std::fs::write(
        &b,
        format!("name = \"b\"\ntargets = [\"127.0.0.1\"]\nports = \"{tls2}\"\nanalyses = [\"certificates\"]\n"),
    )
    .unwrap();

    let check = sensor().args(["profiles", "check"]).arg(&a).arg(&b).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("profile `a`"));

    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = sensor()
        .args(["run", "--gone-after", "1", "--grace", "10", "--state-dir"])
        .arg(&state)
        .arg("--profile")
        .arg(&a)
        .arg("--profile")
        .arg(&b)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // Both profiles ran: two TLS endpoints discovered, the HTTP port unsecured.
    eventually("the first runs in the inventory", 30, || inventory(&state).len() == 3).await;
    let inv = inventory(&state);
    let cat = |port: u16| {
        inv.iter()
            .find(|e| e["key"]["port"] == port)
            .map(|e| e["category"].clone())
    };
    assert_eq!(cat(tls1), Some(Value::from("discovered")));
    assert_eq!(cat(tls2), Some(Value::from("discovered")));
    assert_eq!(cat(http), Some(Value::from("unsecured")));
    assert!(read_log().contains("profile `a`"), "startup line: {}", read_log());

    // A new certificate on tls1: the next run of `a` says changed.
    server1.abort();
    let _ = (&mut server1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _server1b = tls_server(tls1_addr, "appliance one renewed").await;
    eventually("a changed event", 30, || {
        read_log().contains(&format!("changed 127.0.0.1:{tls1}"))
    })
    .await;
    assert!(read_log().contains("certificate replaced"));

    // The HTTP server goes away: gone after one complete run without it.
    http_server.abort();
    eventually("a gone event", 30, || {
        read_log().contains(&format!("gone 127.0.0.1:{http}"))
    })
    .await;

    // SIGHUP with a broken profile keeps the old ones and says why.
    std::fs::write(&a, format!("{profile_a}bogus = 1\n")).unwrap();
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    eventually("the reload refusal", 10, || {
        read_log().contains("profiles not reloaded")
    })
    .await;
    assert!(read_log().contains("unknown field `bogus`"));
    assert!(child.try_wait().unwrap().is_none(), "the daemon must keep running");

    // SIGTERM: drains and exits 0.
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the daemon did not stop within 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}: {}", read_log());
    // The inventory survives the process.
    assert_eq!(inventory(&state).len(), 3);
}

#[test]
fn a_broken_profile_refuses_to_start_and_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"bad\"\ntargets = [\"127.0.0.1\"]\nports = \"443\"\nrte = 5\n",
    )
    .unwrap();
    let out = sensor()
        .args(["run", "--state-dir"])
        .arg(dir.path().join("s"))
        .arg("--profile")
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:4") && err.contains("unknown field `rte`"),
        "{err}"
    );
    let out = sensor().args(["profiles", "check"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
