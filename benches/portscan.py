#!/usr/bin/env python3
"""Connect-scan benchmark: `sensor scan` against `nmap -sT -T5` on the same targets, same run.

Scenarios (loopback only):
  a) 127.0.0.1, all 65,535 ports
  b) 127.1.0.0/20 (4,096 addresses) x ports 443,8443
  c) 127.1.0.0/16 (65,536 addresses) x ports 443,8443

The script starts its own listeners (on known loopback ports/addresses) so recall can be checked:
both tools must report exactly the same open (address, port) set. It prints wall time, probes/s,
CPU seconds and peak RSS per tool (median of --reps runs) and the ratio sensor/nmap.

Usage: python3 benches/portscan.py [--reps 3] [--sensor PATH]
Needs: nmap (apt-get install nmap), a release build (cargo build --release -p sensor).
"""
import argparse
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time

def listeners(seed=1):
    """Bind a known set of listeners: 16 ports on 127.0.0.1, 12 (addr, port) pairs in 127.1.0.0/20."""
    rnd = random.Random(seed)
    socks, opened = [], set()
    def bind(addr, port):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError:
            s.close()
            return
        s.listen(64)
        socks.append(s)
        opened.add((addr, port))
    while len([o for o in opened if o[0] == "127.0.0.1"]) < 16:
        bind("127.0.0.1", rnd.randrange(1025, 32000))
    while len([o for o in opened if o[0] != "127.0.0.1"]) < 12:
        a = f"127.1.{rnd.randrange(0, 16)}.{rnd.randrange(1, 255)}"
        bind(a, rnd.choice([443, 8443]) if os.geteuid() == 0 else 8443)
    # Answer like a plaintext service (a banner, then close), so the sensor's
    # TLS stage costs a round trip, not a handshake deadline.
    import threading
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
    return socks, opened

def run(cmd):
    """Run cmd; return (wall seconds, cpu seconds, peak RSS KiB, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed: {err}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, out

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

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/netsensor-target"))
    ap.add_argument("--sensor", default=os.path.join(target_dir, "release", "sensor"))
    args = ap.parse_args()
    if not shutil.which("nmap"):
        sys.exit("nmap is not installed: apt-get install nmap")
    if not os.path.exists(args.sensor):
        sys.exit(f"{args.sensor} missing: cargo build --release -p sensor")
    socks, opened = listeners()
    scenarios = [
        ("127.0.0.1 x 65535 ports", ["127.0.0.1"], "1-65535", 65535),
        ("4096 addresses x 2 ports", ["127.1.0.0/20"], "443,8443", 4096 * 2),
        ("65536 addresses x 2 ports", ["127.1.0.0/16"], "443,8443", 65536 * 2),
    ]
    print(f"{'scenario':28} {'tool':7} {'wall s':>7} {'probes/s':>10} {'cpu s':>6} {'RSS MiB':>8} {'open':>5}  recall")
    for name, targets, ports, probes in scenarios:
        results = {}
        for tool in ("sensor", "nmap"):
            if tool == "sensor":
                cmd = [args.sensor, "scan", *targets, "-p", ports, "--rate", "0", "--max-in-flight", "4096",
                       "--connect-timeout", "1000", "-o", "csv", "--no-progress", "--timeout", "2000"]
                parse = sensor_open
            else:
                cmd = ["nmap", "-sT", "-T5", "-n", "-Pn", "-p", ports, "-oG", "-", *targets]
                parse = nmap_open
            runs = [run(cmd) for _ in range(args.reps)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rss = max(r[2] for r in runs) / 1024
            found = parse(runs[-1][3])
            results[tool] = (wall, found)
            expected = {o for o in opened if any(o[0].startswith(t.split("/")[0].rsplit(".", 2)[0]) for t in targets)}
            recall = len(expected & found) / len(expected) if expected else 1.0
            print(f"{name:28} {tool:7} {wall:7.2f} {probes / wall:10.0f} {cpu:6.2f} {rss:8.1f} {len(found):5}  {recall:.0%}")
        same = results["sensor"][1] == results["nmap"][1]
        ratio = results["nmap"][0] / results["sensor"][0]
        print(f"{'':28} sensor is {ratio:.2f}x nmap's rate; identical open sets: {same}")
        if not same:
            print(f"{'':28} only sensor: {sorted(results['sensor'][1] - results['nmap'][1])}")
            print(f"{'':28} only nmap:   {sorted(results['nmap'][1] - results['sensor'][1])}")
    for s in socks:
        s.close()

if __name__ == "__main__":
    main()
