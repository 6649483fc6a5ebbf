"""docs/architecture.md stays the map of the code: every module and every configuration variable
it should name is named there, and nothing cites a design document outside the repository.

Checked on the source, like tests/test_layers.py: a module added without its line in the map, or
a variable read by bot/settings.py without its row in "Configuration", fails here by name.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
MAPPED = ("adapters", "bot", "agents", "storage", "testkit")
# How bot/settings.py reads a variable: get("X"), _url(get, "X"), _int(get, "X", ...), ...: a
# call whose (first or, after `get`, second) argument is the bare name.
_READ = re.compile(r"\b\w+\(\s*(?:get,\s*)?\"([A-Z][A-Z0-9_]+)\"")


def _modules() -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for package in MAPPED
        for path in (ROOT / package).rglob("*.py")
        if path.name != "__init__.py"
    )


def test_every_module_has_its_line_in_the_map() -> None:
    doc = DOC.read_text()
    assert [m for m in _modules() if f"`{m}`" not in doc] == []


def test_the_map_names_no_module_that_is_gone() -> None:
    doc = DOC.read_text()
    named = re.findall(r"`((?:" + "|".join(MAPPED) + r")/[\w/]+\.py)`", doc)
    assert [m for m in named if not (ROOT / m).is_file()] == []


def test_every_configuration_variable_is_documented() -> None:
    variables = set(_READ.findall((ROOT / "bot" / "settings.py").read_text()))
    assert len(variables) > 20  # the pattern still matches how settings are read
    configuration = DOC.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert sorted(v for v in variables if f"`{v}`" not in configuration) == []


def test_nothing_cites_a_design_document_outside_the_repository() -> None:
    cited = re.compile("DESIGN" + r"(\.md| §)")  # split, so this file does not match itself
    files = [ROOT / "README.md"] + [
        path
        for folder in (*MAPPED, "bench", "tests", "docs", "scripts")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".py", ".md", ".sh")
    ]
    found = [p.relative_to(ROOT).as_posix() for p in files if cited.search(p.read_text())]
    assert found == []
