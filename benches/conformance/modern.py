#!/usr/bin/env python3
"""What today's TLS needs checked (issue 22): our record next to what the peers report.

Starts four `openssl s_server`s on 127.0.0.1 (certificates made with `openssl req` on the spot):
plain (RSA), `-verify 1` (client certificate optional), `-Verify 1` (required) and one holding an
RSA and an ECDSA certificate (`-dcert`). For each it runs `sensor grade -o json --no-vulns`,
sslyze (`--certinfo --resum`, JSON), sslscan, nmap (`ssl-enum-ciphers,ssl-cert`, `-n`) and
testssl.sh (`-S`, under /work/shared/tools/lo-dns.sh), and prints one row per (server, question):
client authentication, certificates held, resumption.

Post-quantum rows (`--only pq`): Debian 12's OpenSSL 3.0 has no ML-KEM, so the servers are the
rustls ones of tests/it/modern.rs, run by `cargo run -p netsensor-testbed --example pq_servers`
(prefers X25519MLKEM768, prefers x25519 with the hybrid second, classical only, X25519MLKEM768
only, MLKEM768 only; each chooses the group in its own order). Per server: the groups each tool
reports, whether it calls the server post-quantum, and the preference. sslyze
(`--elliptic_curves`), sslscan (its key-exchange groups), nmap (`ssl-enum-ciphers`' kex), testssl.sh
(`-f`).

    python3 benches/conformance/modern.py [--only openssl|pq] [--markdown FILE]

A second table, revocation: a CA made with `openssl req`, a leaf it revoked (keyCompromise) whose
AIA names an `openssl ocsp` responder and whose CDP names the CA's CRL (`openssl ca -gencrl`)
served by `python3 -m http.server` on 127.0.0.1, presented by `openssl s_server` with its CA. We
run with `--revocation --revocation-allow 127.0.0.0/8`; sslyze (`--certinfo`) and testssl.sh
(`-S --phone-out --add-ca ca.pem`: its live CRL/OCSP check runs only for a chain it trusts) beside
us.

    python3 benches/conformance/modern.py [--markdown FILE] [--revocation-only]

Our binary: $SENSOR, else $CARGO_TARGET_DIR/debug/sensor. Loopback only; never port 2024.
"""
import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

LO_DNS = "/work/shared/tools/lo-dns.sh"


def free_port() -> int:
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p != 2024:
            return p


def run(cmd, timeout=240):
    t = time.monotonic()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return out.stdout + out.stderr, time.monotonic() - t
    except (subprocess.TimeoutExpired, FileNotFoundError) as e:
        return f"ERROR {e}", time.monotonic() - t


def ours(port):
    sensor = os.environ.get("SENSOR") or str(Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "debug/sensor")
    text, secs = run([sensor, "grade", f"127.0.0.1:{port}", "-o", "json", "--no-vulns"])
    try:
        r = json.loads(text[text.index("{"):])
    except ValueError:
        return {"auth": "n/a", "certs": "n/a", "resume": "n/a"}, secs
    auth = (r.get("client_auth") or {}).get("mode", "n/a")
    cas = (r.get("client_auth") or {}).get("ca_names", [])
    certs = ", ".join(d["key"] for d in r.get("certificate_deployments", [])) or "n/a"
    res = r.get("resumption") or {}
    yn = lambda v: {True: "yes", False: "no", None: "n/a"}[v]
    return {"auth": auth + (f" (CA {cas[0]})" if cas else ""), "certs": certs,
            "resume": f"ticket {yn(res.get('tls13_ticket'))}, id {yn(res.get('tls12_session_id'))}"}, secs


