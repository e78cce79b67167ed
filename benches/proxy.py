#!/usr/bin/env python3
"""CONNECT-proxy benchmark (issue 8): `sensor proxy` against tinyproxy and squid, same run.

Everything is loopback: every server (the sink, the three proxies) binds 127.0.0.1 on a free
port; every process this script starts is in its own session and is stopped on exit (finally,
atexit, SIGINT/SIGTERM/SIGHUP), and the sink also exits when its stdin (a pipe from this script)
closes, so it cannot outlive a killed parent. Every loop is bounded in count and time.

Scenarios, per proxy:
  1) throughput of one tunnel: CONNECT to the discard sink, push --mib MiB (default 512), wait
     for the sink's acknowledgement of the last byte; MB/s (10^6 bytes/s), median of --reps (3).
     The same transfer straight to the sink (no proxy) is printed as the ceiling.
  2) concurrent tunnels: a freshly started proxy, --tunnels N (default 1000) tunnels opened at
     once (at most --window, default 256, connects/heads in flight) and all held open, then 4 KiB sent on every one
     and echoed back by the sink; reported: tunnels that completed the round trip, wall time,
     the proxy's peak RSS (VmHWM, summed over the proxy's process tree) and its CPU time
     (utime+stime of the tree from /proc/PID/stat, including reaped children).

How the client and sink are kept from being the bottleneck:
  - the sink is a separate process (its own GIL/CPU) from the client;
  - throughput: the client sendall()s one preallocated 1 MiB memoryview (no per-chunk
    allocation or copy in Python), the sink recv_into()s a preallocated 1 MiB bytearray with
    4 MiB socket buffers and discards; the sink replies once with the byte count, so there is
    no per-chunk round trip and no half-close semantics are relied on;
  - the direct (no proxy) run measures that client+sink pair alone: a proxy adds one more
    process copying every byte twice, so on this 2-core machine the proxied figures are bounded
    by the cores that three busy processes share — the ceiling line shows how far above the
    proxies the client/sink pair is;
  - concurrency: client and echo sink are single-threaded epoll loops (selectors), no thread per
    connection, so 1000 tunnels cost them little; the proxy's CPU and memory are read from
    /proc for the proxy's processes only.

Proxy settings for the concurrency test: the sensor gets --max-tunnels and
--max-tunnels-per-agent of 2N+16 (its defaults, 1024 and 256 per agent address, would refuse the
1000 tunnels that all come from 127.0.0.1); tinyproxy MaxClients 2N+16; squid
max_filedescriptors 4N+64. The soft RLIMIT_NOFILE is raised to the hard limit for this script
and its children; N is cut to what the limit allows.

Usage: python3 benches/proxy.py [--mib 512] [--reps 3] [--tunnels 1000] [--sensor PATH] [--baseline OLD_SENSOR]
Needs: tinyproxy and squid (apt-get install -y tinyproxy squid), the shipped build
(cargo build --profile dist -p sensor: release plus fat LTO, what packaging/build-deb.sh packages;
default path $CARGO_TARGET_DIR/dist/sensor, else .../release/sensor; --sensor PATH to choose).
"""
import argparse
import atexit
import os
import resource
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

BUF = 1 << 20
SOCKBUF = 4 << 20
HZ = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- sink (child)

