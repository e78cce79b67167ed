#!/usr/bin/env python3
"""Conformance testbed: TLS servers with known configurations on 127.0.0.1.

Generates a throwaway PKI with `openssl` (root CA -> intermediate -> leaves: RSA-2048, ECDSA P-256,
and RSA-1024 for the legacy server), starts a named set of servers on free loopback ports and
returns a JSON manifest

    [{"name", "host", "port", "software", "why", "expect": {"protocols", "ciphers",
      "server_preference", "note"}}]

`expect` is derived from each server's *configuration* (the cipher string expanded by the same
OpenSSL that runs the server with `openssl ciphers -s -<version>`, gnutls's own `gnutls-cli -l` for
the gnutls priority string), filtered by what the server's certificate can authenticate. It is the
answer key the peer tools and our `sensor grade` are compared against. Where a configuration makes
the order meaningful (server preference) the lists are in the server's order; otherwise sorted.

Usage:
    python3 benches/conformance/testbed.py            # start all, print manifest, stop
    python3 benches/conformance/testbed.py --keep     # ... and keep them up until Ctrl-C
    python3 benches/conformance/testbed.py --only openssl-ecdsa,nginx-rsa-static --keep

As a library (compare.py):
    tb = Testbed(names=None); manifest = tb.start(); ...; tb.stop()   # or `with Testbed() as tb:`

STARTTLS endpoints (starttls-smtp, -imap, -pop3: starttls_server.py, Python's `ssl`) carry
"starttls": "smtp"|"imap"|"pop3" in the manifest (null for direct TLS): the protocol a client must
speak before the handshake.

NETWORK: every server binds 127.0.0.1 only, except gnutls-serv, which has no bind-address option
and listens on all addresses: it gets a free high port and is only ever talked to on 127.0.0.1.
Stdlib only (Python 3.11).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
PROTOCOLS = ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
TLS13_ALL = ("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
             "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256")
LEGACY_PROVIDERS = ["-provider", "legacy", "-provider", "default"]
START_TIMEOUT = 15.0  # seconds a server gets to accept on its port
DEFAULT_DH_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "netsensor-conformance-dh"

# Deliberate server orders: weak/odd suites first, so a tool that reports "the client's order"
# (strong first, as every client sends) is visibly wrong on a server-preference endpoint.
SERVERPREF_TLS12 = ("AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:"
                    "ECDHE-RSA-CHACHA20-POLY1305:AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA")
SERVERPREF_TLS13 = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
GNUTLS_PRIORITY = "NORMAL:+3DES-CBC:+ARCFOUR-128:+RSA:+VERS-TLS1.0:+VERS-TLS1.1:+SHA1:+MD5"
NGINX_ECDSA_TLS12 = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"
STARTTLS_SMTP_TLS12 = ("ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256:"
                       "ECDHE-RSA-CHACHA20-POLY1305")
STARTTLS_IMAP_TLS12 = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256"
STARTTLS_POP3_TLS12 = "ECDHE-RSA-AES256-GCM-SHA384:AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256"
NGINX_ECDSA_TLS13 = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"


def log(msg: str) -> None:
    print(f"[testbed] {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(cmd, **kw)


# --------------------------------------------------------------------------------------------
# PKI
# --------------------------------------------------------------------------------------------

@dataclass
class Pki:
    dir: Path
    root: Path = field(init=False)
    inter: Path = field(init=False)
    leaves: dict = field(default_factory=dict)  # kind -> (cert, key, chain)
    dh: dict = field(default_factory=dict)      # bits -> path

    def generate(self, dh_cache: Path) -> "Pki":
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        ext = d / "ext.cnf"
        ext.write_text(
            "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
            "subjectKeyIdentifier=hash\n"
            "[inter]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
            "[leaf]\nbasicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,DNS:testbed.invalid,IP:127.0.0.1\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        self.root = d / "root.pem"
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "root.key"),
             "-out", str(self.root), "-days", "30", "-subj", "/CN=netsensor conformance root",
             "-config", "/dev/null", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"], env=_env_noconf())
        self.inter = d / "inter.pem"
        self._sign("inter", ["rsa:2048"], d / "root.key", self.root, "inter",
                   "/CN=netsensor conformance intermediate", out=self.inter)
        for kind, newkey in (("rsa2048", ["rsa:2048"]),
                             ("rsa1024", ["rsa:1024"]),
                             ("ecdsa", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
            cert = d / f"{kind}.pem"
            self._sign(kind, newkey, d / "inter.key", self.inter, "leaf", f"/CN=localhost/O={kind}",
                       out=cert)
            chain = d / f"{kind}-chain.pem"
            chain.write_text(cert.read_text() + self.inter.read_text())
            self.leaves[kind] = (cert, d / f"{kind}.key", chain)
        # DH parameters are slow to make (seconds for 1024, up to a minute for 2048): cache them
        # across runs in dh_cache, copy into the run's temp dir.
        dh_cache.mkdir(parents=True, exist_ok=True)
        for bits in (1024, 2048):
            cached = dh_cache / f"dh{bits}.pem"
            if not cached.exists() or cached.stat().st_size == 0:
                log(f"generating {bits}-bit DH parameters (cached in {dh_cache})")
                tmp = cached.with_suffix(".tmp")
                run(["openssl", "dhparam", "-out", str(tmp), str(bits)], timeout=600)
                tmp.replace(cached)
            dst = d / f"dh{bits}.pem"
            shutil.copyfile(cached, dst)
            self.dh[bits] = dst
        return self

    def _sign(self, name, newkey, ca_key, ca_cert, ext_section, subj, out):
        d = self.dir
        key, csr = d / f"{name}.key", d / f"{name}.csr"
        run(["openssl", "req", "-new", "-newkey", *newkey, "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", subj, "-config", "/dev/null"], env=_env_noconf())
        run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(out), "-days", "30", "-sha256",
             "-extfile", str(d / "ext.cnf"), "-extensions", ext_section])


def _env_noconf() -> dict:
    env = dict(os.environ)
    env.pop("OPENSSL_CONF", None)
    return env


# --------------------------------------------------------------------------------------------
# Expectations from configuration
# --------------------------------------------------------------------------------------------

_OSSL_VERSION_FLAG = {"TLSv1.0": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}


def openssl_expected(cipher: str, ciphersuites: str | None, protocols: list[str], auth: set[str],
                     providers: bool = False) -> dict[str, list[int]]:
    """Suites this OpenSSL would negotiate per protocol for a cipher string, limited to suites the
    certificate can authenticate (auth: {"RSA", "None"} for an RSA leaf with anonymous allowed...)
    and key exchanges that need nothing we did not configure (no PSK, SRP, static DH, GOST).
    Order = the cipher string's order (the server's order when it prefers its own)."""
    out: dict[str, list[int]] = {}
    for proto in protocols:
        cmd = ["openssl", "ciphers", *(LEGACY_PROVIDERS if providers else []), "-s",
               _OSSL_VERSION_FLAG[proto], "-V", "-stdname"]
        if ciphersuites is not None:
            cmd += ["-ciphersuites", ciphersuites]
        cmd.append(cipher)
        res = run(cmd, check=False)
        codes = []
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) < 8 or not parts[0].startswith("0x"):
                continue
            hi, lo = parts[0].split(",")
            code = (int(hi, 16) << 8) | int(lo, 16)
            minver = parts[5]
            kx = parts[6].removeprefix("Kx=")
            au = parts[7].removeprefix("Au=")
            is13 = minver == "TLSv1.3"
            if (proto == "TLSv1.3") != is13:
                continue
            if not is13 and (au not in auth or kx not in {"RSA", "DH", "ECDH"}):
                continue
            codes.append(code)
        out[proto] = codes
    return out


def gnutls_expected(priority: str, protocols: list[str], cert_kind: str) -> dict[str, list[int]]:
    """From `gnutls-cli --priority P -l`: suite, code, minimum version. An RSA certificate
    cannot serve ECDSA suites (and vice versa). gnutls marks CBC/RC4 suites 'TLS1.0' (usable up to
    TLS 1.2), AEAD ones 'TLS1.2', TLS 1.3 ones 'TLS1.3'."""
    res = run(["gnutls-cli", "--priority", priority, "-l"])
    rank = {"SSL3.0": 0, "TLS1.0": 1, "TLS1.1": 2, "TLS1.2": 3, "TLS1.3": 4}
    prank = {"TLSv1.0": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}
    suites = []
    for line in res.stdout.splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) == 4 and parts[1].startswith("0x") and parts[3] in rank:
            name = parts[0]
            code = (int(parts[1], 16) << 8) | int(parts[2], 16)
            if cert_kind == "rsa" and "_ECDSA_" in name:
                continue
            if cert_kind == "ecdsa" and "_RSA_" in name:
                continue
            suites.append((code, rank[parts[3]]))
    out = {}
    for proto in protocols:
        r = prank[proto]
        if r == 4:
            out[proto] = sorted(c for c, m in suites if m == 4)
        else:
            out[proto] = sorted(c for c, m in suites if m <= r and m != 4)
    return out


def protocol_map(enabled: list[str]) -> dict[str, bool]:
    return {p: p in enabled for p in PROTOCOLS}


# --------------------------------------------------------------------------------------------
# Server definitions
# --------------------------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    software: str
    why: str
    all_addresses: bool = False  # binds every address (gnutls-serv): needs a port free everywhere
    port: int = 0
    proc: subprocess.Popen | None = None
    workdir: Path | None = None
    expect: dict = field(default_factory=dict)

    # filled by subclasses
    def command(self, pki: Pki) -> list[str]:
        raise NotImplementedError

    def expectation(self) -> dict:
        raise NotImplementedError

    def stop_signal(self) -> int:
        return signal.SIGTERM


@dataclass
class OpenSSLServer(Server):
    cipher: str = ""
    ciphersuites: str | None = None
    leaf: str = "rsa2048"
    dh: int | None = None
    flags: tuple = ()
    protocols: tuple = ("TLSv1.2", "TLSv1.3")
    serverpref: bool = False
    providers: bool = False
    sni_strict: bool = False  # fatal unrecognized_name for any SNI but "localhost" (none is fine)

    def command(self, pki: Pki) -> list[str]:
        cert, key, _chain = pki.leaves[self.leaf]
        cmd = ["openssl", "s_server", *(LEGACY_PROVIDERS if self.providers else []),
               "-accept", f"{HOST}:{self.port}", "-cert", str(cert), "-key", str(key),
               "-cert_chain", str(pki.inter), "-www", "-quiet", "-cipher", self.cipher]
        if self.ciphersuites is not None:
            cmd += ["-ciphersuites", self.ciphersuites]
        if self.dh:
            cmd += ["-dhparam", str(pki.dh[self.dh])]
        if self.serverpref:
            cmd.append("-serverpref")
        if self.sni_strict:
            cmd += ["-cert2", str(cert), "-key2", str(key), "-servername", "localhost", "-servername_fatal"]
        cmd += list(self.flags)
        return cmd

    def expectation(self) -> dict:
        auth = {"ECDSA"} if self.leaf == "ecdsa" else {"RSA"}
        auth.add("None")  # anonymous suites: only present when the cipher string enables them
        ciphers = openssl_expected(self.cipher, self.ciphersuites, list(self.protocols), auth, self.providers)
        if not self.serverpref:
            ciphers = {p: sorted(c) for p, c in ciphers.items()}
        return {"protocols": protocol_map(list(self.protocols)), "ciphers": ciphers,
                "server_preference": {p: self.serverpref for p in self.protocols}}


@dataclass
class NginxServer(Server):
    leaf: str = "rsa2048"
    ssl_protocols: str = "TLSv1.2"
    ssl_ciphers: str = ""
    tls13_suites: str | None = None
    prefer_server: bool = False
    nginx_protocols: tuple = ("TLSv1.2",)

    def command(self, pki: Pki) -> list[str]:
        _cert, key, chain = pki.leaves[self.leaf]
        d = self.workdir
        for sub in ("logs", "tmp"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf13 = f"    ssl_conf_command Ciphersuites {self.tls13_suites};\n" if self.tls13_suites else ""
        conf = d / "nginx.conf"
        conf.write_text(
            f"{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log warn;\n"
            "events { worker_connections 256; }\n"
            "http {\n  access_log off;\n"
            f"  client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;\n"
            f"  fastcgi_temp_path {d}/tmp/fastcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;\n"
            "  server {\n"
            f"    listen {HOST}:{self.port} ssl;\n"
            f"    ssl_certificate {chain};\n    ssl_certificate_key {key};\n"
            f"    ssl_protocols {self.ssl_protocols};\n    ssl_ciphers {self.ssl_ciphers};\n"
            f"{conf13}"
            f"    ssl_prefer_server_ciphers {'on' if self.prefer_server else 'off'};\n"
            "    location / { return 200 \"ok\\n\"; }\n  }\n}\n")
        return ["nginx", "-p", str(d), "-e", str(d / "logs" / "error.log"), "-c", str(conf),
                "-g", "daemon off;"]

    def expectation(self) -> dict:
        auth = {"ECDSA"} if self.leaf == "ecdsa" else {"RSA"}
        # nginx sets no DH parameters unless ssl_dhparam is given: DHE suites are never chosen.
        ciphers = openssl_expected(self.ssl_ciphers, self.tls13_suites, list(self.nginx_protocols), auth)
        if "TLSv1.3" in self.nginx_protocols and self.tls13_suites is None:
            ciphers["TLSv1.3"] = [0x1302, 0x1303, 0x1301]
        if not self.prefer_server:
            ciphers = {p: sorted(c) for p, c in ciphers.items()}
        return {"protocols": protocol_map(list(self.nginx_protocols)), "ciphers": ciphers,
                "server_preference": {p: self.prefer_server for p in self.nginx_protocols}}


@dataclass
class GnutlsServer(Server):
    priority: str = GNUTLS_PRIORITY
    leaf: str = "rsa2048"
    protocols: tuple = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")

    def command(self, pki: Pki) -> list[str]:
        _cert, key, chain = pki.leaves[self.leaf]
        return ["gnutls-serv", "--http", "--quiet", "--port", str(self.port), "--priority", self.priority,
                "--x509certfile", str(chain), "--x509keyfile", str(key), "--dhparams", str(pki.dh[2048]),
                "--disable-client-cert"]

    def expectation(self) -> dict:
        kind = "ecdsa" if self.leaf == "ecdsa" else "rsa"
        ciphers = gnutls_expected(self.priority, list(self.protocols), kind)
        # no %SERVER_PRECEDENCE in the priority string: gnutls follows the client's order
        return {"protocols": protocol_map(list(self.protocols)), "ciphers": ciphers,
                "server_preference": {p: False for p in self.protocols}}


@dataclass
class StarttlsServer(Server):
    """starttls_server.py: a plaintext protocol upgraded with STARTTLS, TLS by Python's `ssl`
    (the system OpenSSL). TLS 1.2 suites = the cipher string; TLS 1.3 = OpenSSL's default three."""
    starttls: str = "smtp"
    cipher: str = ""
    leaf: str = "rsa2048"
    serverpref: bool = True
    protocols: tuple = ("TLSv1.2", "TLSv1.3")

    def command(self, pki: Pki) -> list[str]:
        _cert, key, chain = pki.leaves[self.leaf]
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "starttls_server.py"),
               "--proto", self.starttls, "--port", str(self.port), "--cert", str(chain), "--key", str(key),
               "--ciphers", self.cipher]
        if not self.serverpref:
            cmd.append("--clientpref")
        if "TLSv1.3" not in self.protocols:
            cmd.append("--max-tls12")
        return cmd

    def expectation(self) -> dict:
        auth = {"ECDSA"} if self.leaf == "ecdsa" else {"RSA"}
        auth.add("None")
        # no load_dh_params: DHE suites are never chosen (excluded from the strings below anyway);
        # TLS 1.3: ciphersuites=None -> `openssl ciphers -s -tls1_3` lists the defaults in order
        ciphers = openssl_expected(self.cipher, None, list(self.protocols), auth)
        if not self.serverpref:
            ciphers = {p: sorted(c) for p, c in ciphers.items()}
        return {"protocols": protocol_map(list(self.protocols)), "ciphers": ciphers,
                "server_preference": {p: self.serverpref for p in self.protocols}}