def sslyze(port):
    exe = shutil.which("sslyze") or str(Path.home() / ".cache/bench-tools/venv/bin/sslyze")
    if not Path(exe).exists():
        return {"auth": "not installed", "certs": "not installed", "resume": "not installed"}, 0
    with tempfile.TemporaryDirectory() as d:
        j = Path(d) / "o.json"
        text, secs = run([exe, "--certinfo", "--resum", f"--json_out={j}", "--quiet", f"127.0.0.1:{port}"])
        try:
            doc = json.loads(j.read_text())["server_scan_results"][0]
        except (OSError, ValueError, KeyError, IndexError):
            return {"auth": "error", "certs": "error", "resume": "error"}, secs
    auth = ((doc.get("connectivity_result") or {}).get("client_auth_requirement") or "n/a").lower()
    sc = (doc.get("scan_result") or {})
    ci = ((sc.get("certificate_info") or {}).get("result") or {})
    deps = ci.get("certificate_deployments") or []
    keys = []
    for dep in deps:
        leaf = (dep.get("received_certificate_chain") or [{}])[0]
        pk = leaf.get("public_key") or {}
        keys.append(f"{pk.get('algorithm', '?')} {pk.get('key_size', '')}".strip())
    rs = ((sc.get("session_resumption") or {}).get("result") or {})
    tick = rs.get("tls_ticket_resumption_result")
    ids = rs.get("session_id_resumption_result")
    status = (sc.get("certificate_info") or {}).get("status")
    return {"auth": auth, "certs": ", ".join(keys) or f"none ({status})",
            "resume": f"ticket {tick or 'n/a'}, id {ids or 'n/a'}"}, secs


def sslscan(port):
    text, secs = run(["sslscan", "--no-colour", "--show-certificate", f"127.0.0.1:{port}"])
    keys = re.findall(r"(RSA|ECC) Key Strength:\s+(\d+)", text)
    auth = "required/optional not reported"
    if re.search(r"(?i)client certificate|acceptable client", text):
        auth = "mentions client certificate"
    rejected = len(re.findall(r"(?i)rejected", text))
    acc = len(re.findall(r"(?m)^(Preferred|Accepted)\s", text))
    return {"auth": f"{auth}; {acc} suites accepted", "certs": ", ".join(f"{a} {b}" for a, b in keys) or "none shown",
            "resume": "not checked"}, secs


def nmap(port):
    text, secs = run(["nmap", "-n", "-Pn", "-p", str(port), "--script", "ssl-enum-ciphers,ssl-cert", "127.0.0.1"])
    keys = re.findall(r"Public Key type: (\w+)\s*\n\|\s*Public Key bits: (\d+)", text)
    suites = len(re.findall(r"TLS_\w+ \(", text))
    return {"auth": f"not checked; {suites} suite lines", "certs": ", ".join(f"{a} {b}" for a, b in keys) or "none shown",
            "resume": "not checked"}, secs


def testssl(port):
    exe = shutil.which("testssl") or shutil.which("testssl.sh")
    if not exe:
        return {"auth": "not installed", "certs": "not installed", "resume": "not installed"}, 0
    cmd = [exe, "-S", "--color", "0", "--warnings", "off", f"127.0.0.1:{port}"]
    if Path(LO_DNS).exists():
        cmd = ["bash", LO_DNS] + cmd
    text, secs = run(cmd, timeout=300)
    m = re.search(r"Client Authentication\s+(.+)", text)
    n = re.findall(r"Server key size\s+(\w+ \d+)", text) or re.findall(r"Server key size\s+(.+)", text)
    r = re.search(r"Session Resumption\s+(.+)", text)
    return {"auth": m.group(1).strip() if m else "not shown", "certs": ", ".join(x.strip() for x in n) or "none shown",
            "resume": r.group(1).strip() if r else "not shown"}, secs


def sensor_bin():
    return os.environ.get("SENSOR") or str(Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "debug/sensor")


