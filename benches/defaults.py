#!/usr/bin/env python3
"""Default flags against the peers (issue 18): what a new user gets, in one run, with ratios.

Every scenario runs `sensor scan` with default flags only (as root, so `--scan-type auto` picks
SYN; `--scan-type connect` is the one flag added for the connect row) beside the peers on the same
targets in the same invocation, median of --reps runs, and checks that the open sets (or the
accepted suites) are identical.

Scenarios:
  ports   a network namespace of its own (so no other process's listeners and no management port
          are in the way), 16 listeners on its 127.0.0.1, ports 1-2023,2025-65535:
          sensor (SYN), sensor --scan-type connect, nmap -sS -T5, nmap -sT -T5, masscan, RustScan
          (when ~/.cache/bench-tools/rustscan exists).
  tls     one modern endpoint (nginx, TLS 1.2 + 1.3, on 127.0.0.1): sensor (full analysis, the whole
          process), sslscan, nmap --script ssl-enum-ciphers, sslyze (when its venv exists).
  loss    a namespace joined by a veth pair with `tc netem loss 5%` on both ends, 12 listeners on
          10.252.0.2: recall of sensor (SYN, defaults), nmap -sS -T5, and masscan at a fixed rate
          without retries, per run (--reps runs).

Usage (root):
  cargo build --release -p sensor
  python3 benches/defaults.py [--reps 5] [--only ports,tls,loss]

Nothing leaves the machine: namespaces, veth pair and listeners are made here and removed on exit.
"""
import argparse
import atexit
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PORTS = "1-2023,2025-65535"  # never port 2024: the machine's management listener
TOOLS = os.path.expanduser("~/.cache/bench-tools")
RUSTSCAN = os.path.join(TOOLS, "rustscan", "bin", "rustscan")
SSLYZE = os.path.join(TOOLS, "venv", "bin", "sslyze")
NS_PORTS, NS_LOSS = f"nsdef{os.getpid()}", f"nsloss{os.getpid()}"
VETH_H, VETH_N = f"vdh{os.getpid() % 100000}", f"vdn{os.getpid() % 100000}"
LISTENER = r"""
import socket, sys, threading, time
socks = []
for spec in sys.argv[1].split(","):
    a, p = spec.rsplit(":", 1)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, int(p))); s.listen(128); socks.append(s)
def serve(s):
    while True:
        c, _ = s.accept()
        try: c.sendall(b"SSH-2.0-bench\r\n")
        except OSError: pass
        c.close()
for s in socks: threading.Thread(target=serve, args=(s,), daemon=True).start()
print("ready", flush=True)
time.sleep(3600)
"""


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def timed(cmd):
    """(wall s, stdout) of one run."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        print(f"  ! {cmd[0]} exited {p.returncode}: {err.strip()[:200]}", file=sys.stderr)
    return wall, out


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
        if line.startswith("Host:") and "Ports:" in line:
            addr = line.split()[1]
            for p in line.split("Ports:")[1].split("\t")[0].split(","):
                parts = p.strip().split("/")
                if len(parts) > 1 and parts[1] == "open":
                    found.add((addr, int(parts[0])))
    return found


def masscan_open(out):
    found = set()
    for line in out.splitlines():
        m = re.match(r"Discovered open port (\d+)/tcp on (\S+)", line.strip())
        if m:
            found.add((m.group(2), int(m.group(1))))
    return found


def rustscan_open(out):
    found = set()
    for line in out.splitlines():
        m = re.match(r"(\S+) -> \[(.*)\]", line.strip())
        if m:
            found |= {(m.group(1), int(p)) for p in m.group(2).split(",") if p.strip()}
    return found


def row(name, walls, found, expected, base=None):
    med = statistics.median(walls)
    recall = f"{len(found & expected)}/{len(expected)}"
    ratio = f"{med / base:6.2f}x" if base else "     -"
    print(f"  {name:34} {med:7.3f} s  (min {min(walls):.3f})  open {len(found):3}  recall {recall:6}  peer/sensor {ratio}")
    return med


def scenario_ports(args):
    print("\n== full-port scan of 127.0.0.1 (its own namespace), default flags ==")
    sh("ip", "netns", "add", NS_PORTS)
    atexit.register(lambda: sh("ip", "netns", "del", NS_PORTS, check=False))
    sh("ip", "-n", NS_PORTS, "link", "set", "lo", "up")
    rnd = random.Random(18)
    ports = sorted({p for p in (rnd.randrange(1025, 60000) for _ in range(40)) if p != 2024})[:16]
    expected = {("127.0.0.1", p) for p in ports}
    lst = subprocess.Popen(["ip", "netns", "exec", NS_PORTS, sys.executable, "-c", LISTENER,
                            ",".join(f"127.0.0.1:{p}" for p in ports)], stdout=subprocess.PIPE, text=True)
    atexit.register(lst.kill)
    lst.stdout.readline()
    ns = ["ip", "netns", "exec", NS_PORTS]
    tools = [
        ("sensor (defaults: auto -> SYN)", [args.sensor, "scan", "127.0.0.1", "-p", PORTS, "-o", "csv", "--no-progress"], sensor_open),
        ("sensor --scan-type connect", [args.sensor, "scan", "127.0.0.1", "-p", PORTS, "-o", "csv", "--no-progress", "--scan-type", "connect"], sensor_open),
        ("nmap -sS -T5", ["nmap", "-sS", "-T5", "-n", "-Pn", "-p", PORTS, "-oG", "-", "127.0.0.1"], nmap_open),
        ("nmap -sT -T5", ["nmap", "-sT", "-T5", "-n", "-Pn", "-p", PORTS, "-oG", "-", "127.0.0.1"], nmap_open),
    ]
    if os.path.exists(RUSTSCAN):
        tools.append(("RustScan -b 4096", [RUSTSCAN, "-a", "127.0.0.1", "-r", "1-65535", "-b", "4096", "-t", "500", "-g"], rustscan_open))
    results = {}
    for name, cmd, parse in tools:
        runs = [timed(ns + cmd) for _ in range(args.reps)]
        results[name] = ([r[0] for r in runs], parse(runs[-1][1]))
    if shutil.which("masscan"):
        wall, out = timed(ns + ["masscan", "127.0.0.1", "-p", PORTS, "--rate", "100000", "--wait", "1"])
        results["masscan --rate 100000"] = ([wall], masscan_open(out))
    syn = statistics.median(results[tools[0][0]][0])
    conn = statistics.median(results[tools[1][0]][0])
    for name, (walls, found) in results.items():
        base = syn if "-sS" in name or "masscan" in name or "RustScan" in name else conn if "-sT" in name else None
        row(name, walls, found, expected, base)
        if found and found != expected and "masscan" not in name:
            print(f"    differs: missing {sorted(expected - found)[:5]} extra {sorted(found - expected)[:5]}")
    print(f"  targets: SYN >= 1.5x nmap -sS -> {statistics.median(results['nmap -sS -T5'][0]) / syn:.2f}x; "
          f"connect >= 2x nmap -sT -> {statistics.median(results['nmap -sT -T5'][0]) / conn:.2f}x")


def scenario_tls(args):
    print("\n== one modern endpoint (nginx TLS 1.2 + 1.3), whole process, default flags ==")
    if not shutil.which("nginx"):
        print("  skipped: nginx is not installed")
        return
    d = tempfile.mkdtemp(prefix="defaults-nginx-")
    atexit.register(lambda: shutil.rmtree(d, ignore_errors=True))
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
       "-subj", "/CN=bench.test", "-addext", "subjectAltName=DNS:bench.test", "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem")
    port = random.Random(os.getpid()).randrange(30000, 40000)
    conf = f"""worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {d}/c.pem; ssl_certificate_key {d}/k.pem;
    ssl_protocols TLSv1.2 TLSv1.3; location / {{ return 200 "ok"; }} }} }}"""
    open(f"{d}/nginx.conf", "w").write(conf)
    ng = subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-p", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(ng.kill)
    time.sleep(0.5)
    target = f"127.0.0.1:{port}"
    tools = [
        ("sensor (defaults, full analysis)", [args.sensor, "scan", "127.0.0.1", "-p", str(port), "-o", "json", "--no-progress"]),
        ("sslscan", ["sslscan", "--no-colour", target]),
        ("nmap ssl-enum-ciphers", ["nmap", "-n", "-Pn", "-p", str(port), "--script", "ssl-enum-ciphers", "127.0.0.1"]),
    ]
    if os.path.exists(SSLYZE):
        tools.append(("sslyze", [SSLYZE, target]))
    walls = {}
    outs = {}
    for name, cmd in tools:
        runs = [timed(cmd) for _ in range(args.reps)]
        walls[name] = [r[0] for r in runs]
        outs[name] = runs[-1][1]
    base = statistics.median(walls[tools[0][0]])
    for name, w in walls.items():
        med = statistics.median(w)
        ratio = f"{med / base:6.2f}x" if name != tools[0][0] else "     -"
        print(f"  {name:34} {med:7.3f} s  (min {min(w):.3f})  peer/sensor {ratio}")
    suites = set(re.findall(r"TLS_[A-Z0-9_]+", outs[tools[0][0]]))
    print(f"  sensor: {len(suites)} suite names in its record; target <= 0.15 s and <= sslscan: "
          f"{base:.3f} s vs sslscan {statistics.median(walls['sslscan']):.3f} s")


def scenario_loss(args):
    print("\n== 5 % loss (netem on both ends of a veth pair), recall per run ==")
    sh("ip", "netns", "add", NS_LOSS)
    atexit.register(lambda: sh("ip", "netns", "del", NS_LOSS, check=False))
    sh("ip", "link", "add", VETH_H, "type", "veth", "peer", "name", VETH_N)
    atexit.register(lambda: sh("ip", "link", "del", VETH_H, check=False))
    sh("ip", "link", "set", VETH_N, "netns", NS_LOSS)
    sh("ip", "addr", "add", "10.252.0.1/30", "dev", VETH_H)
    sh("ip", "link", "set", VETH_H, "up")
    sh("ip", "-n", NS_LOSS, "addr", "add", "10.252.0.2/30", "dev", VETH_N)
    sh("ip", "-n", NS_LOSS, "link", "set", VETH_N, "up")
    sh("ip", "-n", NS_LOSS, "link", "set", "lo", "up")
    sh("tc", "qdisc", "add", "dev", VETH_H, "root", "netem", "loss", "5%")
    sh("ip", "netns", "exec", NS_LOSS, "tc", "qdisc", "add", "dev", VETH_N, "root", "netem", "loss", "5%")
    rnd = random.Random(5)
    ports = sorted({rnd.randrange(1025, 30000) for _ in range(12)})
    expected = {("10.252.0.2", p) for p in ports}
    lst = subprocess.Popen(["ip", "netns", "exec", NS_LOSS, sys.executable, "-c", LISTENER,
                            ",".join(f"10.252.0.2:{p}" for p in ports)], stdout=subprocess.PIPE, text=True)
    atexit.register(lst.kill)
    lst.stdout.readline()
    plist = "1-2023,2025-30000"
    tools = [
        ("sensor (defaults)", [args.sensor, "scan", "10.252.0.2", "-p", plist, "-o", "csv", "--no-progress"], sensor_open),
        ("nmap -sS -T5", ["nmap", "-sS", "-T5", "-n", "-Pn", "-p", plist, "-oG", "-", "10.252.0.2"], nmap_open),
        ("masscan --rate 20000 (no retries)", ["masscan", "10.252.0.2", "-p", plist, "--rate", "20000", "--wait", "1"], masscan_open),
    ]
    for name, cmd, parse in tools:
        if not shutil.which(cmd[0]) and not os.path.exists(cmd[0]):
            continue
        recalls, walls = [], []
        for _ in range(args.reps):
            wall, out = timed(cmd)
            walls.append(wall)
            recalls.append(len(parse(out) & expected))
        full = sum(r == len(expected) for r in recalls)
        print(f"  {name:34} recall per run {recalls} of {len(expected)}: complete in {full}/{len(recalls)}; "
              f"median {statistics.median(walls):.2f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="ports,tls,loss")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/netsensor-target"))
    ap.add_argument("--sensor", default=os.path.join(target, "release", "sensor"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: namespaces, raw sockets, netem")
    if not os.path.exists(args.sensor):
        sys.exit(f"{args.sensor} missing: cargo build --release -p sensor")
    for s in args.only.split(","):
        {"ports": scenario_ports, "tls": scenario_tls, "loss": scenario_loss}[s](args)


if __name__ == "__main__":
    main()