def server_catalogue() -> list[Server]:
    return [
        OpenSSLServer(
            name="openssl-all-legacy", software="openssl s_server",
            why="Everything Debian's OpenSSL 3 can still serve at SECLEVEL 0 with the legacy provider: "
                "TLS 1.0-1.3, NULL, anonymous ADH/AECDH, SEED, CAMELLIA, ARIA, CCM/CCM8, CBC, static RSA, "
                "DHE with 1024-bit DH. The widest enumeration target: finds suites a tool does not "
                "offer (sslyze misses 0x00BF/0x00C5) and checks TLS 1.3 CCM suites.",
            cipher="ALL:COMPLEMENTOFALL:@SECLEVEL=0", ciphersuites=TLS13_ALL, dh=1024, providers=True,
            protocols=("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
        OpenSSLServer(
            name="openssl-tls10-11-only", software="openssl s_server",
            why="A legacy-only server (TLS 1.0/1.1, RSA-1024 leaf, 2048-bit DHE): tools that build their "
                "hellos with a SECLEVEL>0 OpenSSL, or that assume TLS 1.2 exists, go wrong here "
                "(testssl.sh needs a SECLEVEL-0 config).",
            cipher="ALL:@SECLEVEL=0", ciphersuites=None, leaf="rsa1024", dh=2048, providers=True,
            flags=("-no_tls1_2", "-no_tls1_3"), protocols=("TLSv1.0", "TLSv1.1")),
        OpenSSLServer(
            name="openssl-tls13-only", software="openssl s_server",
            why="TLS 1.3 only with a chosen subset including TLS_AES_128_CCM_SHA256 (0x1304), which "
                "few clients offer; TLS 1.2-and-below hellos must fail.",
            cipher="DEFAULT", ciphersuites="TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
                                           "TLS_AES_128_CCM_SHA256",
            flags=("-tls1_3",), protocols=("TLSv1.3",)),
        OpenSSLServer(
            name="openssl-serverpref", software="openssl s_server",
            why="Server cipher preference with a deliberately odd order (AES128-SHA first, TLS 1.3 "
                "AES-128 first): checks preference detection and that the reported order is the "
                "server's, not the client's.",
            cipher=SERVERPREF_TLS12, ciphersuites=SERVERPREF_TLS13, dh=2048, serverpref=True,
            flags=("-no_tls1", "-no_tls1_1"), protocols=("TLSv1.2", "TLSv1.3")),
        OpenSSLServer(
            name="openssl-clientpref", software="openssl s_server",
            why="Same suites as openssl-serverpref without -serverpref: the server follows the client, "
                "so a tool must report client preference (no order).",
            cipher=SERVERPREF_TLS12, ciphersuites=SERVERPREF_TLS13, dh=2048, serverpref=False,
            flags=("-no_tls1", "-no_tls1_1"), protocols=("TLSv1.2", "TLSv1.3")),
        OpenSSLServer(
            name="openssl-ecdsa", software="openssl s_server",
            why="ECDSA P-256 leaf with every ECDHE-ECDSA suite (GCM, CHACHA20, CBC, CCM, CAMELLIA, ARIA): "
                "RSA-only hellos fail here; checks auth-type handling.",
            cipher="ECDHE+aECDSA:@SECLEVEL=0", ciphersuites=None, leaf="ecdsa",
            flags=("-no_tls1", "-no_tls1_1"), protocols=("TLSv1.2", "TLSv1.3")),
        OpenSSLServer(
            name="openssl-sni-strict", software="openssl s_server",
            why="Answers a ClientHello without SNI or with SNI 'localhost', and sends a fatal "
                "unrecognized_name alert for any other name - including an IP literal, which RFC 6066 "
                "forbids as SNI (tlslite-ng and some real servers behave so). A tool that puts the "
                "address in SNI (sslyze, sslscan) sees nothing here.",
            cipher="ECDHE-RSA-AES128-GCM-SHA256:AES256-SHA", ciphersuites=None, sni_strict=True,
            flags=("-no_tls1", "-no_tls1_1"), protocols=("TLSv1.2", "TLSv1.3")),
        NginxServer(
            name="nginx-rsa-static", software="nginx",
            why="A real web server with only two static-RSA suites (no forward secrecy), TLS 1.2 only, "
                "client preference.",
            ssl_ciphers="AES128-SHA:AES256-GCM-SHA384", ssl_protocols="TLSv1.2",
            nginx_protocols=("TLSv1.2",)),
        NginxServer(
            name="nginx-ecdsa-modern", software="nginx",
            why="A modern nginx: ECDSA leaf, TLS 1.2 + 1.3, ssl_prefer_server_ciphers on with a "
                "deliberate order for both versions (CHACHA20 first in TLS 1.3).",
            leaf="ecdsa", ssl_protocols="TLSv1.2 TLSv1.3", ssl_ciphers=NGINX_ECDSA_TLS12,
            tls13_suites=NGINX_ECDSA_TLS13, prefer_server=True,
            nginx_protocols=("TLSv1.2", "TLSv1.3")),
        GnutlsServer(
            name="gnutls-rc4-3des", software="gnutls-serv",
            why="RC4 and 3DES (and RC4-MD5), which Debian's OpenSSL 3 cannot serve at all; a second TLS "
                "implementation whose version negotiation and alerts differ from OpenSSL's.",
            all_addresses=True),
        StarttlsServer(
            name="starttls-smtp", software="python ssl", starttls="smtp",
            why="SMTP with STARTTLS (RFC 3207) on a non-standard port: the tool must be told to "
                "upgrade. Server preference with a deliberate order (CBC first, static RSA in the "
                "middle) in TLS 1.2, OpenSSL's default three in TLS 1.3.",
            cipher=STARTTLS_SMTP_TLS12, serverpref=True),
        StarttlsServer(
            name="starttls-imap", software="python ssl", starttls="imap",
            why="IMAP with STARTTLS (RFC 9051), client preference, ECDSA leaf, TLS 1.2 + 1.3.",
            cipher=STARTTLS_IMAP_TLS12, leaf="ecdsa", serverpref=False),
        StarttlsServer(
            name="starttls-pop3", software="python ssl", starttls="pop3",
            why="POP3 with STLS (RFC 2595), TLS 1.2 only, server preference.",
            cipher=STARTTLS_POP3_TLS12, serverpref=True, protocols=("TLSv1.2",)),
    ]


# --------------------------------------------------------------------------------------------
# Ports and processes
# --------------------------------------------------------------------------------------------

def free_port(all_addresses: bool = False) -> int:
    """A port free on 127.0.0.1 (and, for servers that bind every address, on 0.0.0.0 and ::)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port < 20000:
            continue
        if not all_addresses:
            return port
        ok = True
        for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            try:
                with socket.socket(fam, socket.SOCK_STREAM) as s:
                    s.bind((addr, port))
            except OSError:
                ok = False
        if ok:
            return port
    raise RuntimeError("no free port found")


def wait_port(port: int, proc: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before accepting on {port}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not accept within {timeout}s")


def missing_software(srv: Server) -> str | None:
    exe = {"openssl s_server": "openssl", "nginx": "nginx", "gnutls-serv": "gnutls-serv",
           "python ssl": sys.executable}[srv.software]
    if shutil.which(exe) is None:
        return f"{exe} not installed (run benches/conformance/install.sh)"
    return None


class Testbed:
    def __init__(self, names: list[str] | None = None, workdir: str | None = None,
                 dh_cache: Path = DEFAULT_DH_CACHE):
        catalogue = server_catalogue()
        known = {s.name for s in catalogue}
        if names:
            unknown = set(names) - known
            if unknown:
                raise ValueError(f"unknown servers: {sorted(unknown)}; known: {sorted(known)}")
            catalogue = [s for s in catalogue if s.name in names]
        self.servers = catalogue
        self.dh_cache = dh_cache
        self._own_tmp = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="netsensor-testbed-"))
        self.pki: Pki | None = None
        self.skipped: list[dict] = []
        self.manifest: list[dict] = []

    def start(self) -> list[dict]:
        try:
            self.pki = Pki(self.dir / "pki").generate(self.dh_cache)
            for srv in self.servers:
                why_not = missing_software(srv)
                if why_not:
                    log(f"skip {srv.name}: {why_not}")
                    self.skipped.append({"name": srv.name, "reason": why_not})
                    continue
                self._start_one(srv)
            self.manifest = [self.entry(s) for s in self.servers if s.proc is not None]
            return self.manifest
        except BaseException:
            self.stop()
            raise

    def _start_one(self, srv: Server) -> None:
        srv.workdir = self.dir / srv.name
        srv.workdir.mkdir(parents=True, exist_ok=True)
        last = None
        for _attempt in range(3):  # a port grabbed between free_port() and bind: retry with another
            srv.port = free_port(srv.all_addresses)
            cmd = srv.command(self.pki)
            logf = open(srv.workdir / "server.log", "wb")
            srv.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=srv.workdir)
            logf.close()
            try:
                wait_port(srv.port, srv.proc)
                srv.expect = srv.expectation()
                log(f"{srv.name} up on {HOST}:{srv.port} (pid {srv.proc.pid})")
                return
            except RuntimeError as e:
                last = e
                self._stop_one(srv)
        tail = (srv.workdir / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{srv.name}: {last}\n{' '.join(cmd)}\n{tail}")

    def entry(self, srv: Server) -> dict:
        return {"name": srv.name, "host": HOST, "port": srv.port, "software": srv.software, "why": srv.why,
                "pid": srv.proc.pid if srv.proc else None, "expect": srv.expect,
                "starttls": getattr(srv, "starttls", None)}

    def _stop_one(self, srv: Server) -> None:
        p = srv.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                # SIGTERM to the process group: nginx's master then stops its workers (a SIGKILL on
                # the master would orphan them); s_server and gnutls-serv just exit.
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        # workers of the group that outlived their master
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        srv.proc = None

    def stop(self) -> None:
        for srv in self.servers:
            try:
                self._stop_one(srv)
            except Exception as e:  # keep stopping the others
                log(f"stopping {srv.name}: {e}")
        if self._own_tmp and self.dir.exists() and not os.environ.get("TESTBED_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the servers up until Ctrl-C")
    ap.add_argument("--only", help="comma-separated server names")
    ap.add_argument("--list", action="store_true", help="list the servers and why each exists")
    ap.add_argument("--manifest-out", help="also write the manifest JSON to this file")
    args = ap.parse_args()
    if args.list:
        for s in server_catalogue():
            print(f"{s.name:24} {s.software:18} {s.why}")
        return 0
    tb = Testbed(args.only.split(",") if args.only else None)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (background jobs)
    try:
        manifest = tb.start()
        text = json.dumps(manifest, indent=2)
        print(text, flush=True)
        if args.manifest_out:
            Path(args.manifest_out).write_text(text)
        if args.keep:
            log("servers up; Ctrl-C to stop")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        tb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
