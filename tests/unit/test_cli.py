"""The CLI's edge: missing optional libraries name the extra that installs them."""

from __future__ import annotations

import pytest

from coincast.cli.main import EXTRA_OF_MODULE, missing_extra


@pytest.mark.parametrize(("module", "extra"), [("statsmodels", "ml"), ("torch.nn", "ml"), ("talib", "batch"),
                                               ("confluent_kafka", "kafka"), ("psycopg_pool", "postgres")])
def test_missing_optional_module_names_its_extra(module: str, extra: str) -> None:
    msg = missing_extra(ModuleNotFoundError(f"No module named {module!r}", name=module))
    assert msg is not None and f"pip install 'coincast[{extra}]'" in msg and module in msg


def test_other_missing_modules_are_not_hidden() -> None:
    assert missing_extra(ModuleNotFoundError("No module named 'nonsense'", name="nonsense")) is None


def test_every_extra_named_exists_in_pyproject() -> None:
    import tomllib
    from pathlib import Path

    extras = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(EXTRA_OF_MODULE.values()) <= set(extras)
