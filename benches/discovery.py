#!/usr/bin/env python3
"""Discovery benchmark (issue 9): `sensor scan` (SYN and connect) against nmap (-sS, -sT), masscan
and RustScan, on the same scenarios in the same run.

Scenarios:
  a) loopback: 127.0.0.1, all 65,535 ports (16 listeners started by this script)
  b) namespace: 10.251.0.0/20 (4,096 addresses, every one answers) x ports 443,8443
  c) namespace: 10.251.0.0/16 (65,536 addresses: the /20 above answers, the other 61,440 are
     dark, so every probe to them waits out its timeout) x ports 443,8443
  d) host discovery (issue 18), defaults only: the /16 of c) x the default 12-port list: sensor
     with default flags (host discovery on: more than 256 addresses, 12 ports > 5 liveness
     probes), sensor -Pn, nmap -sS -T5 -n (nmap's own host discovery) and nmap -sS -T5 -n -Pn

The namespace network is built here: a network namespace with a veth pair (host 10.250.0.1/30,
namespace 10.250.0.2/30), 10.251.0.0/16 routed into it, 10.251.0.0/20 made local inside it (so
every address there answers: SYN-ACK or RST), and 12 listeners on chosen (address, port) pairs.
Addresses outside the /20 have no host: the namespace does not forward, so probes to them are
dropped silently. Nothing leaves the machine: before any scan the script checks that the kernel
routes 10.251.0.0/16 into the namespace, and it removes the namespace, the veth pair and the
route on exit, even on failure or Ctrl-C.

For each tool it prints wall time, probes/s, CPU seconds (user+system of the tool and its
children), peak RSS, the open ports found and recall (listeners found / listeners present), then
each peer's wall time as a ratio to sensor's SYN and connect modes.

Usage (as root):
  python3 benches/discovery.py --install          # peers: apt nmap masscan; cargo install rustscan
  cargo build --release -p sensor
  python3 benches/discovery.py [--reps 3] [--rate 0] [--only a,b,c]

RustScan is installed into ~/.cache/bench-tools/rustscan (never into the repository).
"""
import argparse
import atexit
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time

NS = f"nsbench{os.getpid()}"
HOST_IF, NS_IF = f"vbh{os.getpid() % 100000}", f"vbn{os.getpid() % 100000}"
HOST_IP, NS_IP = "10.250.0.1", "10.250.0.2"
ROUTED, LIVE = "10.251.0.0/16", "10.251.0.0/20"
TOOLS_DIR = os.path.expanduser("~/.cache/bench-tools")
RUSTSCAN = os.path.join(TOOLS_DIR, "rustscan", "bin", "rustscan")


def sh(*cmd, check=True, ns=False, **kw):
    if ns:
        cmd = ("ip", "netns", "exec", NS) + cmd
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def install():
    subprocess.run(["apt-get", "install", "-y", "nmap", "masscan"], check=True)
    if not os.path.exists(RUSTSCAN):
        r = subprocess.run(["cargo", "install", "rustscan", "--locked", "--root", os.path.join(TOOLS_DIR, "rustscan")])
        if r.returncode != 0:
            print("RustScan could not be built: it will be reported as not run", file=sys.stderr)


# ---------------------------------------------------------------- the namespace network

_cleanups = []


def cleanup():
    while _cleanups:
        f = _cleanups.pop()
        try:
            f()
        except Exception as e:  # keep tearing down the rest
            print(f"cleanup: {e}", file=sys.stderr)


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def build_namespace():
    atexit.register(cleanup)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sh("ip", "netns", "add", NS)
    _cleanups.append(lambda: sh("ip", "netns", "del", NS, check=False))
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    _cleanups.append(lambda: sh("ip", "link", "del", HOST_IF, check=False))
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF, ns=True)
    sh("ip", "link", "set", NS_IF, "up", ns=True)
    sh("ip", "link", "set", "lo", "up", ns=True)
    # Every address of the /20 is local inside the namespace; the rest of the /16 is dark.
    sh("ip", "route", "add", "local", LIVE, "dev", "lo", ns=True)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=0", ns=True)
    sh("ip", "route", "add", ROUTED, "via", NS_IP, "dev", HOST_IF)
    _cleanups.append(lambda: sh("ip", "route", "del", ROUTED, check=False))
    # Listen backlogs large enough for a SYN flood from a scanner.
    sh("sysctl", "-qw", "net.core.somaxconn=4096", ns=True)
    sh("sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=65536", ns=True)
    check_routing()
    mac = sh("cat", f"/sys/class/net/{NS_IF}/address", ns=True).stdout.strip()
    host_mac = open(f"/sys/class/net/{HOST_IF}/address").read().strip()
    # Static neighbours both ways: masscan writes frames to --router-mac without ARP, so the
    # namespace would otherwise queue its first replies behind its own ARP request and drop
    # most of them when the queue overflows.
    sh("ip", "neigh", "replace", NS_IP, "lladdr", mac, "dev", HOST_IF, "nud", "permanent")
    sh("ip", "neigh", "replace", HOST_IP, "lladdr", host_mac, "dev", NS_IF, "nud", "permanent", ns=True)
    return mac


