"""The layout's import rules (DESIGN.md): apps/ imports the rest and nothing imports apps/; one
medium's generator never imports another's; evaluators never import a generator; no import circle
among the modules of apps/ (imports inside functions counted)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ("speech", "music", "face")


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def test_nothing_imports_apps():
    bad = [f"{p.relative_to(ROOT)} imports {m}" for top in ("generators", "evaluators", "conditioning", "configs")
           for p in _files(top) for m in _imports(p) if m == "apps" or m.startswith("apps.")]
    assert not bad, bad


def test_media_stay_apart():
    bad = []
    for medium in MEDIA:
        for p in _files(f"generators/{medium}"):
            for m in _imports(p):
                other = [o for o in MEDIA if o != medium and (m == f"generators.{o}" or m.startswith(f"generators.{o}."))]
                if other:
                    bad.append(f"{p.relative_to(ROOT)} imports {m}")
    for p in _files("evaluators"):
        bad += [f"{p.relative_to(ROOT)} imports {m}" for m in _imports(p) if m.startswith("generators")]
    assert not bad, bad


def test_no_import_circle_in_apps():
    modules = {_module(p): p for p in _files("apps")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for m in _imports(path):
            # "from apps.jobs import run" names the package; "apps.jobs.base" a module
            while m and m not in modules:
                m = m.rpartition(".")[0]
            if m and m != name:
                targets.add(m)
        graph[name] = targets

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [c for c in (cycle_from(n) for n in graph) if c]
    assert not cycles, cycles
