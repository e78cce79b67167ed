#!/usr/bin/env python3
"""Conformance comparison: start the testbed, run every peer tool and our `sensor grade` on every
endpoint, compare each with the server's configured expectation and with each other.

    python3 benches/conformance/compare.py [--json-out results.json] [--only NAMES] [--tools LIST]
                                           [--manifest FILE] [--no-count] [--no-sensor]

Our binary: $SENSOR, else $CARGO_TARGET_DIR/release/sensor, else
$HOME/.cache/netsensor-target/release/sensor. It is run as `sensor grade 127.0.0.1:PORT -o json`
(plus `--starttls PROTO` where the manifest says the endpoint needs it, as every peer is told);
when it is missing or fails, its rows say n/a (not an error).

Exit status: 0 when the harness worked (whatever the tools disagree on); 1 on a harness error
(testbed did not start, a peer crashed, timed out or printed something we could not parse);
2 on bad arguments.
Stdlib only.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from testbed import PROTOCOLS, Testbed  # noqa: E402

OURS = "sensor"


# --------------------------------------------------------------------------------------------
# Our tool
# --------------------------------------------------------------------------------------------

def sensor_path() -> Path:
    if os.environ.get("SENSOR"):
        return Path(os.environ["SENSOR"])
    if os.environ.get("CARGO_TARGET_DIR"):
        return Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "sensor"
    return Path.home() / ".cache" / "netsensor-target" / "release" / "sensor"


def _records(text: str) -> list[dict]:
    text = text.strip()
    if not text:
        return []
    try:
        d = json.loads(text)
    except json.JSONDecodeError:  # ndjson
        return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
    if isinstance(d, list):
        return d
    for key in ("endpoints", "records", "results"):
        if isinstance(d.get(key), list):
            return d[key]
    return [d]


def parse_sensor(text: str, res: dict, port: int) -> None:
    """Our endpoint record: "protocols": {name: bool}; "protocol_ciphers": [{"protocol",
    "cipher_pref_order": "server"|"client"|null, "ciphers": [{"code", ...}]}], top level or inside
    security_rating_info (where the seed splits ciphers into safe/weak/insecure lists)."""
    recs = [r for r in _records(text) if isinstance(r, dict)]
    rec = next((r for r in recs if r.get("port") in (port, None)), recs[0] if recs else None)
    if rec is None:
        raise ValueError("no endpoint record in output")
    for p, v in (rec.get("protocols") or {}).items():
        if p in res["protocols"]:
            res["protocols"][p] = v if isinstance(v, bool) else None
    pcs = rec.get("protocol_ciphers")
    if pcs is None:
        pcs = (rec.get("security_rating_info") or {}).get("protocol_ciphers") or []
    for pc in pcs:
        proto = pc.get("protocol")
        if proto not in PROTOCOLS:
            continue
        lst = pc.get("ciphers")
        if lst is None:
            lst = [*(pc.get("safe_ciphers") or []), *(pc.get("weak_ciphers") or []),
                   *(pc.get("insecure_ciphers") or [])]
        codes = res["ciphers"].setdefault(proto, [])
        for c in lst:
            code = c.get("code") if isinstance(c, dict) else c
            if code is None and isinstance(c, dict) and c.get("name"):
                code = peers.code_of(c["name"], proto)
            if isinstance(code, str):
                code = int(code, 16) if code.lower().startswith("0x") else int(code)
            if code is None:
                res["unmapped"].append(f"{proto}:{c}")
            elif code not in codes:
                codes.append(code)
        order = pc.get("cipher_pref_order")
        res["server_preference"][proto] = {"server": True, "client": False}.get(order)
        if order == "server":
            res["order"][proto] = list(codes)
        if res["protocols"].get(proto) is None and codes:
            res["protocols"][proto] = True


def run_sensor(host: str, port: int, workdir: Path, count: bool, timeout: float = 300,
               starttls: str | None = None) -> dict:
    peers.check_loopback(host)
    workdir.mkdir(parents=True, exist_ok=True)
    res = peers.empty_result(OURS)
    exe = sensor_path()
    if not exe.exists():
        res["error"] = f"n/a: {exe} not built"
        return res
    # The peers here enumerate and do not probe for vulnerabilities (testssl runs -p -E -P), so
    # neither do we: the timing compares like with like.
    cmd = [str(exe), "grade", f"{host}:{port}", "-o", "json", "--no-vulns"]
    if starttls:
        cmd += ["--starttls", starttls]
    trace = workdir / "sensor.strace"
    trace.unlink(missing_ok=True)
    if count and peers.shutil.which("strace"):
        cmd = peers.strace_wrap(cmd, trace)
    res["command"] = " ".join(cmd)
    raw = workdir / "sensor.json"
    rc, out, err, secs = peers.run_bounded(cmd, timeout, stdout_path=raw)
    (workdir / "sensor.stderr").write_text(err)
    res["seconds"] = round(secs, 2)
    res["raw"] = str(raw)
    res["connections"] = peers.count_connects(trace, port) if trace.exists() else None
    if rc is None:
        res["error"] = f"n/a: timed out after {timeout}s"
        return res
    if rc != 0:
        res["error"] = f"n/a: exit {rc}: {err.strip().splitlines()[-1][:200] if err.strip() else ''}"
        return res
    try:
        parse_sensor(out, res, port)
        res["ok"] = True
    except Exception as e:  # our tool's output is not a harness error: say n/a with why
        res["error"] = f"n/a: unparseable output: {type(e).__name__}: {e}"
    return res


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------

def code_name(code: int) -> str:
    return f"0x{code:04X} {peers.iana_names().get(code, '?')}"


def compare_to_expect(res: dict, expect: dict) -> dict:
    """Per-tool verdict against the configuration-derived expectation."""
    out = {"protocols": {"match": None, "wrong": []}, "suites": {}, "preference": {}, "order": {}}
    if not res["ok"]:
        return out
    wrong = []
    for p in PROTOCOLS:
        seen, want = res["protocols"].get(p), expect["protocols"][p]
        if seen is not None and seen != want:
            wrong.append(f"{p}:{'+' if seen else '-'}")
    out["protocols"] = {"match": not wrong, "wrong": wrong}
    for p in PROTOCOLS:
        want = set(expect["ciphers"].get(p, []))
        got = set(res["ciphers"].get(p, []))
        if res["protocols"].get(p) is None and not got:
            continue  # the tool did not test this version
        if not want and not got:
            continue
        out["suites"][p] = {"match": want == got, "missing": sorted(want - got), "extra": sorted(got - want)}
        exp_pref = expect["server_preference"].get(p)
        if p in expect["server_preference"] and want:
            claimed = res["server_preference"].get(p)
            out["preference"][p] = None if claimed is None else claimed == exp_pref
            if exp_pref and p in res["order"]:
                out["order"][p] = res["order"][p] == expect["ciphers"][p]
    return out


def summarize_verdict(v: dict, res: dict) -> dict:
    """Compact strings for the table."""
    if not res["ok"]:
        return {}
    suites = v["suites"]
    miss = sum(len(s["missing"]) for s in suites.values())
    extra = sum(len(s["extra"]) for s in suites.values())
    prefs = [x for x in v["preference"].values()]
    pref = ("?" if all(x is None for x in prefs) else
            "ok" if all(x is not False for x in prefs) else
            "WRONG " + ",".join(p for p, x in v["preference"].items() if x is False)) if prefs else "-"
    orders = v["order"]
    order = "-" if not orders else "ok" if all(orders.values()) else \
        "WRONG " + ",".join(p for p, x in orders.items() if not x)
    return {"protocols": "ok" if v["protocols"]["match"] else " ".join(v["protocols"]["wrong"]),
            "suites": "ok" if miss == extra == 0 else f"-{miss}/+{extra}",
            "preference": pref, "order": order}


def disagreements(results: dict[str, dict], expect: dict) -> dict:
    """Per protocol: every code not seen by all tools that tested that protocol, who saw it, and
    whether the configuration says the server accepts it."""
    out = {}
    ok_tools = {t: r for t, r in results.items() if r["ok"]}
    for p in PROTOCOLS:
        testers = [t for t, r in ok_tools.items()
                   if r["protocols"].get(p) is not None or r["ciphers"].get(p)]
        if len(testers) < 2:
            continue
        seen_by: dict[int, list[str]] = {}
        for t in testers:
            for c in ok_tools[t]["ciphers"].get(p, []):
                seen_by.setdefault(c, []).append(t)
        want = set(expect["ciphers"].get(p, []))
        rows = []
        for c in sorted(set(seen_by) | want):
            who = seen_by.get(c, [])
            if len(who) == len(testers):
                continue
            rows.append({"code": c, "name": code_name(c), "expected": c in want, "seen_by": who,
                         "not_seen_by": [t for t in testers if t not in who]})
        proto_votes = {t: ok_tools[t]["protocols"].get(p) for t in testers}
        if rows or len({v for v in proto_votes.values() if v is not None}) > 1:
            out[p] = {"protocol_votes": proto_votes, "expected_protocol": expect["protocols"][p],
                      "codes": rows}
    return out


def peer_vs_peer(results: dict[str, dict]) -> dict[str, str]:
    """For each tool: codes only it saw (+) and codes every other tool saw but it did not (-)."""
    ok = {t: r for t, r in results.items() if r["ok"]}
    out = {}
    for t, r in ok.items():
        others = [o for o in ok if o != t]
        if not others:
            out[t] = "-"
            continue
        uniq = miss = 0
        for p in PROTOCOLS:
            mine = set(r["ciphers"].get(p, []))
            theirs = [set(ok[o]["ciphers"].get(p, [])) for o in others
                      if ok[o]["protocols"].get(p) is not None or ok[o]["ciphers"].get(p)]
            if not theirs or (r["protocols"].get(p) is None and not mine):
                continue
            uniq += len(mine - set().union(*theirs))
            miss += len(set.intersection(*theirs) - mine)
        out[t] = "ok" if uniq == miss == 0 else f"+{uniq}/-{miss}"
    return out


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def print_table(report: dict) -> None:
    cols = ["endpoint", "tool", "protocols", "suites", "vs peers", "pref", "order", "s", "conns"]
    rows = []
    notes: list[str] = []
    sensor_notes: set[str] = set()
    for ep in report["endpoints"]:
        for tool, res in ep["results"].items():
            s = ep["summary"].get(tool, {})
            if not res["ok"]:
                err = (res["error"] or "failed").splitlines()[0]
                if tool == OURS:
                    sensor_notes.add(err)
                    err = "(see below)"
                rows.append([ep["name"], tool, "n/a" if tool == OURS else "ERROR", err[:40], "", "", "", "", ""])
                continue
            if res.get("note"):
                notes.append(f"{ep['name']}/{tool}: {res['note']}")
            rows.append([ep["name"], tool, s["protocols"], s["suites"], ep["peer_vs_peer"].get(tool, "-"),
                         s["preference"], s["order"], f"{res['seconds']:.1f}",
                         "?" if res["connections"] is None else str(res["connections"])])
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths))
    print(line)
    print("-" * len(line))
    last = None
    for r in rows:
        if last is not None and r[0] != last:
            print()
        last = r[0]
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    print("\nprotocols: 'ok' or the versions the tool got wrong (+ = claimed, - = missed); SSLv2 untested by nmap."
          "\nsuites: vs the server's configuration, -missing/+extra summed over versions."
          "\nvs peers: +codes only this tool saw / -codes every other tool saw but this one did not."
          "\npref: server-vs-client preference vs configuration ('?' = tool does not say)."
          " order: the server order the tool claims vs the configured order ('-' = no claim).")
    for n in notes:
        print(f"note: {n}")
    for n in sorted(sensor_notes):
        print(f"{OURS} n/a: {n}")


def print_disagreements(report: dict) -> None:
    print("\n=== Disagreements (per endpoint and protocol: codes not seen by every tool) ===")
    any_ = False
    for ep in report["endpoints"]:
        dis = ep["disagreements"]
        if not dis:
            continue
        any_ = True
        print(f"\n{ep['name']} (127.0.0.1:{ep['port']})")
        for p, d in dis.items():
            votes = " ".join(f"{t}={'?' if v is None else 'yes' if v else 'no'}" for t, v in d["protocol_votes"].items())
            print(f"  {p}: configured={'yes' if d['expected_protocol'] else 'no'}; offered per tool: {votes}")
            for row in d["codes"]:
                print(f"    {row['name']:<52} configured={'yes' if row['expected'] else 'NO '}"
                      f"  seen by: {','.join(row['seen_by']) or '-'}  not by: {','.join(row['not_seen_by'])}")
    if not any_:
        print("none")


def markdown(report: dict) -> str:
    """One row per endpoint, one cell per tool: protocols / suites vs configuration / preference,
    then seconds and connections."""
    tools = list(dict.fromkeys(t for ep in report["endpoints"] for t in ep["results"]))
    head = "| endpoint | configured | " + " | ".join(tools) + " |"
    lines = [head, "|" + "---|" * (len(tools) + 2)]
    for ep in report["endpoints"]:
        ex = ep["expect"]
        conf = ", ".join(f"{p.replace('TLSv', '')}:{len(ex['ciphers'].get(p, []))}"
                         for p in PROTOCOLS if ex["protocols"][p])
        pref = "srv" if any(ex["server_preference"].values()) else "cli"
        cells = []
        for t in tools:
            r, s = ep["results"][t], ep["summary"].get(t, {})
            if not r["ok"]:
                cells.append("n/a" if t == OURS else "ERROR")
                continue
            verdict = "/".join([s["protocols"] if s["protocols"] == "ok" else "P✗",
                                s["suites"] if s["suites"] == "ok" else "S" + s["suites"].replace("/", ""),
                                {"ok": "ok", "?": "?", "-": "-"}.get(s["preference"], "pref✗")
                                + ("" if s["order"] in ("-", "ok") else " order✗")])
            conns = "?" if r["connections"] is None else r["connections"]
            cells.append(f"{verdict} {r['seconds']:.1f}s {conns}c")
        lines.append(f"| {ep['name']} | {conf} ({pref}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description="Peer comparison on the conformance testbed")
    ap.add_argument("--json-out", help="write the full results here")
    ap.add_argument("--only", help="comma-separated testbed server names")
    ap.add_argument("--tools", default=",".join(peers.TOOLS), help="peer tools to run")
    ap.add_argument("--manifest", help="use servers already running (testbed.py --keep --manifest-out F)")
    ap.add_argument("--no-count", action="store_true", help="skip strace connection counting")
    ap.add_argument("--no-sensor", action="store_true", help="do not run our sensor")
    ap.add_argument("--workdir", help="raw outputs (default: a temp dir, kept and printed)")
    ap.add_argument("--markdown", help="also write a compact Markdown table (as in README.md) here")
    args = ap.parse_args()
    tools = [t for t in args.tools.split(",") if t]
    bad = set(tools) - set(peers.TOOLS)
    if bad:
        ap.error(f"unknown tools {sorted(bad)}")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="netsensor-compare-"))
    workdir.mkdir(parents=True, exist_ok=True)
    harness_errors: list[str] = []
    tb = None

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (background jobs)
    try:
        if args.manifest:
            manifest = json.loads(Path(args.manifest).read_text())
            if args.only:
                manifest = [m for m in manifest if m["name"] in args.only.split(",")]
        else:
            tb = Testbed(args.only.split(",") if args.only else None)
            manifest = tb.start()
            for s in tb.skipped:
                harness_errors.append(f"testbed: {s['name']} not started: {s['reason']}")
        for t in tools:
            why = peers.available(t)
            if why:
                print(f"[compare] {t} unavailable: {why}", file=sys.stderr)
        versions = {t: peers.tool_version(t) for t in tools}
        report = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "tool_versions": versions,
                  "sensor": str(sensor_path()), "workdir": str(workdir), "endpoints": []}
        for ep in manifest:
            host, port, name = ep["host"], ep["port"], ep["name"]
            results = {}
            for t in tools:
                print(f"[compare] {name}: {t} ...", file=sys.stderr, flush=True)
                r = peers.run_peer(t, host, port, workdir / name / t, count=not args.no_count,
                                   starttls=ep.get("starttls"))
                if r["error"] and "not installed" not in r["error"]:
                    harness_errors.append(f"{name}/{t}: {r['error']}")
                if r["unmapped"]:
                    harness_errors.append(f"{name}/{t}: unmapped names {r['unmapped']}")
                results[t] = r
            if not args.no_sensor:
                print(f"[compare] {name}: {OURS} ...", file=sys.stderr, flush=True)
                results[OURS] = run_sensor(host, port, workdir / name / OURS, count=not args.no_count,
                                           starttls=ep.get("starttls"))
            verdicts = {t: compare_to_expect(r, ep["expect"]) for t, r in results.items()}
            report["endpoints"].append({
                "name": name, "port": port, "software": ep.get("software"), "why": ep.get("why"),
                "starttls": ep.get("starttls"),
                "expect": ep["expect"], "results": results, "verdicts": verdicts,
                "summary": {t: summarize_verdict(verdicts[t], results[t]) for t in results},
                "peer_vs_peer": peer_vs_peer(results),
                "disagreements": disagreements(results, ep["expect"]),
            })
        report["harness_errors"] = harness_errors
        print()
        print_table(report)
        print_disagreements(report)
        if harness_errors:
            print("\n=== Harness errors ===")
            for e in harness_errors:
                print(f"  {e}")
        print(f"\nraw outputs: {workdir}")
        if args.markdown:
            Path(args.markdown).write_text(markdown(report))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(report, indent=2))
            print(f"results: {args.json_out}")
        return 1 if harness_errors else 0
    except KeyboardInterrupt:
        print("[compare] interrupted", file=sys.stderr)
        return 1
    except Exception as e:
        print(f"[compare] harness error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if tb is not None:
            tb.stop()


if __name__ == "__main__":
    sys.exit(main())
