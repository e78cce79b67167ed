#!/usr/bin/env python3
"""Run peer TLS scanners against one endpoint and normalise what they report.

Tools: sslyze (venv at $HOME/.cache/netsensor-peers/venv), nmap --script ssl-enum-ciphers,
sslscan, testssl.sh. Every result has the same shape:

    {"tool", "ok", "error", "seconds", "connections",
     "protocols": {"SSLv2": bool|None, ..., "TLSv1.3": bool|None},     # None = the tool did not say
     "ciphers": {"TLSv1.2": [IANA code, ... in the tool's listed order], ...},
     "server_preference": {"TLSv1.2": True|False|None, ...},          # None = the tool did not say
     "order": {"TLSv1.2": [codes in the server order the tool claims]} # only where it claims one
     "unmapped": [names the tool printed that no catalogue knows], "raw": path of the raw output}

SSLv2 "codes" are the 24-bit SSLv2 cipher-kind values (e.g. 0x010080), as no 16-bit code exists.

`connections` counts successful (or in-progress non-blocking) connect() calls to the target port,
seen with `strace -f --seccomp-bpf -e trace=connect` around the tool (cheap: seccomp filters every
other syscall in the kernel). `seconds` is wall time of that traced run.

Usage: python3 benches/conformance/peers.py [--tools sslyze,nmap] 127.0.0.1:PORT
Stdlib only. NETWORK: targets must be loopback; this module refuses anything else.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CATALOGUE = REPO / "src" / "wire" / "ciphersuites.txt"
TESTSSL_MAPPING = Path("/etc/testssl/cipher-mapping.txt")
LO_DNS = Path(os.environ.get("LO_DNS", "/work/shared/tools/lo-dns.sh"))
VENV = Path(os.environ.get("PEERS_VENV", Path.home() / ".cache" / "netsensor-peers" / "venv"))
PROTOCOLS = ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
TOOLS = ["sslyze", "nmap", "sslscan", "testssl"]
DEFAULT_TIMEOUT = {"sslyze": 180, "nmap": 180, "sslscan": 120, "testssl": 420}


# --------------------------------------------------------------------------------------------
# Name -> code catalogue
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def name_table() -> tuple[dict[str, int], dict[str, int]]:
    """(names of TLS suites -> 16-bit code, names of SSLv2 kinds -> 24-bit code).

    Sources, later ones never overriding earlier ones: the IANA catalogue committed at
    src/wire/ciphersuites.txt; `openssl ciphers -V -stdname` (IANA + OpenSSL names, legacy provider
    loaded); testssl.sh's cipher-mapping.txt (OpenSSL names of suites our OpenSSL no longer has:
    RC4, 3DES, EXPORT...); `gnutls-cli -l` (gnutls names)."""
    tls: dict[str, int] = {}
    ssl2: dict[str, int] = {}

    def put(name: str, code: int, table=tls):
        if name and name not in ("-", "NULL"):
            table.setdefault(name.upper(), code)

    if CATALOGUE.exists():
        for line in CATALOGUE.read_text().splitlines():
            if not line or line.startswith("#"):
                continue
            f = line.split(":")
            put(f[1], int(f[0], 16))
    try:
        out = subprocess.run(["openssl", "ciphers", "-provider", "legacy", "-provider", "default", "-V",
                              "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                             capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            m = re.match(r"\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+- (\S+)", line)
            if m:
                code = int(m.group(1) + m.group(2), 16)
                put(m.group(3), code)
                put(m.group(4), code)
    except (OSError, subprocess.SubprocessError):
        pass
    if TESTSSL_MAPPING.exists():
        for line in TESTSSL_MAPPING.read_text(errors="replace").splitlines():
            m = re.match(r"\s*((?:0x[0-9A-F]{2},?)+) - (\S+)\s+(\S+)", line)
            if not m:
                continue
            parts = [p for p in m.group(1).split(",") if p]
            code = int("".join(p[2:] for p in parts), 16)
            if len(parts) == 3:
                put(m.group(2), code, ssl2)
                put(m.group(3), code, ssl2)
            else:
                put(m.group(2), code)
                put(m.group(3), code)
    try:
        out = subprocess.run(["gnutls-cli", "-l"], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            m = re.match(r"(\S+)\s+0x([0-9a-f]{2}), 0x([0-9a-f]{2})\s", line)
            if m:
                put(m.group(1), int(m.group(2) + m.group(3), 16))
    except (OSError, subprocess.SubprocessError):
        pass
    return tls, ssl2


@lru_cache(maxsize=1)
def iana_names() -> dict[int, str]:
    """code -> IANA name (the committed catalogue first, then the longest TLS_/SSL_CK_ alias)."""
    out: dict[int, str] = {}
    if CATALOGUE.exists():
        for line in CATALOGUE.read_text().splitlines():
            if line and not line.startswith("#"):
                f = line.split(":")
                out.setdefault(int(f[0], 16), f[1])
    tls, ssl2 = name_table()
    for table in (tls, ssl2):
        for name, code in table.items():
            if name.startswith(("TLS_", "SSL_CK_")) and code not in out:
                out[code] = name
    return out


def code_of(name: str, protocol: str | None = None) -> int | None:
    tls, ssl2 = name_table()
    n = name.strip().upper()
    if protocol == "SSLv2":
        return ssl2.get(n) or tls.get(n)
    if n in tls:
        return tls[n]
    # nmap names TLS 1.3 suites TLS_AKE_WITH_AES_128_GCM_SHA256
    if n.startswith("TLS_AKE_WITH_"):
        return tls.get("TLS_" + n[len("TLS_AKE_WITH_"):])
    # some tools spell SSL_ for the old RSA suites
    if n.startswith("SSL_"):
        return tls.get("TLS_" + n[4:])
    return None


# --------------------------------------------------------------------------------------------
# Running a tool bounded, optionally under strace
# --------------------------------------------------------------------------------------------

def check_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing non-loopback target {host}")


def run_bounded(cmd: list[str], timeout: float, env: dict | None = None,
                stdout_path: Path | None = None) -> tuple[int | None, str, str, float]:
    """Run in its own process group; on timeout SIGTERM then SIGKILL the whole group."""
    t0 = time.monotonic()
    out_f = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out_f, stderr=subprocess.PIPE,
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            try:
                p.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        out, err = p.communicate()
        rc = None
    finally:
        if stdout_path:
            out_f.close()
        try:  # children that outlived the tool (testssl's background openssl)
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    seconds = time.monotonic() - t0
    if stdout_path:
        out = stdout_path.read_bytes()
    return rc, (out or b"").decode(errors="replace"), (err or b"").decode(errors="replace"), seconds


def strace_wrap(cmd: list[str], trace_file: Path) -> list[str]:
    return ["strace", "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "-o", str(trace_file), "--", *cmd]


_CONNECT = re.compile(r'^(\d+)\s+connect\(\d+, \{sa_family=AF_INET6?, sin6?_port=htons\((\d+)\)')
_RESULT = re.compile(r'= (0|-1 EINPROGRESS)\b')


def count_connects(trace_file: Path, port: int) -> int | None:
    """connect() calls to `port` that succeeded or went in progress. Handles strace's
    '<unfinished ...>' / '<... connect resumed>' split when threads interleave."""
    if not trace_file.exists():
        return None
    n = 0
    pending: dict[str, int] = {}
    for line in trace_file.read_text(errors="replace").splitlines():
        m = _CONNECT.match(line)
        if m:
            if int(m.group(2)) != port:
                continue
            if "<unfinished" in line:
                pending[m.group(1)] = 1
                continue
            if _RESULT.search(line):
                n += 1
            continue
        m2 = re.match(r"^(\d+)\s+<\.\.\. connect resumed>", line)
        if m2 and pending.pop(m2.group(1), None) and _RESULT.search(line):
            n += 1
    return n


def empty_result(tool: str) -> dict:
    return {"tool": tool, "ok": False, "error": None, "seconds": None, "connections": None,
            "protocols": {p: None for p in PROTOCOLS}, "ciphers": {}, "server_preference": {},
            "order": {}, "unmapped": [], "raw": None, "note": None}


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------

def tool_path(tool: str) -> str | None:
    if tool == "sslyze":
        p = VENV / "bin" / "sslyze"
        return str(p) if p.exists() else None
    if tool == "testssl":
        return shutil.which("testssl") or shutil.which("testssl.sh")
    return shutil.which(tool)


def available(tool: str) -> str | None:
    """None when usable, else why not."""
    if tool_path(tool) is None:
        return f"{tool} not installed (run benches/conformance/install.sh)"
    if tool == "testssl" and not LO_DNS.exists():
        return f"{LO_DNS} missing: testssl.sh must run under it (private resolv.conf)"
    return None


def tool_version(tool: str) -> str | None:
    path = tool_path(tool)
    if path is None:
        return None
    try:
        if tool == "sslyze":
            out = subprocess.run([str(VENV / "bin" / "python"), "-c",
                                  "import importlib.metadata as m; print(m.version(\"sslyze\"))"],
                                 capture_output=True, text=True, timeout=30).stdout
        elif tool == "testssl":
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
            m = re.search(r"testssl\S*\s+(\S+)", re.sub(r"\x1b\[[0-9;]*m", "", out))
            out = m.group(1) if m else out
        elif tool == "nmap":
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
            out = out.splitlines()[0]
        else:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
            out = re.sub(r"\x1b\[[0-9;]*m", "", out).split()[0]
        return out.strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def seclevel0_conf(workdir: Path) -> Path:
    conf = workdir / "openssl-seclevel0.cnf"
    conf.write_text("openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
                    "[ssl_sect]\nsystem_default = system_default_sect\n"
                    "[system_default_sect]\nCipherString = DEFAULT@SECLEVEL=0\n")
    return conf


# strace -f must attach to every fork: testssl.sh forks thousands of times and runs ~1.8x slower
# traced (sslyze, nmap, sslscan: within noise). For these, time an untraced run and count
# connections in a second, traced run.
TIME_SEPARATELY = {"testssl"}


STARTTLS = ("smtp", "imap", "pop3")


def run_peer(tool: str, host: str, port: int, workdir: Path, timeout: float | None = None,
             count: bool = True, starttls: str | None = None) -> dict:
    """starttls: the plaintext protocol to upgrade first (smtp, imap, pop3), None for direct TLS."""
    check_loopback(host)
    if starttls is not None and starttls not in STARTTLS:
        raise ValueError(f"unsupported STARTTLS protocol {starttls!r}")
    if count and tool in TIME_SEPARATELY and shutil.which("strace"):
        timed = _run_peer(tool, host, port, workdir, timeout, count=False, starttls=starttls)
        traced = _run_peer(tool, host, port, workdir / "traced", timeout, count=True, starttls=starttls)
        timed["connections"] = traced["connections"]
        timed["seconds_traced"] = traced["seconds"]
        if traced["ok"] and timed["ok"] and (traced["ciphers"] != timed["ciphers"]
                                             or traced["protocols"] != timed["protocols"]):
            timed["note"] = ((timed["note"] + "; ") if timed["note"] else "") + \
                "traced run (connection count) saw different results from the timed run"
        return timed
    return _run_peer(tool, host, port, workdir, timeout, count, starttls=starttls)


def _run_peer(tool: str, host: str, port: int, workdir: Path, timeout: float | None,
              count: bool, starttls: str | None = None) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    res = empty_result(tool)
    why_not = available(tool)
    if why_not:
        res["error"] = why_not
        return res
    timeout = timeout or DEFAULT_TIMEOUT[tool]
    trace = workdir / f"{tool}.strace"
    trace.unlink(missing_ok=True)
    count = count and shutil.which("strace") is not None
    env = dict(os.environ)
    path = tool_path(tool)
    target = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    raw = workdir / f"{tool}.out"
    if tool == "sslyze":
        raw = workdir / "sslyze.json"
        raw.unlink(missing_ok=True)
        cmd = [path, "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
               f"--json_out={raw}", "--quiet", target]
        if starttls:
            cmd[1:1] = ["--starttls", starttls]
    elif tool == "nmap":
        raw = workdir / "nmap.xml"
        cmd = [path, "-n", "-Pn", "-p", str(port), "--script", "+ssl-enum-ciphers", "-oX", str(raw), host]
        if starttls:
            # ssl-enum-ciphers upgrades only when port.service is smtp/imap/pop3/... (sslcert.lua:
            # by service name, else well-known port number) and has no script-arg to force it: on a
            # high port the service name has to come from version detection. -sV at intensity 0
            # matches the greeting with the NULL probe.
            cmd[1:1] = ["-sV", "--version-intensity", "0"]
        if ":" in host:
            cmd.insert(1, "-6")
    elif tool == "sslscan":
        raw = workdir / "sslscan.xml"
        cmd = [path, "--no-colour", f"--xml={raw}", target]
        if starttls:
            cmd.insert(1, f"--starttls-{starttls}")
    elif tool == "testssl":
        raw = workdir / "testssl.json"
        raw.unlink(missing_ok=True)
        # -p protocols, -E ciphers per protocol (-e lists them without the protocol), -P preference
        cmd = [path, "--jsonfile", str(raw), "-p", "-E", "-P", "--color", "0", "--warnings", "off",
               "--quiet", "--connect-timeout", "10", "--openssl-timeout", "10"]
        if starttls:
            cmd += ["-t", starttls]
        if ":" in host:
            cmd += ["-6", "--ip", host, f"[{host}]:{port}"]
        else:
            cmd.append(target)
        env["OPENSSL_CONF"] = str(seclevel0_conf(workdir))
    else:
        raise ValueError(tool)
    if count:
        cmd = strace_wrap(cmd, trace)
    if tool == "testssl":
        cmd = [str(LO_DNS), *cmd]
    res["command"] = " ".join(cmd)
    rc, out, err, secs = run_bounded(cmd, timeout, env=env, stdout_path=workdir / f"{tool}.stdout")
    res["seconds"] = round(secs, 2)
    res["raw"] = str(raw)
    (workdir / f"{tool}.stderr").write_text(err)
    if rc is None:
        res["error"] = f"timed out after {timeout}s"
    elif not raw.exists() or raw.stat().st_size == 0:
        res["error"] = f"exit {rc}, no output; stderr: {err.strip()[-500:]}"
    if count:
        res["connections"] = count_connects(trace, port)
    if raw.exists() and raw.stat().st_size > 0:
        try:
            if tool == "nmap" and starttls:
                svc = ET.fromstring(raw.read_text(errors="replace")).find(".//port/service")
                name = svc.get("name") if svc is not None else None
                res["note"] = f"nmap -sV named the service {name!r}"
                if name != starttls:
                    res["error"] = (f"nmap -sV named the service {name!r}, not {starttls!r}: "
                                    "ssl-enum-ciphers did not upgrade")
            PARSERS[tool](raw.read_text(errors="replace"), res)
            res["ok"] = res["error"] is None
        except Exception as e:  # a parse failure is a harness error: surface it
            res["error"] = f"parse error: {type(e).__name__}: {e}"
            res["ok"] = False
    return res


def _add(res: dict, proto: str, name: str | None = None, code: int | None = None) -> None:
    if code is None:
        code = code_of(name, proto)
    if code is None:
        res["unmapped"].append(f"{proto}:{name}")
        return
    lst = res["ciphers"].setdefault(proto, [])
    if code not in lst:
        lst.append(code)


SSLYZE_KEYS = {"ssl_2_0_cipher_suites": "SSLv2", "ssl_3_0_cipher_suites": "SSLv3",
               "tls_1_0_cipher_suites": "TLSv1.0", "tls_1_1_cipher_suites": "TLSv1.1",
               "tls_1_2_cipher_suites": "TLSv1.2", "tls_1_3_cipher_suites": "TLSv1.3"}


def parse_sslyze(text: str, res: dict) -> None:
    d = json.loads(text)
    results = d.get("server_scan_results") or []
    if not results:
        raise ValueError("no server_scan_results")
    r = results[0]
    if r.get("connectivity_status") != "COMPLETED":
        # sslyze ran but could not complete its connectivity test: that is its finding about the
        # endpoint ("nothing usable"), not a harness failure
        trace = (r.get("connectivity_error_trace") or "").strip().splitlines()
        res["note"] = f"sslyze connectivity {r.get('connectivity_status')}: {trace[-1] if trace else ''}"[:300]
        res["protocols"] = {p: False for p in PROTOCOLS}
        return
    sr = r.get("scan_result") or {}
    for key, proto in SSLYZE_KEYS.items():
        attempt = sr.get(key) or {}
        if attempt.get("status") != "COMPLETED":
            res["protocols"][proto] = None
            continue
        result = attempt["result"]
        accepted = result.get("accepted_cipher_suites") or []
        res["protocols"][proto] = bool(accepted)
        for a in accepted:
            cs = a["cipher_suite"]
            code = code_of(cs["name"], proto)
            if code is None and cs.get("openssl_name"):
                code = code_of(cs["openssl_name"], proto)
            _add(res, proto, cs["name"], code)
        # sslyze reports no cipher preference
        if accepted:
            res["server_preference"][proto] = None


NMAP_PROTOS = {"SSLv3": "SSLv3", "TLSv1.0": "TLSv1.0", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2",
               "TLSv1.3": "TLSv1.3"}


def parse_nmap(text: str, res: dict) -> None:
    root = ET.fromstring(text)
    script = root.find(".//port/script[@id='ssl-enum-ciphers']")
    port_state = root.find(".//port/state")
    if port_state is not None and port_state.get("state") != "open":
        res["error"] = f"nmap saw port {port_state.get('state')}"
        return
    # ssl-enum-ciphers never tests SSLv2 (that is the sslv2 script): None, not False
    for p in NMAP_PROTOS.values():
        res["protocols"][p] = False
    if script is None:
        return  # no TLS version worked at all
    for tbl in script.findall("table"):
        proto = NMAP_PROTOS.get(tbl.get("key"))
        if proto is None:
            continue
        res["protocols"][proto] = True
        ciphers = tbl.find("table[@key='ciphers']")
        for c in (ciphers.findall("table") if ciphers is not None else []):
            name = c.findtext("elem[@key='name']")
            _add(res, proto, name)
        pref = tbl.findtext("elem[@key='cipher preference']")
        res["server_preference"][proto] = {"server": True, "client": False}.get(pref)
        if pref == "server":
            res["order"][proto] = list(res["ciphers"].get(proto, []))


def parse_sslscan(text: str, res: dict) -> None:
    root = ET.fromstring(text)
    test = root.find("ssltest")
    if test is None:
        err = root.findtext("error") or "no <ssltest>"
        res["error"] = f"sslscan: {err.strip()}"
        return
    for p in test.findall("protocol"):
        proto = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1.0": "TLSv1.0", "tls1.1": "TLSv1.1",
                 "tls1.2": "TLSv1.2", "tls1.3": "TLSv1.3"}.get(p.get("type") + p.get("version"))
        if proto:
            res["protocols"][proto] = p.get("enabled") == "1"
    for c in test.findall("cipher"):
        proto = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLSv1.0": "TLSv1.0", "TLSv1.1": "TLSv1.1",
                 "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}.get(c.get("sslversion"))
        if proto is None or c.get("status") not in ("accepted", "preferred"):
            continue
        cid = c.get("id")
        code = int(cid, 16) if cid else None
        _add(res, proto, c.get("cipher"), code)
    # sslscan names a "preferred" suite but does not say whether the server or the client decided
    for proto in res["ciphers"]:
        res["server_preference"][proto] = None


TESTSSL_PROTO_IDS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1",
                     "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}
TESTSSL_CIPHER_PROTO = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLSv1.0", "tls1_1": "TLSv1.1",
                        "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}
TESTSSL_ORDER_PROTO = {"SSLv3": "SSLv3", "TLSv1": "TLSv1.0", "TLSv1_1": "TLSv1.1", "TLSv1_2": "TLSv1.2",
                       "TLSv1_3": "TLSv1.3", "SSLv2": "SSLv2"}


def parse_testssl(text: str, res: dict) -> None:
    findings = json.loads(text)
    if isinstance(findings, dict):  # --jsonfile-pretty shape
        findings = [f for sr in findings.get("scanResult", []) for f in sr.get("protocols", [])]
    res["testssl_notes"] = []
    pref_global = None
    for f in findings:
        fid, finding = f.get("id", ""), f.get("finding", "")
        if fid in TESTSSL_PROTO_IDS:
            proto = TESTSSL_PROTO_IDS[fid]
            low = finding.lower()
            if low.startswith("not offered"):
                res["protocols"][proto] = False
            elif low.startswith("offered"):
                res["protocols"][proto] = True
            else:
                res["protocols"][proto] = None
                res["testssl_notes"].append(f"{fid}: {finding}")
        elif fid.startswith("cipher-"):
            m = re.match(r"cipher-(ssl2|ssl3|tls1|tls1_1|tls1_2|tls1_3)_x([0-9a-fA-F]+)$", fid)
            if m:
                _add(res, TESTSSL_CIPHER_PROTO[m.group(1)], finding, int(m.group(2), 16))
        elif fid == "cipher_order":
            # "server" / "NOT a cipher order configured"; the ids cipher_order_<proto> that follow
            # a client-preference verdict only name the suite testssl's own hello got
            low = finding.lower()
            pref_global = (True if low.startswith("server") else
                           False if low.startswith(("not a cipher order", "client")) else None)
            if pref_global is None:
                res["testssl_notes"].append(f"{fid}: {finding}")
        elif fid.startswith("cipherorder_"):
            proto = TESTSSL_ORDER_PROTO.get(fid[len("cipherorder_"):])
            if proto:
                codes = []
                for name in finding.split():
                    c = code_of(name, proto)
                    if c is None:
                        res["unmapped"].append(f"{proto}:{name}")
                    else:
                        codes.append(c)
                res["order"][proto] = codes
        elif f.get("severity") in ("FATAL",) or fid in ("scanProblem", "engine_problem"):
            res["testssl_notes"].append(f"{fid}: {finding}")
    for proto, on in res["protocols"].items():
        if on and proto not in res["server_preference"]:
            res["server_preference"][proto] = pref_global
    if pref_global is not True:
        # testssl lists a per-protocol order even for client preference (the order its own
        # hello produced): that is not a server order
        res["order"] = {p: o for p, o in res["order"].items() if res["server_preference"].get(p)}


PARSERS = {"sslyze": parse_sslyze, "nmap": parse_nmap, "sslscan": parse_sslscan, "testssl": parse_testssl}


def main() -> int:
    ap = argparse.ArgumentParser(description="Run peer TLS scanners against one loopback endpoint.")
    ap.add_argument("target", help="127.0.0.1:PORT or [::1]:PORT")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--workdir", help="where raw outputs go (default: a temp dir that is kept)")
    ap.add_argument("--no-count", action="store_true", help="do not count connections with strace")
    ap.add_argument("--starttls", choices=STARTTLS, help="upgrade from this plaintext protocol first")
    args = ap.parse_args()
    m = re.match(r"^\[?([^\]]+?)\]?:(\d+)$", args.target)
    if not m:
        ap.error("target must be HOST:PORT")
    host, port = m.group(1), int(m.group(2))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="netsensor-peers-"))
    out = []
    for tool in args.tools.split(","):
        out.append(run_peer(tool, host, port, workdir / tool, count=not args.no_count, starttls=args.starttls))
    print(json.dumps(out, indent=2))
    return 0 if all(r["ok"] or r["error"] and "not installed" in r["error"] for r in out) else 1


if __name__ == "__main__":
    sys.exit(main())
