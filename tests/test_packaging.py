"""`pip install .` installs the application and nothing else, with a `switchboard` command that is
`python -m bot` (docs/architecture.md, "Command line"). Checked on pyproject.toml as setuptools
reads it, without building or installing anything."""

from __future__ import annotations

import importlib
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = ("adapters", "agents", "bot", "storage")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _packages(folder: Path) -> set[str]:
    """Every folder holding Python files, dotted, as setuptools' package discovery names them."""
    return {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in folder.rglob("*.py")
        if path.parent != ROOT
    }


def test_every_application_package_and_nothing_else_is_installed() -> None:
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    everything = set().union(
        *(_packages(d) for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith("."))
    )
    found = {name for name in everything if any(fnmatchcase(name, p) for p in include)}
    assert found == set().union(*(_packages(ROOT / package) for package in APPLICATION))


def test_the_console_script_is_python_m_bot() -> None:
    target = _pyproject()["project"]["scripts"]["switchboard"]
    module, _, function = target.partition(":")
    assert module == "bot.__main__"
    assert callable(getattr(importlib.import_module(module), function))
