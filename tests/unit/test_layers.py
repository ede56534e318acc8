"""Imports point inwards: domain imports nothing else from coincast; inner layers no concrete backend."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "coincast"
CONCRETE = ("coincast.store.duckdb", "coincast.store.postgres", "coincast.store.redis", "coincast.bus.kafka",
            "coincast.bus.memory")
INNER = ("stream", "features", "evaluate")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return {m for m in out if m.startswith("coincast")}


def test_domain_imports_only_domain() -> None:
    bad = {str(p.relative_to(SRC)): sorted(m for m in imports_of(p) if not m.startswith("coincast.domain"))
           for p in (SRC / "domain").rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}


def test_inner_layers_use_no_concrete_backend() -> None:
    bad: dict[str, list[str]] = {}
    for layer in INNER:
        for p in (SRC / layer).rglob("*.py"):
            hits = sorted(m for m in imports_of(p) if m.startswith(CONCRETE))
            if hits:
                bad[str(p.relative_to(SRC))] = hits
    assert bad == {}
