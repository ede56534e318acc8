"""The deployment files (docker-compose, Prometheus, Grafana, Airflow) agree with the real CLI,
settings and metrics: every command they run parses, every variable is a valid setting, every
metric a dashboard queries is exported by coincast."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml
from prometheus_client import REGISTRY

import coincast
from coincast.cli import main as cli_main
from coincast.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def check_command(argv: list[str]) -> None:
    """Parse ``coincast ARGV`` with the real command's options (nothing runs)."""
    cli_main._register()
    group = typer.main.get_command(cli_main.app)
    name, *args = argv
    ctx = group.make_context("coincast", [name])
    cmd = group.get_command(ctx, name)  # type: ignore[attr-defined]
    assert cmd is not None, f"no such command: coincast {name}"
    cmd.make_context(name, args)


def test_compose_commands_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-coincast-env"]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COINCAST_API__HOST", "0.0.0.0")
    s = load_settings()
    assert s.bus.url.startswith("kafka://") and s.store_url.startswith("postgresql://")
    roles = {n: svc for n, svc in compose["services"].items() if svc.get("build") == "."}
    assert {svc["command"][0] for svc in roles.values()} == {"ingest", "process", "serve"}
    for svc in roles.values():
        check_command(svc["command"])
        assert svc["environment"] == env


def test_prometheus_scrapes_every_role_on_its_port() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name, svc in compose["services"].items():
        if svc.get("build") != ".":
            continue
        cmd = svc["command"]
        port = cmd[cmd.index("--metrics-port") + 1] if "--metrics-port" in cmd else cmd[cmd.index("--port") + 1]
        assert f"{name}:{port}" in targets


def test_grafana_queries_only_metrics_coincast_exports() -> None:
    for mod in pkgutil.walk_packages(coincast.__path__, "coincast."):
        if not mod.name.startswith(("coincast.cli", "coincast.__main__", "coincast.features.spark")):
            importlib.import_module(mod.name)
    exported = set()
    for metric in REGISTRY.collect():  # labelled metrics have no samples until used: name by type
        exported.add(metric.name)
        exported.update({"counter": [metric.name + "_total"], "histogram": [metric.name + "_bucket"]}.get(
            metric.type, []))
    dash = json.loads((ROOT / "deploy/grafana/dashboards/coincast.json").read_text())
    used = {m for p in dash["panels"] for t in p["targets"] for m in re.findall(r"coincast_[a-z_]+", t["expr"])}
    missing = {m for m in used if m not in exported and m.removesuffix("_bucket") not in exported}
    assert used and not missing


def test_airflow_dag_runs_real_commands() -> None:
    tree = ast.parse((ROOT / "deploy/airflow/coincast_dag.py").read_text())
    consts = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    commands = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "bash_command":
            text = "".join(
                str(v.value) if isinstance(v, ast.Constant) else "{X}"
                for v in (node.value.values if isinstance(node.value, ast.JoinedStr) else [node.value])
            ) if not isinstance(node.value, ast.BinOp) else ast.unparse(node.value)
            commands.append(text)
    assert len(commands) >= 4
    for text in commands:
        text = re.sub(r"\{\{.*?\}\}", "2024-01-01", text).replace("{X}", "BTCUSDT")
        argv = shlex.split(text.replace("{SYMBOLS}", consts["SYMBOLS"]))
        assert argv[0] == "coincast"
        check_command(argv[1:])
