"""`pip install .` installs the application and nothing else, with a `switchboard` command that is
`python -m bot` (docs/architecture.md, "Command line"). Checked on pyproject.toml as setuptools
reads it, without building or installing anything."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = ("adapters", "agents", "bot", "storage")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_application_package_and_nothing_else_is_installed() -> None:
    find = _pyproject()["tool"]["setuptools"]["packages"]["find"]
    found = set(find_namespace_packages(where=str(ROOT), include=find["include"]))
    wanted = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for package in APPLICATION
        for path in (ROOT / package).rglob("*.py")
    }
    assert found == wanted


def test_the_console_script_is_python_m_bot() -> None:
    target = _pyproject()["project"]["scripts"]["switchboard"]
    module, _, function = target.partition(":")
    assert module == "bot.__main__"
    assert callable(getattr(importlib.import_module(module), function))
