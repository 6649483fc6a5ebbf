"""The import direction of docs/architecture.md: storage <- agents <- bot <- adapters.

Each layer may import only the layers below it; only the composition root (bot/app.py and
bot/__main__.py, which build every part) imports adapters. Checked on the source, without
importing anything, so a violation names the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("storage", "agents", "bot", "adapters")  # lowest first
COMPOSITION_ROOT = {"bot/app.py", "bot/__main__.py"}


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
    return names


def _violations(layer: str) -> list[str]:
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    found = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        extra = set(LAYERS) if rel in COMPOSITION_ROOT else set()
        for line, name in _imported(ast.parse(path.read_text(), rel)):
            top = name.split(".", 1)[0]
            if top in LAYERS and top not in allowed | extra:
                found.append(f"{rel}:{line} imports {name}")
            elif top in ("tests", "bench", "testkit"):
                found.append(f"{rel}:{line} imports {name} (application code never imports {top})")
    return found


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_the_layers_below(layer: str) -> None:
    assert _violations(layer) == []


def _imports_of(folder: str, forbidden: set[str]) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, name in _imported(ast.parse(path.read_text(), rel)):
            if name.split(".", 1)[0] in forbidden:
                found.append(f"{rel}:{line} imports {name}")
    return found


def test_benchmarks_do_not_import_tests() -> None:
    """bench/ and tests/ share the emulators and fixtures through their own package (testkit),
    so the only edge between them is a test smoke-running a benchmark: no cycle."""
    assert _imports_of("bench", {"tests"}) == []


def test_testkit_imports_neither_tests_nor_benchmarks() -> None:
    """The shared kit sits below both of its users."""
    assert _imports_of("testkit", {"tests", "bench"}) == []