def pq_ours(port):
    text, secs = run([sensor_bin(), "grade", f"127.0.0.1:{port}", "-o", "json", "--no-vulns"])
    try:
        r = json.loads(text[text.index("{"):])
    except ValueError:
        return {"groups": "error", "pq": "error", "pref": "error"}, secs
    kx = r.get("key_exchange") or {}
    pq = kx.get("post_quantum")
    only = " (PQ only)" if kx.get("pq_only") else ""
    group = (r.get("handshake") or {}).get("group")
    return {"groups": ", ".join(kx.get("groups", [])) or "none",
            "pq": {True: "yes", False: "no", None: "n/a"}[pq] + only,
            "pref": f"{kx.get('pq_preference') or '-'}; our handshake got {group or '-'}"}, secs


def pq_sslyze(port):
    exe = shutil.which("sslyze") or str(Path.home() / ".cache/bench-tools/venv/bin/sslyze")
    if not Path(exe).exists():
        return {"groups": "not installed", "pq": "not installed", "pref": "not installed"}, 0
    with tempfile.TemporaryDirectory() as d:
        j = Path(d) / "o.json"
        text, secs = run([exe, "--elliptic_curves", f"--json_out={j}", "--quiet", f"127.0.0.1:{port}"])
        try:
            doc = json.loads(j.read_text())["server_scan_results"][0]
        except (OSError, ValueError, KeyError, IndexError):
            return {"groups": "error", "pq": "error", "pref": "error"}, secs
    if doc.get("connectivity_status") != "COMPLETED":
        err = re.findall(r"sslyze\.errors\.(\w+)", doc.get("connectivity_error_trace") or "")
        why = "could not connect" + (f" ({err[-1]})" if err else "")
        return {"groups": why, "pq": "not checked", "pref": "not checked"}, secs
    ec = (((doc.get("scan_result") or {}).get("elliptic_curves") or {}).get("result") or {})
    names = [c.get("name", "?") for c in ec.get("supported_curves", [])]
    return {"groups": ", ".join(names) or "none", "pq": "not checked", "pref": "not checked"}, secs


def pq_sslscan(port):
    text, secs = run(["sslscan", "--no-colour", f"127.0.0.1:{port}"])
    m = re.search(r"Server Key Exchange Group\(s\):\n((?:.+\n)+)", text)
    groups = []
    for line in (m.group(1).splitlines() if m else []):
        g = re.match(r"\s*TLSv1\.\d\s+\d+ bits\s+(\S+)", line)
        if g and g.group(1) not in groups:
            groups.append(g.group(1))
    failed = "Connection failed" in text or "Certificate information cannot be retrieved" in text
    shown = ", ".join(groups) or ("none (connection failed)" if failed else "none shown")
    return {"groups": shown, "pq": "not checked", "pref": "not checked"}, secs


def pq_nmap(port):
    text, secs = run(["nmap", "-n", "-Pn", "-p", str(port), "--script", "ssl-enum-ciphers", "127.0.0.1"])
    kex = sorted(set(re.findall(r"TLS_\w+ \((\w+)\)", text)))
    return {"groups": ", ".join(kex) or "no suites shown", "pq": "not checked", "pref": "not checked"}, secs


def pq_testssl(port):
    exe = shutil.which("testssl") or shutil.which("testssl.sh")
    if not exe:
        return {"groups": "not installed", "pq": "not installed", "pref": "not installed"}, 0
    cmd = [exe, "-f", "--color", "0", "--warnings", "off", f"127.0.0.1:{port}"]
    if Path(LO_DNS).exists():
        cmd = ["bash", LO_DNS] + cmd
    text, secs = run(cmd, timeout=300)
    found = re.findall(r"(Elliptic curves offered|KEMs offered|Finite field group)[:\s]+(.+)", text)
    groups = "; ".join(f"{a}: {b.strip()}" for a, b in found)
    if not groups:
        m = re.search(r"(?i)(doesn't seem to be a TLS/SSL enabled server|can't connect|no cipher.*)", text)
        groups = m.group(1).strip() if m else "none shown"
    return {"groups": groups, "pq": "not checked", "pref": "not checked"}, secs


