#!/usr/bin/env python3
"""The architecture's checkable invariants (ARCHITECTURE.md, "Invariants").

1. Layers: a module imports only from its own folder or from folders to its
   left in LAYERS (reads `crate::` paths outside `#[cfg(test)]` blocks and
   comments). With tools/modcycles.py this keeps data flowing one way.
2. Purity: the pure modules never name tokio, sockets, the clock or the file
   system (FS_ALLOWED names the one function per module that reads a file the
   operator pointed at).
3. `#![forbid(unsafe_code)]` in the library.
Exits 1 with one line per violation. Run by .ci/run.
"""
import os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")

# Left to right: a folder may import from itself and anything to its left.
LAYERS = ["cpu", "wire", "model", "discover", "probe", "grade", "scan", "output",
          "store", "console", "serve", "report", "alert", "fleet", "appliance"]

PURE = [
    "wire/", "model/assessment.rs", "model/cert.rs", "model/observed.rs", "model/record.rs",
    "model/timestamp.rs", "grade/", "probe/enumerate/strategy.rs", "probe/enumerate/result.rs",
    "probe/starttls/dialogue.rs", "probe/detect.rs", "discover/permute.rs", "discover/targets/",
    "discover/syn/cookie.rs", "discover/syn/packet.rs", "appliance/schedule.rs", "appliance/profile.rs",
    "appliance/config.rs", "appliance/settings.rs", "appliance/tick.rs", "store/inventory/diff.rs", "store/merge.rs",
    "alert/config.rs", "alert/rules.rs", "alert/notice.rs", "alert/render.rs",
    "fleet/definition.rs", "fleet/assign.rs", "fleet/status.rs",
    "console/view.rs", "console/summary.rs", "console/chart.rs", "console/cells.rs", "console/layout.rs",
    "console/endpoints.rs", "console/detail.rs", "console/certificates.rs", "console/overview.rs",
    "console/scans.rs", "console/login.rs", "console/report.rs", "console/export.rs",
]
IMPURE = [
    (r"\btokio\b", "tokio"),
    (r"std::net::(TcpStream|TcpListener|UdpSocket)|\bmio::|\bsocket2?\b", "a socket"),
    (r"\bnow_utc\(|SystemTime::now|Instant::now|chrono::Utc::now|Local::now", "the clock"),
    (r"std::fs::|File::open|File::create", "the file system"),
]
# Modules whose documented job includes reading one file the operator names.
FS_ALLOWED = {"grade/trust.rs", "discover/targets/spec.rs", "appliance/profile.rs", "appliance/config.rs"}


def code_of(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if m:
        text = text[: m.start()]
    return re.sub(r"//[^\n]*", "", text)


def rel(path):
    return os.path.relpath(path, SRC).replace(os.sep, "/")


def layer(relpath):
    top = relpath.split("/")[0]
    return top[:-3] if top.endswith(".rs") else top


bad = []
for d, _, files in os.walk(SRC):
    for f in files:
        if not f.endswith(".rs") or f == "tests.rs":
            continue
        p = os.path.join(d, f)
        r = rel(p)
        if r == "lib.rs":
            continue
        code = code_of(p)
        me = layer(r)
        if me in LAYERS:
            for m in re.finditer(r"crate::(\w+)", code):
                other = m.group(1)
                if other in LAYERS and LAYERS.index(other) > LAYERS.index(me):
                    bad.append(f"src/{r}: `{me}` imports `{other}`, a layer to its right")
        if any(r == x or (x.endswith("/") and r.startswith(x)) for x in PURE):
            for pat, what in IMPURE:
                if what == "the file system" and r in FS_ALLOWED:
                    continue
                if re.search(pat, code):
                    bad.append(f"src/{r}: pure module names {what}")

lib = open(os.path.join(SRC, "lib.rs"), encoding="utf-8").read()
if "#![forbid(unsafe_code)]" not in lib:
    bad.append("src/lib.rs: #![forbid(unsafe_code)] missing")

for b in sorted(set(bad)):
    print(b)
print(f"invariants: {len(set(bad))} violation(s)")
sys.exit(1 if bad else 0)
