#!/usr/bin/env python3
"""The engine's layering, checked (run by `make lint`, so by `make test`).

Fails when:
- the top-level modules of hyper2kvm/src import each other in a cycle (any strongly connected
  component of more than one module; `crate::X` paths outside comments count as imports);
- a module of formats/ imports anything but the layers below it (error, progress, io);
- a .rs file anywhere in the workspace is over 800 lines;
- the engine depends on the `log` crate, or not on `thiserror` and `tracing` (`cargo tree`);
- README.md is over 150 lines or does not link every page of docs/.

Prints the module graph with `-v`.
"""

import collections
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE = os.path.join(ROOT, "hyper2kvm", "src")
# What the disk formats may use: the layers below them.
FORMATS_MAY_USE = {"error", "progress", "io"}
MAX_LINES = 800


def strip_comments(text):
    """The code without `//` comments (doc comments link to modules without importing them)."""
    out = []
    for line in text.splitlines():
        in_str = False
        cut = len(line)
        i = 0
        while i < len(line) - 1:
            c = line[i]
            if c == '"' and (i == 0 or line[i - 1] != "\\"):
                in_str = not in_str
            elif not in_str and line.startswith("//", i):
                cut = i
                break
            i += 1
        out.append(line[:cut])
    return "\n".join(out)


def modules_used(code):
    """The top-level modules a file names through `crate::`."""
    used = set(re.findall(r"\bcrate::(\w+)", code))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
        used.update(re.findall(r"(?:^|,)\s*(\w+)", group))
    return used


def root_reexports():
    """`crate::Name` paths that lib.rs re-exports, mapped to the module they come from."""
    with open(os.path.join(ENGINE, "lib.rs"), encoding="utf-8") as fh:
        lib = fh.read()
    names = {}
    for module, items in re.findall(r"^pub use (\w+)::\{?([^};]*)\}?;", lib, flags=re.M):
        for item in re.findall(r"\w+", items):
            names[item] = module
    return names


def engine_graph():
    reexports = root_reexports()
    modules = set()
    for name in os.listdir(ENGINE):
        if name.endswith(".rs") and name != "lib.rs":
            modules.add(name[:-3])
        elif os.path.isdir(os.path.join(ENGINE, name)):
            modules.add(name)
    graph = collections.defaultdict(set)
    where = collections.defaultdict(set)
    for dirpath, _, files in os.walk(ENGINE):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, ENGINE)
            top = rel.split(os.sep)[0]
            top = top[:-3] if top.endswith(".rs") else top
            if top == "lib":
                continue
            with open(path, encoding="utf-8") as fh:
                code = strip_comments(fh.read())
            used = {reexports.get(m, m) for m in modules_used(code)}
            for m in used & modules:
                if m != top:
                    graph[top].add(m)
                    where[(top, m)].add(rel)
    return modules, graph, where


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def long_files():
    out = []
    for top in ["hyper2kvm", "hyper2kvm-daemon", "hyper2kvm-ffi", "hyper2kvm-py", "tests"]:
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".rs"):
                    p = os.path.join(dirpath, f)
                    with open(p, encoding="utf-8") as fh:
                        n = sum(1 for _ in fh)
                    if n > MAX_LINES:
                        out.append(f"{os.path.relpath(p, ROOT)}: {n} lines (over {MAX_LINES})")
    return out


def dependency_problems():
    tree = subprocess.run(
        ["cargo", "tree", "-p", "hyper2kvm", "-e", "normal", "--prefix", "none"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    crates = {line.split()[0] for line in tree.splitlines() if line.strip()}
    problems = []
    for want in ["thiserror", "tracing"]:
        if want not in crates:
            problems.append(f"the engine does not depend on {want} (cargo tree -p hyper2kvm)")
    if "log" in crates:
        problems.append("the engine depends on the log crate (cargo tree -p hyper2kvm -i log)")
    return problems


def readme_problems():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    problems = []
    n = readme.count("\n")
    if n > 150:
        problems.append(f"README.md: {n} lines (over 150; details belong in docs/)")
    for page in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        if page.endswith(".md") and f"(docs/{page})" not in readme:
            problems.append(f"README.md does not link docs/{page}")
    return problems


def main():
    modules, graph, where = engine_graph()
    if "-v" in sys.argv:
        for m in sorted(modules):
            print(f"{m} -> {', '.join(sorted(graph.get(m, ()))) or '-'}")
    problems = []
    for comp in cycles(graph):
        edges = [
            f"    {a} -> {b} ({', '.join(sorted(where[(a, b)]))})"
            for a in comp for b in comp if b in graph[a]
        ]
        problems.append("import cycle between " + ", ".join(comp) + ":\n" + "\n".join(edges))
    for m in sorted(graph.get("formats", set()) - FORMATS_MAY_USE):
        files = ", ".join(sorted(where[("formats", m)]))
        problems.append(f"formats/ imports {m}, a module above it ({files})")
    problems += long_files()
    problems += dependency_problems()
    problems += readme_problems()
    for p in problems:
        print(f"check-layers: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check-layers: {len(modules)} engine modules without cycles; formats/ stands alone")


if __name__ == "__main__":
    main()
