//! Host discovery before the port list (issue 18), with real listeners:
//! on loopback (every 127.x address is alive: the kernel answers with
//! RSTs), and in a network namespace this test builds with dark space (the
//! only way to have a dead host here). Asserted: records on live hosts are
//! identical with and without host discovery; dead hosts get no port probe
//! (the engine's own count, and nftables counters in the namespace); a
//! host that filters the liveness probes is missed, as documented, and
//! `-Pn` (`HostDiscovery::Off`) finds it; a host that filters only the TCP
//! ones is found by its ICMP echo reply (SYN engine). The namespace test needs root
//! and `ip`; without them it prints `SKIP: …` and returns.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use netsensor::discover::connect::Progress;
use netsensor::discover::hosts::HostDiscovery;
use netsensor::discover::syn::{self, ScanType};
use netsensor::discover::targets::{PortSet, ScanPlan, TargetSet, TargetSpec};
use netsensor::model::record::EndpointRecord;
use netsensor::scan::{self, ScanOptions};

use crate::support::quick;

/// A record as compared here: address, port, category.
type Found = (IpAddr, u16, String);

fn discovery_only(engine: ScanType, hosts: HostDiscovery) -> ScanOptions {
    let mut o = quick();
    o.enumerate = false;
    o.grade = false;
    o.certificates = false;
    o.scan_type = engine;
    o.host_discovery = hosts;
    o.portscan.connect_timeout = Duration::from_millis(300);
    o
}

/// Scan and return (address, port, category) of every record, and the progress counters.
async fn run(target: &str, ports: &str, opts: ScanOptions) -> (BTreeSet<Found>, Arc<Progress>) {
    let specs: Vec<TargetSpec> = vec![target.parse().unwrap()];
    let set = TargetSet::new(&specs, &[], scan::resolve).unwrap();
    let plan = ScanPlan::new(set, ports.parse::<PortSet>().unwrap(), 11).unwrap();
    let progress = Arc::new(Progress::default());
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let job = tokio::spawn(scan::run(Arc::new(plan), 0, opts, progress.clone(), tx));
    let mut out: Vec<EndpointRecord> = Vec::new();
    let collect = async {
        while let Some(r) = rx.recv().await {
            out.push(r);
        }
    };
    tokio::time::timeout(Duration::from_secs(120), collect)
        .await
        .expect("the scan finishes within 2 minutes");
    job.await.unwrap().unwrap();
    (
        out.iter()
            .map(|r| (r.address, r.port, format!("{:?}", r.category)))
            .collect(),
        progress,
    )
}