def sink_main():
    """Discard port (length-prefixed, one ack) and echo port (epoll). Exits when stdin closes."""
    def stdin_watch():
        try:
            while sys.stdin.buffer.read(1):
                pass
        finally:
            os._exit(0)
    threading.Thread(target=stdin_watch, daemon=True).start()

    d = socket.socket()
    d.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    d.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKBUF)
    d.bind(("127.0.0.1", 0))
    d.listen(64)
    e = socket.socket()
    e.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    e.bind(("127.0.0.1", 0))
    e.listen(4096)

    def discard_conn(c):
        buf = bytearray(BUF)
        mv = memoryview(buf)
        try:
            c.settimeout(120)
            hdr = b""
            while len(hdr) < 8:
                b = c.recv(8 - len(hdr))
                if not b:
                    return
                hdr += b
            want = struct.unpack(">Q", hdr)[0]
            got = 0
            while got < want:
                n = c.recv_into(mv, min(BUF, want - got))
                if n == 0:
                    return
                got += n
            c.sendall(struct.pack(">Q", got))
            c.recv(1)  # wait for the client to close
        except OSError:
            pass
        finally:
            c.close()

    def discard_accept():
        while True:
            c, _ = d.accept()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKBUF)
            threading.Thread(target=discard_conn, args=(c,), daemon=True).start()
    threading.Thread(target=discard_accept, daemon=True).start()

    print(d.getsockname()[1], e.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    e.setblocking(False)
    sel.register(e, selectors.EVENT_READ, None)
    pending = {}
    while True:
        for key, ev in sel.select():
            s = key.fileobj
            if s is e:
                for _ in range(256):
                    try:
                        c, _ = e.accept()
                    except (BlockingIOError, OSError):
                        break
                    c.setblocking(False)
                    pending[c] = b""
                    sel.register(c, selectors.EVENT_READ, None)
                continue
            try:
                if ev & selectors.EVENT_READ:
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionError
                    pending[s] += data
                if pending[s]:
                    n = s.send(pending[s])
                    pending[s] = pending[s][n:]
                sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if pending[s] else 0))
            except (OSError, ConnectionError):
                sel.unregister(s)
                pending.pop(s, None)
                s.close()


# ----------------------------------------------------------------------------- process handling

CHILDREN = []


def stop_all():
    for p in CHILDREN:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for p in CHILDREN:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)
    CHILDREN.clear()


def on_signal(signum, _frame):
    stop_all()
    sys.exit(128 + signum)


def spawn(argv, **kw):
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    CHILDREN.append(p)
    return p


def stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=8)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
    if p in CHILDREN:
        CHILDREN.remove(p)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, p, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{p.args[0]} exited with {p.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{p.args[0]} did not listen on {port} in {timeout}s")


def tree(pid):
    """pid and its descendants (from /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                ppid = int(st.rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        todo.extend(kids.get(q, []))
    return out


def anon_kib(pid):
    """RssAnon KiB summed over the process tree: the heap and stacks, without the program's own
    file-backed pages (which grow with the binary's size, not with the tunnels)."""
    anon = 0
    for q in tree(pid):
        try:
            with open(f"/proc/{q}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        anon += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return anon


def proc_stats(pid):
    """(VmHWM KiB, VmRSS KiB, CPU seconds) summed over the process tree, reaped children included."""
    hwm = rss = 0
    ticks = 0
    for q in tree(pid):
        try:
            with open(f"/proc/{q}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
                    elif line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open(f"/proc/{q}/stat") as f:
                fl = f.read().rsplit(")", 1)[1].split()
            ticks += int(fl[11]) + int(fl[12]) + int(fl[13]) + int(fl[14])
        except (OSError, IndexError, ValueError):
            pass
    return hwm, rss, ticks / HZ


# ----------------------------------------------------------------------------- proxies

def start_sensor(exe, tmp, ports, n):
    port = free_port()
    cap = str(2 * n + 16)
    argv = [exe, "proxy", "--listen", f"127.0.0.1:{port}", "--max-tunnels", cap,
            "--max-tunnels-per-agent", cap]
    for sp in ports:
        argv += ["--allow", f"127.0.0.1:{sp}"]
    p = spawn(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "sensor.log"), "ab"))
    wait_port(port, p)
    return p, port


def start_tinyproxy(tmp, ports, n):
    port = free_port()
    conf = os.path.join(tmp, "tinyproxy.conf")
    with open(conf, "w") as f:
        f.write(f"Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients {2 * n + 16}\n"
                f"Allow 127.0.0.1\nLogLevel Error\nDisableViaHeader Yes\n")
        for sp in ports:
            f.write(f"ConnectPort {sp}\n")
    p = spawn(["tinyproxy", "-d", "-c", conf], stdout=subprocess.DEVNULL,
              stderr=open(os.path.join(tmp, "tinyproxy.log"), "ab"))
    wait_port(port, p)
    return p, port


def start_squid(tmp, ports, n):
    port = free_port()
    d = os.path.join(tmp, "squid")
    os.makedirs(d, exist_ok=True)
    os.chmod(tmp, 0o777)
    os.chmod(d, 0o777)
    conf = os.path.join(d, "squid.conf")
    with open(conf, "w") as f:
        f.write(f"""http_port 127.0.0.1:{port}
acl bench_src src 127.0.0.1/32
acl SSL_ports port {' '.join(map(str, ports))}
acl CONNECT method CONNECT
http_access deny CONNECT !SSL_ports
http_access allow localhost
http_access allow bench_src
http_access deny all
cache deny all
cache_mem 8 MB
max_filedescriptors {4 * n + 64}
workers 1
pid_filename {d}/squid.pid
cache_log {d}/cache.log
access_log none
cache_store_log none
coredump_dir {d}
logfile_rotate 0
shutdown_lifetime 1 seconds
visible_hostname bench.localhost
""")
    p = spawn(["squid", "-N", "-f", conf], stdout=subprocess.DEVNULL,
              stderr=open(os.path.join(d, "stderr.log"), "ab"))
    wait_port(port, p, timeout=30)
    return p, port


# ----------------------------------------------------------------------------- clients

def read_head(s, timeout):
    s.settimeout(timeout)
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            raise ConnectionError(f"proxy closed before answering: {head!r}")
        head += b
        if len(head) > 16384:
            raise ConnectionError("proxy head too long")
    line = head.split(b"\r\n", 1)[0]
    if line.split()[1:2] != [b"200"]:
        raise ConnectionError(f"proxy refused: {line!r}")
    return head.split(b"\r\n\r\n", 1)[1]


def throughput(proxy_port, sink_port, nbytes):
    """One tunnel (or direct if proxy_port is None): bytes/s from first byte to the sink's ack."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKBUF)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKBUF)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if proxy_port is None:
            s.connect(("127.0.0.1", sink_port))
        else:
            s.connect(("127.0.0.1", proxy_port))
            s.sendall(f"CONNECT 127.0.0.1:{sink_port} HTTP/1.1\r\nHost: 127.0.0.1:{sink_port}\r\n\r\n".encode())
            extra = read_head(s, 10)
            assert not extra
        s.settimeout(120)
        mv = memoryview(bytearray(os.urandom(4096)) * (BUF // 4096))
        t0 = time.perf_counter()
        s.sendall(struct.pack(">Q", nbytes))
        left = nbytes
        while left >= BUF:
            s.sendall(mv)
            left -= BUF
        if left:
            s.sendall(mv[:left])
        ack = b""
        while len(ack) < 8:
            b = s.recv(8 - len(ack))
            if not b:
                raise ConnectionError("sink closed before ack")
            ack += b
        dt = time.perf_counter() - t0
        if struct.unpack(">Q", ack)[0] != nbytes:
            raise ConnectionError("sink counted a different number of bytes")
        return nbytes / dt
    finally:
        s.close()


def concurrent(proxy_port, echo_port, n, timeout, window=256):
    """Open n tunnels (<= window opening at once), hold all, then 4 KiB round trip on each."""
    payload = os.urandom(4096)
    head = f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\nHost: 127.0.0.1:{echo_port}\r\n\r\n".encode()
    sel = selectors.DefaultSelector()
    st = {}  # sock -> [state, buf, sent]
    established, failed = [], 0
    errors = {}
    started = 0
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout

    def fail(s, why):
        nonlocal failed
        failed += 1
        errors[why] = errors.get(why, 0) + 1
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        st.pop(s, None)
        s.close()

    # phase 1: open all tunnels
    while (started < n or st) and time.monotonic() < deadline:
        while started < n and len(st) < window:
            s = socket.socket()
            s.setblocking(False)
            started += 1
            rc = s.connect_ex(("127.0.0.1", proxy_port))
            if rc not in (0, 115):  # EINPROGRESS
                failed += 1
                errors[f"connect errno {rc}"] = errors.get(f"connect errno {rc}", 0) + 1
                s.close()
                continue
            st[s] = ["connecting", b""]
            sel.register(s, selectors.EVENT_WRITE)
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            state = st[s]
            try:
                if state[0] == "connecting":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(s, f"connect errno {err}")
                        continue
                    s.send(head)  # 70 bytes: fits any empty send buffer
                    state[0] = "head"
                    sel.modify(s, selectors.EVENT_READ)
                else:
                    b = s.recv(4096)
                    if not b:
                        fail(s, "closed before 200")
                        continue
                    state[1] += b
                    if b"\r\n\r\n" in state[1]:
                        line = state[1].split(b"\r\n", 1)[0]
                        if line.split()[1:2] != [b"200"]:
                            fail(s, line.decode(errors="replace")[:40])
                            continue
                        sel.unregister(s)
                        del st[s]
                        established.append(s)
            except OSError as e:
                fail(s, type(e).__name__)
    for s in list(st):
        fail(s, "open timeout")
    t_open = time.perf_counter() - t0

    # phase 2: 4 KiB round trip on every tunnel, all at once
    st = {}
    for s in established:
        st[s] = [0, bytearray()]
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)
    ok = 0
    while st and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            s = key.fileobj
            state = st[s]
            try:
                if ev & selectors.EVENT_WRITE and state[0] < len(payload):
                    state[0] += s.send(payload[state[0]:])
                    if state[0] == len(payload):
                        sel.modify(s, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    b = s.recv(8192)
                    if not b:
                        fail(s, "closed mid round trip")
                        continue
                    state[1] += b
                    if len(state[1]) >= len(payload):
                        if bytes(state[1]) == payload:
                            ok += 1
                        else:
                            errors["wrong echo"] = errors.get("wrong echo", 0) + 1
                        sel.unregister(s)
                        del st[s]
            except OSError as e:
                fail(s, type(e).__name__)
    for s in list(st):
        fail(s, "round-trip timeout")
    wall = time.perf_counter() - t0
    return ok, wall, t_open, established, errors


# ----------------------------------------------------------------------------- main

def uploads(exe, tmp, n=256, mib=16):
    """Issue 17: n unauthenticated uploads of `mib` MiB each to a daemon's report intake (16
    source addresses 127.0.5.x, as the per-source places allow), all at once; every answer must
    be a 401 from the head. Returns (answers 401, wall s, the daemon's peak RSS in KiB)."""
    port = free_port()
    state, profiles = os.path.join(tmp, "state"), os.path.join(tmp, "profiles.d")
    os.makedirs(profiles, exist_ok=True)
    conf = os.path.join(tmp, "sensor.toml")
    with open(conf, "w") as f:
        f.write(f'[sensor]\nid = "bench"\nstate_dir = "{state}"\nprofiles_dir = "{profiles}"\n'
                f'[service]\nlisten = "127.0.0.1:{port}"\n'
                f'[intake]\ntokens = {{ "seg" = "0123456789abcdef0123456789" }}\n')
    p = spawn([exe, "run", "--config", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, p)
        head = (f"POST /api/v1/reports HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                f"Content-Length: {mib << 20}\r\n\r\n").encode()
        chunk = memoryview(b"{" * (1 << 20))
        socks = []
        t0 = time.monotonic()
        for i in range(n):
            s = socket.socket()
            s.bind((f"127.0.5.{1 + i // 16}", 0))
            s.settimeout(30)
            s.connect(("127.0.0.1", port))
            s.sendall(head)
            socks.append(s)
        for s in socks:  # as much of each body as the daemon takes before it answers
            s.setblocking(False)
            for _ in range(mib):
                try:
                    s.send(chunk)
                except OSError:
                    break
        ok = 0
        for s in socks:
            s.settimeout(30)
            answer = b""
            try:
                while b"\r\n" not in answer and len(answer) < 4096:
                    b = s.recv(4096)
                    if not b:
                        break
                    answer += b
            except OSError:
                pass
            ok += answer.startswith(b"HTTP/1.1 401")
            s.close()
        wall = time.monotonic() - t0
        hwm, _, _ = proc_stats(p.pid)
        return ok, wall, hwm
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tunnels", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=60, help="per concurrency run, seconds")
    ap.add_argument("--window", type=int, default=256, help="tunnels being opened at once")
    ap.add_argument("--sensor", default=None)
    ap.add_argument("--only", default="sensor,tinyproxy,squid")
    ap.add_argument("--baseline", metavar="PATH",
                    help="an older sensor binary to run beside the current one in the same run "
                         "(row 'sensor-baseline'), e.g. one built from the commit before a change")
    ap.add_argument("--uploads", type=int, default=256, help="unauthenticated 16 MiB uploads (0: skip)")
    args = ap.parse_args()

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # The shipped build (the `dist` profile, what packaging/build-deb.sh packages) when there is
    # one: its memory is what an appliance has. Else the release build.
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    shipped = os.path.join(target, "dist", "sensor")
    exe = args.sensor or (shipped if os.access(shipped, os.X_OK) else os.path.join(target, "release", "sensor"))
    if not os.access(exe, os.X_OK):
        sys.exit(f"no sensor binary at {exe} (cargo build --profile dist -p sensor, or --sensor PATH)")
    print(f"sensor: {exe}", flush=True)
    for tool in ("tinyproxy", "squid"):
        if tool in args.only and not shutil.which(tool):
            sys.exit(f"{tool} missing: apt-get install -y tinyproxy squid")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):
            pass
    # client holds n, sink n, proxy 2n (+ slack); all share this limit per process
    n = min(args.tunnels, (soft - 100) // 2)
    if n < args.tunnels:
        print(f"note: RLIMIT_NOFILE {soft} allows {n} tunnels, not {args.tunnels}")

    atexit.register(stop_all)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    tmp = tempfile.mkdtemp(prefix="proxybench-")
    try:
        sink = spawn([sys.executable, os.path.abspath(__file__), "--sink"], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE)
        line = sink.stdout.readline().split()
        if len(line) != 2:
            raise RuntimeError("sink did not start")
        dport, eport = int(line[0]), int(line[1])
        nbytes = args.mib << 20

        direct = statistics.median(throughput(None, dport, nbytes) for _ in range(args.reps))
        print(f"direct client->sink (no proxy): {direct / 1e6:,.0f} MB/s (ceiling)", flush=True)

        starters = {
            "sensor": lambda: start_sensor(exe, tmp, (dport, eport), n),
            "tinyproxy": lambda: start_tinyproxy(tmp, (dport, eport), n),
            "squid": lambda: start_squid(tmp, (dport, eport), n),
        }
        if args.baseline:
            starters["sensor-baseline"] = lambda: start_sensor(args.baseline, tmp, (dport, eport), n)
            if "sensor-baseline" not in args.only:
                args.only = args.only.replace("sensor", "sensor,sensor-baseline", 1)
        results = {}
        for name in [x for x in args.only.split(",") if x]:
            r = results[name] = {}
            # 1) throughput
            p, port = starters[name]()
            try:
                runs = [throughput(port, dport, nbytes) for _ in range(args.reps)]
                r["mbps"] = statistics.median(runs) / 1e6
                r["runs"] = [x / 1e6 for x in runs]
                r["tput_hwm"], _, r["tput_cpu"] = proc_stats(p.pid)
            except Exception as e:  # reported, not fatal: the other proxies still run
                r["tput_err"] = repr(e)
            finally:
                stop(p)
            print(f"{name}: throughput {r.get('mbps', 0):,.0f} MB/s runs "
                  f"{[round(x) for x in r.get('runs', [])]} {r.get('tput_err', '')}", flush=True)
            # 2) concurrency, fresh process
            p, port = starters[name]()
            try:
                idle_hwm, idle_rss, cpu0 = proc_stats(p.pid)
                idle_anon = anon_kib(p.pid)
                ok, wall, t_open, est, errors = concurrent(port, eport, n, args.timeout, args.window)
                hwm, rss_open, cpu1 = proc_stats(p.pid)
                r.update(idle_anon=idle_anon, held_anon=anon_kib(p.pid))
                for s in est:
                    s.close()
                r.update(ok=ok, wall=wall, t_open=t_open, hwm=hwm, idle_rss=idle_rss,
                         rss_open=rss_open, cpu=cpu1 - cpu0, errors=errors)
            except Exception as e:
                r["conc_err"] = repr(e)
            finally:
                stop(p)
            print(f"{name}: {r.get('ok')}/{n} tunnels in {r.get('wall', 0):.2f} s "
                  f"(open {r.get('t_open', 0):.2f} s), peak RSS {r.get('hwm', 0) / 1024:.1f} MiB "
                  f"(idle {r.get('idle_rss', 0) / 1024:.1f}), anonymous {r.get('idle_anon', 0) / 1024:.1f} "
                  f"idle / {r.get('held_anon', 0) / 1024:.1f} MiB with the tunnels held, CPU {r.get('cpu', 0):.2f} s "
                  f"{r.get('errors', '')} {r.get('conc_err', '')}", flush=True)
            time.sleep(0.5)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    if args.uploads and "sensor" in args.only:
        tmp2 = tempfile.mkdtemp(prefix="uploadbench-")
        try:
            ok, wall, hwm = uploads(exe, tmp2, args.uploads)
            print(f"sensor: {ok}/{args.uploads} unauthenticated 16 MiB uploads answered 401 in {wall:.2f} s; "
                  f"daemon peak RSS {hwm / 1024:.1f} MiB", flush=True)
        finally:
            stop_all()
            shutil.rmtree(tmp2, ignore_errors=True)

    base = results.get("tinyproxy", {})
    def ratio(a, b):
        return f"{a / b:.2f}×" if a and b else "–"
    print()
    print(f"{args.mib} MiB through one tunnel (median of {args.reps}); {n} concurrent tunnels × 4 KiB "
          f"round trip ({args.window} opening at once); direct client→sink ceiling {direct / 1e6:,.0f} MB/s")
    print()
    print("| proxy | MB/s | vs tinyproxy | tunnels ok | wall s (open s) | peak RSS MiB | RSS vs tinyproxy "
          "| idle RSS MiB | anon MiB idle → held | KiB anon per tunnel | CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r.get('mbps', 0):,.0f} | {ratio(r.get('mbps'), base.get('mbps'))} "
              f"| {r.get('ok', 0)}/{n} | {r.get('wall', 0):.2f} ({r.get('t_open', 0):.2f}) "
              f"| {r.get('hwm', 0) / 1024:.1f} "
              f"| {ratio(r.get('hwm'), base.get('hwm'))} | {r.get('idle_rss', 0) / 1024:.1f} "
              f"| {r.get('idle_anon', 0) / 1024:.1f} → {r.get('held_anon', 0) / 1024:.1f} "
              f"| {(r.get('held_anon', 0) - r.get('idle_anon', 0)) / max(r.get('ok') or 1, 1):.1f} "
              f"| {r.get('cpu', 0):.2f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sink"]:
        sink_main()
    else:
        main()
