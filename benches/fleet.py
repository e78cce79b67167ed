#!/usr/bin/env python3
"""Fleet intake benchmark (issue 19): many enrolled sensors reporting to a central sensor.

N simulated sensors (--sensors, default 50; concurrent clients speaking the real report protocol:
`POST /api/v1/reports`, gzip'd JSON of docs/schema/report.schema.json, Bearer credential from a real
enrolment, Idempotency-Key) report batches of --events endpoint events (default 500) to the central
sensor, on the embedded SQLite store and on PostgreSQL, with one central process and (PostgreSQL)
with two on the same database, the sensors split between them. Two loads per setup:

- sustained: each sensor sends --sustained-batches batches (default 4) at a steady pace, the
  sensors' sends spread evenly in time, so that the fleet offers each of --rates events/s in all
  (default 5,000, then 10,000): how real sensors report (each after its own runs), and what the
  acknowledgement latency target (p99 < 1 s) is about;
- burst: each sensor sends --batches batches (default 2) one after the other, all sensors in the
  same instant (50 x 2 x 500 = 50,000 events at once): the worst case, where p99 is about the wall
  time whatever the throughput, and the capacity figure.

Printed per load: events applied per second (all events / wall time from the first send to the
last acknowledgement; in the sustained load, the offered rate when the central keeps up), p50 and
p99 acknowledgement latency, and where the CPU went (seconds of CPU of the central processes, of
PostgreSQL and of this script's clients during the load, against the wall time x cores). Per setup, the exactly-once check:
every batch acknowledged `applied` once, and the central inventory holds exactly the events'
distinct endpoints for every sensor (read back through GET /api/v1/endpoints). Two centrals on one
SQLite file are not run: the embedded store is one process's (docs/fleet.md).

Everything is loopback. The central(s) and PostgreSQL are started here in a scratch directory and
stopped on exit; every wait is bounded. Bodies are built and gzip'd before the clock starts, so
the client's Python does not weigh on the figures; the clients are threads (the GIL is released
while they wait for answers).

Usage: python3 benches/fleet.py [--sensors 50] [--batches 2] [--events 500] [--rates 5000,10000]
                                [--sustained-batches 4] [--sensor PATH]
Needs: a release build (cargo build --release -p sensor), PostgreSQL (postgresql package).
"""
import argparse
import atexit
import glob
import gzip
import http.client
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ADMIN = "bench-admin-token-0123456789"
PROCS = []


def stop_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in PROCS:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


atexit.register(stop_all)
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, lambda *_: sys.exit(1))


def spawn(args, **kw):
    p = subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL, **kw)
    PROCS.append(p)
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, token=None, body=None, headers=None, timeout=60):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if body is None and method != "GET":
        body = b""
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data) if data else None
    except ValueError:
        return r.status, data


def wait_listening(port, secs=30):
    end = time.time() + secs
    while time.time() < end:
        try:
            if request(port, "GET", "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the central on port {port} never listened")