fn engines() -> Vec<ScanType> {
    let mut v = vec![ScanType::Connect];
    match syn::raw_sockets_available() {
        Ok(()) => v.push(ScanType::Syn),
        Err(e) => println!("SKIP (SYN half only): no raw sockets: {e}"),
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn on_loopback_every_address_is_up_and_results_are_unchanged() {
    // 512 addresses (more than 256: the rule turns host discovery on) x 6
    // ports (more than the liveness probes).
    let a = tokio::net::TcpListener::bind("127.0.2.7:0").await.unwrap();
    let port_a = a.local_addr().unwrap().port();
    let b = tokio::net::TcpListener::bind(("127.0.3.9", port_a)).await.unwrap();
    let _servers = [testbed::serve_http(a), testbed::serve_http(b)];
    let closed: Vec<u16> = (0..5)
        .map(|_| {
            std::net::TcpListener::bind("127.0.2.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let ports = std::iter::once(port_a)
        .chain(closed)
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for engine in engines() {
        let (with, p) = run("127.0.2.0/23", &ports, discovery_only(engine, HostDiscovery::Auto)).await;
        let (without, q) = run("127.0.2.0/23", &ports, discovery_only(engine, HostDiscovery::Off)).await;
        assert_eq!(with, without, "{engine}: host discovery changed what was found");
        let found: BTreeSet<(IpAddr, u16)> = with.iter().map(|r| (r.0, r.1)).collect();
        assert!(
            found.contains(&("127.0.2.7".parse().unwrap(), port_a)),
            "{engine}: {with:?}"
        );
        assert!(
            found.contains(&("127.0.3.9".parse().unwrap(), port_a)),
            "{engine}: {with:?}"
        );
        assert_eq!(
            p.hosts_up.load(Ordering::Relaxed),
            512,
            "{engine}: loopback answers everywhere"
        );
        assert_eq!(p.hosts_down.load(Ordering::Relaxed), 0, "{engine}");
        assert_eq!(q.hosts_up.load(Ordering::Relaxed), 0, "{engine}: -Pn asks nothing");
        assert_eq!(
            p.probed.load(Ordering::Relaxed),
            q.probed.load(Ordering::Relaxed),
            "{engine}: every port of every live host probed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_target_list_is_probed_directly() {
    let l = tokio::net::TcpListener::bind("127.0.2.7:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let _s = testbed::serve_http(l);
    let ports = format!("{port},1,3,5,7,9");
    let (found, p) = run(
        "127.0.2.0/24",
        &ports,
        discovery_only(ScanType::Connect, HostDiscovery::Auto),
    )
    .await;
    assert!(found.iter().any(|r| r.1 == port));
    assert_eq!(
        p.hosts_up.load(Ordering::Relaxed) + p.hosts_down.load(Ordering::Relaxed),
        0,
        "256 addresses: no host discovery by default"
    );
    let (_, p) = run(
        "127.0.2.0/24",
        &ports,
        discovery_only(ScanType::Connect, HostDiscovery::On),
    )
    .await;
    assert_eq!(
        p.hosts_up.load(Ordering::Relaxed),
        256,
        "host_discovery = true forces it"
    );
}

/// A network namespace reached through a veth pair, with a routed /23 of
/// which the first /27 is local inside it (alive) and the rest dark
/// (dropped: the namespace does not forward). Removed on drop.
struct DarkNet {
    ns: String,
    host_if: String,
    routed: String,
    prefix: String,
    listeners: Option<Child>,
}

impl Drop for DarkNet {
    fn drop(&mut self) {
        if let Some(mut c) = self.listeners.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = ip(&["route", "del", &self.routed]);
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl DarkNet {
    fn exec(&self, cmd: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(cmd)
            .output()
            .map_err(|e| format!("{}: {e}", cmd[0]))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}: {}",
                cmd.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn build() -> Result<DarkNet, String> {
        let pid = std::process::id();
        let k = pid % 120;
        let net = DarkNet {
            ns: format!("nshd{pid}"),
            host_if: format!("vhd{}", pid % 100_000),
            routed: format!("10.254.{}.0/23", 2 * k),
            prefix: format!("10.254.{}", 2 * k),
            listeners: None,
        };
        let ns_if = format!("vnd{}", pid % 100_000);
        let (host_ip, ns_ip) = (format!("10.253.{k}.1"), format!("10.253.{k}.2"));
        ip(&["netns", "add", &net.ns])?;
        ip(&["link", "add", &net.host_if, "type", "veth", "peer", "name", &ns_if])?;
        ip(&["link", "set", &ns_if, "netns", &net.ns])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &net.host_if])?;
        ip(&["link", "set", &net.host_if, "up"])?;
        net.exec(&["ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if])?;
        net.exec(&["ip", "link", "set", &ns_if, "up"])?;
        net.exec(&["ip", "link", "set", "lo", "up"])?;
        net.exec(&[
            "ip",
            "route",
            "add",
            "local",
            &format!("{}.0/27", net.prefix),
            "dev",
            "lo",
        ])?;
        net.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=0"])?;
        ip(&["route", "add", &net.routed, "via", &ns_ip, "dev", &net.host_if])?;
        // Never scan unless the range goes into our namespace.
        for probe in [format!("{}.1", net.prefix), format!("{}.254", next_octet(&net.prefix))] {
            let out = Command::new("ip")
                .args(["route", "get", &probe])
                .output()
                .map_err(|e| e.to_string())?;
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains(&format!("dev {}", net.host_if)) {
                return Err(format!("{probe} is not routed into the test namespace: {text}"));
            }
        }
        Ok(net)
    }

    /// Listeners inside the namespace (a banner, then close).
    fn listen(&mut self, pairs: &[(&str, u16)]) -> Result<(), String> {
        const LISTENER: &str = r#"
import socket, sys, threading
socks = []
for spec in sys.argv[1:]:
    a, p = spec.rsplit(":", 1)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, int(p))); s.listen(128); socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        try: c.sendall(b"SSH-2.0-hosts-test\r\n")
        except OSError: pass
        c.close()
for s in socks: threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"#;
        let specs: Vec<String> = pairs.iter().map(|(a, p)| format!("{a}:{p}")).collect();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c", LISTENER])
            .args(&specs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let mut line = String::new();
        use std::io::BufRead;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        self.listeners = Some(child);
        if line.trim() != "ready" {
            return Err(format!("listeners did not start: {line:?}"));
        }
        Ok(())
    }
}

/// nftables in the namespace: count SYNs to dark addresses on ports that
/// are not liveness ports, drop the liveness probes (TCP and ICMP echo) to
/// `hidden` and only the TCP ones to `pinged` (it still answers echo).
/// `None` (with the reason printed) without nft.
fn firewall(net: &DarkNet, hidden: &str, pinged: &str) -> Option<()> {
    let p = &net.prefix;
    let rules = format!(
        "table inet hd {{
  chain pre {{
    type filter hook prerouting priority -300; policy accept;
    ip daddr {p}.32-{p2}.255 tcp flags & (syn | ack) == syn tcp dport != {{ 443, 80, 22, 3389 }} counter name dark_ports
    ip daddr {hidden} tcp dport {{ 443, 80, 22, 3389 }} drop
    ip daddr {hidden} icmp type echo-request drop
    ip daddr {pinged} tcp dport {{ 443, 80, 22, 3389 }} drop
  }}
  counter dark_ports {{ }}
}}",
        p2 = next_octet(p),
    );
    let file = std::env::temp_dir().join(format!("hd-nft-{}.conf", std::process::id()));
    std::fs::write(&file, rules).ok()?;
    let path = file.display().to_string();
    let r = net.exec(&["nft", "-f", &path]);
    let _ = std::fs::remove_file(&file);
    match r {
        Ok(_) => Some(()),
        Err(e) => {
            println!("SKIP (packet counts): nftables: {e}");
            None
        }
    }
}

/// `10.254.K` -> `10.254.K+1` (the second /24 of the /23).
fn next_octet(prefix: &str) -> String {
    let (head, last) = prefix.rsplit_once('.').unwrap();
    format!("{head}.{}", last.parse::<u32>().unwrap() + 1)
}

fn dark_port_syns(net: &DarkNet) -> u64 {
    let out = net
        .exec(&["nft", "list", "counter", "inet", "hd", "dark_ports"])
        .unwrap();
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {out}"))
}

fn reset_counter(net: &DarkNet) {
    net.exec(&["nft", "reset", "counter", "inet", "hd", "dark_ports"])
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_hosts_in_a_namespace_get_no_port_probes() {
    let mut net = match DarkNet::build() {
        Ok(n) => n,
        Err(e) => {
            println!("SKIP: the host discovery namespace test needs root and `ip` ({e})");
            return;
        }
    };
    let p = net.prefix.clone();
    let (a, b, hidden, pinged) = (format!("{p}.3"), format!("{p}.17"), format!("{p}.5"), format!("{p}.9"));
    net.listen(&[(&a, 8443), (&b, 443), (&hidden, 8443), (&pinged, 8443)])
        .unwrap();
    let counting = firewall(&net, &hidden, &pinged).is_some();
    let ports = "443,8443,25,110,143,993";
    let target = net.routed.clone();
    for engine in engines() {
        if counting {
            reset_counter(&net);
        }
        let (with, pw) = run(&target, ports, discovery_only(engine, HostDiscovery::Auto)).await;
        let dark_with = if counting { dark_port_syns(&net) } else { 0 };
        if counting {
            reset_counter(&net);
        }
        let (without, pn) = run(&target, ports, discovery_only(engine, HostDiscovery::Off)).await;
        let dark_without = if counting { dark_port_syns(&net) } else { 0 };

        let open =
            |s: &BTreeSet<Found>| -> BTreeSet<(String, u16)> { s.iter().map(|r| (r.0.to_string(), r.1)).collect() };
        let mut want_live: BTreeSet<(String, u16)> = [(a.clone(), 8443), (b.clone(), 443)].into();
        // The host that drops only the TCP liveness probes is found up by
        // its echo reply (raw sockets); the connect engine sends no echo.
        let echo_only_up = !counting || engine == ScanType::Syn;
        if echo_only_up {
            want_live.insert((pinged.clone(), 8443));
        }
        assert_eq!(open(&with), want_live, "{engine}: live hosts' open ports");
        // -Pn finds the same plus the hosts whose liveness probes were
        // dropped (the documented miss of host discovery).
        let mut want_all = want_live.clone();
        want_all.insert((hidden.clone(), 8443));
        want_all.insert((pinged.clone(), 8443));
        if counting {
            assert_eq!(open(&without), want_all, "{engine}: -Pn probes every address");
        }
        let missed = |ip: &IpAddr| ip.to_string() == hidden || (!echo_only_up && ip.to_string() == pinged);
        let live_only: BTreeSet<_> = without.iter().filter(|r| !missed(&r.0)).cloned().collect();
        assert_eq!(
            with, live_only,
            "{engine}: records on live hosts identical with and without -Pn"
        );

        // 32 addresses are local in the namespace (one or two hide when the firewall is there).
        let up = pw.hosts_up.load(Ordering::Relaxed);
        let hiding = if !counting {
            0
        } else if echo_only_up {
            1
        } else {
            2
        };
        assert_eq!(up, 32 - hiding, "{engine}");
        assert_eq!(pw.hosts_down.load(Ordering::Relaxed), 512 - up, "{engine}");
        // The engine's own count: ports probed on live hosts only.
        assert_eq!(
            pw.probed.load(Ordering::Relaxed),
            up * 6,
            "{engine}: probes with host discovery"
        );
        assert_eq!(pn.probed.load(Ordering::Relaxed), 512 * 6, "{engine}: probes with -Pn");
        if counting {
            assert_eq!(dark_with, 0, "{engine}: a port probe reached a dead host");
            // The counter works: -Pn sends (at least) 480 dark addresses x 4 non-liveness ports.
            assert!(
                dark_without >= 480 * 4,
                "{engine}: {dark_without} SYNs counted with -Pn"
            );
        }
    }
}