def check_routing():
    """Refuse to scan unless 10.251.0.0/16 goes into our namespace (never to the real network)."""
    for probe in ("10.251.0.1", "10.251.200.7", "10.251.255.254"):
        out = sh("ip", "route", "get", probe).stdout
        if f"dev {HOST_IF}" not in out or f"via {NS_IP}" not in out:
            sys.exit(f"refusing to scan: {probe} is not routed into the benchmark namespace: {out!r}")


LISTENER = r"""
import socket, sys, threading, time
socks = []
for spec in sys.argv[1:]:
    addr, port = spec.rsplit(":", 1)
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(4096)
    socks.append(s)
def serve(s):
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            return
        try:
            c.sendall(b"SSH-2.0-bench\r\n")
        except OSError:
            pass
        c.close()
for s in socks:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def start_listeners(pairs, ns):
    """Listeners that answer like a plaintext service (a banner, then close)."""
    cmd = [sys.executable, "-c", LISTENER] + [f"{a}:{p}" for a, p in pairs]
    if ns:
        cmd = ["ip", "netns", "exec", NS] + cmd
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if p.stdout.readline().strip() != "ready":
        sys.exit(f"listeners did not start: {cmd}")
    _cleanups.append(lambda: (p.kill(), p.wait()))
    return p


# ---------------------------------------------------------------- running and parsing tools


def run(cmd, timeout):
    """Run cmd (in its own process group, all of it killed at the timeout); return
    (wall s, cpu s, stdout, ok)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        err = f"did not finish within {timeout} s (killed)"
    wall = time.perf_counter() - t0
    for line in (err or "").splitlines():
        if "host discovery:" in line:  # sensor's `N up, M down` summary
            print(f"    {line.strip()}")
    ok = p.returncode == 0
    if not ok:
        print(f"    {cmd[0]} exited {p.returncode}: {err.strip()[-300:]}", file=sys.stderr)
    return wall, child_cpu(), out, ok


_prev_cpu = 0.0


def child_cpu():
    """CPU seconds (user + system) of the children waited for since the last call."""
    import resource
    global _prev_cpu
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = now.ru_utime + now.ru_stime
    delta, _prev_cpu = total - _prev_cpu, total
    return delta


def sensor_open(out):
    found = set()
    for line in out.splitlines()[1:]:
        f = line.split(",")
        if len(f) > 3 and f[3] in ("discovered", "unsecured"):
            found.add((f[0], int(f[1])))
    return found


def nmap_open(out):
    found = set()
    for line in out.splitlines():
        if not line.startswith("Host:") or "Ports:" not in line:
            continue
        addr = line.split()[1]
        for p in line.split("Ports:")[1].split("\t")[0].split(","):
            parts = p.strip().split("/")
            if len(parts) > 1 and parts[1] == "open":
                found.add((addr, int(parts[0])))
    return found


def masscan_open(out):
    found = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[0] == "open" and f[1] == "tcp":
            found.add((f[3], int(f[2])))
    return found


def rustscan_open(out):
    found = set()
    for line in out.splitlines():
        if "->" not in line:
            continue
        addr, ports = line.split("->", 1)
        for p in ports.strip().strip("[]").split(","):
            if p.strip().isdigit():
                found.add((addr.strip(), int(p)))
    return found


