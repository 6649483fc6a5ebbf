"""The options every store benchmark takes, and the database it runs on, chosen the same way:

--url URL          a store URL given (the benchmark cleans up its own rows);
--fresh-postgres   a database of its own on the TEST_POSTGRES_URL server, dropped afterwards;
(neither)          a fresh SQLite file in a temp directory, removed afterwards;
--quick            small sizes, for a smoke run;
--json             the figures as JSON at the end (`print_figures`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def store_benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """The options above; the benchmark adds its own. `doc`: its module docstring."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--url", help="store URL (default: a temp SQLite file)")
    ap.add_argument(
        "--fresh-postgres",
        action="store_true",
        help="a fresh database on the TEST_POSTGRES_URL server, dropped afterwards",
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    return ap


def print_figures(args: argparse.Namespace, figures: Mapping[str, Any]) -> None:
    if args.json:
        print(json.dumps(figures, indent=2))


def run_on_database(
    args: argparse.Namespace, name: str, measure: Callable[[str], Coroutine[Any, Any, T]]
) -> T:
    """`measure(url)` on the database the options chose; `name` names the fresh one (a
    PostgreSQL database's prefix, the SQLite file)."""
    if args.fresh_postgres:
        return asyncio.run(_on_fresh_postgres(name, measure))
    if args.url:
        return asyncio.run(measure(args.url))
    tmp = tempfile.mkdtemp(prefix="switchboard-")
    try:
        return asyncio.run(measure(f"sqlite:///{tmp}/{name}.db"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _on_fresh_postgres(name: str, measure: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    if not os.environ.get("TEST_POSTGRES_URL"):
        raise SystemExit("--fresh-postgres needs TEST_POSTGRES_URL (a server to create it on)")
    from testkit.databases import postgres_database  # the tests' helper: creates, then drops

    async with postgres_database(f"bench_{name}") as url:
        return await measure(url)
