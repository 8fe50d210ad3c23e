#!/usr/bin/env python3
"""Reports import circles between hoard's modules, read from the source.

    tools/module-cycles.py [--depth 1|2] [--root SRC_DIR]

Every `crate::a::b` and `super::b` path in src/ (in `use` lines and in code, `super::{b, c}`
groups included) is an edge from the module of the
file that names it to module `a` (depth 1) or `a::b` (depth 2). Prints each strongly connected
group of two or more modules with one file:line per edge inside it, and exits 1 when there is
one. Test modules (`#[cfg(test)]` to the end of a file, and tests.rs files) are left out: a
test may reach anywhere.

It also reports every path from one command module of the CLI (`cli/cmd_<command>.rs`) to
another: what two commands share lives in a shared `cli` module (`options`, `output`,
`archive_report`, …), not in one of the commands.
"""
import os
import re
import sys
from collections import defaultdict

depth = 1
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
args = sys.argv[1:]
while args:
    if args[0] == "--depth" and len(args) > 1:
        depth = int(args[1])
    elif args[0] == "--root" and len(args) > 1:
        root = args[1]
    else:
        sys.exit(f"usage: {sys.argv[0]} [--depth 1|2] [--root SRC_DIR]")
    args = args[2:]


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts[:depth]) if parts else "crate"


path_re = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?")
super_re = re.compile(r"\bsuper::([a-z_][a-z0-9_]*)")
# `super::{a, b::C, D}` on one line: each lower-case name is a sibling module
super_group_re = re.compile(r"\bsuper::\{([^}]*)\}")
edges = defaultdict(list)
sideways = []  # (from command module, to command module, file:line)
cmd_re = re.compile(r"^cli::cmd_[a-z0-9_]+$")
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs") or f == "tests.rs" or f.endswith("_tests.rs"):
            continue
        full = os.path.join(dirpath, f)
        rel = os.path.relpath(full, root)
        src_mod = module_of(rel)
        with open(full, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip().startswith("#[cfg(test)]"):
                    break
                code = line.split("//", 1)[0]
                parts = rel[:-3].split(os.sep)
                if parts[-1] == "mod":
                    parts = parts[:-1]
                parent = parts[:-1]
                found = []
                for m in super_re.finditer(code):
                    found.append("::".join(parent + [m.group(1)]))
                grouped = []
                for m in super_group_re.finditer(code):
                    for name in m.group(1).split(","):
                        head = name.strip().split("::")[0]
                        if re.fullmatch(r"[a-z_][a-z0-9_]*", head) and head != "self":
                            grouped.append("::".join(parent + [head]))
                for m in path_re.finditer(code):
                    found.append(m.group(1) + ("::" + m.group(2) if m.group(2) else ""))
                own = "::".join(parts[:2])
                for target in found + grouped:
                    to = "::".join(target.split("::")[:2])
                    if cmd_re.match(own) and cmd_re.match(to) and to != own:
                        sideways.append((own, to, f"src/{rel}:{n}"))
                for target in found + grouped:
                    target = "::".join(target.split("::")[:depth])
                    if target != src_mod and not src_mod.startswith(target + "::"):
                        edges[(src_mod, target)].append(f"src/{rel}:{n}")

graph = defaultdict(set)
for a, b in edges:
    graph[a].add(b)

# Tarjan's strongly connected components
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(sorted(comp))


sys.setrecursionlimit(10000)
for v in list(graph):
    if v not in index:
        visit(v)

for comp in comps:
    print("circle: " + " <-> ".join(comp))
    for a in comp:
        for b in comp:
            if (a, b) in edges:
                where = edges[(a, b)]
                print(f"  {a} -> {b}: {where[0]}" + (f" (+{len(where) - 1} more)" if len(where) > 1 else ""))
print(f"{len(comps)} circle(s) between modules at depth {depth}")
for a, b, where in sideways:
    print(f"command module imports another: {a} -> {b}: {where}")
print(f"{len(sideways)} import(s) of one cli command module by another")
sys.exit(1 if comps or sideways else 0)