DEFAULT_PORTS = "25,110,143,389,443,465,587,636,993,995,3389,8443"


def host_discovery_tools(args, targets):
    """Scenario d: default flags only, with and without host discovery, beside nmap's."""
    sensor = [args.sensor, "scan", *targets, "-o", "csv", "--no-progress"]
    nmap = ["nmap", "-sS", "-T5", "-n", "-p", DEFAULT_PORTS, "-oG", "-", *targets]
    return [
        ("sensor", sensor, sensor_open),
        ("sensor-Pn", sensor + ["-Pn"], sensor_open),
        ("nmap-sS", nmap, nmap_open),
        ("nmap-sS-Pn", nmap[:4] + ["-Pn"] + nmap[4:], nmap_open),
    ]


def tools(args, targets, ports, scenario, router_mac):
    """(name, argv, parser) for every tool on one scenario."""
    if scenario == "d":
        return host_discovery_tools(args, targets)
    rate = str(args.rate)
    # One timeout for everyone that takes one: sensor's connect deadline (also its SYN wait for
    # late replies) and RustScan's; masscan's --wait counts whole seconds, so it gets 1 s;
    # nmap -T5 adapts its own. The handshake deadline is short too: the listeners answer at once,
    # and other loopback services of this host must not stall the run.
    wait_ms = 500
    portarg = ports
    on_lo = scenario == "a"
    t = []
    common = [args.sensor, "scan", *targets, "-p", ports, "--rate", rate, "--max-in-flight", "4096",
              "--connect-timeout", str(wait_ms), "-o", "csv", "--no-progress", "--timeout", str(wait_ms)]
    t.append(("sensor-syn", common + ["--scan-type", "syn"], sensor_open))
    if scenario == "c":
        # Default flags (auto: SYN as root; the 1.5 s ceiling; 2 ports, so no host discovery):
        # issue 18's target is ceiling + 0.5 s with full recall.
        t.append(("sensor-defaults", [args.sensor, "scan", *targets, "-p", ports, "-o", "csv", "--no-progress"],
                  sensor_open))
    t.append(("sensor-connect", common + ["--scan-type", "connect"], sensor_open))
    t.append(("nmap-sS", ["nmap", "-sS", "-T5", "-n", "-Pn", "-p", portarg, "-oG", "-", *targets], nmap_open))
    t.append(("nmap-sT", ["nmap", "-sT", "-T5", "-n", "-Pn", "-p", portarg, "-oG", "-", *targets], nmap_open))
    # masscan writes Ethernet frames through libpcap and cannot use loopback (it fails
    # resolving a router on lo), so it runs on the namespace scenarios only.
    # Its receive side loses SYN-ACKs at high rates here (every reply reaches the host
    # interface), so it runs at descending rates until one finds every listener.
    if not on_lo:
        for rate in args.masscan_rates.split(","):
            mass = ["masscan", *targets, "-p", portarg, "--rate", rate, "--wait", "1", "-oL", "-",
                    "--adapter", HOST_IF, "--adapter-ip", HOST_IP, "--router-mac", router_mac]
            t.append((f"masscan@{int(rate) // 1000}k", mass, masscan_open))
    if os.path.exists(RUSTSCAN):
        rs = [RUSTSCAN, "-a", ",".join(targets), "-b", "4096", "-t", str(wait_ms), "--tries", "1",
              "-u", "8192", "-g", "--no-banner", "-n"]
        rs += ["-r", "1-65535"] if ports == "1-65535" else ["-p", ports]
        t.append(("rustscan", rs, rustscan_open))
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--install", action="store_true", help="install the peers and exit")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--rate", type=int, default=0, help="sensor --rate (0: unlimited)")
    ap.add_argument("--masscan-rates", default="1000000,300000,100000,30000,10000",
                    help="masscan --rate values, tried fastest first until recall is full")
    ap.add_argument("--only", default="a,b,c,d")
    ap.add_argument("--tool-timeout", type=int, default=180, help="seconds before a tool run is killed")
    ap.add_argument("--tools", default="", help="comma list to run a subset (e.g. sensor-syn,masscan)")
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/netsensor-target"))
    # Default: the release build of this tree (set CARGO_TARGET_DIR as for the build).
    ap.add_argument("--sensor", default=os.path.join(target_dir, "release", "sensor"))
    args = ap.parse_args()
    if args.install:
        install()
        return
    if os.geteuid() != 0:
        sys.exit("run as root: namespaces, SYN scans and masscan need it")
    for tool in ("nmap", "masscan", "ip"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: python3 {sys.argv[0]} --install")
    if not os.path.exists(args.sensor):
        sys.exit(f"{args.sensor} missing: cargo build --release -p sensor")

    router_mac = build_namespace()
    rnd = random.Random(1)
    lo_pairs = set()
    while len(lo_pairs) < 16:
        lo_pairs.add(("127.0.0.1", rnd.randrange(1025, 32000)))
    ns_pairs = set()
    while len(ns_pairs) < 12:
        ns_pairs.add((f"10.251.{rnd.randrange(0, 16)}.{rnd.randrange(1, 255)}", rnd.choice([443, 8443])))
    start_listeners(sorted(lo_pairs), ns=False)
    start_listeners(sorted(ns_pairs), ns=True)

    scenarios = {
        "a": ("127.0.0.1 x 65,535 ports", ["127.0.0.1"], "1-65535", 65535, lo_pairs),
        "b": ("4,096 addresses x 2 ports", [LIVE], "443,8443", 4096 * 2, ns_pairs),
        "c": ("65,536 addresses x 2 ports", [ROUTED], "443,8443", 65536 * 2, ns_pairs),
        "d": ("65,536 addresses x 12 ports", [ROUTED], DEFAULT_PORTS, 65536 * 12, ns_pairs),
    }
    wanted = set(args.tools.split(",")) if args.tools else None
    print(f"{'scenario':27} {'tool':15} {'wall s':>7} {'probes/s':>10} {'cpu s':>6} {'RSS MiB':>8} "
          f"{'open':>5} {'recall':>7}")
    rows = []
    for key in args.only.split(","):
        name, targets, ports, probes, present = scenarios[key]
        results = {}
        masscan_done = False
        for tool, cmd, parse in tools(args, targets, ports, key, router_mac):
            if wanted and tool.split("@")[0] not in wanted:
                continue
            if tool.startswith("masscan") and masscan_done:
                continue
            if key != "a":
                check_routing()
            walls, cpus, rss, found, ok = [], [], 0, set(), True
            for _ in range(args.reps):
                timed = ["/usr/bin/time", "-f", "%M", "-o", "/tmp/discovery-rss"] + cmd
                wall, cpu, out, ok1 = run(timed, args.tool_timeout)
                ok = ok and ok1
                walls.append(wall)
                cpus.append(cpu)
                try:
                    rss = max(rss, int(open("/tmp/discovery-rss").read().split()[-1]))
                except (OSError, ValueError, IndexError):
                    pass
                found = parse(out)
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            hits = len(present & found)
            recall = hits / len(present)
            results[tool] = wall
            if tool.startswith("masscan") and hits == len(present):
                masscan_done = True
            extra = "" if ok else "  (exited with an error)"
            print(f"{name:27} {tool:15} {wall:7.2f} {probes / wall:10.0f} {cpu:6.2f} {rss / 1024:8.1f} "
                  f"{len(found):5} {recall:7.0%}{extra}", flush=True)
            rows.append((name, tool, wall, probes / wall, cpu, rss / 1024, len(found), hits, len(present), ok))
        for base in ("sensor-syn", "sensor-connect", "sensor"):
            if base not in results:
                continue
            ratios = ", ".join(f"{t} {w / results[base]:.2f}x" for t, w in results.items() if t != base)
            ratios += " (above 1: sensor is faster)"
            print(f"{'':27} wall time relative to {base}: {ratios}")
    print("\nmarkdown:")
    print("| scenario | tool | wall s | probes/s | CPU s | peak RSS MiB | open | recall |")
    print("|---|---|---|---|---|---|---|---|")
    for name, tool, wall, pps, cpu, rss, nfound, hits, present, ok in rows:
        flag = "" if ok else " (error)"
        print(f"| {name} | {tool}{flag} | {wall:.2f} | {pps:,.0f} | {cpu:.2f} | {rss:.1f} | {nfound} | "
              f"{hits}/{present} |")


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