def start_postgres(tmp):
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise SystemExit("PostgreSQL is not installed (apt-get install -y postgresql)")
    b = bins[-1]
    data, sock = os.path.join(tmp, "pgdata"), os.path.join(tmp, "pgsock")
    os.makedirs(sock)
    pre = []
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", tmp], check=True)
        pre = ["runuser", "-u", "postgres", "--"]
    subprocess.run(pre + [f"{b}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    spawn(pre + [f"{b}/postgres", "-D", data, "-p", str(port), "-k", sock, "-c", "listen_addresses=127.0.0.1",
                 "-c", "max_connections=200"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 30
    while subprocess.run([f"{b}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode != 0:
        if time.time() > end:
            raise SystemExit("PostgreSQL did not start")
        time.sleep(0.1)
    return f"postgres://postgres@127.0.0.1:{port}/postgres"


def start_central(sensor, tmp, name, url):
    port = free_port()
    cfg = os.path.join(tmp, f"{name}.toml")
    profiles = os.path.join(tmp, f"{name}-profiles")
    os.makedirs(profiles, exist_ok=True)
    with open(cfg, "w") as f:
        f.write(f'[sensor]\nid = "{name}"\nstate_dir = "{tmp}/{name}-state"\nprofiles_dir = "{profiles}"\n')
        if url:
            f.write(f'\n[inventory]\nurl = "{url}"\n')
    log = open(os.path.join(tmp, f"{name}.log"), "w")
    spawn([sensor, "run", "--config", cfg, "--admin-token", ADMIN, "--listen", f"127.0.0.1:{port}"],
          stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ, SENSOR_LOG="warn"))
    wait_listening(port)
    return port


def sample_record(sensor, tmp):
    """One real endpoint record: `sensor scan` of a loopback listener."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    out = subprocess.run([sensor, "scan", "127.0.0.1", "-p", str(port), "-o", "json"], capture_output=True,
                         timeout=60, text=True)
    srv.close()
    doc = json.loads(out.stdout)
    items = doc if isinstance(doc, list) else next(v for v in doc.values() if isinstance(v, list) and v)
    return items[0]


def cpu_seconds(root):
    """CPU seconds (user + system, with reaped children) of process `root` and its descendants
    (PostgreSQL's backends start sessions of their own, so the tree, not the session)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                # After the command: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(stats[p][1] for p in tree if p in stats) / tick


def build_bodies(record, sensor_id, batches, events, first=0):
    bodies = []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    n = first
    for _ in range(batches):
        evs = []
        for _ in range(events):
            rec = dict(record)
            rec["address"] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            rec["port"] = 443
            n += 1
            evs.append({"event_id": secrets.token_hex(16), "kind": "new", "occurred_at": now, "endpoint": rec})
        batch = secrets.token_hex(16)
        doc = {"schema_version": "1", "sensor": {"id": sensor_id, "name": sensor_id, "version": "bench"},
               "batch_id": batch, "sent_at": now, "events": evs}
        bodies.append((batch, gzip.compress(json.dumps(doc).encode(), 6)))
    return bodies


def run_load(args, creds, bodies, applied, errors, period, central_roots, pg_root):
    """Sends every sensor's `bodies`: one batch per `period` seconds per sensor, the sensors
    offset evenly (sustained), or all at once, each sensor's batches back to back (`None`).
    Returns the printed figures."""
    latencies = []
    lock = threading.Lock()
    go = threading.Event()
    start = [0.0]

    def client(i, sid, cred, port):
        go.wait()
        for k, (batch, body) in enumerate(bodies[sid]):
            if period is not None:
                due = start[0] + (i / len(creds) + k) * period
                time.sleep(max(0.0, due - time.perf_counter()))
            for attempt in range(5):
                t0 = time.perf_counter()
                try:
                    st, ack = request(port, "POST", "/api/v1/reports", cred, body,
                                      {"Content-Type": "application/json", "Content-Encoding": "gzip",
                                       "Idempotency-Key": batch}, timeout=120)
                except OSError as e:
                    st, ack = 0, str(e)
                dt = time.perf_counter() - t0
                if st == 200:
                    with lock:
                        latencies.append(dt)
                        applied.append((batch, ack.get("applied"), ack.get("events")))
                    break
                with lock:
                    errors.append((sid, st, str(ack)[:200]))
                time.sleep(0.2 * (attempt + 1))

    threads = [threading.Thread(target=client, args=(i,) + c) for i, c in enumerate(creds)]
    for t in threads:
        t.start()
    me = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_SELF))
    cpu0 = [cpu_seconds(s) for s in central_roots], (cpu_seconds(pg_root) if pg_root else 0.0), me()
    start[0] = t0 = time.perf_counter()
    go.set()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0
    central_cpu = sum(cpu_seconds(s) for s in central_roots) - sum(cpu0[0])
    pg_cpu = (cpu_seconds(pg_root) - cpu0[1]) if pg_root else 0.0
    client_cpu = me() - cpu0[2]
    total = sum(len(b) for b in bodies.values()) * args.events
    lat = sorted(latencies)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    cores = os.cpu_count()
    return (f"{total / wall:8,.0f} events/s  p50 {p(0.50) * 1000:6.0f} ms  p99 {p(0.99) * 1000:6.0f} ms  "
            f"wall {wall:5.1f} s  CPU s: central {central_cpu:4.1f}, PostgreSQL {pg_cpu:4.1f}, "
            f"clients {client_cpu:4.1f}, of {wall * cores:5.1f} (load avg {os.getloadavg()[0]:.1f})")


def run_setup(args, sensor, record, store, centrals):
    tmp = tempfile.mkdtemp(prefix="fleet-bench-")
    pgtmp = tmp
    try:
        # Its own scratch directory: the postgres user must reach it.
        pgtmp = tempfile.mkdtemp(prefix="fleet-bench-pg-")
        url = start_postgres(pgtmp) if store == "postgresql" else None
        ports = [start_central(sensor, tmp, f"central{i}", url) for i in range(centrals)]
        creds = []
        for i in range(args.sensors):
            st, tok = request(ports[0], "POST", "/api/v1/enrollment-tokens", ADMIN)
            assert st == 201, tok
            sid = f"bench-{i:03d}"
            st, got = request(ports[i % centrals], "POST", "/api/v1/enroll",
                              body=json.dumps({"token": tok["token"], "name": sid, "id": sid}),
                              headers={"Content-Type": "application/json"})
            assert st == 201, got
            creds.append((sid, got["credential"], ports[i % centrals]))
        central_roots = [p.pid for p in PROCS[-centrals:]]
        pg_root = PROCS[0].pid if url else None
        applied, errors = [], []
        first = 0
        for rate in args.rates:
            bodies = {sid: build_bodies(record, sid, args.sustained_batches, args.events, first) for sid, _, _ in creds}
            first += args.sustained_batches * args.events
            # Every sensor one batch per `period`, the sensors' sends spread evenly.
            period = args.sensors * args.events / rate
            line = run_load(args, creds, bodies, applied, errors, period, central_roots, pg_root)
            print(f"{store:<10} centrals={centrals}  sustained, {rate:>6,} events/s offered: {line}", flush=True)
        bodies = {sid: build_bodies(record, sid, args.batches, args.events, first) for sid, _, _ in creds}
        line = run_load(args, creds, bodies, applied, errors, None, central_roots, pg_root)
        print(f"{store:<10} centrals={centrals}  burst, all at once:                 {line}", flush=True)
        sent = args.batches + args.sustained_batches * len(args.rates)
        per_sensor = sent * args.events
        batches = [b for b, a, _ in applied if a]
        once = len(batches) == len(set(batches)) == args.sensors * sent
        stored_ok = True
        for sid, _, _ in creds:
            st, page = request(ports[0], "GET", f"/api/v1/endpoints?sensor={sid}&limit=1", ADMIN)
            if st != 200 or page["total"] != per_sensor:
                stored_ok = False
        print(f"{store:<10} centrals={centrals}  exactly once: "
              f"{'yes' if once and stored_ok and not errors else 'NO'} "
              f"({len(batches)} batches applied, {per_sensor:,} endpoints per sensor)"
              + (f"  ({len(errors)} refused/retried, e.g. {errors[0]})" if errors else ""), flush=True)
    finally:
        stop_all()
        PROCS.clear()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(pgtmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sensors", type=int, default=50)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--rates", default="5000,10000", help="events/s the sustained loads offer, comma-separated")
    ap.add_argument("--sustained-batches", type=int, default=4, help="batches per sensor, sustained")
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--sensor", default=os.path.join(target, "release", "sensor"))
    args = ap.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r]
    if not os.path.exists(args.sensor):
        raise SystemExit(f"{args.sensor}: build it first (cargo build --release -p sensor)")
    tmp = tempfile.mkdtemp(prefix="fleet-bench-rec-")
    record = sample_record(args.sensor, tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.sensors} sensors x {args.events} events a batch; sustained: {args.sustained_batches} batches each "
          f"at {', '.join(f'{r:,}' for r in args.rates)} events/s in all; burst: {args.batches} batches each at once; {os.cpu_count()} cores",
          flush=True)
    for store, centrals in (("sqlite", 1), ("postgresql", 1), ("postgresql", 2)):
        run_setup(args, args.sensor, record, store, centrals)


if __name__ == "__main__":
    main()