def pq_rows():
    exe = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "debug/examples/pq_servers"
    if not exe.exists():
        subprocess.run(["cargo", "build", "-p", "netsensor-testbed", "--example", "pq_servers"], check=True)
    proc = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    ports = {}
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
            name, port = line.rstrip("\n").split("\t")
            ports[name] = int(port)
        tools = [("netsensor", pq_ours), ("sslyze", pq_sslyze), ("sslscan", pq_sslscan), ("nmap", pq_nmap),
                 ("testssl.sh", pq_testssl)]
        rows = []
        for name, port in ports.items():
            for tool, fn in tools:
                got, secs = fn(port)
                rows.append((name, tool, got["groups"], got["pq"], got["pref"], f"{secs:.1f}"))
                print(" | ".join(rows[-1]), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    head = ("| server | tool | groups reported | post-quantum | PQ preference | seconds |\n"
            "|---|---|---|---|---|---|\n")
    return head + "".join("| " + " | ".join(r) + " |\n" for r in rows)


def revocation_table():
    """The revoked leaf, asked live: ours, sslyze, testssl.sh."""
    work = Path(tempfile.mkdtemp(prefix="revocation-"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    def ossl(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=work)
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Bench Revocation CA", "-days", "30",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ocsp_port, crl_port, tls_port = free_port(), free_port(), free_port()
    (work / "leaf.cnf").write_text(
        "subjectAltName=DNS:revoked.test\n"
        f"authorityInfoAccess=OCSP;URI:http://127.0.0.1:{ocsp_port}/\n"
        f"crlDistributionPoints=URI:http://127.0.0.1:{crl_port}/ca.crl\n")
    ossl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=revoked.test")
    ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x1002",
         "-days", "20", "-extfile", "leaf.cnf", "-out", "leaf.pem")
    (work / "index.txt").write_text("R\t301231000000Z\t261101000000Z,keyCompromise\t1002\tunknown\t/CN=revoked.test\n")
    (work / "crlnumber").write_text("01\n")
    (work / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n"
                                 "default_md = sha256\ndefault_crl_days = 7\ncertificate = ca.pem\nprivate_key = ca.key\n")
    ossl("ca", "-gencrl", "-config", "ca.cnf", "-out", "ca.crl.pem")
    ossl("crl", "-in", "ca.crl.pem", "-outform", "DER", "-out", "ca.crl")
    procs = []
    rows = []
    try:
        # openssl ocsp binds every address (OpenSSL 3.0 takes no host): a free port, asked on 127.0.0.1 only.
        procs.append(subprocess.Popen(["openssl", "ocsp", "-port", str(ocsp_port), "-index", "index.txt", "-CA", "ca.pem",
                                       "-rsigner", "ca.pem", "-rkey", "ca.key", "-nmin", "60", "-ignore_err"],
                                      cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(crl_port)],
                                      cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{tls_port}", "-cert", "leaf.pem",
                                       "-key", "leaf.key", "-cert_chain", "ca.pem", "-www", "-quiet"],
                                      cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        sensor = os.environ.get("SENSOR") or str(Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "debug/sensor")
        text, secs = run([sensor, "grade", f"127.0.0.1:{tls_port}", "-o", "json", "--no-vulns", "--ca-bundle",
                          str(work / "ca.pem"), "--revocation", "--revocation-allow", "127.0.0.0/8"])
        try:
            r = json.loads(text[text.index("{"):])
            v = r.get("revocation") or {}
            said = (f"{v.get('status')} via {v.get('source')} {v.get('url')}, since {v.get('revoked_at')} "
                    f"({v.get('reason')}); grade {(r.get('grade') or {}).get('letter')}")
        except ValueError:
            said = "error: " + text[:200]
        rows.append(("netsensor", said, f"{secs:.1f}"))
        exe = shutil.which("sslyze") or str(Path.home() / ".cache/bench-tools/venv/bin/sslyze")
        if Path(exe).exists():
            j = work / "sslyze.json"
            text, secs = run([exe, "--certinfo", f"--json_out={j}", "--quiet", f"127.0.0.1:{tls_port}"])
            try:
                doc = json.loads(j.read_text())["server_scan_results"][0]
                dep = doc["scan_result"]["certificate_info"]["result"]["certificate_deployments"][0]
                said = (f"ocsp_response {dep.get('ocsp_response')!s:.40} (stapled only); "
                        f"ocsp_response_is_trusted {dep.get('ocsp_response_is_trusted')}")
            except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
                said = f"error {e}"
            rows.append(("sslyze", said, f"{secs:.1f}"))
        exe = shutil.which("testssl") or shutil.which("testssl.sh")
        if exe:
            cmd = [exe, "-S", "--phone-out", "--add-ca", str(work / "ca.pem"), "--color", "0", "--warnings", "off", f"127.0.0.1:{tls_port}"]
            if Path(LO_DNS).exists():
                cmd = ["bash", LO_DNS] + cmd
            text, secs = run(cmd, timeout=300)
            got = [m.strip() for m in re.findall(r"(?m)^\s*(Certificate Revocation List.*|OCSP URI.*|Overall Grade.*)$", text)]
            rows.append(("testssl.sh", "; ".join(re.sub(r"\s+", " ", g) for g in got) or "not shown", f"{secs:.1f}"))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=5)
    for r in rows:
        print(" | ".join(r), flush=True)
    head = "| tool (revoked leaf, live check) | says | seconds |\n|---|---|---|\n"
    return head + "".join("| " + " | ".join(r) + " |\n" for r in rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--markdown")
    ap.add_argument("--only", choices=["openssl", "pq"])
    ap.add_argument("--revocation-only", action="store_true")
    args = ap.parse_args()
    if args.revocation_only:
        table = revocation_table()
        print(table)
        if args.markdown:
            Path(args.markdown).write_text(table)
        return 0
    pq_table = ""
    if args.only in (None, "pq"):
        pq_table = pq_rows()
        print(pq_table)
    if args.only == "pq":
        if args.markdown:
            Path(args.markdown).write_text(pq_table)
        return 0
    work = Path(tempfile.mkdtemp(prefix="modern-"))
    def req(name, alg):
        subprocess.run(["openssl", "req", "-x509", "-newkey", *alg, "-nodes", "-keyout", str(work / f"{name}.key"),
                        "-out", str(work / f"{name}.pem"), "-subj", "/CN=modern.test", "-days", "2"],
                       check=True, capture_output=True)
    req("rsa", ["rsa:2048"])
    req("ec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
    base = ["-cert", str(work / "rsa.pem"), "-key", str(work / "rsa.key"), "-www", "-quiet"]
    ca = ["-CAfile", str(work / "rsa.pem")]
    servers = {
        "plain": [],
        "verify-1 (optional)": ["-verify", "1", *ca],
        "Verify-1 (required)": ["-Verify", "1", *ca],
        "RSA + ECDSA (-dcert)": ["-dcert", str(work / "ec.pem"), "-dkey", str(work / "ec.key")],
    }
    procs, ports = [], {}
    try:
        for name, extra in servers.items():
            port = free_port()
            procs.append(subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", *base, *extra],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            ports[name] = port
        time.sleep(1.0)
        tools = [("netsensor", ours), ("sslyze", sslyze), ("sslscan", sslscan), ("nmap", nmap), ("testssl.sh", testssl)]
        rows = []
        for name, port in ports.items():
            for tool, fn in tools:
                got, secs = fn(port)
                rows.append((name, tool, got["auth"], got["certs"], got["resume"], f"{secs:.1f}"))
                print(" | ".join(rows[-1]), flush=True)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=5)
    head = "| server | tool | client authentication | certificates held | resumption | seconds |\n|---|---|---|---|---|---|\n"
    table = head + "".join("| " + " | ".join(r) + " |\n" for r in rows)
    table += "\n" + revocation_table()
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + ("\n" + pq_table if pq_table else ""))


if __name__ == "__main__":
    sys.exit(main())
