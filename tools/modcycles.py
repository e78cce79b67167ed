#!/usr/bin/env python3
"""Import cycles among the library's modules.

Reads every `crate::a::b` path in src/ (use lines and inline paths, tests
excluded) and builds a graph of modules at a given depth (1 = top-level
folders/files under src/, 2 = one level further). Prints each strongly
connected component of more than one module and exits 1 when there is one.
Used by CI (.ci/run) so the layer order in ARCHITECTURE.md stays true.
"""
import os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 1

def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel == ["lib"]:
        return None
    return rel

def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)

def strip_tests(text):
    # Drop `#[cfg(test)] mod tests { ... }` blocks (to the end of file by convention).
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text

def key(parts):
    return "::".join(parts[:DEPTH])

files = []
for d, _, fs in os.walk(ROOT):
    for f in fs:
        if f.endswith(".rs"):
            files.append(os.path.join(d, f))

known = set()
for p in files:
    m = module_of(p)
    if m:
        for i in range(1, len(m) + 1):
            known.add(tuple(m[:i]))

def resolve(parts):
    # longest known module prefix of a crate:: path
    best = None
    for i in range(1, len(parts) + 1):
        if tuple(parts[:i]) in known:
            best = parts[:i]
    return best

edges = {}
for p in files:
    m = module_of(p)
    if not m or m[-1] == "tests":
        continue
    src = key(m)
    text = strip_comments(strip_tests(open(p, encoding="utf-8").read()))
    # expand `use crate::{a::x, b}` groups
    for g in re.finditer(r"crate::\{([^}]*)\}", text):
        for item in g.group(1).split(","):
            parts = [x for x in re.split(r"::", item.strip()) if x and re.match(r"^\w+$", x)]
            r = resolve(parts)
            if r:
                edges.setdefault(src, set()).add(key(r))
    for g in re.finditer(r"crate((?:::\w+)+)", text):
        parts = g.group(1).strip(":").split("::")
        r = resolve(parts)
        if r:
            edges.setdefault(src, set()).add(key(r))
    # super:: paths from a file deeper than DEPTH stay inside; from depth-level files they climb
    if len(m) >= 1:
        for g in re.finditer(r"\bsuper((?:::\w+)+)", text):
            base = m[:-1] if not p.endswith("mod.rs") else m[:-1]
            parts = base + g.group(1).strip(":").split("::")
            r = resolve(parts)
            if r:
                edges.setdefault(src, set()).add(key(r))

for k in list(edges):
    edges[k].discard(k)

# Tarjan
index, low, stack, on, sccs = {}, {}, [], set(), []
counter = [0]
sys.setrecursionlimit(10000)
def visit(v):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        sccs.append(comp)
nodes = set(edges) | {w for s in edges.values() for w in s}
for v in sorted(nodes):
    if v not in index:
        visit(v)
bad = [sorted(c) for c in sccs if len(c) > 1]
if "-v" in sys.argv:
    for k in sorted(edges):
        print(k, "->", ", ".join(sorted(edges[k])))
for c in bad:
    print("cycle:", " <-> ".join(c))
    for a in c:
        print("   ", a, "->", ", ".join(sorted(w for w in edges.get(a, ()) if w in c)))
print(f"{len(nodes)} modules at depth {DEPTH}, {len(bad)} cycle(s)")
sys.exit(1 if bad else 0)
